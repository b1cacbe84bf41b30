/* route_match.c -- which route answers a request (route_match.h). The
 * table is short (tens of routes) and each match is a walk over two short
 * strings, so a linear scan is all it needs. */
#include "route_match.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int route_match(const char *pattern, const char *path, char *values, const char *params[ROUTE_MAX_PARAMS]) {
    int n = 0;
    const char *p = pattern, *s = path;
    char *w = values;
    while (*p == '/' && *s == '/') {
        p++, s++;
        size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
        if (plen > 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (slen == 0 || n == ROUTE_MAX_PARAMS) return -1;
            memcpy(w, s, slen);
            w[slen] = '\0';
            params[n++] = w;
            w += slen + 1;
        } else if (plen != slen || strncmp(p, s, plen) != 0) {
            return -1;
        }
        p += plen, s += slen;
        if (!*p && !*s) return n;
    }
    return -1;
}

const http_route *route_find(const http_route *routes, size_t n, const char *method, const char *path, char *values,
                             const char *params[ROUTE_MAX_PARAMS], char *allow, size_t allow_len) {
    allow[0] = '\0';
    const http_route *best = NULL;
    int best_n = ROUTE_MAX_PARAMS + 1;
    for (size_t i = 0; i < n; i++) {
        const char *ignored[ROUTE_MAX_PARAMS];
        bool same = strcmp(routes[i].method, method) == 0;
        int np = route_match(routes[i].pattern, path, values, ignored);
        if (np < 0 || (same && np >= best_n)) continue;
        if (same) {
            best = &routes[i], best_n = np;
            continue;
        }
        size_t l = strlen(allow);
        if (!strstr(allow, routes[i].method))
            snprintf(allow + l, allow_len - l, "%s%s", l ? ", " : "", routes[i].method);
    }
    if (best) (void)route_match(best->pattern, path, values, params);
    return best;
}
