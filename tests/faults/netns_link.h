/* netns_link.h -- a network namespace joined to this one by a veth pair,
 * for tests that cut the network between two daemons and heal it again.
 *
 * The far side (the namespace) gets FAR_IP, this side NEAR_IP, a /30
 * chosen from the test's pid so parallel runs do not meet. A partition
 * takes this side's link down: packets to the far side have no route and
 * the far side loses its carrier; healing brings it up again. Needs root
 * and `ip` (iproute2); netns_link_create says why it could not. */
#ifndef TEST_NETNS_LINK_H
#define TEST_NETNS_LINK_H

#include <stddef.h>

typedef struct netns_link {
    char ns[32];       /* namespace name (ip netns) */
    char near_dev[16]; /* veth end in this namespace */
    char near_ip[16];  /* its address */
    char far_ip[16];   /* the address inside the namespace */
    int created;       /* 1 once the namespace exists (destroy removes it) */
} netns_link;

/* Creates the namespace and the link; 0, or -1 with the reason in why. */
int netns_link_create(netns_link *l, char *why, size_t whylen);
/* Cuts (down = 1) or heals (down = 0) the link; 0 or -1. */
int netns_link_set_down(netns_link *l, int down);
/* Removes the namespace (and with it the veth pair). */
void netns_link_destroy(netns_link *l);
/* The argv prefix that runs a program inside the namespace:
 * {"/usr/sbin/ip", "netns", "exec", ns}. */
void netns_link_exec_prefix(netns_link *l, const char *out[4]);

#endif
