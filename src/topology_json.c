/* SPDX-License-Identifier: MIT */
/*
 * The memspace topology file format (docs/topology-format.md): JSON read
 * and written with jansson.
 *
 * The loader is strict: every key is known, every value has the right
 * type and range, and an error names the file, the JSON path of the value
 * (or the line and column of a syntax error) and the rule broken.  The
 * saver writes only what differs from the defaults, so that loading what
 * it wrote gives back an equal description.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology_internal.h"

#define FORMAT_NAME "memspace-topology"

struct loader {
    ms_topology *t;
    const char *file;
    struct ms_topology_error *err;
    /* Alias target ids, resolved after all regions are known. */
    char **target_ids;
    size_t nr_target_ids;
};

static int fail(struct loader *L, const char *path, const char *fmt, ...)
    MS__PRINTF(3, 4);

static int fail(struct loader *L, const char *path, const char *fmt, ...)
{
    char rule[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rule, sizeof(rule), fmt, ap);
    va_end(ap);
    ms__topo_err(L->err, -EINVAL, L->file, 0, 0, path, "%s", rule);
    return -EINVAL;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* out = a + b + c, cut to fit (a path is only a label in messages). */
static void join_path(char *out, size_t size, const char *a, const char *b,
                      const char *c)
{
    const char *parts[3] = {a, b, c};
    size_t len = 0;
    char tmp[1024];
    for (size_t k = 0; k < 3; k++) {
        size_t n = strnlen(parts[k], sizeof(tmp) - 1 - len);
        memcpy(tmp + len, parts[k], n);
        len += n;
    }
    if (len >= size) {
        len = size - 1;
    }
    memcpy(out, tmp, len);
    out[len] = 0;
}

/* Append ".key" or "[i]" to a path. */
static void sub_path(char *out, size_t size, const char *path, const char *key)
{
    join_path(out, size, path, ".", key);
}

static void idx_path(char *out, size_t size, const char *path, size_t i)
{
    char idx[32];
    snprintf(idx, sizeof(idx), "[%zu]", i);
    join_path(out, size, path, idx, "");
}

static int check_keys(struct loader *L, json_t *obj, const char *path,
                      const char *const *known)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; known[i]; i++) {
            if (strcmp(key, known[i]) == 0) {
                ok = true;
                break;
            }
        }
        if (!ok) {
            char kp[600];
            sub_path(kp, sizeof(kp), path, key);
            char list[256] = "";
            size_t len = 0;
            for (size_t i = 0; known[i] && len < sizeof(list); i++) {
                int n = snprintf(list + len, sizeof(list) - len, "%s%s",
                                 i ? ", " : "", known[i]);
                len += n > 0 ? (size_t)n : 0;
            }
            return fail(L, kp, "unknown key \"%s\" (expected one of: %s)", key,
                        list);
        }
    }
    return 0;
}

/*
 * Parse a number: a non-negative JSON integer, or a string in decimal or
 * 0x-hex with an optional binary suffix K, M, G, T, P or E.  @full allows
 * the value 2^64 (returned as MS_SIZE_FULL); without it 2^64 - 1 is the
 * maximum.  For sizes, 2^64 - 1 itself cannot be represented.
 */
static int parse_num(struct loader *L, json_t *v, const char *path,
                     bool is_size, uint64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < 0) {
            return fail(L, path, "must not be negative (got %lld)",
                        (long long)x);
        }
        *out = (uint64_t)x;
        return 0;
    }
    if (!json_is_string(v)) {
        return fail(L, path,
                    "expected a number (an integer or a string such as "
                    "\"0x1000\" or \"64K\"), got %s",
                    type_name(v));
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len > 80 || strlen(s) != len) {
        return fail(L, path, "\"%.40s\" is not a number", s);
    }
    unsigned base = 10;
    size_t i = 0;
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    unsigned shift = 0;
    size_t end = len;
    const char *suffixes = "KMGTPE";
    char last = (char)(s[len - 1] & ~0x20);
    const char *sp = last ? strchr(suffixes, last) : NULL;
    if (sp && base == 10) {
        shift = 10 * (unsigned)(sp - suffixes + 1);
        end = len - 1;
    }
    if (i == end) {
        return fail(L, path, "\"%s\" is not a number", s);
    }
    /* Accumulate with one extra bit of headroom to recognise 2^64. */
    uint64_t val = 0;
    bool over = false, is_2_64 = false;
    for (; i < end; i++) {
        unsigned d;
        char ch = s[i];
        if (ch >= '0' && ch <= '9') {
            d = (unsigned)(ch - '0');
        } else if (base == 16 && ch >= 'a' && ch <= 'f') {
            d = (unsigned)(ch - 'a' + 10);
        } else if (base == 16 && ch >= 'A' && ch <= 'F') {
            d = (unsigned)(ch - 'A' + 10);
        } else {
            return fail(L, path, "\"%s\" is not a number (bad digit '%c')", s,
                        ch);
        }
        if (is_2_64) {
            over = true; /* any digit after 2^64 is too much */
            continue;
        }
        if (val > (UINT64_MAX - d) / base) {
            /* Exactly 2^64 so far? (val * base + d == 2^64) */
            if (base == 16 && val == (UINT64_C(1) << 60) && d == 0) {
                is_2_64 = true;
                continue;
            }
            if (base == 10 && val == UINT64_C(1844674407370955161) && d == 6) {
                is_2_64 = true;
                continue;
            }
            over = true;
            continue;
        }
        val = val * base + d;
    }
    if (shift && !over && !is_2_64) {
        if (val > (UINT64_MAX >> shift)) {
            if (val == (UINT64_C(1) << (64 - shift))) {
                is_2_64 = true;
            } else {
                over = true;
            }
        } else {
            val <<= shift;
        }
    }
    if (over) {
        return fail(L, path, "%s is out of range (at most %s)", s,
                    is_size ? "2^64 = 0x10000000000000000"
                            : "2^64-1 = 0xffffffffffffffff");
    }
    if (is_2_64) {
        if (!is_size) {
            return fail(L, path,
                        "%s is out of range (at most 2^64-1 = "
                        "0xffffffffffffffff)",
                        s);
        }
        *out = MS_SIZE_FULL;
        return 0;
    }
    if (is_size && val == UINT64_MAX) {
        return fail(L, path,
                    "a size of 2^64-1 cannot be represented (sizes are at "
                    "most 2^64, written 0x10000000000000000)");
    }
    *out = val;
    return 0;
}

static int get_bool(struct loader *L, json_t *obj, const char *key,
                    const char *path, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        return 0;
    }
    char p[512];
    sub_path(p, sizeof(p), path, key);
    if (!json_is_boolean(v)) {
        return fail(L, p, "expected true or false, got %s", type_name(v));
    }
    *out = json_is_true(v);
    return 0;
}

/* A non-empty string without NUL bytes; NULL *out if absent. */
static int get_str(struct loader *L, json_t *obj, const char *key,
                   const char *path, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) {
        return 0;
    }
    char p[512];
    sub_path(p, sizeof(p), path, key);
    if (!json_is_string(v)) {
        return fail(L, p, "expected a string, got %s", type_name(v));
    }
    if (json_string_length(v) == 0) {
        return fail(L, p, "must not be empty");
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        return fail(L, p, "must not contain NUL characters");
    }
    *out = json_string_value(v);
    return 0;
}

static int get_num(struct loader *L, json_t *obj, const char *key,
                   const char *path, bool is_size, bool required, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    char p[512];
    sub_path(p, sizeof(p), path, key);
    if (!v) {
        return required ? fail(L, path, "missing \"%s\"", key) : 0;
    }
    return parse_num(L, v, p, is_size, out);
}

static const char *const region_keys[] = {
    "id",           "name",      "kind",       "size",
    "addr",         "priority",  "enabled",    "readonly",
    "nonvolatile",  "romd",      "owner",      "target",
    "alias_offset", "dirty_log", "ioeventfds", "subregions",
    "comment",      NULL};

static int load_eventfds(struct loader *L, struct ms__treg *r, json_t *arr,
                         const char *path)
{
    char p[512];
    sub_path(p, sizeof(p), path, "ioeventfds");
    if (!json_is_array(arr)) {
        return fail(L, p, "expected an array, got %s", type_name(arr));
    }
    size_t n = json_array_size(arr);
    if (n == 0) {
        return 0;
    }
    r->efd = calloc(n, sizeof(*r->efd));
    if (!r->efd) {
        return -ENOMEM;
    }
    static const char *const keys[] = {"offset", "size",    "data",
                                       "fd",     "comment", NULL};
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        char ep[512];
        idx_path(ep, sizeof(ep), p, i);
        if (!json_is_object(e)) {
            return fail(L, ep, "expected an object, got %s", type_name(e));
        }
        int err = check_keys(L, e, ep, keys);
        struct ms_topology_eventfd *f = &r->efd[i];
        uint64_t size = 0;
        if (!err) {
            err = get_num(L, e, "offset", ep, false, true, &f->offset);
        }
        if (!err) {
            err = get_num(L, e, "size", ep, false, false, &size);
        }
        if (!err && size != 0 && size != 1 && size != 2 && size != 4 &&
            size != 8) {
            char sp[600];
            sub_path(sp, sizeof(sp), ep, "size");
            err = fail(L, sp, "must be 0 (any), 1, 2, 4 or 8 (got %" PRIu64 ")",
                       size);
        }
        f->size = (unsigned)size;
        if (!err && json_object_get(e, "data")) {
            f->match_data = true;
            err = get_num(L, e, "data", ep, false, false, &f->data);
            if (!err && size == 0) {
                err = fail(L, ep,
                           "\"data\" needs a \"size\" of 1, 2, 4 "
                           "or 8");
            }
        }
        json_t *fd = json_object_get(e, "fd");
        if (!err && fd) {
            char fp[600];
            sub_path(fp, sizeof(fp), ep, "fd");
            if (!json_is_integer(fd) || json_integer_value(fd) < 0 ||
                json_integer_value(fd) > INT32_MAX) {
                err =
                    fail(L, fp, "expected an integer from 0 to %d", INT32_MAX);
            } else {
                f->fd = (int)json_integer_value(fd);
            }
        }
        if (!err) {
            json_t *c = json_object_get(e, "comment");
            if (c && !json_is_string(c)) {
                char cp[600];
                sub_path(cp, sizeof(cp), ep, "comment");
                err = fail(L, cp, "expected a string, got %s", type_name(c));
            }
        }
        if (err) {
            return err;
        }
        r->nr_efd = i + 1;
    }
    return 0;
}

static int load_region(struct loader *L, json_t *o, const char *path,
                       size_t container, unsigned depth);

static int load_region_fields(struct loader *L, json_t *o, const char *path,
                              size_t idx)
{
    struct ms__treg *r = &L->t->r[idx];
    const char *s;
    int err = check_keys(L, o, path, region_keys);
    if (err) {
        return err;
    }
    const char *kind, *id, *name, *owner;
    if ((err = get_str(L, o, "kind", path, &kind)) ||
        (err = get_str(L, o, "id", path, &id)) ||
        (err = get_str(L, o, "name", path, &name)) ||
        (err = get_str(L, o, "owner", path, &owner)) ||
        (err = get_str(L, o, "comment", path, &s))) {
        return err;
    }
    if (!kind) {
        return fail(L, path, "missing \"kind\"");
    }
    char p[512];
    if (ms__topo_kind_parse(kind, &r->kind)) {
        sub_path(p, sizeof(p), path, "kind");
        return fail(L, p,
                    "unknown kind \"%s\" (expected container, ram, rom, "
                    "rom_device, ram_device, io, alias or reservation)",
                    kind);
    }
    if (!id && !name) {
        return fail(L, path, "a region needs an \"id\" or a \"name\"");
    }
    r->id = ms__topo_strdup(id ? id : name);
    r->name = ms__topo_strdup(name);
    r->owner = ms__topo_strdup(owner);
    r->where = ms__topo_strdup(path);
    if (!r->id || (name && !r->name) || (owner && !r->owner) || !r->where) {
        return -ENOMEM;
    }
    r->readonly = r->kind == MS_REGION_ROM;
    if ((err = get_num(L, o, "size", path, true, true, &r->size)) ||
        (err = get_num(L, o, "addr", path, false, false, &r->addr)) ||
        (err = get_bool(L, o, "enabled", path, &r->enabled)) ||
        (err = get_bool(L, o, "readonly", path, &r->readonly)) ||
        (err = get_bool(L, o, "nonvolatile", path, &r->nonvolatile))) {
        return err;
    }
    json_t *v = json_object_get(o, "priority");
    if (v) {
        sub_path(p, sizeof(p), path, "priority");
        if (!json_is_integer(v)) {
            return fail(L, p, "expected an integer, got %s", type_name(v));
        }
        json_int_t x = json_integer_value(v);
        if (x < INT32_MIN || x > INT32_MAX) {
            return fail(L, p, "%lld is out of range (%d to %d)", (long long)x,
                        INT32_MIN, INT32_MAX);
        }
        r->priority = (int32_t)x;
    }
    if (json_object_get(o, "romd")) {
        if (r->kind != MS_REGION_ROM_DEVICE) {
            sub_path(p, sizeof(p), path, "romd");
            return fail(L, p, "only rom_device regions have \"romd\"");
        }
        if ((err = get_bool(L, o, "romd", path, &r->romd))) {
            return err;
        }
    }
    const char *target;
    if ((err = get_str(L, o, "target", path, &target))) {
        return err;
    }
    if (r->kind == MS_REGION_ALIAS) {
        if (!target) {
            return fail(L, path,
                        "an alias needs a \"target\" (a region "
                        "id)");
        }
        if ((err = get_num(L, o, "alias_offset", path, false, false,
                           &r->alias_offset))) {
            return err;
        }
        L->target_ids[idx] = ms__topo_strdup(target);
        if (!L->target_ids[idx]) {
            return -ENOMEM;
        }
    } else if (target || json_object_get(o, "alias_offset")) {
        sub_path(p, sizeof(p), path, target ? "target" : "alias_offset");
        return fail(L, p,
                    "only alias regions have \"target\" and "
                    "\"alias_offset\"");
    }
    v = json_object_get(o, "dirty_log");
    if (v) {
        sub_path(p, sizeof(p), path, "dirty_log");
        if (!json_is_array(v)) {
            return fail(L, p, "expected an array of client names, got %s",
                        type_name(v));
        }
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *c = json_array_get(v, i);
            char cp[600];
            idx_path(cp, sizeof(cp), p, i);
            if (!json_is_string(c) ||
                strcmp(json_string_value(c), "vga") != 0) {
                return fail(L, cp,
                            "only the client \"vga\" can be logged "
                            "explicitly");
            }
            r->log_vga = true;
        }
    }
    v = json_object_get(o, "ioeventfds");
    if (v && (err = load_eventfds(L, r, v, path))) {
        return err;
    }
    return 0;
}

static int load_region(struct loader *L, json_t *o, const char *path,
                       size_t container, unsigned depth)
{
    if (!json_is_object(o)) {
        return fail(L, path, "expected a region object, got %s", type_name(o));
    }
    if (depth > MS__TOPO_MAX_DEPTH) {
        return fail(L, path, "regions are nested more than %d levels deep",
                    MS__TOPO_MAX_DEPTH);
    }
    size_t idx = 0;
    int err = ms__topo_add(L->t, &idx);
    if (err == -E2BIG) {
        return fail(L, path, "more than %u regions", MS__TOPO_MAX_REGIONS);
    }
    if (err) {
        return err;
    }
    if (idx >= L->nr_target_ids) {
        size_t n = L->nr_target_ids ? L->nr_target_ids * 2 : 64;
        char **nt = realloc(L->target_ids, n * sizeof(*nt));
        if (!nt) {
            return -ENOMEM;
        }
        memset(nt + L->nr_target_ids, 0, (n - L->nr_target_ids) * sizeof(*nt));
        L->target_ids = nt;
        L->nr_target_ids = n;
    }
    if (container != MS__TOPO_NONE &&
        (err = ms__topo_add_sub(L->t, container, idx))) {
        return err;
    }
    if ((err = load_region_fields(L, o, path, idx))) {
        return err;
    }
    json_t *subs = json_object_get(o, "subregions");
    if (!subs) {
        return 0;
    }
    char p[512];
    sub_path(p, sizeof(p), path, "subregions");
    if (!json_is_array(subs)) {
        return fail(L, p, "expected an array of regions, got %s",
                    type_name(subs));
    }
    for (size_t i = 0; i < json_array_size(subs); i++) {
        char cp[512];
        idx_path(cp, sizeof(cp), p, i);
        if (strlen(cp) >= sizeof(cp) - 1) {
            return fail(L, path, "regions are nested too deeply");
        }
        err = load_region(L, json_array_get(subs, i), cp, idx, depth + 1);
        if (err) {
            return err;
        }
    }
    return 0;
}

static int load_doc(struct loader *L, json_t *doc)
{
    static const char *const top_keys[] = {
        "format", "version", "address_spaces", "regions", "comment", NULL};
    if (!json_is_object(doc)) {
        return fail(L, "$", "expected an object, got %s", type_name(doc));
    }
    int err = check_keys(L, doc, "$", top_keys);
    if (err) {
        return err;
    }
    json_t *fmt = json_object_get(doc, "format");
    if (!json_is_string(fmt) ||
        strcmp(json_string_value(fmt), FORMAT_NAME) != 0) {
        return fail(L, fmt ? "$.format" : "$",
                    "\"format\" must be \"" FORMAT_NAME "\"");
    }
    json_t *ver = json_object_get(doc, "version");
    if (!json_is_integer(ver)) {
        return fail(L, ver ? "$.version" : "$",
                    "\"version\" must be an integer (this memspace reads "
                    "version %d)",
                    MS_TOPOLOGY_VERSION);
    }
    if (json_integer_value(ver) != MS_TOPOLOGY_VERSION) {
        return fail(L, "$.version",
                    "unsupported version %lld (this memspace reads version "
                    "%d)",
                    (long long)json_integer_value(ver), MS_TOPOLOGY_VERSION);
    }
    json_t *c = json_object_get(doc, "comment");
    if (c && !json_is_string(c)) {
        return fail(L, "$.comment", "expected a string, got %s", type_name(c));
    }
    json_t *regions = json_object_get(doc, "regions");
    if (!regions) {
        return fail(L, "$", "missing \"regions\"");
    }
    if (!json_is_array(regions)) {
        return fail(L, "$.regions", "expected an array, got %s",
                    type_name(regions));
    }
    for (size_t i = 0; i < json_array_size(regions); i++) {
        char p[64];
        idx_path(p, sizeof(p), "$.regions", i);
        if ((err = load_region(L, json_array_get(regions, i), p, MS__TOPO_NONE,
                               1))) {
            return err;
        }
    }
    size_t dup;
    err = ms__topo_index(L->t, &dup);
    if (err == -EEXIST) {
        size_t first = MS__TOPO_NONE;
        for (size_t i = 0; i < dup && first == MS__TOPO_NONE; i++) {
            if (strcmp(L->t->r[i].id, L->t->r[dup].id) == 0) {
                first = i;
            }
        }
        return fail(L, L->t->r[dup].where,
                    "duplicate id \"%s\" (also at %s; ids default to the "
                    "name, give one of them an explicit \"id\")",
                    L->t->r[dup].id,
                    first != MS__TOPO_NONE ? L->t->r[first].where : "?");
    }
    if (err) {
        return err;
    }
    for (size_t i = 0; i < L->t->nr; i++) {
        if (!L->target_ids[i]) {
            continue;
        }
        size_t tg = ms__topo_find(L->t, L->target_ids[i]);
        if (tg == MS__TOPO_NONE) {
            char p[600];
            sub_path(p, sizeof(p), L->t->r[i].where, "target");
            return fail(L, p, "no region has the id \"%s\"", L->target_ids[i]);
        }
        L->t->r[i].target = tg;
    }
    json_t *ases = json_object_get(doc, "address_spaces");
    if (ases && !json_is_array(ases)) {
        return fail(L, "$.address_spaces", "expected an array, got %s",
                    type_name(ases));
    }
    static const char *const as_keys[] = {"id", "name", "root", "comment",
                                          NULL};
    for (size_t i = 0; i < json_array_size(ases); i++) {
        json_t *a = json_array_get(ases, i);
        char p[64];
        idx_path(p, sizeof(p), "$.address_spaces", i);
        if (!json_is_object(a)) {
            return fail(L, p, "expected an object, got %s", type_name(a));
        }
        const char *id, *name, *root, *cm;
        if ((err = check_keys(L, a, p, as_keys)) ||
            (err = get_str(L, a, "id", p, &id)) ||
            (err = get_str(L, a, "name", p, &name)) ||
            (err = get_str(L, a, "root", p, &root)) ||
            (err = get_str(L, a, "comment", p, &cm))) {
            return err;
        }
        if (!name || !root) {
            return fail(L, p, "missing \"%s\"", name ? "root" : "name");
        }
        size_t ri = ms__topo_find(L->t, root);
        if (ri == MS__TOPO_NONE) {
            char rp[80];
            sub_path(rp, sizeof(rp), p, "root");
            return fail(L, rp, "no region has the id \"%s\"", root);
        }
        if (!id) {
            id = name;
        }
        for (size_t k = 0; k < L->t->nr_as; k++) {
            if (strcmp(L->t->as[k].id, id) == 0) {
                return fail(L, p,
                            "duplicate address-space id \"%s\" (ids "
                            "default to the name, give one an explicit "
                            "\"id\")",
                            id);
            }
        }
        if ((err = ms__topo_add_as(L->t, id, name, ri))) {
            return err;
        }
    }
    return ms__topo_finish(L->t, L->err, L->file);
}

MS_EXPORT int ms_topology_load_json(const char *text, size_t len,
                                    const char *file,
                                    struct ms_topology_error *err,
                                    ms_topology **out)
{
    if (err) {
        memset(err, 0, sizeof(*err));
    }
    if (!text || !out) {
        return -EINVAL;
    }
    struct loader L = {.file = file, .err = err};
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        ms__topo_err(err, -EINVAL, file,
                     jerr.line > 0 ? (unsigned)jerr.line : 0,
                     jerr.column > 0 ? (unsigned)jerr.column : 0, "",
                     "invalid JSON: %s", jerr.text);
        return -EINVAL;
    }
    int rc = ms__topo_new(&L.t);
    if (!rc) {
        rc = load_doc(&L, doc);
    }
    json_decref(doc);
    for (size_t i = 0; i < L.nr_target_ids; i++) {
        free(L.target_ids[i]);
    }
    free(L.target_ids);
    if (rc) {
        if (rc == -ENOMEM) {
            ms__topo_err(err, -ENOMEM, file, 0, 0, "", "out of memory");
        }
        ms_topology_free(L.t);
        return rc;
    }
    *out = L.t;
    return 0;
}

/* ---- saving ------------------------------------------------------------ */

static json_t *hex(uint64_t v, bool is_size)
{
    char buf[32];
    if (is_size && v == MS_SIZE_FULL) {
        return json_string("0x10000000000000000");
    }
    snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
    return json_string(buf);
}

/* json_object_set_new() that remembers a failure. */
static void put(json_t *o, const char *key, json_t *v, bool *oom)
{
    if (!v || json_object_set_new(o, key, v)) {
        *oom = true;
    }
}

static json_t *save_region(const ms_topology *t, size_t i, bool *oom)
{
    const struct ms__treg *r = &t->r[i];
    json_t *o = json_object();
    if (!o) {
        *oom = true;
        return NULL;
    }
    if (!r->name || strcmp(r->name, r->id) != 0) {
        put(o, "id", json_string(r->id), oom);
    }
    if (r->name) {
        put(o, "name", json_string(r->name), oom);
    }
    put(o, "kind", json_string(ms__topo_kind_name(r->kind)), oom);
    put(o, "size", hex(r->size, true), oom);
    if (r->addr) {
        put(o, "addr", hex(r->addr, false), oom);
    }
    if (r->priority) {
        put(o, "priority", json_integer(r->priority), oom);
    }
    if (!r->enabled) {
        put(o, "enabled", json_false(), oom);
    }
    if (r->readonly != (r->kind == MS_REGION_ROM)) {
        put(o, "readonly", json_boolean(r->readonly), oom);
    }
    if (r->nonvolatile) {
        put(o, "nonvolatile", json_true(), oom);
    }
    if (r->kind == MS_REGION_ROM_DEVICE && !r->romd) {
        put(o, "romd", json_false(), oom);
    }
    if (r->owner) {
        put(o, "owner", json_string(r->owner), oom);
    }
    if (r->kind == MS_REGION_ALIAS && r->target != MS__TOPO_NONE) {
        put(o, "target", json_string(t->r[r->target].id), oom);
        if (r->alias_offset) {
            put(o, "alias_offset", hex(r->alias_offset, false), oom);
        }
    }
    if (r->log_vga) {
        json_t *a = json_array();
        if (!a || json_array_append_new(a, json_string("vga"))) {
            *oom = true;
        }
        put(o, "dirty_log", a, oom);
    }
    if (r->nr_efd) {
        json_t *a = json_array();
        put(o, "ioeventfds", a, oom);
        for (size_t k = 0; a && k < r->nr_efd; k++) {
            const struct ms_topology_eventfd *f = &r->efd[k];
            json_t *e = json_object();
            if (!e || json_array_append_new(a, e)) {
                *oom = true;
                break;
            }
            put(e, "offset", hex(f->offset, false), oom);
            if (f->size) {
                put(e, "size", json_integer(f->size), oom);
            }
            if (f->match_data) {
                put(e, "data", hex(f->data, false), oom);
            }
            if (f->fd) {
                put(e, "fd", json_integer(f->fd), oom);
            }
        }
    }
    if (r->nr_subs) {
        json_t *a = json_array();
        put(o, "subregions", a, oom);
        for (size_t k = 0; a && k < r->nr_subs; k++) {
            json_t *c = save_region(t, r->subs[k], oom);
            if (!c || json_array_append_new(a, c)) {
                *oom = true;
                break;
            }
        }
    }
    return o;
}

MS_EXPORT int ms_topology_save_json(const ms_topology *t, char **out)
{
    if (!t || !out) {
        return -EINVAL;
    }
    bool oom = false;
    json_t *doc = json_object();
    if (!doc) {
        return -ENOMEM;
    }
    put(doc, "format", json_string(FORMAT_NAME), &oom);
    put(doc, "version", json_integer(MS_TOPOLOGY_VERSION), &oom);
    json_t *ases = json_array();
    put(doc, "address_spaces", ases, &oom);
    for (size_t i = 0; ases && i < t->nr_as; i++) {
        json_t *a = json_object();
        if (!a || json_array_append_new(ases, a)) {
            oom = true;
            break;
        }
        if (strcmp(t->as[i].id, t->as[i].name) != 0) {
            put(a, "id", json_string(t->as[i].id), &oom);
        }
        put(a, "name", json_string(t->as[i].name), &oom);
        put(a, "root", json_string(t->r[t->as[i].root].id), &oom);
    }
    json_t *regions = json_array();
    put(doc, "regions", regions, &oom);
    for (size_t i = 0; regions && i < t->nr; i++) {
        if (t->r[i].container != MS__TOPO_NONE) {
            continue;
        }
        json_t *o = save_region(t, i, &oom);
        if (!o || json_array_append_new(regions, o)) {
            oom = true;
            break;
        }
    }
    char *s = oom ? NULL : json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    if (!s) {
        return -ENOMEM;
    }
    size_t n = strlen(s);
    char *res = malloc(n + 2);
    if (!res) {
        free(s);
        return -ENOMEM;
    }
    memcpy(res, s, n);
    res[n] = '\n';
    res[n + 1] = 0;
    free(s);
    *out = res;
    return 0;
}
