/* sentinel_fixture.c -- private Redis Sentinels for tests.
 *
 * Design: the sentinel configuration is the deployment template
 * (docker/redis/sentinel.conf.in) with test values, rendered by the same
 * code as the data nodes' files (fixture_render), so a test exercises the
 * settings operators use. A sentinel is ready when its port accepts; it
 * finds the replicas and the other sentinels by itself within a second or
 * two, which a test waits for through what it really needs (e.g. the
 * replica count in SENTINEL REPLICAS), not here. */
#include "sentinel_fixture.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"

static int launch(sentinel_fixture *s, const char *master, int master_port, const sentinel_timing *t) {
    char in[1024], conf[512], log[512], out[512], port[16], mport[16], quorum[16], down[16], fo[16];
    snprintf(conf, sizeof conf, "%s/sentinel.conf", s->dir);
    snprintf(log, sizeof log, "%s/sentinel.log", s->dir);
    snprintf(out, sizeof out, "%s/sentinel.stdout", s->dir);
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(mport, sizeof mport, "%d", master_port);
    snprintf(quorum, sizeof quorum, "%d", t->quorum);
    snprintf(down, sizeof down, "%d", t->down_after_ms);
    snprintf(fo, sizeof fo, "%d", t->failover_timeout_ms);
    const char *subst[] = {"@PORT@",
                           port,
                           "@DIR@",
                           s->dir,
                           "@LOGFILE@",
                           log,
                           "@MASTER_NAME@",
                           master,
                           "@MASTER_HOST@",
                           "127.0.0.1",
                           "@MASTER_PORT@",
                           mport,
                           "@QUORUM@",
                           quorum,
                           "@DOWN_AFTER_MS@",
                           down,
                           "@FAILOVER_TIMEOUT_MS@",
                           fo,
                           "@SENTINEL_PASSWORD@",
                           FIXTURE_PW_SENTINEL,
                           "@SENTINEL_REQUIREPASS@",
                           FIXTURE_PW_SENTINELS,
                           NULL};
    snprintf(in, sizeof in, "%s/docker/redis/sentinel.conf.in", fixture_source_dir());
    if (fixture_render(in, conf, 1, subst) != 0) return -1;
    char *argv[] = {"/usr/bin/redis-server", conf, "--sentinel", NULL};
    s->pid = fixture_spawn(argv, out, s->port, 10000);
    return s->pid > 0 ? 0 : -1;
}

int sentinel_fixture_start(sentinel_fixture *s, const char *master, int master_port, const sentinel_timing *t) {
    memset(s, 0, sizeof *s);
    s->pid = -1;
    if (fixture_tmpdir(s->dir, sizeof s->dir, "sentinel") != 0) return -1;
    for (int attempt = 0; attempt < 5; attempt++) { /* a probed port can be taken before we bind it */
        if ((s->port = fixture_free_port()) < 0) break;
        if (launch(s, master, master_port, t) == 0) return 0;
    }
    fprintf(stderr, "sentinel_fixture: no sentinel started; see %s\n", s->dir);
    return -1;
}

void sentinel_fixture_stop(sentinel_fixture *s) {
    if (s->pid > 0) fixture_stop(s->pid, SIGTERM, 5000);
    s->pid = -1;
    fixture_rmtree(s->dir);
    s->dir[0] = '\0';
}

void sentinel_fixture_url(const sentinel_fixture *s, size_t n, const char *user, const char *password,
                          const char *master, char *buf, size_t buflen) {
    size_t o = (size_t)snprintf(buf, buflen, "redis-sentinel://%s:%s@", user, password);
    for (size_t i = 0; i < n && o < buflen; i++)
        o += (size_t)snprintf(buf + o, buflen - o, "%s127.0.0.1:%d", i ? "," : "", s[i].port);
    if (o < buflen) snprintf(buf + o, buflen - o, "/%s", master);
}
