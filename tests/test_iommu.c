/* SPDX-License-Identifier: MIT */
/*
 * IOMMU regions (memory-model.md 7.6): every access path (buffer, fixed
 * size, loader writes, validity checks, DMA maps) translates through them,
 * page by page, into the target address space; permissions, indexes from
 * attributes, chains of IOMMUs, loops, bad targets and re-entry.
 *
 * The IOMMU under test walks a one-level page table that lives in guest
 * RAM (each 8-byte entry: target page address | R (bit 0) | W (bit 1)),
 * read with the access path from inside translate(), as real IOMMU models
 * do.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

#define U MS_ATTRS_UNSPECIFIED
#define PAGE 0x1000u
#define TABLE 0xf000u /* page table in guest RAM */
#define RAM_SIZE 0x10000u
#define MMIO_GPA 0x100000u

struct iommu {
    ms_as *walk_as;   /* where the page table lives */
    ms_as *target_as; /* returned by translate() */
    uint64_t table;
    int calls;
    uint64_t last_addr;
    enum ms_iommu_perm last_flag;
    int last_index;
    /* Scripted misbehaviour. */
    bool no_target;
    bool reenter; /* read the IOMMU's own address space from translate */
    ms_as *self_as;
    ms_tx_result inner_res;
};

static struct ms_iommu_entry translate(void *opaque, uint64_t addr,
                                       enum ms_iommu_perm flag, int index)
{
    struct iommu *io = opaque;
    io->calls++;
    io->last_addr = addr;
    io->last_flag = flag;
    io->last_index = index;
    if (io->reenter) {
        io->reenter = false;
        (void)ms_as_ldl_le(io->self_as, addr, U, &io->inner_res);
    }
    ms_tx_result r;
    uint64_t pte = ms_as_ldq_le(io->walk_as, io->table + (addr / PAGE) * 8, U,
                                &r);
    if (r != MS_TX_OK) {
        pte = 0;
    }
    return (struct ms_iommu_entry){
        .target_as = io->no_target ? NULL : io->target_as,
        .translated_addr = pte & ~(uint64_t)(PAGE - 1),
        .addr_mask = PAGE - 1,
        .perm = (unsigned)(pte & 3),
    };
}

static int index_of(void *opaque, struct ms_attrs attrs)
{
    (void)opaque;
    return attrs.requester_id & 7;
}

static const struct ms_iommu_ops iommu_ops = {.translate = translate};
static const struct ms_iommu_ops iommu_ops_idx = {.translate = translate,
                                                  .attrs_to_index = index_of};

/* An MMIO device that returns offset * 0x11 and records writes. */
static uint64_t last_write_off, last_write_val;
static uint64_t dev_read(void *opaque, uint64_t off, unsigned size)
{
    (void)opaque, (void)size;
    return off * 0x11;
}
static void dev_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
    (void)opaque, (void)size;
    last_write_off = off;
    last_write_val = v;
}
static const struct ms_region_ops dev_ops = {
    .read = dev_read,
    .write = dev_write,
    .valid = {.max_access_size = 8},
    .impl = {.max_access_size = 8},
};

/* ---- fixture: "memory" (RAM + MMIO), "dma" (an IOMMU over "memory") ----- */

static ms_system *sys;
static ms_as *mem, *dma;
static ms_region *mem_root, *dma_root, *ram, *iommu_mr;
static uint8_t *host;
static struct iommu io;

static void pte_set(uint64_t page, uint64_t target, unsigned perm)
{
    uint64_t v = target | perm;
    memcpy(host + TABLE + page * 8, &v, 8);
}

static void setup(const struct ms_iommu_ops *ops)
{
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    ms_system_set_log(sys, tu_log, NULL);
    mem_root = tu_container(sys, "system", MS_SIZE_FULL);
    REQUIRE(ms_as_new(sys, mem_root, "memory", &mem) == 0);
    ram = tu_ram(sys, "ram", RAM_SIZE);
    host = ms_region_host(ram);
    for (unsigned i = 0; i < TABLE; i++) {
        host[i] = (uint8_t)(i ^ (i >> 8));
    }
    tu_add(mem_root, 0, ram, 0);
    tu_add(mem_root, MMIO_GPA,
           tu_region(sys, (struct ms_region_config){.kind = MS_REGION_IO,
                                                    .name = "dev",
                                                    .size = PAGE,
                                                    .ops = &dev_ops}),
           0);

    memset(&io, 0, sizeof(io));
    io.walk_as = mem;
    io.target_as = mem;
    io.table = TABLE;
    dma_root = tu_container(sys, "dma-root", MS_SIZE_FULL);
    REQUIRE(ms_as_new(sys, dma_root, "dma", &dma) == 0);
    io.self_as = dma;
    iommu_mr = tu_iommu(sys, "iommu", UINT64_C(1) << 32, ops, &io);
    tu_add(dma_root, 0, iommu_mr, 0);

    /* IOVA page -> guest page */
    pte_set(1, 0x5000, MS_IOMMU_RW);
    pte_set(2, 0x3000, MS_IOMMU_RW);
    pte_set(3, 0x6000, MS_IOMMU_RO);
    pte_set(4, 0x7000, MS_IOMMU_NONE);
    pte_set(5, MMIO_GPA, MS_IOMMU_RW);
    pte_set(6, 0x8000, MS_IOMMU_RW); /* 6 and 7: contiguous */
    pte_set(7, 0x9000, MS_IOMMU_RW);
    pte_set(8, 0xe000, MS_IOMMU_WO);
    pte_set(9, 0x20000, MS_IOMMU_RW); /* a hole of "memory" */
    tu_log_count = 0;
}

static void teardown(void)
{
    ms_region_unref(mem_root);
    ms_region_unref(dma_root);
    ms_system_free(sys);
    sys = NULL;
}

/* ---- tests ----------------------------------------------------------------
 */

static void test_config(void)
{
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    ms_system_set_log(sys, tu_log, NULL);
    ms_region *r = NULL;
    struct ms_region_config c = {.kind = MS_REGION_IOMMU,
                                 .name = "iommu",
                                 .size = PAGE};
    CHECK_ERR(ms_region_new(sys, &c, &r), EINVAL); /* no ops */
    CHECK(strstr(tu_last_log, "translate") != NULL);
    static const struct ms_iommu_ops empty = {0};
    c.iommu_ops = &empty;
    CHECK_ERR(ms_region_new(sys, &c, &r), EINVAL); /* no translate */
    c.kind = (enum ms_region_kind)(MS_REGION_IOMMU + 1);
    CHECK_ERR(ms_region_new(sys, &c, &r), EINVAL); /* unknown kind */
    CHECK(r == NULL);
    c.kind = MS_REGION_IOMMU;
    c.iommu_ops = &iommu_ops;
    CHECK_OK(ms_region_new(sys, &c, &r));
    CHECK_EQ(ms_region_kind(r), MS_REGION_IOMMU);
    CHECK(ms_region_terminates(r));
    CHECK_STR(ms_region_type_name(r), "i/o"); /* as `info mtree` prints */
    CHECK(ms_region_host(r) == NULL);
    ms_region_unref(r);
    ms_system_free(sys);
    sys = NULL;
}

static void test_view(void)
{
    setup(&iommu_ops);
    char *flat = tu_flat_lines(dma);
    CHECK_STR(flat, "0000000000000000-00000000ffffffff i/o iommu\n");
    free(flat);
    /* Global dirty tracking logs IOMMUs too (spec 6.1). */
    CHECK_EQ(ms_region_log_mask(iommu_mr), 0);
    CHECK_OK(ms_dirty_global_start(sys, MS_GLOBAL_DIRTY_MIGRATION));
    CHECK_EQ(ms_region_log_mask(iommu_mr), 1u << MS_DIRTY_MIGRATION);
    uint64_t v = 0;
    CHECK_EQ(ms_as_read(dma, 0x1000, U, &v, 8), MS_TX_OK); /* still works */
    CHECK_OK(ms_dirty_global_stop(sys, MS_GLOBAL_DIRTY_MIGRATION));
    teardown();
}

static void test_buffer(void)
{
    setup(&iommu_ops);
    uint8_t buf[32];

    /* One page: offset kept, page replaced. */
    CHECK_EQ(ms_as_read(dma, 0x1010, U, buf, 8), MS_TX_OK);
    CHECK(memcmp(buf, host + 0x5010, 8) == 0);
    CHECK_EQ(io.last_addr, 0x1010);
    CHECK_EQ(io.last_flag, MS_IOMMU_RO);
    CHECK_EQ(io.last_index, 0);

    /* Crossing an IOMMU page: two translations, two target pages. */
    io.calls = 0;
    CHECK_EQ(ms_as_read(dma, 0x1ff8, U, buf, 16), MS_TX_OK);
    CHECK(memcmp(buf, host + 0x5ff8, 8) == 0);
    CHECK(memcmp(buf + 8, host + 0x3000, 8) == 0);
    CHECK_EQ(io.calls, 2);
    CHECK_EQ(io.last_addr, 0x2000);

    /* Writes land in the target and are translated for writing. */
    memset(buf, 0xa5, sizeof(buf));
    CHECK_EQ(ms_as_write(dma, 0x1ffc, U, buf, 8), MS_TX_OK);
    CHECK_EQ(io.last_flag, MS_IOMMU_WO);
    CHECK_EQ(host[0x5fff], 0xa5);
    CHECK_EQ(host[0x3003], 0xa5);
    CHECK_EQ(host[0x3004], (uint8_t)(0x3004 ^ 0x30));

    /* Read-only page: reads pass, writes are refused as unassigned. */
    CHECK_EQ(ms_as_read(dma, 0x3000, U, buf, 4), MS_TX_OK);
    CHECK(memcmp(buf, host + 0x6000, 4) == 0);
    uint8_t before = host[0x6000];
    tu_log_count = 0;
    CHECK_EQ(ms_as_write(dma, 0x3000, U, buf, 4), MS_TX_DECODE_ERROR);
    CHECK_EQ(host[0x6000], before);
    CHECK(tu_log_count > 0); /* the unassigned rules log it */

    /* Write-only page. */
    memset(buf, 0xff, 4);
    CHECK_EQ(ms_as_read(dma, 0x8000, U, buf, 4), MS_TX_DECODE_ERROR);
    CHECK_EQ(buf[0], 0);
    CHECK_EQ(ms_as_write(dma, 0x8000, U, "wxyz", 4), MS_TX_OK);
    CHECK(memcmp(host + 0xe000, "wxyz", 4) == 0);

    /* No permission at all; unmapped IOVA (entry 0). */
    memset(buf, 0xff, 8);
    CHECK_EQ(ms_as_read(dma, 0x4000, U, buf, 8), MS_TX_DECODE_ERROR);
    CHECK_EQ(buf[0], 0);
    CHECK_EQ(buf[7], 0);
    CHECK_EQ(ms_as_read(dma, 0xa0000, U, buf, 8), MS_TX_DECODE_ERROR);

    /* A translation into a hole of the target. */
    CHECK_EQ(ms_as_read(dma, 0x9000, U, buf, 4), MS_TX_DECODE_ERROR);

    /* A piece refused in the middle: the rest still happens. */
    memset(buf, 0xee, sizeof(buf));
    CHECK_EQ(ms_as_read(dma, 0x3ffc, U, buf, 8), MS_TX_DECODE_ERROR);
    CHECK(memcmp(buf, host + 0x6ffc, 4) == 0);
    CHECK_EQ(buf[4], 0);

    /* MMIO behind the IOMMU: offsets are the device's. */
    uint64_t v = 0;
    CHECK_EQ(ms_as_read(dma, 0x5008, U, &v, 8), MS_TX_OK);
    CHECK_EQ(v, 8 * 0x11);
    CHECK_EQ(ms_as_write(dma, 0x5010, U, &v, 8), MS_TX_OK);
    CHECK_EQ(last_write_off, 0x10);
    CHECK_EQ(last_write_val, 8 * 0x11);

    /* attrs.memory: RAM behind an IOMMU is RAM; MMIO is refused. */
    struct ms_attrs mem_only = {.memory = 1};
    CHECK_EQ(ms_as_read(dma, 0x1000, mem_only, buf, 4), MS_TX_OK);
    CHECK_EQ(ms_as_read(dma, 0x5000, mem_only, buf, 4), MS_TX_ACCESS_ERROR);

    /* The owner's address space is untouched by all this. */
    CHECK_EQ(ms_as_read(mem, 0x1010, U, buf, 8), MS_TX_OK);
    CHECK(memcmp(buf, host + 0x1010, 8) == 0);
    teardown();
}

static void test_fixed_size(void)
{
    setup(&iommu_ops);
    ms_tx_result r = 0;
    uint64_t want;
    memcpy(&want, host + 0x5008, 8);
    CHECK_EQ(ms_as_ldq_le(dma, 0x1008, U, &r), want);
    CHECK_EQ(r, MS_TX_OK);
    CHECK_EQ(ms_as_ldub(dma, 0x2001, U, &r), host[0x3001]);
    CHECK_EQ(ms_as_lduw_be(dma, 0x2002, U, &r),
             (uint16_t)(host[0x3002] << 8 | host[0x3003]));

    CHECK_EQ(ms_as_stl_le(dma, 0x1100, 0x11223344, U), MS_TX_OK);
    CHECK_EQ(host[0x5100], 0x44);
    CHECK_EQ(host[0x5103], 0x11);
    CHECK_EQ(ms_as_stq_be(dma, 0x3000, 1, U), MS_TX_DECODE_ERROR); /* RO */

    /* Straddling the IOMMU page end: the clamped piece is shorter than
     * the access, which then meets RAM's unassigned ops (QEMU). */
    CHECK_EQ(ms_as_ldq_le(dma, 0x1ffc, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    CHECK_EQ(ms_as_stq_le(dma, 0x1ffc, 0, U), MS_TX_DECODE_ERROR);

    /* MMIO target. */
    CHECK_EQ(ms_as_ldl_le(dma, 0x5004, U, &r), 4 * 0x11);
    CHECK_EQ(r, MS_TX_OK);
    CHECK_EQ(ms_as_stw_le(dma, 0x5006, 0xbeef, U), MS_TX_OK);
    CHECK_EQ(last_write_off, 6);
    CHECK_EQ(last_write_val, 0xbeef);

    /* Denied. */
    CHECK_EQ(ms_as_ldl_le(dma, 0x4000, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    teardown();
}

static void test_index(void)
{
    setup(&iommu_ops_idx);
    struct ms_attrs a = {.requester_id = 0x25};
    uint8_t b;
    CHECK_EQ(ms_as_read(dma, 0x1000, a, &b, 1), MS_TX_OK);
    CHECK_EQ(io.last_index, 5);
    CHECK_EQ(ms_as_ldub(dma, 0x1000, (struct ms_attrs){.requester_id = 3},
                        NULL),
             host[0x5000]);
    CHECK_EQ(io.last_index, 3);
    teardown();
}

static void test_write_rom_and_valid(void)
{
    setup(&iommu_ops);
    CHECK_EQ(ms_as_write_rom(dma, 0x1ffe, U, "abcd", 4), MS_TX_OK);
    CHECK(memcmp(host + 0x5ffe, "ab", 2) == 0);
    CHECK(memcmp(host + 0x3000, "cd", 2) == 0);
    CHECK_EQ(io.last_flag, MS_IOMMU_WO);

    CHECK(ms_as_access_valid(dma, 0x1000, 0x2000, false, U));
    CHECK(ms_as_access_valid(dma, 0x3000, 8, false, U));
    CHECK(!ms_as_access_valid(dma, 0x3000, 8, true, U)); /* read-only */
    CHECK(!ms_as_access_valid(dma, 0x4000, 1, false, U)); /* no perm */
    CHECK(ms_as_access_valid(dma, 0x5000, 8, true, U));  /* MMIO */
    teardown();
}

static void test_map(void)
{
    setup(&iommu_ops);
    struct ms_map m;
    uint64_t len = 0x2000;
    uint8_t *p = ms_as_map(dma, 0x1800, &len, true, U, &m);
    CHECK(p == host + 0x5800);
    CHECK_EQ(len, 0x800); /* page 2 is not contiguous */
    memset(p, 0x77, len);
    ms_as_unmap(&m, len);
    CHECK_EQ(host[0x5fff], 0x77);

    /* Pages 6 and 7 are contiguous in RAM: one mapping. */
    len = 0x2000;
    p = ms_as_map(dma, 0x6000, &len, false, U, &m);
    CHECK(p == host + 0x8000);
    CHECK_EQ(len, 0x2000);
    ms_as_unmap(&m, 0);

    /* MMIO behind the IOMMU: a bounce buffer filled through it. */
    len = 0x100;
    p = ms_as_map(dma, 0x5000, &len, false, U, &m);
    REQUIRE(p != NULL);
    CHECK_EQ(len, 0x100);
    uint64_t v;
    memcpy(&v, p + 0x10, 8);
    CHECK_EQ(v, 0x10 * 0x11);
    ms_as_unmap(&m, 0);

    /* Write mapping of a read-only page: bounced, written back through
     * the IOMMU at unmap, and refused there. */
    uint8_t before = host[0x6000];
    len = 4;
    p = ms_as_map(dma, 0x3000, &len, true, U, &m);
    REQUIRE(p != NULL);
    CHECK(p != host + 0x6000);
    memset(p, 0, 4);
    ms_as_unmap(&m, 4);
    CHECK_EQ(host[0x6000], before);
    teardown();
}

static void test_dirty(void)
{
    setup(&iommu_ops);
    CHECK_OK(ms_region_set_log(ram, true, MS_DIRTY_VGA));
    CHECK(!ms_region_get_dirty(ram, 0x5000, PAGE, MS_DIRTY_VGA));
    CHECK_EQ(ms_as_stl_le(dma, 0x1000, 1, U), MS_TX_OK);
    CHECK(ms_region_get_dirty(ram, 0x5000, PAGE, MS_DIRTY_VGA));
    CHECK(!ms_region_get_dirty(ram, 0x1000, PAGE, MS_DIRTY_VGA));
    CHECK_EQ(ms_as_write(dma, 0x2000, U, "x", 1), MS_TX_OK);
    CHECK(ms_region_get_dirty(ram, 0x3000, PAGE, MS_DIRTY_VGA));
    CHECK_OK(ms_region_set_log(ram, false, MS_DIRTY_VGA));
    teardown();
}

/* Two IOMMUs in a row: "dma2" -> "dma" -> "memory". */
static void test_chain(void)
{
    setup(&iommu_ops);
    /* The second IOMMU's table: IOVA page 0x10 -> dma page 1. */
    struct iommu io2 = {.walk_as = mem, .target_as = dma, .table = 0xe800};
    uint64_t pte = 0x1000 | MS_IOMMU_RW;
    memcpy(host + 0xe800 + 0x10 * 8, &pte, 8);
    ms_region *root2 = tu_container(sys, "dma2-root", MS_SIZE_FULL);
    ms_as *dma2;
    REQUIRE(ms_as_new(sys, root2, "dma2", &dma2) == 0);
    ms_region *iommu2 =
        tu_iommu(sys, "iommu2", UINT64_C(1) << 32, &iommu_ops, &io2);
    tu_add(root2, 0, iommu2, 0);
    ms_tx_result r;
    uint64_t want;
    memcpy(&want, host + 0x5020, 8);
    CHECK_EQ(ms_as_ldq_le(dma2, 0x10020, U, &r), want);
    CHECK_EQ(r, MS_TX_OK);
    CHECK_EQ(io2.last_addr, 0x10020);
    CHECK_EQ(io.last_addr, 0x1020);
    ms_region_unref(root2);
    teardown();
}

/* An IOMMU whose translation leads back to itself, forever. */
static void test_loop(void)
{
    setup(&iommu_ops);
    io.target_as = dma; /* page 1 -> dma 0x5000 -> dma 0x5000 ... */
    pte_set(5, 0x5000, MS_IOMMU_RW);
    tu_log_count = 0;
    ms_tx_result r;
    CHECK_EQ(ms_as_ldl_le(dma, 0x5000, U, &r), 0);
    CHECK_EQ(r, MS_TX_DECODE_ERROR);
    CHECK(strstr(tu_last_log, "nothing is mapped") != NULL ||
          strstr(tu_last_log, "IOMMU") != NULL);
    CHECK_EQ(io.calls, 16);
    bool loop_logged = tu_log_count >= 2;
    CHECK(loop_logged);
    teardown();
}

static void test_bad_targets(void)
{
    setup(&iommu_ops);
    io.no_target = true;
    tu_log_count = 0;
    uint8_t b = 0xff;
    CHECK_EQ(ms_as_read(dma, 0x1000, U, &b, 1), MS_TX_DECODE_ERROR);
    CHECK_EQ(b, 0);
    CHECK(tu_log_count >= 1);
    io.no_target = false;

    /* An address space of another system. */
    ms_system *other;
    REQUIRE(ms_system_new(NULL, &other) == 0);
    ms_region *oroot = tu_container(other, "other", MS_SIZE_FULL);
    ms_as *oas;
    REQUIRE(ms_as_new(other, oroot, "other", &oas) == 0);
    io.target_as = oas;
    tu_log_count = 0;
    CHECK_EQ(ms_as_write(dma, 0x1000, U, "z", 1), MS_TX_DECODE_ERROR);
    CHECK(strstr(tu_last_log, "another system") != NULL ||
          tu_log_count >= 2);
    CHECK(host[0x5000] != 'z');
    io.target_as = mem;
    ms_region_unref(oroot);
    ms_system_free(other);
    teardown();
}

/* translate() reading its own IOMMU's address space is refused. */
static void test_reentry(void)
{
    setup(&iommu_ops);
    io.reenter = true;
    io.inner_res = MS_TX_OK;
    ms_tx_result r;
    uint64_t want;
    memcpy(&want, host + 0x5000, 8);
    CHECK_EQ(ms_as_ldq_le(dma, 0x1000, U, &r), want); /* outer works */
    CHECK_EQ(r, MS_TX_OK);
    CHECK_EQ(io.inner_res, MS_TX_DECODE_ERROR); /* inner refused */
    CHECK_EQ(io.calls, 1);                      /* and never translated */
    /* Refusal is per access: the next one translates normally. */
    CHECK_EQ(ms_as_ldq_le(dma, 0x1000, U, &r), want);
    CHECK_EQ(io.calls, 2);
    teardown();
}

/* The IOMMU's mapping is read on every access: changes apply at once. */
static void test_remap(void)
{
    setup(&iommu_ops);
    CHECK_EQ(ms_as_ldub(dma, 0x1000, U, NULL), host[0x5000]);
    pte_set(1, 0x2000, MS_IOMMU_RW);
    CHECK_EQ(ms_as_ldub(dma, 0x1000, U, NULL), host[0x2000]);
    /* Moving the IOMMU in its address space moves the IOVA window. */
    CHECK_OK(ms_region_set_address(iommu_mr, 0x100000));
    CHECK_EQ(ms_as_ldub(dma, 0x1000, U, NULL), 0);
    CHECK_EQ(ms_as_ldub(dma, 0x101000, U, NULL), host[0x2000]);
    CHECK_EQ(io.last_addr, 0x1000); /* offsets into the IOMMU region */
    teardown();
}

int main(void)
{
    test_config();
    test_view();
    test_buffer();
    test_fixed_size();
    test_index();
    test_write_rom_and_valid();
    test_map();
    test_dirty();
    test_chain();
    test_loop();
    test_bad_targets();
    test_reentry();
    test_remap();
    return ms_test_summary("test_iommu");
}
