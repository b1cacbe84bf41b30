/* fault_audit.c -- the audit server of the fault tests (see fault_audit.h). */
#include "fault_audit.h"

#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"

/* Waits until ip:port accepts TCP connections (from this namespace); 0 or -1. */
static int wait_listening(const char *ip, int port, int timeout_ms) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) return -1;
    for (double t0 = pa_mono_ms(); pa_mono_ms() - t0 < timeout_ms; usleep(20 * 1000)) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0) close(fd);
        if (ok) return 0;
    }
    return -1;
}

pid_t fault_audit_start(act_env *e, const char *const *prefix, const char *listen_ip, const char *redis_ip,
                        char target[64]) {
    char listen[64], url[256], cert[340], key[340], ca[340], log[300];
    int port = fixture_free_port();
    snprintf(listen, sizeof listen, "%s:%d", listen_ip, port);
    snprintf(url, sizeof url, "redis://audit:%s@%s:%d", FIXTURE_PW_AUDIT, redis_ip, e->b.port);
    snprintf(cert, sizeof cert, "%s/audit-server.pem", e->certs);
    snprintf(key, sizeof key, "%s/audit-server.key", e->certs);
    snprintf(ca, sizeof ca, "%s/ca.pem", e->certs);
    snprintf(log, sizeof log, "%s/audit-server.log", e->dir);
    const char *rest[] = {fixture_bin("audit-server/audit-server"),
                          "--listen",
                          listen,
                          "--redis-url",
                          url,
                          "--kek",
                          e->kek_b,
                          "--tls-cert",
                          cert,
                          "--tls-key",
                          key,
                          "--tls-client-ca",
                          ca,
                          "--metrics-listen",
                          "off",
                          "--workers",
                          "2",
                          "--consumer",
                          "fault-audit",
                          "--log-level",
                          "info",
                          NULL};
    const char *argv[32];
    size_t n = 0;
    for (; prefix && n < 4; n++) argv[n] = prefix[n];
    for (size_t i = 0; rest[i]; i++) argv[n++] = rest[i];
    argv[n] = NULL;
    pid_t pid = fixture_spawn((char *const *)argv, log, 0, 0);
    if (pid < 0) return -1;
    if (wait_listening(listen_ip, port, 15000) != 0) {
        fprintf(stderr, "fault_audit: the audit server did not listen on %s; see %s\n", listen, log);
        fixture_stop(pid, SIGKILL, 1000);
        return -1;
    }
    snprintf(target, 64, "%s", listen);
    return pid;
}

void fault_audit_flags(act_env *e, const char *target, const char *const *more, const char **out, size_t cap) {
    const char *const *audit = env_audit_flags(e, target);
    size_t n = 0;
    for (size_t i = 0; audit[i] && n + 1 < cap; i++) out[n++] = audit[i];
    const char *name[] = {"--audit-server-name", "localhost"};
    for (size_t i = 0; i < 2 && n + 1 < cap; i++) out[n++] = name[i];
    for (size_t i = 0; more && more[i] && n + 1 < cap; i++) out[n++] = more[i];
    out[n] = NULL;
}
