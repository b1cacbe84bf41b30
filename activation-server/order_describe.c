/* order_describe.c -- the JSON description of a stored order (order_describe.h).
 * The signed bytes are decoded again rather than trusted from the flattened
 * hash fields: the description shows what the vendor signed. */
#include "order_describe.h"

#include <stdlib.h>

#include "order_armour.h"
#include "order_file.h"
#include "order_json.h"
#include "tagged_signature.h"

json_t *order_counters(rstore *r, const order_record *rec) {
    redisReply *rep = rstore_command(r, "HGETALL %s", rec->key_counts);
    json_t *j = json_object();
    for (size_t i = 0; j && rep && rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2)
        json_object_set_new(j, rep->element[i]->str, json_integer(strtoll(rep->element[i + 1]->str, NULL, 10)));
    if (rep) freeReplyObject(rep);
    return j;
}

json_t *order_describe(rstore *r, const order_record *rec) {
    order_file f;
    char err[256];
    if (order_file_from_parts(&f, rec->order_bytes, rec->order_len, rec->order_signature, TAGGED_SIG_LEN,
                              rec->order_key_id, NULL, 0, err, sizeof err) != ORDER_OK) {
        order_file_clear(&f);
        return NULL;
    }
    json_t *j = order_json(&f);
    char imported[40];
    order_armour_time(rec->imported_at, imported, sizeof imported);
    if (j && rec->on_premises) json_object_set_new(j, "accepted_keys", json_integer((json_int_t)rec->n_key_hashes));
    if (j && (json_object_set_new(j, "retired", json_boolean(rec->retired)) ||
              json_object_set_new(j, "machine_match", json_integer((json_int_t)rec->machine_match)) ||
              json_object_set_new(j, "version", json_integer((json_int_t)rec->version)) ||
              json_object_set_new(j, "imported_at", json_string(imported)) ||
              json_object_set_new(j, "counters", order_counters(r, rec))))
        json_decref(j), j = NULL;
    order_file_clear(&f);
    return j;
}
