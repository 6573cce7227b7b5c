/* SPDX-License-Identifier: MIT */
/*
 * The access path, rule by rule (memory-model.md section 7 and edge cases
 * 45-59 of 10.5): buffer and fixed-size accesses over RAM, ROM, ROM
 * devices, RAM devices, MMIO, reservations and holes; piece sizes, validity,
 * the adjusted-size loop, endianness; attrs; loader writes; DMA maps and
 * bounce buffers; dirty marking; ioeventfds; the re-entrancy guard.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <urcu/urcu-bp.h>

#include "harness.h"
#include "testutil.h"

#define U MS_ATTRS_UNSPECIFIED
#define PAGE 4096u

/*
 * test_bounce_budget() asks for a bounce buffer of 2^62 bytes, which must
 * fail cleanly: under ASan and TSan, let the allocator return NULL as
 * libc's does instead of aborting.
 */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#elif __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif
#ifdef TEST_ASAN
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}
#endif
#ifdef TEST_TSAN
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "allocator_may_return_null=1";
}
#endif

/* ---- a scriptable device ------------------------------------------------ */

struct call {
    char kind; /* 'r' read, 'w' write, 'a' accepts */
    uint64_t offset;
    unsigned size;
    uint64_t value;
};

struct dev {
    struct ms_region_ops ops;
    uint8_t regs[256]; /* register bytes, read in the device's order */
    struct call calls[64];
    int n;     /* calls recorded (at most 64) */
    int total; /* calls made */
    /* Re-entrancy scripting: from inside a callback, do @inner once. */
    /* 0 none, 1 ldl of inner_gpa, 2 ms_as_write there, 3 ms_as_read
     * there, 4 stl there */
    int inner;
    ms_as *as;
    uint64_t inner_gpa;
    ms_tx_result inner_res;
    /* Then, if set, an ldl of inner_then (result in then_res). */
    uint64_t inner_then;
    ms_tx_result then_res;
    int inner_calls;
    ms_tx_result result; /* returned by *_with_attrs callbacks */
    struct ms_attrs last_attrs;
    bool reject; /* accepts() says no */
};

static void dev_init(struct dev *d)
{
    memset(d, 0, sizeof(*d));
    for (unsigned i = 0; i < sizeof(d->regs); i++) {
        d->regs[i] = (uint8_t)(0x10 + i);
    }
}

static void record(struct dev *d, char kind, uint64_t off, unsigned size,
                   uint64_t v)
{
    d->total++;
    if (d->n < 64) {
        d->calls[d->n++] = (struct call){kind, off, size, v};
    }
}

static bool is_big(const struct dev *d)
{
    return d->ops.endianness == MS_ENDIAN_BIG;
}

static uint64_t regs_get(struct dev *d, uint64_t off, unsigned size)
{
    uint64_t v = 0;
    for (unsigned k = 0; k < size; k++) {
        uint64_t b = d->regs[(off + k) & 0xff];
        v |= b << (8 * (is_big(d) ? size - 1 - k : k));
    }
    return v;
}

static void regs_set(struct dev *d, uint64_t off, unsigned size, uint64_t v)
{
    for (unsigned k = 0; k < size; k++) {
        d->regs[(off + k) & 0xff] =
            (uint8_t)(v >> (8 * (is_big(d) ? size - 1 - k : k)));
    }
}

static void do_inner(struct dev *d)
{
    if (!d->inner) {
        return;
    }
    int what = d->inner;
    d->inner = 0; /* once */
    d->inner_calls++;
    uint32_t v = 0x5a5a5a5a;
    if (what == 1) {
        (void)ms_as_ldl_le(d->as, d->inner_gpa, U, &d->inner_res);
    } else if (what == 2) {
        d->inner_res = ms_as_write(d->as, d->inner_gpa, U, &v, 4);
    } else if (what == 3) {
        d->inner_res = ms_as_read(d->as, d->inner_gpa, U, &v, 4);
    } else {
        d->inner_res = ms_as_stl_le(d->as, d->inner_gpa, v, U);
    }
    if (d->inner_then) {
        (void)ms_as_ldl_le(d->as, d->inner_then, U, &d->then_res);
    }
}

static uint64_t dev_read(void *opaque, uint64_t off, unsigned size)
{
    struct dev *d = opaque;
    uint64_t v = regs_get(d, off, size);
    record(d, 'r', off, size, v);
    do_inner(d);
    return v;
}

static void dev_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
    struct dev *d = opaque;
    record(d, 'w', off, size, v);
    regs_set(d, off, size, v);
    do_inner(d);
}

static ms_tx_result dev_read_attrs(void *opaque, uint64_t off, uint64_t *v,
                                   unsigned size, struct ms_attrs attrs)
{
    struct dev *d = opaque;
    d->last_attrs = attrs;
    *v = dev_read(opaque, off, size);
    return d->result;
}

static ms_tx_result dev_write_attrs(void *opaque, uint64_t off, uint64_t v,
                                    unsigned size, struct ms_attrs attrs)
{
    struct dev *d = opaque;
    d->last_attrs = attrs;
    dev_write(opaque, off, v, size);
    return d->result;
}

static bool dev_accepts(void *opaque, uint64_t off, unsigned size,
                        bool is_write, struct ms_attrs attrs)
{
    struct dev *d = opaque;
    (void)attrs;
    record(d, 'a', off, size, is_write);
    return !d->reject;
}

static void dev_plain(struct dev *d)
{
    dev_init(d);
    d->ops.read = dev_read;
    d->ops.write = dev_write;
}

/* dev_plain() taking accesses of up to 8 bytes, each one callback. */
static void dev_wide(struct dev *d)
{
    dev_plain(d);
    d->ops.impl.max_access_size = 8;
    d->ops.valid.max_access_size = 8;
}

/* ---- fixtures -------------------------------------------------------------
 */

static ms_system *sys;
static ms_region *root;
static ms_as *as;

static void setup_cfg(const struct ms_system_config *cfg)
{
    REQUIRE(ms_system_new(cfg, &sys) == 0);
    ms_system_set_log(sys, tu_log, NULL);
    root = tu_container(sys, "system", MS_SIZE_FULL);
    REQUIRE(ms_as_new(sys, root, "memory", &as) == 0);
    tu_log_count = 0;
}

static void setup(void)
{
    setup_cfg(NULL);
}

static void teardown(void)
{
    ms_region_unref(root);
    ms_system_free(sys);
    sys = NULL;
}

static ms_region *add_region(struct ms_region_config cfg, uint64_t at,
                             int32_t prio)
{
    ms_region *r;
    REQUIRE(ms_region_new(sys, &cfg, &r) == 0);
    REQUIRE(ms_region_add_prio(root, at, r, prio) == 0);
    ms_region_unref(r);
    return r;
}

static ms_region *add_ram(const char *name, uint64_t at, uint64_t size)
{
    return add_region((struct ms_region_config){.kind = MS_REGION_RAM,
                                                .name = name,
                                                .size = size},
                      at, 0);
}

static ms_region *add_io(const char *name, uint64_t at, uint64_t size,
                         struct dev *d)
{
    return add_region((struct ms_region_config){.kind = MS_REGION_IO,
                                                .name = name,
                                                .size = size,
                                                .ops = &d->ops,
                                                .opaque = d},
                      at, 0);
}

static ms_region *add_romdev(const char *name, uint64_t at, uint64_t size,
                             struct dev *d)
{
    return add_region((struct ms_region_config){.kind = MS_REGION_ROM_DEVICE,
                                                .name = name,
                                                .size = size,
                                                .ops = &d->ops,
                                                .opaque = d},
                      at, 0);
}

static void fill_pattern(ms_region *r, uint8_t seed)
{
    uint8_t *h = ms_region_host(r);
    for (uint64_t i = 0; i < ms_region_size(r); i++) {
        h[i] = (uint8_t)(seed + i);
    }
}

/* ---- RAM ------------------------------------------------------------------
 */

static void test_ram_basic(void)
{
    setup();
    ms_region *a = add_ram("a", 0x1000, 0x1000);
    ms_region *b = add_ram("b", 0x2000, 0x1000);
    fill_pattern(a, 0);
    fill_pattern(b, 0x80);
    uint8_t *ha = ms_region_host(a), *hb = ms_region_host(b);

    uint8_t buf[64];
    CHECK_EQ(ms_as_read(as, 0x1008, U, buf, 8), MS_TX_OK);
    CHECK(memcmp(buf, ha + 8, 8) == 0);
    /* Straddling two RAM regions: two copies. */
    CHECK_EQ(ms_as_read(as, 0x1ff0, U, buf, 32), MS_TX_OK);
    CHECK(memcmp(buf, ha + 0xff0, 16) == 0);
    CHECK(memcmp(buf + 16, hb, 16) == 0);
    memset(buf, 0xc3, sizeof(buf));
    CHECK_EQ(ms_as_write(as, 0x1ffc, U, buf, 8), MS_TX_OK);
    CHECK_EQ(ha[0xffc], 0xc3);
    CHECK_EQ(hb[3], 0xc3);
    CHECK_EQ(hb[4], 0x84);
    CHECK_EQ(ms_as_read(as, 0x1000, U, buf, 0), MS_TX_OK);
    CHECK_EQ(ms_as_rw(as, 0x1000, U, buf, 4, false), MS_TX_OK);
    CHECK(memcmp(buf, ha, 4) == 0);

    /* Typed loads and stores, both orders, unaligned. */
    ha[0x10] = 0x11, ha[0x11] = 0x22, ha[0x12] = 0x33, ha[0x13] = 0x44;
    ms_tx_result r = 99;
    CHECK_EQ(ms_as_ldl_le(as, 0x1010, U, &r), 0x44332211);
    CHECK_EQ(r, MS_TX_OK);
    CHECK_EQ(ms_as_ldl_be(as, 0x1010, U, NULL), 0x11223344);
    CHECK_EQ(ms_as_ldl(as, 0x1010, U, NULL), 0x44332211); /* LE target */
    CHECK_EQ(ms_as_lduw_be(as, 0x1011, U, NULL), 0x2233);
    CHECK_EQ(ms_as_lduw_le(as, 0x1011, U, NULL), 0x3322);
    CHECK_EQ(ms_as_ldub(as, 0x1013, U, NULL), 0x44);
    CHECK_EQ(ms_as_stq_be(as, 0x1021, 0x0102030405060708ull, U), MS_TX_OK);
    CHECK_EQ(ha[0x21], 1);
    CHECK_EQ(ha[0x28], 8);
    CHECK_EQ(ms_as_ldq_le(as, 0x1021, U, NULL), 0x0807060504030201ull);
    CHECK_EQ(ms_as_stw_le(as, 0x1030, 0xbeef, U), MS_TX_OK);
    CHECK_EQ(ms_as_stb(as, 0x1032, 0x7f, U), MS_TX_OK);
    CHECK_EQ(ms_as_stl_be(as, 0x1034, 0xcafef00d, U), MS_TX_OK);
    CHECK_EQ(ms_as_ldq_be(as, 0x1030, U, NULL), 0xefbe7f33cafef00dull);

    /* ms_as_fill: 512-byte chunks over two regions, then into a hole. */
    CHECK_EQ(ms_as_fill(as, 0x1f00, U, 0x5e, 0x300), MS_TX_OK);
    CHECK_EQ(ha[0xf00], 0x5e);
    CHECK_EQ(hb[0x1ff], 0x5e);
    CHECK_EQ(hb[0x200], (uint8_t)(0x80 + 0x200));
    CHECK_EQ(ms_as_fill(as, 0x2ff0, U, 0, 0x20), MS_TX_DECODE_ERROR);
    CHECK_EQ(hb[0xfff], 0);

    /* Caller errors never crash. */
    CHECK_EQ(ms_as_read(NULL, 0, U, buf, 4), MS_TX_DECODE_ERROR);
    CHECK_EQ(ms_as_read(as, 0, U, NULL, 4), MS_TX_DECODE_ERROR);
    CHECK_EQ(ms_as_ldl_le(NULL, 0, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    CHECK_EQ(ms_as_stl_le(NULL, 0, 0, U), MS_TX_DECODE_ERROR);
    CHECK(!ms_as_access_valid(NULL, 0, 1, false, U));
    teardown();
}

/*
 * Zero-length buffer accesses touch nothing and succeed, wherever they
 * are: RAM and a device whose pages the TLB holds (a zero length fails the
 * fast paths' page test), a page's first byte, a hole; a NULL buffer is
 * fine with no bytes, and an error with some.
 */
static void test_zero_length(void)
{
    setup();
    ms_region *a = add_ram("a", 0x1000, 0x1000);
    fill_pattern(a, 3);
    struct dev d;
    dev_wide(&d);
    add_io("dev", 0x4000, 0x1000, &d);
    uint8_t buf[8] = {0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa};
    /* Warm the TLB with both pages. */
    CHECK_EQ(ms_as_read(as, 0x1008, U, buf, 8), MS_TX_OK);
    CHECK_EQ(ms_as_read(as, 0x4008, U, buf, 8), MS_TX_OK);
    CHECK_EQ(ms_as_write(as, 0x1008, U, buf, 8), MS_TX_OK);
    int calls = d.total;
    memset(buf, 0xaa, sizeof(buf));
    static const uint64_t at[] = {0x1000, 0x1008, 0x1fff, 0x4000,
                                  0x4008, 0x4fff, 0x8000, UINT64_MAX};
    for (unsigned i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        CHECK_EQ(ms_as_read(as, at[i], U, buf, 0), MS_TX_OK);
        CHECK_EQ(ms_as_write(as, at[i], U, buf, 0), MS_TX_OK);
        CHECK_EQ(ms_as_rw(as, at[i], U, buf, 0, true), MS_TX_OK);
        CHECK_EQ(ms_as_read(as, at[i], U, NULL, 0), MS_TX_OK);
        CHECK_EQ(ms_as_write(as, at[i], U, NULL, 0), MS_TX_OK);
        CHECK_EQ(ms_as_write(as, at[i], U, NULL, 1), MS_TX_DECODE_ERROR);
        CHECK_EQ(ms_as_fill(as, at[i], U, 0x55, 0), MS_TX_OK);
        CHECK(!urcu_bp_read_ongoing());
    }
    CHECK_EQ(d.total, calls);
    for (unsigned i = 0; i < sizeof(buf); i++) {
        CHECK_EQ(buf[i], 0xaa);
    }
    uint8_t *h = ms_region_host(a);
    CHECK_EQ(h[0], 3);
    CHECK_EQ(h[0xfff], (uint8_t)(3 + 0xfff));
    /* Each call closed its read-side section. */
    CHECK(!urcu_bp_read_ongoing());
    teardown();
}

/* Item 59 and the translation clamp: RAM ranges end where they end. */
static void test_ram_range_end(void)
{
    setup();
    ms_region *a = add_ram("a", 0x1000, 0x100);
    fill_pattern(a, 1);
    ms_tx_result r;
    tu_log_count = 0;
    CHECK_EQ(ms_as_ldl_le(as, 0x10fe, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    CHECK_EQ(tu_log_count, 1);
    CHECK_EQ(ms_as_stq_le(as, 0x10fc, 0, U), MS_TX_DECODE_ERROR);
    CHECK_EQ(((uint8_t *)ms_region_host(a))[0xfc], (uint8_t)(1 + 0xfc));
    /* The buffer path splits instead: 2 RAM bytes, then the hole. */
    uint8_t buf[4] = {9, 9, 9, 9};
    CHECK_EQ(ms_as_read(as, 0x10fe, U, buf, 4), MS_TX_DECODE_ERROR);
    CHECK_EQ(buf[0], (uint8_t)(1 + 0xfe));
    CHECK_EQ(buf[1], (uint8_t)(1 + 0xff));
    CHECK_EQ(buf[2], 0);
    CHECK_EQ(buf[3], 0);
    teardown();
}

/* Items 45 and the wrap at 2^64: holes read 0 in pieces of at most 4. */
static void test_holes(void)
{
    setup();
    ms_region *a = add_ram("a", 0, 0x100);
    fill_pattern(a, 0x40);
    uint8_t buf[8];
    memset(buf, 0xaa, sizeof(buf));
    tu_log_count = 0;
    CHECK_EQ(ms_as_read(as, 0x10000, U, buf, 8), MS_TX_DECODE_ERROR);
    CHECK_EQ(tu_log_count, 2); /* two 4-byte pieces, each refused */
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(buf[i], 0);
    }
    ms_tx_result r;
    tu_log_count = 0;
    CHECK_EQ(ms_as_ldq_le(as, 0x10000, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    CHECK_EQ(tu_log_count, 1); /* one 8-byte dispatch */
    CHECK(strstr(tu_last_log, "unassigned") != NULL);
    /* Unaligned hole read: pieces 1, 2, 4, 1. */
    tu_log_count = 0;
    CHECK_EQ(ms_as_read(as, 0x10001, U, buf, 8), MS_TX_DECODE_ERROR);
    CHECK_EQ(tu_log_count, 4);
    CHECK_EQ(ms_as_write(as, 0x10000, U, buf, 8), MS_TX_DECODE_ERROR);
    /* Wrapping past 2^64 - 1 continues at 0. */
    memset(buf, 0xaa, sizeof(buf));
    CHECK_EQ(ms_as_read(as, UINT64_MAX - 3, U, buf, 8), MS_TX_DECODE_ERROR);
    CHECK_EQ(buf[3], 0);
    CHECK_EQ(buf[4], 0x40);
    CHECK_EQ(buf[7], 0x43);
    /* A hole piece runs past the start of the next region (7.4.1). */
    ms_region *b = add_ram("b", 0x20002, 0x10);
    fill_pattern(b, 0x70);
    memset(buf, 0xaa, sizeof(buf));
    CHECK_EQ(ms_as_read(as, 0x20000, U, buf, 8), MS_TX_DECODE_ERROR);
    CHECK_EQ(buf[0], 0);
    CHECK_EQ(buf[3], 0); /* b's first bytes were swallowed by the piece */
    CHECK_EQ(buf[4], 0x72);
    CHECK(!ms_as_access_valid(as, 0x10000, 1, false, U));
    teardown();
}

/* Reservations reject like holes but hide what is below. */
static void test_reservation(void)
{
    setup();
    ms_region *a = add_ram("a", 0, 0x1000);
    fill_pattern(a, 0x80);
    add_region((struct ms_region_config){.kind = MS_REGION_RESERVATION,
                                         .name = "resv",
                                         .size = 0x100},
               0x100, 1);
    uint8_t buf[4];
    ms_tx_result r;
    CHECK_EQ(ms_as_ldl_le(as, 0x100, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    /* A 2-byte piece (offset 0xfe is 2-aligned), then RAM again. */
    CHECK_EQ(ms_as_read(as, 0x1fe, U, buf, 4), MS_TX_DECODE_ERROR);
    CHECK_EQ(buf[0], 0);
    CHECK_EQ(buf[1], 0);
    CHECK_EQ(buf[2], 0x80);
    CHECK_EQ(buf[3], 0x81);
    CHECK_EQ(ms_as_ldub(as, 0x200, U, &r), 0x80);
    CHECK_EQ(r, MS_TX_OK);
    CHECK_EQ(ms_as_ldub(as, 0xff, U, &r), 0x7f);
    teardown();
}

/* ---- MMIO -----------------------------------------------------------------
 */

/* Item 46: an I/O root with callback-less ops: all ones, OK. */
static void test_open_bus(void)
{
    setup();
    static const struct ms_region_ops none = {0};
    add_region((struct ms_region_config){.kind = MS_REGION_IO,
                                         .name = "io-unassigned",
                                         .size = 0x10000,
                                         .ops = &none},
               0x100000, -1);
    ms_tx_result r = 99;
    CHECK_EQ(ms_as_ldub(as, 0x100080, U, &r), 0xff);
    CHECK_EQ(r, MS_TX_OK);
    CHECK_EQ(ms_as_lduw_le(as, 0x100080, U, NULL), 0xffff);
    CHECK_EQ(ms_as_ldl_le(as, 0x100080, U, NULL), 0xffffffffu);
    CHECK_EQ(ms_as_ldq_le(as, 0x100080, U, &r), UINT64_MAX);
    CHECK_EQ(r, MS_TX_OK);
    CHECK_EQ(ms_as_stl_le(as, 0x100080, 1, U), MS_TX_OK);
    uint8_t buf[3];
    CHECK_EQ(ms_as_read(as, 0x100081, U, buf, 3), MS_TX_OK);
    CHECK_EQ(buf[0] & buf[1] & buf[2], 0xff);
    teardown();
}

/* Item 47: the region decoding the first byte takes the whole access. */
static void test_wide_access(void)
{
    setup();
    struct dev idx, reset, spk;
    dev_plain(&idx);
    dev_plain(&reset);
    dev_plain(&spk);
    add_io("conf-idx", 0xcf8, 4, &idx);
    add_region((struct ms_region_config){.kind = MS_REGION_IO,
                                         .name = "reset",
                                         .size = 1,
                                         .ops = &reset.ops,
                                         .opaque = &reset},
               0xcf9, 1);
    CHECK_EQ(ms_as_ldl_le(as, 0xcf8, U, NULL), 0x13121110);
    CHECK_EQ(idx.n, 1);
    CHECK_EQ(idx.calls[0].size, 4);
    CHECK_EQ(reset.n, 0);
    uint32_t v = 0x80000000;
    CHECK_EQ(ms_as_write(as, 0xcf8, U, &v, 4), MS_TX_OK);
    CHECK_EQ(idx.calls[1].kind, 'w');
    CHECK_EQ(idx.calls[1].value, 0x80000000);
    CHECK_EQ(reset.n, 0);

    /* pcspk: 1-byte region, impl.max 1: four 1-byte reads past its end. */
    spk.ops.impl.max_access_size = 1;
    spk.regs[0] = 0x30, spk.regs[1] = 0x20, spk.regs[2] = 0x30;
    spk.regs[3] = 0x20;
    add_io("pcspk", 0x61, 1, &spk);
    uint32_t got = 0;
    CHECK_EQ(ms_as_read(as, 0x61, U, &got, 4), MS_TX_OK);
    CHECK_EQ(got, 0x20302030);
    CHECK_EQ(spk.n, 4);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(spk.calls[i].offset, i);
        CHECK_EQ(spk.calls[i].size, 1);
    }
    teardown();
}

/* Item 48: HPET-like valid.min = 4; unaligned pieces are all refused. */
static void test_hpet_pieces(void)
{
    setup();
    struct dev h;
    dev_plain(&h);
    h.ops.valid.min_access_size = 4;
    h.ops.valid.max_access_size = 8;
    h.ops.impl.min_access_size = 4;
    h.ops.impl.max_access_size = 8;
    add_io("hpet", 0xfed00000, 0x400, &h);
    uint8_t buf[4] = {1, 1, 1, 1};
    tu_log_count = 0;
    CHECK_EQ(ms_as_read(as, 0xfed00001, U, buf, 4), MS_TX_DECODE_ERROR);
    CHECK_EQ(tu_log_count, 3); /* pieces 1, 2, 1 */
    CHECK_EQ(h.n, 0);
    CHECK_EQ(buf[0] | buf[1] | buf[2] | buf[3], 0);
    ms_tx_result r;
    CHECK_EQ(ms_as_lduw_le(as, 0xfed00000, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    CHECK_EQ(ms_as_ldl_le(as, 0xfed00004, U, &r), 0x17161514);
    CHECK_EQ(r, MS_TX_OK);
    CHECK(!ms_as_access_valid(as, 0xfed00000, 2, false, U));
    CHECK(ms_as_access_valid(as, 0xfed00000, 8, false, U));
    CHECK(ms_as_access_valid(as, 0xfed00000, 16, true, U));

    /* The same split with a device that takes any size: 3 callbacks. */
    struct dev d;
    dev_plain(&d);
    add_io("any", 0x10000, 0x100, &d);
    uint32_t v = 0;
    CHECK_EQ(ms_as_read(as, 0x10001, U, &v, 4), MS_TX_OK);
    CHECK_EQ(v, 0x14131211);
    CHECK_EQ(d.n, 3);
    CHECK_EQ(d.calls[0].offset, 1);
    CHECK_EQ(d.calls[0].size, 1);
    CHECK_EQ(d.calls[1].offset, 2);
    CHECK_EQ(d.calls[1].size, 2);
    CHECK_EQ(d.calls[2].offset, 4);
    CHECK_EQ(d.calls[2].size, 1);
    teardown();
}

/* Item 49 and the wide single access of 7.4.4, both endiannesses. */
static void test_impl_min(void)
{
    setup();
    struct dev le, be;
    dev_plain(&le);
    dev_plain(&be);
    le.ops.impl.min_access_size = 4;
    be.ops.impl.min_access_size = 4;
    be.ops.endianness = MS_ENDIAN_BIG;
    add_io("le", 0x1000, 0x100, &le);
    add_io("be", 0x2000, 0x100, &be);

    CHECK_EQ(ms_as_ldub(as, 0x1001, U, NULL), 0x11);
    CHECK_EQ(le.n, 1);
    CHECK_EQ(le.calls[0].offset, 1); /* not rounded down */
    CHECK_EQ(le.calls[0].size, 4);
    uint8_t b = 0;
    CHECK_EQ(ms_as_read(as, 0x1001, U, &b, 1), MS_TX_OK);
    CHECK_EQ(b, 0x11);
    CHECK_EQ(ms_as_ldub(as, 0x2001, U, NULL), 0x11); /* lowest address */
    CHECK_EQ(ms_as_lduw_be(as, 0x2002, U, NULL), 0x1213);
    CHECK_EQ(be.calls[1].size, 4);

    le.n = be.n = 0;
    CHECK_EQ(ms_as_stb(as, 0x1001, 0xab, U), MS_TX_OK);
    CHECK_EQ(le.calls[0].size, 4);
    CHECK_EQ(le.calls[0].value, 0xab);
    CHECK_EQ(ms_as_stb(as, 0x2001, 0xab, U), MS_TX_OK);
    CHECK_EQ(be.calls[0].size, 4);
    CHECK_EQ(be.calls[0].value, 0xab000000u);
    teardown();
}

/* Item 50: accepts() vetoes before the device is called. */
static void test_accepts(void)
{
    setup();
    struct dev d;
    dev_plain(&d);
    d.ops.valid.accepts = dev_accepts;
    add_io("picky", 0x1000, 0x100, &d);
    d.reject = true;
    ms_tx_result r;
    tu_log_count = 0;
    CHECK_EQ(ms_as_ldl_le(as, 0x1000, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    CHECK_EQ(d.n, 1);
    CHECK_EQ(d.calls[0].kind, 'a');
    CHECK_EQ(tu_log_count, 1);
    CHECK(strstr(tu_last_log, "picky") != NULL);
    CHECK_EQ(ms_as_stl_le(as, 0x1000, 5, U), MS_TX_DECODE_ERROR);
    CHECK_EQ(d.calls[1].kind, 'a');
    CHECK_EQ(d.calls[1].value, 1); /* is_write */
    CHECK(!ms_as_access_valid(as, 0x1000, 4, false, U));
    d.reject = false;
    d.n = 0;
    CHECK_EQ(ms_as_ldl_le(as, 0x1000, U, &r), 0x13121110);
    CHECK_EQ(r, MS_TX_OK);
    CHECK_EQ(d.n, 2);
    CHECK_EQ(d.calls[1].kind, 'r');
    teardown();
}

/* Item 51 and 7.5: bytes are serialised in the device's order. */
static void test_endianness(void)
{
    setup();
    struct dev be, le;
    dev_plain(&be);
    dev_plain(&le);
    be.ops.endianness = MS_ENDIAN_BIG;
    be.regs[0] = 0x11, be.regs[1] = 0x22, be.regs[2] = 0x33;
    be.regs[3] = 0x44;
    memcpy(le.regs, be.regs, 4);
    add_io("be", 0x1000, 0x100, &be);
    add_io("le", 0x2000, 0x100, &le);
    uint8_t buf[4];
    CHECK_EQ(ms_as_read(as, 0x1000, U, buf, 4), MS_TX_OK);
    CHECK_EQ(be.calls[0].value, 0x11223344);
    CHECK(buf[0] == 0x11 && buf[1] == 0x22 && buf[2] == 0x33 && buf[3] == 0x44);
    CHECK_EQ(ms_as_ldl_be(as, 0x1000, U, NULL), 0x11223344);
    CHECK_EQ(ms_as_ldl_le(as, 0x1000, U, NULL), 0x44332211);
    CHECK_EQ(ms_as_read(as, 0x2000, U, buf, 4), MS_TX_OK);
    CHECK_EQ(le.calls[0].value, 0x44332211);
    CHECK(buf[0] == 0x11 && buf[3] == 0x44);
    CHECK_EQ(ms_as_ldl_le(as, 0x2000, U, NULL), 0x44332211);

    /* Writes: buffer bytes and typed stores land the same way. */
    be.n = le.n = 0;
    uint8_t w[4] = {0xaa, 0xbb, 0xcc, 0xdd};
    CHECK_EQ(ms_as_write(as, 0x1000, U, w, 4), MS_TX_OK);
    CHECK_EQ(be.calls[0].value, 0xaabbccdd);
    CHECK_EQ(ms_as_write(as, 0x2000, U, w, 4), MS_TX_OK);
    CHECK_EQ(le.calls[0].value, 0xddccbbaa);
    CHECK_EQ(ms_as_stl_le(as, 0x1000, 0x11223344, U), MS_TX_OK);
    CHECK_EQ(be.calls[1].value, 0x44332211);
    CHECK_EQ(ms_as_stw_be(as, 0x1000, 0x1234, U), MS_TX_OK);
    CHECK_EQ(be.calls[2].value, 0x1234);
    CHECK_EQ(ms_as_stb(as, 0x1000, 0x99, U), MS_TX_OK);
    CHECK_EQ(be.calls[3].value, 0x99); /* one byte never swaps */

    /* 8 bytes through a big-endian device of 4-byte registers. */
    be.n = 0;
    for (int i = 0; i < 8; i++) {
        be.regs[i] = (uint8_t)(i + 1);
    }
    CHECK_EQ(ms_as_ldq_be(as, 0x1000, U, NULL), 0x0102030405060708ull);
    CHECK_EQ(be.n, 2);
    CHECK_EQ(be.calls[0].offset, 0);
    CHECK_EQ(be.calls[1].offset, 4);
    CHECK_EQ(ms_as_stq_be(as, 0x1000, 0x1122334455667788ull, U), MS_TX_OK);
    CHECK_EQ(be.calls[2].value, 0x11223344);
    CHECK_EQ(be.calls[3].value, 0x55667788);
    teardown();

    /* A big-endian target: native devices and the unsuffixed helpers. */
    struct ms_system_config cfg = {.big_endian = true};
    setup_cfg(&cfg);
    struct dev nat;
    dev_plain(&nat);
    nat.ops.endianness = MS_ENDIAN_NATIVE;
    nat.regs[0] = 0x11, nat.regs[1] = 0x22, nat.regs[2] = 0x33;
    nat.regs[3] = 0x44;
    add_io("native", 0x1000, 0x100, &nat);
    CHECK_EQ(ms_as_read(as, 0x1000, U, buf, 4), MS_TX_OK);
    /* The device thinks little-endian but the bus says big. */
    CHECK_EQ(nat.calls[0].value, 0x44332211);
    CHECK(buf[0] == 0x44 && buf[3] == 0x11);
    CHECK_EQ(ms_as_ldl(as, 0x1000, U, NULL), 0x44332211);
    ms_region *ram = add_ram("ram", 0, 0x100);
    uint8_t *h = ms_region_host(ram);
    h[0] = 0x11, h[1] = 0x22, h[2] = 0x33, h[3] = 0x44;
    CHECK_EQ(ms_as_ldl(as, 0, U, NULL), 0x11223344);
    CHECK_EQ(ms_as_lduw(as, 0, U, NULL), 0x1122);
    CHECK_EQ(ms_as_stq(as, 8, 0x0102030405060708ull, U), MS_TX_OK);
    CHECK_EQ(h[8], 1);
    CHECK_EQ(ms_as_ldq(as, 8, U, NULL), 0x0102030405060708ull);
    CHECK_EQ(ms_as_stw(as, 16, 0xabcd, U), MS_TX_OK);
    CHECK_EQ(h[16], 0xab);
    CHECK_EQ(ms_as_stl(as, 20, 0x01020304, U), MS_TX_OK);
    CHECK_EQ(h[20], 1);
    teardown();
}

/* 8-byte accesses to regions that accept only 1, 2 or 4 bytes. */
static void test_small_registers(void)
{
    static const unsigned sizes[] = {1, 2, 4};
    for (unsigned k = 0; k < 3; k++) {
        setup();
        struct dev d;
        dev_plain(&d);
        d.ops.valid.max_access_size = sizes[k];
        d.ops.impl.max_access_size = sizes[k];
        add_io("small", 0x1000, 0x100, &d);
        uint64_t v = 0;
        CHECK_EQ(ms_as_read(as, 0x1000, U, &v, 8), MS_TX_OK);
        CHECK_EQ(v, 0x1716151413121110ull);
        CHECK_EQ(d.n, (int)(8 / sizes[k]));
        CHECK_EQ(d.calls[0].size, sizes[k]);
        /* A fixed 8-byte access is not split: refused. */
        ms_tx_result r;
        CHECK_EQ(ms_as_ldq_le(as, 0x1000, U, &r), 0);
        CHECK_EQ(r, MS_TX_DECODE_ERROR);
        d.n = 0;
        v = 0x0123456789abcdefull;
        CHECK_EQ(ms_as_write(as, 0x1000, U, &v, 8), MS_TX_OK);
        CHECK_EQ(d.n, (int)(8 / sizes[k]));
        CHECK_EQ(regs_get(&d, 0, 8), 0x0123456789abcdefull);
        teardown();
    }

    /* valid.max 8, impl.max 4 (the default): one piece, two callbacks. */
    setup();
    struct dev d;
    dev_plain(&d);
    d.ops.valid.max_access_size = 8;
    add_io("wide", 0x1000, 0x100, &d);
    ms_tx_result r;
    CHECK_EQ(ms_as_ldq_le(as, 0x1000, U, &r), 0x1716151413121110ull);
    CHECK_EQ(r, MS_TX_OK);
    CHECK_EQ(d.n, 2);
    /* impl.max 1 below valid.max 4: two pieces of four callbacks. */
    struct dev e;
    dev_plain(&e);
    e.ops.valid.max_access_size = 4;
    e.ops.impl.max_access_size = 1;
    add_io("bytes", 0x2000, 0x100, &e);
    uint64_t v = 0;
    CHECK_EQ(ms_as_read(as, 0x2000, U, &v, 8), MS_TX_OK);
    CHECK_EQ(v, 0x1716151413121110ull);
    CHECK_EQ(e.n, 8);
    /* Oversized size fields are treated as 8. */
    struct dev f;
    dev_plain(&f);
    f.ops.valid.max_access_size = 64;
    f.ops.impl.max_access_size = 64;
    add_io("huge", 0x3000, 0x100, &f);
    uint8_t buf[16];
    CHECK_EQ(ms_as_read(as, 0x3000, U, buf, 16), MS_TX_OK);
    CHECK_EQ(f.n, 2);
    CHECK_EQ(f.calls[0].size, 8);
    teardown();
}

/* Unaligned accesses with and without support. */
static void test_unaligned(void)
{
    setup();
    struct dev full, guest_only, none;
    dev_plain(&full);
    dev_plain(&guest_only);
    dev_plain(&none);
    full.ops.valid.unaligned = full.ops.impl.unaligned = true;
    guest_only.ops.valid.unaligned = true;
    add_io("full", 0x1000, 0x100, &full);
    add_io("guest-only", 0x2000, 0x100, &guest_only);
    add_io("none", 0x3000, 0x100, &none);

    uint32_t v = 0;
    CHECK_EQ(ms_as_read(as, 0x1001, U, &v, 4), MS_TX_OK);
    CHECK_EQ(v, 0x14131211);
    CHECK_EQ(full.n, 1);
    CHECK_EQ(full.calls[0].offset, 1);
    CHECK_EQ(full.calls[0].size, 4);

    /* The guest may, the device cannot: the buffer loop splits 1, 2, 1. */
    CHECK_EQ(ms_as_read(as, 0x2001, U, &v, 4), MS_TX_OK);
    CHECK_EQ(v, 0x14131211);
    CHECK_EQ(guest_only.n, 3);
    /* ... but a fixed-size access is one callback at the odd offset. */
    guest_only.n = 0;
    CHECK_EQ(ms_as_ldl_le(as, 0x2001, U, NULL), 0x14131211);
    CHECK_EQ(guest_only.n, 1);
    CHECK_EQ(guest_only.calls[0].offset, 1);

    /* Nobody may: the fixed-size access is refused. */
    ms_tx_result r;
    CHECK_EQ(ms_as_ldl_le(as, 0x3001, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    CHECK_EQ(none.n, 0);
    CHECK(strstr(tu_last_log, "unaligned") != NULL);
    /* The buffer loop still works, piece by aligned piece. */
    CHECK_EQ(ms_as_read(as, 0x3001, U, &v, 4), MS_TX_OK);
    CHECK_EQ(none.n, 3);
    teardown();
}

/* Results of *_with_attrs callbacks are OR-ed; attrs are passed through. */
static void test_attrs_callbacks(void)
{
    setup();
    struct dev d;
    dev_init(&d);
    d.ops.read_with_attrs = dev_read_attrs;
    d.ops.write_with_attrs = dev_write_attrs;
    d.ops.impl.max_access_size = 1;
    add_io("attrs", 0x1000, 0x100, &d);
    d.result = MS_TX_ERROR;
    struct ms_attrs a = {.secure = 1, .requester_id = 0x1234};
    ms_tx_result r;
    CHECK_EQ(ms_as_lduw_le(as, 0x1000, a, &r), 0x1110);
    CHECK_EQ(r, MS_TX_ERROR);
    CHECK_EQ(d.n, 2);
    CHECK_EQ(d.last_attrs.requester_id, 0x1234);
    CHECK_EQ(d.last_attrs.secure, 1);
    CHECK_EQ(ms_as_stw_le(as, 0x1000, 0, a), MS_TX_ERROR);
    d.result = MS_TX_OK;
    CHECK_EQ(ms_as_stw_le(as, 0x1000, 0, a), MS_TX_OK);
    teardown();
}

/* Item 52: RAM, then MMIO, then a hole, in one buffer access. */
static void test_mixed(void)
{
    setup();
    ms_region *ram = add_ram("ram", 0x1000, 0x10);
    fill_pattern(ram, 0xa0);
    struct dev d;
    dev_wide(&d);
    add_io("mmio", 0x1010, 0x8, &d);
    uint8_t buf[0x20];
    memset(buf, 0xee, sizeof(buf));
    CHECK_EQ(ms_as_read(as, 0x1008, U, buf, 0x18), MS_TX_DECODE_ERROR);
    CHECK_EQ(buf[0], 0xa8);
    CHECK_EQ(buf[7], 0xaf);
    CHECK_EQ(buf[8], 0x10); /* MMIO register bytes */
    CHECK_EQ(buf[15], 0x17);
    CHECK_EQ(buf[16], 0); /* hole */
    CHECK_EQ(buf[0x17], 0);
    CHECK_EQ(buf[0x18], 0xee);
    CHECK_EQ(d.n, 1);
    CHECK_EQ(d.calls[0].size, 8);
    /* The MMIO piece was 8 bytes wide; a longer one stops at 8. */
    d.n = 0;
    uint8_t w[0x18];
    memset(w, 0x3c, sizeof(w));
    CHECK_EQ(ms_as_write(as, 0x1008, U, w, 0x18), MS_TX_DECODE_ERROR);
    CHECK_EQ(((uint8_t *)ms_region_host(ram))[8], 0x3c);
    CHECK_EQ(d.n, 1);
    CHECK_EQ(d.calls[0].value, 0x3c3c3c3c3c3c3c3cull);
    teardown();
}

/* Item 53: attrs.memory only lets RAM through. */
static void test_attrs_memory(void)
{
    setup();
    ms_region *ram = add_ram("ram", 0x1000, 0x10);
    fill_pattern(ram, 0xa0);
    struct dev d;
    dev_plain(&d);
    add_io("mmio", 0x1010, 0x10, &d);
    add_ram("ram2", 0x1020, 0x10);
    struct ms_attrs mem = {.memory = 1};
    uint8_t buf[0x30];
    memset(buf, 0xee, sizeof(buf));
    tu_log_count = 0;
    CHECK_EQ(ms_as_read(as, 0x1010, mem, buf, 4), MS_TX_ACCESS_ERROR);
    CHECK_EQ(buf[0], 0xee);
    CHECK_EQ(d.n, 0);
    CHECK_EQ(tu_log_count, 1);
    CHECK_EQ(ms_as_read(as, 0x2000, mem, buf, 4), MS_TX_ACCESS_ERROR);
    /* RAM first: copied; then MMIO: the rest is skipped (not clamped). */
    CHECK_EQ(ms_as_read(as, 0x1008, mem, buf, 0x20), MS_TX_ACCESS_ERROR);
    CHECK_EQ(buf[0], 0xa8);
    CHECK_EQ(buf[7], 0xaf);
    CHECK_EQ(buf[8], 0xee);
    CHECK_EQ(buf[0x1f], 0xee);
    CHECK_EQ(d.n, 0);
    CHECK_EQ(ms_as_write(as, 0x1008, mem, buf, 0x20), MS_TX_ACCESS_ERROR);
    CHECK_EQ(d.n, 0);
    CHECK_EQ(ms_as_read(as, 0x1000, mem, buf, 0x10), MS_TX_OK);
    /* Fixed-size helpers do not look at attrs.memory (QEMU's rule). */
    ms_tx_result r;
    CHECK_EQ(ms_as_ldub(as, 0x1010, mem, &r), 0x10);
    CHECK_EQ(r, MS_TX_OK);
    teardown();
}

/* Item 54 and 7.8: ROM ignores writes, loader writes go in. */
static void test_rom(void)
{
    setup();
    ms_region *rom = add_region((struct ms_region_config){.kind = MS_REGION_ROM,
                                                          .name = "bios",
                                                          .size = 0x1000},
                                0xf0000, 0);
    fill_pattern(rom, 0);
    uint8_t *h = ms_region_host(rom);
    uint8_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    tu_log_count = 0;
    CHECK_EQ(ms_as_write(as, 0xf0010, U, buf, 8), MS_TX_DECODE_ERROR);
    CHECK_EQ(tu_log_count, 2); /* unassigned ops: 4-byte pieces */
    CHECK_EQ(h[0x10], 0x10);
    CHECK_EQ(ms_as_stl_le(as, 0xf0010, 0, U), MS_TX_DECODE_ERROR);
    CHECK_EQ(h[0x10], 0x10);
    CHECK_EQ(ms_as_ldub(as, 0xf0010, U, NULL), 0x10);
    CHECK(ms_as_access_valid(as, 0xf0000, 0x1000, false, U));
    CHECK(!ms_as_access_valid(as, 0xf0000, 4, true, U));
    CHECK_EQ(ms_as_write_rom(as, 0xf0ffc, U, buf, 8), MS_TX_OK);
    CHECK_EQ(h[0xffc], 1);
    CHECK_EQ(h[0xfff], 4);
    /* A ROM made writable behaves as RAM. */
    CHECK_OK(ms_region_set_readonly(rom, false));
    CHECK_EQ(ms_as_write(as, 0xf0010, U, buf, 8), MS_TX_OK);
    CHECK_EQ(h[0x10], 1);
    teardown();
}

/* Item 55: ROM devices in and out of ROMD mode. */
static void test_rom_device(void)
{
    setup();
    struct dev d;
    dev_plain(&d);
    ms_region *rd = add_romdev("flash", 0x1000, 0x100, &d);
    fill_pattern(rd, 0xc0);
    uint8_t *h = ms_region_host(rd);
    uint32_t v = 0;
    CHECK_EQ(ms_as_read(as, 0x1000, U, &v, 4), MS_TX_OK);
    CHECK_EQ(v, 0xc3c2c1c0);
    CHECK_EQ(ms_as_ldl_le(as, 0x1004, U, NULL), 0xc7c6c5c4);
    CHECK_EQ(d.n, 0);
    /* Writes always reach the device, never the block. */
    CHECK_EQ(ms_as_stb(as, 0x1000, 0x98, U), MS_TX_OK);
    CHECK_EQ(d.n, 1);
    CHECK_EQ(d.calls[0].kind, 'w');
    CHECK_EQ(h[0], 0xc0);
    /* Reads past the range end come from the block, up to its end. */
    uint8_t big[0x20];
    memset(big, 0xee, sizeof(big));
    CHECK_EQ(ms_as_read(as, 0x10f0, U, big, 0x20), MS_TX_DECODE_ERROR);
    CHECK_EQ(big[0xf], 0xbf);
    CHECK_EQ(big[0x10], 0);
    /* ROMD off: every access goes to the device. */
    CHECK_OK(ms_region_set_romd(rd, false));
    d.n = 0;
    CHECK_EQ(ms_as_ldl_le(as, 0x1000, U, NULL), 0x13121198); /* stb above */
    CHECK_EQ(d.n, 1);
    CHECK_EQ(ms_as_read(as, 0x1000, U, &v, 4), MS_TX_OK);
    CHECK_EQ(d.n, 2);
    /* Loader writes skip it out of ROMD mode, write the block in it. */
    uint8_t w[2] = {0x55, 0x66};
    CHECK_EQ(ms_as_write_rom(as, 0x1000, U, w, 2), MS_TX_OK);
    CHECK_EQ(h[0], 0xc0);
    CHECK_EQ(d.n, 2);
    CHECK_OK(ms_region_set_romd(rd, true));
    CHECK_EQ(ms_as_write_rom(as, 0x1000, U, w, 2), MS_TX_OK);
    CHECK_EQ(h[0], 0x55);
    teardown();
}

/*
 * A ROMD load straddling the end of its range reads the block (7.2 does
 * not clamp ROMD lengths), even when the device would take the access
 * itself (unaligned accesses allowed, so the MMIO fast path qualifies).
 */
static void test_romd_straddle(void)
{
    setup();
    struct dev d;
    dev_plain(&d);
    d.ops.valid.unaligned = true;
    d.ops.impl.unaligned = true;
    ms_region *rd = add_romdev("flash", 0x1000, 0x100, &d);
    fill_pattern(rd, 0x10);
    /* An I/O region above the second half: the ROMD range ends at 0x107f. */
    struct dev top;
    dev_plain(&top);
    add_io("top", 0x1080, 0x80, &top); /* added last: wins the overlap */
    ms_tx_result r = MS_TX_ACCESS_ERROR;
    CHECK_EQ(ms_as_ldl_le(as, 0x107e, U, &r), 0x91908f8e);
    CHECK_EQ(r, MS_TX_OK);
    CHECK_EQ(d.n, 0);
    CHECK_EQ(top.n, 0);
    /* Out of ROMD mode the device answers. */
    CHECK_OK(ms_region_set_romd(rd, false));
    (void)ms_as_ldl_le(as, 0x107e, U, &r);
    CHECK_EQ(d.n, 1);
    teardown();
}

/* RAM devices: exact-size single accesses, never memcpy, never past. */
static void test_ram_device(void)
{
    setup();
    uint8_t mem[64];
    for (int i = 0; i < 64; i++) {
        mem[i] = (uint8_t)i;
    }
    add_region((struct ms_region_config){.kind = MS_REGION_RAM_DEVICE,
                                         .name = "bar",
                                         .size = sizeof(mem),
                                         .backing = MS_RAM_HOST,
                                         .host = mem},
               0x1000, 0);
    uint8_t buf[24];
    CHECK_EQ(ms_as_read(as, 0x1003, U, buf, 21), MS_TX_OK);
    CHECK(memcmp(buf, mem + 3, 21) == 0);
    CHECK_EQ(ms_as_ldl_be(as, 0x1004, U, NULL), 0x04050607);
    CHECK_EQ(ms_as_ldq_le(as, 0x1008, U, NULL), 0x0f0e0d0c0b0a0908ull);
    CHECK_EQ(ms_as_stw_be(as, 0x1010, 0xa1b2, U), MS_TX_OK);
    CHECK_EQ(mem[0x10], 0xa1);
    CHECK_EQ(mem[0x11], 0xb2);
    memset(buf, 0x77, sizeof(buf));
    CHECK_EQ(ms_as_write(as, 0x1020, U, buf, 24), MS_TX_OK);
    CHECK_EQ(mem[0x20], 0x77);
    CHECK_EQ(mem[0x37], 0x77);
    CHECK_EQ(mem[0x38], 0x38);
    ms_tx_result r;
    CHECK_EQ(ms_as_ldq_le(as, 0x103c, U, &r), 0); /* leaves the block */
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    uint8_t w = 0x42;
    CHECK_EQ(ms_as_write_rom(as, 0x1001, U, &w, 1), MS_TX_OK);
    CHECK_EQ(mem[1], 0x42);
    /* Not direct: DMA goes through the bounce buffer. */
    struct ms_map m;
    uint64_t len = 16;
    uint8_t *p = ms_as_map(as, 0x1000, &len, false, U, &m);
    REQUIRE(p != NULL);
    CHECK(p != mem);
    CHECK_EQ(len, 16);
    CHECK(memcmp(p, mem, 16) == 0);
    ms_as_unmap(&m, 0);
    teardown();
}

/* A RAM region seen through a read-only alias is still written (7.2). */
static void test_readonly_alias(void)
{
    setup();
    ms_region *ram = tu_ram(sys, "ram", 0x2000);
    ms_region *lo = tu_alias(sys, "lo", ram, 0, 0x1000);
    ms_region *hi = tu_alias(sys, "hi", ram, 0x1000, 0x1000);
    CHECK_OK(ms_region_set_readonly(lo, true));
    tu_add(root, 0x10000, lo, 0);
    tu_add(root, 0x11000, hi, 0);
    CHECK_EQ(ms_flatview_nr_ranges(ms_as_flatview(as)), 2);
    CHECK_EQ(ms_as_stl_le(as, 0x10000, 0x01020304, U), MS_TX_OK);
    CHECK_EQ(((uint8_t *)ms_region_host(ram))[0], 4);
    /* Item 58's other half: a map extends over both ranges. */
    struct ms_map m;
    uint64_t len = 0x2000;
    uint8_t *p = ms_as_map(as, 0x10000, &len, true, U, &m);
    CHECK(p == ms_region_host(ram));
    CHECK_EQ(len, 0x2000);
    ms_as_unmap(&m, len);
    ms_region_unref(ram);
    teardown();
}

/* ---- DMA mapping ----------------------------------------------------------
 */

static int notified;

static void on_free(void *opaque)
{
    (void)opaque;
    notified++;
}

/* Items 57 and 58. */
static void test_map(void)
{
    setup();
    ms_region *a = add_ram("a", 0, 0x1000);
    ms_region *b = add_ram("b", 0x2000, 0x1000);
    fill_pattern(a, 0);
    struct dev d;
    dev_plain(&d);
    add_io("mmio", 0x10000, 0x2000, &d);

    struct ms_map m1, m2;
    uint64_t len = 0x2000;
    uint8_t *p = ms_as_map(as, 0x800, &len, true, U, &m1);
    CHECK(p == (uint8_t *)ms_region_host(a) + 0x800);
    CHECK_EQ(len, 0x800); /* stops at the hole */
    CHECK_EQ(m1.len, 0x800);
    len = 0x1000;
    CHECK(ms_as_map(as, 0x2000, &len, false, U, &m2) == ms_region_host(b));
    ms_as_unmap(&m2, 0);
    ms_as_unmap(&m1, 0x10);
    ms_as_unmap(&m1, 0x10); /* cleared: harmless */
    len = 0;
    CHECK(ms_as_map(as, 0, &len, false, U, &m1) == NULL);
    CHECK(ms_as_map(NULL, 0, &len, false, U, &m1) == NULL);

    /* Bounce buffer: one at a time, at most a page. */
    len = 0x1800;
    p = ms_as_map(as, 0x10000, &len, false, U, &m1);
    REQUIRE(p != NULL);
    CHECK_EQ(len, PAGE);
    CHECK_EQ(p[0], 0x10);
    CHECK_EQ(p[0xff], 0x0f); /* register bytes wrap every 256 */
    int reads = d.total;
    CHECK_EQ(reads, PAGE / 4);
    len = 4;
    CHECK(ms_as_map(as, 0x10000, &len, true, U, &m2) == NULL);
    CHECK_EQ(len, 0);
    len = 4;
    CHECK(ms_as_map(as, 0x5000, &len, false, U, &m2) == NULL); /* hole */

    struct ms_map_client c = {.notify = on_free};
    notified = 0;
    CHECK_OK(ms_map_client_register(sys, &c));
    CHECK_ERR(ms_map_client_register(sys, &c), EEXIST);
    CHECK_EQ(notified, 0);
    ms_as_unmap(&m1, PAGE);
    CHECK_EQ(d.total, reads); /* a read mapping writes nothing back */
    CHECK_EQ(notified, 1);
    CHECK_ERR(ms_map_client_unregister(sys, &c), ENOENT);
    CHECK_OK(ms_map_client_register(sys, &c)); /* free: fires at once */
    CHECK_EQ(notified, 2);
    CHECK_ERR(ms_map_client_register(NULL, &c), EINVAL);

    /* A write mapping writes back what was accessed, at unmap. */
    len = 8;
    p = ms_as_map(as, 0x10010, &len, true, U, &m1);
    REQUIRE(p != NULL);
    CHECK_EQ(len, 8);
    CHECK_OK(ms_map_client_register(sys, &c));
    CHECK_OK(ms_map_client_unregister(sys, &c));
    memset(p, 0xab, 8);
    d.n = 0;
    ms_as_unmap(&m1, 6);
    CHECK_EQ(d.n, 2); /* 4 + 2 bytes */
    CHECK_EQ(d.calls[0].value, 0xabababab);
    CHECK_EQ(d.calls[1].size, 2);
    CHECK_EQ(notified, 2);
    teardown();
}

/* Later QEMU's rule: concurrent bounce buffers within a per-AS budget. */
static void test_bounce_budget(void)
{
    setup();
    struct dev d;
    dev_init(&d);
    d.ops.read_with_attrs = dev_read_attrs;
    d.ops.write_with_attrs = dev_write_attrs;
    add_io("mmio", 0x10000, 0x4000, &d);
    CHECK_ERR(ms_as_set_bounce_budget(NULL, 1), EINVAL);
    CHECK_EQ(ms_as_bounce_budget(NULL), 0);
    CHECK_EQ(ms_as_bounce_budget(as), 0);
    CHECK_OK(ms_as_set_bounce_budget(as, 0x3000));
    CHECK_EQ(ms_as_bounce_budget(as), 0x3000);

    /* Bigger than a page, several at once, until the budget is spent. */
    struct ms_map m1, m2, m3;
    struct ms_attrs a = {.requester_id = 7};
    uint64_t len = 0x1800;
    uint8_t *p1 = ms_as_map(as, 0x10000, &len, false, a, &m1);
    REQUIRE(p1 != NULL);
    CHECK_EQ(len, 0x1800);
    CHECK_EQ(p1[1], 0x11);
    CHECK_EQ(d.last_attrs.requester_id, 7); /* filled with the caller's */
    len = 0x2000;
    uint8_t *p2 = ms_as_map(as, 0x12000, &len, true, U, &m2);
    REQUIRE(p2 != NULL);
    CHECK_EQ(len, 0x1800); /* what is left */
    len = 4;
    CHECK(ms_as_map(as, 0x10000, &len, false, U, &m3) == NULL);
    CHECK_EQ(len, 0);

    /* A client of this address space waits for the budget... */
    struct ms_map_client c = {.notify = on_free, .as = as};
    notified = 0;
    CHECK_OK(ms_map_client_register(sys, &c));
    CHECK_EQ(notified, 0);
    /* ...and the system's single buffer is another matter: still free for
     * an address space without a budget. */
    ms_region *root2 = tu_container(sys, "other", MS_SIZE_FULL);
    ms_as *as2;
    REQUIRE(ms_as_new(sys, root2, "other", &as2) == 0);
    tu_add(root2, 0, tu_io(sys, "io2", 0x2000), 0);
    struct ms_map_client sysc = {.notify = on_free}; /* the system buffer */
    struct ms_map m4;
    len = 0x2000;
    CHECK(ms_as_map(as2, 0, &len, false, U, &m3) != NULL);
    CHECK_EQ(len, PAGE);
    len = 1;
    CHECK(ms_as_map(as2, 0, &len, false, U, &m4) == NULL); /* taken */
    CHECK_OK(ms_map_client_register(sys, &sysc));
    CHECK_EQ(notified, 0);
    ms_as_unmap(&m3, 0);
    CHECK_EQ(notified, 1); /* sysc only: c waits for the budget */
    CHECK_ERR(ms_map_client_unregister(sys, &sysc), ENOENT);

    memset(p2, 0x5c, 8);
    d.n = 0;
    ms_as_unmap(&m2, 8); /* written back, budget returned */
    CHECK_EQ(d.n, 2);
    CHECK_EQ(d.calls[0].value, 0x5c5c5c5c);
    CHECK_EQ(notified, 2); /* c */
    CHECK_ERR(ms_map_client_unregister(sys, &c), ENOENT);
    CHECK_OK(ms_map_client_register(sys, &c)); /* budget left: at once */
    CHECK_EQ(notified, 3);
    CHECK_ERR(ms_map_client_unregister(sys, &c), ENOENT); /* not queued */
    len = 0x2000;
    CHECK(ms_as_map(as, 0x10000, &len, false, U, &m3) != NULL);
    CHECK_EQ(len, 0x1800);
    ms_as_unmap(&m3, 0);
    ms_as_unmap(&m1, 0);

    /* A budget too big to allocate: refused, and nothing stays taken. */
    CHECK_OK(ms_as_set_bounce_budget(as, UINT64_MAX));
    len = UINT64_C(1) << 62;
    CHECK(ms_as_map(as, 0x10000, &len, false, U, &m1) == NULL);
    CHECK_EQ(len, 0);
    len = 8;
    CHECK(ms_as_map(as, 0x10000, &len, false, U, &m1) != NULL);
    CHECK_EQ(len, 8);

    /* Switching back to the system buffer while a budget buffer is out:
     * the buffer still returns to the budget it came from. */
    CHECK_OK(ms_as_set_bounce_budget(as, 0));
    len = 0x2000;
    CHECK(ms_as_map(as, 0x10000, &len, false, U, &m2) != NULL);
    CHECK_EQ(len, PAGE);
    ms_as_unmap(&m1, 0);
    ms_as_unmap(&m2, 0);
    CHECK_OK(ms_as_set_bounce_budget(as, 16));
    len = 0x100;
    CHECK(ms_as_map(as, 0x10000, &len, false, U, &m1) != NULL);
    CHECK_EQ(len, 16); /* the whole budget is free again */
    ms_as_unmap(&m1, 0);

    /* Clients naming another system's address space are refused. */
    ms_system *other;
    REQUIRE(ms_system_new(NULL, &other) == 0);
    struct ms_map_client bad = {.notify = on_free, .as = as};
    CHECK_ERR(ms_map_client_register(other, &bad), EINVAL);
    ms_system_free(other);
    ms_region_unref(root2);
    teardown();
}

/* A region freed while a mapping still uses it keeps its memory. */
static void test_map_pin(void)
{
    setup();
    ms_region *r;
    REQUIRE(ms_region_new(sys,
                          &(struct ms_region_config){.kind = MS_REGION_RAM,
                                                     .name = "hotplug",
                                                     .size = 0x4000},
                          &r) == 0);
    REQUIRE(ms_region_add(root, 0x40000, r) == 0);
    struct ms_map m;
    uint64_t len = 0x4000;
    uint8_t *p = ms_as_map(as, 0x40000, &len, true, U, &m);
    REQUIRE(p != NULL);
    CHECK_OK(ms_region_del(root, r));
    ms_region_unref(r); /* last reference gone, view reclaimed */
    ms_tx_result res;
    CHECK_EQ(ms_as_ldub(as, 0x40000, U, &res), 0);
    CHECK_EQ(res, MS_TX_DECODE_ERROR);
    memset(p, 0x11, 0x4000); /* still ours (ASan would see otherwise) */
    ms_as_unmap(&m, 0x4000);
    ms_region *tmp = tu_ram(sys, "tmp", 0x1000); /* reaps */
    ms_region_unref(tmp);

    /* Freeing the system with a mapping outstanding frees it too. */
    REQUIRE(ms_region_new(sys,
                          &(struct ms_region_config){.kind = MS_REGION_RAM,
                                                     .name = "leaky",
                                                     .size = 0x1000},
                          &r) == 0);
    REQUIRE(ms_region_add(root, 0x40000, r) == 0);
    ms_region_unref(r);
    len = 0x1000;
    REQUIRE(ms_as_map(as, 0x40000, &len, false, U, &m) != NULL);
    tu_log_count = 0;
    teardown();
    CHECK(tu_log_count >= 1);
}

/* ---- dirty logging and ioeventfds -------------------------------------- */

static void test_dirty(void)
{
    setup();
    ms_region *ram = add_ram("vram", 0, 16 * PAGE);
    CHECK_OK(ms_region_set_log(ram, true, MS_DIRTY_VGA));
    uint8_t buf[16] = {0};
    CHECK_EQ(ms_as_write(as, 3 * PAGE + 8, U, buf, 8), MS_TX_OK);
    CHECK(ms_region_get_dirty(ram, 3 * PAGE, PAGE, MS_DIRTY_VGA));
    CHECK(!ms_region_get_dirty(ram, 4 * PAGE, PAGE, MS_DIRTY_VGA));
    CHECK_EQ(ms_as_stl_le(as, 5 * PAGE - 2, 0, U), MS_TX_OK);
    CHECK(ms_region_get_dirty(ram, 4 * PAGE, PAGE, MS_DIRTY_VGA));
    CHECK(ms_region_get_dirty(ram, 5 * PAGE, 1, MS_DIRTY_VGA));
    CHECK(!ms_region_get_dirty(ram, 6 * PAGE, PAGE, MS_DIRTY_VGA));
    CHECK(!ms_region_get_dirty(ram, 8 * PAGE, PAGE, MS_DIRTY_VGA));
    CHECK_EQ(ms_as_write_rom(as, 8 * PAGE, U, buf, 1), MS_TX_OK);
    CHECK(ms_region_get_dirty(ram, 8 * PAGE, PAGE, MS_DIRTY_VGA));
    struct ms_map m;
    uint64_t len = 4 * PAGE;
    REQUIRE(ms_as_map(as, 10 * PAGE, &len, true, U, &m) != NULL);
    CHECK(!ms_region_get_dirty(ram, 11 * PAGE, PAGE, MS_DIRTY_VGA));
    ms_as_unmap(&m, PAGE + 1);
    CHECK(ms_region_get_dirty(ram, 11 * PAGE, 1, MS_DIRTY_VGA));
    CHECK(!ms_region_get_dirty(ram, 12 * PAGE, PAGE, MS_DIRTY_VGA));
    /* Reads and read mappings mark nothing. */
    CHECK_EQ(ms_as_read(as, 14 * PAGE, U, buf, 16), MS_TX_OK);
    CHECK(!ms_region_get_dirty(ram, 14 * PAGE, PAGE, MS_DIRTY_VGA));
    /* Not logged: nothing marked. */
    CHECK_OK(ms_region_set_log(ram, false, MS_DIRTY_VGA));
    CHECK_EQ(ms_as_write(as, 15 * PAGE, U, buf, 8), MS_TX_OK);
    CHECK(!ms_region_get_dirty(ram, 15 * PAGE, PAGE, MS_DIRTY_VGA));

    /* Pages written while unlogged sit in this thread's TLB as directly
     * writable; logging must still see the next writes, and a read-only
     * flag must still stop them. */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(ms_as_stq_le(as, 2 * PAGE + 8 * i, 1, U), MS_TX_OK);
        CHECK_EQ(ms_as_write(as, 6 * PAGE + 8 * i, U, buf, 8), MS_TX_OK);
    }
    CHECK(!ms_region_get_dirty(ram, 2 * PAGE, PAGE, MS_DIRTY_VGA));
    CHECK_OK(ms_region_set_log(ram, true, MS_DIRTY_VGA));
    CHECK_EQ(ms_as_stq_le(as, 2 * PAGE + 64, 1, U), MS_TX_OK);
    CHECK(ms_region_get_dirty(ram, 2 * PAGE, PAGE, MS_DIRTY_VGA));
    CHECK_EQ(ms_as_write(as, 6 * PAGE + 64, U, buf, 8), MS_TX_OK);
    CHECK(ms_region_get_dirty(ram, 6 * PAGE, PAGE, MS_DIRTY_VGA));
    CHECK_OK(ms_region_set_log(ram, false, MS_DIRTY_VGA));
    uint8_t *h = ms_region_host(ram);
    CHECK_EQ(ms_as_stq_le(as, 7 * PAGE, 5, U), MS_TX_OK); /* cached again */
    CHECK_EQ(ms_as_stq_le(as, 7 * PAGE, 6, U), MS_TX_OK);
    CHECK_EQ(h[7 * PAGE], 6);
    CHECK_OK(ms_region_set_readonly(ram, true));
    CHECK_EQ(ms_as_stq_le(as, 7 * PAGE, 7, U), MS_TX_DECODE_ERROR); /* ROM */
    CHECK_EQ(h[7 * PAGE], 6);
    CHECK_EQ(ms_as_ldub(as, 7 * PAGE, U, NULL), 6); /* reads still direct */
    teardown();
}

static void test_ioeventfd(void)
{
    setup();
    struct dev d;
    dev_plain(&d);
    d.ops.endianness = MS_ENDIAN_BIG;
    ms_region *r = add_io("doorbell", 0x1000, 0x100, &d);
    int fd = eventfd(0, EFD_NONBLOCK);
    REQUIRE(fd >= 0);
    CHECK_OK(ms_region_add_eventfd(r, 0x10, 4, true, 0x1234, fd));
    CHECK_EQ(ms_as_stl_le(as, 0x1010, 0x1234, U), MS_TX_OK);
    CHECK_EQ(d.n, 0);
    uint64_t cnt = 0;
    CHECK_EQ(read(fd, &cnt, 8), 8);
    CHECK_EQ(cnt, 1);
    CHECK_EQ(ms_as_stl_le(as, 0x1010, 0x1235, U), MS_TX_OK);
    CHECK_EQ(d.n, 1); /* other data: the device */
    CHECK_EQ(ms_as_stw_le(as, 0x1010, 0x1234, U), MS_TX_OK);
    CHECK_EQ(d.n, 2); /* other size: the device */
    CHECK_OK(ms_region_del_eventfd(r, 0x10, 4, true, 0x1234, fd));
    close(fd);
    teardown();
}

/* ---- re-entrancy guard (item 56) ---------------------------------------- */

static void test_reentrancy(void)
{
    setup();
    struct dev d, other;
    dev_plain(&d);
    dev_plain(&other);
    ms_region *r = add_io("dev", 0x1000, 0x100, &d);
    (void)r;
    add_io("other", 0x2000, 0x100, &other);
    ms_region *ram = add_ram("ram", 0, 0x100);
    (void)ram;
    d.as = other.as = as;

    /* A read callback reading its own register. */
    d.inner = 1;
    d.inner_gpa = 0x1004;
    tu_log_count = 0;
    ms_tx_result res;
    CHECK_EQ(ms_as_ldl_le(as, 0x1000, U, &res), 0x13121110);
    CHECK_EQ(res, MS_TX_OK);
    CHECK_EQ(d.inner_calls, 1);
    CHECK_EQ(d.inner_res, MS_TX_ACCESS_ERROR);
    CHECK_EQ(d.n, 1); /* the inner callback never ran */
    CHECK_EQ(tu_log_count, 1);
    CHECK(strstr(tu_last_log, "re-entrant") != NULL);
    CHECK(strstr(tu_last_log, "'dev'") != NULL);

    /* The same from an 8-byte read made of two 4-byte callbacks. */
    d.n = 0;
    d.inner = 1;
    d.inner_res = MS_TX_OK;
    CHECK_EQ(ms_as_ldq_le(as, 0x1000, U, &res), 0x1716151413121110);
    CHECK_EQ(res, MS_TX_OK);
    CHECK_EQ(d.inner_calls, 2);
    CHECK_EQ(d.inner_res, MS_TX_ACCESS_ERROR);
    CHECK_EQ(d.n, 2);          /* both pieces, not the inner one */
    CHECK_EQ(tu_log_count, 1); /* logged once per region */

    /* And from a 4-byte read made of four 1-byte callbacks. */
    struct dev narrow;
    dev_plain(&narrow);
    narrow.ops.impl.max_access_size = 1;
    add_io("narrow", 0x3000, 0x100, &narrow);
    narrow.as = as;
    narrow.inner = 1;
    narrow.inner_gpa = 0x3004;
    CHECK_EQ(ms_as_ldl_le(as, 0x3000, U, &res), 0x13121110);
    CHECK_EQ(res, MS_TX_OK);
    CHECK_EQ(narrow.inner_calls, 1);
    CHECK_EQ(narrow.inner_res, MS_TX_ACCESS_ERROR);
    CHECK_EQ(narrow.n, 4);
    CHECK_EQ(tu_log_count, 2);
    CHECK(strstr(tu_last_log, "'narrow'") != NULL);

    /* A DMA write landing on itself from a write callback. */
    d.n = 0;
    d.inner = 2;
    CHECK_EQ(ms_as_stl_le(as, 0x1000, 7, U), MS_TX_OK);
    CHECK_EQ(d.inner_res, MS_TX_ACCESS_ERROR);
    CHECK_EQ(d.n, 1);
    CHECK_EQ(tu_log_count, 2); /* logged once per region: no new line */

    /* The same from an 8-byte store made of two 4-byte callbacks, typed
     * and buffered. */
    for (int k = 0; k < 2; k++) {
        d.n = 0;
        d.inner = 2;
        d.inner_res = MS_TX_OK;
        uint64_t v8 = UINT64_C(0x0102030405060708);
        CHECK_EQ(k ? ms_as_write(as, 0x1008, U, &v8, 8)
                   : ms_as_stq_le(as, 0x1008, v8, U),
                 MS_TX_OK);
        CHECK_EQ(d.inner_res, MS_TX_ACCESS_ERROR);
        CHECK_EQ(d.n, 2);
        CHECK_EQ(d.calls[0].offset, 8);
        CHECK_EQ(d.calls[0].value, 0x05060708);
        CHECK_EQ(d.calls[1].offset, 12);
        CHECK_EQ(d.calls[1].value, 0x01020304);
    }

    /* The guard was released: the device works again. */
    CHECK_EQ(ms_as_ldub(as, 0x1000, U, &res), 7);
    CHECK_EQ(res, MS_TX_OK);

    /* Another device may be reached, and it may not call back into us. */
    d.inner = 1;
    d.inner_gpa = 0x2000;
    other.inner = 1;
    other.inner_gpa = 0x1000;
    d.n = other.n = 0;
    (void)ms_as_ldub(as, 0x1000, U, &res);
    CHECK_EQ(d.inner_res, MS_TX_OK);
    CHECK_EQ(other.n, 1);
    CHECK_EQ(other.inner_res, MS_TX_ACCESS_ERROR);
    CHECK_EQ(d.n, 1);
    /* RAM from a callback is fine. */
    d.inner = 1;
    d.inner_gpa = 0x10;
    (void)ms_as_ldub(as, 0x1000, U, &res);
    CHECK_EQ(d.inner_res, MS_TX_OK);

    /* Having reached another device, by any kind of access, a callback
     * is still refused its own: the other device's call must not lose
     * the outer one's guard (the fast paths assume an empty stack). */
    other.inner = 0;
    for (int what = 1; what <= 4; what++) {
        for (int via_read = 0; via_read < 2; via_read++) {
            d.n = other.n = 0;
            d.inner = what;
            d.inner_gpa = 0x2008;
            d.inner_then = 0x1004;
            d.inner_res = d.then_res = MS_TX_ERROR;
            if (via_read) {
                (void)ms_as_ldl_le(as, 0x1000, U, &res);
            } else {
                CHECK_EQ(ms_as_stl_le(as, 0x1000, 0x01020304, U), MS_TX_OK);
            }
            CHECK_EQ(d.inner_res, MS_TX_OK);
            CHECK_EQ(other.n, 1);
            CHECK_EQ(d.then_res, MS_TX_ACCESS_ERROR);
            CHECK_EQ(d.n, 1);
        }
    }
    d.inner_then = 0;
    teardown();
}

/* Two regions of one device (same key), and the opt-outs. */
static void test_reentrancy_keys(void)
{
    setup();
    struct dev d1, d2, free_dev;
    dev_plain(&d1);
    dev_plain(&d2);
    dev_plain(&free_dev);
    static int device_token;
    add_region((struct ms_region_config){.kind = MS_REGION_IO,
                                         .name = "bar0",
                                         .size = 0x100,
                                         .ops = &d1.ops,
                                         .opaque = &d1,
                                         .device = &device_token},
               0x1000, 0);
    add_region((struct ms_region_config){.kind = MS_REGION_IO,
                                         .name = "bar1",
                                         .size = 0x100,
                                         .ops = &d2.ops,
                                         .opaque = &d2,
                                         .device = &device_token},
               0x2000, 0);
    add_region((struct ms_region_config){.kind = MS_REGION_IO,
                                         .name = "reentrant",
                                         .size = 0x100,
                                         .ops = &free_dev.ops,
                                         .opaque = &free_dev,
                                         .reentrant = true},
               0x3000, 0);
    d1.as = free_dev.as = as;
    d1.inner = 1;
    d1.inner_gpa = 0x2000;
    ms_tx_result res;
    (void)ms_as_ldub(as, 0x1000, U, &res);
    CHECK_EQ(d1.inner_res, MS_TX_ACCESS_ERROR);
    CHECK_EQ(d2.n, 0);
    free_dev.inner = 1;
    free_dev.inner_gpa = 0x3004;
    (void)ms_as_ldub(as, 0x3000, U, &res);
    CHECK_EQ(free_dev.inner_res, MS_TX_OK);
    CHECK_EQ(free_dev.n, 2);

    /* Read-only I/O regions are not guarded (QEMU's rule). */
    struct dev ro;
    dev_plain(&ro);
    ms_region *ror = add_io("ro", 0x4000, 0x100, &ro);
    CHECK_OK(ms_region_set_readonly(ror, true));
    ro.as = as;
    ro.inner = 1;
    ro.inner_gpa = 0x4000;
    (void)ms_as_ldub(as, 0x4000, U, &res);
    CHECK_EQ(ro.inner_res, MS_TX_OK);
    CHECK_EQ(ro.n, 2);
    teardown();
}

/* A bounce buffer written back into the device that mapped it. */
static struct ms_map bounce_map;
static ms_tx_result bounce_probe;

static void bounce_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
    struct dev *d = opaque;
    record(d, 'w', off, size, v);
    if (d->inner) {
        d->inner = 0;
        uint64_t len = 4;
        uint8_t *p = ms_as_map(d->as, 0x1000, &len, true, U, &bounce_map);
        if (p) {
            memset(p, 0x66, 4);
            ms_as_unmap(&bounce_map, 4); /* write-back is refused */
        }
        bounce_probe = p ? MS_TX_OK : MS_TX_ERROR;
    }
}

static void test_reentrancy_dma(void)
{
    setup();
    struct dev d;
    dev_plain(&d);
    d.ops.write = bounce_write;
    add_io("dma-dev", 0x1000, 0x100, &d);
    d.as = as;
    d.inner = 1;
    CHECK_EQ(ms_as_stl_le(as, 0x1000, 1, U), MS_TX_OK);
    CHECK_EQ(bounce_probe, MS_TX_OK);
    CHECK_EQ(d.n, 1); /* the write-back never reached it */
    teardown();
}

/* Two threads inside the same device's callback at the same time. */
static pthread_barrier_t both_in;
static int concurrent_ok;

static uint64_t barrier_read(void *opaque, uint64_t off, unsigned size)
{
    (void)opaque, (void)off, (void)size;
    pthread_barrier_wait(&both_in); /* deadlocks if one were refused */
    return 0x42;
}

static void *reader(void *arg)
{
    ms_tx_result r;
    if (ms_as_ldub(arg, 0x1000, U, &r) == 0x42 && r == MS_TX_OK) {
        __atomic_add_fetch(&concurrent_ok, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_reentrancy_threads(void)
{
    setup();
    static const struct ms_region_ops ops = {.read = barrier_read};
    static int devkey;
    add_region((struct ms_region_config){.kind = MS_REGION_IO,
                                         .name = "shared",
                                         .size = 0x10,
                                         .ops = &ops,
                                         .opaque = &devkey},
               0x1000, 0);
    pthread_barrier_init(&both_in, NULL, 2);
    pthread_t t1, t2;
    pthread_create(&t1, NULL, reader, as);
    pthread_create(&t2, NULL, reader, as);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_barrier_destroy(&both_in);
    CHECK_EQ(concurrent_ok, 2);
    teardown();
}

/* Topology changes between accesses are seen at once. */
static void test_topology_change(void)
{
    setup();
    ms_region *a = add_ram("a", 0x1000, 0x1000);
    fill_pattern(a, 0x20);
    CHECK_EQ(ms_as_ldub(as, 0x1000, U, NULL), 0x20);
    CHECK_OK(ms_region_set_address(a, 0x3000));
    ms_tx_result r;
    CHECK_EQ(ms_as_ldub(as, 0x1000, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    CHECK_EQ(ms_as_ldub(as, 0x3001, U, NULL), 0x21);
    CHECK_OK(ms_region_set_size(a, 0x800));
    CHECK_EQ(ms_as_ldub(as, 0x3800, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    CHECK_OK(ms_region_set_enabled(a, false));
    CHECK_EQ(ms_as_ldub(as, 0x3001, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    teardown();
}

/* RAM over the caller's @host, of @size bytes, at @at. */
static ms_region *add_host_ram(const char *name, void *host, uint64_t size,
                               uint64_t at, int32_t prio)
{
    ms_region *r = tu_host_ram(sys, name, host, size);
    tu_add(root, at, r, prio);
    return r;
}

/*
 * @n RAM ranges over @mem at @at, back to back, of @size bytes each but
 * the last, which reaches @total; they go in @piece.
 */
static void add_pieces(ms_region **piece, unsigned n, uint8_t *mem, uint64_t at,
                       uint64_t size, uint64_t total)
{
    for (unsigned i = 0; i < n; i++) {
        uint64_t off = (uint64_t)i * size;
        piece[i] = add_host_ram("piece", mem + off,
                                i + 1 < n ? size : total - off, at + off, 0);
    }
}

/*
 * The access path's TLB (access.c) caches a page of small RAM ranges back
 * to back in one host buffer, but must still refuse typed accesses that
 * straddle one of their ends, and forget the page when the view changes.
 */
static void test_tlb_small_ranges(void)
{
    setup();
    static uint8_t mem[0x2000] __attribute__((aligned(4096)));
    for (size_t i = 0; i < sizeof(mem); i++) {
        mem[i] = (uint8_t)(i * 7 + 1);
    }
    /* 0x1000-0x1fff in 40-byte pieces (the last one shorter), then a page. */
    ms_region *piece[103];
    add_pieces(piece, 103, mem, 0x1000, 40, 0x1000);
    add_host_ram("page", mem + 0x1000, 0x1000, 0x2000, 0);
    uint64_t want;
    ms_tx_result r;
    for (int pass = 0; pass < 2; pass++) { /* the second from the TLB */
        memcpy(&want, mem + 80, 8);
        CHECK_EQ(ms_as_ldq_le(as, 0x1050, U, &r), want);
        CHECK_EQ(r, MS_TX_OK);
        memcpy(&want, mem + 84, 8);
        CHECK_EQ(ms_as_ldq_le(as, 0x1054, U, &r), want); /* in one range */
        CHECK_EQ(r, MS_TX_OK);
        r = MS_TX_OK;
        CHECK_EQ(ms_as_ldq_le(as, 0x1074, U, &r), 0); /* 116-123: straddles */
        CHECK_EQ(r, MS_TX_DECODE_ERROR);
        CHECK_EQ(ms_as_stl_le(as, 0x1076, 0, U), MS_TX_DECODE_ERROR);
        CHECK_EQ(mem[0x76], (uint8_t)(0x76 * 7 + 1));
        uint8_t buf[16];
        CHECK_EQ(ms_as_read(as, 0x1074, U, buf, 16), MS_TX_OK); /* splits */
        CHECK(memcmp(buf, mem + 0x74, 16) == 0);
        memcpy(&want, mem + 0xff8, 8);
        CHECK_EQ(ms_as_ldq_le(as, 0x1ff8, U, NULL), want);
        CHECK_EQ(ms_as_ldq_le(as, 0x1ffc, U, &r), 0); /* into "page" */
        CHECK_EQ(r, MS_TX_DECODE_ERROR);
        CHECK_EQ(ms_as_stq_le(as, 0x1028 + 8 * pass, 0x1122334455667788ull, U),
                 MS_TX_OK);
        CHECK_EQ(mem[0x28 + 8 * pass], 0x88);
        memcpy(&want, mem + 0x1008, 8);
        CHECK_EQ(ms_as_ldq_le(as, 0x2008, U, NULL), want);
    }
    /* A hole where a piece was: the cached page must not answer. */
    REQUIRE(ms_region_del(root, piece[2]) == 0);
    CHECK_EQ(ms_as_ldq_le(as, 0x1050, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    memcpy(&want, mem + 0x78, 8);
    CHECK_EQ(ms_as_ldq_le(as, 0x1078, U, &r), want);
    CHECK_EQ(r, MS_TX_OK);
    teardown();
}

/*
 * The TLB's second level caches pages as large as the RAM ranges allow
 * (here 2 MiB: two 2 MiB ranges back to back in separate blocks, and a
 * 4 MiB one), but accesses straddling two ranges or a range end must still
 * split or fail as the index says, dirty logging and the read-only flag
 * set after a page was cached must still apply, and an access wrapping
 * past the top of the address space must not hit page 0.
 */
static void test_tlb_big_pages(void)
{
    setup();
    const uint64_t m2 = UINT64_C(2) << 20;
    ms_region *a = add_ram("a", 0, m2);
    ms_region *b = add_ram("b", m2, m2);
    ms_region *c = add_ram("c", 4 * m2, 2 * m2);
    fill_pattern(a, 1);
    fill_pattern(b, 101);
    fill_pattern(c, 201);
    const uint8_t *ha = ms_region_host(a), *hb = ms_region_host(b);
    const uint8_t *hc = ms_region_host(c);
    ms_tx_result r;
    uint64_t want;
    for (int pass = 0; pass < 2; pass++) { /* the second from the TLB */
        memcpy(&want, ha + 0x10, 8);
        CHECK_EQ(ms_as_ldq_le(as, 0x10, U, NULL), want);
        memcpy(&want, ha + m2 - 8, 8);
        CHECK_EQ(ms_as_ldq_le(as, m2 - 8, U, NULL), want);
        memcpy(&want, hb + 0x123458, 8);
        CHECK_EQ(ms_as_ldq_le(as, m2 + 0x123458, U, NULL), want);
        memcpy(&want, hc + m2 + 0x400, 8);
        CHECK_EQ(ms_as_ldq_le(as, 5 * m2 + 0x400, U, NULL), want);
        /* Straddling a and b: a typed access fails (7.7, edge case 59),
         * a buffer splits. */
        CHECK_EQ(ms_as_ldq_le(as, m2 - 4, U, &r), 0);
        CHECK_EQ(r, MS_TX_DECODE_ERROR);
        CHECK_EQ(ms_as_stl_le(as, m2 - 2, 0, U), MS_TX_DECODE_ERROR);
        CHECK_EQ(hb[1], 102);
        uint8_t buf[16];
        CHECK_EQ(ms_as_read(as, m2 - 8, U, buf, 16), MS_TX_OK);
        CHECK(memcmp(buf, ha + m2 - 8, 8) == 0 && memcmp(buf + 8, hb, 8) == 0);
        /* Straddling the end of c into the hole. */
        CHECK_EQ(ms_as_ldq_le(as, 6 * m2 - 4, U, &r), 0);
        CHECK_EQ(r, MS_TX_DECODE_ERROR);
        CHECK_EQ(ms_as_stq_le(as, 6 * m2 - 4, 0, U), MS_TX_DECODE_ERROR);
        CHECK_EQ(hc[2 * m2 - 4], (uint8_t)(201 + 2 * m2 - 4));
        /* Wrapping: 2^64 - 4 .. 3 is not page 0. */
        r = MS_TX_OK;
        CHECK_EQ(ms_as_ldq_le(as, UINT64_MAX - 3, U, &r), 0);
        CHECK_EQ(r, MS_TX_DECODE_ERROR);
        CHECK_EQ(ms_as_stq_le(as, UINT64_MAX - 3, 0, U), MS_TX_DECODE_ERROR);
        CHECK_EQ(ms_as_stw_le(as, 0x100 + (uint64_t)pass, 0xabcd, U), MS_TX_OK);
        CHECK_EQ(ha[0x100 + pass], 0xcd);
    }
    const uint8_t in[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK_EQ(ms_as_write(as, m2 - 4, U, in, 8), MS_TX_OK);
    CHECK(memcmp(ha + m2 - 4, in, 4) == 0 && memcmp(hb, in + 4, 4) == 0);
    /* Cached as writable; logging and read-only set later still apply. */
    CHECK_OK(ms_region_set_log(b, true, MS_DIRTY_VGA));
    CHECK_EQ(ms_as_stq_le(as, m2 + 0x10008, 1, U), MS_TX_OK);
    CHECK(ms_region_get_dirty(b, 0x10000, PAGE, MS_DIRTY_VGA));
    CHECK(!ms_region_get_dirty(b, 0x20000, PAGE, MS_DIRTY_VGA));
    CHECK_OK(ms_region_set_readonly(a, true));
    CHECK_EQ(ms_as_stq_le(as, 0x100, 0, U), MS_TX_DECODE_ERROR);
    CHECK_EQ(ha[0x102], 0xab);
    /* Moved away: the cached page must not answer. */
    CHECK_OK(ms_region_set_address(c, 8 * m2));
    CHECK_EQ(ms_as_ldq_le(as, 5 * m2 + 0x400, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    memcpy(&want, hc + m2 + 0x400, 8);
    CHECK_EQ(ms_as_ldq_le(as, 9 * m2 + 0x400, U, NULL), want);
    teardown();
}

static uint64_t tlb_rng = 0x9e3779b97f4a7c15ull;

static uint64_t tlb_rand(uint64_t bound)
{
    tlb_rng ^= tlb_rng << 13;
    tlb_rng ^= tlb_rng >> 7;
    tlb_rng ^= tlb_rng << 17;
    return tlb_rng % bound;
}

/*
 * The same at random: RAM ranges of 4 KiB to 4 MiB and more, each in its
 * own 16 MiB slot (so that an address is in one range at most, and the
 * second level picks various page sizes), moved, resized, re-created and
 * removed between rounds.  Every typed load and store, made twice so that
 * the second one meets the TLB, must see or change what the range holds,
 * or give 0 and a decode error when it is not inside one range.
 */
static void test_tlb_random(void)
{
    enum { NR = 12, ROUNDS = 60, ACC = 300 };
    const uint64_t slot = UINT64_C(16) << 20;
    setup();
    ms_region *r[NR] = {0};
    uint64_t size[NR] = {0};
    for (int round = 0; round < ROUNDS; round++) {
        for (int k = 0; k < 3; k++) { /* change up to three ranges */
            unsigned i = (unsigned)tlb_rand(NR);
            uint64_t sz = ((uint64_t)PAGE << tlb_rand(11)) + PAGE * tlb_rand(3);
            unsigned what = (unsigned)tlb_rand(5);
            if (r[i] && what == 0) {
                REQUIRE(ms_region_del(root, r[i]) == 0);
                r[i] = NULL;
                continue;
            }
            if (r[i] && what <= 2) { /* resize within its block */
                sz = sz < size[i] ? sz : size[i];
                REQUIRE(ms_region_set_size(r[i], sz) == 0);
                size[i] = sz;
            } else if (r[i]) { /* move */
                sz = size[i];
            }
            /* A page apart from the slot's ends: addresses near a range
             * are in no other one. */
            uint64_t where =
                i * slot + PAGE + PAGE * tlb_rand((slot - sz) / PAGE - 1);
            if (!r[i]) {
                r[i] = add_ram("r", where, sz);
                fill_pattern(r[i], (uint8_t)(i * 17 + (unsigned)round));
                size[i] = sz;
            } else {
                REQUIRE(ms_region_set_address(r[i], where) == 0);
            }
        }
        for (int n = 0; n < ACC; n++) {
            unsigned i = (unsigned)tlb_rand(NR);
            unsigned sz = 1u << tlb_rand(4);
            uint64_t at = r[i] ? ms_region_addr(r[i]) : i * slot;
            uint64_t off = tlb_rand(size[i] + 32) - 16; /* may wrap: a hole */
            uint64_t a = at + off;
            bool inside = r[i] && off < size[i] && sz <= size[i] - off;
            uint8_t *h = inside ? (uint8_t *)ms_region_host(r[i]) + off : NULL;
            uint64_t want = 0;
            if (inside) {
                memcpy(&want, h, sz);
            }
            for (int pass = 0; pass < 2; pass++) {
                ms_tx_result got_r;
                uint64_t got = tu_load(as, a, sz, &got_r);
                CHECK_EQ(got, want);
                CHECK_EQ(got_r, inside ? MS_TX_OK : MS_TX_DECODE_ERROR);
            }
            uint64_t v = tlb_rand(UINT64_MAX) &
                         (sz == 8 ? UINT64_MAX : (1ull << 8 * sz) - 1);
            for (int pass = 0; pass < 2; pass++) {
                ms_tx_result wr = tu_store(as, a, v, sz);
                CHECK_EQ(wr, inside ? MS_TX_OK : MS_TX_DECODE_ERROR);
                v = ~v & (sz == 8 ? UINT64_MAX : (1ull << 8 * sz) - 1);
            }
            if (inside) {
                uint64_t now = 0;
                memcpy(&now, h, sz);
                CHECK_EQ(now,
                         ~v & (sz == 8 ? UINT64_MAX : (1ull << 8 * sz) - 1));
            }
        }
    }
    teardown();
}

/* The @len bytes at @p, little endian. */
static uint64_t get_le(const uint8_t *p, unsigned len)
{
    uint64_t v = 0;
    for (unsigned i = len; i-- > 0;) {
        v = v << 8 | p[i];
    }
    return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned len)
{
    for (unsigned i = 0; i < len; i++) {
        p[i] = (uint8_t)(v >> 8 * i);
    }
}

/*
 * First-level pages above 4 KiB made of small RAM ranges back to back in
 * one host buffer (sheets, dispatch.c) are cached whole; yet a typed
 * access straddling two ranges or running into a hole must still fail, a
 * store must still spare a read-only range and mark a logged one, and a
 * range shadowed by one with other memory must be accessed there.  At
 * random, over 4709 ranges of 1336 bytes filling 6 MiB (so 2 MiB pages
 * of 8-byte blocks): each round one range is hidden, made read-only,
 * logged, shadowed, or left alone; each access is made twice, so that
 * the second meets the TLB; buffer reads and writes of up to 3 pages
 * follow; the buffer is compared with a model after every round.  Then with a
 * boundary at an odd address in the middle, so that the first level has 8 KiB
 * pages, one of which is no sheet (but has a 4 KiB half that is).
 */
static void test_tlb_big_sheets_in(bool odd)
{
    enum { SZ = 6 << 20, PIECE = 1336, NP = (SZ + PIECE - 1) / PIECE };
    enum { ROUNDS = 30, ACC = 1500, ODD = NP / 2 };
    /* HIDE to LOG: TU_HIDE to TU_LOG, one up. */
    enum { KEEP, HIDE, RO, LOG, SHADOW };
    setup();
    uint8_t *mem = aligned_alloc(4096, SZ), *model = malloc(SZ);
    static uint8_t alt[PIECE], alt_model[PIECE];
    REQUIRE(mem && model);
    for (size_t i = 0; i < SZ; i++) {
        mem[i] = model[i] = (uint8_t)(i * 13 + 5);
    }
    /* Range k: [start[k], start[k + 1]); odd: one of 1335 bytes, then 1337. */
    uint64_t start[NP + 1];
    ms_region *piece[NP];
    for (unsigned k = 0; k <= NP; k++) {
        start[k] = k == NP ? SZ : (uint64_t)k * PIECE + (odd && k == ODD);
    }
    CHECK_OK(ms_txn_begin(sys)); /* one view, not one per range */
    for (unsigned k = 0; k < NP; k++) {
        piece[k] = add_host_ram("piece", mem + start[k],
                                start[k + 1] - start[k], start[k], 0);
    }
    CHECK_OK(ms_txn_commit(sys));
    for (int round = 0; round < ROUNDS; round++) {
        unsigned w = (unsigned)tlb_rand(NP);
        unsigned what = round == 0 ? KEEP : (unsigned)tlb_rand(5);
        ms_region *shadow = NULL;
        uint64_t base = start[w], wlen = start[w + 1] - start[w];
        if (what >= HIDE && what <= LOG) {
            CHECK_OK(tu_change(piece[w], what - HIDE, true));
        } else if (what == SHADOW) {
            memcpy(alt, mem + base, wlen);
            memcpy(alt_model, alt, wlen);
            shadow = add_host_ram("shadow", alt, wlen, base, 1);
        }
        for (int n = 0; n < ACC; n++) {
            unsigned len = 1u << tlb_rand(4);
            /* Mostly near the ends of a random range, or of the chosen
             * one; sometimes past the end of the buffer. */
            uint64_t a = tlb_rand(4) == 0   ? tlb_rand(SZ)
                         : tlb_rand(3) == 0 ? start[tlb_rand(NP + 1)]
                         : tlb_rand(2)      ? start[w + tlb_rand(2)]
                                            : start[ODD + tlb_rand(2)];
            a += tlb_rand(20) - 10;
            a = a > SZ + 16 ? 0 : a;
            unsigned k0 = 0, k1 = 0;
            while (k0 < NP && start[k0 + 1] <= a) {
                k0++;
            }
            while (k1 < NP && start[k1 + 1] <= a + len - 1) {
                k1++;
            }
            bool is_store = tlb_rand(2);
            bool ok = k0 < NP && k0 == k1 && !(k0 == w && what == HIDE) &&
                      !(is_store && k0 == w && what == RO);
            uint8_t *src =
                k0 == w && what == SHADOW ? alt_model + (a - base) : model + a;
            for (int pass = 0; pass < 2; pass++) {
                ms_tx_result r;
                if (is_store) {
                    uint64_t v = tlb_rand(UINT64_MAX);
                    CHECK_EQ(tu_store(as, a, v, len),
                             ok ? MS_TX_OK : MS_TX_DECODE_ERROR);
                    if (ok) {
                        put_le(src, v, len);
                    }
                    if (ok && k0 == w && what == LOG) {
                        CHECK_EQ(ms_region_test_and_clear_dirty(
                                     piece[w], a - base, len, MS_DIRTY_VGA),
                                 1);
                    }
                } else {
                    uint64_t v = tu_load(as, a, len, &r);
                    CHECK_EQ(r, ok ? MS_TX_OK : MS_TX_DECODE_ERROR);
                    CHECK_EQ(v, ok ? get_le(src, len) : 0);
                }
            }
        }
        /* Buffer accesses of up to 3 pages: they split at range ends
         * (and may be copied a whole sheet page at a time). */
        static uint8_t buf[3 * 4096], want[3 * 4096];
        for (int n = 0; n < ACC / 10; n++) {
            uint64_t len = 1 + tlb_rand(sizeof(buf));
            uint64_t a = tlb_rand(2) ? tlb_rand(SZ) : base + tlb_rand(64);
            a = a > len ? a - tlb_rand(len) : a;
            bool is_write = tlb_rand(2);
            ms_tx_result r_want = MS_TX_OK;
            for (uint64_t i = 0; i < len; i++) {
                uint64_t x = a + i;
                bool in_w = x >= base && x - base < wlen;
                uint8_t *m =
                    in_w && what == SHADOW ? alt_model + (x - base) : model + x;
                bool fail = x >= SZ || (in_w && what == HIDE) ||
                            (is_write && in_w && what == RO);
                buf[i] = (uint8_t)tlb_rand(256);
                if (fail) {
                    r_want = MS_TX_DECODE_ERROR;
                    want[i] = is_write ? buf[i] : 0;
                } else if (is_write) {
                    *m = want[i] = buf[i];
                } else {
                    want[i] = *m;
                }
            }
            if (is_write) {
                CHECK_EQ(ms_as_write(as, a, U, buf, len), r_want);
                if (what == LOG && a < base + wlen && a + len > base) {
                    CHECK_EQ(ms_region_test_and_clear_dirty(piece[w], 0, wlen,
                                                            MS_DIRTY_VGA),
                             1);
                }
            } else {
                CHECK_EQ(ms_as_read(as, a, U, buf, len), r_want);
                CHECK(memcmp(buf, want, len) == 0);
            }
        }
        CHECK(memcmp(mem, model, SZ) == 0);
        if (shadow) {
            CHECK(memcmp(alt, alt_model, wlen) == 0);
            REQUIRE(ms_region_del(root, shadow) == 0);
        }
        if (what >= HIDE && what <= LOG) {
            CHECK_OK(tu_change(piece[w], what - HIDE, false));
        }
    }
    teardown();
    free(mem);
    free(model);
}

static void test_tlb_big_sheets(void)
{
    test_tlb_big_sheets_in(false);
    test_tlb_big_sheets_in(true);
}

/*
 * A page cached for reads only (ROM) has a write tag no write of its slot
 * may match, not even one running from it into the next page: the write
 * must still be ignored.  Once with ROM pages in the first level (64 KiB
 * pages), once in the 4 KiB one (a 2 MiB RAM range sets the page size).
 */
static void test_tlb_read_only_pages(void)
{
    for (int layout = 0; layout < 2; layout++) {
        setup();
        uint64_t at = layout ? UINT64_C(0x40000000) : 0;
        if (layout) {
            add_ram("ram", 0, UINT64_C(2) << 20);
        }
        ms_region *rom = add_region(
            (struct ms_region_config){
                .kind = MS_REGION_ROM, .name = "rom", .size = 0x30000},
            at, 0);
        fill_pattern(rom, 3);
        const uint8_t *h = ms_region_host(rom);
        uint64_t page = layout ? PAGE : 0x10000;
        for (uint64_t p = 0; p < 0x30000; p += page) {
            CHECK_EQ(ms_as_ldub(as, at + p + 1, U, NULL), (uint8_t)(3 + p + 1));
        }
        for (uint64_t p = page; p < 0x30000; p += page) {
            (void)ms_as_stq_le(as, at + p - 4, 0, U);
            (void)ms_as_stl_le(as, at + p - 2, 0, U);
            CHECK_EQ(h[p - 1], (uint8_t)(3 + p - 1));
            CHECK_EQ(h[p], (uint8_t)(3 + p));
        }
        teardown();
    }
}

/*
 * The 4 KiB level also remembers pages of device ranges: two devices
 * sharing a page must each get their own accesses, a ROM device's page
 * remembered for writes must keep reads direct (and the reverse when
 * ROMD mode ends), and a removed device must not be called again.  Every
 * access is made several times, so that later ones meet the TLB.  Once
 * with 4 KiB pages in the first level (no RAM), where device pages go too,
 * once with 2 MiB ones (a RAM range).
 */
static void test_tlb_devices_in(int layout)
{
    setup();
    if (layout) {
        add_ram("ram", 0x10000000, UINT64_C(2) << 20);
    }
    struct dev a, b, f;
    dev_plain(&a);
    dev_plain(&b);
    dev_plain(&f);
    ms_region *ra = add_io("a", 0x1000, 0x100, &a);
    add_io("b", 0x1100, 0x100, &b);
    ms_region *rf = add_romdev("flash", 0x3000, 0x100, &f);
    fill_pattern(rf, 0x40);
    ms_tx_result r;
    for (int i = 0; i < 3; i++) {
        a.n = b.n = 0;
        CHECK_EQ(ms_as_ldl_le(as, 0x1004, U, &r), regs_get(&a, 4, 4));
        CHECK_EQ(r, MS_TX_OK);
        CHECK_EQ(ms_as_lduw_le(as, 0x1108, U, &r), regs_get(&b, 8, 2));
        CHECK_EQ(ms_as_stb(as, 0x1010 + (uint64_t)i, 0x70 + (unsigned)i, U),
                 MS_TX_OK);
        CHECK_EQ(ms_as_stb(as, 0x1120, 0x80 + (unsigned)i, U), MS_TX_OK);
        CHECK_EQ(a.n, 2);
        CHECK_EQ(a.calls[0].kind, 'r');
        CHECK_EQ(a.calls[0].offset, 4);
        CHECK_EQ(a.calls[1].kind, 'w');
        CHECK_EQ(a.calls[1].offset, 0x10 + (uint64_t)i);
        CHECK_EQ(b.n, 2);
        CHECK_EQ(b.calls[0].offset, 8);
        CHECK_EQ(b.calls[1].value, 0x80 + (uint64_t)i);
        /* ROMD: writes to the device, reads from the block. */
        f.n = 0;
        CHECK_EQ(ms_as_stb(as, 0x3001, 0x11, U), MS_TX_OK);
        CHECK_EQ(ms_as_ldub(as, 0x3001, U, NULL), 0x41);
        CHECK_EQ(f.n, 1);
        CHECK_EQ(f.calls[0].kind, 'w');
    }
    /* Out of ROMD mode, reads go to the device too. */
    CHECK_OK(ms_region_set_romd(rf, false));
    for (int i = 0; i < 2; i++) {
        f.n = 0;
        CHECK_EQ(ms_as_ldub(as, 0x3001, U, NULL), 0x11); /* its register */
        CHECK_EQ(ms_as_stb(as, 0x3002, 0x22, U), MS_TX_OK);
        CHECK_EQ(f.n, 2);
    }
    CHECK_OK(ms_region_set_romd(rf, true));
    CHECK_EQ(ms_as_ldub(as, 0x3001, U, NULL), 0x41);
    /* Gone: unassigned, no call. */
    REQUIRE(ms_region_del(root, ra) == 0);
    a.n = 0;
    CHECK_EQ(ms_as_ldl_le(as, 0x1004, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    CHECK_EQ(ms_as_stb(as, 0x1004, 1, U), MS_TX_DECODE_ERROR);
    CHECK_EQ(a.n, 0);
    CHECK_EQ(ms_as_lduw_le(as, 0x1108, U, &r), regs_get(&b, 8, 2));
    teardown();
}

static void test_tlb_devices(void)
{
    for (int layout = 0; layout < 2; layout++) {
        test_tlb_devices_in(layout);
    }
}

/*
 * Device pages beside the first level: two devices in one first-level
 * page (4 KiB apart) and a hot RAM page in the same first-level slot,
 * used in turn, typed and buffer accesses; every access must reach its
 * own device once, or RAM, also after a device moves and after one goes.
 */
/*
 * Parts of a 4 KiB page (TLB_PART): RAM ranges smaller than a page, each
 * with its own memory, share one page with a ROM range, a hole and each
 * other.  A range used twice in a row is remembered for its part of the
 * page; every access must still reach its own range's memory, accesses
 * straddling a range end must still fail, and read-only, dirty-logged and
 * moved ranges must still be obeyed.  With @big, a large RAM region makes
 * the first level's pages 2 MiB or more, so the parts sit in the 4 KiB
 * level; without it they sit in the first level.
 */
static void tlb_partial_run(bool big)
{
    setup();
    const uint64_t p = 0x10000;
    if (big) {
        add_ram("big", UINT64_C(1) << 32, UINT64_C(64) << 20);
    }
    ms_region *a = add_ram("a", p, 0x600);
    ms_region *b = add_ram("b", p + 0x600, 0x300);
    ms_region *c = add_region((struct ms_region_config){.kind = MS_REGION_ROM,
                                                        .name = "c",
                                                        .size = 0x200},
                              p + 0x900, 0);
    ms_region *d = add_ram("d", p + 0xc00, 0x400); /* hole before it */
    fill_pattern(a, 0x10);
    fill_pattern(b, 0x40);
    fill_pattern(c, 0x70);
    fill_pattern(d, 0xa0);
    uint8_t *ha = ms_region_host(a), *hb = ms_region_host(b);
    uint8_t *hc = ms_region_host(c), *hd = ms_region_host(d);
    ms_tx_result r;
    uint64_t v;
    for (int round = 0; round < 3; round++) {
        /* Each range twice (remembered), in turn. */
        for (int k = 0; k < 2; k++) {
            memcpy(&v, ha + 0x5f0, 8);
            CHECK_EQ(ms_as_ldq_le(as, p + 0x5f0, U, &r), v);
            CHECK_EQ(r, MS_TX_OK);
        }
        /* Straddling a's end (into b) fails though a's part is cached. */
        CHECK_EQ(ms_as_ldq_le(as, p + 0x5fc, U, &r), 0);
        CHECK_EQ(r, MS_TX_DECODE_ERROR);
        for (int k = 0; k < 2; k++) {
            memcpy(&v, hb + 0x10, 8);
            CHECK_EQ(ms_as_ldq_le(as, p + 0x610, U, &r), v);
            CHECK_EQ(r, MS_TX_OK);
        }
        /* A buffer read across a's end, a's part remembered, takes both
         * ranges' bytes. */
        for (int k = 0; k < 2; k++) {
            memcpy(&v, ha + 0x5f0, 8);
            CHECK_EQ(ms_as_ldq_le(as, p + 0x5f0, U, &r), v);
        }
        uint8_t buf[16], want[16];
        memcpy(want, ha + 0x5f8, 8);
        memcpy(want + 8, hb, 8);
        CHECK_EQ(ms_as_read(as, p + 0x5f8, U, buf, 16), MS_TX_OK);
        CHECK(memcmp(buf, want, 16) == 0);
        /* The whole page: a, b, c, a hole (0, decode error), d. */
        static uint8_t page[0x1000], model[0x1000];
        memcpy(model, ha, 0x600);
        memcpy(model + 0x600, hb, 0x300);
        memcpy(model + 0x900, hc, 0x200);
        memset(model + 0xb00, 0, 0x100);
        memcpy(model + 0xc00, hd, 0x400);
        CHECK_EQ(ms_as_read(as, p, U, page, 0x1000), MS_TX_DECODE_ERROR);
        CHECK(memcmp(page, model, 0x1000) == 0);
        /* Stores to a, remembered for writes, land in a's memory only. */
        for (int k = 0; k < 3; k++) {
            uint64_t x =
                UINT64_C(0x1122334455667700) + (uint64_t)(round * 3 + k);
            CHECK_EQ(ms_as_stq_le(as, p + 0x100, x, U), MS_TX_OK);
            memcpy(&v, ha + 0x100, 8);
            CHECK_EQ(v, x);
            CHECK_EQ(ms_as_write(as, p + 0x200, U, &x, 8), MS_TX_OK);
            memcpy(&v, ha + 0x200, 8);
            CHECK_EQ(v, x);
        }
        /* A buffer write across a's end fills both ranges. */
        memset(buf, 0xe0 + round, 16);
        CHECK_EQ(ms_as_write(as, p + 0x5f8, U, buf, 16), MS_TX_OK);
        CHECK_EQ(ha[0x5ff], 0xe0 + round);
        CHECK_EQ(hb[7], 0xe0 + round);
        CHECK_EQ(hb[8], (uint8_t)(0x40 + 8));
        /* The ROM: reads remembered, writes still refused. */
        uint8_t rom0 = hc[0x20];
        for (int k = 0; k < 3; k++) {
            CHECK_EQ(ms_as_ldub(as, p + 0x920, U, &r), rom0);
            CHECK_EQ(ms_as_stb(as, p + 0x920, (uint8_t)(rom0 + 1), U),
                     MS_TX_DECODE_ERROR);
            uint8_t one = (uint8_t)(rom0 + 2);
            (void)ms_as_write(as, p + 0x920, U, &one, 1);
            CHECK_EQ(hc[0x20], rom0);
        }
        /* The hole, after d was used twice next to it. */
        for (int k = 0; k < 2; k++) {
            memcpy(&v, hd, 8);
            CHECK_EQ(ms_as_ldq_le(as, p + 0xc00, U, &r), v);
        }
        CHECK_EQ(ms_as_ldl_le(as, p + 0xbfc, U, &r), 0);
        CHECK_EQ(r, MS_TX_DECODE_ERROR);
    }

    /* Logged: a's part is remembered for reads only; stores mark. */
    CHECK_OK(ms_region_set_log(a, true, MS_DIRTY_VGA));
    for (int k = 0; k < 3; k++) {
        (void)ms_as_ldq_le(as, p + 0x300, U, &r);
        CHECK_EQ(r, MS_TX_OK);
    }
    CHECK(!ms_region_get_dirty(a, 0, 0x600, MS_DIRTY_VGA));
    CHECK_EQ(ms_as_stq_le(as, p + 0x300, 5, U), MS_TX_OK);
    CHECK(ms_region_get_dirty(a, 0x300, 8, MS_DIRTY_VGA));
    CHECK_EQ(ms_region_test_and_clear_dirty(a, 0, 0x600, MS_DIRTY_VGA), 1);
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(ms_as_stl_le(as, p + 0x400 + 4 * (uint64_t)k, 6, U), MS_TX_OK);
        CHECK(ms_region_get_dirty(a, 0x400, 4, MS_DIRTY_VGA));
        CHECK_EQ(ms_region_test_and_clear_dirty(a, 0, 0x600, MS_DIRTY_VGA), 1);
    }
    CHECK_OK(ms_region_set_log(a, false, MS_DIRTY_VGA));

    /* Written twice (remembered for writes), then read-only: refused. */
    for (int k = 0; k < 2; k++) {
        CHECK_EQ(ms_as_stq_le(as, p + 0x40, 7, U), MS_TX_OK);
    }
    CHECK_OK(ms_region_set_readonly(a, true));
    CHECK_EQ(ms_as_stq_le(as, p + 0x40, 8, U), MS_TX_DECODE_ERROR);
    memcpy(&v, ha + 0x40, 8);
    CHECK_EQ(v, 7);
    CHECK_OK(ms_region_set_readonly(a, false));

    /* b moved away after being remembered: its old place is RAM of a
     * region now below it, or a hole. */
    for (int k = 0; k < 2; k++) {
        memcpy(&v, hb + 0x80, 8);
        CHECK_EQ(ms_as_ldq_le(as, p + 0x680, U, &r), v);
    }
    REQUIRE(ms_region_set_address(b, p + 0x4000) == 0);
    CHECK_EQ(ms_as_ldq_le(as, p + 0x680, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    memcpy(&v, hb + 0x80, 8);
    CHECK_EQ(ms_as_ldq_le(as, p + 0x4080, U, &r), v);
    CHECK_EQ(r, MS_TX_OK);
    teardown();
}

static void test_tlb_partial(void)
{
    tlb_partial_run(false);
    tlb_partial_run(true);
}

static void test_tlb_devices_beside(void)
{
    setup();
    const uint64_t base = UINT64_C(1) << 40; /* slot 0 for any page size */
    ms_region *ram = add_ram("ram", 0, UINT64_C(8) << 20);
    fill_pattern(ram, 0x10);
    struct dev c, d;
    dev_wide(&c);
    dev_plain(&d);
    add_io("c", base, 0x1000, &c);
    ms_region *rd = add_io("d", base + 0x5000, 0x1000, &d);
    uint64_t dat = base + 0x5000;
    uint8_t *h = ms_region_host(ram);
    ms_tx_result r;
    for (int i = 0; i < 40; i++) {
        uint64_t off = (uint64_t)(i * 8) & 0xff8;
        if (i == 20) {
            /* Moved: the old place is a hole, reached by no callback. */
            REQUIRE(ms_region_set_address(rd, base + 0x9000) == 0);
            d.n = 0;
            CHECK_EQ(ms_as_ldl_le(as, dat + off, U, &r), 0);
            CHECK_EQ(r, MS_TX_DECODE_ERROR);
            CHECK_EQ(ms_as_stl_le(as, dat + off, 1, U), MS_TX_DECODE_ERROR);
            CHECK_EQ(d.n, 0);
            dat = base + 0x9000;
        }
        c.n = d.n = 0;
        uint64_t want_ram;
        memcpy(&want_ram, h + off, 8);
        CHECK_EQ(ms_as_ldq_le(as, off, U, &r), want_ram);
        CHECK_EQ(r, MS_TX_OK);
        CHECK_EQ(ms_as_ldq_le(as, base + off, U, &r), regs_get(&c, off, 8));
        CHECK_EQ(r, MS_TX_OK);
        CHECK_EQ(ms_as_ldl_le(as, dat + off, U, &r), regs_get(&d, off, 4));
        CHECK_EQ(r, MS_TX_OK);
        CHECK_EQ(ms_as_stq_le(as, off, want_ram + 1, U), MS_TX_OK);
        CHECK_EQ(ms_as_stl_le(as, base + off, 0x100u + (unsigned)i, U),
                 MS_TX_OK);
        CHECK_EQ(ms_as_stw_le(as, dat + off, 0x200u + (unsigned)i, U),
                 MS_TX_OK);
        uint32_t buf = 0;
        CHECK_EQ(ms_as_read(as, dat + off, U, &buf, 4), MS_TX_OK);
        CHECK_EQ(buf, (uint32_t)regs_get(&d, off, 4));
        CHECK_EQ(c.n, 2);
        CHECK_EQ(c.calls[0].kind, 'r');
        CHECK_EQ(c.calls[0].offset, off);
        CHECK_EQ(c.calls[1].kind, 'w');
        CHECK_EQ(c.calls[1].value, 0x100u + (unsigned)i);
        CHECK_EQ(d.n, 3);
        CHECK_EQ(d.calls[0].kind, 'r');
        CHECK_EQ(d.calls[1].kind, 'w');
        CHECK_EQ(d.calls[1].size, 2);
        CHECK_EQ(d.calls[1].value, 0x200u + (unsigned)i);
        CHECK_EQ(d.calls[2].offset, off);
        uint64_t now;
        memcpy(&now, h + off, 8);
        CHECK_EQ(now, want_ram + 1);
    }
    teardown();
}

/* An IOMMU sending 16-byte page p of 0x2000 bytes to 0x1000 + 0x2000 - 16 *
 * (p + 1) of the address space @opaque. */
static struct ms_iommu_entry reverse_pages(void *opaque, uint64_t addr,
                                           enum ms_iommu_perm flag, int index)
{
    (void)flag;
    (void)index;
    return (struct ms_iommu_entry){.target_as = opaque,
                                   .translated_addr =
                                       0x1000 + 0x2000 - 16 * ((addr >> 4) + 1),
                                   .addr_mask = 15,
                                   .perm = MS_IOMMU_RW};
}

/*
 * Buffer accesses copy a page of small RAM ranges back to back in host
 * memory in one piece: the bytes must be those the range-by-range copy
 * gives, and a logged range or a device in the page must still get their
 * dirty marks and callbacks.
 */
static void test_copy_small_ranges(void)
{
    setup();
    static uint8_t mem[0x3000] __attribute__((aligned(4096)));
    static uint8_t out[0x3000], in[0x3000];
    for (size_t i = 0; i < sizeof(mem); i++) {
        mem[i] = (uint8_t)(i * 13 + 5);
        in[i] = (uint8_t)(i * 7 + 1);
    }
    /* 0x1000-0x2fff in 48-byte ranges of mem, back to back. */
    ms_region *piece[171];
    add_pieces(piece, 171, mem, 0x1000, 48, 0x2000);
    CHECK_EQ(ms_as_read(as, 0x1008, U, out, 0x1ff0), MS_TX_OK);
    CHECK(memcmp(out, mem + 8, 0x1ff0) == 0);
    CHECK_EQ(ms_as_write(as, 0x1010, U, in, 0x1fe0), MS_TX_OK);
    CHECK(memcmp(mem + 0x10, in, 0x1fe0) == 0);
    CHECK_EQ(mem[0xf], (uint8_t)(0xf * 13 + 5));
    CHECK_EQ(mem[0x1ff0], (uint8_t)(0x1ff0 * 13 + 5));
    /* Into the hole after them: the bytes before it are copied. */
    memset(out, 0xee, 0x40);
    CHECK_EQ(ms_as_read(as, 0x2fe0, U, out, 0x40), MS_TX_DECODE_ERROR);
    CHECK(memcmp(out, mem + 0x1fe0, 0x20) == 0);
    /* A logged range in the second page: marked, and written. */
    CHECK_OK(ms_region_set_log(piece[100], true, MS_DIRTY_VGA));
    CHECK_EQ(ms_as_write(as, 0x1000, U, in + 1, 0x2000), MS_TX_OK);
    CHECK(memcmp(mem, in + 1, 0x2000) == 0);
    CHECK(ms_region_get_dirty(piece[100], 0, 48, MS_DIRTY_VGA));
    CHECK_EQ(ms_as_read(as, 0x1000, U, out, 0x2000), MS_TX_OK);
    CHECK(memcmp(out, in + 1, 0x2000) == 0);
    /* Through an IOMMU of 16-byte pages mapped in reverse order: each
     * page is its own piece, the page of ranges notwithstanding. */
    static const struct ms_iommu_ops rev = {.translate = reverse_pages};
    tu_add(root, 0x100000, tu_iommu(sys, "iommu", 0x2000, &rev, as), 0);
    CHECK_EQ(ms_as_read(as, 0x100000, U, out, 0x2000), MS_TX_OK);
    for (unsigned p = 0; p < 0x2000 / 16; p++) {
        CHECK(memcmp(out + 16 * p, in + 1 + 0x2000 - 16 * (p + 1), 16) == 0);
    }
    /* A device over one range of the first page: called for its part. */
    struct dev d;
    dev_plain(&d);
    add_region((struct ms_region_config){.kind = MS_REGION_IO,
                                         .name = "dev",
                                         .size = 48,
                                         .ops = &d.ops,
                                         .opaque = &d},
               0x1000 + 48 * 3, 1);
    CHECK_EQ(ms_as_read(as, 0x1000, U, out, 0x1000), MS_TX_OK);
    CHECK(memcmp(out, in + 1, 48 * 3) == 0);
    CHECK(d.total > 0);
    CHECK_EQ(out[48 * 3], d.regs[0]);
    CHECK(memcmp(out + 48 * 4, in + 1 + 48 * 4, 0x1000 - 48 * 4) == 0);
    teardown();
}

int main(void)
{
    test_ram_basic();
    test_zero_length();
    test_ram_range_end();
    test_holes();
    test_reservation();
    test_open_bus();
    test_wide_access();
    test_hpet_pieces();
    test_impl_min();
    test_accepts();
    test_endianness();
    test_small_registers();
    test_unaligned();
    test_attrs_callbacks();
    test_mixed();
    test_attrs_memory();
    test_rom();
    test_rom_device();
    test_romd_straddle();
    test_ram_device();
    test_readonly_alias();
    test_map();
    test_bounce_budget();
    test_map_pin();
    test_dirty();
    test_ioeventfd();
    test_reentrancy();
    test_reentrancy_keys();
    test_reentrancy_dma();
    test_reentrancy_threads();
    test_topology_change();
    test_tlb_small_ranges();
    test_tlb_big_pages();
    test_tlb_random();
    test_tlb_big_sheets();
    test_tlb_read_only_pages();
    test_tlb_devices();
    test_tlb_devices_beside();
    test_tlb_partial();
    test_copy_small_ranges();
    return ms_test_summary("test_access");
}
