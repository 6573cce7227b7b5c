/* SPDX-License-Identifier: MIT */
/*
 * Accesses through an IOMMU while the owner thread changes both address
 * spaces under them: two threads read and write a DMA address space whose
 * IOMMU translates into "memory", where the owner swaps the RAM behind the
 * translated page (two regions at one address, one toggled above the
 * other, the lower one removed, freed and re-created) and moves the IOMMU
 * itself.  Each access must see one of the states that existed: page A's
 * words, page B's words, or a hole (0 and MS_TX_DECODE_ERROR), never a mix
 * within one 8-byte load and never freed memory.  Threads write back the
 * word they read, which may land on the other page by then: words move
 * between the pages but stay whole.  Clean under ASan and TSan (label
 * "thread").
 */
#include <pthread.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

#define U MS_ATTRS_UNSPECIFIED
#define PAGE 0x1000u
#define TARGET 0x10000u /* where A and B live in "memory" */
#define WORD_A UINT64_C(0x1111111111111111)
#define WORD_B UINT64_C(0x2222222222222222)

static ms_as *mem, *dma;
static int stop;     /* atomic */
static int failures; /* atomic */
static unsigned long reads[2], holes[2];

/* Every I/O page goes to TARGET, read and write. */
static struct ms_iommu_entry translate(void *opaque, uint64_t addr,
                                       enum ms_iommu_perm flag, int index)
{
    (void)addr, (void)flag, (void)index;
    return (struct ms_iommu_entry){.target_as = opaque,
                                   .translated_addr = TARGET,
                                   .addr_mask = PAGE - 1,
                                   .perm = MS_IOMMU_RW};
}

static const struct ms_iommu_ops iommu_ops = {.translate = translate};

static void *reader(void *arg)
{
    int me = (int)(uintptr_t)arg;
    /* The IOMMU sits at 0 or at 1 MiB of "dma": try both. */
    static const uint64_t at[] = {0, 0x100000};
    unsigned i = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        /* Guest memory is not synchronised (as on hardware): each thread
         * keeps to its own half of the words, 31 + 1 of them. */
        uint64_t gpa = at[i & 1] + 8 * (32 * (unsigned)me + i % 31);
        ms_tx_result r;
        uint64_t v = ms_as_ldq_le(dma, gpa, U, &r);
        bool ok = (r == MS_TX_OK && (v == WORD_A || v == WORD_B)) ||
                  (r == MS_TX_DECODE_ERROR && v == 0);
        if (r == MS_TX_DECODE_ERROR) {
            holes[me]++;
        }
        uint64_t two[2] = {1, 1};
        ms_tx_result rb = ms_as_read(dma, gpa, U, two, sizeof(two));
        ok = ok && (rb == MS_TX_OK || rb == MS_TX_DECODE_ERROR);
        for (int k = 0; k < 2; k++) {
            ok = ok && (two[k] == WORD_A || two[k] == WORD_B || two[k] == 0);
        }
        /* Write back the word read (A or B stays A or B). */
        if ((i & 7) == 0 && r == MS_TX_OK) {
            ms_tx_result rw = ms_as_stq_le(dma, gpa, v, U);
            ok = ok && (rw == MS_TX_OK || rw == MS_TX_DECODE_ERROR);
        }
        if (!ok && __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED) <= 5) {
            fprintf(stderr,
                    "gpa 0x%llx: ldq 0x%llx result %u; read 0x%llx 0x%llx "
                    "result %u\n",
                    (unsigned long long)gpa, (unsigned long long)v, r,
                    (unsigned long long)two[0], (unsigned long long)two[1],
                    rb);
        }
        reads[me]++;
        i++;
    }
    return NULL;
}

static ms_region *page_region(ms_system *sys, const char *name,
                              uint64_t *words)
{
    return tu_region(sys, (struct ms_region_config){.kind = MS_REGION_RAM,
                                                    .name = name,
                                                    .size = PAGE,
                                                    .backing = MS_RAM_HOST,
                                                    .host = words});
}

int main(int argc, char **argv)
{
    unsigned edits = argc > 1 ? (unsigned)atoi(argv[1]) : 3000;
    static uint64_t a_mem[PAGE / 8], b_mem[PAGE / 8];
    for (unsigned i = 0; i < PAGE / 8; i++) {
        a_mem[i] = WORD_A;
        b_mem[i] = WORD_B;
    }
    ms_system *sys;
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    ms_region *sysroot = tu_container(sys, "system", MS_SIZE_FULL);
    REQUIRE(ms_as_new(sys, sysroot, "memory", &mem) == 0);
    ms_region *a = page_region(sys, "a", a_mem);
    REQUIRE(ms_region_add_prio(sysroot, TARGET, a, 1) == 0);
    ms_region *b = page_region(sys, "b", b_mem);
    REQUIRE(ms_region_add_prio(sysroot, TARGET, b, 0) == 0);
    ms_region_unref(b);

    ms_region *dmaroot = tu_container(sys, "dma-root", MS_SIZE_FULL);
    REQUIRE(ms_as_new(sys, dmaroot, "dma", &dma) == 0);
    ms_region *iommu = tu_iommu(sys, "iommu", 0x10000, &iommu_ops, mem);
    REQUIRE(ms_region_add(dmaroot, 0, iommu) == 0);

    pthread_t th[2];
    for (uintptr_t i = 0; i < 2; i++) {
        REQUIRE(pthread_create(&th[i], NULL, reader, (void *)i) == 0);
    }
    for (unsigned t = 0; t < edits; t++) {
        switch (t % 4) {
        case 0: /* A off: B shows */
        case 2: /* A back on */
            REQUIRE(ms_region_set_enabled(a, t % 4 == 2) == 0);
            break;
        case 1: /* B removed and freed, then a new B, maybe both hidden */
            REQUIRE(ms_region_set_enabled(a, false) == 0);
            REQUIRE(ms_region_del(sysroot, b) == 0); /* frees it */
            b = page_region(sys, "b", b_mem);
            REQUIRE(ms_region_add_prio(sysroot, TARGET, b, 0) == 0);
            ms_region_unref(b);
            break;
        default: /* the IOMMU moves in "dma" */
            REQUIRE(ms_region_set_address(iommu, (t / 4) % 2 ? 0x100000 : 0) ==
                    0);
            break;
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
    }
    printf("%u edits; reads %lu + %lu, of them holes %lu + %lu\n", edits,
           reads[0], reads[1], holes[0], holes[1]);
    CHECK_EQ(failures, 0);
    CHECK(reads[0] > 0 && reads[1] > 0);
    /* A write may land on the other page than the read before it: words
     * move between the pages, but only whole words. */
    for (unsigned i = 0; i < PAGE / 8; i++) {
        if ((a_mem[i] != WORD_A && a_mem[i] != WORD_B) ||
            (b_mem[i] != WORD_A && b_mem[i] != WORD_B)) {
            CHECK(!"a torn word in RAM");
            break;
        }
    }
    ms_region_unref(iommu);
    ms_region_unref(a);
    ms_region_unref(sysroot);
    ms_region_unref(dmaroot);
    ms_system_free(sys);
    return ms_test_summary("test_iommu_threads");
}
