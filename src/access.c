/* SPDX-License-Identifier: MIT */
/*
 * The access path: buffer and fixed-size accesses, MMIO dispatch, DMA
 * mapping (docs/model.md section 7, docs/access.md).
 *
 * Threading.  Every access runs inside one RCU read-side section: it loads
 * the address space's published view once and uses its dispatch table
 * (dispatch.c) for every piece, so it sees one topology, and the view and
 * every region it shows stay allocated until the section ends (the owner
 * frees retired views only after a grace period).  The table's entries
 * carry everything the access reads (host pointer, ops, flags copied from
 * the region when the view was built), so readers never read region
 * fields the owner thread may be changing.  Region fields read here are
 * fixed at creation (kind, ops, opaque, RAM block, guard key, name).
 *
 * Per-thread state (the only mutable state outside an ms_system): a small
 * last-hit cache (an entry pointer; a hint, checked against the current
 * table on every use, so it can never return a range of a retired view)
 * and the re-entrancy guard's stack of devices whose callbacks are
 * running on this thread.
 *
 * Quirks kept on purpose (they are QEMU's observable behaviour): MMIO
 * pieces may run past the end of the region decoding their first byte;
 * fixed-size accesses straddling the end of a RAM range fail; a RAM region
 * seen through a read-only alias is still written; ld/st ignore
 * attrs.memory.  Deviations (memory safety): no access ever leaves a RAM
 * block (QEMU overruns it in a few corner cases), see docs/access.md.
 *
 * liburcu's read-side lock is inlined (_LGPL_SOURCE): the call version
 * costs about 10 ns per access, more than the rest of a RAM access.  The
 * inlined functions are liburcu's small read-side helpers, written to stay
 * under the ten-line limit of LGPL 2.1 section 5, and liburcu documents
 * _LGPL_SOURCE for code under a GPL-compatible licence such as MIT.
 * Define MEMSPACE_NO_URCU_INLINE to use the call version.
 */
#if defined(__SANITIZE_ADDRESS__)
#define MS__URCU_CALLS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MS__URCU_CALLS 1
#endif
#endif
/*
 * Sanitizer builds (ASan comes with UBSan in every preset) use the call
 * version: liburcu's reader records are less aligned than its header
 * declares, which UBSan reports in inlined code.
 */
#if !defined(MEMSPACE_NO_URCU_INLINE) && !defined(MS__URCU_CALLS)
#define _LGPL_SOURCE 1
#endif

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "memspace/access.h"

#include "internal.h"

#ifdef _LGPL_SOURCE
/*
 * liburcu's per-thread reader pointer, declared again with the
 * initial-exec model so that the shared library reaches it without a
 * __tls_get_addr() call (liburcu-bp is loaded with us, at start-up).
 */
extern __thread struct urcu_bp_reader *urcu_bp_reader
    __attribute__((tls_model("initial-exec")));
/* liburcu knows this thread: the inlined read lock then calls nothing. */
#define RCU_READY() (URCU_TLS(urcu_bp_reader) != NULL)
#else
#define RCU_READY() true
#endif

#define HOST_BIG (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
/*
 * Out of line with the signature as written (GCC would otherwise pass a
 * few fields instead of a pointer, and spill the extra arguments).
 */
#if defined(__clang__)
#define NO_IPA __attribute__((noinline))
#else
#define NO_IPA __attribute__((noipa))
#endif
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
/* @x is computed here: the compiler may not move that past what follows. */
#define KEEP(x) __asm__("" : "+r"(x))

/* Deepest nesting of device callbacks on one thread. */
#define GUARD_DEPTH 16
/* Chunk size of ms_as_fill() (QEMU's). */
#define FILL_CHUNK 512

/* ---- per-thread state --------------------------------------------------- */

/*
 * The software TLB (QEMU's softmmu idea): direct-mapped tables of guest
 * pages, looked up before the index.  A page lies entirely inside one
 * directly accessed RAM range, or is a sheet: made of small such ranges
 * back to back in host memory (dispatch.c; MS__D_PAGE_LOW for a 4 KiB
 * page, ms__dispatch.sheets for a larger one).
 * Two levels: first, inline in the fast paths, pages of the size each
 * dispatch table chooses for its ranges (ms__dispatch.big_shift: 2 MiB to
 * 1 GiB for a VMM's few large RAM ranges, 4 KiB for many small ones), so
 * that the TLB reaches all of a large guest's RAM; then, in small
 * functions before the index, 4 KiB pages, for what the larger ones miss,
 * and for pages of device ranges (TLB_MMIO).  A third table, indexed like
 * the first, holds the device range last used in each first-level page:
 * a typed access that misses the first level looks there inline, from
 * the entry it probed, so that device pages neither compete with RAM for
 * the first level's slots nor need another call to be found.
 *
 * An entry belongs to one dispatch table, named by its generation (never
 * reused, unlike the table's address), and is used only while the view
 * the access loaded has that table: so a hit returns memory of that view,
 * alive for the read-side section, exactly what the index would have
 * found.  Nothing is ever invalidated; entries of older tables just stop
 * matching (generation 0 is no table's).
 *
 * A tag is the page's address with its low bits set to a - 1, where a is
 * the size of the aligned blocks an access must stay in: the page size,
 * or for a sheet the alignment of its range boundaries.  So one
 * test (tlb_match()) serves every kind, and no access matches that leaves
 * its block, its page, or wraps past the top of the address space (page 0
 * is not in the top page's slot).  A write tag is the read tag, or when
 * writes are not direct, a tag no access of the slot matches
 * (tlb_no_write()).
 */
#define TLB_PAGE_BITS MS__PAGE_BITS
#define TLB_PAGE ((uint64_t)1 << TLB_PAGE_BITS)
#define TLB_SIZE MS__TLB_SIZE     /* entries per table: 32 KiB per thread */
#define TLB_BESIDE (2 * TLB_SIZE) /* the third table (tlb_big_dev_slot()) */
#define TLB_ALL (3 * TLB_SIZE)
/*
 * In a device entry's generation: accesses of the page go to the device
 * callbacks of the range at addend (a const struct ms__dent *), which
 * starts at tag_r and has tag_w + 1 bytes (tlb_dev()).  No generation has
 * this bit, so the RAM tests never match such an entry.
 */
#define TLB_MMIO (UINT64_C(1) << 63)
/*
 * In the generation of a RAM entry of the 4 KiB level (or of a first
 * level of 4 KiB pages) that holds only part of its page, a range's
 * bytes in it: from tag_r, tag_w + 1 bytes (tlb_small()).  TLB_PART_W:
 * writes may copy to host too.  Generations (a 64-bit counter) never
 * reach these bits, so the tests of whole pages never match such an entry.
 */
#define TLB_PART (UINT64_C(1) << 62)
#define TLB_PART_W (UINT64_C(1) << 61)

/*
 * A thread's TLB: TLB_SIZE entries of the first level, whose page size
 * each dispatch table chooses, then TLB_SIZE of 4 KiB pages, then
 * TLB_SIZE device entries beside the first level's (tlb_big_dev_slot()).
 */
struct tlb_ent {
    uint64_t gen;     /* the table's generation (ms__dispatch.gen) */
    uint64_t tag_r;   /* reads copy from host */
    uint64_t tag_w;   /* writes copy to host (unlogged), if tag_r */
    uintptr_t addend; /* host address = gpa + addend */
};

/*
 * Until a thread's first fill: a table matching nothing (generation 0 is
 * no live table's), so that the hit path needs no NULL test.  Only ever
 * read.
 */
static struct tlb_ent tlb_none[TLB_ALL];

struct tls_state {
    struct tlb_ent *tlb;        /* tlb_none, or this thread's table (malloc) */
    const struct ms__dent *hit; /* the last range hit, in any view */
    unsigned depth;
    const void *guard[GUARD_DEPTH];
};

/*
 * initial-exec: no __tls_get_addr() call on the hot path in the shared
 * library (a little static TLS, which glibc reserves for such libraries;
 * hence the TLB itself is allocated, not static TLS).
 */
static __thread struct tls_state tls
    __attribute__((tls_model("initial-exec"))) = {.tlb = tlb_none};

/* Frees a thread's TLB when it exits. */
static pthread_key_t tlb_key;
static pthread_once_t tlb_once = PTHREAD_ONCE_INIT;
static bool tlb_key_ok;

static void tlb_destroy(void *p)
{
    tls.tlb = tlb_none;
    free(p);
}

static void tlb_key_init(void)
{
    tlb_key_ok = pthread_key_create(&tlb_key, tlb_destroy) == 0;
}

/* This thread's table, allocated on first use; NULL if that fails. */
static struct tlb_ent *tlb_alloc(void)
{
    pthread_once(&tlb_once, tlb_key_init);
    if (!tlb_key_ok) {
        return NULL;
    }
    struct tlb_ent *t = malloc(TLB_ALL * sizeof(*t));
    if (!t) {
        return NULL;
    }
    for (unsigned i = 0; i < TLB_ALL; i++) {
        t[i] = (struct tlb_ent){.gen = 0}; /* matches nothing */
    }
    if (pthread_setspecific(tlb_key, t) != 0) {
        free(t);
        return NULL;
    }
    tls.tlb = t;
    return t;
}

/* The first-level entry of @gpa, whose pages have @shift bits. */
static ALWAYS_INLINE struct tlb_ent *tlb_big(struct tlb_ent *tlb,
                                             unsigned shift, uint64_t gpa)
{
    return &tlb[(gpa >> shift) & (TLB_SIZE - 1)];
}

/*
 * The 4 KiB entry of @gpa for table @d: in the 4 KiB level, or in the
 * first one if its pages are 4 KiB too (then one probe serves both).
 */
static ALWAYS_INLINE struct tlb_ent *
tlb_entry(const struct ms__dispatch *d, struct tlb_ent *tlb, uint64_t gpa)
{
    if (d->big_shift != TLB_PAGE_BITS) {
        tlb += TLB_SIZE;
    }
    return &tlb[(gpa >> TLB_PAGE_BITS) & (TLB_SIZE - 1)];
}

/*
 * Whether @tag (of a table whose pages have offsets up to @mask) matches
 * the @len bytes at @gpa, which must then be in one of its blocks.  @len
 * is 1 to 8, or at most what is left of a 4 KiB page.  First a whole page
 * (a - 1 == @mask): the last byte must be in it.  Then a sheet: the bytes
 * must be in the page and, above the block's bits, the offsets of their
 * first and last byte equal.
 */
static ALWAYS_INLINE bool tlb_match(uint64_t tag, uint64_t mask, uint64_t gpa,
                                    uint64_t len)
{
    if (LIKELY(tag == ((gpa + len - 1) | mask))) {
        return true;
    }
    uint64_t low = tag & mask; /* a - 1 */
    return (tag ^ gpa) <= mask && (gpa & low) + len - 1 <= low;
}

/*
 * tlb_match() for a typed access; for a buffer access (@buf), which may
 * cross range ends (the bytes are the same when a page of the TLB holds
 * them) but not a 4 KiB page, only whether its page is @tag's.
 */
static ALWAYS_INLINE bool tlb_match_as(bool buf, uint64_t tag, uint64_t mask,
                                       uint64_t gpa, uint64_t len)
{
    return buf ? (tag ^ gpa) <= mask : tlb_match(tag, mask, gpa, len);
}

/*
 * Whether the first level maps the @len bytes at @gpa in table @d for
 * reads (@is_write false) or writes, for a typed or a buffer (@buf)
 * access; then @*host is their address.  @*slot is the entry probed.
 */
static ALWAYS_INLINE bool tlb_hit(const struct ms__dispatch *d, uint64_t gpa,
                                  uint64_t len, bool is_write, bool buf,
                                  uint8_t **host, const struct tlb_ent **slot)
{
    const struct tlb_ent *t = tlb_big(tls.tlb, d->big_shift, gpa);
    *slot = t;
    if (LIKELY(t->gen == d->gen &&
               tlb_match_as(buf, is_write ? t->tag_w : t->tag_r, d->big_mask,
                            gpa, len))) {
        *host = (uint8_t *)(uintptr_t)(gpa + t->addend);
        return true;
    }
    return false;
}

/*
 * The entry for pages of device ranges at @gpa: always in the 4 KiB level
 * (not the first one even when its pages are 4 KiB too; so no test of
 * the table's page size).
 */
static ALWAYS_INLINE struct tlb_ent *tlb_dev_slot(struct tlb_ent *tlb,
                                                  uint64_t gpa)
{
    return &tlb[TLB_SIZE + ((gpa >> TLB_PAGE_BITS) & (TLB_SIZE - 1))];
}

/*
 * The device entry beside first-level entry @t: the third table, indexed
 * like the first level, holds the device range last accessed in each of
 * its pages, so that a typed access finds it from the entry it probed.
 */
static ALWAYS_INLINE const struct tlb_ent *
tlb_big_dev_slot(const struct tlb_ent *t)
{
    return t + TLB_BESIDE;
}

/*
 * Copy device entry @s, which holds the range of @gpa in table @d, to the
 * third table of TLB @t (tlb_big_dev_slot()).
 */
static ALWAYS_INLINE void tlb_put_big_dev(const struct ms__dispatch *d,
                                          struct tlb_ent *t, uint64_t gpa,
                                          const struct tlb_ent *s)
{
    *tlb_big(t + TLB_BESIDE, d->big_shift, gpa) = *s;
}

/*
 * Whether device entry @t (tlb_dev_slot(), tlb_big_dev_slot()) holds a
 * device range of table @d (tlb_dev() says whether an access goes there).
 * Both loaded again (the atomic loads): keeping tlb_hit()'s values in
 * registers for this, after a first-level miss, costs its hit path saves
 * and restores.
 */
static ALWAYS_INLINE bool tlb_is_dev(const struct ms__dispatch *d,
                                     const struct tlb_ent *t)
{
    return __atomic_load_n(&t->gen, __ATOMIC_RELAXED) ==
           (__atomic_load_n(&d->gen, __ATOMIC_RELAXED) | TLB_MMIO);
}

/*
 * Whether an access at @gpa goes to the callbacks of the device range of
 * entry @t, which tlb_is_dev() accepted (its addend).  No page
 * test: @t holds a range of the access's table, and if @gpa lies in it,
 * the index would find it too.  Like the index, only the first byte
 * counts: an access running past a device range's end is all the
 * device's.
 */
static ALWAYS_INLINE bool tlb_dev(const struct tlb_ent *t, uint64_t gpa)
{
    return gpa - t->tag_r <= t->tag_w;
}

/*
 * The 4 KiB level's device entry for an access at @gpa of table @d, if it
 * holds the range of @gpa (the miss paths' second chance after the one
 * beside the first level); copied beside the first level's entry, so
 * that of two devices in one first-level page the one last used is found
 * there.  NULL if none.
 */
static ALWAYS_INLINE const struct tlb_ent *
tlb_small_dev(const struct ms__dispatch *d, uint64_t gpa)
{
    const struct tlb_ent *s = tlb_dev_slot(tls.tlb, gpa);
    if (!tlb_is_dev(d, s) || !tlb_dev(s, gpa)) {
        return NULL;
    }
    tlb_put_big_dev(d, tls.tlb, gpa, s);
    return s;
}

/*
 * tlb_hit() for the RAM pages of the 4 KiB level, whole, or in part
 * (TLB_PART): then typed and buffer accesses alike must stay inside the
 * range, whose neighbours in the page have other memory, or none.
 */
static ALWAYS_INLINE bool tlb_small(const struct ms__dispatch *d, uint64_t gpa,
                                    uint64_t len, bool is_write, bool buf,
                                    uint8_t **host)
{
    const struct tlb_ent *t = tlb_entry(d, tls.tlb, gpa);
    uint64_t g = t->gen ^ d->gen; /* TLB_PART, with TLB_PART_W, or 0 */
    if (g == 0) {
        if (LIKELY(tlb_match_as(buf, is_write ? t->tag_w : t->tag_r,
                                TLB_PAGE - 1, gpa, len))) {
            *host = (uint8_t *)(uintptr_t)(gpa + t->addend);
            return true;
        }
        return false;
    }
    uint64_t off = gpa - t->tag_r;
    if ((is_write ? g : g | TLB_PART_W) == (TLB_PART | TLB_PART_W) &&
        off <= t->tag_w && len - 1 <= t->tag_w - off) {
        *host = (uint8_t *)(uintptr_t)(gpa + t->addend);
        return true;
    }
    return false;
}

/*
 * Where the TLB may remember a page (tlb_fits()); TLB_PART_4K: the part of
 * a 4 KiB page in one range.
 */
enum tlb_level { TLB_NO, TLB_SMALL, TLB_BIG, TLB_PART_4K };

/*
 * The sheet (dispatch.c) holding @gpa, in a range with flags @f of table
 * @d: the first level's page if it is one (a binary search, on misses
 * only), else the 4 KiB page if that is one.  Returns its size (log2),
 * with its a - 1 in @*low and in @*w whether writes may copy to host
 * too; 0 if neither is a sheet.
 */
static __attribute__((noinline)) unsigned sheet_at(const struct ms__dispatch *d,
                                                   uint32_t f, uint64_t gpa,
                                                   uint64_t *low, bool *w)
{
    uint64_t page = gpa & ~d->big_mask;
    size_t lo = 0, hi = f & MS__D_SHEET ? d->nr_sheets : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t p = d->sheets[mid].tag & ~d->big_mask;
        if (p == page) {
            *low = d->sheets[mid].tag & d->big_mask;
            *w = d->sheets[mid].w;
            return d->big_shift;
        }
        if (p < page) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (f & MS__D_PAGE_LOW) {
        *low = (f & MS__D_PAGE_LOW) >> MS__D_PAGE_SHIFT;
        *w = (f & MS__D_PAGE_W) != 0;
        return TLB_PAGE_BITS;
    }
    return 0;
}

/*
 * Whether and where the TLB may remember the page of @gpa (found in @e)
 * in table @d: the first level's page if it lies entirely in @e and @e is
 * RAM read directly, or is a sheet; else the 4 KiB one (inside @e, or a
 * 4 KiB sheet), in the first level if its pages are 4 KiB.  With the
 * page's a - 1 in @*low (0: the whole page is one block) and in @*w
 * whether writes may be cached too.  Else, if @part, the part of that
 * 4 KiB page in @e (TLB_PART_4K): its first byte in @*low, its last in
 * @*last.
 */
static ALWAYS_INLINE enum tlb_level
tlb_fits(const struct ms__dent *e, uint64_t gpa, const struct ms__dispatch *d,
         bool part, uint64_t *low, uint64_t *last, bool *w)
{
    const uint32_t rd = MS__D_RAM | MS__D_DIRECT_READ;
    uint32_t flags = e->flags;
    unsigned shift = d->big_shift;
    enum tlb_level small = shift == TLB_PAGE_BITS ? TLB_BIG : TLB_SMALL;
    if ((flags & rd) != rd) {
        return TLB_NO;
    }
    *low = 0;
    *w = (flags & (MS__D_DIRECT_WRITE | MS__D_DIRTY)) == MS__D_DIRECT_WRITE;
    uint64_t big = (gpa >> shift) << shift;
    if (big >= e->gpa && e->last - big >= ((uint64_t)1 << shift) - 1) {
        return TLB_BIG;
    }
    if (flags & (MS__D_SHEET | MS__D_PAGE_LOW)) {
        unsigned s = sheet_at(d, flags, gpa, low, w);
        if (s) {
            return s == TLB_PAGE_BITS ? small : TLB_BIG;
        }
    }
    uint64_t page = gpa & ~(TLB_PAGE - 1);
    if (page >= e->gpa && e->last - page >= TLB_PAGE - 1) {
        return small;
    }
    if (!part) {
        return TLB_NO;
    }
    *low = page > e->gpa ? page : e->gpa;
    *last = e->last - page > TLB_PAGE - 1 ? page + TLB_PAGE - 1 : e->last;
    return TLB_PART_4K;
}

/*
 * A write tag for the read tag @tag of a table with pages of @shift bits,
 * so that writes never match: a page whose slot is half the table away,
 * neither that of an access's first byte nor of its last.
 */
static ALWAYS_INLINE uint64_t tlb_no_write(uint64_t tag, unsigned shift)
{
    return tag ^ ((uint64_t)(TLB_SIZE / 2) << shift);
}

/*
 * Remember the page of @gpa at @level, as tlb_fits() said (with @low and
 * @w), in the entry with @addend of table @gen, whose first level has
 * pages of @shift bits; returns @ret.  Writes are cached only when they
 * need nothing else (no dirty logging: it marks per access).  Called
 * last, after the read-side section (it only stores numbers), and the
 * first fill of a thread, which allocates, is a tail call: so the miss
 * paths save no registers for it.
 */
static ALWAYS_INLINE uint64_t tlb_set(struct tlb_ent *t, uint64_t gen,
                                      uint64_t gpa, uintptr_t addend,
                                      uint64_t low, uint64_t last, bool w,
                                      enum tlb_level level, unsigned shift,
                                      uint64_t ret)
{
    if (level == TLB_PART_4K) {
        /* Where tlb_small() looks (tlb_entry()). */
        if (shift != TLB_PAGE_BITS) {
            t += TLB_SIZE;
        }
        t = tlb_big(t, TLB_PAGE_BITS, gpa);
        t->gen = gen | TLB_PART | (w ? TLB_PART_W : 0);
        t->tag_r = low;
        t->tag_w = last - low;
        t->addend = addend;
        return ret;
    }
    if (level != TLB_BIG) {
        t += TLB_SIZE; /* the 4 KiB level (tlb_entry()) */
        shift = TLB_PAGE_BITS;
    }
    t = tlb_big(t, shift, gpa);
    uint64_t size = (uint64_t)1 << shift;
    uint64_t tag = (gpa & ~(size - 1)) | (low ? low : size - 1);
    t->gen = gen;
    t->tag_r = tag;
    t->tag_w = w ? tag : tlb_no_write(tag, shift);
    t->addend = addend;
    return ret;
}

/*
 * Remember that accesses of @gpa in table @d go to the callbacks of @e,
 * both reads and writes (so not for a ROM device in ROMD mode): in the
 * 4 KiB level, and beside the first level's entry of the page
 * (tlb_big_dev_slot()), where accesses look right after a first-level
 * miss.  Not in the first level itself, whose slots are RAM's: device
 * ranges are small, and their pages would evict hot RAM pages.  The entry
 * holds the range's bounds (tlb_dev()).  Called inside the read-side
 * section (@d is read), before the callbacks; does nothing for a ROMD
 * range (reads go to its RAM).
 */
static __attribute__((noinline)) void
tlb_fill_mmio(const struct ms__dispatch *d, uint64_t gpa,
              const struct ms__dent *e)
{
    struct tlb_ent *t = tls.tlb;
    if ((e->flags & MS__D_DIRECT_READ) ||
        (t == tlb_none && !(t = tlb_alloc()))) {
        return;
    }
    struct tlb_ent *s = tlb_dev_slot(t, gpa);
    s->gen = d->gen | TLB_MMIO;
    s->tag_r = e->gpa;
    s->tag_w = e->last - e->gpa;
    s->addend = (uintptr_t)e;
    tlb_put_big_dev(d, t, gpa, s);
}

/* tlb_fill() on a thread's first fill. */
static __attribute__((noinline, cold)) uint64_t
tlb_fill_first(uint64_t gen, uint64_t gpa, uintptr_t addend, uint64_t low,
               uint64_t last, bool w, enum tlb_level level, unsigned shift,
               uint64_t ret)
{
    struct tlb_ent *t = tlb_alloc();
    return t ? tlb_set(t, gen, gpa, addend, low, last, w, level, shift, ret)
             : ret;
}

static ALWAYS_INLINE uint64_t tlb_fill(uint64_t gen, uint64_t gpa,
                                       uintptr_t addend, uint64_t low,
                                       uint64_t last, bool w,
                                       enum tlb_level level, unsigned shift,
                                       uint64_t ret)
{
    struct tlb_ent *t = tls.tlb;
    if (UNLIKELY(t == tlb_none)) {
        return tlb_fill_first(gen, gpa, addend, low, last, w, level, shift,
                              ret);
    }
    return tlb_set(t, gen, gpa, addend, low, last, w, level, shift, ret);
}

/*
 * After a miss path accessed RAM range @e of table @d at @gpa directly:
 * end the read-side section, then remember the page if it may be;
 * returns @ret.  The part of a 4 KiB page in @e only if @e was also the
 * last range hit (@local): accesses that go on in one range benefit,
 * random ones would only pay for the fills.
 */
static ALWAYS_INLINE uint64_t ram_done(ms_as *as, const struct ms__dispatch *d,
                                       const struct ms__dent *e, uint64_t gpa,
                                       bool local, uint64_t ret)
{
    uint64_t low, last = 0;
    bool w;
    enum tlb_level fill = tlb_fits(e, gpa, d, local, &low, &last, &w);
    unsigned shift = d->big_shift;
    uint64_t gen = d->gen;
    uintptr_t addend = (uintptr_t)e->host - (uintptr_t)e->gpa;
    ms__rcu_read_unlock(&as->sys->rcu_token);
    return fill ? tlb_fill(gen, gpa, addend, low, last, w, fill, shift, ret)
                : ret;
}

/*
 * Scan a leaf bucket @b for @gpa: its entries are in address order and the
 * first one ending at or after @gpa holds it, unless @gpa falls in a gap.
 */
static ALWAYS_INLINE const struct ms__dent *
scan_bucket(const struct ms__dispatch *d, uint32_t b, uint64_t gpa)
{
    const struct ms__dent *e = &d->dents[b & MS__DB_IDX_MASK];
    const struct ms__dent *end = e + (b >> MS__DB_IDX_BITS);
    while (gpa > e->last) {
        if (e == end) {
            return NULL;
        }
        e++;
    }
    return gpa >= e->gpa ? e : NULL;
}

/*
 * The range holding @gpa in @d, or NULL: a hole, or, with @no_calls, a
 * view without index (the fast paths then take their slow path, which
 * searches).  Keeping calls out of the fast paths keeps them free of
 * register saves.
 *
 * The last-hit cache comes first: consecutive accesses mostly stay in one
 * range.  It is a bare entry pointer, trusted only if it points into @d's
 * own entry array: a pointer left over from a retired table is compared,
 * never dereferenced, and any entry of the live table is a valid range
 * (entry arrays are 64-byte aligned, so an old entry address inside a new
 * array is one of its entries).
 */
static ALWAYS_INLINE const struct ms__dent *lookup(const struct ms__dispatch *d,
                                                   uint64_t gpa, bool no_calls)
{
    const struct ms__dent *e = tls.hit;
    if ((uintptr_t)e - (uintptr_t)d->dents < d->nr * sizeof(*e) &&
        gpa - e->gpa <= e->last - e->gpa) {
        return e;
    }
    const struct ms__dnode *n = d->nodes;
    if (UNLIKELY(!n)) {
        if (no_calls) {
            return NULL;
        }
        e = ms__dispatch_bsearch(d, gpa);
    } else {
        uint32_t b;
        for (;;) {
            uint64_t off = gpa - n->base;
            if (off > n->span) {
                return NULL;
            }
            b = n->buckets[off >> n->shift];
            if (!(b & MS__DB_NODE)) {
                break;
            }
            n = &d->nodes[b & ~MS__DB_NODE];
        }
        e = scan_bucket(d, b, gpa);
    }
    if (e) {
        tls.hit = e;
    }
    return e;
}

static ALWAYS_INLINE const struct ms__dent *find(const struct ms__dispatch *d,
                                                 uint64_t gpa)
{
    return lookup(d, gpa, false);
}

static ALWAYS_INLINE const struct ms__dent *
find_fast(const struct ms__dispatch *d, uint64_t gpa)
{
    return lookup(d, gpa, true);
}

/* ---- ops that are not the caller's --------------------------------------- */

static bool reject_all(void *opaque, uint64_t offset, unsigned size,
                       bool is_write, struct ms_attrs attrs)
{
    (void)opaque, (void)offset, (void)size, (void)is_write, (void)attrs;
    return false;
}

/*
 * QEMU's "unassigned" ops: every access is invalid.  Holes, reservations,
 * and RAM/ROM pieces that are not accessed directly (ROM writes, accesses
 * straddling the end of a RAM range) use them.
 */
static const struct ms_region_ops unassigned_ops = {
    .endianness = MS_ENDIAN_NATIVE,
    .valid.accepts = reject_all,
};

/* RAM devices: one load or store of exactly the access size, host order. */

typedef struct {
    uint16_t v;
} __attribute__((packed, may_alias)) u16_un;
typedef struct {
    uint32_t v;
} __attribute__((packed, may_alias)) u32_un;
typedef struct {
    uint64_t v;
} __attribute__((packed, may_alias)) u64_un;

static bool ramdev_fits(const ms_region *mr, uint64_t offset, unsigned size)
{
    return offset < mr->block_size && size <= mr->block_size - offset;
}

static ms_tx_result ramdev_read(void *opaque, uint64_t offset, uint64_t *value,
                                unsigned size, struct ms_attrs attrs)
{
    const ms_region *mr = opaque;
    (void)attrs;
    if (!ramdev_fits(mr, offset, size)) {
        return MS_TX_DECODE_ERROR; /* never past the caller's memory */
    }
    const volatile uint8_t *p = (const uint8_t *)mr->host + offset;
    switch (size) {
    case 1:
        *value = *p;
        break;
    case 2:
        *value = ((const volatile u16_un *)p)->v;
        break;
    case 4:
        *value = ((const volatile u32_un *)p)->v;
        break;
    case 8:
        *value = ((const volatile u64_un *)p)->v;
        break;
    default:
        return MS_TX_DECODE_ERROR;
    }
    return MS_TX_OK;
}

static ms_tx_result ramdev_write(void *opaque, uint64_t offset, uint64_t value,
                                 unsigned size, struct ms_attrs attrs)
{
    const ms_region *mr = opaque;
    (void)attrs;
    if (!ramdev_fits(mr, offset, size)) {
        return MS_TX_DECODE_ERROR;
    }
    volatile uint8_t *p = (uint8_t *)mr->host + offset;
    switch (size) {
    case 1:
        *p = (uint8_t)value;
        break;
    case 2:
        ((volatile u16_un *)p)->v = (uint16_t)value;
        break;
    case 4:
        ((volatile u32_un *)p)->v = (uint32_t)value;
        break;
    case 8:
        ((volatile u64_un *)p)->v = value;
        break;
    default:
        return MS_TX_DECODE_ERROR;
    }
    return MS_TX_OK;
}

static const struct ms_region_ops ramdev_ops = {
    .read_with_attrs = ramdev_read,
    .write_with_attrs = ramdev_write,
    .endianness = HOST_BIG ? MS_ENDIAN_BIG : MS_ENDIAN_LITTLE,
    .valid = {.min_access_size = 1, .max_access_size = 8, .unaligned = true},
    .impl = {.min_access_size = 1, .max_access_size = 8, .unaligned = true},
};

/* ---- dispatch entries (built by dispatch.c on the owner thread) --------- */

/*
 * MMIO fast path: for ops with plain callbacks and no accepts(), the rules
 * of 7.4.2 and 7.4.4 boil down to a few bits kept in the entry, so that a
 * common access needs nothing else: bit s (s = 1, 2, 4, 8) says an access
 * of s bytes is valid and is one callback of s bytes; bit s of the split
 * set (MM_SPLIT_SHIFT) that it is valid and made of callbacks of impl.max
 * bytes (QEMU's default ops: an 8-byte access is two 4-byte callbacks);
 * then impl.max (log2), whether the guest may be unaligned and the
 * device's byte order.  0: no fast path.
 */
#define MM_SPLIT_SHIFT 10u
#define MM_VUNAL (1u << 16)
#define MM_BIG_BIT 17u
#define MM_BIG (1u << MM_BIG_BIT)
#define MM_AMAX_SHIFT 29u /* 2 bits: log2(impl.max) */
/*
 * (1 << s) << MM_BUF_SHIFT: an aligned buffer access of s bytes is also
 * one piece of the buffer loop (7.4.1: s is within valid.max, 4 when
 * unset).  Other lengths hit bits never set.
 */
#define MM_BUF_SHIFT 20u

static unsigned clamp8(unsigned v)
{
    return v > 8 ? 8 : v;
}

static uint32_t mmio_summary(const ms_system *sys,
                             const struct ms_region_ops *ops)
{
    if (!ops->read || !ops->write || ops->valid.accepts ||
        ops->valid.min_access_size > 8) {
        return 0;
    }
    unsigned amin = ops->impl.min_access_size;
    unsigned amax = ops->impl.max_access_size;
    amin = amin ? clamp8(amin) : 1;
    amax = amax ? clamp8(amax) : 4;
    unsigned vmin = ops->valid.min_access_size;
    unsigned vmax = ops->valid.max_access_size; /* 0: any size is valid */
    uint32_t m = 0;
    if (amin > amax || (amax & (amax - 1))) {
        return 0; /* odd impl sizes: the general loop */
    }
    unsigned vpiece = vmax == 0 ? 4 : clamp8(vmax); /* piece_size() */
    for (unsigned size = 1; size <= 8; size *= 2) {
        bool valid = vmax == 0 || (size >= vmin && size <= vmax);
        if (valid && size >= amin) {
            m |= size <= amax ? 1u << size : (1u << size) << MM_SPLIT_SHIFT;
            if (size <= vpiece) {
                m |= (1u << size) << MM_BUF_SHIFT;
            }
        }
    }
    m |= (uint32_t)__builtin_ctz(amax) << MM_AMAX_SHIFT;
    if (!m) {
        return 0;
    }
    if (ops->valid.unaligned) {
        m |= MM_VUNAL;
    }
    if (ops->endianness == MS_ENDIAN_BIG ||
        (ops->endianness == MS_ENDIAN_NATIVE && sys->big_endian)) {
        m |= MM_BIG;
    }
    return m;
}

/* Callbacks of impl.max bytes make the access (mmio_*_split()). */
static ALWAYS_INLINE bool mmio_split(uint32_t m, uint64_t offset, unsigned size)
{
    return size <= 8 && (m & (1u << size) << MM_SPLIT_SHIFT) &&
           (!(offset & (size - 1)) || (m & MM_VUNAL));
}

static ALWAYS_INLINE bool mmio_simple(uint32_t m, uint64_t offset,
                                      unsigned size)
{
    return size <= 8 && (m & (1u << size)) &&
           (!(offset & (size - 1)) || (m & MM_VUNAL));
}

void ms__access_dent_init(struct ms__dent *e, const ms__fr *fr)
{
    ms_region *mr = fr->mr;
    uint32_t f = 0;
    memset(e, 0, sizeof(*e));
    e->gpa = fr->gpa;
    e->last = fr->last;
    e->offset = fr->offset;
    e->mr = mr;
    e->ops = &unassigned_ops;
    bool block = mr->has_block && mr->host && fr->offset < mr->block_size;
    if (block) {
        e->host = (uint8_t *)mr->host + fr->offset;
    }
    switch (mr->kind) {
    case MS_REGION_RAM:
    case MS_REGION_ROM:
        f |= MS__D_RAM;
        if (block) {
            f |= MS__D_DIRECT_READ;
            if (!mr->readonly) {
                f |= MS__D_DIRECT_WRITE;
            }
        }
        break;
    case MS_REGION_RAM_DEVICE:
        f |= MS__D_RAM;
        e->ops = &ramdev_ops;
        e->opaque = mr;
        break;
    case MS_REGION_ROM_DEVICE:
        e->ops = mr->ops;
        e->opaque = mr->opaque;
        if (fr->romd && block) {
            f |= MS__D_DIRECT_READ | MS__D_ROMD;
        }
        break;
    case MS_REGION_IO:
        e->ops = mr->ops;
        e->opaque = mr->opaque;
        if (!mr->readonly && !mr->guard_off) {
            f |= MS__D_GUARD;
            e->guard_key = mr->guard_key; /* I/O regions have no block */
        }
        break;
    case MS_REGION_IOMMU:
        /* Never dispatched: resolve() replaces the entry (ops stay the
         * unassigned ones); the callbacks are read from the region. */
        f |= MS__D_IOMMU;
        e->opaque = mr->opaque;
        if (!mr->guard_off) {
            f |= MS__D_GUARD;
            e->guard_key = mr->guard_key;
        }
        break;
    default: /* reservations; containers and aliases never terminate */
        break;
    }
    if (block && fr->dirty_log_mask) {
        f |= (uint32_t)fr->dirty_log_mask << MS__D_LOG_SHIFT;
    }
    e->flags = f;
    if (mr->kind == MS_REGION_IO || mr->kind == MS_REGION_ROM_DEVICE) {
        e->mmio = mmio_summary(mr->sys, mr->ops);
    }
}

/* ---- small helpers ---------------------------------------------------------
 */

static ALWAYS_INLINE const struct ms_region_ops *
ops_of(const struct ms__dent *e)
{
    return e ? e->ops : &unassigned_ops;
}

static ALWAYS_INLINE void *opaque_of(const struct ms__dent *e)
{
    return e ? e->opaque : NULL;
}

/* The low @size bytes (1 to 8) of a value. */
static ALWAYS_INLINE uint64_t size_mask(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
}

static ALWAYS_INLINE uint64_t bswap_sized(uint64_t v, unsigned size)
{
    switch (size) {
    case 2:
        return __builtin_bswap16((uint16_t)v);
    case 4:
        return __builtin_bswap32((uint32_t)v);
    case 8:
        return __builtin_bswap64(v);
    default:
        return v;
    }
}

static ALWAYS_INLINE uint64_t load_ord(const uint8_t *p, unsigned size,
                                       bool big)
{
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;
    switch (size) {
    case 1:
        return *p;
    case 2:
        memcpy(&v16, p, 2);
        return big != HOST_BIG ? __builtin_bswap16(v16) : v16;
    case 4:
        memcpy(&v32, p, 4);
        return big != HOST_BIG ? __builtin_bswap32(v32) : v32;
    default:
        memcpy(&v64, p, 8);
        return big != HOST_BIG ? __builtin_bswap64(v64) : v64;
    }
}

static ALWAYS_INLINE void store_ord(uint8_t *p, uint64_t v, unsigned size,
                                    bool big)
{
    uint16_t v16;
    uint32_t v32;
    switch (size) {
    case 1:
        *p = (uint8_t)v;
        break;
    case 2:
        v16 = (uint16_t)v;
        v16 = big != HOST_BIG ? __builtin_bswap16(v16) : v16;
        memcpy(p, &v16, 2);
        break;
    case 4:
        v32 = (uint32_t)v;
        v32 = big != HOST_BIG ? __builtin_bswap32(v32) : v32;
        memcpy(p, &v32, 4);
        break;
    default:
        v = big != HOST_BIG ? __builtin_bswap64(v) : v;
        memcpy(p, &v, 8);
        break;
    }
}

/* Host-order value of the first @size bytes at @p (size 1, 2, 4 or 8). */
static uint64_t load_host(const uint8_t *p, unsigned size)
{
    return load_ord(p, size, HOST_BIG);
}

static void store_host(uint8_t *p, uint64_t v, unsigned size)
{
    store_ord(p, v, size, HOST_BIG);
}

/* A copy between guest RAM and a caller buffer (they may overlap). */
static ALWAYS_INLINE void copy(void *dst, const void *src, uint64_t n)
{
    switch (n) {
    case 8:
        __builtin_memmove(dst, src, 8);
        break;
    case 4:
        __builtin_memmove(dst, src, 4);
        break;
    case 2:
        __builtin_memmove(dst, src, 2);
        break;
    case 1:
        __builtin_memmove(dst, src, 1);
        break;
    default:
        memmove(dst, src, (size_t)n);
        break;
    }
}

static bool dev_big(const ms_system *sys, const struct ms_region_ops *ops)
{
    return ops->endianness == MS_ENDIAN_BIG ||
           (ops->endianness == MS_ENDIAN_NATIVE && sys->big_endian);
}

static const char *name_of(const struct ms__dent *e)
{
    return e ? e->mr->name : "unassigned";
}

/* ---- translation -----------------------------------------------------------
 */

struct xlat {
    const struct ms__dent *e; /* NULL: unassigned */
    uint64_t offset;          /* in e->mr; the address itself if unassigned */
    uint64_t l;               /* length, clamped to the range for RAM */
    uint64_t addr;            /* the address in e's view (IOMMUs change it) */
};

static ALWAYS_INLINE void translate_entry(const struct ms__dent *e,
                                          uint64_t gpa, uint64_t len,
                                          struct xlat *x)
{
    x->e = e;
    x->l = len;
    x->addr = gpa;
    if (!e) {
        x->offset = gpa;
        return;
    }
    x->offset = e->offset + (gpa - e->gpa);
    if (e->flags & MS__D_RAM) {
        /* MMIO lengths are not clamped: registers may be wider (7.2). */
        uint64_t room = e->last - gpa;
        if (len - 1 > room) {
            x->l = room + 1;
        }
    }
}

/* ---- MMIO dispatch (7.4) ---------------------------------------------------
 */

/* Piece size of the buffer loop (7.4.1); @l >= 1. */
static unsigned piece_size(const struct ms_region_ops *ops, uint64_t l,
                           uint64_t offset)
{
    uint64_t max = ops->valid.max_access_size;
    if (max == 0) {
        max = 4;
    } else if (max > 8) {
        max = 8; /* the widest value a callback can carry */
    }
    if (!ops->impl.unaligned) {
        uint64_t align = offset & (0 - offset);
        if (align && align < max) {
            max = align;
        }
    }
    if (l > max) {
        l = max;
    }
    unsigned n = 1;
    while (n * 2 <= l) {
        n *= 2;
    }
    return n;
}

static void log_invalid(ms_system *sys, const struct ms__dent *e,
                        uint64_t offset, unsigned size, bool is_write,
                        const char *why)
{
    ms__log(sys, MS_LOG_GUEST_ERROR,
            "invalid %u-byte %s at offset 0x%llx of '%s': %s", size,
            is_write ? "write" : "read", (unsigned long long)offset, name_of(e),
            why);
}

/* Validity (7.4.2), in QEMU's order; logs what it refuses. */
static bool access_ok(ms_system *sys, const struct ms__dent *e, uint64_t offset,
                      unsigned size, bool is_write, struct ms_attrs attrs)
{
    const struct ms_region_ops *ops = ops_of(e);
    const char *why;
    if (ops->valid.accepts &&
        !ops->valid.accepts(opaque_of(e), offset, size, is_write, attrs)) {
        why = e ? "rejected by the device" : "nothing is mapped there";
    } else if (!ops->valid.unaligned && (offset & (size - 1))) {
        why = "unaligned";
    } else if (ops->valid.max_access_size == 0) {
        return true;
    } else if (size > ops->valid.max_access_size ||
               size < ops->valid.min_access_size) {
        why = "size not allowed";
    } else {
        return true;
    }
    log_invalid(sys, e, offset, size, is_write, why);
    return false;
}

/*
 * Re-entrancy guard: push the entry's device on this thread's stack, or
 * refuse if it is already there (its callback is running below us).
 * Returns false to refuse.
 */
static bool guard_enter(ms_system *sys, const struct ms__dent *e,
                        uint64_t offset)
{
    const void *key = e->guard_key;
    const char *why = NULL;
    for (unsigned i = 0; i < tls.depth; i++) {
        if (tls.guard[i] == key) {
            why = "re-entrant access to a device from its own callback";
            break;
        }
    }
    if (!why && tls.depth == GUARD_DEPTH) {
        why = "device callbacks nested too deeply";
    }
    if (!why) {
        tls.guard[tls.depth++] = key;
        return true;
    }
    if (!__atomic_exchange_n(&e->mr->reentry_logged, true, __ATOMIC_RELAXED)) {
        ms__log(sys, MS_LOG_GUEST_ERROR,
                "%s refused: region '%s', offset 0x%llx (logged once per "
                "region)",
                why, e->mr->name, (unsigned long long)offset);
    }
    return false;
}

/*
 * The guard's push when its stack is empty (no callback runs on this
 * thread): @e's key, if @e is guarded, as the only entry.  The callbacks
 * leave the stack as they found it, so the caller empties it afterwards
 * without another look at the entry (tls.depth = 0).
 */
static ALWAYS_INLINE void guard_first(const struct ms__dent *e)
{
    if (e->flags & MS__D_GUARD) {
        tls.guard[0] = e->guard_key;
        tls.depth = 1;
    }
}

/* guard_enter() with the common case inline: no device callback running. */
static ALWAYS_INLINE bool guard_push(ms_system *sys, const struct ms__dent *e,
                                     uint64_t offset)
{
    if (LIKELY(tls.depth == 0)) {
        guard_first(e);
        return true;
    }
    return guard_enter(sys, e, offset);
}

/*
 * The adjusted-size loop (7.4.4): @size bytes at @offset as callbacks of
 * the sizes the ops implement.  @value is in the device's order.
 */
static ms_tx_result call_device(ms_system *sys, const struct ms__dent *e,
                                uint64_t offset, uint64_t *value, unsigned size,
                                bool is_write, struct ms_attrs attrs)
{
    const struct ms_region_ops *ops = e->ops;
    void *opaque = e->opaque;
    unsigned amin = ops->impl.min_access_size;
    unsigned amax = ops->impl.max_access_size;
    amin = amin == 0 ? 1 : amin > 8 ? 8 : amin;
    amax = amax == 0 ? 4 : amax > 8 ? 8 : amax;
    unsigned step = size < amax ? size : amax;
    if (step < amin) {
        step = amin;
    }
    uint64_t mask = size_mask(step);
    bool big = dev_big(sys, ops);
    bool guarded = e->flags & MS__D_GUARD;
    if (guarded && !guard_push(sys, e, offset)) {
        return MS_TX_ACCESS_ERROR;
    }
    ms_tx_result r = MS_TX_OK;
    for (unsigned i = 0; i < size; i += step) {
        int shift = big ? ((int)size - (int)step - (int)i) * 8 : (int)i * 8;
        if (!is_write) {
            uint64_t tmp;
            if (ops->read) {
                tmp = ops->read(opaque, offset + i, step);
            } else if (ops->read_with_attrs) {
                tmp = 0;
                r |=
                    ops->read_with_attrs(opaque, offset + i, &tmp, step, attrs);
            } else {
                tmp = UINT64_MAX; /* no read callback: an open bus */
            }
            tmp &= mask;
            *value |= shift >= 0 ? tmp << shift : tmp >> -shift;
        } else {
            uint64_t tmp = shift >= 0 ? *value >> shift : *value << -shift;
            tmp &= mask;
            if (ops->write) {
                ops->write(opaque, offset + i, tmp, step);
            } else if (ops->write_with_attrs) {
                r |=
                    ops->write_with_attrs(opaque, offset + i, tmp, step, attrs);
            }
        }
    }
    if (guarded) {
        tls.depth--;
    }
    return r;
}

/*
 * Whether an ioeventfd of @mr takes the write (7.8) instead of the
 * callbacks; the common case, none, inline.
 */
static ALWAYS_INLINE bool ioeventfd_takes(ms_region *mr, uint64_t offset,
                                          unsigned size, uint64_t value)
{
    return __atomic_load_n(&mr->evs, __ATOMIC_RELAXED) &&
           ms__ioeventfd_consume(mr, offset, size, value);
}

/*
 * Non-zero if a value in the order asked for (@big) needs a byte swap for,
 * or from, a device of summary @m.
 */
static ALWAYS_INLINE uint32_t mmio_swaps(uint32_t m, bool big)
{
    return (m ^ (uint32_t)big << MM_BIG_BIT) & MM_BIG;
}

/* The callback size of the MMIO fast path (impl.max). */
static ALWAYS_INLINE unsigned mmio_amax(uint32_t m)
{
    return 1u << ((m >> MM_AMAX_SHIFT) & 3);
}

/*
 * One callback of @e reads @size bytes at @offset, the guard's stack being
 * empty (guard_first()).
 */
static ALWAYS_INLINE uint64_t mmio_read_one(const struct ms__dent *e,
                                            uint64_t offset, unsigned size)
{
    guard_first(e);
    uint64_t v = e->ops->read(e->opaque, offset, size) & size_mask(size);
    tls.depth = 0;
    return v;
}

/* The same for a write of @value (in the device's order). */
static ALWAYS_INLINE void mmio_write_one(const struct ms__dent *e,
                                         uint64_t offset, uint64_t value,
                                         unsigned size)
{
    guard_first(e);
    e->ops->write(e->opaque, offset, value & size_mask(size), size);
    tls.depth = 0;
}

/*
 * Callbacks of impl.max bytes read the @size bytes at @offset of @e
 * (mmio_split() said yes), put together in the device's order (7.4.4,
 * call_device()'s loop).
 */
static ALWAYS_INLINE uint64_t mmio_read_loop(const struct ms__dent *e,
                                             uint64_t offset, unsigned size)
{
    unsigned step = mmio_amax(e->mmio);
    bool dbig = e->mmio & MM_BIG;
    uint64_t mask = size_mask(step), v = 0;
    for (unsigned i = 0; i < size; i += step) {
        uint64_t tmp = e->ops->read(e->opaque, offset + i, step) & mask;
        v |= tmp << (dbig ? (size - step - i) * 8 : i * 8);
    }
    return v;
}

/* mmio_read_loop() with the guard as in mmio_read_one(). */
static __attribute__((noinline)) uint64_t
mmio_read_pieces(const struct ms__dent *e, uint64_t offset, unsigned size)
{
    guard_first(e);
    uint64_t v = mmio_read_loop(e, offset, size);
    tls.depth = 0;
    return v;
}

/*
 * mmio_read_pieces() for the common case, two pieces (QEMU's default ops
 * read 8 bytes as two of 4), with fewer values kept across the calls.
 */
static __attribute__((noinline)) uint64_t
mmio_read_two(const struct ms__dent *e, uint64_t offset, unsigned step)
{
    guard_first(e);
    uint64_t (*read)(void *, uint64_t, unsigned) = e->ops->read;
    void *opaque = e->opaque;
    /* One word across the first call: the step and the byte order. */
    unsigned ctl = step | (e->mmio & MM_BIG ? 0x100u : 0);
    KEEP(ctl);
    uint64_t first = read(opaque, offset, step);
    step = ctl & 0xff;
    uint64_t second = read(opaque, offset + step, step);
    tls.depth = 0;
    uint64_t mask = size_mask(step);
    first &= mask;
    second &= mask;
    return ctl & 0x100 ? first << (step * 8) | second
                       : second << (step * 8) | first;
}

/*
 * The same for a write of @value (in the device's order) as two pieces of
 * @step bytes.
 */
static __attribute__((noinline)) void mmio_write_two(const struct ms__dent *e,
                                                     uint64_t offset,
                                                     uint64_t value,
                                                     unsigned step)
{
    guard_first(e);
    void (*write)(void *, uint64_t, uint64_t, unsigned) = e->ops->write;
    void *opaque = e->opaque;
    uint64_t mask = size_mask(step);
    uint64_t low = value & mask, high = (value >> (step * 8)) & mask;
    bool dbig = e->mmio & MM_BIG;
    write(opaque, offset, dbig ? high : low, step);
    write(opaque, offset + step, dbig ? low : high, step);
    tls.depth = 0;
}

/*
 * The MMIO fast path of a read that mmio_split() accepts, with any guard;
 * @*value comes back in the requested order (@big).
 */
static __attribute__((noinline)) ms_tx_result
mmio_read_split(ms_system *sys, const struct ms__dent *e, uint64_t offset,
                uint64_t *value, unsigned size, bool big)
{
    if ((e->flags & MS__D_GUARD) && !guard_push(sys, e, offset)) {
        *value = 0;
        return MS_TX_ACCESS_ERROR;
    }
    uint64_t v = mmio_read_loop(e, offset, size);
    if (e->flags & MS__D_GUARD) {
        tls.depth--;
    }
    *value = mmio_swaps(e->mmio, big) ? bswap_sized(v, size) : v;
    return MS_TX_OK;
}

/* The same for a write: @value is in the requested order (@big). */
static __attribute__((noinline)) ms_tx_result
mmio_write_split(ms_system *sys, const struct ms__dent *e, uint64_t offset,
                 uint64_t value, unsigned size, bool big)
{
    bool dbig = e->mmio & MM_BIG;
    if (big != dbig) {
        value = bswap_sized(value, size);
    }
    if (ioeventfd_takes(e->mr, offset, size, value)) {
        return MS_TX_OK;
    }
    if ((e->flags & MS__D_GUARD) && !guard_push(sys, e, offset)) {
        return MS_TX_ACCESS_ERROR;
    }
    unsigned step = mmio_amax(e->mmio);
    uint64_t mask = size_mask(step);
    for (unsigned i = 0; i < size; i += step) {
        uint64_t tmp = value >> (dbig ? (size - step - i) * 8 : i * 8);
        e->ops->write(e->opaque, offset + i, tmp & mask, step);
    }
    if (e->flags & MS__D_GUARD) {
        tls.depth--;
    }
    return MS_TX_OK;
}

/*
 * The one-callback case of mmio_*_fast() while another callback runs on
 * this thread: the guard's stack is searched.
 */
static __attribute__((noinline)) ms_tx_result
mmio_one_nested(ms_system *sys, const struct ms__dent *e, uint64_t offset,
                uint64_t *value, unsigned size, bool is_write)
{
    bool guarded = e->flags & MS__D_GUARD;
    if (guarded && !guard_enter(sys, e, offset)) {
        if (!is_write) {
            *value = 0;
        }
        return MS_TX_ACCESS_ERROR;
    }
    if (is_write) {
        e->ops->write(e->opaque, offset, *value & size_mask(size), size);
    } else {
        *value = e->ops->read(e->opaque, offset, size) & size_mask(size);
    }
    if (guarded) {
        tls.depth--;
    }
    return MS_TX_OK;
}

/*
 * The MMIO fast path of a read (mmio_simple() said yes): one callback of
 * @size bytes; @*value comes back in the requested order (@big).
 */
static ALWAYS_INLINE ms_tx_result mmio_read_fast(ms_system *sys,
                                                 const struct ms__dent *e,
                                                 uint64_t offset,
                                                 uint64_t *value, unsigned size,
                                                 bool big)
{
    bool swap = mmio_swaps(e->mmio, big);
    uint64_t v;
    if (LIKELY(tls.depth == 0)) {
        v = mmio_read_one(e, offset, size);
    } else {
        ms_tx_result r = mmio_one_nested(sys, e, offset, &v, size, false);
        if (r != MS_TX_OK) {
            *value = 0;
            return r;
        }
    }
    *value = swap ? bswap_sized(v, size) : v;
    return MS_TX_OK;
}

/* The same for a write: @value is in the requested order (@big). */
static ALWAYS_INLINE ms_tx_result mmio_write_fast(ms_system *sys,
                                                  const struct ms__dent *e,
                                                  uint64_t offset,
                                                  uint64_t value, unsigned size,
                                                  bool big)
{
    if (mmio_swaps(e->mmio, big)) {
        value = bswap_sized(value, size);
    }
    if (ioeventfd_takes(e->mr, offset, size, value)) {
        return MS_TX_OK;
    }
    if (UNLIKELY(tls.depth != 0)) {
        return mmio_one_nested(sys, e, offset, &value, size, true);
    }
    mmio_write_one(e, offset, value, size);
    return MS_TX_OK;
}

/*
 * memory_region_dispatch_read (7.4.3): @size bytes at @offset of @e (NULL:
 * unassigned); @*value comes back in the requested order (@big).
 */
static ms_tx_result dispatch_read_general(ms_system *sys,
                                          const struct ms__dent *e,
                                          uint64_t offset, uint64_t *value,
                                          unsigned size, bool big,
                                          struct ms_attrs attrs)
{
    *value = 0;
    if (!access_ok(sys, e, offset, size, false, attrs)) {
        return MS_TX_DECODE_ERROR;
    }
    /* Valid implies a real entry: unassigned ops accept nothing. */
    ms_tx_result r = call_device(sys, e, offset, value, size, false, attrs);
    if (big != dev_big(sys, e->ops)) {
        *value = bswap_sized(*value, size);
    }
    return r;
}

/*
 * Inline: the one-callback case costs its caller no further call; plain
 * callbacks narrower than the access skip the general checks too.
 */
static ALWAYS_INLINE ms_tx_result dispatch_read(ms_system *sys,
                                                const struct ms__dent *e,
                                                uint64_t offset,
                                                uint64_t *value, unsigned size,
                                                bool big, struct ms_attrs attrs)
{
    if (e && mmio_simple(e->mmio, offset, size)) {
        return mmio_read_fast(sys, e, offset, value, size, big);
    }
    if (e && mmio_split(e->mmio, offset, size)) {
        return mmio_read_split(sys, e, offset, value, size, big);
    }
    return dispatch_read_general(sys, e, offset, value, size, big, attrs);
}

static ms_tx_result dispatch_write_general(ms_system *sys,
                                           const struct ms__dent *e,
                                           uint64_t offset, uint64_t value,
                                           unsigned size, bool big,
                                           struct ms_attrs attrs)
{
    if (!access_ok(sys, e, offset, size, true, attrs)) {
        return MS_TX_DECODE_ERROR;
    }
    if (big != dev_big(sys, e->ops)) {
        value = bswap_sized(value, size);
    }
    if (ioeventfd_takes(e->mr, offset, size, value)) {
        return MS_TX_OK;
    }
    return call_device(sys, e, offset, &value, size, true, attrs);
}

static ALWAYS_INLINE ms_tx_result
dispatch_write(ms_system *sys, const struct ms__dent *e, uint64_t offset,
               uint64_t value, unsigned size, bool big, struct ms_attrs attrs)
{
    if (e && mmio_simple(e->mmio, offset, size)) {
        return mmio_write_fast(sys, e, offset, value, size, big);
    }
    if (e && mmio_split(e->mmio, offset, size)) {
        return mmio_write_split(sys, e, offset, value, size, big);
    }
    return dispatch_write_general(sys, e, offset, value, size, big, attrs);
}

/* ---- IOMMU translation (7.6) -----------------------------------------------
 */

/* IOMMUs in a row that an access may cross (a longer chain is a loop). */
#define IOMMU_DEPTH 16
/* Target address spaces an access remembers (more: loaded per piece). */
#define SEEN_MAX 8

/*
 * The views of the address spaces one access reached through IOMMUs, each
 * loaded once: the pieces of an access see one topology of every address
 * space, as they see one of their own (QEMU loads the target's view again
 * for every piece).
 */
struct seen {
    unsigned n;
    ms_as *as[SEEN_MAX];
    const ms_flatview *fv[SEEN_MAX];
};

static const ms_flatview *view_of(struct seen *s, ms_as *as)
{
    for (unsigned i = 0; i < s->n; i++) {
        if (s->as[i] == as) {
            return s->fv[i];
        }
    }
    const ms_flatview *fv = ms__rcu_deref(&as->view);
    if (s->n < SEEN_MAX) {
        s->as[s->n] = as;
        s->fv[s->n++] = fv;
    }
    return fv;
}

static void log_iommu(ms_system *sys, const struct ms__dent *e, uint64_t offset,
                      bool is_write, const char *why)
{
    ms__log(sys, MS_LOG_GUEST_ERROR, "%s at offset 0x%llx of IOMMU '%s': %s",
            is_write ? "write" : "read", (unsigned long long)offset,
            e->mr->name, why);
}

/*
 * @x holds an IOMMU entry: translate until the entry found is not one.
 * Each step calls translate() with the offset in the IOMMU, clamps the
 * length to the end of the IOMMU page and looks the translated address up
 * in the target address space's view (loaded once per access, @seen;
 * inside the caller's read-side section, which keeps it alive).  A
 * refusal leaves @x unassigned at the IOMMU offset, as QEMU does.
 */
static __attribute__((noinline)) void iommu_walk(ms_system *sys, struct xlat *x,
                                                 bool is_write,
                                                 struct ms_attrs attrs,
                                                 struct seen *seen)
{
    uint64_t len = x->l; /* IOMMU entries are not RAM: never clamped */
    unsigned need = is_write ? MS_IOMMU_WO : MS_IOMMU_RO;
    for (unsigned depth = 0;; depth++) {
        const struct ms__dent *e = x->e;
        if (!e || !(e->flags & MS__D_IOMMU)) {
            return;
        }
        const struct ms_iommu_ops *io = e->mr->iommu_ops;
        const char *why = NULL; /* logged here; other refusals log elsewhere */
        bool refused = true;
        struct ms_iommu_entry t;
        if (depth == IOMMU_DEPTH) {
            why = "too many IOMMUs in a row (a translation loop?)";
        } else if (!(e->flags & MS__D_GUARD) || guard_push(sys, e, x->offset)) {
            int idx =
                io->attrs_to_index ? io->attrs_to_index(e->opaque, attrs) : 0;
            t = io->translate(e->opaque, x->offset, need, idx);
            if (e->flags & MS__D_GUARD) {
                tls.depth--;
            }
            if (!(t.perm & need)) {
                /* Denied: the unassigned rules log the access. */
            } else if (!t.target_as || t.target_as->sys != sys) {
                why = t.target_as ? "target address space of another system"
                                  : "no target address space";
            } else {
                refused = false;
            }
        }
        if (refused) {
            if (why) {
                log_iommu(sys, e, x->offset, is_write, why);
            }
            x->e = NULL; /* unassigned at the IOMMU offset */
            x->l = len;
            return;
        }
        uint64_t a =
            (t.translated_addr & ~t.addr_mask) | (x->offset & t.addr_mask);
        uint64_t room = (a | t.addr_mask) - a; /* bytes to the page end - 1 */
        if (len - 1 > room) {
            len = room + 1;
        }
        const ms_flatview *fv = view_of(seen, t.target_as);
        translate_entry(find(&fv->disp, a), a, len, x);
        len = x->l;
    }
}

/*
 * Translation (7.2) of @len bytes at @gpa whose entry is @e, through any
 * IOMMUs (7.6).  Every path but the RAM fast paths goes through here.
 */
static ALWAYS_INLINE void resolve(ms_system *sys, const struct ms__dent *e,
                                  uint64_t gpa, uint64_t len, bool is_write,
                                  struct ms_attrs attrs, struct seen *seen,
                                  struct xlat *x)
{
    translate_entry(e, gpa, len, x);
    if (UNLIKELY(e && (e->flags & MS__D_IOMMU))) {
        iommu_walk(sys, x, is_write, attrs, seen);
    }
}

/* ---- buffer accesses (7.7) -------------------------------------------------
 */

static void log_not_ram(ms_system *sys, const struct ms__dent *e, uint64_t gpa,
                        uint64_t len)
{
    ms__log(sys, MS_LOG_GUEST_ERROR,
            "access of %llu byte(s) at 0x%llx to non-RAM region '%s' "
            "refused (memory-only requester)",
            (unsigned long long)len, (unsigned long long)gpa, name_of(e));
}

/*
 * How many of the @len bytes at @gpa, in a range with flags @f of table
 * @d that meets a sheet (dispatch.c), one copy may read (or write, if
 * @is_write) from the range's host memory on: up to the end of the sheet
 * holding @gpa (sheet_at()), if there is one and, for a write, every range
 * of it is written directly and unlogged; else @l, the bytes left in the
 * range.
 */
static uint64_t sheet_rest(const struct ms__dispatch *d, uint32_t f,
                           uint64_t gpa, uint64_t len, bool is_write,
                           uint64_t l)
{
    uint64_t low;
    bool w;
    unsigned shift = sheet_at(d, f, gpa, &low, &w);
    if (!shift || (is_write && !w)) {
        return l;
    }
    uint64_t rest_1 = (gpa | ((UINT64_C(1) << shift) - 1)) - gpa;
    return len - 1 < rest_1 ? len : rest_1 + 1; /* rest_1: bytes left - 1 */
}

/*
 * The general loop: piece by piece, each translated in view @d.  @e is the
 * entry of @gpa (already looked up).
 */
static ms_tx_result rw_loop(ms_system *sys, const struct ms__dispatch *d,
                            const struct ms__dent *e, uint64_t gpa,
                            struct ms_attrs attrs, uint8_t *buf, uint64_t len,
                            bool is_write)
{
    uint32_t direct = is_write ? MS__D_DIRECT_WRITE : MS__D_DIRECT_READ;
    ms_tx_result r = MS_TX_OK;
    bool first = true;
    struct seen seen;
    seen.n = 0;
    for (;;) {
        struct xlat x;
        const struct ms__dent *found = e;
        resolve(sys, e, gpa, len, is_write, attrs, &seen, &x);
        e = x.e;
        uint32_t f = e ? e->flags : 0;
        uint64_t l = x.l;
        if (attrs.memory && !(f & MS__D_RAM)) {
            log_not_ram(sys, e, gpa, l);
            if (first) {
                return MS_TX_ACCESS_ERROR;
            }
            r |= MS_TX_ACCESS_ERROR; /* skipped, buffer untouched */
        } else if (!(f & direct)) {
            unsigned n = piece_size(ops_of(e), l, x.offset);
            uint64_t v;
            if (is_write) {
                v = load_host(buf, n);
                r |= dispatch_write(sys, e, x.offset, v, n, HOST_BIG, attrs);
            } else {
                r |= dispatch_read(sys, e, x.offset, &v, n, HOST_BIG, attrs);
                store_host(buf, v, n);
            }
            l = n;
        } else {
            if (f & MS__D_ROMD) {
                /* Not clamped to the range: only to the block (7.7). */
                uint64_t room = e->mr->block_size - x.offset;
                if (l > room) {
                    l = room;
                }
            } else if (e == found && (f & (MS__D_SHEET | MS__D_PAGE_LOW))) {
                /* In a sheet (and, for writes, unlogged): the rest of its
                 * page in one copy, of the bytes the pieces would copy one
                 * by one. */
                l = sheet_rest(d, f, gpa, len, is_write, l);
            }
            uint8_t *h = e->host + (x.addr - e->gpa);
            if (is_write) {
                copy(h, buf, l);
                if (f & MS__D_DIRTY) {
                    ms__dirty_mark(e->mr, MS__D_LOG(f), x.offset, l);
                }
            } else {
                copy(buf, h, l);
            }
        }
        first = false;
        len -= l;
        if (!len) {
            return r;
        }
        gpa += l;
        buf += l;
        e = find(d, gpa);
    }
}

/* Out of line: entered inside the read-side section, ends it. */
static __attribute__((noinline)) ms_tx_result
rw_slow(const ms_flatview *fv, uint64_t gpa, struct ms_attrs attrs,
        uint8_t *buf, uint64_t len, bool is_write)
{
    const struct ms__dispatch *d = &fv->disp;
    ms_tx_result r =
        rw_loop(fv->sys, d, find(d, gpa), gpa, attrs, buf, len, is_write);
    ms__rcu_read_unlock(&fv->sys->rcu_token);
    return r;
}

static __attribute__((noinline)) ms_tx_result
rw_cold(ms_as *as, uint64_t gpa, struct ms_attrs attrs, uint8_t *buf,
        uint64_t len, bool is_write)
{
    if (!as || (!buf && len)) {
        return MS_TX_DECODE_ERROR;
    }
    if (!len) {
        return MS_TX_OK;
    }
    ms__rcu_read_lock();
    return rw_slow(ms__rcu_deref(&as->view), gpa, attrs, buf, len, is_write);
}

/*
 * Whether a buffer access of @len bytes at offset @off of device range @e
 * is one piece of rw_loop() (7.4.1), for rw_dev_piece().
 */
static ALWAYS_INLINE bool rw_dev_one(const struct ms__dent *e, uint64_t off,
                                     uint64_t len)
{
    return len <= 8 && (e->mmio & (1u << len) << MM_BUF_SHIFT) &&
           !(off & (len - 1));
}

static ALWAYS_INLINE uint64_t ld_dev(ms_as *as, const struct ms__dent *e,
                                     uint64_t off, unsigned size, bool big,
                                     struct ms_attrs attrs, ms_tx_result *res);

/*
 * rw_dev_read_piece() in every case but its common ones: a load of @size
 * bytes in host order is the same access (ld_dev()).
 */
static __attribute__((noinline)) ms_tx_result
rw_dev_read_slow(ms_as *as, const struct ms__dent *e, uint64_t off,
                 struct ms_attrs attrs, uint8_t *buf, unsigned size)
{
    ms_tx_result r;
    store_host(buf, ld_dev(as, e, off, size, HOST_BIG, attrs, &r), size);
    return r;
}

/*
 * A buffer read of one device piece of @size bytes (rw_dev_one() said
 * yes): with one or two callbacks, no other running on this thread and a
 * device in host order, as ld_dev(); the read-side section ends.
 */
static ALWAYS_INLINE ms_tx_result rw_dev_read_piece(ms_as *as,
                                                    const struct ms__dent *e,
                                                    uint64_t off,
                                                    struct ms_attrs attrs,
                                                    uint8_t *buf, unsigned size)
{
    uint32_t m = e->mmio;
    if (LIKELY(tls.depth == 0 && !mmio_swaps(m, HOST_BIG))) {
        uint64_t v;
        if (LIKELY(m & (1u << size))) {
            v = mmio_read_one(e, off, size);
        } else if (size == 2 * mmio_amax(m)) {
            /* Split: a piece of the loop is valid and >= impl.min. */
            v = mmio_read_two(e, off, size / 2);
        } else {
            return rw_dev_read_slow(as, e, off, attrs, buf, size);
        }
        ms__rcu_read_unlock(&as->sys->rcu_token);
        store_host(buf, v, size);
        ms_tx_result ok = MS_TX_OK; /* not kept across the call */
        KEEP(ok);
        return ok;
    }
    return rw_dev_read_slow(as, e, off, attrs, buf, size);
}

static ALWAYS_INLINE ms_tx_result st_dev(ms_as *as, const struct ms__dent *e,
                                         uint64_t off, uint64_t v,
                                         unsigned size, bool big,
                                         struct ms_attrs attrs);

/*
 * rw_loop()'s MMIO piece without the loop: a buffer access that is one
 * device piece of @size bytes (rw_dev_one() said yes), for a requester
 * that may touch devices.  A write is a store of that size in host order
 * (st_dev()); a read, rw_dev_read_piece().  The read-side section ends.
 */
static ALWAYS_INLINE ms_tx_result
rw_dev_piece(ms_as *as, const struct ms__dent *e, uint64_t off,
             struct ms_attrs attrs, uint8_t *buf, unsigned size, bool is_write)
{
    if (is_write) {
        return st_dev(as, e, off, load_host(buf, size), size, HOST_BIG, attrs);
    }
    return rw_dev_read_piece(as, e, off, attrs, buf, size);
}

/* A TLB miss (see ld_miss()); @len >= 1. */
static ALWAYS_INLINE ms_tx_result rw_miss(ms_as *as, const ms_flatview *fv,
                                          uint64_t gpa, struct ms_attrs attrs,
                                          uint8_t *buf, uint64_t len,
                                          bool is_write)
{
    /* RAM in one piece; dirty logging is in rw_slow(). */
    uint32_t want =
        MS__D_RAM | (is_write ? MS__D_DIRECT_WRITE : MS__D_DIRECT_READ);
    uint32_t mask = want | (is_write ? MS__D_DIRTY : 0);
    const struct ms__dispatch *d = &fv->disp;
    const struct ms__dent *prev = tls.hit, *e = find_fast(d, gpa);
    if (LIKELY(e && (e->flags & mask) == want && len - 1 <= e->last - gpa)) {
        uint8_t *h = e->host + (gpa - e->gpa);
        if (is_write) {
            memmove(h, buf, len);
        } else {
            memmove(buf, h, len);
        }
        return (ms_tx_result)ram_done(as, d, e, gpa, e == prev, MS_TX_OK);
    }
    /* MMIO in one piece (a vCPU's MMIO exit); its page remembered if both
     * directions go to the callbacks (not ROMD). */
    if (e && e->mmio && !attrs.memory &&
        !(e->flags & (is_write ? MS__D_DIRECT_WRITE : MS__D_DIRECT_READ))) {
        uint64_t off = e->offset + (gpa - e->gpa);
        if (rw_dev_one(e, off, len)) {
            tlb_fill_mmio(d, gpa, e);
            return rw_dev_piece(as, e, off, attrs, buf, (unsigned)len,
                                is_write);
        }
    }
    return rw_slow(fv, gpa, attrs, buf, len, is_write);
}

static ALWAYS_INLINE ms_tx_result rw_dev_tlb(ms_as *as, uint64_t gpa,
                                             struct ms_attrs attrs,
                                             uint8_t *buf, uint64_t len,
                                             const struct tlb_ent *t,
                                             bool is_write);

/*
 * Out of line, one per direction: the TLB's 4 KiB level (RAM, or a
 * device's page: rw_dev_tlb()), then, in another function, the index.
 */
#define RW_MISS(dir, is_write)                                                 \
    static __attribute__((noinline)) ms_tx_result rw_index_##dir(              \
        ms_as *as, const ms_flatview *fv, uint64_t gpa, struct ms_attrs attrs, \
        uint8_t *buf, uint64_t len)                                            \
    {                                                                          \
        return rw_miss(as, fv, gpa, attrs, buf, len, is_write);                \
    }                                                                          \
    static __attribute__((noinline)) ms_tx_result rw_miss_##dir(               \
        ms_as *as, const ms_flatview *fv, uint64_t gpa, struct ms_attrs attrs, \
        uint8_t *buf, uint64_t len)                                            \
    {                                                                          \
        uint8_t *h;                                                            \
        if (UNLIKELY(!len)) {                                                  \
            ms__rcu_read_unlock(&as->sys->rcu_token);                          \
            return MS_TX_OK;                                                   \
        }                                                                      \
        if (len - 1 <= (~gpa & (TLB_PAGE - 1)) &&                              \
            tlb_small(&fv->disp, gpa, len, is_write, true, &h)) {              \
            if (is_write) {                                                    \
                copy(h, buf, len);                                             \
            } else {                                                           \
                copy(buf, h, len);                                             \
            }                                                                  \
            ms__rcu_read_unlock(&as->sys->rcu_token);                          \
            return MS_TX_OK;                                                   \
        }                                                                      \
        const struct tlb_ent *s = tlb_small_dev(&fv->disp, gpa);               \
        if (s) {                                                               \
            return rw_dev_tlb(as, gpa, attrs, buf, len, s, is_write);          \
        }                                                                      \
        return rw_index_##dir(as, fv, gpa, attrs, buf, len);                   \
    }
RW_MISS(read, false)
RW_MISS(write, true)

/*
 * A buffer access of @len bytes at @gpa whose TLB device entry @t
 * (tlb_is_dev()) may hold its range: the callbacks if it is one device
 * piece, else the 4 KiB level and the index (rw_miss_*()), or the index's
 * loop for the device's other accesses.  One function per direction and
 * length of 1, 2, 4 or 8, which knows its size, inlined: ms_as_read() and
 * ms_as_write() then reach the callback with no frame or argument moves of
 * a call between (an 8-byte MMIO read 105 -> 95 instructions, for 4 more
 * in the RAM path's prologue).  Size 0, out of line, for the other
 * lengths, never one piece.
 */
#define RW_DEV_TLB(dir, is_write, size, how)                                   \
    static how ms_tx_result rw_dev_tlb_##dir##size(                            \
        ms_as *as, uint64_t gpa, struct ms_attrs attrs, uint8_t *buf,          \
        uint64_t len, const struct tlb_ent *t)                                 \
    {                                                                          \
        len = size ? size : len;                                               \
        if (UNLIKELY(!tlb_dev(t, gpa))) {                                      \
            return rw_miss_##dir(as, ms__rcu_deref(&as->view), gpa, attrs,     \
                                 buf, len);                                    \
        }                                                                      \
        const struct ms__dent *e = (const struct ms__dent *)t->addend;         \
        uint64_t off = e->offset + (gpa - t->tag_r);                           \
        if (size && LIKELY(!attrs.memory && rw_dev_one(e, off, size))) {       \
            return rw_dev_piece(as, e, off, attrs, buf, size, is_write);       \
        }                                                                      \
        return rw_index_##dir(as, ms__rcu_deref(&as->view), gpa, attrs, buf,   \
                              len);                                            \
    }
RW_DEV_TLB(read, false, 0, NO_IPA)
RW_DEV_TLB(read, false, 1, ALWAYS_INLINE)
RW_DEV_TLB(read, false, 2, ALWAYS_INLINE)
RW_DEV_TLB(read, false, 4, ALWAYS_INLINE)
RW_DEV_TLB(read, false, 8, ALWAYS_INLINE)
RW_DEV_TLB(write, true, 0, NO_IPA)
RW_DEV_TLB(write, true, 1, ALWAYS_INLINE)
RW_DEV_TLB(write, true, 2, ALWAYS_INLINE)
RW_DEV_TLB(write, true, 4, ALWAYS_INLINE)
RW_DEV_TLB(write, true, 8, ALWAYS_INLINE)

/* The function of RW_DEV_TLB() for @len; the widest first. */
#define RW_DEV_TLB_CALL(dir)                                                   \
    (len == 8   ? rw_dev_tlb_##dir##8(as, gpa, attrs, buf, len, t)             \
     : len == 4 ? rw_dev_tlb_##dir##4(as, gpa, attrs, buf, len, t)             \
     : len == 2 ? rw_dev_tlb_##dir##2(as, gpa, attrs, buf, len, t)             \
     : len == 1 ? rw_dev_tlb_##dir##1(as, gpa, attrs, buf, len, t)             \
                : rw_dev_tlb_##dir##0(as, gpa, attrs, buf, len, t))

static ALWAYS_INLINE ms_tx_result rw_dev_tlb(ms_as *as, uint64_t gpa,
                                             struct ms_attrs attrs,
                                             uint8_t *buf, uint64_t len,
                                             const struct tlb_ent *t,
                                             bool is_write)
{
    return is_write ? RW_DEV_TLB_CALL(write) : RW_DEV_TLB_CALL(read);
}

static ALWAYS_INLINE ms_tx_result rw(ms_as *as, uint64_t gpa,
                                     struct ms_attrs attrs, uint8_t *buf,
                                     uint64_t len, bool is_write)
{
    /* A length of 0 fails the page test below: rw_miss_*() sees it. */
    if (UNLIKELY(!as) || UNLIKELY(!buf) || UNLIKELY(!RCU_READY())) {
        return rw_cold(as, gpa, attrs, buf, len, is_write);
    }
    ms__rcu_read_lock();
    const ms_flatview *fv = ms__rcu_deref(&as->view);
    uint8_t *h;
    /* Within one page: the TLB's RAM, then its device page. */
    if (LIKELY(len - 1 <= (~gpa & (TLB_PAGE - 1)))) {
        const struct tlb_ent *t;
        if (LIKELY(tlb_hit(&fv->disp, gpa, len, is_write, true, &h, &t))) {
            if (is_write) {
                copy(h, buf, len);
            } else {
                copy(buf, h, len);
            }
            ms__rcu_read_unlock(&as->sys->rcu_token);
            return MS_TX_OK;
        }
        t = tlb_big_dev_slot(t);
        if (tlb_is_dev(&fv->disp, t)) {
            return rw_dev_tlb(as, gpa, attrs, buf, len, t, is_write);
        }
    }
    return is_write ? rw_miss_write(as, fv, gpa, attrs, buf, len)
                    : rw_miss_read(as, fv, gpa, attrs, buf, len);
}

MS_EXPORT ms_tx_result ms_as_read(ms_as *as, uint64_t gpa,
                                  struct ms_attrs attrs, void *buf,
                                  uint64_t len)
{
    return rw(as, gpa, attrs, buf, len, false);
}

MS_EXPORT ms_tx_result ms_as_write(ms_as *as, uint64_t gpa,
                                   struct ms_attrs attrs, const void *buf,
                                   uint64_t len)
{
    /* Not written through: rw() only reads @buf when is_write. */
    return rw(as, gpa, attrs, (uint8_t *)(uintptr_t)buf, len, true);
}

MS_EXPORT ms_tx_result ms_as_rw(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                                void *buf, uint64_t len, bool is_write)
{
    return rw(as, gpa, attrs, buf, len, is_write);
}

MS_EXPORT ms_tx_result ms_as_fill(ms_as *as, uint64_t gpa,
                                  struct ms_attrs attrs, uint8_t byte,
                                  uint64_t len)
{
    uint8_t chunk[FILL_CHUNK];
    memset(chunk, byte, sizeof(chunk));
    if (!as) {
        return MS_TX_DECODE_ERROR;
    }
    ms_tx_result r = MS_TX_OK;
    while (len) {
        uint64_t l = len < FILL_CHUNK ? len : FILL_CHUNK;
        r |= ms_as_write(as, gpa, attrs, chunk, l);
        gpa += l;
        len -= l;
    }
    return r;
}

MS_EXPORT ms_tx_result ms_as_write_rom(ms_as *as, uint64_t gpa,
                                       struct ms_attrs attrs, const void *buf,
                                       uint64_t len)
{
    if (!as || (!buf && len)) {
        return MS_TX_DECODE_ERROR;
    }
    const uint8_t *src = buf;
    ms__rcu_read_lock();
    const ms_flatview *fv = ms__rcu_deref(&as->view);
    const struct ms__dispatch *d = &fv->disp;
    struct seen seen;
    seen.n = 0;
    while (len) {
        struct xlat x;
        resolve(as->sys, find(d, gpa), gpa, len, true, attrs, &seen, &x);
        const struct ms__dent *e = x.e;
        uint64_t l = x.l;
        if (e && e->host && (e->flags & (MS__D_RAM | MS__D_ROMD))) {
            uint64_t room = e->mr->block_size - x.offset;
            if (l > room) {
                l = room; /* QEMU would run past the block */
            }
            copy(e->host + (x.addr - e->gpa), src, l);
            if (e->flags & MS__D_DIRTY) {
                ms__dirty_mark(e->mr, MS__D_LOG(e->flags), x.offset, l);
            }
        } else {
            l = piece_size(ops_of(e), l, x.offset);
        }
        len -= l;
        gpa += l;
        src += l;
    }
    ms__rcu_read_unlock(&as->sys->rcu_token);
    return MS_TX_OK;
}

MS_EXPORT bool ms_as_access_valid(ms_as *as, uint64_t gpa, uint64_t len,
                                  bool is_write, struct ms_attrs attrs)
{
    if (!as) {
        return false;
    }
    uint32_t direct = is_write ? MS__D_DIRECT_WRITE : MS__D_DIRECT_READ;
    bool ok = true;
    ms__rcu_read_lock();
    const ms_flatview *fv = ms__rcu_deref(&as->view);
    const struct ms__dispatch *d = &fv->disp;
    struct seen seen;
    seen.n = 0;
    while (len) {
        struct xlat x;
        resolve(as->sys, find(d, gpa), gpa, len, is_write, attrs, &seen, &x);
        const struct ms__dent *e = x.e;
        uint64_t l = x.l;
        if (!e || !(e->flags & direct)) {
            /* Quirk (7.7): the piece size uses the address, not offset. */
            unsigned n = piece_size(ops_of(e), l, gpa);
            if (!access_ok(as->sys, e, x.offset, n, is_write, attrs)) {
                ok = false;
                break;
            }
            l = n;
        }
        len -= l;
        gpa += l;
    }
    ms__rcu_read_unlock(&as->sys->rcu_token);
    return ok;
}

/* ---- fixed-size loads and stores (7.7) ------------------------------------
 */

enum order { ORD_LE, ORD_BE, ORD_TARGET };

static ALWAYS_INLINE bool order_big(const ms_system *sys, enum order o)
{
    return o == ORD_BE || (o == ORD_TARGET && sys->big_endian);
}

/*
 * The fast paths below are small enough to need no saved registers; all
 * else (MMIO, ROMD, holes, RAM range ends) is out of line, and the out of
 * line parts end the read-side section themselves.
 */
/*
 * Out of line: everything that is not RAM in one piece.  Entered inside
 * the read-side section (a NULL @as excepted) and ends it.  It looks the
 * address up again: that may see a newer view than the fast path did,
 * which is fine, the fast path having done nothing.
 */
static __attribute__((noinline)) uint64_t
ld_slow(ms_as *as, const struct ms__dent *e, uint64_t gpa, unsigned size_big,
        struct ms_attrs attrs, ms_tx_result *res)
{
    ms_system *sys = as->sys;
    unsigned size = size_big & 0xf;
    bool big = size_big >> 4;
    if (!e) { /* a hole, or a view without index: search (any view) */
        e = find(&ms__rcu_deref(&as->view)->disp, gpa);
    }
    struct xlat x;
    struct seen seen;
    seen.n = 0;
    resolve(sys, e, gpa, size, false, attrs, &seen, &x);
    e = x.e;
    uint64_t offset = x.offset;
    uint64_t v;
    ms_tx_result r = MS_TX_OK;
    /* x.l < size: the access straddles a RAM range or IOMMU page end. */
    if (e && (e->flags & MS__D_DIRECT_READ) && x.l == size &&
        (!(e->flags & MS__D_ROMD) ||
         (size <= e->mr->block_size && offset <= e->mr->block_size - size))) {
        /* ROMD lengths are not clamped to the range, only the block (7.2). */
        v = load_ord(e->host + (x.addr - e->gpa), size, big);
    } else {
        /* Includes RAM straddling its range end: the unassigned ops. */
        r = dispatch_read(sys, e, offset, &v, size, big, attrs);
    }
    ms__rcu_read_unlock(&sys->rcu_token);
    if (res) {
        *res = r;
    }
    return v;
}

static __attribute__((noinline)) uint64_t ld_cold(ms_as *as, uint64_t gpa,
                                                  unsigned size_big,
                                                  struct ms_attrs attrs,
                                                  ms_tx_result *res)
{
    if (!as) {
        if (res) {
            *res = MS_TX_DECODE_ERROR;
        }
        return 0;
    }
    ms__rcu_read_lock(); /* registers the thread with liburcu */
    const ms_flatview *fv = ms__rcu_deref(&as->view);
    return ld_slow(as, find(&fv->disp, gpa), gpa, size_big, attrs, res);
}

/* The end of a device read: the read-side section, then @*res. */
static ALWAYS_INLINE uint64_t ld_dev_done(ms_as *as, ms_tx_result r, uint64_t v,
                                          ms_tx_result *res)
{
    ms__rcu_read_unlock(&as->sys->rcu_token);
    if (res) {
        *res = r;
    }
    return v;
}

/*
 * ld_dev() but for the fast paths with no other callback running on this
 * thread: dispatch_read()'s checks, loops and guard.
 */
static __attribute__((noinline)) uint64_t
ld_dev_general(ms_as *as, const struct ms__dent *e, uint64_t off, unsigned size,
               bool big, struct ms_attrs attrs, ms_tx_result *res)
{
    uint64_t v;
    ms_tx_result r = dispatch_read(as->sys, e, off, &v, size, big, attrs);
    return ld_dev_done(as, r, v, res);
}

/* ld_dev()'s one callback when the value needs a byte swap. */
static __attribute__((noinline)) uint64_t
ld_dev_swapped(ms_as *as, const struct ms__dent *e, uint64_t off, unsigned size,
               ms_tx_result *res)
{
    uint64_t v = mmio_read_one(e, off, size);
    return ld_dev_done(as, MS_TX_OK, bswap_sized(v, size), res);
}

/*
 * Device callbacks read @e at offset @off of its region, and the
 * read-side section ends.  The fast paths inline, so that the value stays
 * in a register.
 */
static ALWAYS_INLINE uint64_t ld_dev(ms_as *as, const struct ms__dent *e,
                                     uint64_t off, unsigned size, bool big,
                                     struct ms_attrs attrs, ms_tx_result *res)
{
    uint32_t m = e->mmio;
    if (LIKELY(tls.depth == 0)) {
        /* The fast paths succeed: @*res is set before the callbacks, so
         * that it need not live across them. */
        if (LIKELY(mmio_simple(m, off, size))) {
            if (UNLIKELY(mmio_swaps(m, big))) {
                return ld_dev_swapped(as, e, off, size, res);
            }
            /* Only the thread's state lives across the call. */
            if (res) {
                *res = MS_TX_OK;
            }
            return ld_dev_done(as, MS_TX_OK, mmio_read_one(e, off, size), NULL);
        }
        if (mmio_split(m, off, size)) {
            uint32_t swap = mmio_swaps(m, big);
            if (res) {
                *res = MS_TX_OK;
            }
            KEEP(swap); /* one register across the calls, not two */
            uint64_t v = size == 2 * mmio_amax(m)
                             ? mmio_read_two(e, off, size / 2)
                             : mmio_read_pieces(e, off, size);
            return ld_dev_done(as, MS_TX_OK, swap ? bswap_sized(v, size) : v,
                               NULL);
        }
    }
    return ld_dev_general(as, e, off, size, big, attrs, res);
}

/*
 * Out of line: a TLB miss.  Entered inside the read-side section with the
 * view @fv the access loaded, ends it.  RAM in one piece is still done
 * here (and its page remembered); everything else goes on to ld_slow().
 */
static ALWAYS_INLINE uint64_t ld_miss(ms_as *as, const ms_flatview *fv,
                                      uint64_t gpa, unsigned size, bool big,
                                      struct ms_attrs attrs, ms_tx_result *res)
{
    const struct ms__dispatch *d = &fv->disp;
    const struct ms__dent *prev = tls.hit, *e = find_fast(d, gpa);
    if (LIKELY(e && (e->flags & MS__D_DIRECT_READ) &&
               size - 1 <= e->last - gpa)) {
        uint64_t v = load_ord(e->host + (gpa - e->gpa), size, big);
        if (res) {
            *res = MS_TX_OK;
        }
        return ram_done(as, d, e, gpa, e == prev, v);
    }
    /* Plain MMIO: the page remembered as the range's, and ld_slow()'s
     * dispatch without a second call.  Not for a ROMD range (direct even
     * past the range end: ld_slow()). */
    if (e && !(e->flags & MS__D_DIRECT_READ) && e->mmio) {
        tlb_fill_mmio(d, gpa, e);
        return ld_dev(as, e, e->offset + (gpa - e->gpa), size, big, attrs, res);
    }
    return ld_slow(as, e, gpa, size | (unsigned)big << 4, attrs, res);
}

/*
 * Out of line, one per size: the TLB's 4 KiB level (RAM, or a device's
 * page, dispatched here), then, in another function, the index.
 */
#define LD_MISS(size)                                                          \
    static __attribute__((noinline)) uint64_t ld_index##size(                  \
        ms_as *as, const ms_flatview *fv, uint64_t gpa, bool big,              \
        struct ms_attrs attrs, ms_tx_result *res)                              \
    {                                                                          \
        return ld_miss(as, fv, gpa, size, big, attrs, res);                    \
    }                                                                          \
    static NO_IPA uint64_t ld_dev##size(                                       \
        ms_as *as, const struct tlb_ent *t, uint64_t gpa, bool big,            \
        struct ms_attrs attrs, ms_tx_result *res);                             \
    static __attribute__((noinline)) uint64_t ld_small##size(                  \
        ms_as *as, const ms_flatview *fv, uint64_t gpa, bool big,              \
        struct ms_attrs attrs, ms_tx_result *res)                              \
    {                                                                          \
        uint8_t *h;                                                            \
        if (LIKELY(tlb_small(&fv->disp, gpa, size, false, false, &h))) {       \
            uint64_t v = load_ord(h, size, big);                               \
            ms__rcu_read_unlock(&as->sys->rcu_token);                          \
            if (res) {                                                         \
                *res = MS_TX_OK;                                               \
            }                                                                  \
            return v;                                                          \
        }                                                                      \
        const struct tlb_ent *s = tlb_small_dev(&fv->disp, gpa);               \
        if (s) {                                                               \
            return ld_dev##size(as, s, gpa, big, attrs, res);                  \
        }                                                                      \
        return ld_index##size(as, fv, gpa, big, attrs, res);                   \
    }                                                                          \
    static NO_IPA uint64_t ld_dev##size(                                       \
        ms_as *as, const struct tlb_ent *t, uint64_t gpa, bool big,            \
        struct ms_attrs attrs, ms_tx_result *res)                              \
    {                                                                          \
        const struct ms__dent *e = (const struct ms__dent *)t->addend;         \
        if (LIKELY(tlb_dev(t, gpa))) {                                         \
            return ld_dev(as, e, e->offset + (gpa - t->tag_r), size, big,      \
                          attrs, res);                                         \
        }                                                                      \
        return ld_small##size(as, ms__rcu_deref(&as->view), gpa, big, attrs,   \
                              res);                                            \
    }
LD_MISS(1)
LD_MISS(2)
LD_MISS(4)
LD_MISS(8)

static ALWAYS_INLINE uint64_t ld(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                                 unsigned size, enum order o, ms_tx_result *res)
{
    if (UNLIKELY(!as || !RCU_READY())) {
        bool cold_big = as && order_big(as->sys, o);
        return ld_cold(as, gpa, size | (unsigned)cold_big << 4, attrs, res);
    }
    bool big = order_big(as->sys, o);
    ms__rcu_read_lock();
    const ms_flatview *fv = ms__rcu_deref(&as->view);
    uint8_t *h;
    const struct tlb_ent *t;
    if (LIKELY(tlb_hit(&fv->disp, gpa, size, false, false, &h, &t))) {
        uint64_t v = load_ord(h, size, big);
        ms__rcu_read_unlock(&as->sys->rcu_token);
        if (res) {
            *res = MS_TX_OK;
        }
        return v;
    }
    t = tlb_big_dev_slot(t);
    bool dev = tlb_is_dev(&fv->disp, t);
    switch (size) {
    case 1:
        return dev ? ld_dev1(as, t, gpa, big, attrs, res)
                   : ld_small1(as, fv, gpa, big, attrs, res);
    case 2:
        return dev ? ld_dev2(as, t, gpa, big, attrs, res)
                   : ld_small2(as, fv, gpa, big, attrs, res);
    case 4:
        return dev ? ld_dev4(as, t, gpa, big, attrs, res)
                   : ld_small4(as, fv, gpa, big, attrs, res);
    default:
        return dev ? ld_dev8(as, t, gpa, big, attrs, res)
                   : ld_small8(as, fv, gpa, big, attrs, res);
    }
}

static __attribute__((noinline)) ms_tx_result
st_slow(ms_as *as, const struct ms__dent *e, uint64_t gpa, uint64_t v,
        unsigned size_big, struct ms_attrs attrs)
{
    ms_system *sys = as->sys;
    unsigned size = size_big & 0xf;
    bool big = size_big >> 4;
    if (!e) {
        e = find(&ms__rcu_deref(&as->view)->disp, gpa);
    }
    struct xlat x;
    struct seen seen;
    seen.n = 0;
    resolve(sys, e, gpa, size, true, attrs, &seen, &x);
    e = x.e;
    ms_tx_result r = MS_TX_OK;
    if (e && (e->flags & MS__D_DIRECT_WRITE) && x.l == size) {
        store_ord(e->host + (x.addr - e->gpa), v, size, big);
        if (e->flags & MS__D_DIRTY) {
            ms__dirty_mark(e->mr, MS__D_LOG(e->flags), x.offset, size);
        }
    } else {
        r = dispatch_write(sys, e, x.offset, v, size, big, attrs);
    }
    ms__rcu_read_unlock(&sys->rcu_token);
    return r;
}

static __attribute__((noinline)) ms_tx_result st_cold(ms_as *as, uint64_t gpa,
                                                      uint64_t v,
                                                      unsigned size_big,
                                                      struct ms_attrs attrs)
{
    if (!as) {
        return MS_TX_DECODE_ERROR;
    }
    ms__rcu_read_lock();
    const ms_flatview *fv = ms__rcu_deref(&as->view);
    return st_slow(as, find(&fv->disp, gpa), gpa, v, size_big, attrs);
}

/*
 * Device callbacks write @v to @e at offset @off of its region; the
 * read-side section ends.
 */
static __attribute__((noinline)) ms_tx_result
st_dev_general(ms_as *as, const struct ms__dent *e, uint64_t off, uint64_t v,
               unsigned size, bool big, struct ms_attrs attrs)
{
    ms_tx_result r = dispatch_write(as->sys, e, off, v, size, big, attrs);
    ms__rcu_read_unlock(&as->sys->rcu_token);
    return r;
}

static ALWAYS_INLINE ms_tx_result st_dev(ms_as *as, const struct ms__dent *e,
                                         uint64_t off, uint64_t v,
                                         unsigned size, bool big,
                                         struct ms_attrs attrs)
{
    uint32_t m = e->mmio;
    /* One callback, or two (QEMU's default ops), no other running on this
     * thread, no ioeventfd: as mmio_write_fast(), with nothing but the
     * thread's state across the call. */
    if (LIKELY(tls.depth == 0 &&
               !__atomic_load_n(&e->mr->evs, __ATOMIC_RELAXED))) {
        bool one = mmio_simple(m, off, size);
        if (LIKELY(one ||
                   (mmio_split(m, off, size) && size == 2 * mmio_amax(m)))) {
            if (mmio_swaps(m, big)) {
                v = bswap_sized(v, size);
            }
            if (LIKELY(one)) {
                mmio_write_one(e, off, v, size);
            } else {
                mmio_write_two(e, off, v, size / 2);
            }
            ms__rcu_read_unlock(&as->sys->rcu_token);
            /* Made here, or gcc keeps the depth's 0 across the call. */
            ms_tx_result ok = MS_TX_OK;
            KEEP(ok);
            return ok;
        }
    }
    return st_dev_general(as, e, off, v, size, big, attrs);
}

/* Out of line: a TLB miss (see ld_miss()). */
static ALWAYS_INLINE ms_tx_result st_miss(ms_as *as, const ms_flatview *fv,
                                          uint64_t gpa, uint64_t v,
                                          unsigned size, bool big,
                                          struct ms_attrs attrs)
{
    const struct ms__dispatch *d = &fv->disp;
    const struct ms__dent *prev = tls.hit, *e = find_fast(d, gpa);
    /* Dirty logging, most MMIO, ROM... in st_slow(). */
    if (LIKELY(e &&
               (e->flags & (MS__D_DIRECT_WRITE | MS__D_DIRTY)) ==
                   MS__D_DIRECT_WRITE &&
               size - 1 <= e->last - gpa)) {
        store_ord(e->host + (gpa - e->gpa), v, size, big);
        return (ms_tx_result)ram_done(as, d, e, gpa, e == prev, MS_TX_OK);
    }
    /* Plain MMIO: the page remembered as the range's, and st_slow()'s
     * dispatch without a second call. */
    if (e && e->mmio) {
        tlb_fill_mmio(d, gpa, e);
        return st_dev(as, e, e->offset + (gpa - e->gpa), v, size, big, attrs);
    }
    return st_slow(as, e, gpa, v, size | (unsigned)big << 4, attrs);
}

#define ST_MISS(size)                                                          \
    static __attribute__((noinline)) ms_tx_result st_index##size(              \
        ms_as *as, const ms_flatview *fv, uint64_t gpa, uint64_t v, bool big,  \
        struct ms_attrs attrs)                                                 \
    {                                                                          \
        return st_miss(as, fv, gpa, v, size, big, attrs);                      \
    }                                                                          \
    static NO_IPA ms_tx_result st_dev##size(                                   \
        ms_as *as, const struct tlb_ent *t, uint64_t gpa, uint64_t v,          \
        bool big, struct ms_attrs attrs);                                      \
    static __attribute__((noinline)) ms_tx_result st_small##size(              \
        ms_as *as, const ms_flatview *fv, uint64_t gpa, uint64_t v, bool big,  \
        struct ms_attrs attrs)                                                 \
    {                                                                          \
        uint8_t *h;                                                            \
        if (LIKELY(tlb_small(&fv->disp, gpa, size, true, false, &h))) {        \
            store_ord(h, v, size, big);                                        \
            ms__rcu_read_unlock(&as->sys->rcu_token);                          \
            return MS_TX_OK;                                                   \
        }                                                                      \
        const struct tlb_ent *s = tlb_small_dev(&fv->disp, gpa);               \
        if (s) {                                                               \
            return st_dev##size(as, s, gpa, v, big, attrs);                    \
        }                                                                      \
        return st_index##size(as, fv, gpa, v, big, attrs);                     \
    }                                                                          \
    static NO_IPA ms_tx_result st_dev##size(                                   \
        ms_as *as, const struct tlb_ent *t, uint64_t gpa, uint64_t v,          \
        bool big, struct ms_attrs attrs)                                       \
    {                                                                          \
        const struct ms__dent *e = (const struct ms__dent *)t->addend;         \
        if (LIKELY(tlb_dev(t, gpa))) {                                         \
            return st_dev(as, e, e->offset + (gpa - t->tag_r), v, size, big,   \
                          attrs);                                              \
        }                                                                      \
        return st_small##size(as, ms__rcu_deref(&as->view), gpa, v, big,       \
                              attrs);                                          \
    }
ST_MISS(1)
ST_MISS(2)
ST_MISS(4)
ST_MISS(8)

static ALWAYS_INLINE ms_tx_result st(ms_as *as, uint64_t gpa, uint64_t v,
                                     struct ms_attrs attrs, unsigned size,
                                     enum order o)
{
    if (UNLIKELY(!as || !RCU_READY())) {
        bool cold_big = as && order_big(as->sys, o);
        return st_cold(as, gpa, v, size | (unsigned)cold_big << 4, attrs);
    }
    bool big = order_big(as->sys, o);
    ms__rcu_read_lock();
    const ms_flatview *fv = ms__rcu_deref(&as->view);
    uint8_t *h;
    const struct tlb_ent *t;
    if (LIKELY(tlb_hit(&fv->disp, gpa, size, true, false, &h, &t))) {
        store_ord(h, v, size, big);
        ms__rcu_read_unlock(&as->sys->rcu_token);
        return MS_TX_OK;
    }
    t = tlb_big_dev_slot(t);
    bool dev = tlb_is_dev(&fv->disp, t);
    switch (size) {
    case 1:
        return dev ? st_dev1(as, t, gpa, v, big, attrs)
                   : st_small1(as, fv, gpa, v, big, attrs);
    case 2:
        return dev ? st_dev2(as, t, gpa, v, big, attrs)
                   : st_small2(as, fv, gpa, v, big, attrs);
    case 4:
        return dev ? st_dev4(as, t, gpa, v, big, attrs)
                   : st_small4(as, fv, gpa, v, big, attrs);
    default:
        return dev ? st_dev8(as, t, gpa, v, big, attrs)
                   : st_small8(as, fv, gpa, v, big, attrs);
    }
}

MS_EXPORT uint8_t ms_as_ldub(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                             ms_tx_result *res)
{
    return (uint8_t)ld(as, gpa, attrs, 1, ORD_LE, res);
}

#define MS__LD(name, type, size, ord)                                          \
    MS_EXPORT type name(ms_as *as, uint64_t gpa, struct ms_attrs attrs,        \
                        ms_tx_result *res)                                     \
    {                                                                          \
        return (type)ld(as, gpa, attrs, size, ord, res);                       \
    }

MS__LD(ms_as_lduw, uint16_t, 2, ORD_TARGET)
MS__LD(ms_as_lduw_le, uint16_t, 2, ORD_LE)
MS__LD(ms_as_lduw_be, uint16_t, 2, ORD_BE)
MS__LD(ms_as_ldl, uint32_t, 4, ORD_TARGET)
MS__LD(ms_as_ldl_le, uint32_t, 4, ORD_LE)
MS__LD(ms_as_ldl_be, uint32_t, 4, ORD_BE)
MS__LD(ms_as_ldq, uint64_t, 8, ORD_TARGET)
MS__LD(ms_as_ldq_le, uint64_t, 8, ORD_LE)
MS__LD(ms_as_ldq_be, uint64_t, 8, ORD_BE)

#define MS__ST(name, type, size, ord)                                          \
    MS_EXPORT ms_tx_result name(ms_as *as, uint64_t gpa, type val,             \
                                struct ms_attrs attrs)                         \
    {                                                                          \
        return st(as, gpa, val, attrs, size, ord);                             \
    }

MS__ST(ms_as_stb, uint8_t, 1, ORD_LE)
MS__ST(ms_as_stw, uint16_t, 2, ORD_TARGET)
MS__ST(ms_as_stw_le, uint16_t, 2, ORD_LE)
MS__ST(ms_as_stw_be, uint16_t, 2, ORD_BE)
MS__ST(ms_as_stl, uint32_t, 4, ORD_TARGET)
MS__ST(ms_as_stl_le, uint32_t, 4, ORD_LE)
MS__ST(ms_as_stl_be, uint32_t, 4, ORD_BE)
MS__ST(ms_as_stq, uint64_t, 8, ORD_TARGET)
MS__ST(ms_as_stq_le, uint64_t, 8, ORD_LE)
MS__ST(ms_as_stq_be, uint64_t, 8, ORD_BE)

/* ---- mapping for DMA (7.9) -------------------------------------------------
 *
 * Direct mappings pin their region (an atomic count any thread may change)
 * instead of referencing it: region lifetimes belong to the owner thread,
 * which keeps a released but pinned region's block until the pins are gone
 * (region.c).  The pin is taken inside the read-side section, while the
 * published view still shows the region.
 *
 * Bounce buffers: QEMU 7.2's rule, one per system, at most a target page;
 * or, for an address space with a budget, later QEMU's: any number whose
 * sizes add up to at most the budget (a compare-and-swap counter).  The
 * map-client list is short and cold; a spinlock guards it.
 */

static void clients_lock(ms_system *sys)
{
    while (__atomic_exchange_n(&sys->map_lock, 1, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&sys->map_lock, __ATOMIC_RELAXED)) {
            sched_yield();
        }
    }
}

static void clients_unlock(ms_system *sys)
{
    __atomic_store_n(&sys->map_lock, 0, __ATOMIC_RELEASE);
}

/* The address space whose budget @c waits for; NULL: the system's buffer. */
static const ms_as *client_budget(const struct ms_map_client *c)
{
    return c->as && ms_as_bounce_budget(c->as) ? c->as : NULL;
}

/*
 * Notify (and unregister) every client waiting for what was released, one
 * at a time, unlocked.
 */
static void clients_notify(ms_system *sys, const ms_as *budget_as)
{
    for (;;) {
        clients_lock(sys);
        struct ms_map_client **pp = &sys->map_clients, *c;
        while ((c = *pp) && client_budget(c) != budget_as) {
            pp = &c->next_;
        }
        if (c) {
            *pp = c->next_;
            c->next_ = NULL;
            c->registered_ = false;
        }
        clients_unlock(sys);
        if (!c) {
            return;
        }
        c->notify(c->opaque);
    }
}

/* Is the bounce buffer @c waits for free? */
static bool client_can_map(ms_system *sys, const struct ms_map_client *c)
{
    const ms_as *as = client_budget(c);
    if (as) {
        return __atomic_load_n(&as->bounce_used, __ATOMIC_ACQUIRE) <
               ms_as_bounce_budget(as);
    }
    return !__atomic_load_n(&sys->bounce_in_use, __ATOMIC_ACQUIRE);
}

MS_EXPORT int ms_map_client_register(ms_system *sys, struct ms_map_client *c)
{
    if (!sys || !c || !c->notify || (c->as && c->as->sys != sys)) {
        return -EINVAL;
    }
    clients_lock(sys);
    if (c->registered_) {
        clients_unlock(sys);
        return -EEXIST;
    }
    /*
     * Checked and queued under the lock: a release after the check notifies
     * after the queueing (it takes the lock), so no wake-up is lost.
     */
    if (client_can_map(sys, c)) {
        clients_unlock(sys);
        c->notify(c->opaque);
        return 0;
    }
    struct ms_map_client **pp = &sys->map_clients;
    while (*pp) {
        pp = &(*pp)->next_;
    }
    c->next_ = NULL;
    c->registered_ = true;
    *pp = c;
    clients_unlock(sys);
    return 0;
}

MS_EXPORT int ms_map_client_unregister(ms_system *sys, struct ms_map_client *c)
{
    if (!sys || !c) {
        return -EINVAL;
    }
    int err = -ENOENT;
    clients_lock(sys);
    for (struct ms_map_client **pp = &sys->map_clients; *pp;
         pp = &(*pp)->next_) {
        if (*pp == c) {
            *pp = c->next_;
            c->next_ = NULL;
            c->registered_ = false;
            err = 0;
            break;
        }
    }
    clients_unlock(sys);
    return err;
}

/*
 * Take a bounce buffer of up to @want bytes for @as: from its budget if it
 * has one (*@budget), else the system's single buffer of at most a target
 * page.  Returns its length, 0 if none is free.
 */
static uint64_t bounce_take(ms_as *as, uint64_t want, bool *budget)
{
    uint64_t max = __atomic_load_n(&as->bounce_max, __ATOMIC_RELAXED);
    *budget = max != 0;
    if (!max) {
        uint64_t page = as->sys->target_page_size;
        if (__atomic_exchange_n(&as->sys->bounce_in_use, true,
                                __ATOMIC_ACQ_REL)) {
            return 0;
        }
        return want < page ? want : page;
    }
    uint64_t used = __atomic_load_n(&as->bounce_used, __ATOMIC_RELAXED);
    uint64_t l;
    do {
        uint64_t left = used < max ? max - used : 0;
        l = want < left ? want : left;
        if (!l) {
            return 0;
        }
    } while (!__atomic_compare_exchange_n(&as->bounce_used, &used, used + l,
                                          true, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    return l;
}

static void bounce_give(ms_as *as, uint64_t l, bool budget)
{
    if (budget) {
        __atomic_sub_fetch(&as->bounce_used, l, __ATOMIC_ACQ_REL);
    } else {
        __atomic_store_n(&as->sys->bounce_in_use, false, __ATOMIC_RELEASE);
    }
}

MS_EXPORT int ms_as_set_bounce_budget(ms_as *as, uint64_t bytes)
{
    if (!as) {
        return -EINVAL;
    }
    __atomic_store_n(&as->bounce_max, bytes, __ATOMIC_RELAXED);
    return 0;
}

MS_EXPORT uint64_t ms_as_bounce_budget(const ms_as *as)
{
    return as ? __atomic_load_n(&as->bounce_max, __ATOMIC_RELAXED) : 0;
}

MS_EXPORT void *ms_as_map(ms_as *as, uint64_t gpa, uint64_t *len, bool is_write,
                          struct ms_attrs attrs, struct ms_map *map)
{
    if (map) {
        memset(map, 0, sizeof(*map));
    }
    if (!as || !len || !map || !*len) {
        if (len) {
            *len = 0;
        }
        return NULL;
    }
    ms_system *sys = as->sys;
    uint64_t want = *len;
    uint32_t direct = is_write ? MS__D_DIRECT_WRITE : MS__D_DIRECT_READ;
    struct xlat x;
    ms__rcu_read_lock();
    const ms_flatview *fv = ms__rcu_deref(&as->view);
    const struct ms__dispatch *d = &fv->disp;
    struct seen seen;
    seen.n = 0;
    resolve(sys, find(d, gpa), gpa, want, is_write, attrs, &seen, &x);
    if (x.e && (x.e->flags & direct)) {
        ms_region *mr = x.e->mr;
        uint64_t done = x.l;
        /* Extend over the same region at contiguous offsets. */
        while (done < want) {
            struct xlat y;
            resolve(sys, find(d, gpa + done), gpa + done, want - done, is_write,
                    attrs, &seen, &y);
            if (!y.e || y.e->mr != mr || y.offset != x.offset + done) {
                break;
            }
            done += y.l;
        }
        uint64_t room = mr->block_size - x.offset;
        if (done > room) {
            done = room;
        }
        __atomic_add_fetch(&mr->pins, 1, __ATOMIC_ACQ_REL);
        map->host = (uint8_t *)mr->host + x.offset;
        map->len = done;
        map->as_ = as;
        map->mr_ = mr;
        map->offset_ = x.offset;
        map->is_write_ = is_write;
        map->dirty_ = is_write ? (uint8_t)MS__D_LOG(x.e->flags) : 0;
        ms__rcu_read_unlock(&sys->rcu_token);
        *len = done;
        return map->host;
    }
    ms__rcu_read_unlock(&sys->rcu_token);

    bool budget;
    uint64_t l = bounce_take(as, x.l, &budget);
    void *buf = NULL;
    if (!l || l > SIZE_MAX ||
        posix_memalign(&buf, sys->target_page_size, (size_t)l) != 0) {
        if (l) {
            bounce_give(as, l, budget);
        }
        *len = 0;
        return NULL;
    }
    map->host = buf;
    map->len = l;
    map->as_ = as;
    map->gpa_ = gpa;
    map->is_write_ = is_write;
    map->bounce_ = true;
    map->budget_ = budget;
    if (!is_write) {
        /* QEMU 7.2 fills it with unspecified attributes, later QEMU (the
         * budget rule) with the caller's. */
        (void)ms_as_read(as, gpa, map->budget_ ? attrs : MS_ATTRS_UNSPECIFIED,
                         buf, l);
    }
    *len = l;
    return buf;
}

MS_EXPORT void ms_as_unmap(struct ms_map *map, uint64_t access_len)
{
    if (!map || !map->host) {
        return;
    }
    struct ms_map m = *map;
    memset(map, 0, sizeof(*map));
    if (access_len > m.len) {
        access_len = m.len;
    }
    if (m.bounce_) {
        ms_system *sys = m.as_->sys;
        if (m.is_write_ && access_len) {
            (void)ms_as_write(m.as_, m.gpa_, MS_ATTRS_UNSPECIFIED, m.host,
                              access_len);
        }
        free(m.host);
        bounce_give(m.as_, m.len, m.budget_);
        clients_notify(sys, m.budget_ ? m.as_ : NULL);
        return;
    }
    if (m.dirty_ && access_len) {
        ms__dirty_mark(m.mr_, m.dirty_, m.offset_, access_len);
    }
    __atomic_sub_fetch(&m.mr_->pins, 1, __ATOMIC_ACQ_REL);
}
