/* SPDX-License-Identifier: MIT */
/*
 * Lock-free readers against a changing topology.
 *
 * Two threads hammer one address space with loads, stores, buffer reads
 * and writes, and DMA maps, while the main thread adds, removes (and
 * frees), moves, resizes and toggles RAM and MMIO regions, in transactions
 * of one to three edits.  Every access is checked against the topologies
 * that were published at some moment of the access:
 *
 * - the main thread bumps a version counter to odd before each commit and
 *   to even after it, and records the published view of version t (its
 *   ranges, named by region id) before making it even; an access that saw
 *   counter values c0 (before) and c1 (after) may only have used versions
 *   c0 / 2 to (c1 + 1) / 2;
 * - even 8-byte words of every RAM region hold a tag (region id, word
 *   index) and MMIO regions return the same tag for a read, so a read says
 *   where it landed; a multi-word read must be explained by one single
 *   version (never a mix of two); holes read as zero;
 * - odd words of writable RAM are written with unique values; MMIO write
 *   callbacks note what they received, checked after the access; RAM
 *   writes are checked at the end by scanning the caller-owned RAM blocks;
 *   the result of every write must match the kind of target.
 *
 * Guest memory is not synchronised by the library (as on hardware), so the
 * test keeps the two threads off each other's bytes: read-only RAM and
 * MMIO roam everywhere, writable RAM only lives in the upper half of the
 * space, which only reader 1 touches.
 *
 * Clean under ASan (nothing used after free) and TSan (label "thread").
 * Usage: test_access_threads [edits]
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

#define U MS_ATTRS_UNSPECIFIED
#define MAX_MODELS 8192
#define MAX_LIVE 24
#define SPACE 0x10000u /* addresses used: [0, SPACE) */
#define HALF (SPACE / 2)
#define ALIGN 32u /* region edges: word k of a block is 1 or 3 mod 4 */
#define READERS 2
#define MAX_LOG (1u << 20)

enum { K_RO_ANON, K_RW_OURS, K_MMIO, K_RW_ANON };

struct model {
    int id;
    int kind;
    ms_region *r;
    uint64_t *block; /* K_RW_OURS: the words */
    uint64_t words;
    bool placed;
    bool vga; /* VGA dirty logging on */
};

/* One published topology: ranges as (first, last, region id, offset). */
struct vrange {
    uint64_t gpa, last, offset;
    int id;
    int kind;
};

struct version {
    struct vrange *r;
    size_t n;
};

struct wlog {
    uint64_t gpa;
    unsigned v0, v1; /* version window of the write */
};

static struct model models[MAX_MODELS];
static int nmodels;
static struct version *versions;
static unsigned max_versions;
static unsigned ver; /* atomic: 2t stable at version t, 2t+1 in between */
static int stop;     /* atomic */
static int failures; /* atomic */
static ms_as *as;
static struct wlog *wlogs[READERS + 1];
static unsigned nwlogs[READERS + 1];
static unsigned long nops[READERS + 1];

/* Per thread: what an MMIO write callback saw during the current access. */
static __thread int mm_seen, mm_id;
static __thread uint64_t mm_off;

static uint64_t tag(int id, uint64_t word)
{
    return (uint64_t)id << 32 | word;
}

static void fail(const char *what, uint64_t gpa, uint64_t v)
{
    if (__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED) <= 5) {
        fprintf(stderr, "%s: gpa 0x%llx value 0x%llx\n", what,
                (unsigned long long)gpa, (unsigned long long)v);
    }
}

static unsigned load_ver(void)
{
    return __atomic_load_n(&ver, __ATOMIC_ACQUIRE);
}

/*
 * Versions an access may have used, waiting until they are recorded.
 * Never called inside an access (the owner may be waiting for us).
 */
static void window(unsigned c0, unsigned c1, unsigned *v0, unsigned *v1)
{
    *v0 = c0 / 2;
    *v1 = (c1 + 1) / 2;
    while (load_ver() < 2 * *v1) {
        sched_yield();
    }
}

/* What version @t shows at @gpa: its range, or NULL for a hole. */
static const struct vrange *lookup(unsigned t, uint64_t gpa, uint64_t *off)
{
    const struct version *v = &versions[t];
    for (size_t i = 0; i < v->n; i++) {
        if (gpa >= v->r[i].gpa && gpa <= v->r[i].last) {
            *off = v->r[i].offset + (gpa - v->r[i].gpa);
            return &v->r[i];
        }
    }
    return NULL;
}

/* ---- MMIO regions -------------------------------------------------------- */

static uint64_t mmio_read(void *opaque, uint64_t off, unsigned size)
{
    const struct model *m = opaque;
    (void)size;
    return tag(m->id, off / 8);
}

static void mmio_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
    const struct model *m = opaque;
    (void)v, (void)size;
    mm_seen++;
    mm_id = m->id;
    mm_off = off;
}

static const struct ms_region_ops mmio_ops = {
    .read = mmio_read,
    .write = mmio_write,
    .valid = {.max_access_size = 8},
    .impl = {.max_access_size = 8},
};

/* ---- readers ----------------------------------------------------------------
 */

static uint64_t xs(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * @n words read at @gpa (@r: the result, @res_known false for a bounce
 * buffer whose read result is not reported) must be explained by one
 * version: even words hold the tag of what is mapped, or 0 in a hole.
 */
static void check_words(const uint64_t *w, unsigned n, uint64_t gpa,
                        ms_tx_result r, bool res_known, unsigned c0,
                        unsigned c1)
{
    unsigned v0, v1;
    window(c0, c1, &v0, &v1);
    for (unsigned t = v0; t <= v1; t++) {
        bool all = true, any_hole = false;
        for (unsigned k = 0; k < n && all; k += 2) {
            uint64_t off;
            const struct vrange *vr = lookup(t, gpa + 8 * k, &off);
            any_hole |= !vr;
            all = vr ? w[k] == tag(vr->id, off / 8) : w[k] == 0;
        }
        if (!all) {
            continue;
        }
        if (!res_known || (any_hole && r != MS_TX_OK) ||
            (!any_hole && (r == MS_TX_OK || n > 1))) {
            return; /* odd words may add errors of their own */
        }
    }
    fail("read not explained by any single version", gpa, w[0]);
}

/* A write's result (and MMIO callback) must match one version. */
static void check_write(uint64_t gpa, ms_tx_result r, unsigned c0, unsigned c1)
{
    unsigned v0, v1;
    window(c0, c1, &v0, &v1);
    for (unsigned t = v0; t <= v1; t++) {
        uint64_t off;
        const struct vrange *vr = lookup(t, gpa, &off);
        if (mm_seen) {
            if (mm_seen == 1 && vr && vr->id == mm_id && off == mm_off &&
                r == MS_TX_OK) {
                return;
            }
        } else if (!vr || vr->kind == K_RO_ANON) {
            if (r == MS_TX_DECODE_ERROR) {
                return;
            }
        } else if (vr->kind != K_MMIO && r == MS_TX_OK) {
            return;
        }
    }
    fail("write not explained by any version", gpa, r);
}

static void log_write(int me, uint64_t gpa, unsigned c0, unsigned c1)
{
    unsigned v0, v1;
    window(c0, c1, &v0, &v1);
    wlogs[me][nwlogs[me]++] = (struct wlog){gpa, v0, v1};
}

/* The value a reader writes: who, and which log entry. */
static uint64_t wvalue(int me)
{
    return (uint64_t)me << 56 | (uint64_t)nwlogs[me] << 8 | 0x77;
}

static void *reader(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)me;
    /* Reader 2 stays in the lower half, clear of writable RAM. */
    uint64_t space = me == 1 ? SPACE : HALF - 128;
    uint64_t buf[8];
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        uint64_t pick = xs(&s);
        uint64_t gpa = (xs(&s) % space) & ~UINT64_C(15); /* even word */
        unsigned c0 = load_ver(), c1;
        ms_tx_result r;
        nops[me]++;
        mm_seen = 0;
        switch (pick % 8) {
        case 0:
        case 1:
        case 2: {
            uint64_t v = ms_as_ldq_le(as, gpa, U, &r);
            c1 = load_ver();
            check_words(&v, 1, gpa, r, true, c0, c1);
            break;
        }
        case 3:
        case 4: { /* a store to an odd word */
            if (nwlogs[me] >= MAX_LOG) {
                break;
            }
            gpa = (gpa & ~UINT64_C(31)) + (me == 1 ? 8 : 24);
            uint64_t v = wvalue(me);
            if (pick & 8) {
                r = ms_as_stq_le(as, gpa, v, U);
            } else {
                r = ms_as_write(as, gpa, U, &v, 8);
            }
            c1 = load_ver();
            check_write(gpa, r, c0, c1);
            log_write(me, gpa, c0, c1);
            break;
        }
        case 5:
        case 6: { /* 2 to 8 words across regions */
            unsigned n = 2 + (unsigned)(pick >> 8) % 7;
            memset(buf, 0xee, sizeof(buf));
            r = ms_as_read(as, gpa, U, buf, 8 * n);
            c1 = load_ver();
            check_words(buf, n, gpa, r, true, c0, c1);
            break;
        }
        default: { /* DMA map: read words, or (reader 1) write one */
            struct ms_map m;
            bool w = me == 1 && (pick & 16) && nwlogs[me] < MAX_LOG;
            uint64_t len = w ? 8 : 8 * (1 + (pick >> 8) % 8);
            if (w) {
                gpa += 8;
            }
            uint64_t *p = ms_as_map(as, gpa, &len, w, U, &m);
            if (!p) {
                break; /* bounce buffer busy (other reader) */
            }
            if (w) {
                *p = wvalue(me);
                ms_as_unmap(&m, len);
                c1 = load_ver();
                log_write(me, gpa, c0, c1);
            } else {
                memcpy(buf, p, len);
                ms_as_unmap(&m, 0);
                c1 = load_ver();
                check_words(buf, (unsigned)(len / 8), gpa, 0, false, c0, c1);
            }
            break;
        }
        }
    }
    return NULL;
}

/* ---- the owner thread ------------------------------------------------------
 */

static ms_system *sys;
static ms_region *root;
static uint64_t owner_rng = 12345;

static uint64_t rnd(uint64_t bound)
{
    return xs(&owner_rng) % bound;
}

static bool writable(const struct model *m)
{
    return m->kind == K_RW_OURS || m->kind == K_RW_ANON;
}

static struct model *create(void)
{
    struct model *m = &models[nmodels];
    m->id = nmodels++;
    m->kind = (int)rnd(4);
    uint64_t size = ALIGN * (1 + rnd(32));
    struct ms_region_config cfg = {.name = "r", .size = size};
    if (m->kind == K_MMIO) {
        cfg.kind = MS_REGION_IO;
        cfg.ops = &mmio_ops;
        cfg.opaque = m;
    } else {
        cfg.kind = MS_REGION_RAM;
        cfg.readonly = m->kind == K_RO_ANON;
        if (m->kind == K_RW_OURS) {
            m->block = calloc(size / 8, 8);
            cfg.backing = MS_RAM_HOST;
            cfg.host = m->block;
        }
    }
    REQUIRE(ms_region_new(sys, &cfg, &m->r) == 0);
    m->words = size / 8;
    if (m->kind != K_MMIO) {
        uint64_t *w = ms_region_host(m->r);
        for (uint64_t k = 0; k < m->words; k += 2) {
            w[k] = tag(m->id, k);
        }
    }
    return m;
}

/* Writable RAM stays inside the upper half, block and all. */
static uint64_t place(const struct model *m)
{
    if (!writable(m)) {
        return rnd(SPACE) & ~(uint64_t)(ALIGN - 1);
    }
    uint64_t lo = HALF, room = SPACE - lo - 8 * m->words;
    return (lo + rnd(room + 1)) & ~(uint64_t)(ALIGN - 1);
}

static int nlive(void)
{
    int n = 0;
    for (int i = 0; i < nmodels; i++) {
        n += models[i].placed;
    }
    return n;
}

static struct model *random_placed(void)
{
    int n = nlive();
    if (!n) {
        return NULL;
    }
    int k = (int)rnd((uint64_t)n);
    for (int i = 0; i < nmodels; i++) {
        if (models[i].placed && k-- == 0) {
            return &models[i];
        }
    }
    return NULL;
}

static void one_edit(void)
{
    struct model *m = random_placed();
    unsigned what = (unsigned)rnd(8);
    if (what < 2 && nlive() < MAX_LIVE && nmodels < MAX_MODELS) {
        struct model *n = create();
        REQUIRE(ms_region_add_prio(root, place(n), n->r, (int32_t)rnd(3) - 1) ==
                0);
        n->placed = true;
        return;
    }
    switch (what) {
    case 0:
    case 1:
    case 2:
        if (m) { /* remove and release: freed after a grace period */
            REQUIRE(ms_region_del(root, m->r) == 0);
            ms_region_unref(m->r);
            m->r = NULL;
            m->placed = false;
        }
        break;
    case 3:
        if (m) {
            REQUIRE(ms_region_set_address(m->r, place(m)) == 0);
        }
        break;
    case 4:
        if (m) {
            uint64_t max = m->kind == K_MMIO ? 32 : m->words * 8 / ALIGN;
            REQUIRE(ms_region_set_size(m->r, ALIGN * (1 + rnd(max))) == 0);
        }
        break;
    case 6: /* dirty logging changes while readers write (lock-free marks) */
        if (m && m->kind != K_MMIO) {
            m->vga = !m->vga;
            REQUIRE(ms_region_set_log(m->r, m->vga, MS_DIRTY_VGA) == 0);
        }
        break;
    case 7:
        if (ms_dirty_global_flags(sys)) {
            REQUIRE(ms_dirty_global_stop(sys, MS_GLOBAL_DIRTY_MIGRATION) == 0);
        } else {
            REQUIRE(ms_dirty_global_start(sys, MS_GLOBAL_DIRTY_MIGRATION) == 0);
        }
        break;
    default:
        if (m) {
            REQUIRE(ms_region_set_enabled(m->r, !ms_region_enabled(m->r)) == 0);
        }
        break;
    }
}

static const struct model *model_of(const ms_region *r)
{
    for (int i = 0; i < nmodels; i++) {
        if (models[i].r == r) {
            return &models[i];
        }
    }
    REQUIRE(!"a view shows a region the test does not know");
    return NULL;
}

static void record_version(unsigned t)
{
    const ms_flatview *fv = ms_as_flatview(as);
    size_t n = ms_flatview_nr_ranges(fv);
    struct version *v = &versions[t];
    v->r = calloc(n ? n : 1, sizeof(*v->r));
    v->n = n;
    for (size_t i = 0; i < n; i++) {
        struct ms_flat_range fr;
        REQUIRE(ms_flatview_range(fv, i, &fr) == 0);
        const struct model *m = model_of(fr.mr);
        v->r[i] = (struct vrange){fr.gpa, fr.last, fr.offset, m->id, m->kind};
    }
}

/* End: every surviving written value sits where its write could land. */
static void check_ram_writes(void)
{
    unsigned long seen = 0;
    for (int i = 0; i < nmodels; i++) {
        const struct model *m = &models[i];
        if (m->kind != K_RW_OURS) {
            continue;
        }
        for (uint64_t k = 0; k < m->words; k++) {
            uint64_t v = m->block[k];
            if (k % 2 == 0) {
                if (v != tag(m->id, k)) {
                    fail("a tag word was overwritten", 8 * k, v);
                }
                continue;
            }
            if (!v) {
                continue;
            }
            seen++;
            unsigned who = (unsigned)(v >> 56);
            unsigned idx = (unsigned)(v >> 8) & 0xffffffffu;
            if (who < 1 || who > READERS || idx >= nwlogs[who] ||
                (v & 0xff) != 0x77) {
                fail("garbage in a RAM block", 8 * k, v);
                continue;
            }
            const struct wlog *l = &wlogs[who][idx];
            bool ok = false;
            for (unsigned t = l->v0; t <= l->v1 && !ok; t++) {
                uint64_t off;
                const struct vrange *vr = lookup(t, l->gpa, &off);
                ok = vr && vr->id == m->id && off == 8 * k;
            }
            if (!ok) {
                fail("RAM write landed where its region was not", l->gpa, v);
            }
        }
    }
    printf("%lu written RAM words checked\n", seen);
}

/* ---- bounce budgets under contention ----------------------------------- */

#define BUDGET 0x1000u
static ms_as *bas;
static uint64_t outstanding; /* atomic: bytes mapped by the threads */
static int over;             /* atomic: the budget was exceeded */

static void *bounce_thread(void *arg)
{
    uint64_t s = (uintptr_t)arg * 7919 + 1;
    for (int i = 0; i < 20000; i++) {
        struct ms_map m;
        uint64_t len = 1 + xs(&s) % 0x900;
        if (!ms_as_map(bas, xs(&s) % 0x800, &len, i & 1, MS_ATTRS_UNSPECIFIED,
                       &m)) {
            continue;
        }
        uint64_t now = __atomic_add_fetch(&outstanding, len, __ATOMIC_ACQ_REL);
        if (now > BUDGET) {
            __atomic_store_n(&over, 1, __ATOMIC_RELAXED);
        }
        memset(m.host, 0, len);
        __atomic_sub_fetch(&outstanding, len, __ATOMIC_ACQ_REL);
        ms_as_unmap(&m, len);
    }
    return NULL;
}

/*
 * Two threads map and unmap bounce buffers of one address space with a
 * budget: what they hold together never exceeds it, and all of it comes
 * back.
 */
static void test_bounce_budget_threads(void)
{
    ms_system *bsys;
    REQUIRE(ms_system_new(NULL, &bsys) == 0);
    ms_region *broot = tu_container(bsys, "root", MS_SIZE_FULL);
    REQUIRE(ms_as_new(bsys, broot, "dma", &bas) == 0);
    tu_add(broot, 0, tu_io(bsys, "io", 0x1000), 0);
    REQUIRE(ms_as_set_bounce_budget(bas, BUDGET) == 0);
    pthread_t t[2];
    for (uintptr_t i = 0; i < 2; i++) {
        REQUIRE(pthread_create(&t[i], NULL, bounce_thread, (void *)i) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK_EQ(over, 0);
    struct ms_map m;
    uint64_t len = 2 * BUDGET;
    CHECK(ms_as_map(bas, 0, &len, false, MS_ATTRS_UNSPECIFIED, &m) != NULL);
    CHECK_EQ(len, BUDGET); /* every byte returned */
    ms_as_unmap(&m, 0);
    ms_region_unref(broot);
    ms_system_free(bsys);
}

int main(int argc, char **argv)
{
    unsigned edits = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 3000;
    max_versions = edits + 2;
    versions = calloc(max_versions, sizeof(*versions));
    for (int i = 1; i <= READERS; i++) {
        wlogs[i] = calloc(MAX_LOG, sizeof(struct wlog));
        REQUIRE(wlogs[i] != NULL);
    }
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    root = tu_container(sys, "root", MS_SIZE_FULL);
    REQUIRE(ms_as_new(sys, root, "as", &as) == 0);
    for (int i = 0; i < 16; i++) {
        struct model *n = create();
        REQUIRE(ms_region_add_prio(root, place(n), n->r, (int32_t)rnd(3) - 1) ==
                0);
        n->placed = true;
    }
    record_version(0);

    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) {
        pthread_create(&th[i], NULL, reader, (void *)(intptr_t)(i + 1));
    }
    for (unsigned t = 1; t <= edits; t++) {
        __atomic_store_n(&ver, 2 * t - 1, __ATOMIC_RELEASE);
        REQUIRE(ms_txn_begin(sys) == 0);
        unsigned n = 1 + (unsigned)rnd(3);
        for (unsigned k = 0; k < n; k++) {
            one_edit();
        }
        REQUIRE(ms_txn_commit(sys) == 0);
        record_version(t);
        __atomic_store_n(&ver, 2 * t, __ATOMIC_RELEASE);
        if (t % 64 == 0) {
            sched_yield(); /* let the readers see every kind of state */
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
    }
    check_ram_writes();
    printf("%u edits; reader accesses: %lu, %lu\n", edits, nops[1], nops[2]);
    CHECK_EQ(failures, 0);
    CHECK(nops[1] > 0 && nops[2] > 0);

    for (int i = 0; i < nmodels; i++) {
        ms_region_unref(models[i].r);
    }
    ms_region_unref(root);
    ms_system_free(sys);
    for (int i = 0; i < nmodels; i++) {
        free(models[i].block);
    }
    for (unsigned t = 0; t < max_versions; t++) {
        free(versions[t].r);
    }
    free(versions);
    for (int i = 1; i <= READERS; i++) {
        free(wlogs[i]);
    }
    test_bounce_budget_threads();
    return ms_test_summary("test_access_threads");
}
