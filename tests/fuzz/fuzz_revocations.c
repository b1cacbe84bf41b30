/* fuzz_revocations.c -- libFuzzer target for what the revocation puller
 * reads from the audit server: the bytes of a ListRevocationsResponse,
 * turned into entries by audit_revocations_decode (the part of
 * audit_client_list_revocations after the gRPC call).
 *
 * The puller applies what it gets to Redis A, so the target checks that
 * what comes out is what went in:
 *   - a refused response yields no entries and a message;
 *   - an accepted one yields exactly the revocations the message holds, in
 *     wire order, with their sequence, group and serial unchanged (checked
 *     against protobuf-c's own reading of the same bytes), and last_sequence
 *     as sent;
 *   - every entry names a {g:ID}:revoked key that fits the buffer the
 *     puller's apply step formats it into. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/v1/audit.pb-c.h"
#include "audit_client.h"
#include "fuzz_util.h"
#include "redis_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    audit_revocation *e = (audit_revocation *)&e; /* must be overwritten */
    size_t n = 12345;
    uint64_t last = 777;
    char err[300] = "";
    int rc = audit_revocations_decode(data, size, &e, &n, &last, err, sizeof err);

    Audit__V1__ListRevocationsResponse *lr = audit__v1__list_revocations_response__unpack(NULL, size, data);
    if (rc != 0) {
        CHECK(e == NULL && n == 0 && err[0] != '\0');
        CHECK(lr == NULL); /* memory never runs out at these sizes */
        return 0;
    }
    CHECK(lr != NULL);
    CHECK(last == lr->last_sequence);
    CHECK(n == lr->n_revocations);
    CHECK((n == 0) == (e == NULL));
    for (size_t i = 0; i < n; i++) {
        const Audit__V1__Revocation *r = lr->revocations[i];
        CHECK(r && e[i].sequence == r->sequence && e[i].group == r->group && e[i].serial == r->serial);
        char key[PA_RKEY_MAX];
        CHECK(pa_rkey_revoked(key, sizeof key, e[i].group) > 0);
    }
    audit__v1__list_revocations_response__free_unpacked(lr, NULL);
    free(e);
    return 0;
}
