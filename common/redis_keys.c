/* redis_keys.c -- see redis_keys.h. */
#include "redis_keys.h"

#include <stdarg.h>
#include <stdio.h>

__attribute__((format(printf, 3, 4))) static int key(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int l = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return l < 0 || (size_t)l >= n ? -1 : l;
}

int pa_rkey_group(char *buf, size_t n, uint32_t id) { return key(buf, n, PA_RKEY_GROUP_FMT, (unsigned)id); }
int pa_rkey_serial(char *buf, size_t n, uint32_t id) { return key(buf, n, PA_RKEY_SERIAL_FMT, (unsigned)id); }
int pa_rkey_revoked(char *buf, size_t n, uint32_t id) { return key(buf, n, PA_RKEY_REVOKED_FMT, (unsigned)id); }
int pa_rkey_group_bucket(char *buf, size_t n, uint32_t id) {
    return key(buf, n, PA_RKEY_GROUP_BUCKET_FMT, (unsigned)id);
}
int pa_rkey_group_failure_bucket(char *buf, size_t n, uint32_t id) {
    return key(buf, n, PA_RKEY_GROUP_FAILURE_BUCKET_FMT, (unsigned)id);
}
int pa_rkey_audit(char *buf, size_t n, uint32_t id) { return key(buf, n, PA_RKEY_AUDIT_FMT, (unsigned)id); }

int pa_rkey_record(char *buf, size_t n, uint32_t id, uint32_t serial) {
    return key(buf, n, PA_RKEY_RECORD_FMT, (unsigned)id, (unsigned)serial);
}

int pa_rkey_record_index(char *buf, size_t n, uint32_t id, uint32_t serial) {
    return key(buf, n, PA_RKEY_RECORD_INDEX_FMT, (unsigned)id, (unsigned)serial);
}

int pa_rkey_address_bucket(char *buf, size_t n, const char *address) {
    return key(buf, n, PA_RKEY_ADDRESS_BUCKET_FMT, address);
}

int pa_rkey_outbox_shard(char *buf, size_t n, uint32_t tag) {
    return key(buf, n, PA_RKEY_OUTBOX_SHARD_FMT, (unsigned)tag);
}

int pa_rkey_threat_group(char *buf, size_t n, uint32_t id, uint32_t yyyymmdd) {
    return key(buf, n, PA_RKEY_THREAT_GROUP_FMT, (unsigned)id, (unsigned)yyyymmdd);
}

int pa_rkey_threat_top(char *buf, size_t n, uint32_t yyyymmddhh) {
    return key(buf, n, PA_RKEY_THREAT_TOP_FMT, (unsigned)yyyymmddhh);
}

int pa_rkey_admin_webhook(char *buf, size_t n, const char *id) { return key(buf, n, PA_RKEY_ADMIN_WEBHOOK_FMT, id); }
int pa_rkey_admin_delivery(char *buf, size_t n, const char *id) { return key(buf, n, PA_RKEY_ADMIN_DELIVERY_FMT, id); }
int pa_rkey_admin_event_revoked(char *buf, size_t n, uint32_t id) {
    return key(buf, n, PA_RKEY_ADMIN_EVENT_REVOKED_FMT, (unsigned)id);
}

int pa_rkey_audit_request(char *buf, size_t n, const char *request_id) {
    return key(buf, n, PA_RKEY_AUDIT_REQUEST_FMT, request_id);
}

int pa_audit_revoked_member(char *buf, size_t n, uint32_t group, uint32_t serial) {
    return key(buf, n, PA_AUDIT_REVOKED_MEMBER_FMT, (unsigned)group, (unsigned)serial);
}

/* admin server: organisations */
int pa_rkey_admin_org(char *buf, size_t n, uint32_t id) { return key(buf, n, PA_RKEY_ADMIN_ORG_FMT, id); }

int pa_rkey_admin_org_of(char *buf, size_t n, const char *serial) {
    return key(buf, n, PA_RKEY_ADMIN_ORG_OF_FMT, serial);
}

int pa_rkey_order(char *buf, size_t n, const char *serial) { return key(buf, n, PA_RKEY_ORDER_FMT, serial); }
int pa_rkey_order_keys(char *buf, size_t n, const char *serial) { return key(buf, n, PA_RKEY_ORDER_KEYS_FMT, serial); }
int pa_rkey_order_machines(char *buf, size_t n, const char *serial) {
    return key(buf, n, PA_RKEY_ORDER_MACHINES_FMT, serial);
}
int pa_rkey_order_facts(char *buf, size_t n, const char *serial) {
    return key(buf, n, PA_RKEY_ORDER_FACTS_FMT, serial);
}
int pa_rkey_order_counts(char *buf, size_t n, const char *serial) {
    return key(buf, n, PA_RKEY_ORDER_COUNTS_FMT, serial);
}
int pa_rkey_order_wheel(char *buf, size_t n, const char *serial) {
    return key(buf, n, PA_RKEY_ORDER_WHEEL_FMT, serial);
}
int pa_rkey_order_wheel_prefix(char *buf, size_t n, const char *serial) {
    return key(buf, n, PA_RKEY_ORDER_WHEEL_PREFIX_FMT, serial);
}
int pa_rkey_order_designated(char *buf, size_t n, const char *serial) {
    return key(buf, n, PA_RKEY_ORDER_DESIGNATED_FMT, serial);
}
int pa_rkey_order_usage(char *buf, size_t n, const char *serial) {
    return key(buf, n, PA_RKEY_ORDER_USAGE_FMT, serial);
}

int pa_rkey_group_mlog(char *buf, size_t n, uint32_t id) { return key(buf, n, PA_RKEY_GROUP_MLOG_FMT, (unsigned)id); }
int pa_rkey_order_mlog(char *buf, size_t n, const char *serial) { return key(buf, n, PA_RKEY_ORDER_MLOG_FMT, serial); }
int pa_rkey_order_seen(char *buf, size_t n, const char *serial) { return key(buf, n, PA_RKEY_ORDER_SEEN_FMT, serial); }
int pa_rkey_admin_user(char *buf, size_t n, const char *name) { return key(buf, n, PA_RKEY_ADMIN_USER_FMT, name); }
int pa_rkey_admin_session(char *buf, size_t n, const char *id_hash_hex) {
    return key(buf, n, PA_RKEY_ADMIN_SESSION_FMT, id_hash_hex);
}
int pa_rkey_admin_rl_user(char *buf, size_t n, const char *name) {
    return key(buf, n, PA_RKEY_ADMIN_RL_USER_FMT, name);
}
int pa_rkey_admin_rl_addr(char *buf, size_t n, const char *address) {
    return key(buf, n, PA_RKEY_ADMIN_RL_ADDR_FMT, address);
}
