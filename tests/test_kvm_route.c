/* SPDX-License-Identifier: MIT */
/*
 * Exit routing of the vCPU helper without a kernel: hand-made kvm_run
 * records (MMIO reads and writes of every size, port I/O including string
 * I/O with count > 1, which some hosts batch and others do not) go through
 * ms__kvm_route() to devices on the memory and I/O address spaces.
 */
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kvm/kvm_int.h"
#include "kvm_model.h"
#include "testutil.h"

struct rec {
    char log[1024];
    size_t len;
};

static uint64_t rd(void *opaque, uint64_t off, unsigned size)
{
    struct rec *r = opaque;
    r->len += (size_t)snprintf(r->log + r->len, sizeof(r->log) - r->len,
                               "r%u@%llx ", size, (unsigned long long)off);
    return 0x8877665544332211ull >> (8 * (off & 7));
}

static void wr(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
    struct rec *r = opaque;
    r->len += (size_t)snprintf(r->log + r->len, sizeof(r->log) - r->len,
                               "w%u@%llx=%llx ", size, (unsigned long long)off,
                               (unsigned long long)v);
}

static const struct ms_region_ops ops = {
    .read = rd,
    .write = wr,
    .endianness = MS_ENDIAN_LITTLE,
    .valid = {.max_access_size = 8},
    .impl = {.min_access_size = 1, .max_access_size = 8},
};

int main(void)
{
    ms_system *sys;
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    ms_region *root = tu_container(sys, "system", MS_SIZE_FULL);
    ms_region *io = tu_container(sys, "io", 0x10000);
    struct rec mr = {0}, pr = {0};
    ms_region *dev = NULL, *port = NULL, *ram = tu_ram(sys, "ram", 0x1000);
    REQUIRE(ms_region_new(sys,
                          &(struct ms_region_config){.kind = MS_REGION_IO,
                                                     .name = "dev",
                                                     .size = 0x100,
                                                     .ops = &ops,
                                                     .opaque = &mr},
                          &dev) == 0);
    REQUIRE(ms_region_new(sys,
                          &(struct ms_region_config){.kind = MS_REGION_IO,
                                                     .name = "port",
                                                     .size = 8,
                                                     .ops = &ops,
                                                     .opaque = &pr},
                          &port) == 0);
    REQUIRE(ms_region_add(root, 0x1000, dev) == 0);
    REQUIRE(ms_region_add(root, 0x2000, ram) == 0);
    REQUIRE(ms_region_add(io, 0x3f8, port) == 0);
    ms_as *mem, *ioas;
    REQUIRE(ms_as_new(sys, root, "memory", &mem) == 0);
    REQUIRE(ms_as_new(sys, io, "I/O", &ioas) == 0);
    struct kvm_model m;
    kvm_model_init(&m, 32, 4096);
    struct ms_kvm_config cfg = {.ops = &kvm_model_ops, .ops_opaque = &m};
    ms_kvm *kvm;
    REQUIRE(ms_kvm_new(sys, &cfg, &kvm) == 0);
    CHECK_OK(ms_kvm_attach(kvm, mem, ioas));

    size_t size = 4096;
    struct kvm_run *run = calloc(1, size);
    REQUIRE(run);

    /* MMIO writes and reads of 1, 2, 4 and 8 bytes. */
    static const unsigned lens[] = {1, 2, 4, 8};
    for (unsigned i = 0; i < 4; i++) {
        memset(run, 0, size);
        run->exit_reason = KVM_EXIT_MMIO;
        run->mmio.phys_addr = 0x1010;
        run->mmio.len = lens[i];
        run->mmio.is_write = 1;
        memcpy(run->mmio.data, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
        CHECK_EQ(ms__kvm_route(kvm, run, size), 1);
        run->mmio.is_write = 0;
        memset(run->mmio.data, 0, 8);
        CHECK_EQ(ms__kvm_route(kvm, run, size), 1);
        uint64_t v = 0;
        memcpy(&v, run->mmio.data, lens[i]);
        uint64_t want = lens[i] == 8 ? 0x8877665544332211ull
                                     : 0x8877665544332211ull &
                                           ((1ull << (8 * lens[i])) - 1);
        CHECK_EQ(v, want);
    }
    CHECK_STR(mr.log, "w1@10=1 r1@10 w2@10=201 r2@10 w4@10=4030201 r4@10 "
                      "w8@10=807060504030201 r8@10 ");
    /* An MMIO exit that lands in RAM (a slot not yet created): memory. */
    memset(run, 0, size);
    run->exit_reason = KVM_EXIT_MMIO;
    run->mmio.phys_addr = 0x2004;
    run->mmio.len = 4;
    run->mmio.is_write = 1;
    memcpy(run->mmio.data, "\xef\xbe\xad\xde", 4);
    CHECK_EQ(ms__kvm_route(kvm, run, size), 1);
    CHECK_EQ(*(uint32_t *)((char *)ms_region_host(ram) + 4), 0xdeadbeef);

    /* String port output, count 3 (rep outsb), and input, count 2. */
    memset(run, 0, size);
    run->exit_reason = KVM_EXIT_IO;
    run->io.direction = KVM_EXIT_IO_OUT;
    run->io.size = 1;
    run->io.port = 0x3f8;
    run->io.count = 3;
    run->io.data_offset = 1024;
    memcpy((char *)run + 1024, "abc", 3);
    CHECK_EQ(ms__kvm_route(kvm, run, size), 1);
    run->io.direction = KVM_EXIT_IO_IN;
    run->io.size = 2;
    run->io.port = 0x3fa;
    run->io.count = 2;
    memset((char *)run + 1024, 0, 8);
    CHECK_EQ(ms__kvm_route(kvm, run, size), 1);
    CHECK_EQ(*(uint32_t *)((char *)run + 1024), 0x44334433u);
    CHECK_STR(pr.log, "w1@0=61 w1@0=62 w1@0=63 r2@2 r2@2 ");
    /* A free port reads what the access path says (here the I/O root is
     * a plain container: unassigned, 0; QEMU's all-ones comes from its
     * I/O root's ops); other exits are not routed. */
    run->io.port = 0x80;
    run->io.count = 1;
    memset((char *)run + 1024, 0x5a, 2);
    CHECK_EQ(ms__kvm_route(kvm, run, size), 1);
    CHECK_EQ(*(uint16_t *)((char *)run + 1024), 0);
    /* A malformed record (data beyond the structure) is ignored. */
    run->io.data_offset = size;
    run->io.count = 1;
    CHECK_EQ(ms__kvm_route(kvm, run, size), 1);
    run->exit_reason = KVM_EXIT_HLT;
    CHECK_EQ(ms__kvm_route(kvm, run, size), 0);

    free(run);
    ms_kvm_free(kvm);
    kvm_model_free(&m);
    ms_region_unref(root);
    ms_region_unref(io);
    ms_region_unref(dev);
    ms_region_unref(port);
    ms_region_unref(ram);
    ms_system_free(sys);
    return ms_test_summary("test_kvm_route");
}
