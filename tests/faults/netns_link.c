/* netns_link.c -- a namespace and a veth pair made with iproute2 (see
 * netns_link.h). Commands run through fixture_run, so their messages
 * reach the caller when something is refused. */
#include "netns_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

#define IP_BIN "/usr/sbin/ip"

/* Runs `ip` with up to 12 arguments; 0 or -1 (stderr into why). */
static int ip(char *why, size_t whylen, const char *const *args) {
    const char *argv[16] = {IP_BIN};
    size_t n = 1;
    while (args[n - 1] && n < 15) argv[n] = args[n - 1], n++;
    argv[n] = NULL;
    char *err = NULL;
    int rc = fixture_run((char *const *)argv, NULL, &err);
    if (rc != 0 && why) snprintf(why, whylen, "ip %s %s: %s", args[0], args[1] ? args[1] : "", err ? err : "");
    free(err);
    return rc == 0 ? 0 : -1;
}

int netns_link_create(netns_link *l, char *why, size_t whylen) {
    memset(l, 0, sizeof *l);
    if (geteuid() != 0 || access(IP_BIN, X_OK) != 0) {
        snprintf(why, whylen, "needs root and %s", IP_BIN);
        return -1;
    }
    unsigned p = (unsigned)getpid();
    char far_dev[16], near_cidr[24], far_cidr[24];
    snprintf(l->ns, sizeof l->ns, "pa-faults-%u", p);
    snprintf(l->near_dev, sizeof l->near_dev, "pfa%u", p % 10000000u);
    snprintf(far_dev, sizeof far_dev, "pfb%u", p % 10000000u);
    unsigned b = 100 + (p >> 14) % 100, c = (p >> 6) & 0xff, d = (p & 0x3f) << 2;
    snprintf(l->near_ip, sizeof l->near_ip, "10.%u.%u.%u", b, c, d + 1);
    snprintf(l->far_ip, sizeof l->far_ip, "10.%u.%u.%u", b, c, d + 2);
    snprintf(near_cidr, sizeof near_cidr, "%s/30", l->near_ip);
    snprintf(far_cidr, sizeof far_cidr, "%s/30", l->far_ip);
    if (ip(why, whylen, (const char *[]){"netns", "add", l->ns, NULL}) != 0) return -1;
    l->created = 1;
    const char *const *steps[] = {
        (const char *[]){"link", "add", l->near_dev, "type", "veth", "peer", "name", far_dev, NULL},
        (const char *[]){"link", "set", far_dev, "netns", l->ns, NULL},
        (const char *[]){"addr", "add", near_cidr, "dev", l->near_dev, NULL},
        (const char *[]){"link", "set", l->near_dev, "up", NULL},
        (const char *[]){"-n", l->ns, "addr", "add", far_cidr, "dev", far_dev, NULL},
        (const char *[]){"-n", l->ns, "link", "set", far_dev, "up", NULL},
        (const char *[]){"-n", l->ns, "link", "set", "lo", "up", NULL},
    };
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
        if (ip(why, whylen, steps[i]) != 0) return -1;
    return 0;
}

int netns_link_set_down(netns_link *l, int down) {
    char why[256];
    int rc = ip(why, sizeof why, (const char *[]){"link", "set", l->near_dev, down ? "down" : "up", NULL});
    if (rc != 0) fprintf(stderr, "netns_link: %s\n", why);
    return rc;
}

void netns_link_destroy(netns_link *l) {
    if (!l->created) return;
    ip(NULL, 0, (const char *[]){"link", "del", l->near_dev, NULL}); /* gone already if the namespace took it */
    ip(NULL, 0, (const char *[]){"netns", "del", l->ns, NULL});
    l->created = 0;
}

void netns_link_exec_prefix(netns_link *l, const char *out[4]) {
    out[0] = IP_BIN;
    out[1] = "netns";
    out[2] = "exec";
    out[3] = l->ns;
}
