/* SPDX-License-Identifier: MIT */
/*
 * kvm-smoke: a self-contained check that /dev/kvm really runs guest code.
 *
 * Creates a VM with one 64 KiB memslot (dirty logging on), one vCPU in real
 * mode, and runs this code at 0x1000:
 *
 *     mov ecx, LOOPS        ; busy loop, LOOPS iterations (argv[1], default 1)
 *  1: dec ecx
 *     jnz 1b
 *     mov al, 2
 *     add al, 3
 *     out 0x10, al          ; -> KVM_EXIT_IO, port 0x10, data 5
 *     mov [0x3000], al      ; dirties guest page 3
 *     mov bx, 0x2000
 *     mov ds, bx
 *     mov [0], al           ; GPA 0x20000 has no memslot -> KVM_EXIT_MMIO
 *     hlt                   ; -> KVM_EXIT_HLT
 *
 * and checks every exit plus KVM_GET_DIRTY_LOG.  Exit status: 0 on success,
 * 77 when /dev/kvm cannot be opened, 1 on any other failure.
 *
 * Build: gcc -static -O2 -o kvm-smoke kvm-smoke.c
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE 0x10000u
#define CODE_GPA 0x1000u

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int fail(const char *what)
{
    fprintf(stderr, "kvm-smoke: %s: %s\n", what, strerror(errno));
    return 1;
}

static const char *exit_name(uint32_t r)
{
    switch (r) {
    case KVM_EXIT_IO: return "IO";
    case KVM_EXIT_MMIO: return "MMIO";
    case KVM_EXIT_HLT: return "HLT";
    case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
    case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
    case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
    default: return "other";
    }
}

static int expect_exit(struct kvm_run *run, uint32_t want)
{
    if (run->exit_reason == want)
        return 0;
    fprintf(stderr, "kvm-smoke: expected exit %s, got %s (%u)\n",
            exit_name(want), exit_name(run->exit_reason), run->exit_reason);
    return 1;
}

int main(int argc, char **argv)
{
    unsigned long loops = argc > 1 ? strtoul(argv[1], NULL, 0) : 1;
    if (loops == 0 || loops > 0xffffffffUL) {
        fprintf(stderr, "usage: kvm-smoke [LOOPS 1..2^32-1]\n");
        return 1;
    }

    double t0 = now_ms();
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        fprintf(stderr, "kvm-smoke: open /dev/kvm: %s (skipped)\n", strerror(errno));
        return 77;
    }
    int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        fprintf(stderr, "kvm-smoke: KVM API version %d, want %d\n", api, KVM_API_VERSION);
        return 1;
    }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        return fail("KVM_CREATE_VM");

    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return fail("mmap guest memory");
    uint32_t n = (uint32_t)loops;
    const uint8_t code[] = {
        0x66, 0xb9, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >> 24,
        0x66, 0x49,             /* dec ecx */
        0x75, 0xfc,             /* jnz -4 */
        0xb0, 0x02,             /* mov al, 2 */
        0x04, 0x03,             /* add al, 3 */
        0xe6, 0x10,             /* out 0x10, al */
        0xa2, 0x00, 0x30,       /* mov [0x3000], al */
        0xbb, 0x00, 0x20,       /* mov bx, 0x2000 */
        0x8e, 0xdb,             /* mov ds, bx */
        0xa2, 0x00, 0x00,       /* mov [0], al */
        0xf4,                   /* hlt */
    };
    memcpy(mem + CODE_GPA, code, sizeof code);

    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .flags = KVM_MEM_LOG_DIRTY_PAGES,
        .guest_phys_addr = 0,
        .memory_size = MEM_SIZE,
        .userspace_addr = (uintptr_t)mem,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return fail("KVM_SET_USER_MEMORY_REGION");

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0)
        return fail("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(struct kvm_run))
        return fail("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE,
                               MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED)
        return fail("mmap kvm_run");

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        return fail("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    sregs.ds.base = 0;
    sregs.ds.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        return fail("KVM_SET_SREGS");
    struct kvm_regs regs = { .rip = CODE_GPA, .rflags = 0x2 };
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        return fail("KVM_SET_REGS");
    double t1 = now_ms();

    /* 1: the busy loop, then out 0x10, al */
    if (ioctl(vcpu, KVM_RUN, 0) < 0)
        return fail("KVM_RUN");
    double t2 = now_ms();
    if (expect_exit(run, KVM_EXIT_IO))
        return 1;
    uint8_t io = *((uint8_t *)run + run->io.data_offset);
    if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != 0x10 ||
        run->io.size != 1 || run->io.count != 1 || io != 5) {
        fprintf(stderr, "kvm-smoke: bad IO exit: dir %u port 0x%x size %u data %u\n",
                run->io.direction, run->io.port, run->io.size, io);
        return 1;
    }

    /* 2: the store to 0x20000, outside every memslot */
    if (ioctl(vcpu, KVM_RUN, 0) < 0)
        return fail("KVM_RUN");
    if (expect_exit(run, KVM_EXIT_MMIO))
        return 1;
    if (!run->mmio.is_write || run->mmio.phys_addr != 0x20000 ||
        run->mmio.len != 1 || run->mmio.data[0] != 5) {
        fprintf(stderr, "kvm-smoke: bad MMIO exit: write %u addr 0x%llx len %u data %u\n",
                run->mmio.is_write, (unsigned long long)run->mmio.phys_addr,
                run->mmio.len, run->mmio.data[0]);
        return 1;
    }

    /* 3: hlt */
    if (ioctl(vcpu, KVM_RUN, 0) < 0)
        return fail("KVM_RUN");
    if (expect_exit(run, KVM_EXIT_HLT))
        return 1;
    double t3 = now_ms();

    uint64_t bitmap[1] = { 0 }; /* 16 pages */
    struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = bitmap };
    if (ioctl(vm, KVM_GET_DIRTY_LOG, &log) < 0)
        return fail("KVM_GET_DIRTY_LOG");
    if (mem[0x3000] != 5 || !(bitmap[0] & (1u << 3))) {
        fprintf(stderr, "kvm-smoke: page 3 not written/dirty: byte %u, bitmap 0x%llx\n",
                mem[0x3000], (unsigned long long)bitmap[0]);
        return 1;
    }

    printf("kvm-smoke: ok: IO, MMIO, HLT exits and dirty log (bitmap 0x%llx)\n",
           (unsigned long long)bitmap[0]);
    printf("kvm-smoke: setup %.1f ms, first KVM_RUN (%lu loop iterations) %.1f ms, "
           "all runs %.1f ms\n", t1 - t0, loops, t2 - t1, t3 - t1);
    return 0;
}
