/* order_sweep.c -- see order_sweep.h. */
#include "order_sweep.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "metrics.h"
#include "order_cache.h"
#include "order_store.h"
#include "task.h"
#include "volume_policy.h"

#define SWEEP_CALLS_MAX 200 /* per order per round: 200 000 members at VOLUME_SWEEP_MAX */

struct order_sweep {
    order_sweep_config cfg;
    rstore *redis;         /* the task's own connection */
    int script;            /* volume.lua on it */
    order_cache *orders;   /* for the gauges' seat counts and warnings */
    pthread_mutex_t round; /* one round at a time (task and order_sweep_round) */
    metric *aged;          /* pa_order_sweep_aged_total */
    bool failing;          /* the last round could not read the store (logged once) */
    task *loop;
};

/* Sweeps one order until nothing is due (or the bound). Returns the members aged, -1 on failure. */
static long long sweep_order(order_sweep *s, const char *serial) {
    long long aged = 0;
    volume_result r = {.more = true};
    for (int i = 0; i < SWEEP_CALLS_MAX && r.more; i++) {
        volume_sweep(s->redis, s->script, serial, VOLUME_SWEEP_MAX, &r);
        if (r.status == VOLUME_UNKNOWN_ORDER) return aged; /* removed since the list was read */
        if (r.status != VOLUME_OK) {
            log_warn("order.sweep_failed", LOG_S("order", serial), LOG_S("error", r.error), LOG_END);
            return -1;
        }
        aged += r.aged;
    }
    const order_record *o;
    if (order_cache_get(s->orders, serial, &o) == ORDER_FOUND)
        order_gauges_note(s->cfg.gauges, o, r.seats_used, r.count, r.changes);
    return aged;
}

long long order_sweep_round(order_sweep *s) {
    char(*serials)[ORDER_SERIAL_LEN + 1] = NULL, err[256];
    size_t n = 0;
    long long total = 0;
    pthread_mutex_lock(&s->round);
    if (order_store_list(s->redis, &serials, &n, err, sizeof err) != 0) {
        if (!s->failing) log_warn("order.sweep_failed", LOG_S("error", err), LOG_END);
        s->failing = true;
        pthread_mutex_unlock(&s->round);
        return -1;
    }
    s->failing = false;
    for (size_t i = 0; i < n; i++) {
        long long aged = sweep_order(s, serials[i]);
        if (aged > 0) total += aged;
    }
    free(serials);
    if (total > 0) metric_add(s->aged, (uint64_t)total);
    pthread_mutex_unlock(&s->round);
    return total;
}

static void run(task *t, void *arg) {
    order_sweep *s = arg;
    while (task_sleep(t, s->cfg.interval_ms)) order_sweep_round(s);
}

order_sweep *order_sweep_start(const order_sweep_config *cfg, char *err, size_t errlen) {
    if (errlen) err[0] = '\0';
    order_sweep *s = calloc(1, sizeof *s);
    if (!s) return snprintf(err, errlen, "out of memory"), NULL;
    s->cfg = *cfg;
    s->redis = rstore_new(cfg->redis, true, err, errlen);
    s->script = s->redis ? volume_register(s->redis) : -1;
    s->orders = s->redis ? order_cache_new(s->redis, cfg->refresh_ms) : NULL;
    s->aged =
        metric_counter("pa_order_sweep_aged_total",
                       "Machine-table wheel members the background sweep took (leases lapsed, machines aged out)", "");
    if (!s->redis || s->script < 0 || !s->orders || pthread_mutex_init(&s->round, NULL) != 0) {
        if (errlen && !err[0]) snprintf(err, errlen, "order sweep: cannot set up its Redis connection");
        order_cache_free(s->orders);
        rstore_free(s->redis);
        free(s);
        return NULL;
    }
    if (cfg->interval_ms > 0 && !(s->loop = task_start("order sweep", run, s, err, errlen))) {
        order_sweep_stop(s);
        return NULL;
    }
    return s;
}

void order_sweep_stop(order_sweep *s) {
    if (!s) return;
    task_stop(s->loop);
    pthread_mutex_destroy(&s->round);
    order_cache_free(s->orders);
    rstore_free(s->redis);
    free(s);
}
