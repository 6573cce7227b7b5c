/* SPDX-License-Identifier: MIT */
/*
 * memspace: look at, query, compare and draw memory topologies.
 *
 *   memspace mtree [-f] [-D] [-o] FILE
 *   memspace import TREE.txt [--flat FLAT.txt] [-o OUT.json]
 *   memspace json FILE
 *   memspace explain FILE ADDR [--as NAME]
 *   memspace diff OLD NEW
 *   memspace draw FILE -o OUT.svg
 *   memspace validate FILE
 *
 * FILE is a memspace topology (JSON, docs/topology-format.md) or the text
 * of QEMU's `info mtree -D` (detected).  Exit codes: 0 ok, 1 failure, 2
 * usage.  Results go to stdout, errors and notes to stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tool.h"

#define MAX_INPUT (256u << 20)

static const char *prog = "memspace";

static const char usage_text[] =
    "usage: memspace COMMAND [OPTIONS] ARGS\n"
    "\n"
    "FILE is a memspace topology file (JSON) or the text of QEMU's\n"
    "`info mtree -D` (with or without -o); the kind is detected.\n"
    "\n"
    "commands:\n"
    "  mtree [-f] [-D] [-o] FILE   print it as QEMU 7.2's `info mtree`\n"
    "                              (-f flat views, -D disabled regions,\n"
    "                              -o owners)\n"
    "  import TREE.txt [--flat FLAT.txt] [-o OUT.json]\n"
    "                              convert `info mtree -D` text (helped by\n"
    "                              `info mtree -f` text) to JSON\n"
    "  json FILE                   the topology as JSON on stdout\n"
    "  explain FILE ADDR [--as NAME]\n"
    "                              which region answers ADDR and why\n"
    "  diff OLD NEW                listener events of the change OLD -> NEW\n"
    "  draw FILE -o OUT.svg        picture of the flat views and the tree\n"
    "  validate FILE               warn about likely mistakes (exit 1 if\n"
    "                              any)\n"
    "\n"
    "options: -h, --help  this text\n"
    "exit status: 0 ok, 1 failure, 2 usage error\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'memspace --help'.\n");
    return EXIT_USAGE;
}

/* ---- loading ------------------------------------------------------------ */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n > MAX_INPUT) {
            fprintf(stderr, "%s: %s: file too large (more than %u MiB)\n", prog,
                    path, MAX_INPUT >> 20);
            free(buf);
            fclose(f);
            return NULL;
        }
        if (got == 0) {
            break;
        }
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    if (!buf) {
        fprintf(stderr, "%s: %s: out of memory\n", prog, path);
        fclose(f);
        return NULL;
    }
    if (ferror(f)) {
        fprintf(stderr, "%s: %s: read error\n", prog, path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

static void print_error(const struct ms_topology_error *err)
{
    char buf[1400];
    fprintf(stderr, "%s: %s\n", prog,
            ms_topology_error_format(err, buf, sizeof(buf)));
}

enum kind { K_JSON, K_TREE, K_FLAT, K_EMPTY, K_OTHER };

static enum kind detect(const char *s, size_t len)
{
    size_t i = 0;
    if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
        i = 3;
    }
    while (i < len &&
           (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) {
        i++;
    }
    if (i == len) {
        return K_EMPTY;
    }
    if (s[i] == '{') {
        return K_JSON;
    }
    if (len - i >= 15 && memcmp(s + i, "address-space: ", 15) == 0) {
        return K_TREE;
    }
    if (len - i >= 10 && memcmp(s + i, "FlatView #", 10) == 0) {
        return K_FLAT;
    }
    return K_OTHER;
}

static void note_guesses(const ms_topology *t, const char *path)
{
    size_t n = ms_topology_nr_regions(t), count = 0;
    for (size_t i = 0; i < n; i++) {
        struct ms_topology_region r;
        if (ms_topology_region(t, i, &r) || !r.guessed) {
            continue;
        }
        count++;
        char what[128] = "";
        static const struct {
            unsigned flag;
            const char *text;
        } g[] = {
            {MS_GUESS_TERMINATES, "kind (container or i/o)"},
            {MS_GUESS_SIZE, "size (0 or 1)"},
            {MS_GUESS_READONLY, "read-only flag"},
            {MS_GUESS_TARGET, "alias target"},
        };
        for (size_t k = 0; k < 4; k++) {
            if (r.guessed & g[k].flag) {
                size_t l = strlen(what);
                snprintf(what + l, sizeof(what) - l, "%s%s", l ? ", " : "",
                         g[k].text);
            }
        }
        const char *line =
            strncmp(r.where, "line ", 5) == 0 ? r.where + 5 : r.where;
        fprintf(stderr, "%s:%s: note: guessed %s of \"%s\"\n", path, line, what,
                r.id);
    }
    if (count) {
        fprintf(stderr,
                "%s: note: %zu region(s) have guessed properties (the "
                "tree text cannot show them; the `info mtree -f` text "
                "given with --flat settles those it shows)\n",
                path, count);
    }
}

static int load_text(const char *path, const char *text, size_t len,
                     const char *flat_path, ms_topology **out, bool notes)
{
    struct ms_topology_error err;
    char *flat = NULL;
    size_t flat_len = 0;
    if (flat_path) {
        flat = read_all(flat_path, &flat_len);
        if (!flat) {
            return EXIT_FAIL;
        }
        if (detect(flat, flat_len) == K_EMPTY) {
            fprintf(stderr, "%s: %s: empty file\n", prog, flat_path);
            free(flat);
            return EXIT_FAIL;
        }
    }
    int rc = ms_topology_import_mtree(text, len, path, flat, flat_len,
                                      flat_path, &err, out);
    free(flat);
    if (rc) {
        print_error(&err);
        return EXIT_FAIL;
    }
    if (notes) {
        note_guesses(*out, path);
    }
    return EXIT_OK;
}

int tool_load(const char *path, ms_topology **out)
{
    size_t len;
    char *text = read_all(path, &len);
    if (!text) {
        return EXIT_FAIL;
    }
    int rc = EXIT_FAIL;
    struct ms_topology_error err;
    switch (detect(text, len)) {
    case K_JSON:
        if (ms_topology_load_json(text, len, path, &err, out) == 0) {
            rc = EXIT_OK;
        } else {
            print_error(&err);
        }
        break;
    case K_TREE:
        rc = load_text(path, text, len, NULL, out, false);
        break;
    case K_FLAT:
        fprintf(stderr,
                "%s: %s: this is `info mtree -f` text (flat views), which "
                "does not describe the tree; give `info mtree -D` text or "
                "a memspace JSON file\n",
                prog, path);
        break;
    case K_EMPTY:
        fprintf(stderr, "%s: %s: empty file\n", prog, path);
        break;
    case K_OTHER:
        fprintf(stderr,
                "%s: %s:1: neither a memspace JSON topology (starting with "
                "'{') nor QEMU `info mtree -D` text (starting with "
                "\"address-space: \")\n",
                prog, path);
        break;
    }
    free(text);
    return rc;
}

int tool_prepare(void *opaque, const struct ms_topology_region *d,
                 struct ms_region_config *cfg)
{
    struct built *b = opaque;
    if (d->kind != MS_REGION_RAM_DEVICE) {
        return 0;
    }
    if (b->nr_ramdev == b->cap_ramdev) {
        size_t n = b->cap_ramdev ? b->cap_ramdev * 2 : 8;
        void **np = realloc(b->ramdev, n * sizeof(*np));
        if (!np) {
            return -ENOMEM;
        }
        b->ramdev = np;
        uint64_t *nl = realloc(b->ramdev_len, n * sizeof(*nl));
        if (!nl) {
            return -ENOMEM;
        }
        b->ramdev_len = nl;
        b->cap_ramdev = n;
    }
    if (d->size == 0) {
        return 0; /* the library reports the size rule */
    }
    void *p = mmap(NULL, d->size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return -errno;
    }
    b->ramdev[b->nr_ramdev] = p;
    b->ramdev_len[b->nr_ramdev++] = d->size;
    cfg->backing = MS_RAM_HOST;
    cfg->host = p;
    return 0;
}

int tool_build(ms_topology *t, const char *path, struct built *b)
{
    memset(b, 0, sizeof(*b));
    b->t = t;
    if (ms_system_new(NULL, &b->sys)) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return EXIT_FAIL;
    }
    struct ms_topology_build_options opts = {.prepare = tool_prepare,
                                             .opaque = b};
    struct ms_topology_error err;
    if (ms_topology_build(t, b->sys, &opts, &err, &b->map)) {
        if (!err.file[0]) {
            snprintf(err.file, sizeof(err.file), "%s", path);
        }
        print_error(&err);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

void tool_built_free(struct built *b)
{
    ms_topology_map_free(b->map);
    ms_system_free(b->sys);
    for (size_t i = 0; i < b->nr_ramdev; i++) {
        munmap(b->ramdev[i], b->ramdev_len[i]);
    }
    free(b->ramdev);
    free(b->ramdev_len);
    ms_topology_free(b->t);
    memset(b, 0, sizeof(*b));
}

/* Load and build in one step. */
static int load_built(const char *path, struct built *b)
{
    ms_topology *t;
    int rc = tool_load(path, &t);
    if (rc) {
        return rc;
    }
    rc = tool_build(t, path, b);
    if (rc) {
        tool_built_free(b);
    }
    return rc;
}

void tool_range_line(FILE *f, uint64_t gpa, uint64_t last, ms_region *mr,
                     uint64_t offset, bool readonly, bool nonvolatile)
{
    fprintf(f, "%016" PRIx64 "-%016" PRIx64 " (prio %" PRId32 ", %s%s): %s",
            gpa, last, ms_region_priority(mr), nonvolatile ? "nv-" : "",
            readonly ? "rom" : ms_region_type_name(mr), ms_region_name(mr));
    if (offset) {
        fprintf(f, " @%016" PRIx64, offset);
    }
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- commands ----------------------------------------------------------- */

static int finish_output(int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: cannot write the output: %s\n", prog,
                strerror(errno));
        return EXIT_FAIL;
    }
    return rc;
}

static int cmd_mtree(int argc, char **argv)
{
    unsigned flags = 0;
    const char *file = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] && a[1] != '-') {
            for (const char *p = a + 1; *p; p++) {
                if (*p == 'f') {
                    flags |= MS_MTREE_FLAT;
                } else if (*p == 'D') {
                    flags |= MS_MTREE_DISABLED;
                } else if (*p == 'o') {
                    flags |= MS_MTREE_OWNER;
                } else if (*p == 'd') {
                    flags |= MS_MTREE_DISPATCH;
                } else {
                    return usage_error("mtree: unknown option '%s'", a);
                }
            }
        } else if (!file) {
            file = a;
        } else {
            return usage_error("mtree: unexpected argument '%s'", a);
        }
    }
    if (!file) {
        return usage_error("mtree: missing FILE%s", "");
    }
    struct built b;
    int rc = load_built(file, &b);
    if (rc) {
        return rc;
    }
    if (ms_mtree_fprint(b.sys, flags, stdout)) {
        fprintf(stderr, "%s: cannot print the topology\n", prog);
        rc = EXIT_FAIL;
    }
    tool_built_free(&b);
    return finish_output(rc);
}

static int write_json(const ms_topology *t, const char *out_path)
{
    char *s;
    if (ms_topology_save_json(t, &s)) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return EXIT_FAIL;
    }
    FILE *f = out_path ? fopen(out_path, "w") : stdout;
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, out_path, strerror(errno));
        free(s);
        return EXIT_FAIL;
    }
    size_t n = strlen(s);
    int rc = fwrite(s, 1, n, f) == n ? EXIT_OK : EXIT_FAIL;
    free(s);
    if (out_path) {
        if (fclose(f) != 0) {
            rc = EXIT_FAIL;
        }
        if (rc) {
            fprintf(stderr, "%s: %s: write error\n", prog, out_path);
        }
        return rc;
    }
    return finish_output(rc);
}

/* Blocks of `info mtree -f` text ("FlatView #N" and " KVM" dropped),
 * sorted, for a set comparison (QEMU prints blocks in random order). */
static size_t flat_blocks(const char *text, char ***out)
{
    size_t n = 0, cap = 16;
    char **b = malloc(cap * sizeof(*b));
    const char *p = text;
    while (b && *p) {
        const char *end = strstr(p, "\n\n");
        size_t len = end ? (size_t)(end - p) + 1 : strlen(p);
        /* + 2: a last line without its newline gets one. */
        char *blk = malloc(len + 2);
        if (!blk) {
            break;
        }
        size_t o = 0;
        const char *q = p;
        while (q < p + len) {
            const char *nl = memchr(q, '\n', (size_t)(p + len - q));
            size_t l = nl ? (size_t)(nl - q) : (size_t)(p + len - q);
            if (strncmp(q, "FlatView #", 10) != 0) {
                size_t keep = l;
                while (keep >= 4 && memcmp(q + keep - 4, " KVM", 4) == 0) {
                    keep -= 4;
                }
                memcpy(blk + o, q, keep);
                o += keep;
                blk[o++] = '\n';
            }
            q += l + 1;
        }
        blk[o] = 0;
        if (n == cap) {
            cap *= 2;
            char **nb = realloc(b, cap * sizeof(*nb));
            if (!nb) {
                free(blk);
                break;
            }
            b = nb;
        }
        b[n++] = blk;
        p += len;
        while (*p == '\n') {
            p++;
        }
    }
    if (b) {
        qsort(b, n, sizeof(*b), str_cmp);
    }
    *out = b;
    return n;
}

/* After an import with --flat: does the result print the same views? */
static void check_flat(const ms_topology *t, const char *flat_path)
{
    size_t len;
    char *want = read_all(flat_path, &len);
    if (!want) {
        return;
    }
    struct built b;
    char *got = NULL;
    ms_topology *copy = NULL;
    char *json = NULL;
    struct ms_topology_error err;
    if (ms_topology_save_json(t, &json) == 0 &&
        ms_topology_load_json(json, strlen(json), NULL, &err, &copy) == 0) {
        if (tool_build(copy, flat_path, &b) == EXIT_OK) {
            if (ms_mtree_to_string(b.sys, MS_MTREE_FLAT, &got)) {
                got = NULL;
            }
        }
        tool_built_free(&b);
    }
    free(json);
    if (got) {
        char **x, **y;
        size_t nx = flat_blocks(got, &x), ny = flat_blocks(want, &y);
        size_t i = 0, j = 0, differ = 0;
        while (x && y && (i < nx || j < ny)) {
            int c = i == nx ? 1 : j == ny ? -1 : strcmp(x[i], y[j]);
            if (c == 0) {
                i++;
                j++;
                continue;
            }
            differ++;
            c < 0 ? i++ : j++;
        }
        if (differ) {
            fprintf(stderr,
                    "%s: note: the flat views of the import differ from "
                    "this text in %zu block(s): is it from the same run "
                    "as the tree text?\n",
                    flat_path, differ);
        }
        for (size_t k = 0; x && k < nx; k++) {
            free(x[k]);
        }
        for (size_t k = 0; y && k < ny; k++) {
            free(y[k]);
        }
        free(x);
        free(y);
    }
    free(got);
    free(want);
}

static int cmd_import(int argc, char **argv)
{
    const char *tree = NULL, *flat = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--flat") == 0 || strcmp(argv[i], "-o") == 0) {
            if (i + 1 >= argc) {
                return usage_error("import: %s needs an argument", argv[i]);
            }
            if (argv[i][1] == 'o') {
                out = argv[++i];
            } else {
                flat = argv[++i];
            }
        } else if (strncmp(argv[i], "--flat=", 7) == 0) {
            flat = argv[i] + 7;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error("import: unknown option '%s'", argv[i]);
        } else if (!tree) {
            tree = argv[i];
        } else {
            return usage_error("import: unexpected argument '%s'", argv[i]);
        }
    }
    if (!tree) {
        return usage_error("import: missing TREE.txt%s", "");
    }
    size_t len;
    char *text = read_all(tree, &len);
    if (!text) {
        return EXIT_FAIL;
    }
    ms_topology *t = NULL;
    int rc;
    switch (detect(text, len)) {
    case K_TREE:
        rc = load_text(tree, text, len, flat, &t, true);
        break;
    case K_EMPTY:
        fprintf(stderr, "%s: %s: empty file\n", prog, tree);
        rc = EXIT_FAIL;
        break;
    case K_FLAT:
        fprintf(stderr,
                "%s: %s: this is `info mtree -f` text; import needs the "
                "tree text of `info mtree -D` (give the flat text with "
                "--flat)\n",
                prog, tree);
        rc = EXIT_FAIL;
        break;
    default:
        rc = load_text(tree, text, len, flat, &t, true);
        break;
    }
    free(text);
    if (rc) {
        return rc;
    }
    if (flat) {
        check_flat(t, flat);
    }
    rc = write_json(t, out);
    ms_topology_free(t);
    return rc;
}

static int cmd_json(int argc, char **argv)
{
    if (argc != 1 || argv[0][0] == '-') {
        return usage_error("json: expected exactly one FILE%s", "");
    }
    ms_topology *t;
    int rc = tool_load(argv[0], &t);
    if (rc) {
        return rc;
    }
    rc = write_json(t, NULL);
    ms_topology_free(t);
    return rc;
}

static void print_issue(void *opaque, const struct ms_topology_issue *is)
{
    const char *path = opaque;
    fprintf(stdout, "%s: %s: warning: %s [%s]\n", path, is->where, is->message,
            is->kind);
}

static int cmd_validate(int argc, char **argv)
{
    if (argc != 1 || argv[0][0] == '-') {
        return usage_error("validate: expected exactly one FILE%s", "");
    }
    ms_topology *t;
    int rc = tool_load(argv[0], &t);
    if (rc) {
        return rc;
    }
    int n = ms_topology_check(t, print_issue, argv[0]);
    ms_topology_free(t);
    if (n < 0) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return EXIT_FAIL;
    }
    if (n > 0) {
        fprintf(stderr, "%s: %s: %d warning(s)\n", prog, argv[0], n);
    }
    return finish_output(n > 0 ? EXIT_FAIL : EXIT_OK);
}

/* ---- explain ------------------------------------------------------------ */

static bool parse_addr(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-' || *s == '+') {
        return false;
    }
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end) {
        return false;
    }
    *out = v;
    return true;
}

static const char *kind_label(ms_region *r)
{
    switch (ms_region_kind(r)) {
    case MS_REGION_CONTAINER:
        return "container";
    case MS_REGION_RAM:
        return "ram";
    case MS_REGION_ROM:
        return "rom";
    case MS_REGION_ROM_DEVICE:
        return "rom device";
    case MS_REGION_RAM_DEVICE:
        return "ram device";
    case MS_REGION_IO:
        return "i/o";
    case MS_REGION_ALIAS:
        return "alias";
    case MS_REGION_RESERVATION:
        return "reservation";
    case MS_REGION_IOMMU:
        return "iommu";
    }
    return "?";
}

static void explain_region(ms_region *r)
{
    printf("%s (%s, prio %" PRId32 "%s%s)", ms_region_name(r), kind_label(r),
           ms_region_priority(r), ms_region_enabled(r) ? "" : ", disabled",
           ms_region_readonly(r) && ms_region_kind(r) != MS_REGION_ROM
               ? ", read-only"
               : "");
}

static int cmd_explain(int argc, char **argv)
{
    const char *file = NULL, *addr_s = NULL, *as_name = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--as") == 0) {
            if (i + 1 >= argc) {
                return usage_error("explain: --as needs a NAME%s", "");
            }
            as_name = argv[++i];
        } else if (strncmp(argv[i], "--as=", 5) == 0) {
            as_name = argv[i] + 5;
        } else if (argv[i][0] == '-' && argv[i][1] && !file) {
            return usage_error("explain: unknown option '%s'", argv[i]);
        } else if (!file) {
            file = argv[i];
        } else if (!addr_s) {
            addr_s = argv[i];
        } else {
            return usage_error("explain: unexpected argument '%s'", argv[i]);
        }
    }
    uint64_t gpa;
    if (!file || !addr_s) {
        return usage_error("explain: needs FILE and ADDR%s", "");
    }
    if (!parse_addr(addr_s, &gpa)) {
        return usage_error("explain: '%s' is not an address (e.g. 0xfee00000)",
                           addr_s);
    }
    struct built b;
    int rc = load_built(file, &b);
    if (rc) {
        return rc;
    }
    ms_as *as = NULL;
    size_t nas = ms_topology_nr_as(b.t);
    struct ms_topology_as ta;
    /* Without --as: the address space called "memory" (QEMU's system
     * memory) if there is one, else the first. */
    const char *want = as_name ? as_name : "memory";
    for (size_t i = 0; i < nas && !as; i++) {
        if (ms_topology_as(b.t, i, &ta) == 0 &&
            (strcmp(ta.name, want) == 0 || strcmp(ta.id, want) == 0)) {
            as = ms_topology_map_as(b.map, ta.id);
        }
    }
    for (size_t i = 0; i < nas && !as && !as_name; i++) {
        if (ms_topology_as(b.t, i, &ta) == 0) {
            as = ms_topology_map_as(b.map, ta.id);
        }
    }
    if (!as) {
        if (as_name) {
            fprintf(stderr, "%s: %s: no address space named \"%s\"\n", prog,
                    file, as_name);
        } else {
            fprintf(stderr, "%s: %s: the topology has no address space\n", prog,
                    file);
        }
        tool_built_free(&b);
        return EXIT_FAIL;
    }
    struct ms_explanation *e;
    rc = ms_explain(as, gpa, &e);
    if (rc) {
        fprintf(stderr, "%s: cannot explain 0x%" PRIx64 ": %s\n", prog, gpa,
                strerror(-rc));
        tool_built_free(&b);
        return EXIT_FAIL;
    }
    printf("address-space: %s\n", ms_as_name(as));
    printf("address: 0x%016" PRIx64 "\n", gpa);
    if (e->view_root && e->view_root != e->as_root) {
        printf("view root: %s (the address space's root %s is skipped: a "
               "full-size alias or a container with one child)\n",
               ms_region_name(e->view_root), ms_region_name(e->as_root));
    } else {
        printf("view root: %s\n",
               e->view_root ? ms_region_name(e->view_root) : "(none)");
    }
    if (e->region) {
        printf("answer: %s @0x%016" PRIx64 " (%s%s)\n",
               ms_region_name(e->region), e->offset,
               e->nonvolatile ? "nv-" : "",
               e->readonly ? "rom" : ms_region_type_name(e->region));
        printf("range: ");
        tool_range_line(stdout, e->range_gpa, e->range_last, e->region,
                        e->offset - (gpa - e->range_gpa), e->readonly,
                        e->nonvolatile);
        printf("\n");
    } else {
        printf("answer: unassigned (no enabled region claims this "
               "address)\n");
    }
    printf("path:\n");
    if (!e->nr_steps && e->view_root) {
        uint64_t size = ms_region_size(e->view_root);
        uint64_t first = ms_region_addr(e->view_root);
        printf("  (outside %s, which covers 0x%" PRIx64 "-0x%" PRIx64 ")\n",
               ms_region_name(e->view_root), first,
               size == MS_SIZE_FULL || size == 0 ? first + (size - 1)
                                                 : first + size - 1);
    }
    for (size_t i = 0; i < e->nr_steps; i++) {
        const struct ms_explain_step *s = &e->steps[i];
        printf("  %s", s->via_alias ? "-> " : "");
        explain_region(s->region);
        printf(" at offset 0x%" PRIx64, s->offset);
        ms_region *tg = ms_region_alias_target(s->region);
        if (tg) {
            printf(", alias of %s at 0x%" PRIx64 " + 0x%" PRIx64,
                   ms_region_name(tg), ms_region_alias_offset(s->region),
                   s->offset);
        }
        printf("\n");
    }
    if (e->nr_losers) {
        printf("not chosen:\n");
    }
    for (size_t i = 0; i < e->nr_losers; i++) {
        const struct ms_explain_loser *l = &e->losers[i];
        printf("  ");
        explain_region(l->region);
        switch (l->reason) {
        case MS_EXPLAIN_PRIORITY:
            printf(": lower priority than %s (%" PRId32 " < %" PRId32 ")",
                   ms_region_name(l->winner), ms_region_priority(l->region),
                   ms_region_priority(l->winner));
            break;
        case MS_EXPLAIN_ORDER:
            printf(": same priority as %s, which was added later",
                   ms_region_name(l->winner));
            break;
        case MS_EXPLAIN_DISABLED:
            printf(": disabled");
            break;
        case MS_EXPLAIN_HOLE:
            printf(": comes first, but nothing in it claims the address "
                   "(a hole)");
            break;
        case MS_EXPLAIN_CHILD:
            printf(": its subregion %s claims the address",
                   ms_region_name(l->winner));
            break;
        }
        if (l->reason != MS_EXPLAIN_HOLE && l->reason != MS_EXPLAIN_CHILD) {
            if (l->would) {
                printf("; would answer %s @0x%" PRIx64,
                       ms_region_name(l->would), l->would_offset);
            } else {
                printf("; would answer nothing there");
            }
        }
        printf("\n");
    }
    ms_explanation_free(e);
    tool_built_free(&b);
    return finish_output(EXIT_OK);
}

/* ---- diff --------------------------------------------------------------- */

struct rec {
    struct ms_listener l;
    ms_as *as;
    bool armed;
    bool removed;
    char *buf;
    size_t len;
    FILE *f;
};

static void rec_open(struct rec *r)
{
    if (!r->f) {
        r->f = open_memstream(&r->buf, &r->len);
    }
}

/* Start an event line "  WHAT RANGE-LINE" (no newline); false if off. */
static bool rec_section(struct rec *r, const char *what,
                        const struct ms_section *s)
{
    if (!r->armed) {
        return false;
    }
    rec_open(r);
    if (!r->f) {
        return false;
    }
    fprintf(r->f, "  %s ", what);
    tool_range_line(r->f, s->gpa, s->last, s->mr, s->offset_within_region,
                    s->readonly, s->nonvolatile);
    return true;
}

static int rec_add(struct ms_listener *l, const struct ms_section *s)
{
    struct rec *r = l->opaque;
    if (rec_section(r, "region_add", s)) {
        fputc('\n', r->f);
    }
    return 0;
}

static int rec_del(struct ms_listener *l, const struct ms_section *s)
{
    struct rec *r = l->opaque;
    if (rec_section(r, "region_del", s)) {
        fputc('\n', r->f);
    }
    return 0;
}

static int rec_log(struct ms_listener *l, const struct ms_section *s,
                   unsigned old_mask, unsigned new_mask, const char *what)
{
    struct rec *r = l->opaque;
    if (rec_section(r, what, s)) {
        fprintf(r->f, " log 0x%x -> 0x%x\n", old_mask, new_mask);
    }
    return 0;
}

static int rec_log_start(struct ms_listener *l, const struct ms_section *s,
                         unsigned old_mask, unsigned new_mask)
{
    return rec_log(l, s, old_mask, new_mask, "log_start");
}

static int rec_log_stop(struct ms_listener *l, const struct ms_section *s,
                        unsigned old_mask, unsigned new_mask)
{
    return rec_log(l, s, old_mask, new_mask, "log_stop");
}

static int rec_efd(struct ms_listener *l, const char *what,
                   const struct ms_section *s, bool match, uint64_t data,
                   int fd)
{
    struct rec *r = l->opaque;
    if (!r->armed) {
        return 0;
    }
    rec_open(r);
    if (!r->f) {
        return -ENOMEM;
    }
    fprintf(r->f, "  %s %016" PRIx64 " size %" PRIu64, what, s->gpa, s->size);
    if (match) {
        fprintf(r->f, " data 0x%" PRIx64, data);
    } else {
        fprintf(r->f, " any data");
    }
    fprintf(r->f, " fd %d\n", fd);
    return 0;
}

static int rec_efd_add(struct ms_listener *l, const struct ms_section *s,
                       bool match, uint64_t data, int fd)
{
    return rec_efd(l, "eventfd_add", s, match, data, fd);
}

static int rec_efd_del(struct ms_listener *l, const struct ms_section *s,
                       bool match, uint64_t data, int fd)
{
    return rec_efd(l, "eventfd_del", s, match, data, fd);
}

struct diff_ctx {
    struct rec *recs;
    size_t nr;
    struct built *b;
};

static int diff_prepare(void *opaque, const struct ms_topology_region *d,
                        struct ms_region_config *cfg)
{
    struct diff_ctx *c = opaque;
    return tool_prepare(c->b, d, cfg);
}

static void diff_as_removed(void *opaque, ms_as *as)
{
    struct diff_ctx *c = opaque;
    for (size_t i = 0; i < c->nr; i++) {
        if (c->recs[i].as == as && !c->recs[i].removed) {
            c->recs[i].armed = false;
            c->recs[i].removed = true;
            ms_listener_unregister(&c->recs[i].l);
        }
    }
}

static int cmd_diff(int argc, char **argv)
{
    if (argc != 2 || argv[0][0] == '-' || argv[1][0] == '-') {
        return usage_error("diff: expected OLD and NEW%s", "");
    }
    struct built b;
    int rc = load_built(argv[0], &b);
    if (rc) {
        return rc;
    }
    ms_topology *nt;
    rc = tool_load(argv[1], &nt);
    if (rc) {
        tool_built_free(&b);
        return rc;
    }
    size_t nold = ms_topology_nr_as(b.t);
    struct diff_ctx ctx = {.recs = calloc(nold ? nold : 1, sizeof(struct rec)),
                           .nr = nold,
                           .b = &b};
    if (!ctx.recs) {
        fprintf(stderr, "%s: out of memory\n", prog);
        ms_topology_free(nt);
        tool_built_free(&b);
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < nold; i++) {
        struct ms_topology_as ta;
        struct rec *r = &ctx.recs[i];
        if (ms_topology_as(b.t, i, &ta)) {
            continue;
        }
        r->as = ms_topology_map_as(b.map, ta.id);
        r->l = (struct ms_listener){
            .name = "memspace-diff",
            .opaque = r,
            .region_add = rec_add,
            .region_del = rec_del,
            .log_start = rec_log_start,
            .log_stop = rec_log_stop,
            .eventfd_add = rec_efd_add,
            .eventfd_del = rec_efd_del,
        };
        if (ms_listener_register(r->as, &r->l)) {
            fprintf(stderr, "%s: cannot listen to address space %s\n", prog,
                    ta.name);
            rc = EXIT_FAIL;
        }
        r->armed = true;
    }
    struct ms_topology_build_options opts = {
        .prepare = diff_prepare,
        .as_removed = diff_as_removed,
        .opaque = &ctx,
    };
    struct ms_topology_error err;
    int arc = rc ? 0 : ms_topology_apply(b.map, nt, &opts, &err);
    if (arc) {
        print_error(&err);
        rc = EXIT_FAIL;
    }
    if (!rc) {
        /* Old address spaces, in creation order, then the new ones. */
        for (size_t i = 0; i < nold; i++) {
            struct ms_topology_as ta;
            struct rec *r = &ctx.recs[i];
            if (ms_topology_as(b.t, i, &ta)) {
                continue;
            }
            printf("address-space: %s%s\n", ta.name,
                   r->removed ? " (removed)" : "");
            if (r->f) {
                fclose(r->f);
                r->f = NULL;
            }
            if (r->len) {
                fwrite(r->buf, 1, r->len, stdout);
            } else if (!r->removed) {
                printf("  (no events)\n");
            }
        }
        for (size_t k = 0; k < ms_topology_nr_as(nt); k++) {
            struct ms_topology_as ta;
            if (ms_topology_as(nt, k, &ta)) {
                continue;
            }
            ms_as *as = ms_topology_map_as(b.map, ta.id);
            bool old = false;
            for (size_t i = 0; i < nold; i++) {
                old |= ctx.recs[i].as == as && !ctx.recs[i].removed;
            }
            if (!old) {
                printf("address-space: %s (new)\n", ta.name);
            }
        }
    }
    for (size_t i = 0; i < nold; i++) {
        struct rec *r = &ctx.recs[i];
        if (r->f) {
            fclose(r->f);
        }
        free(r->buf);
        if (!r->removed && r->as) {
            r->armed = false;
            ms_listener_unregister(&r->l);
        }
    }
    free(ctx.recs);
    ms_topology_free(nt);
    tool_built_free(&b);
    return finish_output(rc);
}

/* ---- draw --------------------------------------------------------------- */

static int cmd_draw(int argc, char **argv)
{
    const char *file = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0) {
            if (i + 1 >= argc) {
                return usage_error("draw: -o needs OUT.svg%s", "");
            }
            out = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error("draw: unknown option '%s'", argv[i]);
        } else if (!file) {
            file = argv[i];
        } else {
            return usage_error("draw: unexpected argument '%s'", argv[i]);
        }
    }
    if (!file || !out) {
        return usage_error("draw: needs FILE and -o OUT.svg%s", "");
    }
    struct built b;
    int rc = load_built(file, &b);
    if (rc) {
        return rc;
    }
    FILE *f = strcmp(out, "-") == 0 ? stdout : fopen(out, "w");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, out, strerror(errno));
        tool_built_free(&b);
        return EXIT_FAIL;
    }
    rc = tool_draw_svg(&b, f);
    if (f != stdout && fclose(f) != 0) {
        rc = EXIT_FAIL;
    }
    if (rc) {
        fprintf(stderr, "%s: %s: cannot write the picture\n", prog, out);
    }
    tool_built_free(&b);
    return f == stdout ? finish_output(rc) : rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return finish_output(EXIT_OK);
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return finish_output(EXIT_OK);
        }
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"mtree", cmd_mtree},       {"import", cmd_import}, {"json", cmd_json},
        {"explain", cmd_explain},   {"diff", cmd_diff},     {"draw", cmd_draw},
        {"validate", cmd_validate},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(cmd, cmds[i].name) == 0) {
            return cmds[i].fn(argc - 2, argv + 2);
        }
    }
    return usage_error("unknown command '%s'", cmd);
}
