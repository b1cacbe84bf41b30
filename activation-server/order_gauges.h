/* order_gauges.h -- each order's seats as gauges, and its seat warning
 * (docs/volume.md, "Operator controls"; docs/operations.md).
 *
 *   pa_order_seats_used{order="S"}  seats held
 *   pa_order_seats_free{order="S"}  seats sold minus seats held (counted modes)
 *   pa_order_machines{order="S"}    machines in the window (the KMS count)
 *
 * Every answer of volume.lua carries the counters after its call, so the
 * handler that got it sets the gauges: they follow an order within one call
 * of any change, and the sweep task keeps them fresh while nobody calls.
 * Two workers answering at once may hold their answers in either order, so
 * each answer also carries how often the order's counters were written
 * (`changes`): an answer older than the one the gauges show is dropped, and
 * the gauges and the seat warning only ever move forward.
 * When an order's free seats fall below its seat_warning the server logs
 * order.seats_low, and order.seats_ok when they are back at or above it:
 * once per crossing, however many threads see it, because the state is one
 * atomic per order shared by all of them.
 *
 * Orders are few; the registry is a fixed array searched from the start,
 * appended to under a mutex and read without one. */
#ifndef PA_ACTIVATION_ORDER_GAUGES_H
#define PA_ACTIVATION_ORDER_GAUGES_H

#include <stdint.h>

#include "order_record.h"

#define ORDER_GAUGES_MAX 4096 /* orders one server reports; more are not shown */

typedef struct order_gauges order_gauges;

order_gauges *order_gauges_new(void);
void order_gauges_free(order_gauges *g);

/* The order's counters as a script call left them. NULL g: nothing. */
void order_gauges_note(order_gauges *g, const order_record *o, uint32_t seats_used, uint32_t machines,
                       uint64_t changes);

#endif
