/* SPDX-License-Identifier: MIT */
/*
 * Topology descriptions through the public API: JSON round trips, error
 * details, number rules, checks, build and apply (the events a listener
 * sees), explain, and what the importer flags as guessed.
 *
 * usage: tool_topology DATA-DIR (tests/data/tool)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

static const char *data_dir;

static char *file(const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", data_dir, name);
    char *s = tu_read_file(path);
    REQUIRE(s);
    return s;
}

static ms_topology *load(const char *name)
{
    char *s = file(name);
    ms_topology *t = NULL;
    struct ms_topology_error err;
    int rc = ms_topology_load_json(s, strlen(s), name, &err, &t);
    if (rc) {
        char buf[1400];
        fprintf(stderr, "%s\n",
                ms_topology_error_format(&err, buf, sizeof(buf)));
    }
    REQUIRE(rc == 0);
    free(s);
    return t;
}

/* Load @json and return the error (0 if it loads). */
static int load_err(const char *json, struct ms_topology_error *err)
{
    ms_topology *t = NULL;
    int rc = ms_topology_load_json(json, strlen(json), "t.json", err, &t);
    ms_topology_free(t);
    return rc;
}

#define HDR "{\"format\": \"memspace-topology\", \"version\": 1, "

static void test_roundtrip(void)
{
    static const char *const names[] = {
        "basic.json",     "overlap.json",     "mistakes.json", "small.json",
        "diff-move.json", "diff-resize.json", "diff-as.json"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        ms_topology *t = load(names[i]);
        char *a, *b;
        REQUIRE(ms_topology_save_json(t, &a) == 0);
        ms_topology *t2 = NULL;
        struct ms_topology_error err;
        CHECK_OK(ms_topology_load_json(a, strlen(a), "saved", &err, &t2));
        REQUIRE(t2);
        REQUIRE(ms_topology_save_json(t2, &b) == 0);
        CHECK_STR(b, a);
        /* Field by field, in the same order. */
        CHECK_EQ(ms_topology_nr_regions(t2), ms_topology_nr_regions(t));
        CHECK_EQ(ms_topology_nr_as(t2), ms_topology_nr_as(t));
        for (size_t r = 0; r < ms_topology_nr_regions(t); r++) {
            struct ms_topology_region x, y;
            CHECK_OK(ms_topology_region(t, r, &x));
            size_t j = ms_topology_find(t2, x.id);
            CHECK(j != SIZE_MAX);
            if (j == SIZE_MAX) {
                continue;
            }
            CHECK_OK(ms_topology_region(t2, j, &y));
            CHECK_EQ(x.kind, y.kind);
            CHECK_EQ(x.size, y.size);
            CHECK_EQ(x.addr, y.addr);
            CHECK_EQ(x.priority, y.priority);
            CHECK_EQ(x.enabled, y.enabled);
            CHECK_EQ(x.readonly, y.readonly);
            CHECK_EQ(x.nonvolatile, y.nonvolatile);
            CHECK_EQ(x.romd, y.romd);
            CHECK_EQ(x.log_vga, y.log_vga);
            CHECK_EQ(x.alias_offset, y.alias_offset);
            CHECK_EQ(x.nr_subregions, y.nr_subregions);
            CHECK_EQ(x.nr_eventfds, y.nr_eventfds);
            CHECK((x.name == NULL) == (y.name == NULL));
        }
        free(a);
        free(b);
        ms_topology_free(t);
        ms_topology_free(t2);
    }
}

static void test_errors(void)
{
    struct ms_topology_error err;
    char buf[1400];
    CHECK_ERR(load_err("{\n \"format\": 1,", &err), EINVAL);
    CHECK_EQ(err.line, 2);
    CHECK_STR(err.file, "t.json");
    CHECK(strstr(err.rule, "invalid JSON") != NULL);

    CHECK_ERR(load_err(HDR "\"regions\": [{\"name\": \"r\", \"kind\": \"ram\","
                           " \"size\": 1.5}]}",
                       &err),
              EINVAL);
    CHECK_STR(err.path, "$.regions[0].size");
    CHECK(strstr(err.rule, "expected a number") != NULL);
    CHECK_STR(ms_topology_error_format(&err, buf, sizeof(buf)),
              "t.json: $.regions[0].size: expected a number (an integer or "
              "a string such as \"0x1000\" or \"64K\"), got a real number");

    CHECK_ERR(load_err(HDR "\"regions\": [{\"name\": \"r\", \"kind\": "
                           "\"container\", \"size\": \"0xffffffffffffffff\"}]}",
                       &err),
              EINVAL);
    CHECK(strstr(err.rule, "2^64-1 cannot be represented") != NULL);
    CHECK_ERR(load_err(HDR "\"regions\": [{\"name\": \"r\", \"kind\": "
                           "\"container\", \"size\": 1, \"addr\": "
                           "\"0x10000000000000000\"}]}",
                       &err),
              EINVAL);
    CHECK_STR(err.path, "$.regions[0].addr");
    CHECK_ERR(load_err(HDR "\"regions\": [{\"name\": \"r\", \"kind\": "
                           "\"container\", \"size\": -4}]}",
                       &err),
              EINVAL);
    CHECK(strstr(err.rule, "negative") != NULL);
    CHECK_ERR(load_err(HDR "\"regions\": [{\"name\": \"r\", \"kind\": "
                           "\"ram\", \"size\": 4, \"target\": \"r\"}]}",
                       &err),
              EINVAL);
    CHECK_STR(err.path, "$.regions[0].target");
    CHECK_ERR(load_err(HDR "\"regions\": [{\"name\": \"r\", \"kind\": "
                           "\"ram\", \"size\": 4, \"dirty_log\": "
                           "[\"migration\"]}]}",
                       &err),
              EINVAL);
    CHECK_STR(err.path, "$.regions[0].dirty_log[0]");
    CHECK_ERR(load_err(HDR "\"regions\": [{\"name\": \"r\", \"kind\": "
                           "\"io\", \"size\": 4, \"ioeventfds\": [{\"offset\":"
                           " 0, \"size\": 3}]}]}",
                       &err),
              EINVAL);
    CHECK_STR(err.path, "$.regions[0].ioeventfds[0].size");
    CHECK_ERR(load_err(HDR "\"regions\": [], \"address_spaces\": "
                           "[{\"name\": \"m\", \"root\": \"x\"}]}",
                       &err),
              EINVAL);
    CHECK_STR(err.path, "$.address_spaces[0].root");
    CHECK_ERR(load_err("{\"version\": 1, \"regions\": []}", &err), EINVAL);
    CHECK(strstr(err.rule, "\"format\" must be") != NULL);

    /* Numbers that are fine. */
    ms_topology *t = NULL;
    const char *ok = HDR "\"regions\": [{\"name\": \"r\", \"kind\": "
                         "\"container\", \"size\": \"16E\", \"addr\": "
                         "\"64K\"}, {\"name\": \"s\", \"kind\": \"ram\", "
                         "\"size\": \"0x1000\", \"addr\": 12}]}";
    CHECK_OK(ms_topology_load_json(ok, strlen(ok), NULL, &err, &t));
    struct ms_topology_region r;
    CHECK_OK(ms_topology_region(t, 0, &r));
    CHECK_EQ(r.size, MS_SIZE_FULL);
    CHECK_EQ(r.addr, 0x10000);
    CHECK_OK(ms_topology_region(t, 1, &r));
    CHECK_EQ(r.addr, 12);
    CHECK_ERR(ms_topology_region(t, 2, &r), ERANGE);
    ms_topology_free(t);
}

static void count_issue(void *opaque, const struct ms_topology_issue *is)
{
    char *kinds = opaque;
    strcat(kinds, is->kind);
    strcat(kinds, " ");
}

static void test_check(void)
{
    ms_topology *t = load("mistakes.json");
    char kinds[512] = "";
    CHECK_EQ(ms_topology_check(t, count_issue, kinds), 4);
    CHECK_STR(kinds, "equal-priority-overlap outside-container unnamed "
                     "alias-past-target ");
    ms_topology_free(t);
    t = load("basic.json");
    CHECK_EQ(ms_topology_check(t, NULL, NULL), 0);
    ms_topology_free(t);
}

/* Recording listener: one line per event. */
struct rec {
    struct ms_listener l;
    char log[8192];
};

static void put(struct rec *r, const char *what, const struct ms_section *s)
{
    size_t n = strlen(r->log);
    snprintf(r->log + n, sizeof(r->log) - n, "%s %s %llx+%llx\n", what,
             s->mr ? ms_region_name(s->mr) : "-", (unsigned long long)s->gpa,
             (unsigned long long)s->size);
}

static int r_add(struct ms_listener *l, const struct ms_section *s)
{
    put(l->opaque, "add", s);
    return 0;
}

static int r_del(struct ms_listener *l, const struct ms_section *s)
{
    put(l->opaque, "del", s);
    return 0;
}

static int r_log_start(struct ms_listener *l, const struct ms_section *s,
                       unsigned o, unsigned n)
{
    (void)o;
    (void)n;
    put(l->opaque, "log_start", s);
    return 0;
}

static int r_efd_add(struct ms_listener *l, const struct ms_section *s,
                     bool match, uint64_t data, int fd)
{
    (void)match;
    (void)data;
    (void)fd;
    put(l->opaque, "efd_add", s);
    return 0;
}

static int r_efd_del(struct ms_listener *l, const struct ms_section *s,
                     bool match, uint64_t data, int fd)
{
    (void)match;
    (void)data;
    (void)fd;
    put(l->opaque, "efd_del", s);
    return 0;
}

static int removed_calls;

static void on_removed(void *opaque, ms_as *as)
{
    (void)opaque;
    (void)as;
    removed_calls++;
}

/* Edit a description through JSON text replacement. */
static ms_topology *variant(const char *name, const char *from, const char *to)
{
    char *s = file(name);
    char *p = strstr(s, from);
    REQUIRE(p);
    size_t n = strlen(s) + strlen(to) + 1;
    char *o = malloc(n);
    REQUIRE(o);
    snprintf(o, n, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
    ms_topology *t = NULL;
    struct ms_topology_error err;
    REQUIRE(ms_topology_load_json(o, strlen(o), name, &err, &t) == 0);
    free(s);
    free(o);
    return t;
}

static void test_apply(void)
{
    ms_system *sys;
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    ms_topology *t = load("overlap.json");
    ms_topology_map *map;
    struct ms_topology_error err;
    REQUIRE(ms_topology_build(t, sys, NULL, &err, &map) == 0);
    ms_as *mem = ms_topology_map_as(map, "memory");
    REQUIRE(mem);
    ms_region *b0 = ms_topology_map_region(map, "b");
    struct rec r = {.l = {.region_add = r_add,
                          .region_del = r_del,
                          .log_start = r_log_start,
                          .eventfd_add = r_efd_add,
                          .eventfd_del = r_efd_del}};
    r.l.opaque = &r;
    REQUIRE(ms_listener_register(mem, &r.l) == 0);

    /* Same description: nothing happens. */
    r.log[0] = 0;
    CHECK_OK(ms_topology_apply(map, t, NULL, &err));
    CHECK_STR(r.log, "");
    CHECK(ms_topology_map_region(map, "b") == b0);

    /* A move: b leaves the overlap with a. */
    ms_topology *t2 =
        variant("overlap.json", "\"addr\": \"0x1800\"", "\"addr\": \"0x4000\"");
    r.log[0] = 0;
    CHECK_OK(ms_topology_apply(map, t2, NULL, &err));
    CHECK_STR(r.log, "del a 1000+800\n"
                     "del b 1800+100\n"
                     "del b 1a00+e00\n"
                     "add a 1000+900\n"
                     "add a 1a00+600\n"
                     "add b 4000+1000\n");
    CHECK(ms_topology_map_region(map, "b") == b0); /* edited in place */

    /*
     * A kind change replaces the region (a new range: region_add, no
     * log_start, as in QEMU); logging an existing region's ranges gives
     * log_start; an ioeventfd on a new region.
     */
    ms_topology *t3 = variant(
        "overlap.json",
        "\"addr\": \"0x1000\" },\n        { \"name\": \"b\", \"kind\": \"io\", "
        "\"size\": \"4K\", \"addr\": \"0x1800\" }",
        "\"addr\": \"0x1000\", \"dirty_log\": [\"vga\"] }, { \"name\": \"b\", "
        "\"kind\": \"ram\", \"size\": \"4K\", \"addr\": \"0x4000\" }, "
        "{ \"name\": \"door\", \"kind\": \"io\", \"size\": 4, \"addr\": "
        "\"0x8000\", \"ioeventfds\": [ { \"offset\": 0, \"size\": 4, "
        "\"fd\": 3 } ] }");
    r.log[0] = 0;
    CHECK_OK(ms_topology_apply(map, t3, NULL, &err));
    CHECK(ms_topology_map_region(map, "b") != b0);
    CHECK_STR(r.log, "del b 4000+1000\n"
                     "log_start a 1000+900\n"
                     "log_start a 1a00+600\n"
                     "add b 4000+1000\n"
                     "add door 8000+4\n"
                     "efd_add - 8000+4\n");

    /* Back: the address space "spare" stays, removals are reported. */
    r.log[0] = 0;
    CHECK_OK(ms_topology_apply(map, t, NULL, &err));
    CHECK(strstr(r.log, "del door 8000+4\n") != NULL);
    CHECK(strstr(r.log, "efd_del - 8000+4\n") != NULL);

    /* An address space that goes away: the callback, then destroyed. */
    ms_topology *t4 = load("diff-as.json");
    struct ms_topology_build_options opts = {.as_removed = on_removed};
    removed_calls = 0;
    CHECK_OK(ms_topology_apply(map, t4, &opts, &err));
    CHECK_EQ(removed_calls, 1);
    CHECK(ms_topology_map_as(map, "spare") == NULL);
    CHECK(ms_topology_map_as(map, "io") != NULL);
    CHECK(ms_topology_map_as(map, "memory") == mem);

    ms_listener_unregister(&r.l);
    ms_topology_map_free(map);
    ms_system_free(sys);
    ms_topology_free(t);
    ms_topology_free(t2);
    ms_topology_free(t3);
    ms_topology_free(t4);
}

static void test_build_failure(void)
{
    ms_system *sys;
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    ms_topology *t = load("mistakes.json");
    ms_topology_map *map = NULL;
    struct ms_topology_error err;
    CHECK_ERR(ms_topology_build(t, sys, NULL, &err, &map), ERANGE);
    CHECK(map == NULL);
    CHECK_STR(err.path, "$.regions[0].subregions[4]");
    CHECK(strstr(err.rule, "window leaves its target") != NULL);
    char *text = NULL;
    CHECK_OK(ms_mtree_to_string(sys, 0, &text));
    CHECK_STR(text, ""); /* nothing left behind */
    free(text);
    ms_system_free(sys);
    ms_topology_free(t);
}

static void test_explain(void)
{
    ms_system *sys;
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    ms_topology *t = load("overlap.json");
    ms_topology_map *map;
    struct ms_topology_error err;
    REQUIRE(ms_topology_build(t, sys, NULL, &err, &map) == 0);
    ms_as *as = ms_topology_map_as(map, "memory");
    struct ms_explanation *e;

    REQUIRE(ms_explain(as, 0x1900, &e) == 0);
    CHECK(e->region == ms_topology_map_region(map, "hi"));
    CHECK_EQ(e->offset, 0);
    CHECK_EQ(e->nr_steps, 2);
    CHECK_EQ(e->nr_losers, 3);
    CHECK(e->losers[0].region == ms_topology_map_region(map, "off"));
    CHECK_EQ(e->losers[0].reason, MS_EXPLAIN_DISABLED);
    CHECK(e->losers[1].region == ms_topology_map_region(map, "b"));
    CHECK_EQ(e->losers[1].reason, MS_EXPLAIN_PRIORITY);
    CHECK(e->losers[1].would == e->losers[1].region);
    CHECK_EQ(e->losers[1].would_offset, 0x100);
    CHECK(e->losers[2].region == ms_topology_map_region(map, "a"));
    CHECK_EQ(e->losers[2].reason, MS_EXPLAIN_PRIORITY);
    ms_explanation_free(e);

    REQUIRE(ms_explain(as, 0x1800, &e) == 0);
    CHECK(e->region == ms_topology_map_region(map, "b"));
    CHECK_EQ(e->losers[e->nr_losers - 1].reason, MS_EXPLAIN_ORDER);
    CHECK_STR(ms_explain_reason_name(MS_EXPLAIN_ORDER), "order");
    ms_explanation_free(e);

    REQUIRE(ms_explain(as, 0x9000, &e) == 0);
    CHECK(e->region == NULL);
    CHECK_EQ(e->nr_steps, 1);
    ms_explanation_free(e);

    /* Every boundary of every view agrees with the flat view. */
    ms_topology_map_free(map);
    ms_system_free(sys);
    ms_topology_free(t);
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    t = load("basic.json");
    REQUIRE(ms_topology_build(t, sys, NULL, &err, &map) == 0);
    for (size_t a = 0; a < ms_topology_nr_as(t); a++) {
        struct ms_topology_as ta;
        CHECK_OK(ms_topology_as(t, a, &ta));
        as = ms_topology_map_as(map, ta.id);
        const ms_flatview *fv = ms_as_flatview(as);
        for (size_t i = 0; i < ms_flatview_nr_ranges(fv); i++) {
            struct ms_flat_range fr;
            CHECK_OK(ms_flatview_range(fv, i, &fr));
            uint64_t probes[] = {fr.gpa, fr.last, fr.last + 1, fr.gpa - 1};
            for (size_t k = 0; k < 4; k++) {
                CHECK_OK(ms_explain(as, probes[k], &e));
                ms_explanation_free(e);
            }
        }
    }
    ms_topology_map_free(map);
    ms_system_free(sys);
    ms_topology_free(t);
}

static void test_import_guesses(void)
{
    char *tree = file("small-mtree-oD.txt");
    char *flat = file("small-flat.txt");
    struct ms_topology_error err;
    ms_topology *t = NULL;
    CHECK_OK(ms_topology_import_mtree(tree, strlen(tree), "t", NULL, 0, NULL,
                                      &err, &t));
    struct ms_topology_region r;
    size_t io = ms_topology_find(t, "ioport");
    REQUIRE(io != SIZE_MAX);
    CHECK_OK(ms_topology_region(t, io, &r));
    CHECK_EQ(r.kind, MS_REGION_CONTAINER); /* the guess */
    CHECK(r.guessed & MS_GUESS_TERMINATES);
    CHECK_STR(r.where, "line 12");
    CHECK_STR(r.owner, "parent:{obj path=/machine/unattached}");
    ms_topology_free(t);
    t = NULL;
    CHECK_OK(ms_topology_import_mtree(tree, strlen(tree), "t", flat,
                                      strlen(flat), "f", &err, &t));
    CHECK_OK(ms_topology_region(t, ms_topology_find(t, "ioport"), &r));
    CHECK_EQ(r.kind, MS_REGION_IO); /* settled by the flat text */
    CHECK_EQ(r.guessed, 0);
    CHECK_OK(ms_topology_region(t, ms_topology_find(t, "pam-rom"), &r));
    CHECK(r.readonly);
    CHECK_OK(ms_topology_region(t, ms_topology_find(t, "gate"), &r));
    CHECK_EQ(r.size, 0);
    CHECK(r.guessed & MS_GUESS_READONLY); /* invisible: stays a guess */
    ms_topology_free(t);

    /* Flat text where the tree is expected, and the other way round. */
    t = NULL;
    CHECK_ERR(ms_topology_import_mtree(flat, strlen(flat), "f", NULL, 0, NULL,
                                       &err, &t),
              EINVAL);
    CHECK(strstr(err.rule, "`info mtree -f` output") != NULL);
    CHECK_EQ(err.line, 1);
    CHECK_ERR(ms_topology_import_mtree(tree, strlen(tree), "t", tree,
                                       strlen(tree), "f", &err, &t),
              EINVAL);
    CHECK_STR(err.file, "f");
    free(tree);
    free(flat);
}

/* @t saves to JSON that loads back and saves the same. */
static void saves_and_loads_back(const ms_topology *t)
{
    struct ms_topology_error err;
    ms_topology *t2 = NULL;
    char *a = NULL, *b = NULL;
    CHECK_OK(ms_topology_save_json(t, &a));
    REQUIRE(a);
    CHECK_OK(ms_topology_load_json(a, strlen(a), "saved", &err, &t2));
    REQUIRE(t2);
    CHECK_OK(ms_topology_save_json(t2, &b));
    REQUIRE(b);
    CHECK_STR(a, b);
    free(a);
    free(b);
    ms_topology_free(t2);
}

/*
 * Address spaces and regions named alike get "#N" ids; one already named
 * "x#2" keeps that id and the others skip it, so the import saves to JSON
 * that loads back (a fuzzer found "x#2" given twice for address spaces;
 * regions used to fail the import).
 */
static void test_import_as_ids(void)
{
    static const char tree[] =
        "address-space: x#2\n"
        "  0000000000000000-000000000000ffff (prio 0, i/o): bus\n"
        "\n"
        "address-space: x\n"
        "  0000000000000000-000000000000ffff (prio 0, i/o): bus\n"
        "\n"
        "address-space: x\n"
        "  0000000000000000-000000000000ffff (prio 0, i/o): bus\n"
        "\n"
        "address-space: x\n"
        "  0000000000000000-000000000000ffff (prio 0, i/o): bus\n"
        "\n";
    static const char *const ids[] = {"x#2", "x", "x#3", "x#4"};
    static const char *const names[] = {"x#2", "x", "x", "x"};
    struct ms_topology_error err;
    ms_topology *t = NULL;
    CHECK_OK(ms_topology_import_mtree(tree, strlen(tree), "t", NULL, 0, NULL,
                                      &err, &t));
    REQUIRE(t);
    CHECK_EQ(ms_topology_nr_as(t), 4);
    for (size_t i = 0; i < 4 && i < ms_topology_nr_as(t); i++) {
        struct ms_topology_as a;
        CHECK_OK(ms_topology_as(t, i, &a));
        CHECK_STR(a.id, ids[i]);
        CHECK_STR(a.name, names[i]);
    }
    saves_and_loads_back(t);
    ms_topology_free(t);

    /* The same with names longer than any fixed buffer would hold. */
    enum { LONG = 3000 };
    char *name = malloc(LONG + 1), *text = malloc(3 * (LONG + 100));
    REQUIRE(name && text);
    memset(name, 'a', LONG);
    name[LONG] = 0;
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        off += (size_t)snprintf(text + off, 3 * (LONG + 100) - off,
                                "address-space: %s%s\n  0000000000000000-"
                                "000000000000ffff (prio 0, i/o): bus\n\n",
                                name, i == 2 ? "#2" : "");
    }
    t = NULL;
    CHECK_OK(ms_topology_import_mtree(text, off, "t", NULL, 0, NULL, &err, &t));
    REQUIRE(t);
    for (size_t i = 0; i < 3 && i < ms_topology_nr_as(t); i++) {
        struct ms_topology_as a;
        CHECK_OK(ms_topology_as(t, i, &a));
        CHECK_EQ(strncmp(a.id, name, LONG), 0);
        CHECK_STR(a.id + LONG, i == 0 ? "" : i == 1 ? "#3" : "#2");
    }
    saves_and_loads_back(t);
    ms_topology_free(t);
    free(name);
    free(text);

    /* Regions: the second "r" skips "r#2", the third region's own name. */
    static const char regions[] =
        "address-space: memory\n"
        "  0000000000000000-000000000000ffff (prio 0, i/o): system\n"
        "    0000000000000000-00000000000000ff (prio 0, i/o): r\n"
        "    0000000000000100-00000000000001ff (prio 0, i/o): r\n"
        "    0000000000000200-00000000000002ff (prio 0, i/o): r#2\n"
        "\n";
    t = NULL;
    CHECK_OK(ms_topology_import_mtree(regions, strlen(regions), "t", NULL, 0,
                                      NULL, &err, &t));
    REQUIRE(t);
    static const char *const rid[] = {"r", "r#3", "r#2"};
    static const char *const rname[] = {"r", "r", "r#2"};
    static const char *const rline[] = {"line 3", "line 4", "line 5"};
    for (size_t i = 0; i < 3; i++) {
        struct ms_topology_region r;
        size_t at = ms_topology_find(t, rid[i]);
        REQUIRE(at != SIZE_MAX);
        CHECK_OK(ms_topology_region(t, at, &r));
        CHECK_STR(r.name, rname[i]);
        CHECK_STR(r.where, rline[i]);
    }
    saves_and_loads_back(t);
    ms_topology_free(t);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DATA-DIR\n", argv[0]);
        return 2;
    }
    data_dir = argv[1];
    test_roundtrip();
    test_errors();
    test_check();
    test_apply();
    test_build_failure();
    test_explain();
    test_import_guesses();
    test_import_as_ids();
    return ms_test_summary("tool_topology");
}
