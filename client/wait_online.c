/* wait_online.c -- waiting for the network at boot (docs/machines.md,
 * "Activation at boot").
 *
 * At boot, network-online.target means an interface is up, not that DNS
 * answers or the activation server is reachable: a VPN, a DHCP lease or the
 * server itself may come later. So `activate --wait-online SECONDS` asks
 * until a server can be reached -- discovery and a connection, both tried
 * again each time -- with a back-off that starts short (a server coming up
 * is found within a fraction of a second) and grows to a few seconds (so a
 * machine that stays offline does not spin), and gives up when the time is
 * up. The wait is measured on the monotonic clock: a clock set by NTP while
 * we wait must not cut it short or stretch it. */
#include <time.h>

#include "client_internal.h"
#include "clock.h"

#define WAIT_FIRST_MS 250 /* the first pause between two attempts */
#define WAIT_MAX_MS 5000  /* the longest one */

static void pause_ms(int64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

pa_err pa_wait_online(pa_client *c, int timeout_s) {
    c->error[0] = '\0';
    int64_t start = pa_mono_ms(), deadline = start + (int64_t)(timeout_s > 0 ? timeout_s : 0) * 1000;
    int64_t delay = WAIT_FIRST_MS;
    for (;;) {
        pa_err e = client_reach(c);
        if (e != PA_ERR_UNAVAILABLE) return e; /* reached, or a configuration no wait can mend */
        int64_t now = pa_mono_ms();
        if (now >= deadline) {
            char last[sizeof c->error];
            snprintf(last, sizeof last, "%s", c->error);
            return client_fail(c, PA_ERR_UNAVAILABLE, "no activation server was reachable within %d s; last try: %s",
                               timeout_s, last);
        }
        pause_ms(delay < deadline - now ? delay : deadline - now);
        delay = delay * 2 < WAIT_MAX_MS ? delay * 2 : WAIT_MAX_MS;
    }
}
