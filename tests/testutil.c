/* SPDX-License-Identifier: MIT */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static uint64_t dummy_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque;
    (void)offset;
    (void)size;
    return 0;
}

static void dummy_write(void *opaque, uint64_t offset, uint64_t value,
                        unsigned size)
{
    (void)opaque;
    (void)offset;
    (void)value;
    (void)size;
}

const struct ms_region_ops tu_dummy_ops = {
    .read = dummy_read,
    .write = dummy_write,
};

char tu_last_log[512];
int tu_log_count;

void tu_log(void *opaque, enum ms_log_level level, const char *msg)
{
    (void)opaque;
    (void)level;
    snprintf(tu_last_log, sizeof(tu_last_log), "%s", msg);
    tu_log_count++;
}

ms_region *tu_region(ms_system *sys, struct ms_region_config cfg)
{
    ms_region *r = NULL;
    int err = ms_region_new(sys, &cfg, &r);
    if (err) {
        fprintf(stderr, "cannot create region %s: %d\n", cfg.name, err);
        exit(1);
    }
    return r;
}

ms_region *tu_container(ms_system *sys, const char *name, uint64_t size)
{
    return tu_region(sys, (struct ms_region_config){.kind = MS_REGION_CONTAINER,
                                             .name = name,
                                             .size = size});
}

ms_region *tu_ram(ms_system *sys, const char *name, uint64_t size)
{
    return tu_region(sys, (struct ms_region_config){
                       .kind = MS_REGION_RAM, .name = name, .size = size});
}

ms_region *tu_rom(ms_system *sys, const char *name, uint64_t size)
{
    return tu_region(sys, (struct ms_region_config){
                       .kind = MS_REGION_ROM, .name = name, .size = size});
}

ms_region *tu_io(ms_system *sys, const char *name, uint64_t size)
{
    return tu_region(sys, (struct ms_region_config){.kind = MS_REGION_IO,
                                             .name = name,
                                             .size = size,
                                             .ops = &tu_dummy_ops});
}

ms_region *tu_iommu(ms_system *sys, const char *name, uint64_t size,
                    const struct ms_iommu_ops *ops, void *opaque)
{
    return tu_region(sys, (struct ms_region_config){.kind = MS_REGION_IOMMU,
                                                    .name = name,
                                                    .size = size,
                                                    .iommu_ops = ops,
                                                    .opaque = opaque});
}

ms_region *tu_alias(ms_system *sys, const char *name, ms_region *target,
                    uint64_t offset, uint64_t size)
{
    return tu_region(sys, (struct ms_region_config){.kind = MS_REGION_ALIAS,
                                             .name = name,
                                             .size = size,
                                             .alias_target = target,
                                             .alias_offset = offset});
}

ms_region *tu_host_ram(ms_system *sys, const char *name, void *host,
                       uint64_t size)
{
    return tu_region(sys, (struct ms_region_config){.kind = MS_REGION_RAM,
                                                    .name = name,
                                                    .size = size,
                                                    .backing = MS_RAM_HOST,
                                                    .host = host});
}

uint64_t tu_load(ms_as *as, uint64_t gpa, unsigned len, ms_tx_result *res)
{
    struct ms_attrs u = MS_ATTRS_UNSPECIFIED;
    return len == 1   ? ms_as_ldub(as, gpa, u, res)
           : len == 2 ? ms_as_lduw_le(as, gpa, u, res)
           : len == 4 ? ms_as_ldl_le(as, gpa, u, res)
                      : ms_as_ldq_le(as, gpa, u, res);
}

ms_tx_result tu_store(ms_as *as, uint64_t gpa, uint64_t v, unsigned len)
{
    struct ms_attrs u = MS_ATTRS_UNSPECIFIED;
    return len == 1   ? ms_as_stb(as, gpa, (uint8_t)v, u)
           : len == 2 ? ms_as_stw_le(as, gpa, (uint16_t)v, u)
           : len == 4 ? ms_as_stl_le(as, gpa, (uint32_t)v, u)
                      : ms_as_stq_le(as, gpa, v, u);
}

int tu_change(ms_region *r, enum tu_change what, bool on)
{
    switch (what) {
    case TU_HIDE:
        return ms_region_set_enabled(r, !on);
    case TU_READONLY:
        return ms_region_set_readonly(r, on);
    default:
        return ms_region_set_log(r, on, MS_DIRTY_VGA);
    }
}

void tu_add(ms_region *c, uint64_t offset, ms_region *sub, int32_t prio)
{
    int err = ms_region_add_prio(c, offset, sub, prio);
    if (err) {
        fprintf(stderr, "cannot add %s to %s: %d\n", ms_region_name(sub),
                ms_region_name(c), err);
        exit(1);
    }
    ms_region_unref(sub);
}

char *tu_flat_lines(const ms_as *as)
{
    const ms_flatview *fv = ms_as_flatview(as);
    size_t n = ms_flatview_nr_ranges(fv);
    size_t cap = 256 + n * 160, len = 0;
    char *buf = malloc(cap);
    REQUIRE(buf);
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        struct ms_flat_range fr;
        REQUIRE(ms_flatview_range(fv, i, &fr) == 0);
        const char *name = ms_region_name(fr.mr);
        size_t need = len + strlen(name) + 160;
        if (need > cap) {
            cap = need * 2;
            buf = realloc(buf, cap);
            REQUIRE(buf);
        }
        len += (size_t)sprintf(
            buf + len, "%016" PRIx64 "-%016" PRIx64 " %s%s%s", fr.gpa, fr.last,
            fr.nonvolatile ? "nv-" : "",
            fr.readonly ? "rom" : ms_region_type_name(fr.mr), " ");
        len += (size_t)sprintf(buf + len, "%s", name);
        if (fr.offset) {
            len += (size_t)sprintf(buf + len, " @%" PRIx64, fr.offset);
        }
        buf[len++] = '\n';
        buf[len] = 0;
    }
    return buf;
}

char *tu_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf) {
        buf[len] = 0;
    }
    return buf;
}

/* Split into blocks; each block a malloc()ed string. */
static char **split_blocks(const char *text, size_t *nr)
{
    size_t cap = 16, n = 0;
    char **blocks = malloc(cap * sizeof(*blocks));
    REQUIRE(blocks);
    const char *p = text;
    while (*p) {
        const char *end = strstr(p, "\n\n");
        size_t len = end ? (size_t)(end - p) + 1 : strlen(p);
        char *b = malloc(len + 1);
        REQUIRE(b);
        memcpy(b, p, len);
        b[len] = 0;
        if (strncmp(b, "FlatView #", 10) == 0) {
            /* Normalise the random view number. */
            char *nl = strchr(b, '\n');
            if (nl) {
                memmove(b + 10, nl, strlen(nl) + 1);
            }
        }
        if (n == cap) {
            cap *= 2;
            blocks = realloc(blocks, cap * sizeof(*blocks));
            REQUIRE(blocks);
        }
        blocks[n++] = b;
        p += len;
        while (*p == '\n') {
            p++;
        }
    }
    *nr = n;
    return blocks;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort, and with @set drop duplicates (freeing them). */
static void sort_blocks(char **b, size_t *n, int set)
{
    qsort(b, *n, sizeof(*b), str_cmp);
    if (!set || *n == 0) {
        return;
    }
    size_t out = 1;
    for (size_t i = 1; i < *n; i++) {
        if (strcmp(b[i], b[out - 1]) == 0) {
            free(b[i]);
        } else {
            b[out++] = b[i];
        }
    }
    *n = out;
}

int tu_blocks_equal(const char *got, const char *expected, int set, FILE *diag)
{
    size_t ng, ne;
    char **g = split_blocks(got, &ng);
    char **e = split_blocks(expected, &ne);
    sort_blocks(g, &ng, set);
    sort_blocks(e, &ne, set);
    size_t i = 0, j = 0;
    int equal = 1, shown = 0;
    while (i < ng || j < ne) {
        int c = i == ng ? 1 : j == ne ? -1 : strcmp(g[i], e[j]);
        if (c == 0) {
            i++;
            j++;
            continue;
        }
        equal = 0;
        if (diag && shown < 2) {
            fprintf(diag, "%s block:\n%s\n", c < 0 ? "unexpected" : "missing",
                    c < 0 ? g[i] : e[j]);
            shown++;
        }
        if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    for (size_t k = 0; k < ng; k++) {
        free(g[k]);
    }
    for (size_t k = 0; k < ne; k++) {
        free(e[k]);
    }
    free(g);
    free(e);
    return equal;
}

char *tu_strip_accel(const char *text)
{
    size_t len = strlen(text);
    char *out = malloc(len + 1);
    REQUIRE(out);
    size_t o = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        size_t keep = l;
        /* Range lines start with two spaces and a 16-digit address. */
        if (l > 20 && p[0] == ' ' && p[1] == ' ' && p[18] == '-') {
            while (keep >= 4 && memcmp(p + keep - 4, " KVM", 4) == 0) {
                keep -= 4;
            }
        }
        memcpy(out + o, p, keep);
        o += keep;
        if (nl) {
            out[o++] = '\n';
            p = nl + 1;
        } else {
            p += l;
        }
    }
    out[o] = 0;
    return out;
}

static int tu_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int tu_list_configs(const char *dir, const char *file, char **names, size_t max)
{
    DIR *d = opendir(dir);
    if (!d) {
        return -1;
    }
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        char path[8192];
        if (de->d_name[0] == '.') {
            continue;
        }
        int pl =
            snprintf(path, sizeof(path), "%s/%s/%s", dir, de->d_name, file);
        if (pl < 0 || (size_t)pl >= sizeof(path)) {
            continue;
        }
        FILE *f = fopen(path, "r");
        if (f) {
            fclose(f);
            char *name = strdup(de->d_name);
            if (name) {
                names[n++] = name;
            }
        }
    }
    closedir(d);
    qsort(names, n, sizeof(*names), tu_name_cmp);
    return (int)n;
}

void tu_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
}
