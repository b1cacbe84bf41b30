/* admin_http_bench.h -- the HTTP half of bench/admin_export: N machines in
 * a real directory, exported through a real admin-server. */
#ifndef PA_BENCH_ADMIN_HTTP_BENCH_H
#define PA_BENCH_ADMIN_HTTP_BENCH_H

/* Loads `machines` machine records and exports them in format `only` (an
 * export_format, or -1 for each); prints the figures. 0, or -1 (why on
 * stderr). */
int admin_http_bench(unsigned long long machines, int only);

#endif
