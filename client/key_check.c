/* key_check.c -- the local check of a typed product key, with messages that
 * help the user retype it.
 *
 * The codec (keystore/keycodec.c) says *what* is wrong; this file turns that
 * into advice about *where* to look. Users read keys off stickers in groups
 * of five, so every hint names a group: the group holding a bad character,
 * the group that is too short, or -- for a checksum mismatch -- the groups in
 * which changing or swapping one character would make the key add up. That
 * last hint is a search (25 positions x 24 letters, plus 24 adjacent swaps:
 * about 600 decodes, well under a millisecond) and it is phrased as a
 * likelihood, because a 10-bit checksum also lets about one in a thousand
 * wrong guesses pass.
 *
 * A key that fails here is never sent to a server (docs/key-format.md, "Error classes"). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "activate.h"
#include "keycodec.h"

static const char ALPHABET[] = "BCDFGHJKMPQRTVWXY2346789";

static int group_of(int position) { return position > 0 ? (position - 1) / 5 + 1 : 0; }

/* Records what is wrong, the group to look at, and the words for the user. */
static void set_problem(pa_key_problem *p, const char *reason, int group, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_problem(pa_key_problem *p, const char *reason, int group, const char *fmt, ...) {
    p->reason = reason;
    p->group = group;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof p->message, fmt, ap);
    va_end(ap);
}

/* When the text has four hyphens, the first group whose length is not five. */
static int short_or_long_group(const char *text, int *len_out) {
    int parts = 0, bad = 0, len = 0;
    for (const char *s = text;; s++) {
        if (*s == '-' || *s == '\0') {
            parts++;
            if (len != 5 && !bad) { bad = parts; *len_out = len; }
            len = 0;
            if (*s == '\0') break;
        } else if (!isspace((unsigned char)*s)) {
            len++;
        }
    }
    return parts == 5 ? bad : 0;
}

/* Does the 25-character text (no hyphens) pass decoding with its checksum? */
static bool adds_up(const char text[PK_CHARS]) {
    pk_fields f;
    return pk_decode(text, PK_CHARS, &f, NULL) == PK_OK;
}

/* Bit g set (1..5) when one changed or swapped character in group g makes
 * the key add up. */
static unsigned groups_that_explain_checksum(const char *canonical) {
    char plain[PK_CHARS];
    size_t k = 0;
    for (const char *s = canonical; *s && k < PK_CHARS; s++)
        if (*s != '-') plain[k++] = *s;
    unsigned mask = 0;
    for (int i = 0; i < PK_CHARS; i++) {
        char was = plain[i];
        if (was == 'N') continue;  /* moving the N is covered by swaps */
        for (const char *a = ALPHABET; *a; a++) {
            if (*a == was) continue;
            plain[i] = *a;
            if (adds_up(plain)) mask |= 1u << group_of(i + 1);
        }
        plain[i] = was;
    }
    for (int i = 0; i + 1 < PK_CHARS; i++) {
        if (plain[i] == plain[i + 1]) continue;
        char t = plain[i];
        plain[i] = plain[i + 1];
        plain[i + 1] = t;
        if (adds_up(plain)) mask |= 1u << group_of(i + 1) | 1u << group_of(i + 2);
        plain[i + 1] = plain[i];
        plain[i] = t;
    }
    return mask;
}

static void describe_checksum(const char *canonical, pa_key_problem *p) {
    unsigned mask = groups_that_explain_checksum(canonical);
    int groups[5], n = 0;
    for (int g = 1; g <= 5; g++)
        if (mask & (1u << g)) groups[n++] = g;
    if (n == 0) {
        set_problem(p, "checksum", 0,
                    "this key does not add up (checksum mismatch); more than one character seems "
                    "mistyped, so please check every group");
        return;
    }
    char list[64] = "";
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        const char *sep = i == 0 ? "" : (i == n - 1 ? " or " : ", ");
        int w = snprintf(list + used, sizeof list - used, "%s%d", sep, groups[i]);
        if (w < 0 || (size_t)w >= sizeof list - used) break;
        used += (size_t)w;
    }
    set_problem(p, "checksum", n == 1 ? groups[0] : 0,
                "this key does not add up (checksum mismatch); most likely a character in group "
                "%s is mistyped",
                list);
}

static void describe_character(const pk_error *e, pa_key_problem *p) {
    int g = group_of(e->position);
    int in_group = e->position > 0 ? (e->position - 1) % 5 + 1 : 0;
    unsigned char ch = (unsigned char)e->character;
    if (isgraph(ch))
        set_problem(p, "character", g,
                    "'%c' (group %d, character %d) is not used in product keys; keys contain no "
                    "A, E, I, L, O, S, U, Z, 0, 1 or 5",
                    ch, g, in_group);
    else
        set_problem(p, "character", g,
                    "group %d, character %d is not a letter or digit of a product key", g,
                    in_group);
}

/* A wrong number of characters: name the group of the wrong length when the
 * hyphens show where the groups are. */
static void describe_length(const char *text, const pk_error *e, pa_key_problem *p) {
    int bad_len = 0;
    int g = short_or_long_group(text, &bad_len);
    if (g)
        set_problem(p, "length", g,
                    "a product key has five groups of five characters; group %d has %d", g,
                    bad_len);
    else
        set_problem(p, "length", 0,
                    "a product key has 25 characters (five groups of five); this one has %zu",
                    e->length);
}

/* The advice for a decode failure `st`. PA_ERR_KEY, or PA_ERR_INTERNAL when
 * a key that decoded this far cannot be normalised. */
static pa_err describe_problem(const char *text, pk_status st, const pk_error *e,
                               pa_key_problem *p) {
    char norm[PK_TEXT_LEN + 1];
    switch (st) {
    case PK_ERR_EMPTY: set_problem(p, "empty", 0, "no product key was entered"); break;
    case PK_ERR_LENGTH: describe_length(text, e, p); break;
    case PK_ERR_HYPHEN:
        set_problem(p, "hyphen", group_of(e->position),
                    "hyphens belong only between the groups of five characters");
        break;
    case PK_ERR_CHAR: describe_character(e, p); break;
    case PK_ERR_LEGACY:
        set_problem(p, "legacy", 0,
                    "this is an older-format key (it has no letter N) that this product does not "
                    "accept; please check that it is the key that came with this product");
        break;
    case PK_ERR_MULTIPLE_N:
        set_problem(p, "multiple_n", group_of(e->position),
                    "a product key holds the letter N only once; check group %d",
                    group_of(e->position));
        break;
    case PK_ERR_N_LAST:
        set_problem(p, "n_last", 5,
                    "the letter N is never the last character of a key; check group 5");
        break;
    case PK_ERR_RANGE:
        set_problem(p, "range", 0, "this is not a valid product key; please check every group");
        break;
    case PK_ERR_CHECKSUM:
        if (pk_normalize(text, strlen(text), norm, NULL) != PK_OK) return PA_ERR_INTERNAL;
        describe_checksum(norm, p);
        break;
    default: {
        char why[sizeof p->message];
        set_problem(p, pk_status_name(st), 0, "%s", pk_strerror(e, why, sizeof why));
        break;
    }
    }
    return PA_ERR_KEY;
}

pa_err pa_key_check(const char *text, char canonical[PA_KEY_TEXT_LEN + 1], pa_key_problem *problem) {
    pa_key_problem scratch;
    pa_key_problem *p = problem ? problem : &scratch;
    memset(p, 0, sizeof *p);
    p->reason = "ok";
    if (canonical) canonical[0] = '\0';
    if (!text) text = "";

    pk_fields f;
    pk_error e;
    pk_status st = pk_decode(text, strlen(text), &f, &e);
    if (st != PK_OK) return describe_problem(text, st, &e, p);
    if (canonical && pk_normalize(text, strlen(text), canonical, NULL) != PK_OK)
        return PA_ERR_INTERNAL;
    return PA_OK;
}
