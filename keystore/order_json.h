/* order_json.h -- one description of an order for people and programs.
 *
 * `keystore order show` (the vendor) and `activation-server order show`
 * (the operator) print the same fields with the same names, so both build
 * the JSON object here and print either it or its text rendering. Terms
 * are shown with the defaults applied (what a server enforces). In its own
 * library, pa_order_json, because it needs jansson and the installer
 * library links pa_order without it. */
#ifndef PA_ORDER_JSON_H
#define PA_ORDER_JSON_H

#include <jansson.h>
#include <stdio.h>

#include "order_file.h"

/* A new object describing `f` (its order, keys count, signing key), or
 * NULL when out of memory or a text is not UTF-8. */
json_t *order_json(const order_file *f);

/* Prints an object as "  name: value" lines (arrays joined by ", ",
 * nested objects as their own indented block). */
void order_json_print_text(const json_t *j, FILE *out, int indent);

#endif
