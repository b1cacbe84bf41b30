/* machines.c -- the machines on a key: list them and release one
 * (activate.h, "Machines on the key"; docs/machines.md "Self-service").
 *
 * Both calls are authorised by the product key alone, so they work on a
 * machine that holds no license (the new machine of a user whose key is
 * full). The key is checked locally first, so a mistyped one never leaves
 * the machine. This machine's id goes along with a listing only so the
 * server can mark its own entry; the server's answer names places by
 * handle, hostname and times, never by machine id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "rpc_methods.h"

static void list_clear(pa_machine_list *l) { memset(l, 0, sizeof *l); }

void pa_machine_list_free(pa_machine_list *l) {
    if (!l) return;
    free(l->machines);
    list_clear(l);
}

/* The key of a call, checked locally; PA_OK or PA_ERR_KEY with why. */
static pa_err checked_key(pa_client *c, const char *key, char canonical[PA_KEY_TEXT_LEN + 1]) {
    c->error[0] = '\0';
    pa_key_problem p;
    if (!key || pa_key_check(key, canonical, &p) != PA_OK)
        return client_fail(c, PA_ERR_KEY, "%s", key ? p.message : "no product key given");
    return PA_OK;
}

/* A volume key's refusal says who manages its machines, not when to retry. */
static pa_err refused(pa_client *c, pa_err e) {
    if (e == PA_ERR_ORDER && strcmp(c->reason, "ORDER_MANAGED") == 0)
        return client_fail(c, e, "this key belongs to a volume order: its operator manages its machines (server %s)",
                           c->server);
    return e;
}

static void copy_text(char *dst, size_t n, const char *src) { snprintf(dst, n, "%s", src ? src : ""); }

static pa_err take_list(pa_client *c, const Activation__V1__ListMachinesResponse *r, pa_machine_list *out) {
    if (r->n_machines && !(out->machines = calloc(r->n_machines, sizeof *out->machines)))
        return client_fail(c, PA_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < r->n_machines; i++) {
        const Activation__V1__MachineEntry *e = r->machines[i];
        pa_machine *m = &out->machines[i];
        if (!e->handle || strlen(e->handle) != PA_MACHINE_HANDLE_LEN) {
            pa_machine_list_free(out);
            return client_fail(c, PA_ERR_BAD_LICENSE, "server %s sent a machine without a valid handle", c->server);
        }
        copy_text(m->handle, sizeof m->handle, e->handle);
        copy_text(m->hostname, sizeof m->hostname, e->hostname);
        m->last_seen = e->last_seen;
        m->expires_at = e->expires_at;
        m->this_machine = e->this_machine;
    }
    out->n = r->n_machines;
    out->max_machines = r->max_machines;
    out->releases_left = r->releases_left;
    out->next_release_at = r->next_release_at;
    return PA_OK;
}

pa_err pa_machines_list(pa_client *c, const char *key, pa_machine_list *out) {
    list_clear(out);
    char canonical[PA_KEY_TEXT_LEN + 1];
    pa_err e = checked_key(c, key, canonical);
    if (e != PA_OK) return e;
    Activation__V1__ListMachinesRequest req = ACTIVATION__V1__LIST_MACHINES_REQUEST__INIT;
    req.product_key = canonical;
    if (c->machine_source[0]) { /* an unidentified machine still lists; none is marked as this one */
        req.machine_id.data = c->machine_id;
        req.machine_id.len = PA_MACHINE_ID_LEN;
    }
    rpc_result res;
    e = client_call(c, PA_RPC_LIST_MACHINES, &req.base, &res);
    if (e == PA_OK) {
        Activation__V1__ListMachinesResponse *r =
            activation__v1__list_machines_response__unpack(NULL, res.body_len, res.body);
        if (!r) e = client_fail(c, PA_ERR_BAD_LICENSE, "server %s sent an unreadable list of machines", c->server);
        else e = take_list(c, r, out);
        if (r) activation__v1__list_machines_response__free_unpacked(r, NULL);
    }
    rpc_result_clear(&res);
    return refused(c, e);
}

pa_err pa_machine_release(pa_client *c, const char *key, const char *handle) {
    char canonical[PA_KEY_TEXT_LEN + 1];
    pa_err e = checked_key(c, key, canonical);
    if (e != PA_OK) return e;
    if (!handle || strlen(handle) != PA_MACHINE_HANDLE_LEN ||
        strspn(handle, "0123456789abcdefABCDEF") != PA_MACHINE_HANDLE_LEN)
        return client_fail(c, PA_ERR_REJECTED, "handle: want the %d hex characters of a listed machine",
                           PA_MACHINE_HANDLE_LEN);
    Activation__V1__ReleaseMachineRequest req = ACTIVATION__V1__RELEASE_MACHINE_REQUEST__INIT;
    req.product_key = canonical;
    req.handle = (char *)handle;
    rpc_result res;
    e = client_call(c, PA_RPC_RELEASE_MACHINE, &req.base, &res);
    if (e == PA_OK) {
        Activation__V1__ReleaseMachineResponse *r =
            activation__v1__release_machine_response__unpack(NULL, res.body_len, res.body);
        if (r) c->activation_count = r->activation_count;
        else e = client_fail(c, PA_ERR_BAD_LICENSE, "server %s sent an unreadable answer", c->server);
        if (r) activation__v1__release_machine_response__free_unpacked(r, NULL);
    }
    rpc_result_clear(&res);
    return refused(c, e);
}
