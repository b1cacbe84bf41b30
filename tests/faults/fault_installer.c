/* fault_installer.c -- installer threads on the client library (see
 * fault_installer.h). */
#include "fault_installer.h"

#include <stdio.h>
#include <string.h>

#include "activate.h"
#include "client_testutil.h"

void fault_installer_machine(fault_installer *in, const char *dir, const char *name, unsigned n) {
    snprintf(in->root, sizeof in->root, "%s/machines/%s", dir, name);
    snprintf(in->state, sizeof in->state, "%s/state/%s", dir, name);
    char uuid[64];
    snprintf(uuid, sizeof uuid, "4c4c4544-0042-4a10-8051-%012x", n);
    tu_fake_machine(in->root, uuid, NULL, NULL, NULL);
}

static void *run(void *p) {
    fault_installer *in = p;
    pa_options o;
    pa_options_init(&o);
    o.state_dir = in->state;
    o.facts_root = in->root;
    o.servers = in->servers;
    o.n_servers = in->n_servers;
    o.public_key_pem = in->pem;
    o.insecure = true;
    o.timeout_ms = 5000;
    o.connect_timeout_ms = 1000;
    char err[256];
    pa_client *c = pa_client_new(&o, err, sizeof err);
    if (!c) {
        snprintf(in->failure, sizeof in->failure, "pa_client_new: %s", err);
        in->failed++;
        return NULL;
    }
    for (unsigned i = 0; !*in->stop && i < in->n_keys; i++) {
        pa_err e = pa_activate(c, in->keys[i]);
        if (e == PA_OK && strcmp(pa_server(c), in->servers[0]) == 0) in->ok_first++;
        else if (e == PA_OK) in->ok_other++;
        else if (in->failed++ == 0) snprintf(in->failure, sizeof in->failure, "%s: %s", pa_err_name(e), pa_error(c));
    }
    pa_client_free(c);
    return NULL;
}

int fault_installer_start(fault_installer *in) { return pthread_create(&in->thread, NULL, run, in) == 0 ? 0 : -1; }

void fault_installer_join(fault_installer *in) { pthread_join(in->thread, NULL); }
