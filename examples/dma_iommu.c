/* SPDX-License-Identifier: MIT */
/*
 * A DMA engine behind an IOMMU, built with memspace.
 *
 * The guest's memory ("memory": 1 MiB of RAM and a UART) is what the CPU
 * sees.  A device does its DMA in its own address space ("dma"), which is
 * one IOMMU region: every device access is translated, page by page,
 * through a page table the guest keeps in its RAM (one 8-byte entry per
 * 4 KiB I/O page: guest page address | read bit | write bit), and lands in
 * "memory".  The device copies a buffer between two I/O addresses, maps a
 * descriptor for DMA, writes to the UART through the IOMMU, and is stopped
 * by the IOMMU when it writes to a page the guest made read-only or never
 * mapped.  The library's guest-error messages go to the log hook.
 */
#include <inttypes.h>
#include <memspace/memspace.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x)                                                             \
    do {                                                                     \
        int err_ = (x);                                                      \
        if (err_ < 0) {                                                      \
            fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__,   \
                    #x, err_);                                               \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#define A MS_ATTRS_UNSPECIFIED
#define IO_PAGE 0x1000u
#define PT_BASE 0x80000u     /* the IOMMU's page table, in guest RAM */
#define UART_GPA 0x10000000u /* the UART, in guest physical memory */

/* ---- the UART: prints what is written to its data register ---- */

static uint64_t uart_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque, (void)size;
    return offset == 5 ? 0x60 : 0;
}

static void uart_write(void *opaque, uint64_t offset, uint64_t value,
                       unsigned size)
{
    (void)opaque, (void)size;
    if (offset == 0) {
        putchar((int)value);
    }
}

static const struct ms_region_ops uart_ops = {
    .read = uart_read,
    .write = uart_write,
    .valid = {.min_access_size = 1, .max_access_size = 1},
};

/* ---- the IOMMU: walks the guest's page table on every translation ---- */

struct iommu {
    ms_as *memory; /* where the table lives and where accesses go */
    unsigned walks;
};

static struct ms_iommu_entry iommu_translate(void *opaque, uint64_t iova,
                                             enum ms_iommu_perm flag, int idx)
{
    struct iommu *mmu = opaque;
    (void)flag, (void)idx;
    mmu->walks++;
    ms_tx_result r;
    uint64_t pte =
        ms_as_ldq_le(mmu->memory, PT_BASE + iova / IO_PAGE * 8, A, &r);
    return (struct ms_iommu_entry){
        .target_as = mmu->memory,
        .translated_addr = r == MS_TX_OK ? pte & ~(uint64_t)(IO_PAGE - 1) : 0,
        .addr_mask = IO_PAGE - 1,
        .perm = r == MS_TX_OK ? (unsigned)(pte & MS_IOMMU_RW) : 0,
    };
}

static const struct ms_iommu_ops iommu_ops = {.translate = iommu_translate};

/* The guest maps I/O page @iova to guest page @gpa (what a driver does). */
static void guest_map(ms_as *memory, uint64_t iova, uint64_t gpa,
                      unsigned perm)
{
    ms_tx_result r =
        ms_as_stq_le(memory, PT_BASE + iova / IO_PAGE * 8, gpa | perm, A);
    if (r != MS_TX_OK) {
        fprintf(stderr, "page table write failed\n");
        exit(1);
    }
}

static void on_log(void *opaque, enum ms_log_level level, const char *msg)
{
    (void)opaque, (void)level;
    printf("  [log] %s\n", msg);
}

static ms_region *mk(ms_system *sys, struct ms_region_config cfg)
{
    ms_region *r;
    CHECK(ms_region_new(sys, &cfg, &r));
    return r;
}

static void place(ms_region *c, uint64_t off, ms_region *sub)
{
    CHECK(ms_region_add(c, off, sub));
    ms_region_unref(sub);
}

static const char *result(ms_tx_result r)
{
    return r == MS_TX_OK                   ? "ok"
           : r & MS_TX_ACCESS_ERROR        ? "access error"
           : r & MS_TX_DECODE_ERROR        ? "decode error"
                                           : "error";
}

int main(void)
{
    ms_system *sys;
    CHECK(ms_system_new(NULL, &sys));
    ms_system_set_log(sys, on_log, NULL);

    /* What the CPU sees. */
    ms_region *system = mk(sys, (struct ms_region_config){
                                    .kind = MS_REGION_CONTAINER,
                                    .name = "system",
                                    .size = MS_SIZE_FULL});
    ms_as *memory;
    CHECK(ms_as_new(sys, system, "memory", &memory));
    ms_region *ram = mk(sys, (struct ms_region_config){.kind = MS_REGION_RAM,
                                                       .name = "ram",
                                                       .size = 1 << 20});
    place(system, 0, ram);
    place(system, UART_GPA,
          mk(sys, (struct ms_region_config){.kind = MS_REGION_IO,
                                            .name = "uart",
                                            .size = 8,
                                            .ops = &uart_ops}));

    /* What the device sees: 4 GiB of I/O addresses behind the IOMMU. */
    struct iommu mmu = {.memory = memory};
    ms_region *dma_root = mk(sys, (struct ms_region_config){
                                      .kind = MS_REGION_CONTAINER,
                                      .name = "dma-root",
                                      .size = MS_SIZE_FULL});
    ms_as *dma;
    CHECK(ms_as_new(sys, dma_root, "dma", &dma));
    place(dma_root, 0,
          mk(sys, (struct ms_region_config){.kind = MS_REGION_IOMMU,
                                            .name = "iommu",
                                            .size = UINT64_C(1) << 32,
                                            .iommu_ops = &iommu_ops,
                                            .opaque = &mmu}));
    /* Several bounce buffers at once for this device (later QEMU's rule). */
    CHECK(ms_as_set_bounce_budget(dma, 4096));

    char *tree;
    CHECK(ms_mtree_to_string(sys, 0, &tree));
    fputs(tree, stdout);
    free(tree);

    /* The guest driver sets up its buffers and the page table. */
    const char msg[] = "hello through the IOMMU";
    ms_as_write(memory, 0x3000, A, msg, sizeof(msg));
    guest_map(memory, 0x10000, 0x3000, MS_IOMMU_RO);  /* source */
    guest_map(memory, 0x20000, 0x7000, MS_IOMMU_RW);  /* destination */
    guest_map(memory, 0x21000, 0x5000, MS_IOMMU_RW);  /* ...not contiguous */
    guest_map(memory, 0x30000, UART_GPA, MS_IOMMU_WO); /* the UART */

    /* 1. Copy the message to the end of the destination's first page, so
     * that it continues on the second: two translations. */
    char buf[sizeof(msg)];
    uint64_t dst = 0x21000 - 10;
    printf("copy: read %s", result(ms_as_read(dma, 0x10000, A, buf,
                                                sizeof(buf))));
    printf(", write %s\n", result(ms_as_write(dma, dst, A, buf, sizeof(buf))));
    char got[sizeof(msg)];
    ms_as_read(memory, 0x7000 + IO_PAGE - 10, A, got, 10);
    ms_as_read(memory, 0x5000, A, got + 10, sizeof(got) - 10);
    printf("guest RAM now holds \"%s\" (at 0x%x and 0x5000)\n", got,
           0x7000 + IO_PAGE - 10);

    /* 2. Map the destination for DMA: a direct pointer into guest RAM,
     * as long as the I/O pages stay contiguous in RAM. */
    struct ms_map m;
    uint64_t len = 2 * IO_PAGE;
    void *p = ms_as_map(dma, 0x20000, &len, true, A, &m);
    printf("map 0x20000 (8 KiB): %s, %" PRIu64 " bytes\n",
           p == (char *)ms_region_host(ram) + 0x7000 ? "direct" : "other",
           len);
    ms_as_unmap(&m, 0);

    /* 3. The device writes a line to the UART through the IOMMU. */
    const char line[] = "uart via DMA\n";
    printf("uart: ");
    for (size_t i = 0; i < sizeof(line) - 1; i++) {
        ms_as_stb(dma, 0x30000, (uint8_t)line[i], A);
    }

    /* 4. The IOMMU stops what the guest did not allow. */
    printf("write to the read-only source: %s\n",
           result(ms_as_write(dma, 0x10000, A, "x", 1)));
    printf("read of an unmapped I/O page: %s\n",
           result(ms_as_read(dma, 0x40000, A, buf, 4)));

    /* 5. The guest revokes the destination: the next access sees it. */
    guest_map(memory, 0x20000, 0, MS_IOMMU_NONE);
    printf("write after revocation: %s\n",
           result(ms_as_write(dma, 0x20000, A, buf, 4)));
    printf("%u translations\n", mmu.walks);

    ms_region_unref(system);
    ms_region_unref(dma_root);
    ms_system_free(sys);
    return 0;
}
