/* SPDX-License-Identifier: MIT */
/*
 * Reference access splitter (see access_ref.h).
 *
 * The model below is written from memory-model.md section 7 alone and
 * deliberately works differently from src/access.c: ranges are found by a
 * linear scan of the published view (ms_flatview_range()), RAM is a shadow
 * copied byte by byte, and device values are handled as bytes (7.5): a
 * piece's bytes are its callbacks' values serialised in the device's order
 * one after the other, or the first bytes of a single wider callback; a
 * buffer receives those bytes as they are and a typed load reads them in
 * the requested order.  No shifts, masks or byte swaps of whole values.
 */
#include "access_ref.h"

#include <inttypes.h>
#include <memspace/memspace.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODELS 16
#define MAX_CALLS 8192
#define MAX_LEN 48
#define FILL_MAX 600
#define PAGE 4096u
#define SHEET 0x2000u /* bytes of the sheet (struct ctx) */

uint64_t ar_next(struct ar_src *s, uint64_t bound)
{
    uint64_t v;
    if (bound <= 1) {
        return 0;
    }
    if (s->data) {
        v = 0;
        for (int i = 0; i < 8 && s->pos < s->len; i++) {
            v = (v << 8) | s->data[s->pos++];
            if ((bound >> (8 * (i + 1))) == 0) {
                break;
            }
        }
    } else {
        s->rng ^= s->rng << 13;
        s->rng ^= s->rng >> 7;
        s->rng ^= s->rng << 17;
        v = s->rng;
    }
    return v % bound;
}

enum akind {
    A_RAM,
    A_ROM,
    A_RAMDEV,
    A_ROMDEV,
    A_IO,
    A_RESV,
    A_ALIAS,
    A_CONT,
    A_IOMMU
};

struct ctx;

struct amodel {
    struct ctx *c;
    int id;
    enum akind kind;
    ms_region *r;
    struct ms_region_ops ops;
    int style;     /* 0 plain callbacks, 1 *_with_attrs, 2 none */
    bool picky;    /* has accepts() */
    bool readonly; /* the region's own flag */
    uint8_t *host; /* RAM block (library's or ours) */
    uint8_t *shadow;
    uint64_t block;
    uint8_t *owned; /* RAM device memory we allocated */
    uint64_t iommu_mask; /* IOMMU: page offset mask */
    bool on_sheet;       /* a slice of the sheet, placed at its offset */
    uint64_t sheet_at;
};

struct call {
    int id;
    char kind;
    uint64_t off;
    unsigned size;
    uint64_t val;
};

struct calls {
    struct call *v;
    int n;
};

struct ctx {
    struct ar_src *src;
    bool verbose;
    ms_system *sys;
    ms_region *root;
    ms_as *as;
    bool big;
    struct amodel m[MAX_MODELS];
    int nm;
    /*
     * The sheet: the first models are RAM regions over consecutive slices
     * of one 8 KiB host buffer, placed at their offsets, so that its pages
     * (the two 4 KiB ones, or the 8 KiB one) are made of small RAM ranges
     * back to back in host memory (the access path caches and copies such
     * pages whole); the other regions then go to SHEET and up.
     */
    bool sheet;
    uint8_t *sheet_buf;
    uint64_t sheet_next; /* the first byte no slice has yet */
    struct calls real, exp;
    int real_logs, exp_logs;
    struct ms_flat_range *fr;
    size_t nfr;
    int errors;
    const char *op;
};

/* Edits may legitimately fail (loops, bad windows): the model follows. */
static void may_fail(int err)
{
    (void)err;
}

static uint64_t nx(struct ctx *c, uint64_t bound)
{
    return ar_next(c->src, bound);
}

/* ---- device behaviour (shared by the callbacks and the model) ---------- */

static uint64_t dev_value(int id, uint64_t off, unsigned size)
{
    uint64_t x = (uint64_t)id * UINT64_C(0x9e3779b97f4a7c15) ^
                 off * UINT64_C(0xc2b2ae3d27d4eb4f) ^
                 (uint64_t)size * UINT64_C(0x165667b19e3779f9);
    x ^= x >> 29;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 32;
    return x; /* garbage above the access size on purpose */
}

static ms_tx_result dev_err(int id, uint64_t off, unsigned size)
{
    return (off + size + (uint64_t)id) % 7 == 3 ? MS_TX_ERROR : MS_TX_OK;
}

static bool dev_accept(int id, uint64_t off, unsigned size, bool w)
{
    return (off * 7 + size * 3 + (uint64_t)id + w) % 5 != 0;
}

/*
 * IOMMU behaviour (shared by the callback and the model): a translation of
 * page @off / (mask + 1) for index @idx, into the same address space, so
 * chains and loops happen; sometimes no target at all.
 */
static struct ms_iommu_entry iommu_entry(const struct amodel *m, uint64_t off,
                                         int idx)
{
    uint64_t page = off & ~m->iommu_mask;
    uint64_t h = dev_value(m->id + 100 * idx, page, 3);
    uint64_t to = (h >> 8) % 0x220;
    if ((h >> 40) % 12 == 0) {
        to = UINT64_MAX - (h >> 8) % 0x70; /* the top: pieces end at 2^64 */
    }
    unsigned perm = (h & 7) < 4 ? MS_IOMMU_RW : (unsigned)(h & 3);
    return (struct ms_iommu_entry){
        .target_as = (h >> 50) % 16 == 0 ? NULL : m->c->as,
        .translated_addr = to & ~m->iommu_mask,
        .addr_mask = m->iommu_mask,
        .perm = perm,
    };
}

static void log_call(struct calls *l, int id, char kind, uint64_t off,
                     unsigned size, uint64_t val)
{
    if (l->n < MAX_CALLS) {
        l->v[l->n] = (struct call){id, kind, off, size, val};
    }
    l->n++;
}

/* The real callbacks. */

static uint64_t cb_read(void *opaque, uint64_t off, unsigned size)
{
    struct amodel *m = opaque;
    uint64_t v = dev_value(m->id, off, size);
    log_call(&m->c->real, m->id, 'r', off, size, v);
    return v;
}

static void cb_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
    struct amodel *m = opaque;
    log_call(&m->c->real, m->id, 'w', off, size, v);
}

static ms_tx_result cb_read_a(void *opaque, uint64_t off, uint64_t *v,
                              unsigned size, struct ms_attrs attrs)
{
    struct amodel *m = opaque;
    (void)attrs;
    *v = cb_read(opaque, off, size);
    return dev_err(m->id, off, size);
}

static ms_tx_result cb_write_a(void *opaque, uint64_t off, uint64_t v,
                               unsigned size, struct ms_attrs attrs)
{
    struct amodel *m = opaque;
    (void)attrs;
    cb_write(opaque, off, v, size);
    return dev_err(m->id, off, size);
}

static struct ms_iommu_entry cb_translate(void *opaque, uint64_t off,
                                          enum ms_iommu_perm flag, int idx)
{
    (void)flag; /* the library checks the permission */
    return iommu_entry(opaque, off, idx);
}

static int cb_index(void *opaque, struct ms_attrs attrs)
{
    (void)opaque;
    return attrs.requester_id & 1;
}

static const struct ms_iommu_ops iommu_plain = {.translate = cb_translate};
static const struct ms_iommu_ops iommu_indexed = {.translate = cb_translate,
                                                  .attrs_to_index = cb_index};

static bool cb_accepts(void *opaque, uint64_t off, unsigned size, bool w,
                       struct ms_attrs attrs)
{
    struct amodel *m = opaque;
    (void)attrs;
    log_call(&m->c->real, m->id, 'a', off, size, w);
    return dev_accept(m->id, off, size, w);
}

static void on_log(void *opaque, enum ms_log_level level, const char *msg)
{
    struct ctx *c = opaque;
    (void)msg;
    if (level == MS_LOG_GUEST_ERROR) {
        c->real_logs++;
    }
}

/* ---- the model ------------------------------------------------------------
 */

static void ser(uint64_t v, unsigned n, bool big, uint8_t *out)
{
    for (unsigned k = 0; k < n; k++) {
        unsigned byte = big ? n - 1 - k : k;
        out[k] = (uint8_t)(v >> (8 * byte));
    }
}

static uint64_t deser(const uint8_t *in, unsigned n, bool big)
{
    uint64_t v = 0;
    for (unsigned k = 0; k < n; k++) {
        unsigned byte = big ? n - 1 - k : k;
        v |= (uint64_t)in[k] << (8 * byte);
    }
    return v;
}

static uint64_t low_bytes(uint64_t v, unsigned n)
{
    uint8_t b[8];
    ser(v, n, false, b);
    return deser(b, n, false);
}

static struct amodel *model_of(struct ctx *c, const ms_region *r)
{
    for (int i = 0; i < c->nm; i++) {
        if (c->m[i].r == r) {
            return &c->m[i];
        }
    }
    return NULL;
}

static void snapshot(struct ctx *c)
{
    const ms_flatview *fv = ms_as_flatview(c->as);
    c->nfr = ms_flatview_nr_ranges(fv);
    free(c->fr);
    c->fr = calloc(c->nfr ? c->nfr : 1, sizeof(*c->fr));
    for (size_t i = 0; i < c->nfr; i++) {
        may_fail(ms_flatview_range(fv, i, &c->fr[i]));
    }
}

/* What the model needs to know about a piece. */
enum rkind { R_NONE, R_RAM, R_RAMDEV, R_ROMDEV, R_IO, R_RESV };

struct rx {
    enum rkind k;
    struct amodel *m;
    const struct ms_flat_range *fr;
    uint64_t off;
    uint64_t l;
};

static void xlat_one(struct ctx *c, uint64_t gpa, uint64_t len, struct rx *x)
{
    memset(x, 0, sizeof(*x));
    x->off = gpa;
    x->l = len;
    for (size_t i = 0; i < c->nfr; i++) {
        if (gpa >= c->fr[i].gpa && gpa <= c->fr[i].last) {
            x->fr = &c->fr[i];
            break;
        }
    }
    if (!x->fr) {
        return;
    }
    x->m = model_of(c, x->fr->mr);
    x->off = x->fr->offset + (gpa - x->fr->gpa);
    switch (x->m->kind) {
    case A_RAM:
    case A_ROM:
        x->k = R_RAM;
        break;
    case A_RAMDEV:
        x->k = R_RAMDEV;
        break;
    case A_ROMDEV:
        x->k = R_ROMDEV;
        break;
    case A_IO:
        x->k = R_IO;
        break;
    default:
        x->k = R_RESV;
        break;
    }
    if (x->k == R_RAM || x->k == R_RAMDEV) {
        uint64_t bytes_left = x->fr->last - gpa; /* minus one */
        if (len - 1 > bytes_left) {
            x->l = bytes_left + 1;
        }
    }
}

/* Translation through IOMMUs (spec 7.6), as the text says. */
static void xlat(struct ctx *c, uint64_t gpa, uint64_t len, bool w,
                 struct ms_attrs a, struct rx *x)
{
    xlat_one(c, gpa, len, x);
    unsigned need = w ? MS_IOMMU_WO : MS_IOMMU_RO;
    for (int depth = 0; x->m && x->m->kind == A_IOMMU; depth++) {
        struct ms_iommu_entry t = {0};
        bool ok = false;
        if (depth == 16) {
            c->exp_logs++; /* a loop */
        } else {
            const struct amodel *m = x->m;
            t = iommu_entry(m, x->off, m->style ? a.requester_id & 1 : 0);
            if (!(t.perm & need)) {
                /* denied: unassigned, logged by its rules */
            } else if (!t.target_as) {
                c->exp_logs++;
            } else {
                ok = true;
            }
        }
        if (!ok) { /* unassigned at the IOMMU offset */
            x->k = R_NONE;
            x->m = NULL;
            x->fr = NULL;
            x->l = len;
            return;
        }
        uint64_t to = (t.translated_addr & ~t.addr_mask) | (x->off & t.addr_mask);
        uint64_t room = (to | t.addr_mask) - to;
        if (len - 1 > room) {
            len = room + 1;
        }
        xlat_one(c, to, len, x);
        len = x->l;
    }
}

static bool direct(const struct rx *x, bool w)
{
    if (w) {
        return x->k == R_RAM && !x->m->readonly;
    }
    return x->k == R_RAM || (x->k == R_ROMDEV && x->fr->romd);
}

/* The access rules in force for a piece. */
struct rops {
    bool dev; /* the caller's ops */
    bool ramdev;
    unsigned vmin, vmax, imin, imax;
    bool vunal, iunal, big;
};

static void rops_of(struct ctx *c, const struct rx *x, struct rops *o)
{
    memset(o, 0, sizeof(*o));
    if (x->k == R_RAMDEV) {
        o->ramdev = true;
        o->vmin = o->imin = 1;
        o->vmax = o->imax = 8;
        o->vunal = o->iunal = true;
        o->big = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
    } else if (x->k == R_ROMDEV || x->k == R_IO) {
        const struct ms_region_ops *p = &x->m->ops;
        o->dev = true;
        o->vmin = p->valid.min_access_size;
        o->vmax = p->valid.max_access_size;
        o->vunal = p->valid.unaligned;
        o->imin = p->impl.min_access_size;
        o->imax = p->impl.max_access_size;
        o->iunal = p->impl.unaligned;
        o->big = p->endianness == MS_ENDIAN_BIG ||
                 (p->endianness == MS_ENDIAN_NATIVE && c->big);
    }
    /* else: unassigned ops (RAM not accessed directly, holes...) */
}

static unsigned piece(const struct rops *o, uint64_t l, uint64_t a)
{
    unsigned max = o->vmax ? o->vmax : 4;
    if (!o->iunal && a) {
        uint64_t low = 1;
        while (!(a & low)) {
            low <<= 1;
        }
        if (low < max) {
            max = (unsigned)low;
        }
    }
    if (l > max) {
        l = max;
    }
    unsigned p = 8;
    while (p > l) {
        p /= 2;
    }
    return p;
}

static bool valid(struct ctx *c, const struct rx *x, const struct rops *o,
                  uint64_t off, unsigned size, bool w)
{
    bool ok;
    if (!o->dev && !o->ramdev) {
        ok = false; /* unassigned: accepts nothing */
    } else if (o->dev && x->m->picky &&
               (log_call(&c->exp, x->m->id, 'a', off, size, w),
                !dev_accept(x->m->id, off, size, w))) {
        ok = false;
    } else if (!o->vunal && off % size) {
        ok = false;
    } else if (!o->vmax) {
        ok = true;
    } else {
        ok = size >= o->vmin && size <= o->vmax;
    }
    if (!ok) {
        c->exp_logs++;
    }
    return ok;
}

static unsigned step_of(const struct rops *o, unsigned size)
{
    unsigned amin = o->imin ? o->imin : 1;
    unsigned amax = o->imax ? o->imax : 4;
    unsigned s = size < amax ? size : amax;
    return s < amin ? amin : s;
}

static uint64_t one_read(struct ctx *c, struct amodel *m, uint64_t off,
                         unsigned size, ms_tx_result *res)
{
    if (m->style == 2) {
        return UINT64_MAX;
    }
    uint64_t v = dev_value(m->id, off, size);
    log_call(&c->exp, m->id, 'r', off, size, v);
    if (m->style == 1) {
        *res |= dev_err(m->id, off, size);
    }
    return v;
}

static void one_write(struct ctx *c, struct amodel *m, uint64_t off,
                      unsigned size, uint64_t v, ms_tx_result *res)
{
    if (m->style == 2) {
        return;
    }
    log_call(&c->exp, m->id, 'w', off, size, v);
    if (m->style == 1) {
        *res |= dev_err(m->id, off, size);
    }
}

/* A device read of @size bytes at @off as bytes in address order. */
static ms_tx_result dev_read_bytes(struct ctx *c, const struct rx *x,
                                   const struct rops *o, uint64_t off,
                                   unsigned size, uint8_t *out)
{
    ms_tx_result res = MS_TX_OK;
    struct amodel *m = x->m;
    if (o->ramdev) {
        if (off < m->block && size <= m->block - off) {
            memcpy(out, m->shadow + off, size);
        } else {
            memset(out, 0, size);
            res = MS_TX_DECODE_ERROR;
        }
        return res;
    }
    unsigned step = step_of(o, size);
    if (step <= size) {
        for (unsigned i = 0; i < size; i += step) {
            uint64_t v = one_read(c, m, off + i, step, &res);
            ser(v, step, o->big, out + i);
        }
    } else {
        uint8_t wide[8];
        ser(one_read(c, m, off, step, &res), step, o->big, wide);
        memcpy(out, wide, size); /* the lowest addresses remain */
    }
    return res;
}

static ms_tx_result dev_write_bytes(struct ctx *c, const struct rx *x,
                                    const struct rops *o, uint64_t off,
                                    unsigned size, const uint8_t *in)
{
    ms_tx_result res = MS_TX_OK;
    struct amodel *m = x->m;
    if (o->ramdev) {
        if (off < m->block && size <= m->block - off) {
            memcpy(m->shadow + off, in, size);
        } else {
            res = MS_TX_DECODE_ERROR;
        }
        return res;
    }
    unsigned step = step_of(o, size);
    if (step <= size) {
        for (unsigned i = 0; i < size; i += step) {
            one_write(c, m, off + i, step, deser(in + i, step, o->big), &res);
        }
    } else {
        uint8_t wide[8] = {0};
        memcpy(wide, in, size); /* the rest of the wide access is zero */
        one_write(c, m, off, step, deser(wide, step, o->big), &res);
    }
    return res;
}

static ms_tx_result dispatch_read(struct ctx *c, const struct rx *x,
                                  unsigned size, uint8_t *out)
{
    struct rops o;
    rops_of(c, x, &o);
    if (!valid(c, x, &o, x->off, size, false)) {
        memset(out, 0, size);
        return MS_TX_DECODE_ERROR;
    }
    return dev_read_bytes(c, x, &o, x->off, size, out);
}

static ms_tx_result dispatch_write(struct ctx *c, const struct rx *x,
                                   unsigned size, const uint8_t *in)
{
    struct rops o;
    rops_of(c, x, &o);
    if (!valid(c, x, &o, x->off, size, true)) {
        return MS_TX_DECODE_ERROR;
    }
    return dev_write_bytes(c, x, &o, x->off, size, in);
}

static bool is_ram(const struct rx *x)
{
    return x->k == R_RAM || x->k == R_RAMDEV;
}

static ms_tx_result ref_rw(struct ctx *c, uint64_t gpa, struct ms_attrs a,
                           uint8_t *buf, uint64_t len, bool w)
{
    ms_tx_result r = MS_TX_OK;
    bool first = true;
    while (len) {
        struct rx x;
        xlat(c, gpa, len, w, a, &x);
        uint64_t l;
        if (a.memory && !is_ram(&x)) {
            c->exp_logs++;
            if (first) {
                return MS_TX_ACCESS_ERROR;
            }
            r |= MS_TX_ACCESS_ERROR;
            l = x.l;
        } else if (!direct(&x, w)) {
            struct rops o;
            rops_of(c, &x, &o);
            l = piece(&o, x.l, x.off);
            r |= w ? dispatch_write(c, &x, (unsigned)l, buf)
                   : dispatch_read(c, &x, (unsigned)l, buf);
        } else {
            l = x.l;
            if (x.k == R_ROMDEV && l > x.m->block - x.off) {
                l = x.m->block - x.off;
            }
            for (uint64_t k = 0; k < l; k++) {
                if (w) {
                    x.m->shadow[x.off + k] = buf[k];
                } else {
                    buf[k] = x.m->shadow[x.off + k];
                }
            }
        }
        first = false;
        len -= l;
        gpa += l;
        buf += l;
    }
    return r;
}

static uint64_t ref_ld(struct ctx *c, uint64_t gpa, struct ms_attrs a,
                       unsigned size, bool big, ms_tx_result *r)
{
    struct rx x;
    uint8_t b[8];
    xlat(c, gpa, size, false, a, &x);
    *r = MS_TX_OK;
    if (x.k == R_RAM && x.l == size) {
        memcpy(b, x.m->shadow + x.off, size);
    } else if (x.k == R_ROMDEV && x.fr->romd && x.l == size &&
               x.off < x.m->block &&
               size <= x.m->block - x.off) {
        memcpy(b, x.m->shadow + x.off, size);
    } else {
        *r = dispatch_read(c, &x, size, b);
    }
    return deser(b, size, big);
}

static ms_tx_result ref_st(struct ctx *c, uint64_t gpa, struct ms_attrs a,
                           unsigned size, bool big, uint64_t v)
{
    struct rx x;
    uint8_t b[8];
    ser(v, size, big, b);
    xlat(c, gpa, size, true, a, &x);
    if (x.k == R_RAM && !x.m->readonly && x.l == size) {
        memcpy(x.m->shadow + x.off, b, size);
        return MS_TX_OK;
    }
    return dispatch_write(c, &x, size, b);
}

static void ref_write_rom(struct ctx *c, uint64_t gpa, struct ms_attrs a,
                          const uint8_t *buf, uint64_t len)
{
    while (len) {
        struct rx x;
        xlat(c, gpa, len, true, a, &x);
        uint64_t l = x.l;
        if (is_ram(&x) || (x.k == R_ROMDEV && x.fr->romd)) {
            if (l > x.m->block - x.off) {
                l = x.m->block - x.off;
            }
            memcpy(x.m->shadow + x.off, buf, l);
        } else {
            struct rops o;
            rops_of(c, &x, &o);
            l = piece(&o, l, x.off);
        }
        len -= l;
        gpa += l;
        buf += l;
    }
}

static bool ref_access_valid(struct ctx *c, uint64_t gpa, uint64_t len, bool w)
{
    while (len) {
        struct rx x;
        xlat(c, gpa, len, w, MS_ATTRS_UNSPECIFIED, &x);
        uint64_t l = x.l;
        if (!direct(&x, w)) {
            struct rops o;
            rops_of(c, &x, &o);
            l = piece(&o, l, gpa);
            if (!valid(c, &x, &o, x.off, (unsigned)l, w)) {
                return false;
            }
        }
        len -= l;
        gpa += l;
    }
    return true;
}

/* ---- comparing -------------------------------------------------------------
 */

#define FAIL(c, ...)                                                           \
    do {                                                                       \
        (c)->errors++;                                                         \
        if ((c)->verbose) {                                                    \
            fprintf(stderr, "access_ref: %s: ", (c)->op);                      \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

static void begin(struct ctx *c, const char *op)
{
    c->op = op;
    c->real.n = c->exp.n = 0;
    c->real_logs = c->exp_logs = 0;
}

static void compare(struct ctx *c)
{
    if (c->real.n != c->exp.n) {
        FAIL(c, "%d device calls, expected %d", c->real.n, c->exp.n);
    }
    int n = c->real.n < c->exp.n ? c->real.n : c->exp.n;
    if (n > MAX_CALLS) {
        n = MAX_CALLS;
    }
    for (int i = 0; i < n; i++) {
        const struct call *a = &c->real.v[i], *b = &c->exp.v[i];
        if (a->id != b->id || a->kind != b->kind || a->off != b->off ||
            a->size != b->size || a->val != b->val) {
            FAIL(c,
                 "call %d: dev %d %c off 0x%" PRIx64 " size %u val 0x%" PRIx64
                 ", expected dev %d %c off 0x%" PRIx64
                 " size %u val 0x%" PRIx64,
                 i, a->id, a->kind, a->off, a->size, a->val, b->id, b->kind,
                 b->off, b->size, b->val);
            break;
        }
    }
    if (c->real_logs != c->exp_logs) {
        FAIL(c, "%d guest-error log lines, expected %d", c->real_logs,
             c->exp_logs);
    }
    for (int i = 0; i < c->nm; i++) {
        struct amodel *m = &c->m[i];
        if (m->shadow && memcmp(m->shadow, m->host, m->block) != 0) {
            FAIL(c, "RAM of region %d differs from the model", m->id);
            memcpy(m->shadow, m->host, m->block); /* report once */
        }
    }
}

static void check_res(struct ctx *c, ms_tx_result got, ms_tx_result exp)
{
    if (got != exp) {
        FAIL(c, "result %u, expected %u", got, exp);
    }
}

static void check_buf(struct ctx *c, const uint8_t *got, const uint8_t *exp,
                      uint64_t len)
{
    for (uint64_t i = 0; i < len; i++) {
        if (got[i] != exp[i]) {
            FAIL(c, "byte %" PRIu64 ": 0x%02x, expected 0x%02x", i, got[i],
                 exp[i]);
            return;
        }
    }
}

/* ---- building a topology ----------------------------------------------- */

static const unsigned sizes[] = {0, 1, 2, 4, 8};

static void random_ops(struct ctx *c, struct amodel *m)
{
    struct ms_region_ops *o = &m->ops;
    memset(o, 0, sizeof(*o));
    m->style = (int)nx(c, 3);
    if (m->style == 0) {
        o->read = cb_read;
        o->write = cb_write;
    } else if (m->style == 1) {
        o->read_with_attrs = cb_read_a;
        o->write_with_attrs = cb_write_a;
    }
    o->endianness = (enum ms_endian)nx(c, 3);
    o->valid.min_access_size = sizes[nx(c, 5)];
    o->valid.max_access_size = sizes[nx(c, 5)];
    o->valid.unaligned = nx(c, 2);
    m->picky = nx(c, 3) == 0;
    if (m->picky) {
        o->valid.accepts = cb_accepts;
    }
    o->impl.min_access_size = sizes[nx(c, 5)];
    o->impl.max_access_size = sizes[nx(c, 5)];
    o->impl.unaligned = nx(c, 2);
}

static ms_region *create(struct ctx *c, struct amodel *m)
{
    static const char *names[] = {"r0",  "r1",  "r2",  "r3", "r4",  "r5",
                                  "r6",  "r7",  "r8",  "r9", "r10", "r11",
                                  "r12", "r13", "r14", "r15"};
    struct ms_region_config cfg = {.name = names[m->id]};
    uint64_t size = 1 + nx(c, 0x60);
    static const enum akind pick[] = {A_RAM,  A_RAM,   A_ROM,  A_RAMDEV,
                                      A_ROMDEV, A_IO,  A_IO,   A_IO,
                                      A_RESV, A_ALIAS, A_CONT, A_IOMMU};
    m->kind = pick[nx(c, sizeof(pick) / sizeof(pick[0]))];
    if (c->sheet && c->sheet_next < SHEET) {
        /* The next slice, mostly a multiple of 8 bytes; the last one
         * (the 6th, or before) reaches the end of the sheet. */
        uint64_t unit = nx(c, 4) == 0 ? 1 : 8;
        uint64_t left = SHEET - c->sheet_next;
        size = m->id < 5 ? unit * (1 + nx(c, 0x800 / unit)) : left;
        size = size < left ? size : left;
        m->kind = A_RAM;
        m->on_sheet = true;
        m->sheet_at = c->sheet_next;
        c->sheet_next += size;
        cfg.backing = MS_RAM_HOST;
        cfg.host = c->sheet_buf + m->sheet_at;
    }
    cfg.size = size;
    switch (m->kind) {
    case A_RAM:
        cfg.kind = MS_REGION_RAM;
        break;
    case A_ROM:
        cfg.kind = MS_REGION_ROM;
        m->readonly = true;
        break;
    case A_RAMDEV:
        cfg.kind = MS_REGION_RAM_DEVICE;
        cfg.backing = MS_RAM_HOST;
        m->owned = malloc(size);
        cfg.host = m->owned;
        break;
    case A_ROMDEV:
        cfg.kind = MS_REGION_ROM_DEVICE;
        random_ops(c, m);
        cfg.ops = &m->ops;
        cfg.opaque = m;
        cfg.romd_off = nx(c, 3) == 0;
        break;
    case A_IO:
        cfg.kind = MS_REGION_IO;
        random_ops(c, m);
        cfg.ops = &m->ops;
        cfg.opaque = m;
        break;
    case A_RESV:
        cfg.kind = MS_REGION_RESERVATION;
        break;
    case A_ALIAS: {
        struct amodel *t = m->id ? &c->m[nx(c, (uint64_t)m->id)] : NULL;
        if (!t || !t->r || ms_region_size(t->r) == 0) {
            m->kind = A_CONT;
            cfg.kind = MS_REGION_CONTAINER;
            cfg.size = 0x100;
            break;
        }
        uint64_t ts = ms_region_size(t->r);
        cfg.kind = MS_REGION_ALIAS;
        cfg.alias_target = t->r;
        cfg.alias_offset = nx(c, ts);
        cfg.size = 1 + nx(c, ts - cfg.alias_offset);
        break;
    }
    case A_CONT:
        cfg.kind = MS_REGION_CONTAINER;
        cfg.size = 0x100;
        break;
    case A_IOMMU: {
        static const uint64_t masks[] = {0, 0x7, 0xf, 0xff};
        cfg.kind = MS_REGION_IOMMU;
        m->style = (int)nx(c, 2);
        cfg.iommu_ops = m->style ? &iommu_indexed : &iommu_plain;
        cfg.opaque = m;
        m->iommu_mask = masks[nx(c, 4)];
        break;
    }
    }
    ms_region *r = NULL;
    if (ms_region_new(c->sys, &cfg, &r) != 0) {
        free(m->owned);
        m->owned = NULL;
        return NULL;
    }
    if (cfg.kind == MS_REGION_RAM || cfg.kind == MS_REGION_ROM ||
        cfg.kind == MS_REGION_RAM_DEVICE || cfg.kind == MS_REGION_ROM_DEVICE) {
        m->host = ms_region_host(r);
        m->block = size;
        m->shadow = malloc(size);
        for (uint64_t i = 0; i < size; i++) {
            m->host[i] = (uint8_t)nx(c, 256);
        }
        memcpy(m->shadow, m->host, size);
    }
    return r;
}

static void build(struct ctx *c)
{
    c->sheet = nx(c, 4) == 0;
    if (c->sheet && !(c->sheet_buf = aligned_alloc(SHEET, SHEET))) {
        c->sheet = false;
    }
    c->nm = 1 + (int)nx(c, MAX_MODELS - 1);
    for (int i = 0; i < c->nm; i++) {
        struct amodel *m = &c->m[i];
        m->c = c;
        m->id = i;
        m->r = create(c, m);
    }
    for (int i = 0; i < c->nm; i++) {
        struct amodel *m = &c->m[i];
        if (m->r && m->on_sheet) {
            may_fail(ms_region_add_prio(c->root, m->sheet_at, m->r,
                                        (int32_t)nx(c, 3) - 1));
            continue;
        }
        if (!m->r || nx(c, 8) == 0) {
            continue; /* not placed (may still be an alias target) */
        }
        ms_region *parent = c->root;
        uint64_t at = nx(c, 0x180) + (c->sheet ? SHEET : 0);
        int j = (int)nx(c, (uint64_t)c->nm);
        if (nx(c, 3) == 0 && c->m[j].kind == A_CONT && c->m[j].r) {
            parent = c->m[j].r;
            at = nx(c, 0x100);
        } else if (nx(c, 16) == 0) {
            at = UINT64_MAX - nx(c, 0x60); /* the top: accesses wrap */
        }
        may_fail(ms_region_add_prio(parent, at, m->r, (int32_t)nx(c, 3) - 1));
    }
    for (int i = 0; i < c->nm; i++) {
        struct amodel *m = &c->m[i];
        if (m->r && (m->kind == A_RAM || m->kind == A_ROM) && nx(c, 4) == 0) {
            m->readonly = !m->readonly;
            may_fail(ms_region_set_readonly(m->r, m->readonly));
        }
    }
}

/* A topology edit between accesses (the view and caches must follow). */
static void edit(struct ctx *c)
{
    struct amodel *m = &c->m[nx(c, (uint64_t)c->nm)];
    if (!m->r) {
        return;
    }
    switch (nx(c, 4)) {
    case 0:
        may_fail(ms_region_set_enabled(m->r, !ms_region_enabled(m->r)));
        break;
    case 1:
        if (m->kind == A_ROMDEV) {
            may_fail(ms_region_set_romd(m->r, !ms_region_romd(m->r)));
        }
        break;
    case 2:
        if (ms_region_container(m->r)) {
            may_fail(ms_region_set_address(
                m->r, nx(c, 0x180) + (c->sheet && !m->on_sheet ? SHEET : 0)));
        }
        break;
    default:
        if (m->kind == A_RAM || m->kind == A_ROM) {
            m->readonly = !m->readonly;
            may_fail(ms_region_set_readonly(m->r, m->readonly));
        }
        break;
    }
    snapshot(c);
}

/* ---- one random access, through both ----------------------------------- */

static uint64_t pick_gpa(struct ctx *c)
{
    if (nx(c, 12) == 0) {
        return UINT64_MAX - nx(c, 0x70);
    }
    if (c->sheet) {
        return nx(c, 2) ? nx(c, SHEET) : SHEET - 0x40 + nx(c, 0x260);
    }
    return nx(c, 0x220);
}

static struct ms_attrs pick_attrs(struct ctx *c)
{
    struct ms_attrs a = MS_ATTRS_UNSPECIFIED;
    a.memory = nx(c, 6) == 0;
    a.requester_id = (unsigned)nx(c, 4);
    return a;
}

static void op_rw(struct ctx *c, bool w)
{
    uint64_t gpa = pick_gpa(c);
    uint64_t len = nx(c, MAX_LEN + 1);
    struct ms_attrs a = pick_attrs(c);
    uint8_t got[MAX_LEN], exp[MAX_LEN];
    for (unsigned i = 0; i < MAX_LEN; i++) {
        got[i] = exp[i] = w ? (uint8_t)nx(c, 256) : (uint8_t)(0xa5 ^ i);
    }
    begin(c, w ? "write" : "read");
    ms_tx_result r = w ? ms_as_write(c->as, gpa, a, got, len)
                       : ms_as_read(c->as, gpa, a, got, len);
    ms_tx_result e = ref_rw(c, gpa, a, exp, len, w);
    check_res(c, r, e);
    check_buf(c, got, exp, MAX_LEN);
    compare(c);
}

static void op_fill(struct ctx *c)
{
    uint64_t gpa = pick_gpa(c);
    uint64_t len = nx(c, FILL_MAX);
    uint8_t byte = (uint8_t)nx(c, 256);
    struct ms_attrs a = pick_attrs(c);
    begin(c, "fill");
    ms_tx_result r = ms_as_fill(c->as, gpa, a, byte, len);
    static uint8_t chunk[512];
    memset(chunk, byte, sizeof(chunk));
    ms_tx_result e = MS_TX_OK;
    while (len) {
        uint64_t l = len < 512 ? len : 512;
        e |= ref_rw(c, gpa, a, chunk, l, true);
        gpa += l;
        len -= l;
    }
    check_res(c, r, e);
    compare(c);
}

static void op_ldst(struct ctx *c)
{
    static const unsigned sz[] = {1, 2, 4, 8};
    unsigned size = sz[nx(c, 4)];
    int order = (int)nx(c, 3); /* le, be, target */
    bool big = order == 1 || (order == 2 && c->big);
    uint64_t gpa = pick_gpa(c);
    struct ms_attrs a = pick_attrs(c);
    if (nx(c, 2)) {
        begin(c, "load");
        ms_tx_result r = 77, e;
        uint64_t v = 0;
        switch (size * 4 + (unsigned)order) {
        case 4:
        case 5:
        case 6:
            v = ms_as_ldub(c->as, gpa, a, &r);
            break;
        case 8:
            v = ms_as_lduw_le(c->as, gpa, a, &r);
            break;
        case 9:
            v = ms_as_lduw_be(c->as, gpa, a, &r);
            break;
        case 10:
            v = ms_as_lduw(c->as, gpa, a, &r);
            break;
        case 16:
            v = ms_as_ldl_le(c->as, gpa, a, &r);
            break;
        case 17:
            v = ms_as_ldl_be(c->as, gpa, a, &r);
            break;
        case 18:
            v = ms_as_ldl(c->as, gpa, a, &r);
            break;
        case 32:
            v = ms_as_ldq_le(c->as, gpa, a, &r);
            break;
        case 33:
            v = ms_as_ldq_be(c->as, gpa, a, &r);
            break;
        default:
            v = ms_as_ldq(c->as, gpa, a, &r);
            break;
        }
        uint64_t ev = ref_ld(c, gpa, a, size, size == 1 ? false : big, &e);
        check_res(c, r, e);
        if (v != low_bytes(ev, size)) {
            FAIL(c,
                 "%u-byte load at 0x%" PRIx64 ": 0x%" PRIx64
                 ", expected 0x%" PRIx64,
                 size, gpa, v, ev);
        }
        compare(c);
    } else {
        begin(c, "store");
        uint64_t v = low_bytes(dev_value(99, nx(c, 1000), 8), size);
        ms_tx_result r;
        switch (size * 4 + (unsigned)order) {
        case 4:
        case 5:
        case 6:
            r = ms_as_stb(c->as, gpa, (uint8_t)v, a);
            break;
        case 8:
            r = ms_as_stw_le(c->as, gpa, (uint16_t)v, a);
            break;
        case 9:
            r = ms_as_stw_be(c->as, gpa, (uint16_t)v, a);
            break;
        case 10:
            r = ms_as_stw(c->as, gpa, (uint16_t)v, a);
            break;
        case 16:
            r = ms_as_stl_le(c->as, gpa, (uint32_t)v, a);
            break;
        case 17:
            r = ms_as_stl_be(c->as, gpa, (uint32_t)v, a);
            break;
        case 18:
            r = ms_as_stl(c->as, gpa, (uint32_t)v, a);
            break;
        case 32:
            r = ms_as_stq_le(c->as, gpa, v, a);
            break;
        case 33:
            r = ms_as_stq_be(c->as, gpa, v, a);
            break;
        default:
            r = ms_as_stq(c->as, gpa, v, a);
            break;
        }
        ms_tx_result e = ref_st(c, gpa, a, size, size == 1 ? false : big, v);
        check_res(c, r, e);
        compare(c);
    }
}

static void op_write_rom(struct ctx *c)
{
    uint64_t gpa = pick_gpa(c);
    uint64_t len = nx(c, MAX_LEN + 1);
    uint8_t buf[MAX_LEN];
    for (unsigned i = 0; i < MAX_LEN; i++) {
        buf[i] = (uint8_t)nx(c, 256);
    }
    struct ms_attrs a = pick_attrs(c);
    begin(c, "write_rom");
    check_res(c, ms_as_write_rom(c->as, gpa, a, buf, len), MS_TX_OK);
    ref_write_rom(c, gpa, a, buf, len);
    compare(c);
}

static void op_valid(struct ctx *c)
{
    uint64_t gpa = pick_gpa(c);
    uint64_t len = nx(c, MAX_LEN + 1);
    bool w = nx(c, 2);
    begin(c, "access_valid");
    bool got = ms_as_access_valid(c->as, gpa, len, w, MS_ATTRS_UNSPECIFIED);
    bool exp = ref_access_valid(c, gpa, len, w);
    if (got != exp) {
        FAIL(c, "%d, expected %d (gpa 0x%" PRIx64 " len %" PRIu64 ")", got, exp,
             gpa, len);
    }
    compare(c);
}

static void op_map(struct ctx *c)
{
    uint64_t gpa = pick_gpa(c);
    uint64_t want = nx(c, MAX_LEN * 2);
    bool w = nx(c, 2);
    begin(c, "map");
    struct ms_map map;
    uint64_t len = want;
    uint8_t *p = ms_as_map(c->as, gpa, &len, w, MS_ATTRS_UNSPECIFIED, &map);

    /* Model: direct, extended over the same region, or a bounce buffer. */
    if (want == 0) {
        if (p || len) {
            FAIL(c, "a 0-byte map returned something");
        }
        compare(c);
        return;
    }
    struct rx x;
    xlat(c, gpa, want, w, MS_ATTRS_UNSPECIFIED, &x);
    if (direct(&x, w)) {
        uint64_t done = x.l;
        while (done < want) {
            struct rx y;
            xlat(c, gpa + done, want - done, w, MS_ATTRS_UNSPECIFIED, &y);
            if (y.m != x.m || !y.fr || y.off != x.off + done) {
                break;
            }
            done += y.l;
        }
        if (done > x.m->block - x.off) {
            done = x.m->block - x.off;
        }
        if (p != x.m->host + x.off || len != done) {
            FAIL(c, "direct map: %p/%" PRIu64 ", expected %p/%" PRIu64,
                 (void *)p, len, (void *)(x.m->host + x.off), done);
            ms_as_unmap(&map, 0);
            return;
        }
        uint64_t acc = nx(c, len + 1);
        if (w) {
            for (uint64_t i = 0; i < acc; i++) {
                p[i] = (uint8_t)nx(c, 256);
                x.m->shadow[x.off + i] = p[i];
            }
        }
        ms_as_unmap(&map, acc);
        compare(c);
        return;
    }
    uint64_t l = x.l < PAGE ? x.l : PAGE;
    if (!p || len != l) {
        FAIL(c, "bounce map: %p/%" PRIu64 ", expected length %" PRIu64,
             (void *)p, len, l);
        ms_as_unmap(&map, 0);
        return;
    }
    uint8_t exp[MAX_LEN * 2];
    if (!w) {
        memset(exp, 0, sizeof(exp));
        (void)ref_rw(c, gpa, MS_ATTRS_UNSPECIFIED, exp, l, false);
        check_buf(c, p, exp, l);
        ms_as_unmap(&map, nx(c, l + 1));
    } else {
        uint64_t acc = nx(c, l + 1);
        for (uint64_t i = 0; i < l; i++) {
            p[i] = exp[i] = (uint8_t)nx(c, 256);
        }
        ms_as_unmap(&map, acc);
        (void)ref_rw(c, gpa, MS_ATTRS_UNSPECIFIED, exp, acc, true);
    }
    compare(c);
}

int ar_run(struct ar_src *src, unsigned nops, bool verbose)
{
    struct ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        return 1;
    }
    c->src = src;
    c->verbose = verbose;
    c->real.v = calloc(MAX_CALLS, sizeof(struct call));
    c->exp.v = calloc(MAX_CALLS, sizeof(struct call));
    c->big = nx(c, 4) == 0;
    struct ms_system_config cfg = {
        .big_endian = c->big, .log = on_log, .log_opaque = c};
    if (!c->real.v || !c->exp.v || ms_system_new(&cfg, &c->sys) != 0) {
        free(c->real.v);
        free(c->exp.v);
        free(c);
        return 1;
    }
    struct ms_region_config rc = {
        .kind = MS_REGION_CONTAINER, .name = "root", .size = MS_SIZE_FULL};
    if (ms_region_new(c->sys, &rc, &c->root) != 0 ||
        ms_as_new(c->sys, c->root, "as", &c->as) != 0) {
        c->errors++;
        goto out;
    }
    build(c);
    snapshot(c);
    for (unsigned i = 0; i < nops && !(src->data && src->pos >= src->len);
         i++) {
        switch (nx(c, 16)) {
        case 0:
        case 1:
        case 2:
        case 3:
            op_rw(c, false);
            break;
        case 4:
        case 5:
        case 6:
            op_rw(c, true);
            break;
        case 7:
        case 8:
        case 9:
            op_ldst(c);
            break;
        case 10:
            op_write_rom(c);
            break;
        case 11:
            op_valid(c);
            break;
        case 12:
        case 13:
            op_map(c);
            break;
        case 14:
            if (nx(c, 4) == 0) {
                op_fill(c);
            } else {
                op_ldst(c);
            }
            break;
        default:
            edit(c);
            break;
        }
    }
out:
    for (int i = 0; i < c->nm; i++) {
        ms_region_unref(c->m[i].r);
    }
    ms_region_unref(c->root);
    ms_system_free(c->sys);
    int errors = c->errors;
    for (int i = 0; i < c->nm; i++) {
        free(c->m[i].shadow);
        free(c->m[i].owned);
    }
    free(c->fr);
    free(c->real.v);
    free(c->exp.v);
    free(c->sheet_buf);
    free(c);
    return errors;
}
