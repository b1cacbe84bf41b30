/* order_gauges.c -- see order_gauges.h. */
#include "order_gauges.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

enum { SEATS_UNKNOWN, SEATS_OK, SEATS_LOW };

typedef struct entry {
    char serial[ORDER_SERIAL_LEN + 1]; /* the order; set before the entry is published */
    metric *used, *free, *machines;    /* its gauges (free: NULL for unlimited orders) */
    atomic_int state;                  /* SEATS_*: the warning's side, shared by every thread */
    pthread_mutex_t mu;                /* orders a note's check of `changes` with its gauge updates */
    uint64_t changes;                  /* the counters' write count the gauges show */
} entry;

struct order_gauges {
    pthread_mutex_t add; /* appending an entry */
    atomic_size_t n;     /* published entries; readers need no lock */
    entry e[ORDER_GAUGES_MAX];
};

order_gauges *order_gauges_new(void) {
    order_gauges *g = calloc(1, sizeof *g);
    if (g && pthread_mutex_init(&g->add, NULL) != 0) {
        free(g);
        return NULL;
    }
    return g;
}

void order_gauges_free(order_gauges *g) {
    if (!g) return;
    pthread_mutex_destroy(&g->add);
    size_t n = atomic_load(&g->n);
    for (size_t i = 0; i < n; i++) pthread_mutex_destroy(&g->e[i].mu);
    free(g);
}

static entry *find(order_gauges *g, const char *serial, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(g->e[i].serial, serial) == 0) return &g->e[i];
    return NULL;
}

/* The order's entry, registered on first sight; NULL when the table is full. */
static entry *entry_of(order_gauges *g, const order_record *o) {
    entry *e = find(g, o->serial, atomic_load_explicit(&g->n, memory_order_acquire));
    if (e) return e;
    pthread_mutex_lock(&g->add);
    size_t n = atomic_load_explicit(&g->n, memory_order_relaxed);
    if (!(e = find(g, o->serial, n)) && n < ORDER_GAUGES_MAX && pthread_mutex_init(&g->e[n].mu, NULL) == 0) {
        e = &g->e[n];
        char labels[32];
        snprintf(e->serial, sizeof e->serial, "%s", o->serial);
        snprintf(labels, sizeof labels, "order=\"%s\"", o->serial);
        e->used = metric_gauge("pa_order_seats_used", "Seats held, by volume order", labels);
        e->machines =
            metric_gauge("pa_order_machines", "Machines in the retention window (the KMS count), by order", labels);
        if (o->mode != SEAT_MODE_UNLIMITED)
            e->free = metric_gauge("pa_order_seats_free", "Seats sold and not held, by volume order", labels);
        atomic_store_explicit(&g->n, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&g->add);
    return e;
}

/* Logs a crossing of the order's seat warning, once. */
static void warn_crossing(entry *e, const order_record *o, uint32_t used, uint32_t free_seats) {
    int now = free_seats < o->seat_warning ? SEATS_LOW : SEATS_OK;
    int was = atomic_exchange(&e->state, now);
    if (was == now || (was == SEATS_UNKNOWN && now == SEATS_OK)) return;
    log_emit(now == SEATS_LOW ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
             now == SEATS_LOW ? "order.seats_low" : "order.seats_ok", LOG_S("order", o->serial),
             LOG_U("seats", o->seats), LOG_U("seats_used", used), LOG_U("seats_free", free_seats),
             LOG_U("seat_warning", o->seat_warning), LOG_END);
}

void order_gauges_note(order_gauges *g, const order_record *o, uint32_t seats_used, uint32_t machines,
                       uint64_t changes) {
    if (!g || !o) return;
    entry *e = entry_of(g, o);
    if (!e) return;
    uint32_t free_seats = seats_used < o->seats ? o->seats - seats_used : 0;
    pthread_mutex_lock(&e->mu);
    if (changes >= e->changes) { /* equal: the same counters, perhaps under a new revision's terms */
        e->changes = changes;
        metric_set(e->used, seats_used);
        metric_set(e->machines, machines);
        if (e->free) metric_set(e->free, free_seats);
        if (e->free && o->seat_warning > 0) warn_crossing(e, o, seats_used, free_seats);
    }
    pthread_mutex_unlock(&e->mu);
}
