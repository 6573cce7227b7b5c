/* SPDX-License-Identifier: MIT */
/*
 * `memspace draw`: an SVG picture of a topology, written as plain text.
 *
 * One panel per distinct flat view: a vertical address bar with one row
 * per range (colour by type, name, offset, the aliases that lead there)
 * and a thin row for each gap (unassigned space, its size written instead
 * of drawn to scale, so a 4 KiB device next to 64 GiB of RAM stays
 * visible).  Then the region tree, one row per region, indented by depth.
 * Rows have a fixed height, so thousands of regions stay readable: the
 * picture just grows taller.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

#define COL_W 1400 /* each of the two columns */
#define ROW 14
#define GAP_ROW 10
#define MAX_DEPTH_DRAWN 64

struct pic {
    FILE *f; /* body, written to a memory stream */
    char *buf;
    size_t len;
    int y;  /* next free row */
    int x0; /* left edge of the current column */
};

/* Length of the valid UTF-8 sequence at @s, or 0. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n = s[0] >= 0xf0 && s[0] <= 0xf4   ? 4
               : s[0] >= 0xe0                 ? 3
               : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
                                              : 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    return n;
}

/* XML text: escaped, control characters and invalid UTF-8 as '?'. */
static void esc(FILE *f, const char *s)
{
    while (s && *s) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80) {
            size_t n = utf8_len((const unsigned char *)s);
            if (n) {
                fwrite(s, 1, n, f);
                s += n;
            } else {
                fputc('?', f);
                s++;
            }
            continue;
        }
        switch (c) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            fputc(c < 0x20 && c != '\t' ? '?' : c, f);
        }
        s++;
    }
}

static const char *type_colour(const char *type)
{
    if (strcmp(type, "ram") == 0) {
        return "#7fc97f";
    }
    if (strcmp(type, "rom") == 0) {
        return "#beaed4";
    }
    if (strcmp(type, "romd") == 0) {
        return "#fdc086";
    }
    if (strcmp(type, "ramd") == 0) {
        return "#ffff99";
    }
    return "#80b1d3"; /* i/o */
}

static const char *kind_colour(ms_region *r)
{
    switch (ms_region_kind(r)) {
    case MS_REGION_CONTAINER:
        return "#d9d9d9";
    case MS_REGION_ALIAS:
        return "#f4a6c6";
    case MS_REGION_RESERVATION:
        return "#bc80bd";
    default:
        return type_colour(ms_region_type_name(r));
    }
}

static void text(struct pic *p, int x, int y, const char *style, const char *s)
{
    fprintf(p->f, "<text x=\"%d\" y=\"%d\"%s>", p->x0 + x, y,
            style ? style : "");
    esc(p->f, s);
    fputs("</text>\n", p->f);
}

static void human(uint64_t size, char *buf, size_t n)
{
    static const char *const units[] = {"B",   "KiB", "MiB", "GiB",
                                        "TiB", "PiB", "EiB"};
    if (size == MS_SIZE_FULL) {
        snprintf(buf, n, "16 EiB");
        return;
    }
    unsigned u = 0;
    uint64_t v = size;
    while (v >= 1024 && v % 1024 == 0 && u < 6) {
        v /= 1024;
        u++;
    }
    if (v >= 10240 && u < 6) {
        snprintf(buf, n, "%.1f %s",
                 (double)size / (double)(1ull << (10 * (u + 1))), units[u + 1]);
        return;
    }
    snprintf(buf, n, "%" PRIu64 " %s", v, units[u]);
}

static void legend(struct pic *p)
{
    static const struct {
        const char *label, *colour;
    } items[] = {
        {"ram", "#7fc97f"},        {"rom / read-only", "#beaed4"},
        {"romd", "#fdc086"},       {"ramd", "#ffff99"},
        {"i/o", "#80b1d3"},        {"container", "#d9d9d9"},
        {"alias", "#f4a6c6"},      {"reservation", "#bc80bd"},
        {"unassigned", "#f0f0f0"},
    };
    int x = 10;
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        fprintf(p->f,
                "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"12\" "
                "fill=\"%s\" stroke=\"#555\"/>\n",
                p->x0 + x, p->y, items[i].colour);
        text(p, x + 18, p->y + 11, NULL, items[i].label);
        x += 40 + 8 * (int)strlen(items[i].label);
    }
    p->y += 28;
}

/* Names of the aliases crossed to reach @gpa: "via a -> b". */
static void via(ms_as *as, uint64_t gpa, char *buf, size_t n)
{
    buf[0] = 0;
    struct ms_explanation *e;
    if (ms_explain(as, gpa, &e)) {
        return;
    }
    size_t len = 0;
    for (size_t k = 0; k < e->nr_steps && len < n; k++) {
        ms_region *r = e->steps[k].region;
        if (!ms_region_alias_target(r)) {
            continue;
        }
        int w = snprintf(buf + len, n - len, "%s%s", len ? " -> " : "via ",
                         ms_region_name(r));
        len += w > 0 ? (size_t)w : 0;
    }
    ms_explanation_free(e);
}

static void view_panel(struct pic *p, struct built *b, ms_as **group, size_t ng)
{
    const ms_flatview *fv = ms_as_flatview(group[0]);
    ms_region *root = ms_flatview_root(fv);
    char title[4096];
    size_t len = 0;
    for (size_t k = 0; k < ng && len < sizeof(title); k++) {
        int w = snprintf(title + len, sizeof(title) - len, "%s%s",
                         k ? ", " : "address space ", ms_as_name(group[k]));
        len += w > 0 ? (size_t)w : 0;
    }
    if (len < sizeof(title)) {
        snprintf(title + len, sizeof(title) - len, "  (view root: %s)",
                 root ? ms_region_name(root) : "none");
    }
    text(p, 10, p->y + 14, " font-weight=\"bold\" font-size=\"14\"", title);
    p->y += 22;
    size_t nr = ms_flatview_nr_ranges(fv);
    if (nr == 0) {
        text(p, 30, p->y + 12, " fill=\"#777\"", "(nothing rendered)");
        p->y += ROW + 8;
        return;
    }
    int bar_x = 290, bar_w = 60;
    uint64_t next = 0;
    bool at_start = true;
    for (size_t i = 0; i < nr; i++) {
        struct ms_flat_range fr;
        if (ms_flatview_range(fv, i, &fr)) {
            continue;
        }
        if (fr.gpa != next || (at_start && fr.gpa != 0)) {
            char h[32], s[96];
            human(fr.gpa - next, h, sizeof(h));
            snprintf(s, sizeof(s), "gap of %s (0x%" PRIx64 ")", h,
                     fr.gpa - next);
            fprintf(p->f,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                    "fill=\"#f0f0f0\" stroke=\"#bbb\" "
                    "stroke-dasharray=\"3,2\"/>\n",
                    p->x0 + bar_x, p->y, bar_w, GAP_ROW);
            text(p, bar_x + bar_w + 10, p->y + 9,
                 " fill=\"#888\" font-size=\"9\"", s);
            p->y += GAP_ROW;
        }
        at_start = false;
        const char *type = fr.readonly ? "rom" : ms_region_type_name(fr.mr);
        char addr[64], label[2048], h[32], v[1024];
        snprintf(addr, sizeof(addr), "%016" PRIx64 "-%016" PRIx64, fr.gpa,
                 fr.last);
        human(fr.last - fr.gpa == UINT64_MAX ? MS_SIZE_FULL
                                             : fr.last - fr.gpa + 1,
              h, sizeof(h));
        via(group[0], fr.gpa, v, sizeof(v));
        if (fr.offset) {
            snprintf(label, sizeof(label), "%s  %s%s  %s  @0x%" PRIx64 "  %s",
                     ms_region_name(fr.mr), fr.nonvolatile ? "nv-" : "", type,
                     h, fr.offset, v);
        } else {
            snprintf(label, sizeof(label), "%s  %s%s  %s  %s",
                     ms_region_name(fr.mr), fr.nonvolatile ? "nv-" : "", type,
                     h, v);
        }
        text(p, 10, p->y + 11, " font-family=\"monospace\" font-size=\"11\"",
             addr);
        fprintf(p->f,
                "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                "fill=\"%s\" stroke=\"#333\"><title>",
                p->x0 + bar_x, p->y, bar_w, ROW, type_colour(type));
        esc(p->f, label);
        fputs("</title></rect>\n", p->f);
        text(p, bar_x + bar_w + 10, p->y + 11, NULL, label);
        p->y += ROW;
        next = fr.last + 1;
        if (fr.last == UINT64_MAX) {
            break;
        }
    }
    if (next != 0) {
        char h[32], s[96];
        human(0 - next, h, sizeof(h));
        snprintf(s, sizeof(s), "gap of %s up to 0xffffffffffffffff", h);
        fprintf(p->f,
                "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                "fill=\"#f0f0f0\" stroke=\"#bbb\" "
                "stroke-dasharray=\"3,2\"/>\n",
                p->x0 + bar_x, p->y, bar_w, GAP_ROW);
        text(p, bar_x + bar_w + 10, p->y + 9, " fill=\"#888\" font-size=\"9\"",
             s);
        p->y += GAP_ROW;
    }
    (void)b;
    p->y += 14;
}

struct child {
    ms_region *r;
    size_t idx;
};

static int child_cmp(const void *a, const void *b)
{
    const struct child *x = a, *y = b;
    uint64_t ax = ms_region_addr(x->r), ay = ms_region_addr(y->r);
    if (ax != ay) {
        return ax < ay ? -1 : 1;
    }
    int32_t px = ms_region_priority(x->r), py = ms_region_priority(y->r);
    if (px != py) {
        return px > py ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

static void tree_row(struct pic *p, ms_region *r, unsigned depth, uint64_t base)
{
    uint64_t start = base + ms_region_addr(r);
    uint64_t size = ms_region_size(r);
    uint64_t last = size == 0              ? start
                    : size == MS_SIZE_FULL ? start - 1
                                           : start + size - 1;
    int x = 10 + 18 * (int)(depth < MAX_DEPTH_DRAWN ? depth : MAX_DEPTH_DRAWN);
    char label[2048];
    ms_region *tg = ms_region_alias_target(r);
    int n = snprintf(label, sizeof(label),
                     "%016" PRIx64 "-%016" PRIx64 "  %s  prio %" PRId32, start,
                     last, ms_region_name(r), ms_region_priority(r));
    if (n > 0 && (size_t)n < sizeof(label) && tg) {
        n += snprintf(label + n, sizeof(label) - (size_t)n,
                      "  -> %s @0x%" PRIx64, ms_region_name(tg),
                      ms_region_alias_offset(r));
    }
    if (n > 0 && (size_t)n < sizeof(label) && !ms_region_enabled(r)) {
        snprintf(label + n, sizeof(label) - (size_t)n, "  [disabled]");
    }
    fprintf(p->f,
            "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"11\" fill=\"%s\" "
            "stroke=\"#333\"%s/>\n",
            p->x0 + x, p->y + 1, kind_colour(r),
            ms_region_enabled(r) ? "" : " fill-opacity=\"0.3\"");
    text(p, x + 18, p->y + 11,
         ms_region_enabled(r)
             ? " font-family=\"monospace\" font-size=\"11\""
             : " font-family=\"monospace\" font-size=\"11\" fill=\"#999\"",
         label);
    p->y += ROW;
}

/* Iterative pre-order walk (trees can be deep). */
static int tree(struct pic *p, ms_region *root)
{
    struct frame {
        ms_region *r;
        unsigned depth;
        uint64_t base;
    };
    size_t cap = 256, sp = 0;
    struct frame *st = malloc(cap * sizeof(*st));
    if (!st) {
        return -ENOMEM;
    }
    st[sp++] = (struct frame){root, 0, 0};
    while (sp) {
        struct frame fr = st[--sp];
        tree_row(p, fr.r, fr.depth, fr.base);
        size_t n = ms_region_nr_subregions(fr.r);
        if (!n) {
            continue;
        }
        struct child *kids = malloc(n * sizeof(*kids));
        if (!kids) {
            free(st);
            return -ENOMEM;
        }
        size_t k = 0;
        for (ms_region *s = ms_region_subregion(fr.r, 0); s && k < n;
             s = ms_region_subregion(fr.r, k)) {
            kids[k].r = s;
            kids[k].idx = k;
            k++;
        }
        qsort(kids, k, sizeof(*kids), child_cmp);
        if (sp + k > cap) {
            cap = (sp + k) * 2;
            struct frame *ns = realloc(st, cap * sizeof(*ns));
            if (!ns) {
                free(kids);
                free(st);
                return -ENOMEM;
            }
            st = ns;
        }
        uint64_t base = fr.base + ms_region_addr(fr.r);
        for (size_t j = k; j-- > 0;) {
            st[sp++] = (struct frame){kids[j].r, fr.depth + 1, base};
        }
        free(kids);
    }
    free(st);
    return 0;
}

int tool_draw_svg(struct built *b, FILE *out)
{
    struct pic p = {0};
    p.f = open_memstream(&p.buf, &p.len);
    if (!p.f) {
        return EXIT_FAIL;
    }
    p.y = 10;
    text(&p, 10, p.y + 16, " font-weight=\"bold\" font-size=\"18\"",
         "memspace topology");
    p.y += 30;
    legend(&p);
    size_t nas = ms_topology_nr_as(b->t);
    ms_as **all = calloc(nas ? nas : 1, sizeof(*all));
    ms_as **group = calloc(nas ? nas : 1, sizeof(*group));
    bool *done = calloc(nas ? nas : 1, sizeof(*done));
    int rc = all && group && done ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && i < nas; i++) {
        struct ms_topology_as ta;
        if (ms_topology_as(b->t, i, &ta) == 0) {
            all[i] = ms_topology_map_as(b->map, ta.id);
        }
    }
    text(&p, 10, p.y + 16, " font-weight=\"bold\" font-size=\"16\"",
         "Flat views (gaps compressed)");
    p.y += 26;
    for (size_t i = 0; !rc && i < nas; i++) {
        if (done[i] || !all[i]) {
            continue;
        }
        size_t ng = 0;
        const ms_flatview *fv = ms_as_flatview(all[i]);
        for (size_t j = i; j < nas; j++) {
            if (!done[j] && all[j] && ms_as_flatview(all[j]) == fv) {
                done[j] = true;
                group[ng++] = all[j];
            }
        }
        view_panel(&p, b, group, ng);
    }
    /* The tree goes in a second column, so tall maps stay under the
     * renderers' size limits (32767 pixels for librsvg). */
    int left_height = p.y;
    p.x0 = COL_W;
    p.y = 10 + 30 + 28;
    text(&p, 10, p.y + 16, " font-weight=\"bold\" font-size=\"16\"",
         "Region tree");
    p.y += 26;
    /* Roots: address-space roots (once each), then every other region of
     * the description without a container (alias targets, spares). */
    size_t nr = ms_topology_nr_regions(b->t);
    for (size_t i = 0; !rc && i < nr; i++) {
        struct ms_topology_region d;
        if (ms_topology_region(b->t, i, &d) || d.container != SIZE_MAX) {
            continue;
        }
        ms_region *r = ms_topology_map_region(b->map, d.id);
        if (!r) {
            continue;
        }
        char head[1024];
        size_t hl = 0;
        for (size_t k = 0; k < nas && hl < sizeof(head); k++) {
            if (all[k] && ms_as_root(all[k]) == r) {
                int w =
                    snprintf(head + hl, sizeof(head) - hl, "%s%s",
                             hl ? ", " : "address space ", ms_as_name(all[k]));
                hl += w > 0 ? (size_t)w : 0;
            }
        }
        if (!hl) {
            snprintf(head, sizeof(head),
                     "region %s (not an address-space "
                     "root)",
                     ms_region_name(r));
        }
        text(&p, 10, p.y + 13, " font-weight=\"bold\"", head);
        p.y += 18;
        rc = tree(&p, r);
        p.y += 8;
    }
    free(all);
    free(group);
    free(done);
    if (fclose(p.f) != 0) {
        rc = -EIO;
    }
    int height = (p.y > left_height ? p.y : left_height) + 10;
    if (!rc) {
        fprintf(out,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                "height=\"%d\" viewBox=\"0 0 %d %d\" "
                "font-family=\"sans-serif\" font-size=\"12\">\n"
                "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                2 * COL_W, height, 2 * COL_W, height);
        fwrite(p.buf, 1, p.len, out);
        fputs("</svg>\n", out);
        rc = ferror(out) ? -EIO : 0;
    }
    free(p.buf);
    return rc ? EXIT_FAIL : EXIT_OK;
}
