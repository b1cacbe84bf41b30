/* order_armour.h -- the `.license` text of an order (docs/volume.md, "The
 * order file").
 *
 * A SignedOrder travels by e-mail, so it is written as text: a BEGIN line,
 * headers for people (serial, revision, customer, mode, seats, dates), a
 * blank line, the base64 of the SignedOrder in lines of 64, an END line.
 * The body is the order; the headers only repeat it. Reading is tolerant of
 * what mail does to text (CRLF line ends, text before and after the armour,
 * re-wrapped or indented base64, folded header lines) and strict about
 * meaning: a header that disagrees with the body, an unknown header or a
 * header given twice makes the file malformed, because someone edited it. */
#ifndef PA_ORDER_ARMOUR_H
#define PA_ORDER_ARMOUR_H

#include <stddef.h>

#include "order_file.h"

#define ORDER_ARMOUR_BEGIN "-----BEGIN PRODUCT ACTIVATION ORDER-----"
#define ORDER_ARMOUR_END "-----END PRODUCT ACTIVATION ORDER-----"
#define ORDER_ARMOUR_LINE 64 /* base64 characters a line */

/* The armoured text of `f`, keys included (malloc'd, NUL-terminated), or
 * NULL when out of memory. */
char *order_armour_write(const order_file *f);

/* Reads an armoured order from `text` (any bytes; need not be
 * NUL-terminated) into `f`, decoding and validating it (order_file_decode)
 * and comparing the headers with it. ORDER_OK or ORDER_MALFORMED with the
 * reason; `f` must be cleared either way. Does not verify the signature. */
order_status order_armour_read(order_file *f, const char *text, size_t len, char *err, size_t errlen);

/* A header's value for `o` as the writer prints it, e.g. "Valid" ->
 * "2026-12-01 .. 2027-12-01"; for `order show`. Returns buf, or NULL for an
 * unknown header name. */
const char *order_armour_header(const Volume__V1__Order *o, const char *name, char *buf, size_t n);

/* A time as the armour and `order show` print it: "2026-12-01" at midnight
 * UTC, else "2026-12-01T10:30:00Z". */
void order_armour_time(int64_t t, char *buf, size_t n);

#endif
