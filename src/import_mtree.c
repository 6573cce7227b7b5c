/* SPDX-License-Identifier: MIT */
/*
 * Import of QEMU's `info mtree -D` text (with or without -o), optionally
 * helped by `info mtree -f` text of the same machine.
 *
 * The tree text prints every region reachable from an address space, then
 * one "memory-region:" block per alias target, in the order the printer
 * first met an alias to it (docs/model.md 9.2, the oracle's FORMAT.md).  It
 * loses: container versus terminating I/O region, size 0 versus 1, an
 * alias's own read-only flag, which of several same-named regions an alias
 * targets, and the creation order of address spaces.  The reconstruction:
 *
 *  1. parse lines into printed nodes (one per line), blocks and levels;
 *  2. identity: a "memory-region:" block shows a region that may also be
 *     printed elsewhere; it is merged with a node printed elsewhere whose
 *     whole printed subtree is identical (same signature), else it is a
 *     region of its own;
 *  3. alias targets: replaying the printer's queue, the k-th
 *     "memory-region:" block is the k-th distinct target met; each alias
 *     either queues a new target or names one already queued; owners (-o),
 *     the window fitting in the target and the type settle most choices,
 *     else the earliest possible new target is taken (always consistent);
 *  4. guesses: an "i/o" region with children is a container, without
 *     children a terminating I/O region; "X-X" is size 0 for an alias and
 *     1 otherwise; aliases are not read-only; address spaces are created
 *     in text order;
 *  5. with the flat text: the address-space order is taken from it, then
 *     the description is built, its flat views compared with the text, and
 *     the guesses that explain each difference are flipped one at a time
 *     while that lowers the number of differing lines.
 *
 * Plain `info mtree` text (without -D) hides disabled regions and prints
 * their children one level too high; it is detected (a line two levels
 * below its predecessor, a block starting below level 1) and refused.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "topology_internal.h"

#define NONE MS__TOPO_NONE

enum ty { TY_RAM, TY_ROM, TY_ROMD, TY_RAMD, TY_IO };
static const char *const ty_names[] = {"ram", "rom", "romd", "ramd", "i/o"};

struct node {
    unsigned line;
    unsigned level;
    uint64_t start, last;
    int32_t prio;
    bool nv;
    enum ty ty;
    bool alias;
    bool disabled;
    char *name;
    char *target; /* alias target name */
    char *owner;  /* owner label, NULL if none */
    uint64_t aoff, alast;
    const char *body; /* raw body (points into the text copy) */
    size_t body_len;
    size_t block;
    size_t parent;
    size_t *kids;
    size_t nr_kids, cap_kids;
    uint64_t sig;
    size_t uf;   /* union-find parent */
    size_t slot; /* alias: index of the memory-region block targeted */
    bool guess_target;
    size_t cls; /* region index */
};

struct block {
    bool is_as;
    char **as_names;
    size_t nr_as;
    char *mr_name;
    size_t first, nr; /* node range */
    unsigned line;
};

struct imp {
    const char *file;
    struct ms_topology_error *err;
    struct node *n;
    size_t nr, cap;
    struct block *b;
    size_t nr_b, cap_b;
    size_t *mr_blocks; /* block index of the k-th memory-region block */
    size_t nr_mr;
    bool owners;
    /* Per region (description index): what is ambiguous. */
    unsigned char *ambig;
};

/* Limits of the search against the flat text (see the caller). */
#define MAX_SEARCH_REGIONS 20000
#define MAX_SEARCH_AS 4096
#define MAX_SETTLE 4000

#define AMB_TERM 1u
#define AMB_SIZE 2u
#define AMB_RO 4u

static int ierr(struct imp *I, unsigned line, unsigned col, const char *fmt,
                ...) MS__PRINTF(4, 5);

static int ierr(struct imp *I, unsigned line, unsigned col, const char *fmt,
                ...)
{
    char rule[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rule, sizeof(rule), fmt, ap);
    va_end(ap);
    ms__topo_err(I->err, -EINVAL, I->file, line, col, "", "%s", rule);
    return -EINVAL;
}

/* ---- lexing ------------------------------------------------------------ */

struct lines {
    const char *p, *end;
    unsigned no;
};

/* Next line without its terminator (LF, CRLF); false at the end. */
static bool next_line(struct lines *L, const char **s, size_t *len)
{
    if (L->p >= L->end) {
        return false;
    }
    const char *nl = memchr(L->p, '\n', (size_t)(L->end - L->p));
    const char *e = nl ? nl : L->end;
    *s = L->p;
    *len = (size_t)(e - L->p);
    if (*len && (*s)[*len - 1] == '\r') {
        (*len)--;
    }
    L->p = nl ? nl + 1 : L->end;
    L->no++;
    return true;
}

static bool starts(const char *s, size_t len, const char *pre)
{
    size_t n = strlen(pre);
    return len >= n && memcmp(s, pre, n) == 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static bool hex16(const char *s, size_t len, size_t at, uint64_t *out)
{
    if (at + 16 > len) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < 16; i++) {
        int d = hexval(s[at + i]);
        if (d < 0) {
            return false;
        }
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return true;
}

/*
 * "START-LAST (prio P, [nv-]TYPE): " at @at; advances @at past it.
 * Returns 0 or the 1-based column of the problem.
 */
/* Column (1-based) of the first non-hex digit of a HEX16 at @at. */
static unsigned bad_hex_col(const char *s, size_t len, size_t at)
{
    size_t i = at;
    while (i < len && i < at + 16 && hexval(s[i]) >= 0) {
        i++;
    }
    return (unsigned)i + 1;
}

static unsigned parse_head(const char *s, size_t len, size_t *at,
                           uint64_t *start, uint64_t *last, int32_t *prio,
                           bool *nv, enum ty *ty)
{
    size_t i = *at;
    if (!hex16(s, len, i, start)) {
        return bad_hex_col(s, len, i);
    }
    i += 16;
    if (i >= len || s[i] != '-') {
        return (unsigned)i + 1;
    }
    i++;
    if (!hex16(s, len, i, last)) {
        return bad_hex_col(s, len, i);
    }
    i += 16;
    if (!starts(s + i, len - i, " (prio ")) {
        return (unsigned)i + 1;
    }
    i += 7;
    bool neg = false;
    if (i < len && s[i] == '-') {
        neg = true;
        i++;
    }
    int64_t v = 0;
    size_t digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 12) {
        v = v * 10 + (s[i] - '0');
        i++;
        digits++;
    }
    v = neg ? -v : v;
    if (!digits || v < INT32_MIN || v > INT32_MAX) {
        return (unsigned)i + 1;
    }
    *prio = (int32_t)v;
    if (!starts(s + i, len - i, ", ")) {
        return (unsigned)i + 1;
    }
    i += 2;
    *nv = starts(s + i, len - i, "nv-");
    if (*nv) {
        i += 3;
    }
    size_t k;
    for (k = 0; k < 5; k++) {
        size_t tl = strlen(ty_names[k]);
        if (starts(s + i, len - i, ty_names[k]) && i + tl < len &&
            s[i + tl] == ')') {
            i += tl;
            break;
        }
    }
    if (k == 5) {
        return (unsigned)i + 1;
    }
    *ty = (enum ty)k;
    if (!starts(s + i, len - i, "): ")) {
        return (unsigned)i + 1;
    }
    *at = i + 3;
    return 0;
}

/* Does s[0..len) read "owner:{...}[ parent:{...}]" or "parent:{...}"? */
static bool owner_grammar(const char *s, size_t len)
{
    size_t i = 0;
    bool any = false;
    static const char *const labels[] = {"owner:{", "parent:{"};
    for (int k = 0; k < 2; k++) {
        if (any) {
            if (i == len) {
                break;
            }
            if (s[i] != ' ') {
                return false;
            }
            if (!starts(s + i + 1, len - i - 1, labels[k])) {
                continue;
            }
            i++;
        }
        if (!starts(s + i, len - i, labels[k])) {
            continue;
        }
        i += strlen(labels[k]);
        const char *close = memchr(s + i, '}', len - i);
        if (!close) {
            return false;
        }
        i = (size_t)(close - s) + 1;
        any = true;
    }
    return any && i == len;
}

/* Length of the owner suffix (with its leading space) of a body, or 0. */
static size_t owner_suffix(const char *s, size_t len)
{
    if (len >= 7 && memcmp(s + len - 7, " orphan", 7) == 0) {
        return 7;
    }
    if (!len || s[len - 1] != '}') {
        return 0;
    }
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] == ' ' && owner_grammar(s + i + 1, len - i - 1)) {
            return len - i;
        }
    }
    return 0;
}

/* ---- parsing the tree text --------------------------------------------- */

static int add_node(struct imp *I, size_t *idx)
{
    if (I->nr == I->cap) {
        size_t ncap = I->cap ? I->cap * 2 : 256;
        struct node *nn = realloc(I->n, ncap * sizeof(*nn));
        if (!nn) {
            return -ENOMEM;
        }
        I->n = nn;
        I->cap = ncap;
    }
    if (I->nr >= MS__TOPO_MAX_REGIONS) {
        return ierr(I, 0, 0, "more than %u region lines", MS__TOPO_MAX_REGIONS);
    }
    memset(&I->n[I->nr], 0, sizeof(I->n[0]));
    *idx = I->nr++;
    return 0;
}

static int add_block(struct imp *I, bool is_as, unsigned line)
{
    if (I->nr_b == I->cap_b) {
        size_t ncap = I->cap_b ? I->cap_b * 2 : 32;
        struct block *nb = realloc(I->b, ncap * sizeof(*nb));
        if (!nb) {
            return -ENOMEM;
        }
        I->b = nb;
        I->cap_b = ncap;
    }
    struct block *b = &I->b[I->nr_b++];
    memset(b, 0, sizeof(*b));
    b->is_as = is_as;
    b->first = I->nr;
    b->line = line;
    return 0;
}

static int block_add_as(struct block *b, const char *s, size_t len)
{
    char **na = realloc(b->as_names, (b->nr_as + 1) * sizeof(*na));
    if (!na) {
        return -ENOMEM;
    }
    b->as_names = na;
    na[b->nr_as] = ms__topo_strndup(s, len);
    if (!na[b->nr_as]) {
        return -ENOMEM;
    }
    b->nr_as++;
    return 0;
}

/* Text QEMU can print: no control characters, valid UTF-8 (names go
 * into JSON, which is UTF-8). */
static bool printable(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len; i++) {
        if (u[i] < 0x20 && u[i] != '\t') {
            return false;
        }
        if (u[i] < 0x80) {
            continue;
        }
        size_t n = u[i] >= 0xf0 && u[i] <= 0xf4   ? 4
                   : u[i] >= 0xe0 && u[i] <= 0xef ? 3
                   : u[i] >= 0xc2 && u[i] <= 0xdf ? 2
                                                  : 0;
        if (n == 0 || i + n > len) {
            return false;
        }
        for (size_t k = 1; k < n; k++) {
            if ((u[i + k] & 0xc0) != 0x80) {
                return false;
            }
        }
        /* No overlong forms, surrogates or values past U+10FFFF. */
        if ((n == 3 && u[i] == 0xe0 && u[i + 1] < 0xa0) ||
            (n == 3 && u[i] == 0xed && u[i + 1] >= 0xa0) ||
            (n == 4 && u[i] == 0xf0 && u[i + 1] < 0x90) ||
            (n == 4 && u[i] == 0xf4 && u[i + 1] >= 0x90)) {
            return false;
        }
        i += n - 1;
    }
    return true;
}

/* Pass 1: blocks, levels, head fields; bodies kept raw. */
static int parse_tree(struct imp *I, const char *text, size_t len)
{
    struct lines L = {.p = text, .end = text + len};
    const char *s;
    size_t l;
    int state = 0; /* 0 between blocks, 1 header(s) read, 2 in lines */
    size_t stack[MS__TOPO_MAX_DEPTH + 2];
    int rc;
    while (next_line(&L, &s, &l)) {
        if (!printable(s, l)) {
            return ierr(I, L.no, 0,
                        "not `info mtree` text (control characters, "
                        "invalid UTF-8 or binary data)");
        }
        if (l == 0) {
            if (state == 1) {
                struct block *b = &I->b[I->nr_b - 1];
                b->nr = 0; /* a block without regions (empty root) */
            }
            state = 0;
            continue;
        }
        if (starts(s, l, "FlatView #")) {
            return ierr(I, L.no, 1,
                        "this is `info mtree -f` output (flat views); the "
                        "tree text of `info mtree -D` is needed here");
        }
        if (starts(s, l, "address-space: ")) {
            if (state == 2) {
                return ierr(I, L.no, 1,
                            "a new block starts without the empty line that "
                            "ends the previous one");
            }
            if (state == 0 && (rc = add_block(I, true, L.no))) {
                return rc;
            }
            if (!I->b[I->nr_b - 1].is_as) {
                return ierr(I, L.no, 1, "unexpected \"address-space:\"");
            }
            if (l == 15) {
                return ierr(I, L.no, 16, "address space without a name");
            }
            if ((rc = block_add_as(&I->b[I->nr_b - 1], s + 15, l - 15))) {
                return rc;
            }
            state = 1;
            continue;
        }
        if (starts(s, l, "memory-region: ")) {
            if (state != 0) {
                return ierr(I, L.no, 1,
                            "a new block starts without the empty line that "
                            "ends the previous one");
            }
            if ((rc = add_block(I, false, L.no))) {
                return rc;
            }
            struct block *b = &I->b[I->nr_b - 1];
            b->mr_name = ms__topo_strndup(s + 15, l - 15);
            if (!b->mr_name) {
                return -ENOMEM;
            }
            if (l == 15) {
                return ierr(I, L.no, 16, "memory region without a name");
            }
            state = 1;
            continue;
        }
        if (state == 0) {
            if (I->nr_b == 0) {
                return ierr(I, L.no, 1,
                            "not `info mtree` text: expected "
                            "\"address-space: NAME\"");
            }
            return ierr(I, L.no, 1,
                        "expected \"address-space:\", \"memory-region:\" "
                        "or an empty line");
        }
        /* A region line. */
        size_t at = 0;
        bool overflow = false;
        if (starts(s, l, "[DETECTED OVERFLOW!] ")) {
            at = 21;
            overflow = true;
        }
        size_t sp = 0;
        while (at + sp < l && s[at + sp] == ' ') {
            sp++;
        }
        if (sp < 2 || sp % 2) {
            return ierr(I, L.no, (unsigned)(at + sp + 1),
                        "not a region line (indentation of %zu spaces)", sp);
        }
        (void)overflow;
        unsigned level = (unsigned)(sp / 2);
        at += sp;
        size_t idx = 0;
        if ((rc = add_node(I, &idx))) {
            return rc;
        }
        struct node *n = &I->n[idx];
        n->line = L.no;
        n->level = level;
        n->block = I->nr_b - 1;
        n->parent = NONE;
        n->slot = NONE;
        n->uf = idx;
        unsigned col = parse_head(s, l, &at, &n->start, &n->last, &n->prio,
                                  &n->nv, &n->ty);
        if (col) {
            return ierr(I, L.no, col,
                        "not a region line (expected \"START-LAST (prio P, "
                        "TYPE): NAME\")");
        }
        if (at >= l) {
            return ierr(I, L.no, (unsigned)at + 1, "region without a name");
        }
        n->body = s + at;
        n->body_len = l - at;
        /* Parent from the level; a jump of more than one level means a
         * hidden (disabled) parent: plain `info mtree` text. */
        struct block *b = &I->b[I->nr_b - 1];
        size_t depth_prev = idx > b->first ? I->n[idx - 1].level : 0;
        if (state == 1) {
            b->first = idx;
            depth_prev = 0;
        }
        if (level > depth_prev + 1) {
            return ierr(I, L.no, (unsigned)(sp + 1),
                        "a region %u levels below the previous line: this "
                        "looks like `info mtree` without -D (a disabled "
                        "region's line is missing); use `info mtree -D` "
                        "(or -o -D)",
                        level - (unsigned)depth_prev);
        }
        if (level > MS__TOPO_MAX_DEPTH) {
            return ierr(I, L.no, 1, "regions nested more than %d levels",
                        MS__TOPO_MAX_DEPTH);
        }
        stack[level] = idx;
        n->parent = level > 1 ? stack[level - 1] : NONE;
        b->nr = idx - b->first + 1;
        state = 2;
    }
    if (I->nr_b == 0) {
        return ierr(I, L.no ? L.no : 1, 0,
                    "no \"address-space:\" block: empty or not `info "
                    "mtree` text");
    }
    for (size_t k = 0; k < I->nr_b; k++) {
        if (I->b[k].nr == 0) {
            return ierr(I, I->b[k].line, 1,
                        "block without any region line (truncated text?)");
        }
    }
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_mr_name(char **sorted, size_t n, const char *s, size_t len)
{
    char *tmp = ms__topo_strndup(s, len);
    if (!tmp) {
        return false;
    }
    bool found = bsearch(&tmp, sorted, n, sizeof(*sorted), name_cmp) != NULL;
    free(tmp);
    return found;
}

/* Pass 2: owners, [disabled], names and alias bodies. */
static int parse_bodies(struct imp *I)
{
    char **names = malloc((I->nr_b ? I->nr_b : 1) * sizeof(*names));
    if (!names) {
        return -ENOMEM;
    }
    size_t nn = 0;
    for (size_t k = 0; k < I->nr_b; k++) {
        if (!I->b[k].is_as) {
            names[nn++] = I->b[k].mr_name;
        }
    }
    qsort(names, nn, sizeof(*names), name_cmp);
    size_t with_owner = 0;
    for (size_t i = 0; i < I->nr; i++) {
        with_owner += owner_suffix(I->n[i].body, I->n[i].body_len) > 0;
    }
    I->owners = I->nr > 0 && with_owner == I->nr;
    int rc = 0;
    for (size_t i = 0; i < I->nr && !rc; i++) {
        struct node *n = &I->n[i];
        const char *s = n->body;
        size_t len = n->body_len;
        if (I->owners) {
            size_t ol = owner_suffix(s, len);
            if (ol != 7 || memcmp(s + len - 7, " orphan", 7) != 0) {
                n->owner = ms__topo_strndup(s + len - ol + 1, ol - 1);
                if (!n->owner) {
                    rc = -ENOMEM;
                    break;
                }
            }
            len -= ol;
        }
        if (len >= 11 && memcmp(s + len - 11, " [disabled]", 11) == 0) {
            n->disabled = true;
            len -= 11;
        }
        if (len >= 6 + 3 + 34 && starts(s, len, "alias ") &&
            s[len - 34] == ' ' && s[len - 17] == '-' &&
            hex16(s, len, len - 33, &n->aoff) &&
            hex16(s, len, len - 16, &n->alast)) {
            n->alias = true;
            const char *mid = s + 6;
            size_t ml = len - 6 - 34;
            size_t split = NONE, any = NONE;
            for (size_t k = ml; k-- > 1;) {
                if (mid[k - 1] == ' ' && mid[k] == '@') {
                    if (any == NONE) {
                        any = k - 1;
                    }
                    if (is_mr_name(names, nn, mid + k + 1, ml - k - 1)) {
                        split = k - 1;
                        break;
                    }
                }
            }
            if (any == NONE || any == 0) {
                rc = ierr(I, n->line, 0, "alias line without \"NAME @TARGET\"");
                break;
            }
            if (split == NONE || split == 0) {
                rc = ierr(I, n->line, 0,
                          "alias target \"%.*s\" has no \"memory-region:\" "
                          "block (truncated text?)",
                          (int)(ml - any - 2), mid + any + 2);
                break;
            }
            n->name = ms__topo_strndup(mid, split);
            n->target = ms__topo_strndup(mid + split + 2, ml - split - 2);
            if (!n->name || !n->target) {
                rc = -ENOMEM;
                break;
            }
            /* The window is as long as the region. */
            if (n->alast - n->aoff != n->last - n->start) {
                rc = ierr(I, n->line, 0,
                          "alias window and region have different sizes");
                break;
            }
        } else {
            if (len == 0) {
                rc = ierr(I, n->line, 0, "region without a name");
                break;
            }
            n->name = ms__topo_strndup(s, len);
            if (!n->name) {
                rc = -ENOMEM;
            }
        }
    }
    free(names);
    return rc;
}

/* ---- identity ---------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static uint64_t mix_str(uint64_t h, const char *s)
{
    if (!s) {
        return mix(h, 0x5bd1e995);
    }
    for (; *s; s++) {
        h = mix(h, (unsigned char)*s);
    }
    return mix(h, 0xff);
}

static uint64_t node_addr(const struct imp *I, const struct node *n)
{
    return n->parent == NONE ? n->start : n->start - I->n[n->parent].start;
}

static int build_kids(struct imp *I)
{
    for (size_t i = 0; i < I->nr; i++) {
        size_t p = I->n[i].parent;
        if (p == NONE) {
            continue;
        }
        struct node *pn = &I->n[p];
        if (pn->nr_kids == pn->cap_kids) {
            size_t ncap = pn->cap_kids ? pn->cap_kids * 2 : 4;
            size_t *nk = realloc(pn->kids, ncap * sizeof(*nk));
            if (!nk) {
                return -ENOMEM;
            }
            pn->kids = nk;
            pn->cap_kids = ncap;
        }
        pn->kids[pn->nr_kids++] = i;
    }
    /* Children follow their parents, so a reverse sweep is bottom-up. */
    for (size_t i = I->nr; i-- > 0;) {
        struct node *n = &I->n[i];
        uint64_t h = 0x12345;
        h = mix(h, node_addr(I, n));
        h = mix(h, n->last - n->start);
        h = mix(h, (uint64_t)(int64_t)n->prio);
        h = mix(h, (uint64_t)n->nv << 8 | (uint64_t)n->ty << 1 | n->alias);
        h = mix(h, n->disabled);
        h = mix_str(h, n->name);
        h = mix_str(h, n->target);
        h = mix(h, n->aoff);
        h = mix_str(h, n->owner);
        for (size_t k = 0; k < n->nr_kids; k++) {
            h = mix(h, I->n[n->kids[k]].sig);
        }
        n->sig = mix(h, n->nr_kids);
    }
    return 0;
}

static size_t uf_find(struct imp *I, size_t x)
{
    while (I->n[x].uf != x) {
        I->n[x].uf = I->n[I->n[x].uf].uf;
        x = I->n[x].uf;
    }
    return x;
}

/* Union two printed subtrees of the same shape, node by node. */
static int uf_union_tree(struct imp *I, size_t a, size_t b)
{
    size_t cap = 64, sp = 0;
    size_t *st = malloc(cap * 2 * sizeof(*st));
    if (!st) {
        return -ENOMEM;
    }
    st[sp * 2] = a;
    st[sp * 2 + 1] = b;
    sp++;
    while (sp) {
        sp--;
        size_t x = st[sp * 2], y = st[sp * 2 + 1];
        size_t rx = uf_find(I, x), ry = uf_find(I, y);
        if (rx != ry) {
            /* The earlier line stays the representative. */
            if (rx < ry) {
                I->n[ry].uf = rx;
            } else {
                I->n[rx].uf = ry;
            }
        }
        size_t nk = I->n[x].nr_kids;
        if (nk != I->n[y].nr_kids) {
            continue;
        }
        if (sp + nk > cap) {
            cap = (sp + nk) * 2;
            size_t *ns = realloc(st, cap * 2 * sizeof(*st));
            if (!ns) {
                free(st);
                return -ENOMEM;
            }
            st = ns;
        }
        for (size_t k = 0; k < nk; k++) {
            st[sp * 2] = I->n[x].kids[k];
            st[sp * 2 + 1] = I->n[y].kids[k];
            sp++;
        }
    }
    free(st);
    return 0;
}

struct sigent {
    uint64_t sig;
    size_t node;
};

static int sigent_cmp(const void *a, const void *b)
{
    const struct sigent *x = a, *y = b;
    if (x->sig != y->sig) {
        return x->sig < y->sig ? -1 : 1;
    }
    return x->node < y->node ? -1 : (x->node > y->node);
}

static bool is_ancestor(const struct imp *I, size_t anc, size_t x)
{
    for (size_t p = I->n[x].parent; p != NONE; p = I->n[p].parent) {
        if (p == anc) {
            return true;
        }
    }
    return false;
}

static int merge_mr_blocks(struct imp *I)
{
    struct sigent *se = malloc((I->nr ? I->nr : 1) * sizeof(*se));
    bool *claimed = calloc(I->nr ? I->nr : 1, sizeof(*claimed));
    bool *mr_root = calloc(I->nr ? I->nr : 1, sizeof(*mr_root));
    if (!se || !claimed || !mr_root) {
        free(se);
        free(claimed);
        free(mr_root);
        return -ENOMEM;
    }
    for (size_t k = 0; k < I->nr_b; k++) {
        if (!I->b[k].is_as) {
            mr_root[I->b[k].first] = true;
        }
    }
    size_t ns = 0;
    for (size_t i = 0; i < I->nr; i++) {
        if (!mr_root[i]) {
            se[ns].sig = I->n[i].sig;
            se[ns].node = i;
            ns++;
        }
    }
    qsort(se, ns, sizeof(*se), sigent_cmp);
    int rc = 0;
    for (size_t k = 0; k < I->nr_b && !rc; k++) {
        if (I->b[k].is_as) {
            continue;
        }
        size_t root = I->b[k].first;
        struct sigent key = {.sig = I->n[root].sig, .node = 0};
        size_t lo = 0, hi = ns;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (sigent_cmp(&se[mid], &key) < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        for (; lo < ns && se[lo].sig == key.sig; lo++) {
            size_t c = se[lo].node;
            if (claimed[c] || is_ancestor(I, root, c)) {
                continue;
            }
            claimed[c] = true;
            rc = uf_union_tree(I, root, c);
            break;
        }
    }
    free(se);
    free(claimed);
    free(mr_root);
    return rc;
}

/* ---- alias targets: replay the printer's queue -------------------------- */

static uint64_t node_size(const struct node *n, bool zero)
{
    if (n->start == n->last) {
        return zero ? 0 : 1;
    }
    uint64_t s = n->last - n->start + 1;
    return s == 0 ? MS_SIZE_FULL : s;
}

/* Can alias node @a target the root of memory-region block @k? */
static bool target_ok(const struct imp *I, const struct node *a, size_t k)
{
    const struct node *t = &I->n[I->b[I->mr_blocks[k]].first];
    if (strcmp(t->name, a->target) != 0 || t->ty != a->ty) {
        return false;
    }
    uint64_t tsize = node_size(t, false);
    return ms__window_fits(a->aoff, node_size(a, true), tsize);
}

struct mrname {
    const char *name;
    size_t k; /* index among memory-region blocks */
};

static int mrname_cmp(const void *x, const void *y)
{
    const struct mrname *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    return c ? c : (a->k > b->k) - (a->k < b->k);
}

static int bind_targets(struct imp *I)
{
    size_t *opts = malloc((I->nr_mr + 1) * sizeof(*opts));
    struct mrname *byname = malloc((I->nr_mr + 1) * sizeof(*byname));
    if (!opts || !byname) {
        free(opts);
        free(byname);
        return -ENOMEM;
    }
    for (size_t k = 0; k < I->nr_mr; k++) {
        byname[k].name = I->b[I->mr_blocks[k]].mr_name;
        byname[k].k = k;
    }
    qsort(byname, I->nr_mr, sizeof(*byname), mrname_cmp);
    size_t q = 0;
    int rc = 0;
    for (size_t i = 0; i < I->nr && !rc; i++) {
        struct node *a = &I->n[i];
        if (!a->alias) {
            continue;
        }
        size_t no = 0;
        bool new_ok = q < I->nr_mr && target_ok(I, a, q);
        if (new_ok) {
            opts[no++] = q;
        }
        /* Blocks already queued with that name (sorted by name, then k). */
        struct mrname key = {.name = a->target, .k = 0};
        size_t lo = 0, hi = I->nr_mr;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (mrname_cmp(&byname[mid], &key) < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        for (; lo < I->nr_mr && byname[lo].k < q &&
               strcmp(byname[lo].name, a->target) == 0;
             lo++) {
            if (target_ok(I, a, byname[lo].k)) {
                opts[no++] = byname[lo].k;
            }
        }
        if (no == 0) {
            rc = ierr(I, a->line, 0,
                      "alias \"%s\" names target \"%s\", but no "
                      "\"memory-region:\" block fits it at this point of "
                      "the text (type, size or order)",
                      a->name, a->target);
            break;
        }
        if (no > 1 && I->owners && a->owner) {
            /* Keep the options owned like the alias, if any is. */
            size_t keep = 0;
            for (size_t k = 0; k < no; k++) {
                const struct node *t = &I->n[I->b[I->mr_blocks[opts[k]]].first];
                if (t->owner && strcmp(t->owner, a->owner) == 0) {
                    opts[keep++] = opts[k];
                }
            }
            if (keep) {
                no = keep;
            }
        }
        /* The earliest new target is always consistent (see the header);
         * otherwise the earliest queued one. */
        size_t pick = opts[0];
        for (size_t k = 1; k < no; k++) {
            if (opts[k] == q || (pick != q && opts[k] < pick)) {
                pick = opts[k];
            }
        }
        a->slot = pick;
        a->guess_target = no > 1;
        if (a->slot == q) {
            q++;
        }
    }
    free(opts);
    free(byname);
    if (!rc && q != I->nr_mr) {
        rc = ierr(I, I->b[I->mr_blocks[q < I->nr_mr ? q : 0]].line, 1,
                  "\"memory-region: %s\" is not the target of any alias "
                  "before it (plain `info mtree` without -D, or text from "
                  "several runs?)",
                  I->b[I->mr_blocks[q < I->nr_mr ? q : 0]].mr_name);
    }
    return rc;
}

/* ---- building the description ------------------------------------------ */

struct kidord {
    size_t node;
    int32_t prio;
    uint64_t addr;
};

/* Addition order: priority ascending, address ascending, and for equal
 * both the reverse of the printed order (the printed order is the list
 * order, newest first). */
static int kid_cmp(const void *a, const void *b)
{
    const struct kidord *x = a, *y = b;
    if (x->prio != y->prio) {
        return x->prio < y->prio ? -1 : 1;
    }
    if (x->addr != y->addr) {
        return x->addr < y->addr ? -1 : 1;
    }
    return x->node > y->node ? -1 : (x->node < y->node);
}

/* "dev id=br0" / "dev path=/machine/x" -> "br0" / "/machine/x". */
static void owner_label(const char *owner, char *buf, size_t size)
{
    buf[0] = 0;
    if (!owner) {
        return;
    }
    const char *o = strstr(owner, "owner:{");
    if (!o) {
        return;
    }
    const char *eq = strchr(o, '=');
    const char *close = strchr(o, '}');
    if (eq && close && eq < close) {
        snprintf(buf, size, "%.*s", (int)(close - eq - 1), eq + 1);
    }
}

/* Sort keys for set_ids(); the topology is passed through a static-free
 * wrapper array. */
struct idkey {
    const struct ms__treg *r;
    size_t idx;
    size_t pos; /* processing position */
};

static int str_or_null_cmp(const char *a, const char *b)
{
    if (!a || !b) {
        return (a != NULL) - (b != NULL);
    }
    return strcmp(a, b);
}

static int by_name(const void *x, const void *y)
{
    const struct idkey *a = x, *b = y;
    int c = strcmp(a->r->name, b->r->name);
    return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

static int by_name_owner(const void *x, const void *y)
{
    const struct idkey *a = x, *b = y;
    int c = strcmp(a->r->name, b->r->name);
    c = c ? c : str_or_null_cmp(a->r->owner, b->r->owner);
    return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

static int by_name_parent(const void *x, const void *y)
{
    const struct idkey *a = x, *b = y;
    int c = strcmp(a->r->name, b->r->name);
    if (!c && a->r->container != b->r->container) {
        c = a->r->container < b->r->container ? -1 : 1;
    }
    return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

static int by_id_pos(const void *x, const void *y)
{
    const struct idkey *a = x, *b = y;
    int c = strcmp(a->r->id, b->r->id);
    return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

/* For each region, how many regions share its key under @cmp. */
static void count_groups(struct idkey *k, size_t n,
                         int (*cmp)(const void *, const void *), size_t *count)
{
    qsort(k, n, sizeof(*k), cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n) {
            /* Equal keys: compare without the index tie-break. */
            struct idkey a = k[i], b = k[j];
            a.idx = b.idx = 0;
            if (cmp(&a, &b) != 0) {
                break;
            }
            j++;
        }
        for (size_t m = i; m < j; m++) {
            count[k[m].idx] = j - i;
        }
        i = j;
    }
}

/*
 * A set of ids (borrowed strings) for set_ids(): open addressing with
 * room for @max entries at most half full.
 */
struct idset {
    size_t cap;
    const char *slot[];
};

static struct idset *idset_new(size_t max)
{
    size_t cap = 16;
    while (cap < 2 * max) {
        cap *= 2;
    }
    struct idset *s = calloc(1, sizeof(*s) + cap * sizeof(s->slot[0]));
    if (s) {
        s->cap = cap;
    }
    return s;
}

/* The slot holding @id, or the empty one where it would go. */
static const char **idset_slot(struct idset *s, const char *id)
{
    size_t h = (size_t)ms__topo_hash(id) & (s->cap - 1);
    while (s->slot[h] && strcmp(s->slot[h], id) != 0) {
        h = (h + 1) & (s->cap - 1);
    }
    return &s->slot[h];
}

static bool idset_has(struct idset *s, const char *id)
{
    return *idset_slot(s, id) != NULL;
}

static void idset_add(struct idset *s, const char *id)
{
    *idset_slot(s, id) = id;
}

/*
 * "@base#N" (malloc()ed) for the first N from *@next up that is not in @s;
 * added to @s, *@next past it.  NULL: no memory.
 */
static char *idset_number(struct idset *s, const char *base, size_t *next)
{
    size_t cap = strlen(base) + 24; /* "#" and a number */
    char *id = malloc(cap);
    if (!id) {
        return NULL;
    }
    do {
        snprintf(id, cap, "%s#%zu", base, (*next)++);
    } while (idset_has(s, id));
    idset_add(s, id);
    return id;
}

/*
 * Ids: the name where it is unique, else name@owner, else
 * container-id/name, else "#2", "#3"... in tree order.  Linearithmic, so
 * that huge imports stay fast.
 */
static int set_ids(ms_topology *t)
{
    size_t n = t->nr;
    int rc = 0;
    struct idset *idset = NULL;
    size_t *order = malloc((n ? n : 1) * sizeof(*order));
    struct idkey *k = malloc((n ? n : 1) * sizeof(*k));
    size_t *c_name = malloc((n ? n : 1) * sizeof(size_t));
    size_t *c_owner = malloc((n ? n : 1) * sizeof(size_t));
    size_t *c_parent = malloc((n ? n : 1) * sizeof(size_t));
    size_t *pos = malloc((n ? n : 1) * sizeof(size_t));
    if (!order || !k || !c_name || !c_owner || !c_parent || !pos) {
        rc = -ENOMEM;
        goto out;
    }
    /* Parents first: walk in an order where containers precede. */
    size_t no = 0;
    for (size_t i = 0; i < n; i++) {
        if (t->r[i].container == NONE) {
            order[no++] = i;
        }
    }
    for (size_t q = 0; q < no; q++) {
        for (size_t j = 0; j < t->r[order[q]].nr_subs; j++) {
            order[no++] = t->r[order[q]].subs[j];
        }
    }
    for (size_t q = 0; q < no; q++) {
        pos[order[q]] = q;
    }
    for (size_t i = 0; i < n; i++) {
        k[i] = (struct idkey){&t->r[i], i, pos[i]};
    }
    count_groups(k, n, by_name, c_name);
    count_groups(k, n, by_name_owner, c_owner);
    count_groups(k, n, by_name_parent, c_parent);
    for (size_t q = 0; q < no && !rc; q++) {
        size_t i = order[q];
        struct ms__treg *r = &t->r[i];
        char buf[1024], lab[256];
        owner_label(r->owner, lab, sizeof(lab));
        if (c_name[i] == 1) {
            snprintf(buf, sizeof(buf), "%s", r->name);
        } else if (c_owner[i] == 1 && lab[0]) {
            snprintf(buf, sizeof(buf), "%s@%s", r->name, lab);
        } else if (c_parent[i] == 1 && r->container != NONE) {
            snprintf(buf, sizeof(buf), "%s/%s", t->r[r->container].id, r->name);
        } else {
            snprintf(buf, sizeof(buf), "%s", r->name);
        }
        r->id = ms__topo_strdup(buf);
        if (!r->id) {
            rc = -ENOMEM;
        }
    }
    if (rc) {
        goto out;
    }
    /*
     * Still equal ids get "#2", "#3"... in tree order, skipping any number
     * another id already is ("r#2" named so beside two "r").
     */
    for (size_t i = 0; i < n; i++) {
        k[i] = (struct idkey){&t->r[i], i, pos[i]};
    }
    qsort(k, n, sizeof(*k), by_id_pos);
    idset = idset_new(2 * n);
    if (!idset) {
        rc = -ENOMEM;
        goto out;
    }
    /* The first of equal ids keeps its string: the others are freed. */
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(k[i].r->id, k[i - 1].r->id) != 0) {
            idset_add(idset, k[i].r->id);
        }
    }
    for (size_t i = 0; i < n && !rc;) {
        size_t j = i + 1;
        while (j < n && strcmp(k[j].r->id, k[i].r->id) == 0) {
            j++;
        }
        size_t num = 2;
        for (size_t m = i + 1; m < j && !rc; m++) {
            char *nid = idset_number(idset, k[i].r->id, &num);
            if (!nid) {
                rc = -ENOMEM;
                break;
            }
            free(t->r[k[m].idx].id);
            t->r[k[m].idx].id = nid;
        }
        i = j;
    }
out:
    free(idset);
    free(order);
    free(k);
    free(c_name);
    free(c_owner);
    free(c_parent);
    free(pos);
    return rc;
}

/*
 * Address-space ids, in order: an address space's name for the first one
 * of that name, else "name#N", N its rank among those of that name, or
 * the next N free if that is another address space's name ("x#2" named in
 * the text, beside two "x") or an earlier id.
 */
static int as_ids(ms_topology *t)
{
    size_t n = t->nr_as;
    struct idset *taken = idset_new(2 * n);
    bool *first = calloc(n ? n : 1, sizeof(*first));
    int rc = taken && first ? 0 : -ENOMEM;
    /* Every name is taken before any number is given. */
    for (size_t o = 0; o < n && !rc; o++) {
        if (!idset_has(taken, t->as[o].name)) {
            idset_add(taken, t->as[o].name);
            first[o] = true;
        }
    }
    for (size_t o = 0; o < n && !rc; o++) {
        size_t num = 2;
        char *nid = first[o] ? ms__topo_strdup(t->as[o].name)
                             : idset_number(taken, t->as[o].name, &num);
        if (!nid) {
            rc = -ENOMEM;
            break;
        }
        free(t->as[o].id);
        t->as[o].id = nid;
    }
    free(first);
    free(taken);
    return rc;
}

static int describe(struct imp *I, ms_topology *t)
{
    int rc = 0;
    size_t *cls_of_rep = malloc((I->nr ? I->nr : 1) * sizeof(size_t));
    if (!cls_of_rep) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < I->nr; i++) {
        cls_of_rep[i] = NONE;
    }
    /* One region per class, in text order of the representative. */
    for (size_t i = 0; i < I->nr && !rc; i++) {
        size_t r = uf_find(I, i);
        if (cls_of_rep[r] == NONE) {
            size_t idx = 0;
            if ((rc = ms__topo_add(t, &idx))) {
                break;
            }
            cls_of_rep[r] = idx;
        }
        I->n[i].cls = cls_of_rep[r];
    }
    free(cls_of_rep);
    if (rc) {
        return rc == -E2BIG ? ierr(I, 0, 0, "too many regions") : rc;
    }
    I->ambig = calloc(t->nr ? t->nr : 1, 1);
    bool *done = calloc(t->nr ? t->nr : 1, sizeof(*done));
    if (!I->ambig || !done) {
        free(done);
        return -ENOMEM;
    }
    for (size_t i = 0; i < I->nr && !rc; i++) {
        struct node *n = &I->n[i];
        struct ms__treg *r = &t->r[n->cls];
        if (n->parent != NONE && r->container == NONE) {
            /* Known container: link (once) in addition order later. */
            r->container = I->n[n->parent].cls;
        }
        if (done[n->cls]) {
            continue;
        }
        done[n->cls] = true;
        char where[32];
        snprintf(where, sizeof(where), "line %u", n->line);
        r->name = ms__topo_strdup(n->name);
        r->owner = ms__topo_strdup(n->owner);
        r->where = ms__topo_strdup(where);
        if (!r->name || (n->owner && !r->owner) || !r->where) {
            rc = -ENOMEM;
            break;
        }
        r->addr = node_addr(I, n);
        r->priority = n->prio;
        r->enabled = !n->disabled;
        r->nonvolatile = n->nv;
        r->size = node_size(n, n->alias);
        if (n->start == n->last) {
            I->ambig[n->cls] |= AMB_SIZE;
        }
        if (n->alias) {
            r->kind = MS_REGION_ALIAS;
            r->alias_offset = n->aoff;
            r->target = I->n[I->b[I->mr_blocks[n->slot]].first].cls;
            if (n->guess_target) {
                r->guessed |= MS_GUESS_TARGET;
            }
            if (n->ty != TY_ROM) {
                I->ambig[n->cls] |= AMB_RO;
            }
            continue;
        }
        switch (n->ty) {
        case TY_RAM:
            r->kind = MS_REGION_RAM;
            break;
        case TY_ROM:
            r->kind = MS_REGION_ROM;
            r->readonly = true;
            break;
        case TY_ROMD:
            r->kind = MS_REGION_ROM_DEVICE;
            r->romd = true;
            break;
        case TY_RAMD:
            r->kind = MS_REGION_RAM_DEVICE;
            break;
        case TY_IO:
            r->kind = n->nr_kids ? MS_REGION_CONTAINER : MS_REGION_IO;
            I->ambig[n->cls] |= AMB_TERM;
            break;
        }
        if (r->kind != MS_REGION_CONTAINER && r->kind != MS_REGION_IO) {
            I->ambig[n->cls] &= (unsigned char)~AMB_SIZE; /* RAM: >= 1 */
        }
    }
    free(done);
    if (rc) {
        return rc;
    }
    /* Subregions in addition order, from each class's first printing. */
    bool *linked = calloc(t->nr ? t->nr : 1, sizeof(*linked));
    size_t *stamp = calloc(t->nr ? t->nr : 1, sizeof(*stamp));
    struct kidord *ko = malloc((I->nr ? I->nr : 1) * sizeof(*ko));
    if (!linked || !ko || !stamp) {
        free(linked);
        free(ko);
        free(stamp);
        return -ENOMEM;
    }
    for (size_t i = 0; i < I->nr && !rc; i++) {
        struct node *n = &I->n[i];
        if (linked[n->cls] || !n->nr_kids) {
            continue;
        }
        linked[n->cls] = true;
        size_t nk = 0;
        for (size_t k = 0; k < n->nr_kids; k++) {
            struct node *c = &I->n[n->kids[k]];
            if (t->r[c->cls].container != n->cls) {
                continue; /* claimed by another container: keep first */
            }
            if (stamp[c->cls] == i + 1) {
                continue; /* printed twice under one parent */
            }
            stamp[c->cls] = i + 1;
            ko[nk].node = n->kids[k];
            ko[nk].prio = c->prio;
            ko[nk].addr = node_addr(I, c);
            nk++;
        }
        qsort(ko, nk, sizeof(*ko), kid_cmp);
        for (size_t k = 0; k < nk && !rc; k++) {
            rc = ms__topo_add_sub(t, n->cls, I->n[ko[k].node].cls);
        }
    }
    free(linked);
    free(ko);
    free(stamp);
    if (rc) {
        return rc;
    }
    if ((rc = set_ids(t))) {
        return rc;
    }
    /* Address spaces, in text order; as_ids() makes their ids unique. */
    for (size_t k = 0; k < I->nr_b && !rc; k++) {
        struct block *b = &I->b[k];
        for (size_t j = 0; b->is_as && j < b->nr_as && !rc; j++) {
            rc = ms__topo_add_as(t, b->as_names[j], b->as_names[j],
                                 I->n[b->first].cls);
        }
    }
    if (!rc) {
        rc = as_ids(t);
    }
    size_t dup;
    if (!rc && (rc = ms__topo_index(t, &dup)) == -EEXIST) {
        rc = ierr(I, 0, 0, "cannot give region \"%s\" a unique id",
                  t->r[dup].id);
    }
    if (!rc) {
        rc = ms__topo_finish(t, I->err, I->file);
    }
    return rc;
}

/* ---- the flat text ------------------------------------------------------ */

struct fblock {
    char **as_lines; /* " AS \"x\", root: y" */
    size_t nr_as;
    char *key;    /* sorted AS lines + root line */
    char **lines; /* range lines, sorted */
    size_t nr_lines, cap_lines;
    bool used;
};

struct flat {
    struct fblock *b;
    size_t nr, cap;
};

static void flat_free(struct flat *f)
{
    for (size_t i = 0; i < f->nr; i++) {
        for (size_t k = 0; k < f->b[i].nr_as; k++) {
            free(f->b[i].as_lines[k]);
        }
        for (size_t k = 0; k < f->b[i].nr_lines; k++) {
            free(f->b[i].lines[k]);
        }
        free(f->b[i].as_lines);
        free(f->b[i].lines);
        free(f->b[i].key);
    }
    free(f->b);
    memset(f, 0, sizeof(*f));
}

static int push_str(char ***arr, size_t *nr, size_t *cap, const char *s,
                    size_t len)
{
    if (*nr == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        char **na = realloc(*arr, ncap * sizeof(*na));
        if (!na) {
            return -ENOMEM;
        }
        *arr = na;
        *cap = ncap;
    }
    (*arr)[*nr] = ms__topo_strndup(s, len);
    if (!(*arr)[*nr]) {
        return -ENOMEM;
    }
    (*nr)++;
    return 0;
}

static int make_key(struct fblock *b, const char *root_line)
{
    char **sorted = malloc((b->nr_as ? b->nr_as : 1) * sizeof(*sorted));
    if (!sorted) {
        return -ENOMEM;
    }
    size_t len = strlen(root_line) + 2;
    for (size_t k = 0; k < b->nr_as; k++) {
        sorted[k] = b->as_lines[k];
        len += strlen(sorted[k]) + 1;
    }
    qsort(sorted, b->nr_as, sizeof(*sorted), name_cmp);
    b->key = malloc(len);
    if (!b->key) {
        free(sorted);
        return -ENOMEM;
    }
    size_t o = 0;
    for (size_t k = 0; k < b->nr_as; k++) {
        size_t l = strlen(sorted[k]);
        memcpy(b->key + o, sorted[k], l);
        o += l;
        b->key[o++] = '\n';
    }
    strcpy(b->key + o, root_line);
    free(sorted);
    return 0;
}

static int parse_flat(struct imp *I, const char *text, size_t len,
                      const char *file, struct flat *f)
{
    struct lines L = {.p = text, .end = text + len};
    const char *s;
    size_t l;
    struct fblock *cur = NULL;
    size_t as_cap = 0;
    int state = 0; /* 0 outside, 1 AS lines, 2 ranges */
    const char *saved = I->file;
    I->file = file;
    int rc = 0;
    while (!rc && next_line(&L, &s, &l)) {
        if (!printable(s, l)) {
            rc = ierr(I, L.no, 0,
                      "not `info mtree -f` text (control "
                      "characters, invalid UTF-8 or binary "
                      "data)");
            break;
        }
        if (l == 0) {
            if (state == 1) {
                rc = ierr(I, L.no, 1,
                          "flat view without \" Root memory "
                          "region:\" line (truncated text?)");
            }
            state = 0;
            cur = NULL;
            continue;
        }
        if (starts(s, l, "FlatView #")) {
            if (state != 0) {
                rc = ierr(I, L.no, 1,
                          "a new flat view starts without an "
                          "empty line");
                break;
            }
            if (f->nr == f->cap) {
                size_t ncap = f->cap ? f->cap * 2 : 16;
                struct fblock *nb = realloc(f->b, ncap * sizeof(*nb));
                if (!nb) {
                    rc = -ENOMEM;
                    break;
                }
                f->b = nb;
                f->cap = ncap;
            }
            cur = &f->b[f->nr++];
            memset(cur, 0, sizeof(*cur));
            as_cap = 0;
            state = 1;
            continue;
        }
        if (state == 0) {
            if (starts(s, l, "address-space: ") ||
                starts(s, l, "memory-region: ")) {
                rc = ierr(I, L.no, 1,
                          "this is tree text (`info mtree`); the flat text "
                          "of `info mtree -f` is needed here");
            } else {
                rc = ierr(I, L.no, 1,
                          "not `info mtree -f` text: expected \"FlatView "
                          "#N\"");
            }
            break;
        }
        if (state == 1 && starts(s, l, " AS \"")) {
            rc = push_str(&cur->as_lines, &cur->nr_as, &as_cap, s, l);
            continue;
        }
        if (state == 1 && starts(s, l, " Root memory region: ")) {
            char *root = ms__topo_strndup(s, l);
            if (!root) {
                rc = -ENOMEM;
                break;
            }
            rc = make_key(cur, root);
            free(root);
            state = 2;
            continue;
        }
        if (state == 2 && starts(s, l, "  No rendered FlatView")) {
            continue;
        }
        if (state == 2 && starts(s, l, "  Dispatch")) {
            state = 3; /* -d dump: ignored up to the empty line */
            continue;
        }
        if (state == 3) {
            continue;
        }
        if (state == 2 && l > 36 && s[0] == ' ' && s[1] == ' ' &&
            s[18] == '-') {
            size_t keep = l;
            while (keep >= 4 && memcmp(s + keep - 4, " KVM", 4) == 0) {
                keep -= 4;
            }
            rc =
                push_str(&cur->lines, &cur->nr_lines, &cur->cap_lines, s, keep);
            continue;
        }
        rc = ierr(I, L.no, 1, "unexpected line in a flat view");
    }
    if (!rc && state == 1) {
        rc = ierr(I, L.no, 0, "truncated flat view");
    }
    for (size_t i = 0; !rc && i < f->nr; i++) {
        if (!f->b[i].key) {
            rc = ierr(I, L.no, 0, "truncated flat view");
            break;
        }
        if (f->b[i].nr_lines > 1) {
            qsort(f->b[i].lines, f->b[i].nr_lines, sizeof(char *), name_cmp);
        }
    }
    if (!rc && f->nr == 0) {
        rc = ierr(I, 1, 0,
                  "no \"FlatView #N\" block: empty or not `info "
                  "mtree -f` text");
    }
    I->file = saved;
    return rc;
}

/* Address-space creation order from the flat text's AS lines. */
static int order_as(ms_topology *t, const struct flat *f)
{
    size_t n = t->nr_as;
    if (n < 2) {
        return 0;
    }
    char **keys = calloc(n, sizeof(*keys));
    unsigned char *before = calloc(n * n, 1);
    size_t *order = malloc(n * sizeof(*order));
    unsigned char *placed = calloc(n, 1);
    int rc = 0;
    if (!keys || !before || !order || !placed) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t a = 0; a < n && !rc; a++) {
        const struct ms__treg *root = &t->r[t->as[a].root];
        size_t len =
            strlen(t->as[a].name) + strlen(root->name) + 64 +
            (root->target != NONE ? strlen(t->r[root->target].name) : 0);
        keys[a] = malloc(len);
        if (!keys[a]) {
            rc = -ENOMEM;
            break;
        }
        if (root->kind == MS_REGION_ALIAS && root->target != NONE) {
            snprintf(keys[a], len, " AS \"%s\", root: %s, alias %s",
                     t->as[a].name, root->name, t->r[root->target].name);
        } else {
            snprintf(keys[a], len, " AS \"%s\", root: %s", t->as[a].name,
                     root->name);
        }
    }
    /*
     * Give each AS line of each block one of our ASes with that key (the
     * first unused, in text order: ASes with equal keys print the same),
     * then require consecutive lines' ASes in that order.
     */
    {
        bool *used = calloc(n, sizeof(*used));
        if (!used) {
            rc = -ENOMEM;
        }
        for (size_t i = 0; used && i < f->nr; i++) {
            const struct fblock *b = &f->b[i];
            size_t prev = NONE;
            for (size_t k = 0; k < b->nr_as; k++) {
                size_t cur = NONE;
                for (size_t a = 0; a < n && cur == NONE; a++) {
                    if (!used[a] && strcmp(keys[a], b->as_lines[k]) == 0) {
                        cur = a;
                    }
                }
                if (cur == NONE) {
                    continue;
                }
                used[cur] = true;
                if (prev != NONE) {
                    before[prev * n + cur] = 1;
                }
                prev = cur;
            }
        }
        free(used);
    }
    for (size_t o = 0; o < n && !rc; o++) {
        size_t pick = n;
        for (size_t c = 0; c < n && pick == n; c++) {
            if (placed[c]) {
                continue;
            }
            bool ready = true;
            for (size_t a = 0; a < n && ready; a++) {
                ready = placed[a] || !before[a * n + c];
            }
            if (ready) {
                pick = c;
            }
        }
        if (pick == n) {
            for (pick = 0; placed[pick]; pick++) {
            }
        }
        placed[pick] = 1;
        order[o] = pick;
    }
    if (!rc) {
        struct ms__tas *na = malloc(n * sizeof(*na));
        if (!na) {
            rc = -ENOMEM;
        } else {
            for (size_t o = 0; o < n; o++) {
                na[o] = t->as[order[o]];
            }
            memcpy(t->as, na, n * sizeof(*na));
            free(na);
            /* Re-number "#N" ids in the new order. */
            rc = as_ids(t);
        }
    }
out:
    if (keys) {
        for (size_t a = 0; a < n; a++) {
            free(keys[a]);
        }
    }
    free(keys);
    free(before);
    free(order);
    free(placed);
    return rc;
}

/* ---- inference against the flat text ------------------------------------ */

struct ramdev {
    void **p;
    uint64_t *len;
    size_t nr, cap;
};

static int prep_ramdev(void *opaque, const struct ms_topology_region *d,
                       struct ms_region_config *cfg)
{
    struct ramdev *rd = opaque;
    if (d->kind != MS_REGION_RAM_DEVICE) {
        return 0;
    }
    if (rd->nr == rd->cap) {
        size_t ncap = rd->cap ? rd->cap * 2 : 8;
        void **np = realloc(rd->p, ncap * sizeof(*np));
        if (!np) {
            return -ENOMEM;
        }
        rd->p = np;
        uint64_t *nl = realloc(rd->len, ncap * sizeof(*nl));
        if (!nl) {
            return -ENOMEM;
        }
        rd->len = nl;
        rd->cap = ncap;
    }
    void *p = mmap(NULL, d->size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return -ENOMEM;
    }
    rd->p[rd->nr] = p;
    rd->len[rd->nr] = d->size;
    rd->nr++;
    cfg->backing = MS_RAM_HOST;
    cfg->host = p;
    return 0;
}

static void ramdev_free(struct ramdev *rd)
{
    for (size_t i = 0; i < rd->nr; i++) {
        munmap(rd->p[i], rd->len[i]);
    }
    free(rd->p);
    free(rd->len);
    memset(rd, 0, sizeof(*rd));
}

/* One line of our own flat view, and where it came from. */
struct oline {
    char *text;
    ms_region *mr;
    ms_as *as;
    uint64_t gpa;
};

struct eval {
    /* Compared in this order: views without partner, bytes rendered
     * differently, differing lines. */
    size_t blocks;
    long double bytes;
    size_t lines;
    /* Differences: our extra lines (gpa = description index of the
     * region), the missing lines' texts, and aliases on the way to
     * addresses whose read-only flag differs. */
    struct oline *extra;
    size_t nr_extra, cap_extra;
    char **missing;
    size_t nr_missing, cap_missing;
    size_t *hints;
    size_t nr_hints, cap_hints;
};

static void eval_free(struct eval *e)
{
    for (size_t i = 0; i < e->nr_extra; i++) {
        free(e->extra[i].text);
    }
    for (size_t i = 0; i < e->nr_missing; i++) {
        free(e->missing[i]);
    }
    free(e->extra);
    free(e->missing);
    free(e->hints);
    memset(e, 0, sizeof(*e));
}

static char *range_line(const struct ms_flat_range *fr)
{
    char buf[160];
    int n = snprintf(
        buf, sizeof(buf),
        "  %016" PRIx64 "-%016" PRIx64 " (prio %" PRId32 ", %s%s): ", fr->gpa,
        fr->last, ms_region_priority(fr->mr), fr->nonvolatile ? "nv-" : "",
        fr->readonly ? "rom" : ms_region_type_name(fr->mr));
    const char *name = ms_region_name(fr->mr);
    size_t len = (size_t)n + strlen(name) + 24;
    char *s = malloc(len);
    if (!s) {
        return NULL;
    }
    if (fr->offset) {
        snprintf(s, len, "%s%s @%016" PRIx64, buf, name, fr->offset);
    } else {
        snprintf(s, len, "%s%s", buf, name);
    }
    return s;
}

struct oblock {
    char *key;
    struct oline *lines;
    size_t nr;
    ms_as *as;
};

static int oline_cmp(const void *a, const void *b)
{
    return strcmp(((const struct oline *)a)->text,
                  ((const struct oline *)b)->text);
}

struct ptrix {
    const void *p;
    size_t i;
};

static int ptrix_cmp(const void *a, const void *b)
{
    const struct ptrix *x = a, *y = b;
    if (x->p != y->p) {
        return (uintptr_t)x->p < (uintptr_t)y->p ? -1 : 1;
    }
    return 0;
}

/* A range line split into numbers and the rest ("(prio P, T): NAME"). */
struct span {
    uint64_t first, last, off;
    const char *attr;
    size_t attr_len;
};

static bool parse_span(const char *s, struct span *sp)
{
    size_t len = strlen(s);
    if (len < 38 || !hex16(s, len, 2, &sp->first) ||
        !hex16(s, len, 19, &sp->last)) {
        return false;
    }
    sp->attr = s + 36;
    sp->attr_len = len - 36;
    sp->off = 0;
    if (sp->attr_len > 18 && s[len - 18] == ' ' && s[len - 17] == '@' &&
        hex16(s, len, len - 16, &sp->off)) {
        sp->attr_len -= 18;
    }
    return true;
}

static bool span_same(const struct span *a, const struct span *b, uint64_t x)
{
    return a->attr_len == b->attr_len &&
           memcmp(a->attr, b->attr, a->attr_len) == 0 &&
           a->off + (x - a->first) == b->off + (x - b->first);
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y);
}

/* Bytes rendered differently by two sorted, disjoint range lists. */
static long double bytes_differ(const struct span *a, size_t na,
                                const struct span *b, size_t nb)
{
    size_t nbd = 0;
    uint64_t *bd = malloc((2 * (na + nb) + 1) * sizeof(*bd));
    if (!bd) {
        return 1e30L;
    }
    for (size_t i = 0; i < na; i++) {
        bd[nbd++] = a[i].first;
        if (a[i].last != UINT64_MAX) {
            bd[nbd++] = a[i].last + 1;
        }
    }
    for (size_t i = 0; i < nb; i++) {
        bd[nbd++] = b[i].first;
        if (b[i].last != UINT64_MAX) {
            bd[nbd++] = b[i].last + 1;
        }
    }
    qsort(bd, nbd, sizeof(*bd), u64_cmp);
    long double bad = 0;
    size_t i = 0, j = 0;
    for (size_t k = 0; k < nbd; k++) {
        if (k && bd[k] == bd[k - 1]) {
            continue;
        }
        uint64_t x = bd[k];
        uint64_t hi = UINT64_MAX;
        for (size_t m = k + 1; m < nbd; m++) {
            if (bd[m] != x) {
                hi = bd[m] - 1;
                break;
            }
        }
        while (i < na && a[i].last < x) {
            i++;
        }
        while (j < nb && b[j].last < x) {
            j++;
        }
        const struct span *sa = i < na && a[i].first <= x ? &a[i] : NULL;
        const struct span *sb = j < nb && b[j].first <= x ? &b[j] : NULL;
        if (!sa && !sb) {
            continue;
        }
        if (sa && sb && span_same(sa, sb, x)) {
            continue;
        }
        bad += (long double)(hi - x) + 1.0L;
    }
    free(bd);
    return bad;
}

static int add_hint(struct eval *e, size_t idx)
{
    for (size_t k = 0; k < e->nr_hints; k++) {
        if (e->hints[k] == idx) {
            return 0;
        }
    }
    if (e->nr_hints == e->cap_hints) {
        size_t n = e->cap_hints ? e->cap_hints * 2 : 16;
        size_t *nh = realloc(e->hints, n * sizeof(*nh));
        if (!nh) {
            return -ENOMEM;
        }
        e->hints = nh;
        e->cap_hints = n;
    }
    e->hints[e->nr_hints++] = idx;
    return 0;
}

/* Aliases on the way to @gpa in @as become read-only candidates. */
static int hint_path(struct eval *e, ms_as *as, uint64_t gpa,
                     const struct ptrix *px, size_t n)
{
    struct ms_explanation *x;
    int rc = ms_explain(as, gpa, &x);
    if (rc) {
        return rc == -ENOMEM ? rc : 0;
    }
    for (size_t k = 0; k < x->nr_steps && !rc; k++) {
        if (!ms_region_alias_target(x->steps[k].region)) {
            continue;
        }
        struct ptrix key = {.p = x->steps[k].region};
        const struct ptrix *hit = bsearch(&key, px, n, sizeof(*px), ptrix_cmp);
        if (hit) {
            rc = add_hint(e, hit->i);
        }
    }
    ms_explanation_free(x);
    return rc;
}

static int diff_block(struct eval *e, const struct oblock *ob,
                      const struct fblock *fb, const struct ptrix *px,
                      size_t npx)
{
    int rc = 0;
    struct span *sa = malloc((ob->nr + 1) * sizeof(*sa));
    struct span *sb = malloc((fb->nr_lines + 1) * sizeof(*sb));
    size_t na = 0, nb = 0;
    if (!sa || !sb) {
        free(sa);
        free(sb);
        return -ENOMEM;
    }
    for (size_t k = 0; k < ob->nr; k++) {
        na += parse_span(ob->lines[k].text, &sa[na]);
    }
    for (size_t k = 0; k < fb->nr_lines; k++) {
        nb += parse_span(fb->lines[k], &sb[nb]);
    }
    e->bytes += bytes_differ(sa, na, sb, nb);
    free(sa);
    free(sb);
    size_t x = 0, y = 0, ny = fb->nr_lines;
    while (!rc && (x < ob->nr || y < ny)) {
        int c = x == ob->nr ? 1
                : y == ny   ? -1
                            : strcmp(ob->lines[x].text, fb->lines[y]);
        if (c == 0) {
            x++;
            y++;
            continue;
        }
        e->lines++;
        const char *text = c < 0 ? ob->lines[x].text : fb->lines[y];
        if (ob->as) {
            uint64_t gpa;
            if (hex16(text, strlen(text), 2, &gpa)) {
                rc = hint_path(e, ob->as, gpa, px, npx);
            }
        }
        if (rc) {
            break;
        }
        if (c < 0) {
            if (e->nr_extra == e->cap_extra) {
                size_t n = e->cap_extra ? e->cap_extra * 2 : 64;
                struct oline *ne = realloc(e->extra, n * sizeof(*ne));
                if (!ne) {
                    return -ENOMEM;
                }
                e->extra = ne;
                e->cap_extra = n;
            }
            struct oline *o = &e->extra[e->nr_extra];
            o->text = ms__topo_strdup(ob->lines[x].text);
            if (!o->text) {
                return -ENOMEM;
            }
            struct ptrix key = {.p = ob->lines[x].mr};
            const struct ptrix *hit =
                bsearch(&key, px, npx, sizeof(*px), ptrix_cmp);
            o->gpa = hit ? hit->i : NONE; /* description index */
            o->mr = NULL;
            o->as = NULL;
            e->nr_extra++;
            x++;
        } else {
            rc = push_str(&e->missing, &e->nr_missing, &e->cap_missing,
                          fb->lines[y], strlen(fb->lines[y]));
            y++;
        }
    }
    return rc;
}

/* Build @t, render, compare with @f. */
static int evaluate(const ms_topology *t, const struct flat *f, struct eval *e)
{
    memset(e, 0, sizeof(*e));
    ms_system *sys;
    int rc = ms_system_new(NULL, &sys);
    if (rc) {
        return rc;
    }
    struct ramdev rd = {0};
    struct ms_topology_build_options opts = {.prepare = prep_ramdev,
                                             .opaque = &rd};
    ms_topology_map *map = NULL;
    rc = ms_topology_build(t, sys, &opts, NULL, &map);
    struct oblock *ob = NULL;
    size_t nob = 0;
    ms_as **as_list = NULL;
    struct ptrix *px = NULL;
    bool *done = NULL, *fused = NULL;
    if (rc) {
        goto out;
    }
    size_t nas = t->nr_as;
    as_list = calloc(nas ? nas : 1, sizeof(*as_list));
    ob = calloc(nas ? nas : 1, sizeof(*ob));
    px = malloc((t->nr ? t->nr : 1) * sizeof(*px));
    done = calloc(nas ? nas : 1, sizeof(*done));
    fused = calloc(f->nr ? f->nr : 1, sizeof(*fused));
    if (!as_list || !ob || !px || !done || !fused) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t r = 0; r < t->nr; r++) {
        px[r].p = ms__topo_map_at(map, r);
        px[r].i = r;
    }
    qsort(px, t->nr, sizeof(*px), ptrix_cmp);
    for (size_t a = 0; a < nas; a++) {
        as_list[a] = ms_topology_map_as(map, t->as[a].id);
    }
    /* Group by view, as `info mtree -f` does. */
    for (size_t a = 0; a < nas && !rc; a++) {
        if (done[a] || !as_list[a]) {
            continue;
        }
        const ms_flatview *fv = ms_as_flatview(as_list[a]);
        struct fblock tmp = {0};
        size_t cap = 0;
        for (size_t b = a; b < nas && !rc; b++) {
            if (done[b] || !as_list[b] || ms_as_flatview(as_list[b]) != fv) {
                continue;
            }
            done[b] = true;
            ms_region *root = ms_as_root(as_list[b]);
            char line[2048];
            if (ms_region_alias_target(root)) {
                snprintf(line, sizeof(line), " AS \"%s\", root: %s, alias %s",
                         ms_as_name(as_list[b]), ms_region_name(root),
                         ms_region_name(ms_region_alias_target(root)));
            } else {
                snprintf(line, sizeof(line), " AS \"%s\", root: %s",
                         ms_as_name(as_list[b]), ms_region_name(root));
            }
            rc = push_str(&tmp.as_lines, &tmp.nr_as, &cap, line, strlen(line));
        }
        ms_region *vr = ms_flatview_root(fv);
        char rl[1100];
        snprintf(rl, sizeof(rl), " Root memory region: %s",
                 vr ? ms_region_name(vr) : "(none)");
        if (!rc) {
            rc = make_key(&tmp, rl);
        }
        for (size_t k = 0; k < tmp.nr_as; k++) {
            free(tmp.as_lines[k]);
        }
        free(tmp.as_lines);
        struct oblock *o = &ob[nob++];
        o->key = tmp.key;
        o->as = as_list[a];
        size_t nr = ms_flatview_nr_ranges(fv);
        o->lines = calloc(nr ? nr : 1, sizeof(*o->lines));
        if (!o->lines) {
            rc = -ENOMEM;
            break;
        }
        for (size_t k = 0; k < nr && !rc; k++) {
            struct ms_flat_range fr;
            rc = ms_flatview_range(fv, k, &fr);
            if (rc) {
                break;
            }
            o->lines[k].text = range_line(&fr);
            o->lines[k].mr = fr.mr;
            o->lines[k].as = as_list[a];
            o->lines[k].gpa = fr.gpa;
            o->nr = k + 1;
            if (!o->lines[k].text) {
                rc = -ENOMEM;
            }
        }
        qsort(o->lines, o->nr, sizeof(*o->lines), oline_cmp);
    }
    /* Pair blocks by key; a block without partner costs more than any
     * byte difference. */
    for (size_t i = 0; i < nob && !rc; i++) {
        size_t match = NONE;
        for (size_t k = 0; k < f->nr; k++) {
            if (!fused[k] && ob[i].key && strcmp(f->b[k].key, ob[i].key) == 0) {
                match = k;
                break;
            }
        }
        if (match == NONE) {
            e->blocks++;
            continue;
        }
        fused[match] = true;
        rc = diff_block(e, &ob[i], &f->b[match], px, t->nr);
    }
    for (size_t k = 0; k < f->nr && !rc; k++) {
        if (!fused[k]) {
            e->blocks++;
        }
    }
out:
    for (size_t i = 0; i < nob; i++) {
        free(ob[i].key);
        for (size_t k = 0; k < ob[i].nr; k++) {
            free(ob[i].lines[k].text);
        }
        free(ob[i].lines);
    }
    free(ob);
    free(as_list);
    free(px);
    free(done);
    free(fused);
    ms_topology_map_free(map);
    ms_system_free(sys);
    ramdev_free(&rd);
    if (rc) {
        eval_free(e);
    }
    return rc;
}

/* Name of a range line: after "): ", before " @". */
static char *line_name(const char *s)
{
    const char *p = strstr(s, "): ");
    if (!p) {
        return NULL;
    }
    p += 3;
    size_t len = strlen(p);
    if (len > 18 && p[len - 18] == ' ' && p[len - 17] == '@') {
        len -= 18;
    }
    return ms__topo_strndup(p, len);
}

/* Flip one ambiguous property of region @i; @what is an AMB_ flag. */
static void flip(ms_topology *t, size_t i, unsigned what)
{
    struct ms__treg *r = &t->r[i];
    if (what == AMB_TERM) {
        r->kind = r->kind == MS_REGION_IO ? MS_REGION_CONTAINER : MS_REGION_IO;
    } else if (what == AMB_SIZE) {
        r->size = r->size ? 0 : 1;
    } else if (what == AMB_RO) {
        r->readonly = !r->readonly;
    }
}

struct cand {
    size_t region;
    unsigned what;
};

static int add_cand(struct cand **c, size_t *nr, size_t *cap, size_t region,
                    unsigned what)
{
    for (size_t k = 0; k < *nr; k++) {
        if ((*c)[k].region == region && (*c)[k].what == what) {
            return 0;
        }
    }
    if (*nr == *cap) {
        size_t ncap = *cap ? *cap * 2 : 32;
        struct cand *nc = realloc(*c, ncap * sizeof(*nc));
        if (!nc) {
            return -ENOMEM;
        }
        *c = nc;
        *cap = ncap;
    }
    (*c)[(*nr)++] = (struct cand){region, what};
    return 0;
}

static bool eval_zero(const struct eval *e)
{
    return !e->blocks && e->bytes == 0 && !e->lines;
}

static bool eval_better(const struct eval *a, const struct eval *b)
{
    if (a->blocks != b->blocks) {
        return a->blocks < b->blocks;
    }
    if (a->bytes != b->bytes) {
        return a->bytes < b->bytes;
    }
    return a->lines < b->lines;
}

static int infer(struct imp *I, ms_topology *t, const struct flat *f)
{
    struct eval cur;
    int rc = evaluate(t, f, &cur);
    if (rc) {
        /* Cannot be built (e.g. a RAM size no host can map): keep the
         * guesses; building it later reports the problem properly. */
        return rc == -ENOMEM ? rc : 0;
    }
    unsigned builds = 1;
    struct cand *c = NULL;
    size_t nc = 0, capc = 0;
    while (!eval_zero(&cur) && builds < 4000) {
        nc = 0;
        for (size_t k = 0; k < cur.nr_extra && !rc; k++) {
            size_t r = cur.extra[k].gpa;
            if (r == NONE) {
                continue;
            }
            if (I->ambig[r] & AMB_TERM) {
                rc = add_cand(&c, &nc, &capc, r, AMB_TERM);
            }
            if (!rc && (I->ambig[r] & AMB_SIZE)) {
                rc = add_cand(&c, &nc, &capc, r, AMB_SIZE);
            }
        }
        for (size_t k = 0; k < cur.nr_missing && !rc; k++) {
            char *name = line_name(cur.missing[k]);
            if (!name) {
                continue;
            }
            for (size_t r = 0; r < t->nr && !rc; r++) {
                if (!t->r[r].name || strcmp(t->r[r].name, name) != 0) {
                    continue;
                }
                if (I->ambig[r] & AMB_TERM) {
                    rc = add_cand(&c, &nc, &capc, r, AMB_TERM);
                }
                if (!rc && (I->ambig[r] & AMB_SIZE)) {
                    rc = add_cand(&c, &nc, &capc, r, AMB_SIZE);
                }
            }
            free(name);
        }
        for (size_t k = 0; k < cur.nr_hints && !rc; k++) {
            if (I->ambig[cur.hints[k]] & AMB_RO) {
                rc = add_cand(&c, &nc, &capc, cur.hints[k], AMB_RO);
            }
        }
        /* Aliases of size 0/1 whose target shows up. */
        for (size_t r = 0; r < t->nr && !rc && cur.nr_missing; r++) {
            if ((I->ambig[r] & AMB_SIZE) && t->r[r].kind == MS_REGION_ALIAS &&
                t->r[r].size == 0) {
                rc = add_cand(&c, &nc, &capc, r, AMB_SIZE);
            }
        }
        if (rc) {
            break;
        }
        bool improved = false;
        for (size_t k = 0; k < nc && !improved && builds < 4000; k++) {
            flip(t, c[k].region, c[k].what);
            struct eval e;
            rc = evaluate(t, f, &e);
            builds++;
            if (rc == -ENOMEM) {
                break;
            }
            if (!rc && eval_better(&e, &cur)) {
                eval_free(&cur);
                cur = e;
                improved = true;
                I->ambig[c[k].region] |= (unsigned char)(c[k].what << 4);
            } else {
                if (!rc) {
                    eval_free(&e);
                }
                rc = 0;
                flip(t, c[k].region, c[k].what);
            }
        }
        if (rc || !improved) {
            break;
        }
    }
    free(c);
    eval_free(&cur);
    return rc;
}

/*
 * After inference: a guess is settled when the flat text showed the
 * question's answer, i.e. flipping it would change the views.  Checking
 * that costs one build per question, so only questions whose region is
 * visible are checked; the others stay guesses.
 */
static unsigned guess_flag(unsigned what)
{
    return what == AMB_TERM   ? MS_GUESS_TERMINATES
           : what == AMB_SIZE ? MS_GUESS_SIZE
                              : MS_GUESS_READONLY;
}

static int settle(struct imp *I, ms_topology *t, const struct flat *f)
{
    struct eval cur;
    bool have_cur = false;
    size_t questions = 0;
    for (size_t i = 0; i < t->nr; i++) {
        questions += (size_t)__builtin_popcount(I->ambig[i] & 7u);
    }
    if (f && questions <= MAX_SETTLE) {
        int rc = evaluate(t, f, &cur);
        if (rc == -ENOMEM) {
            return rc;
        }
        have_cur = rc == 0;
    }
    for (size_t i = 0; i < t->nr; i++) {
        unsigned amb = I->ambig[i] & 7u;
        unsigned flipped = (unsigned)I->ambig[i] >> 4;
        for (unsigned what = 1; what <= 4; what <<= 1) {
            if (!(amb & what) || (flipped & what)) {
                continue; /* not a question, or the flat text forced it */
            }
            if (!have_cur) {
                t->r[i].guessed |= guess_flag(what);
                continue;
            }
            /* Settled iff the other answer fits the flat text worse. */
            flip(t, i, what);
            struct eval e;
            int rc = evaluate(t, f, &e);
            flip(t, i, what);
            if (rc == -ENOMEM) {
                eval_free(&cur);
                return rc;
            }
            /* An answer that cannot even be built is no alternative. */
            if (!rc && !eval_better(&cur, &e)) {
                t->r[i].guessed |= guess_flag(what);
            }
            if (!rc) {
                eval_free(&e);
            }
        }
    }
    if (have_cur) {
        eval_free(&cur);
    }
    return 0;
}

static void imp_free(struct imp *I)
{
    for (size_t i = 0; i < I->nr; i++) {
        free(I->n[i].name);
        free(I->n[i].target);
        free(I->n[i].owner);
        free(I->n[i].kids);
    }
    for (size_t k = 0; k < I->nr_b; k++) {
        for (size_t j = 0; j < I->b[k].nr_as; j++) {
            free(I->b[k].as_names[j]);
        }
        free(I->b[k].as_names);
        free(I->b[k].mr_name);
    }
    free(I->n);
    free(I->b);
    free(I->mr_blocks);
    free(I->ambig);
}

MS_EXPORT int ms_topology_import_mtree(const char *tree, size_t tree_len,
                                       const char *tree_file, const char *flat,
                                       size_t flat_len, const char *flat_file,
                                       struct ms_topology_error *err,
                                       ms_topology **out)
{
    if (err) {
        memset(err, 0, sizeof(*err));
    }
    if (!tree || !out) {
        return -EINVAL;
    }
    struct imp I = {.file = tree_file, .err = err};
    struct flat F = {0};
    ms_topology *t = NULL;
    int rc = parse_tree(&I, tree, tree_len);
    if (!rc && flat) {
        rc = parse_flat(&I, flat, flat_len, flat_file, &F);
    }
    if (!rc) {
        I.mr_blocks = malloc((I.nr_b ? I.nr_b : 1) * sizeof(size_t));
        if (!I.mr_blocks) {
            rc = -ENOMEM;
        }
        for (size_t k = 0; !rc && k < I.nr_b; k++) {
            if (!I.b[k].is_as) {
                I.mr_blocks[I.nr_mr++] = k;
            }
        }
    }
    if (!rc) {
        rc = parse_bodies(&I);
    }
    if (!rc) {
        rc = build_kids(&I);
    }
    if (!rc) {
        rc = merge_mr_blocks(&I);
    }
    if (!rc) {
        rc = bind_targets(&I);
    }
    if (!rc) {
        rc = ms__topo_new(&t);
    }
    if (!rc) {
        rc = describe(&I, t);
    }
    /*
     * The search builds the topology once per trial: bounded so that huge
     * inputs stay fast (their questions then stay flagged as guesses).
     */
    bool search =
        flat && t && t->nr <= MAX_SEARCH_REGIONS && t->nr_as <= MAX_SEARCH_AS;
    if (!rc && search) {
        rc = order_as(t, &F);
        if (!rc) {
            rc = infer(&I, t, &F);
        }
    }
    if (!rc) {
        rc = settle(&I, t, search ? &F : NULL);
    }
    flat_free(&F);
    imp_free(&I);
    if (rc) {
        if (rc == -ENOMEM) {
            ms__topo_err(err, -ENOMEM, tree_file, 0, 0, "", "out of memory");
        }
        ms_topology_free(t);
        return rc;
    }
    *out = t;
    return 0;
}
