/* errbuf.h -- the one way library calls report a failure: a message
 * formatted into the caller's err/errlen buffer, and -1.
 *
 * Every layer (keystore, runtime, daemons) takes `char *err, size_t errlen`
 * so a caller decides where the text goes; this helper keeps the
 * "format, then return -1" step in one place. It lives in its own tiny
 * library (pa_util) so pa_keystore can use it without linking the runtime. */
#ifndef PA_ERRBUF_H
#define PA_ERRBUF_H

#include <stddef.h>

/* Formats into err (when err is non-NULL and errlen > 0, truncating) and
 * returns -1, so a failing path reads `return err_set(err, errlen, ...)`. */
int err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
