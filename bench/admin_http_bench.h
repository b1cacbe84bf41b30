/* admin_http_bench.h -- the HTTP half of bench/admin_export: N machines in
 * a real directory, exported through a real admin-server. */
#ifndef PA_BENCH_ADMIN_HTTP_BENCH_H
#define PA_BENCH_ADMIN_HTTP_BENCH_H

#include "admin_env.h"
#include "export.h"

/* Loads `machines` machine records and exports them in format `only` (an
 * export_format, or -1 for each); prints the figures. 0, or -1 (why on
 * stderr). */
int admin_http_bench(unsigned long long machines, int only);

/* Loads machines [0, n) (admin_machines.h) into env's directory as the
 * admin user. 0, or -1 (why on stderr). */
int admin_http_load(admin_env *env, unsigned long long n);

/* One GET /api/v1/machines/export in format f on env's logged-in session,
 * the body read and dropped; prints rows/s (of `n` rows), MB and the
 * admin-server's peak RSS. 0, or -1 (why on stderr). */
int admin_http_export(admin_env *env, export_format f, unsigned long long n);

#endif
