/* log.h -- structured logs: one JSON object per line on stderr.
 *
 *   log_info("activate.granted", LOG_U("group", g), LOG_U("serial", s),
 *            LOG_S("peer", peer), LOG_END);
 *
 * prints {"ts":"2026-11-21T23:30:00.123Z","level":"info","event":"activate.granted",
 *         "group":4365,"serial":11,"peer":"ipv4:127.0.0.1:51000"}
 * Strings are JSON-escaped. One write(2) per line, so lines from many
 * threads never interleave. Never pass a full product key or a secret:
 * log a key as group + serial. */
#ifndef PA_LOG_H
#define PA_LOG_H

#include <stdint.h>

typedef enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR } log_level;

/* Field type tags; use the LOG_* macros rather than these directly. */
enum { LOG_T_END = 0, LOG_T_STR, LOG_T_INT, LOG_T_UINT, LOG_T_DOUBLE, LOG_T_BOOL };

#define LOG_S(k, v) LOG_T_STR, (const char *)(k), (const char *)(v)
#define LOG_I(k, v) LOG_T_INT, (const char *)(k), (long long)(v)
#define LOG_U(k, v) LOG_T_UINT, (const char *)(k), (unsigned long long)(v)
#define LOG_F(k, v) LOG_T_DOUBLE, (const char *)(k), (double)(v)
#define LOG_B(k, v) LOG_T_BOOL, (const char *)(k), (int)(v)
#define LOG_END LOG_T_END

/* Lines below `min` are dropped. Default: info. */
void log_set_level(log_level min);
/* Parses "debug" | "info" | "warn" | "error"; returns -1 if unknown. */
int log_level_parse(const char *s);
/* Adds a constant field to every line (e.g. "component":"activation-server").
 * Call once at start-up, before threads. */
void log_set_component(const char *name);

void log_emit(log_level lvl, const char *event, ...);
/* Between log_hold and log_release, this thread's lines are collected and
 * written together (a few kB at a time, whole lines): a batch of calls
 * costs one write(2) instead of one per line (docs/batching.md). Lines
 * reach stderr at log_release at the latest, so hold only around work that
 * ends soon (one batch of calls). */
void log_hold(void);
void log_release(void);

#define log_debug(...) log_emit(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_emit(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_emit(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_emit(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
