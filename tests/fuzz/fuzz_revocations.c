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
 *     and the epoch as sent; a refusal of a message protobuf-c reads is an
 *     epoch or entry id too long to be one;
 *   - every entry names a {g:ID}:revoked key that fits the buffer the
 *     puller's apply step formats it into;
 *   - audit_revocation_page_check accepts exactly the pages whose
 *     sequences increase and stay within last_sequence. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/v1/audit.pb-c.h"
#include "audit_client.h"
#include "fuzz_util.h"
#include "redis_keys.h"

/* True when the message carries an epoch or entry id too long to be one. */
static bool has_long_id(const Audit__V1__ListRevocationsResponse *lr) {
    if ((lr->epoch && strlen(lr->epoch) > AUDIT_LOG_ID_MAX) ||
        (lr->after_entry_id && strlen(lr->after_entry_id) > AUDIT_LOG_ID_MAX))
        return true;
    for (size_t i = 0; i < lr->n_revocations; i++)
        if (lr->revocations[i]->entry_id && strlen(lr->revocations[i]->entry_id) > AUDIT_LOG_ID_MAX) return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    audit_revocation_page page;
    memset(&page, 0x5a, sizeof page); /* must be overwritten */
    char err[300] = "";
    int rc = audit_revocations_decode(data, size, &page, err, sizeof err);

    Audit__V1__ListRevocationsResponse *lr = audit__v1__list_revocations_response__unpack(NULL, size, data);
    if (rc != 0) {
        CHECK(page.entries == NULL && page.n == 0 && err[0] != '\0');
        CHECK(lr == NULL || has_long_id(lr)); /* memory never runs out at these sizes */
        if (lr) audit__v1__list_revocations_response__free_unpacked(lr, NULL);
        return 0;
    }
    CHECK(lr != NULL);
    CHECK(page.last_sequence == lr->last_sequence);
    CHECK(page.n == lr->n_revocations);
    CHECK((page.n == 0) == (page.entries == NULL));
    CHECK(strcmp(page.epoch, lr->epoch ? lr->epoch : "") == 0);
    for (size_t i = 0; i < page.n; i++) {
        const Audit__V1__Revocation *r = lr->revocations[i];
        CHECK(r && page.entries[i].sequence == r->sequence && page.entries[i].group == r->group &&
              page.entries[i].serial == r->serial);
        char key[PA_RKEY_MAX];
        CHECK(pa_rkey_revoked(key, sizeof key, page.entries[i].group) > 0);
    }
    /* The puller follows only pages that advance (from 0 here). */
    bool advances = page.n == 0 || page.entries[page.n - 1].sequence <= page.last_sequence;
    for (size_t i = 0; i < page.n && advances; i++)
        advances = page.entries[i].sequence > (i ? page.entries[i - 1].sequence : 0);
    CHECK((audit_revocation_page_check(&page, 0, err, sizeof err) == 0) == advances);
    audit__v1__list_revocations_response__free_unpacked(lr, NULL);
    audit_revocation_page_free(&page);
    return 0;
}
