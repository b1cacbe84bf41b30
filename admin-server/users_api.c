/* users_api.c -- the accounts routes (users_api.h). Each change is trailed
 * with its result, refusals included. */
#include "users_api.h"

#include <stdlib.h>
#include <string.h>

#include "user_store.h"

static int status_of(user_result res) {
    switch (res) {
    case USER_OK: return 200;
    case USER_BAD: return 400;
    case USER_EXISTS: return 409;
    case USER_NOT_FOUND: return 404;
    default: return 503;
    }
}

static json_t *user_json(const user_record *u) {
    return json_pack("{s:s,s:s,s:I}", "name", u->name, "role", user_role_name(u->role), "created_at",
                     (json_int_t)u->created_at);
}

/* Answers a change: the account on success, else the error. */
static void reply(const http_request *rq, const char *name, user_result res, const char *err, int ok_status) {
    if (res != USER_OK) {
        http_reply_error(rq, status_of(res), "%s", err);
        return;
    }
    user_record u;
    char e2[160];
    if (ok_status == 204 || user_get(rq->redis, name, &u, e2, sizeof e2) != USER_OK) {
        http_reply_json(rq, 200, json_object());
        return;
    }
    http_reply_json(rq, ok_status, user_json(&u));
}

/* Trails the change with its result, then answers it. */
static void finish(const http_request *rq, const char *action, const char *name, user_result res, const char *err,
                   int ok_status) {
    http_trail(rq, action, name, res == USER_OK ? "ok" : err);
    reply(rq, name, res, err, ok_status);
}

void users_list(const http_request *rq) {
    if (!http_query_only(rq, NULL)) return;
    user_record *list;
    size_t n;
    char err[160];
    if (user_list(rq->redis, &list, &n, err, sizeof err) != USER_OK) {
        http_reply_error(rq, 503, "%s", err);
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(items, user_json(&list[i]));
    free(list);
    http_reply_json(rq, 200, json_pack("{s:o}", "items", items));
}

static const char *string_field(const http_request *rq, json_t *body, const char *name, bool required, bool *ok) {
    json_t *v = json_object_get(body, name);
    if (!v && !required) return NULL;
    if (json_is_string(v)) return json_string_value(v);
    if (*ok) http_reply_error(rq, 400, "field \"%s\": expected a string", name);
    *ok = false;
    return NULL;
}

void users_create(const http_request *rq) {
    static const char *const fields[] = {"name", "role", "password", NULL};
    json_t *b = http_body_json(rq, fields);
    if (!b) return;
    bool ok = true;
    const char *name = string_field(rq, b, "name", true, &ok);
    const char *role = string_field(rq, b, "role", true, &ok);
    const char *password = string_field(rq, b, "password", true, &ok);
    if (ok) {
        char err[160] = "";
        user_result res = user_add(rq->redis, rq->app, name, role, password, err, sizeof err);
        finish(rq, "user.add", name, res, err, 201);
    }
    json_decref(b);
}

static bool is_self(const http_request *rq, const char *name) { return rq->user && strcmp(name, rq->user) == 0; }

void users_update(const http_request *rq) {
    static const char *const fields[] = {"role", "password", NULL};
    const char *name = rq->params[0];
    json_t *b = http_body_json(rq, fields);
    if (!b) return;
    bool ok = true;
    const char *role = string_field(rq, b, "role", false, &ok);
    const char *password = string_field(rq, b, "password", false, &ok);
    char err[160] = "";
    user_result res = USER_OK;
    if (!ok) {
    } else if (!role && !password) {
        http_reply_error(rq, 400, "fields \"role\", \"password\": give one or both");
    } else if (role && user_role_parse(role) == ROLE_NONE) {
        http_reply_error(rq, 400, "field \"role\": viewer, operator or admin"); /* before the password changes */
    } else if (role && is_self(rq, name) && user_role_parse(role) != ROLE_ADMIN) {
        finish(rq, "user.role", name, USER_EXISTS, "role: you cannot demote your own account", 200);
    } else {
        if (password) res = user_set_password(rq->redis, rq->app, name, password, err, sizeof err);
        if (password) http_trail(rq, "user.passwd", name, res == USER_OK ? "ok" : err);
        if (role && res == USER_OK) {
            res = user_set_role(rq->redis, name, role, err, sizeof err);
            http_trail(rq, "user.role", name, res == USER_OK ? "ok" : err);
        }
        reply(rq, name, res, err, 200);
    }
    json_decref(b);
}

void users_remove(const http_request *rq) {
    const char *name = rq->params[0];
    char err[160] = "";
    if (is_self(rq, name)) {
        http_trail(rq, "user.remove", name, "refused: own account");
        http_reply_error(rq, 409, "you cannot remove your own account");
        return;
    }
    user_result res = user_remove(rq->redis, name, err, sizeof err);
    finish(rq, "user.remove", name, res, err, 204);
}
