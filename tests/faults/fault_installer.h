/* fault_installer.h -- installers under fault: threads that run the client
 * library (client/activate.h) on fake machines against a server list, one
 * fresh key per call, and count who answered.
 *
 * Its own file because the client library and the activation server's
 * headers (act_env.h) both name a `signed_license`: a test program
 * includes this header and act_env.h, never the client's headers. */
#ifndef TEST_FAULT_INSTALLER_H
#define TEST_FAULT_INSTALLER_H

#include <pthread.h>
#include <stddef.h>

/* A key as text with its NUL: PK_TEXT_LEN + 1 (keycodec.h), PA_KEY_TEXT_LEN + 1 (activate.h). */
enum { FAULT_KEY_SIZE = 30 };

typedef struct fault_installer {
    const char *const *servers;          /* targets "host:port", tried in order */
    size_t n_servers;                    /* entries in servers */
    const char *pem;                     /* the vendor's public key (PEM text) */
    char root[300], state[300];          /* this installer's fake machine and state directory */
    const char (*keys)[FAULT_KEY_SIZE];  /* its fresh keys (canonical text) */
    unsigned n_keys;                     /* how many */
    volatile int *stop;                  /* set when the test is done */
    unsigned ok_first, ok_other, failed; /* answers: OK by servers[0], OK by another, failures */
    char failure[300];                   /* the first failure's message */
    pthread_t thread;                    /* running between start and join */
} fault_installer;

/* Makes the fake machine `name` under `dir` (root and state paths). */
void fault_installer_machine(fault_installer *in, const char *dir, const char *name, unsigned n);
/* Starts the thread; returns 0 or -1. */
int fault_installer_start(fault_installer *in);
void fault_installer_join(fault_installer *in);

#endif
