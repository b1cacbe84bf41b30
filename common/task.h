/* task.h -- a background task: one thread that loops until asked to stop,
 * and sleeps in a way a stop request cuts short.
 *
 * Every daemon loop (the outbox forwarder, the revocation puller, the audit
 * queue workers) is one of these, so "stop" means the same everywhere: the
 * flag is set, a sleeping loop wakes at once, the owner joins the thread.
 *
 *   static void loop(task *t, void *arg) {
 *       while (!task_stopping(t)) {
 *           do_one_round(arg);
 *           task_sleep(t, 500);         // returns early on task_stop
 *       }
 *   }
 *   task *t = task_start("puller", loop, arg, err, sizeof err);
 *   ...
 *   task_stop(t);                       // request, wake, join, free
 *
 * A loop that must finish work after the request (a flush with a deadline)
 * reads task_stopping and decides itself; task_stop waits for it. */
#ifndef PA_TASK_H
#define PA_TASK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct task task;

typedef void (*task_fn)(task *t, void *arg);

/* Starts `fn(t, arg)` in its own thread. NULL with a message in err. */
task *task_start(const char *name, task_fn fn, void *arg, char *err, size_t errlen);

/* True once task_request_stop or task_stop was called. */
bool task_stopping(task *t);

/* Sleeps up to `ms`; returns false when woken (or already) stopping. */
bool task_sleep(task *t, int ms);

/* Asks the loop to stop and wakes it; does not wait. Safe to call twice. */
void task_request_stop(task *t);

/* task_request_stop, then waits for the loop to return and frees `t`.
 * NULL is ignored. */
void task_stop(task *t);

#endif
