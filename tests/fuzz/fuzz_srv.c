/* fuzz_srv.c -- libFuzzer target for what the installer reads from DNS:
 * the raw answer to the _activation._tcp SRV query, parsed by c-ares
 * (ares_parse_srv_reply) and kept by discovery.c (srv_parse_answer, the
 * part of srv_lookup after the network), then ordered (srv_order) and made
 * into endpoints (endpoints_from_srv, endpoints_prefer) as client.c does.
 * DNS answers are not authenticated, so anyone on the path may write them.
 *
 * The target checks, beyond memory safety:
 *   - a refused answer yields no records;
 *   - every kept record names a host (never empty, never the "." that
 *     means "no service"), NUL-terminated in its buffer, and is the c-ares
 *     record of the same position among the usable ones: its port,
 *     priority and weight as sent, its host exactly as sent (c-ares escapes
 *     '.' and backslash inside labels, so a legal name can take more than 255
 *     characters; discovery.c drops such a record rather than cut it into
 *     another name);
 *   - srv_order returns a permutation of the records with priorities in
 *     ascending order, whatever the random numbers;
 *   - every endpoint is "host:port" for its record, the DNS server's target
 *     embeds it, and endpoints_prefer moves a named endpoint to the front
 *     keeping the others in order. */
#include <ares.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery.h"
#include "fuzz_util.h"

/* Random numbers for srv_order, from a seed taken from the input. */
static uint32_t next_random(void *arg) {
    uint64_t *s = arg;
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 32);
}

static int by_bytes(const void *a, const void *b) { return memcmp(a, b, sizeof(srv_record)); }

/* The kept records against c-ares's own list, in order. */
static void check_against_cares(const uint8_t *data, size_t size, const srv_record *r, size_t n) {
    struct ares_srv_reply *reply = NULL;
    CHECK(ares_parse_srv_reply(data, (int)size, &reply) == ARES_SUCCESS);
    size_t k = 0;
    for (const struct ares_srv_reply *s = reply; s; s = s->next) {
        if (!s->host[0] || strcmp(s->host, ".") == 0 || strlen(s->host) >= sizeof r->host) continue;
        if (k == n) break; /* the rest is past the record limit */
        const srv_record *d = &r[k++];
        CHECK(strcmp(d->host, s->host) == 0); /* as sent: never cut short */
        CHECK(d->port == s->port && d->priority == s->priority && d->weight == s->weight);
    }
    CHECK(k == n);
    ares_free_data(reply);
}

static void check_order(const srv_record *before, srv_record *r, size_t n, uint64_t seed) {
    srv_order(r, n, next_random, &seed);
    for (size_t i = 1; i < n; i++) CHECK(r[i - 1].priority <= r[i].priority);
    srv_record *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    CHECK(a && b);
    memcpy(a, before, n * sizeof *a);
    memcpy(b, r, n * sizeof *b);
    qsort(a, n, sizeof *a, by_bytes);
    qsort(b, n, sizeof *b, by_bytes);
    CHECK(memcmp(a, b, n * sizeof *a) == 0);
    free(a);
    free(b);
}

/* The endpoints keep exactly the records whose target is a host name
 * inside `domain` with a port, in order, each dialled as a dns: target:
 * nothing in an answer can become another kind of gRPC target. */
static void check_endpoints(const srv_record *r, size_t n, const char *domain, const char *dns_server) {
    endpoint *e = NULL;
    size_t ne = 0;
    char err[400];
    size_t usable = 0;
    for (size_t i = 0; i < n; i++)
        usable += host_name_valid(r[i].host) && host_in_domain(r[i].host, domain) && r[i].port;
    int rc = endpoints_from_srv(r, n, domain, dns_server, &e, &ne, err, sizeof err);
    if (usable == 0) {
        CHECK(rc == -1 && e == NULL && ne == 0 && err[0]);
        return;
    }
    CHECK(rc == 0 && ne == usable);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(host_name_valid(r[i].host) && host_in_domain(r[i].host, domain) && r[i].port)) continue;
        char want[300];
        size_t len = strlen(r[i].host);
        if (len > 1 && r[i].host[len - 1] == '.') len--;
        snprintf(want, sizeof want, "%.*s:%u", (int)len, r[i].host, (unsigned)r[i].port);
        CHECK(strcmp(e[k].name, want) == 0);
        char target[400];
        if (dns_server) snprintf(target, sizeof target, "dns://%s/%s", dns_server, want);
        else snprintf(target, sizeof target, "dns:///%s", want);
        CHECK(strcmp(e[k].target, target) == 0);
        k++;
    }
    if (ne > 1) {
        endpoint last = e[ne - 1], first = e[0];
        endpoints_prefer(e, ne, last.name);
        CHECK(strcmp(e[0].name, last.name) == 0);
        CHECK(strcmp(e[1].name, first.name) == 0); /* the others shifted, in order */
    }
    free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65535) return 0;       /* a DNS message's limit; c-ares takes an int */
    srv_record *r = (srv_record *)&r; /* must be overwritten */
    size_t n = 12345;
    int st = srv_parse_answer(data, (int)size, &r, &n);
    if (st != ARES_SUCCESS) {
        CHECK(r == NULL && n == 0);
        return 0;
    }
    CHECK(r != NULL);
    check_against_cares(data, size, r, n);

    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < size; i++) seed = (seed ^ data[i]) * 0x100000001b3ull;
    if (n > 0) {
        srv_record *before = malloc(n * sizeof *before);
        CHECK(before);
        memcpy(before, r, n * sizeof *r);
        check_order(before, r, n, seed | 1);
        free(before);
    }
    /* A domain the first target may lie in (its parent), so that answers
     * the fuzzer makes reach the endpoint code; and one nothing lies in. */
    const char *dot = n > 0 ? strchr(r[0].host, '.') : NULL;
    const char *domain = dot && dot[1] ? dot + 1 : (n > 0 ? r[0].host : "example.com");
    check_endpoints(r, n, domain, NULL);
    check_endpoints(r, n, domain, "127.0.0.1:5353");
    check_endpoints(r, n, "fuzz.invalid", NULL);
    free(r);
    return 0;
}
