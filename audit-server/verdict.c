/* verdict.c -- judging one key (see verdict.h). */
#include "verdict.h"

#include <stdio.h>

#include "mac_registry.h"

const char *verdict_name(verdict_kind k) {
    switch (k) {
    case VERDICT_KIND_GENUINE: return "genuine";
    case VERDICT_KIND_FORGED: return "forged";
    case VERDICT_KIND_MALFORMED: return "malformed";
    }
    return "unknown";
}

static void set(verdict *v, verdict_kind kind, const char *reason) {
    v->kind = kind;
    v->revoke = kind == VERDICT_KIND_FORGED;
    snprintf(v->reason, sizeof v->reason, "%s", reason);
}

int verdict_judge(secret_cache *cache, rstore *store, pk_status key_status, const pk_fields *key,
                  verdict *out, char *err, size_t errlen) {
    if (key_status != PK_OK) {
        char why[96];
        snprintf(why, sizeof why, "key does not decode: %s", pk_status_name(key_status));
        set(out, VERDICT_KIND_MALFORMED, why);
        return 0;
    }
    mac_key *second = NULL;
    int rc = secret_cache_get(cache, store, key->group, &second, err, errlen);
    if (rc < 0) return -1;
    if (rc == 1) {
        set(out, VERDICT_KIND_FORGED, "group has no audit record");
        return 0;
    }
    if (mac_security_check(second, MAC_ROLE_SECOND, key->group, key->serial, key->upgrade,
                           key->security_second))
        set(out, VERDICT_KIND_GENUINE, "second security value matches");
    else
        set(out, VERDICT_KIND_FORGED, "second security value does not match");
    return 0;
}
