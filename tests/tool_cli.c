/* SPDX-License-Identifier: MIT */
/*
 * The `memspace` command line, end to end: every command's output on small
 * hand-made topologies against golden files, exit codes, error messages on
 * bad input, and the SVG checked with a real XML parser and renderer.
 *
 * usage: tool_cli TOOL DATA-DIR GOLDEN-DIR
 * With MEMSPACE_UPDATE_GOLDEN=1 the golden files are (re)written instead
 * of compared; review the diff like code.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "testutil.h"

static const char *tool, *data, *golden, *tmpdir;
static int update;

struct run {
    int status;
    char *out;
    char *err;
};

static char *slurp(const char *path)
{
    char *s = tu_read_file(path);
    return s ? s : strdup("");
}

/* Run "TOOL ARGS" in DATA-DIR; capture stdout, stderr and exit status. */
static struct run run(const char *args)
{
    char cmd[8192], op[4200], ep[4200];
    snprintf(op, sizeof(op), "%s/out", tmpdir);
    snprintf(ep, sizeof(ep), "%s/err", tmpdir);
    snprintf(cmd, sizeof(cmd), "cd '%s' && ('%s' %s) >'%s' 2>'%s' </dev/null",
             data, tool, args, op, ep);
    int st = system(cmd);
    struct run r;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = slurp(op);
    r.err = slurp(ep);
    return r;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static void check_golden(const char *name, const char *got)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", golden, name);
    if (update) {
        FILE *f = fopen(path, "w");
        REQUIRE(f);
        fputs(got, f);
        fclose(f);
        return;
    }
    char *exp = tu_read_file(path);
    if (!exp) {
        fprintf(stderr, "missing golden file %s\n", path);
    }
    CHECK(exp != NULL);
    if (exp) {
        if (strcmp(exp, got) != 0) {
            fprintf(stderr, "%s differs from the output\n", path);
        }
        CHECK_STR(got, exp);
    }
    free(exp);
}

/* Command with golden stdout and an expected exit code. */
static void golden_case(const char *args, int status, const char *gname)
{
    struct run r = run(args);
    if (r.status != status) {
        fprintf(stderr, "memspace %s: exit %d, expected %d; stderr:\n%s\n",
                args, r.status, status, r.err);
    }
    CHECK_EQ(r.status, status);
    check_golden(gname, r.out);
    run_free(&r);
}

/* Command that must fail with @status and say @needle on stderr. */
static void error_case(const char *args, int status, const char *needle)
{
    struct run r = run(args);
    if (r.status != status || !strstr(r.err, needle)) {
        fprintf(stderr,
                "memspace %s: exit %d (expected %d), stderr:\n%s\n"
                "expected it to contain: %s\n",
                args, r.status, status, r.err, needle);
    }
    CHECK_EQ(r.status, status);
    CHECK(strstr(r.err, needle) != NULL);
    CHECK(r.out[0] == 0 || status == 0);
    run_free(&r);
}

static bool have(const char *prog)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

static void svg_case(const char *file)
{
    char args[8192];
    snprintf(args, sizeof(args), "draw %s -o '%s/pic.svg'", file, tmpdir);
    struct run r = run(args);
    CHECK_EQ(r.status, 0);
    run_free(&r);
    char svg[4200];
    snprintf(svg, sizeof(svg), "%s/pic.svg", tmpdir);
    char *s = tu_read_file(svg);
    CHECK(s && strstr(s, "<svg") && strstr(s, "</svg>"));
    free(s);
    char cmd[9000];
    if (!have("xmllint") || !have("rsvg-convert")) {
        fprintf(stderr, "xmllint or rsvg-convert missing: install "
                        "libxml2-utils and librsvg2-bin\n");
        CHECK(0);
        return;
    }
    snprintf(cmd, sizeof(cmd), "xmllint --noout '%s'", svg);
    CHECK_EQ(system(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "rsvg-convert '%s' -o '%s/pic.png' && test -s '%s/pic.png'", svg,
             tmpdir, tmpdir);
    CHECK_EQ(system(cmd), 0);
}

/* A topology of many regions, for the "readable at 1000+" picture. */
static void write_big(const char *path, unsigned n)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fprintf(f, "{\"format\": \"memspace-topology\", \"version\": 1,\n"
               " \"address_spaces\": [{\"name\": \"memory\", "
               "\"root\": \"sys\"}],\n"
               " \"regions\": [{\"name\": \"sys\", \"kind\": "
               "\"container\", \"size\": \"0x10000000000000000\",\n"
               "  \"subregions\": [\n");
    for (unsigned i = 0; i < n; i++) {
        fprintf(f,
                "   {\"name\": \"dev%u\", \"kind\": \"%s\", \"size\": "
                "\"4K\", \"addr\": \"0x%x\"}%s\n",
                i, i % 3 ? "io" : "ram", 0x10000000u + i * 0x2000u,
                i + 1 < n ? "," : "");
    }
    fprintf(f, "  ]}]}\n");
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s TOOL DATA-DIR GOLDEN-DIR\n", argv[0]);
        return 2;
    }
    static char tool_abs[4096];
    if (!realpath(argv[1], tool_abs)) {
        fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    tool = tool_abs;
    data = argv[2];
    golden = argv[3];
    update = getenv("MEMSPACE_UPDATE_GOLDEN") != NULL;
    char tmpl[] = "/tmp/memspace-cli-XXXXXX";
    tmpdir = mkdtemp(tmpl);
    REQUIRE(tmpdir);

    /* Help and usage. */
    struct run r = run("--help");
    CHECK_EQ(r.status, 0);
    CHECK(strstr(r.out, "usage: memspace") != NULL);
    run_free(&r);
    error_case("", 2, "usage: memspace");
    error_case("frobnicate x", 2, "unknown command 'frobnicate'");
    error_case("mtree -x basic.json", 2, "unknown option '-x'");
    error_case("explain basic.json", 2, "needs FILE and ADDR");
    error_case("explain basic.json 0xzz", 2, "not an address");
    error_case("draw basic.json", 2, "needs FILE and -o");
    error_case("diff basic.json", 2, "expected OLD and NEW");

    /* Printing. */
    golden_case("mtree basic.json", 0, "basic.mtree.txt");
    golden_case("mtree -D basic.json", 0, "basic.mtree-D.txt");
    golden_case("mtree -f basic.json", 0, "basic.mtree-f.txt");
    golden_case("mtree -o -D basic.json", 0, "basic.mtree-oD.txt");
    golden_case("json basic.json", 0, "basic.json.txt");

    /* Import of hand-made QEMU text, with and without the flat text. */
    golden_case("import small-mtree-oD.txt --flat small-flat.txt", 0,
                "small.import-flat.json");
    golden_case("import small-mtree-oD.txt", 0, "small.import.json");
    golden_case("mtree -f small-mtree-oD.txt", 0, "small.text-mtree-f.txt");
    {
        char args[8192];
        snprintf(args, sizeof(args),
                 "import small-mtree-oD.txt --flat small-flat.txt -o "
                 "'%s/s.json' && '%s' mtree -f '%s/s.json' | diff -u "
                 "small-flat.txt - && '%s' mtree -D '%s/s.json' | diff -u "
                 "small-mtree-D.txt -",
                 tmpdir, tool, tmpdir, tool, tmpdir);
        r = run(args);
        if (r.status) {
            fprintf(stderr, "%s%s", r.out, r.err);
        }
        CHECK_EQ(r.status, 0);
        run_free(&r);
    }
    r = run("import small-mtree-oD.txt");
    CHECK(strstr(r.err, "guessed kind (container or i/o) of \"ioport\"") !=
          NULL);
    run_free(&r);
    r = run("import small-mtree-oD.txt --flat small-flat.txt");
    CHECK(strstr(r.err, "guessed kind (container or i/o) of \"ioport\"") ==
          NULL);
    run_free(&r);

    /* Flat text of another machine: imported, but said so. */
    r = run("import small-mtree-oD.txt --flat basic-flat.txt");
    CHECK_EQ(r.status, 0);
    CHECK(strstr(r.err, "basic-flat.txt: note: the flat views of the import "
                        "differ from this text") != NULL);
    run_free(&r);
    r = run("import small-mtree-oD.txt --flat small-flat.txt");
    CHECK(strstr(r.err, "differ from this text") == NULL);
    run_free(&r);
    /* The same flat text without its final newlines (an edited file). */
    char src[4200];
    snprintf(src, sizeof(src), "%s/small-flat.txt", data);
    char *flat = tu_read_file(src);
    REQUIRE(flat != NULL);
    size_t fl = strlen(flat);
    while (fl && flat[fl - 1] == '\n') {
        fl--;
    }
    char cut[4200], cut_args[8600];
    snprintf(cut, sizeof(cut), "%s/cut-flat.txt", tmpdir);
    FILE *f = fopen(cut, "w");
    REQUIRE(f != NULL);
    fwrite(flat, 1, fl, f);
    fclose(f);
    free(flat);
    snprintf(cut_args, sizeof(cut_args),
             "import small-mtree-oD.txt --flat '%s'", cut);
    r = run(cut_args);
    CHECK_EQ(r.status, 0);
    CHECK(strstr(r.err, "differ from this text") == NULL);
    run_free(&r);

    /* Explain: overlapping, aliased, unassigned, hole, children. */
    golden_case("explain basic.json 0xa0010", 0, "explain-overlap.txt");
    golden_case("explain basic.json 0x100010", 0, "explain-alias.txt");
    golden_case("explain basic.json 0x80000000", 0, "explain-unassigned.txt");
    golden_case("explain basic.json 0xfe001000", 0, "explain-hole.txt");
    golden_case("explain basic.json 0xcf9 --as I/O", 0, "explain-io.txt");
    golden_case("explain basic.json 0x10 --as dma", 0, "explain-dma.txt");
    golden_case("explain overlap.json 0x1800", 0, "explain-order.txt");
    error_case("explain basic.json 0 --as nosuch", 1, "no address space");

    /* Diff: moves, resizes, ioeventfds, logging, a new address space. */
    golden_case("diff basic.json diff-move.json", 0, "diff-move.txt");
    golden_case("diff basic.json diff-resize.json", 0, "diff-resize.txt");
    golden_case("diff basic.json basic.json", 0, "diff-none.txt");
    golden_case("diff overlap.json diff-as.json", 0, "diff-as.txt");

    /* Validate. */
    golden_case("validate mistakes.json", 1, "validate-mistakes.txt");
    golden_case("validate basic.json", 0, "validate-basic.txt");

    /* Pictures. */
    svg_case("basic.json");
    svg_case("small-mtree-oD.txt");
    {
        char big[4200];
        snprintf(big, sizeof(big), "%s/big.json", tmpdir);
        write_big(big, 1200);
        char file[4300];
        snprintf(file, sizeof(file), "'%s'", big);
        svg_case(file);
    }

    /* Bad input: a clear message with the position, exit 1. */
    error_case("json bad/malformed.json", 1, "bad/malformed.json:4:");
    error_case("json bad/unknown-key.json", 1,
               "$.regions[0].sise: unknown key");
    error_case("json bad/unknown-key.json", 1, "unknown key \"sise\"");
    error_case("json bad/wrong-type.json", 1,
               "$.regions[0].subregions[0].enabled: expected true or false");
    error_case("json bad/out-of-range.json", 1,
               "$.regions[0].size: 0x20000000000000000 is out of range");
    error_case("json bad/prio-range.json", 1,
               "$.regions[0].priority: 2147483648 is out of range");
    error_case("json bad/version.json", 1, "unsupported version 2");
    error_case("json bad/dup-id.json", 1, "duplicate id \"ram\"");
    error_case("json bad/no-target.json", 1,
               "$.regions[0].target: no region has the id \"nowhere\"");
    error_case("json bad/cycle.json", 1, "reaches itself");
    error_case("mtree bad/truncated-mtree.txt", 1,
               "bad/truncated-mtree.txt:4: alias target");
    error_case("mtree bad/garbled-mtree.txt", 1,
               "bad/garbled-mtree.txt:3:32: not a region line");
    error_case("mtree bad/plain-mtree.txt", 1,
               "looks like `info mtree` without -D");
    error_case("mtree small-flat.txt", 1, "`info mtree -f` text");
    error_case("import small-mtree-oD.txt --flat small-mtree-D.txt", 1,
               "small-mtree-D.txt:1:1: this is tree text");
    error_case("mtree bad/binary.bin", 1, "neither a memspace JSON");
    error_case("mtree bad/binary-tree.txt", 1, "binary data");
    error_case("mtree bad/empty.json", 1, "empty file");
    error_case("mtree nosuchfile.json", 1, "nosuchfile.json: No such file");
    error_case("mtree mistakes.json", 1, "window leaves its target");
    {
        char path[4200], args[8400];
        snprintf(path, sizeof(path), "%s/huge.json", tmpdir);
        int fd = creat(path, 0600);
        REQUIRE(fd >= 0);
        REQUIRE(ftruncate(fd, (off_t)300 << 20) == 0);
        close(fd);
        snprintf(args, sizeof(args), "json '%s'", path);
        error_case(args, 1, "file too large");
        unlink(path);
    }

    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    (void)rc;
    return ms_test_summary("tool_cli");
}
