/* SPDX-License-Identifier: MIT */
/*
 * Sheets against a changing topology, from several threads.
 *
 * A sheet is a page made of small RAM ranges back to back in one host
 * buffer; the access path's TLB caches it whole, with the size of the
 * blocks an access may not leave (dispatch.c, access.c).  Here 4 MiB of one
 * buffer are cut into RAM regions of 64 bytes to 2 KiB (multiples of 64),
 * placed back to back from guest address 0, so that the first level caches
 * pages of several MiB.  Byte x of the buffer holds pat(x).
 *
 * The main thread, again and again, changes one slice and then restores
 * it, each in its own commit: hides it, puts a "shadow" region over it (its
 * own memory, holding ~pat; lower half only), makes it read-only or logs
 * it.  So a view has
 * at most one slice that is not plain.  Around each commit it says, in a
 * word the readers load before and after each access, whether the change
 * is surely in effect, surely undone, or in between.  Meanwhile:
 * - reader 0 makes typed loads and buffer reads in the lower half: a typed
 *   load inside one slice gives pat, or ~pat, or 0 with a decode error
 *   (never a mix); one straddling two slices always fails; a buffer read
 *   gives, slice by slice, all pat, all ~pat or all 0 (then a decode
 *   error), with at most one slice not pat (one view per access);
 * - reader 1 does the same in the upper half and also stores pat values
 *   there (so memory keeps its patterns), which must succeed or fail with
 *   a decode error (hidden or read-only slice), never anything else; now
 *   and then it also marks a slice dirty by hand (ms_region_set_dirty(),
 *   any thread) while the owner turns its logging on and off.
 * When the word did not change during an access and says the change is in
 * effect (or undone), the access must see exactly that: a hidden slice
 * reads 0 with a decode error, a shadowed one ~pat, a read-only one
 * refuses stores; every other slice is plain.
 * Clean under ASan and TSan (label "thread").
 *
 * Usage: test_sheet_threads [edits]
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

#define U MS_ATTRS_UNSPECIFIED
#define SZ (4u << 20)
#define MAX_SLICES (SZ / 64)
#define READERS 2

static ms_system *sys;
static ms_region *root;
static ms_as *as;
static uint8_t *mem;
static uint64_t start[MAX_SLICES + 1]; /* slice k: [start[k], start[k+1]) */
static unsigned nslices;
static ms_region *slice[MAX_SLICES];
static int stop;     /* atomic */
/*
 * atomic: the main thread's state, seq << 32 | k << 4 | what << 2 | phase:
 * phase PLAIN (no change in any view a reader may load), CHANGED (slice
 * k's change, E_*, in every such view) or BETWEEN (a commit is under
 * way); seq counts the stores, so that equal loads mean no store between.
 */
static uint64_t state;
enum { PLAIN, BETWEEN, CHANGED };
enum {
    E_HIDE = TU_HIDE,
    E_RO = TU_READONLY,
    E_LOG = TU_LOG,
    E_SHADOW,
    SURE_PLAIN,
    NOT_SURE = -1
};
static int failures; /* atomic */
static uint64_t checks[READERS];
static int started; /* atomic: readers that made their first access */
static uint64_t strict; /* atomic: accesses to a slice surely changed */

static uint8_t pat(uint64_t x)
{
    return (uint8_t)(x ^ (x >> 8) ^ (x >> 16) ^ 0x5a);
}

static void fail(const char *what, uint64_t a, uint64_t len)
{
    if (__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED) <= 5) {
        fprintf(stderr, "test_sheet_threads: %s at 0x%llx, %llu bytes\n",
                what, (unsigned long long)a, (unsigned long long)len);
    }
}

static uint64_t next_rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The slice holding byte @x (< SZ). */
static unsigned slice_of(uint64_t x)
{
    unsigned lo = 0, hi = nslices;
    while (hi - lo > 1) {
        unsigned mid = (lo + hi) / 2;
        if (start[mid] <= x) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* What @b, read from [a, a + len) of one slice, may be (several when the
 * patterns happen to agree there); 0: none, a mix. */
enum { IS_PAT = 1, IS_NOT = 2, IS_ZERO = 4 };

static unsigned kind_of(const uint8_t *b, uint64_t a, uint64_t len)
{
    bool p = true, n = true, z = true;
    for (uint64_t i = 0; i < len; i++) {
        unsigned want = pat(a + i), inv = 0xffu - want;
        p = p && b[i] == want;
        n = n && b[i] == inv;
        z = z && b[i] == 0;
    }
    return (p ? IS_PAT : 0) | (n ? IS_NOT : 0) | (z ? IS_ZERO : 0);
}

/*
 * What the state words @c0 and @c1, loaded before and after an access,
 * say slice @k was during all of it: E_* (changed so), SURE_PLAIN, or
 * NOT_SURE.
 */
static int sure(uint64_t c0, uint64_t c1, unsigned k)
{
    if (c0 != c1 || (c0 & 3) == BETWEEN) {
        return NOT_SURE;
    }
    if ((c0 & 3) == CHANGED && ((c0 >> 4) & 0xfffffff) == k) {
        __atomic_add_fetch(&strict, 1, __ATOMIC_RELAXED);
        return (int)((c0 >> 2) & 3);
    }
    return SURE_PLAIN;
}

static uint64_t load_state(void)
{
    return __atomic_load_n(&state, __ATOMIC_SEQ_CST);
}

static void set_state(unsigned k, unsigned what, unsigned phase)
{
    static uint64_t seq;
    seq++;
    __atomic_store_n(&state, seq << 32 | (uint64_t)k << 4 | what << 2 | phase,
                     __ATOMIC_SEQ_CST);
}

static void typed_load(uint64_t a, unsigned len)
{
    ms_tx_result r;
    uint64_t c0 = load_state();
    uint64_t v = tu_load(as, a, len, &r);
    uint64_t c1 = load_state();
    if (slice_of(a) != slice_of(a + len - 1)) {
        if (r != MS_TX_DECODE_ERROR || v != 0) {
            fail("a load straddling two slices did not fail", a, len);
        }
        return;
    }
    uint8_t b[8];
    for (unsigned i = 0; i < len; i++) {
        b[i] = (uint8_t)(v >> 8 * i);
    }
    unsigned k = kind_of(b, a, len);
    bool ok = r == MS_TX_OK ? (k & (IS_PAT | IS_NOT)) != 0
                            : r == MS_TX_DECODE_ERROR && v == 0;
    switch (sure(c0, c1, slice_of(a))) {
    case E_HIDE:
        ok = r == MS_TX_DECODE_ERROR && v == 0;
        break;
    case E_SHADOW:
        ok = r == MS_TX_OK && (k & IS_NOT);
        break;
    case NOT_SURE:
        break;
    default: /* plain, read-only or logged: the sheet's bytes */
        ok = r == MS_TX_OK && (k & IS_PAT);
    }
    if (!ok) {
        fail("a load gave a value no view explains", a, len);
    }
}

static void buffer_read(uint64_t a, uint64_t len, uint8_t *buf)
{
    uint64_t c0 = load_state();
    ms_tx_result r = ms_as_read(as, a, U, buf, len);
    uint64_t c1 = load_state();
    /* The slices not read as pat (one at most), and what that one may be;
     * whether some slice read as pat could also be a hole. */
    unsigned odd = 0, odd_kind = 0;
    bool pat_or_zero = false;
    for (uint64_t i = 0; i < len;) {
        unsigned k = slice_of(a + i);
        uint64_t n = start[k + 1] - (a + i);
        n = n < len - i ? n : len - i;
        unsigned kind = kind_of(buf + i, a + i, n);
        int want = sure(c0, c1, k);
        unsigned need = want == E_HIDE     ? IS_ZERO
                        : want == E_SHADOW ? IS_NOT
                        : want == NOT_SURE ? IS_PAT | IS_NOT | IS_ZERO
                                           : IS_PAT;
        if (!(kind & need)) {
            fail("a buffer read gave a slice no view explains", a + i, n);
            return;
        }
        if (!(kind & IS_PAT)) {
            odd++;
            odd_kind = kind;
        }
        pat_or_zero = pat_or_zero || (kind & IS_PAT && kind & IS_ZERO);
        i += n;
    }
    bool ok = odd <= 1 &&
              (r == MS_TX_OK ? !odd || (odd_kind & IS_NOT)
               : r == MS_TX_DECODE_ERROR
                   ? (odd && (odd_kind & IS_ZERO)) || (!odd && pat_or_zero)
                   : false);
    if (!ok) {
        fail("a buffer read no single view explains", a, len);
    }
}

static void store(uint64_t a, unsigned len)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < len; i++) {
        v |= (uint64_t)pat(a + i) << 8 * i;
    }
    uint64_t c0 = load_state();
    ms_tx_result r = tu_store(as, a, v, len);
    unsigned k = slice_of(a);
    /* Read before the state again: the bitmap is then the logged one. */
    bool marked =
        ms_region_get_dirty(slice[k], a - start[k], len, MS_DIRTY_VGA);
    uint64_t c1 = load_state();
    int want = sure(c0, c1, k);
    if (r != MS_TX_OK && r != MS_TX_DECODE_ERROR) {
        fail("a store gave an unexpected result", a, len);
    } else if (k != slice_of(a + len - 1)) {
        if (r != MS_TX_DECODE_ERROR) {
            fail("a store straddling two slices did not fail", a, len);
        }
    } else if ((want == E_HIDE || want == E_RO) && r != MS_TX_DECODE_ERROR) {
        fail("a store to a hidden or read-only slice did not fail", a, len);
    } else if (want == E_LOG && (r != MS_TX_OK || !marked)) {
        fail("a store to a logged slice was not marked", a, len);
    } else if (want == SURE_PLAIN && r != MS_TX_OK) {
        fail("a store to a plain slice failed", a, len);
    }
}

static void *reader(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    uint64_t lo = id ? SZ / 2 : 0, span = SZ / 2;
    static uint8_t bufs[READERS][3 * 4096];
    uint8_t *buf = bufs[id];
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        uint64_t x = next_rnd(&s);
        unsigned len = 1u << (x & 3);
        /* Near a slice boundary half of the time. */
        uint64_t a = lo + (x >> 8) % (span - 8);
        if (x & 4) {
            unsigned k = slice_of(a);
            a = start[k] > lo + 8 ? start[k] - ((x >> 4) & 7) : a;
        }
        /* Often into the slice being changed, when it is ours. */
        uint64_t st = load_state();
        unsigned ck = (unsigned)((st >> 4) & 0xfffffff);
        if ((x & 0x18) && (st & 3) != PLAIN && start[ck] >= lo + 8 &&
            start[ck + 1] <= lo + span - 8) {
            a = start[ck] - 4 + (x >> 20) % (start[ck + 1] - start[ck] + 4);
        }
        switch ((x >> 40) % (id ? 4 : 3)) {
        case 0:
        case 1:
            typed_load(a, len);
            break;
        case 2: {
            uint64_t n = 1 + (x >> 44) % sizeof(bufs[0]);
            n = n < lo + span - a ? n : lo + span - a;
            buffer_read(a, n, buf);
            break;
        }
        default:
            store(a, len);
            if ((x >> 50) % 16 == 0) {
                /* A device model marking pages by hand (any thread),
                 * while the owner turns logging on and off. */
                unsigned k = slice_of(a);
                if (ms_region_set_dirty(slice[k], 0, 1) != 0) {
                    fail("ms_region_set_dirty failed", a, 1);
                }
            }
        }
        if (checks[id]++ == 0) {
            __atomic_add_fetch(&started, 1, __ATOMIC_RELEASE);
        }
    }
    return NULL;
}

/* One change and its undoing, each a commit of its own. */
static void one_edit(uint64_t *s)
{
    static uint8_t shadow_mem[2048];
    unsigned k = (unsigned)(next_rnd(s) % nslices);
    unsigned what = (unsigned)(next_rnd(s) % 4);
    if (what == E_SHADOW) {
        /* Shadows only where nobody stores (reader 1 would write pat over
         * ~pat): slices wholly in the lower half. */
        k = k % slice_of(SZ / 2);
    }
    uint64_t size = start[k + 1] - start[k];
    ms_region *shadow = NULL;
    set_state(k, what, BETWEEN);
    if (what == E_SHADOW) {
        /* No reader can see the last shadow any more (its view was
         * retired and waited for by the commit that removed it). */
        for (uint64_t i = 0; i < size; i++) {
            shadow_mem[i] = (uint8_t)(pat(start[k] + i) ^ 0xff);
        }
        shadow = tu_host_ram(sys, "shadow", shadow_mem, size);
        REQUIRE(ms_region_add_prio(root, start[k], shadow, 1) == 0);
    } else {
        REQUIRE(tu_change(slice[k], what, true) == 0);
    }
    set_state(k, what, CHANGED);
    sched_yield();
    set_state(k, what, BETWEEN);
    if (shadow) {
        REQUIRE(ms_region_del(root, shadow) == 0);
        ms_region_unref(shadow);
    } else {
        REQUIRE(tu_change(slice[k], what, false) == 0);
    }
    set_state(k, what, PLAIN);
}

int main(int argc, char **argv)
{
    unsigned edits = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 300;
    mem = aligned_alloc(4096, SZ);
    REQUIRE(mem != NULL);
    for (uint64_t x = 0; x < SZ; x++) {
        mem[x] = pat(x);
    }
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    root = tu_container(sys, "root", MS_SIZE_FULL);
    REQUIRE(ms_as_new(sys, root, "as", &as) == 0);
    uint64_t s = 0x2545f4914f6cdd1dull;
    REQUIRE(ms_txn_begin(sys) == 0);
    for (uint64_t at = 0; at < SZ; nslices++) {
        uint64_t size = 64 * (1 + next_rnd(&s) % 32);
        size = size < SZ - at ? size : SZ - at;
        start[nslices] = at;
        slice[nslices] = tu_host_ram(sys, "slice", mem + at, size);
        REQUIRE(ms_region_add(root, at, slice[nslices]) == 0);
        at += size;
    }
    start[nslices] = SZ;
    REQUIRE(ms_txn_commit(sys) == 0);

    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) {
        pthread_create(&th[i], NULL, reader, (void *)(intptr_t)i);
    }
    while (__atomic_load_n(&started, __ATOMIC_ACQUIRE) < READERS) {
        sched_yield(); /* every edit meets both readers */
    }
    for (unsigned t = 0; t < edits; t++) {
        one_edit(&s);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
    }
    /* The stores wrote the patterns back: the buffer is unchanged. */
    for (uint64_t x = 0; x < SZ; x++) {
        if (mem[x] != pat(x)) {
            fail("the buffer changed", x, 1);
            break;
        }
    }
    CHECK_EQ(__atomic_load_n(&failures, __ATOMIC_RELAXED), 0);
    CHECK(checks[0] > 0 && checks[1] > 0);
    printf("test_sheet_threads: %u slices, %u edits, %llu + %llu accesses, "
           "%llu checked against a change surely in effect\n",
           nslices, edits, (unsigned long long)checks[0],
           (unsigned long long)checks[1],
           (unsigned long long)__atomic_load_n(&strict, __ATOMIC_RELAXED));
    for (unsigned k = 0; k < nslices; k++) {
        ms_region_unref(slice[k]);
    }
    ms_region_unref(root);
    ms_system_free(sys);
    free(mem);
    return ms_test_summary("test_sheet_threads");
}
