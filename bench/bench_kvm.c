/* SPDX-License-Identifier: MIT */
/*
 * KVM backend benchmarks (prints figures, asserts nothing).
 *
 * 1. Topology changes on a 512 MiB PC-style board (tests/kvm_board.c):
 *    attaching, SeaBIOS's PAM sequence (14 register writes), hot-plugging
 *    128 MiB, punching an MMIO window into RAM and closing it, flipping a
 *    region read-only and back, starting and stopping global dirty
 *    tracking.  Per change: the memslot ioctls memspace issued, the time
 *    spent in the library beside the time spent in the ioctls, and, for
 *    comparison, what QEMU 7.2's per-section rule would have done (one
 *    ioctl per RAM section added or deleted; "unmapped" counts the bytes
 *    of RAM that stayed RAM but were deleted and re-added).  Runs with the
 *    fake ioctl seam (tests/kvm_model.c) and, where /dev/kvm exists, with
 *    the kernel.
 * 2. Where /dev/kvm exists: the round trip of a guest MMIO read exit
 *    through the vCPU helper (ms_kvm_vcpu_run, routed by the access path
 *    to a device callback) beside a raw hand-written KVM_RUN loop running
 *    the same guest (tests/kvm_guest.S, kg_mmio_loop).
 *
 * Usage: bench_kvm [EXITS]   (default 20000; the suite runs 2000)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <memspace/access.h>
#include <memspace/memspace.h>

#include "kvm_board.h"
#include "kvm_guest.h"
#include "kvm_model.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define TRY(x)                                                                 \
    do {                                                                       \
        int e_ = (x);                                                          \
        if (e_ < 0) {                                                          \
            fprintf(stderr, "%s failed: %d\n", #x, e_);                        \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* ---- QEMU 7.2's rule, counted by a listener ------------------------------ */

struct sec {
    uint64_t gpa, last, offset;
    ms_region *mr;
};

struct q72 {
    struct ms_listener l;
    uint64_t page;
    struct sec del[256], add[256];
    unsigned nd, na;
    unsigned logs;
    uint64_t ioctls, unmapped; /* of the last commit */
};

/* Would 7.2 give this section a slot (8.2)? */
static bool q72_slot(const struct q72 *q, const struct ms_section *s)
{
    enum ms_region_kind k = ms_region_kind(s->mr);
    if (k == MS_REGION_ROM_DEVICE) {
        if (!ms_region_romd(s->mr)) {
            return false;
        }
    } else if (k != MS_REGION_RAM && k != MS_REGION_ROM &&
               k != MS_REGION_RAM_DEVICE) {
        return false;
    }
    uint64_t a = (s->gpa + q->page - 1) & ~(q->page - 1);
    return s->last >= a && s->last - a + 1 >= q->page;
}

static int q_begin(struct ms_listener *l)
{
    struct q72 *q = (struct q72 *)l;
    q->nd = q->na = q->logs = 0;
    return 0;
}

static int q_add(struct ms_listener *l, const struct ms_section *s)
{
    struct q72 *q = (struct q72 *)l;
    if (q72_slot(q, s) && q->na < 256) {
        q->add[q->na++] =
            (struct sec){s->gpa, s->last, s->offset_within_region, s->mr};
    }
    return 0;
}

static int q_del(struct ms_listener *l, const struct ms_section *s)
{
    struct q72 *q = (struct q72 *)l;
    if (q72_slot(q, s) && q->nd < 256) {
        q->del[q->nd++] =
            (struct sec){s->gpa, s->last, s->offset_within_region, s->mr};
    }
    return 0;
}

static int q_log(struct ms_listener *l, const struct ms_section *s, unsigned o,
                 unsigned n)
{
    struct q72 *q = (struct q72 *)l;
    if (q72_slot(q, s) && (!o || !n)) {
        q->logs++; /* an in-place flag update */
    }
    return 0;
}

static int q_commit(struct ms_listener *l)
{
    struct q72 *q = (struct q72 *)l;
    q->ioctls = q->nd + q->na + q->logs;
    q->unmapped = 0;
    for (unsigned i = 0; i < q->nd; i++) {
        const struct sec *d = &q->del[i];
        for (unsigned j = 0; j < q->na; j++) {
            const struct sec *a = &q->add[j];
            uint64_t lo = d->gpa > a->gpa ? d->gpa : a->gpa;
            uint64_t hi = d->last < a->last ? d->last : a->last;
            if (lo > hi || a->mr != d->mr ||
                a->offset + (lo - a->gpa) != d->offset + (lo - d->gpa)) {
                continue;
            }
            q->unmapped += hi - lo + 1; /* same memory, deleted anyway */
        }
    }
    return 0;
}

/* ---- part 1: topology changes -------------------------------------------- */

struct run {
    ms_kvm *kvm;
    struct q72 q;
    struct ms_kvm_stats prev;
    uint64_t t0;
    uint64_t tot_ioctls, tot_q72, tot_unmapped, tot_ours;
    /* Our own "RAM staying RAM unmapped": slots before the change, and the
     * deletions and creations the trace hook saw. */
    struct ms_kvm_memslot before[512], del[64], cre[64];
    size_t nb, nd, nc;
};

static void on_trace(void *opaque, const struct ms_kvm_event *ev)
{
    struct run *r = opaque;
    if (ev->kind != MS_KVM_EV_MEMSLOT || ev->result < 0) {
        return;
    }
    if (ev->slot->size == 0) {
        for (size_t i = 0; i < r->nb && r->nd < 64; i++) {
            if (r->before[i].slot == ev->slot->slot) {
                r->del[r->nd++] = r->before[i];
            }
        }
    } else if (r->nc < 64) {
        r->cre[r->nc++] = *ev->slot;
    }
}

/* Bytes deleted and mapped again to the same memory by this change. */
static uint64_t ours_unmapped(const struct run *r)
{
    uint64_t n = 0;
    for (size_t i = 0; i < r->nd; i++) {
        const struct ms_kvm_memslot *d = &r->del[i];
        for (size_t j = 0; j < r->nc; j++) {
            const struct ms_kvm_memslot *c = &r->cre[j];
            uint64_t lo = d->gpa > c->gpa ? d->gpa : c->gpa;
            uint64_t dl = d->gpa + d->size - 1, cl = c->gpa + c->size - 1;
            uint64_t hi = dl < cl ? dl : cl;
            if (lo <= hi &&
                c->host + (lo - c->gpa) == d->host + (lo - d->gpa)) {
                n += hi - lo + 1;
            }
        }
    }
    return n;
}

static void row_begin(struct run *r)
{
    r->nb = 0;
    for (size_t i = 0; i < ms_kvm_nr_slots(r->kvm) && r->nb < 512; i++) {
        TRY(ms_kvm_slot(r->kvm, i, &r->before[r->nb++]));
    }
    r->nd = r->nc = 0;
    TRY(ms_kvm_get_stats(r->kvm, &r->prev));
    r->t0 = now_ns();
}

static void row_end(struct run *r, const char *what)
{
    uint64_t wall = now_ns() - r->t0;
    struct ms_kvm_stats st;
    TRY(ms_kvm_get_stats(r->kvm, &st));
    uint64_t n = (st.slot_creates - r->prev.slot_creates) +
                 (st.slot_deletes - r->prev.slot_deletes) +
                 (st.slot_updates - r->prev.slot_updates);
    uint64_t lib = st.plan_ns - r->prev.plan_ns;
    uint64_t io = st.ioctl_ns - r->prev.ioctl_ns;
    uint64_t pz = st.pauses - r->prev.pauses;
    uint64_t ours = ours_unmapped(r);
    r->tot_ioctls += n;
    r->tot_q72 += r->q.ioctls;
    r->tot_unmapped += r->q.unmapped;
    r->tot_ours += ours;
    printf("  %-32s %4" PRIu64 " %8.1f %8.1f %5" PRIu64 " %8" PRIu64
           " | %4" PRIu64 " %9" PRIu64 "  (%.1f us)\n",
           what, n, (double)lib / 1e3, (double)io / 1e3, pz, ours >> 10,
           r->q.ioctls, r->q.unmapped >> 10, (double)wall / 1e3);
    r->q.ioctls = r->q.unmapped = 0;
}

static void topology(const char *label, const struct ms_kvm_config *cfg,
                     struct kvm_model *m)
{
    ms_system *sys;
    TRY(ms_system_new(NULL, &sys));
    struct kvm_board b;
    kb_build(&b, sys, 512u << 20);
    static struct run r;
    memset(&r, 0, sizeof(r));
    struct ms_kvm_config c = *cfg;
    c.trace = on_trace;
    c.trace_opaque = &r;
    TRY(ms_kvm_new(sys, &c, &r.kvm));
    r.q.page = 4096;
    r.q.l = (struct ms_listener){.name = "qemu-7.2-rule",
                                 .begin = q_begin,
                                 .commit = q_commit,
                                 .region_add = q_add,
                                 .region_del = q_del,
                                 .log_start = q_log,
                                 .log_stop = q_log};
    printf("\n%s\n", label);
    printf("  %-32s %4s %8s %8s %5s %8s | %4s %9s\n", "change", "ioctls",
           "lib us", "ioctl us", "pause", "unmapKiB", "7.2", "7.2 KiB");
    TRY(ms_listener_register(b.mem, &r.q.l));
    row_begin(&r);
    TRY(ms_kvm_attach(r.kvm, b.mem, NULL));
    row_end(&r, "attach (existing topology)");
    r.tot_ioctls = r.tot_q72 = r.tot_unmapped = r.tot_ours = 0;

    /* SeaBIOS: PAM0 (0xf0000) then PAM1-6 (two segments each) to
     * read-write to shadow the BIOS, then all of them to read-only. */
    for (unsigned pass = 0; pass < 2; pass++) {
        unsigned mode = pass == 0 ? 3 : 1;
        for (unsigned reg = 0; reg < 7; reg++) {
            char what[64];
            snprintf(what, sizeof(what), "PAM%u -> %s", reg,
                     mode == 3 ? "RAM rw" : "RAM ro");
            row_begin(&r);
            TRY(ms_txn_begin(sys));
            if (reg == 0) {
                TRY(kb_pam_set(&b, 0, mode));
            } else {
                TRY(kb_pam_set(&b, 2 * reg - 1, mode));
                TRY(kb_pam_set(&b, 2 * reg, mode));
            }
            TRY(ms_txn_commit(sys));
            row_end(&r, what);
        }
    }
    printf("  SeaBIOS PAM sequence: memspace %" PRIu64
           " memslot ioctls, %" PRIu64 " bytes of RAM that stays RAM "
           "unmapped; QEMU 7.2 rule %" PRIu64 " ioctls, %" PRIu64
           " MiB unmapped\n",
           r.tot_ioctls, r.tot_ours, r.tot_q72, r.tot_unmapped >> 20);

    ms_region *hp = NULL;
    TRY(ms_region_new(sys,
                      &(struct ms_region_config){.kind = MS_REGION_RAM,
                                                 .name = "dimm0",
                                                 .size = 128u << 20},
                      &hp));
    if (m) {
        kvm_model_name(m, ms_region_host(hp), 128u << 20, "dimm0");
    }
    row_begin(&r);
    TRY(ms_region_add(b.system, UINT64_C(0x100000000), hp));
    row_end(&r, "hot-add 128 MiB at 4 GiB");
    ms_region *win = NULL;
    TRY(ms_region_new(sys,
                      &(struct ms_region_config){.kind = MS_REGION_RESERVATION,
                                                 .name = "window",
                                                 .size = 0x10000},
                      &win));
    row_begin(&r);
    TRY(ms_region_add_prio(b.system, 0x10000000, win, 5));
    row_end(&r, "MMIO window into low RAM (split)");
    row_begin(&r);
    TRY(ms_region_del(b.system, win));
    row_end(&r, "window closed (hole filled)");
    row_begin(&r);
    TRY(ms_region_add_prio(b.system, 0x10000000, win, 5));
    row_end(&r, "window again (pure deletion)");
    row_begin(&r);
    TRY(ms_region_del(b.system, win));
    row_end(&r, "window closed again");
    row_begin(&r);
    TRY(ms_region_set_readonly(hp, true));
    row_end(&r, "hot-added RAM read-only");
    row_begin(&r);
    TRY(ms_region_set_readonly(hp, false));
    row_end(&r, "... and writable again");
    row_begin(&r);
    TRY(ms_dirty_global_start(sys, MS_GLOBAL_DIRTY_MIGRATION));
    row_end(&r, "global dirty tracking on");
    row_begin(&r);
    TRY(ms_dirty_sync(sys, NULL));
    row_end(&r, "dirty sync (no slot change)");
    row_begin(&r);
    TRY(ms_dirty_global_stop(sys, MS_GLOBAL_DIRTY_MIGRATION));
    row_end(&r, "global dirty tracking off");
    row_begin(&r);
    TRY(ms_region_del(b.system, hp));
    row_end(&r, "hot-remove");
    struct ms_kvm_stats st;
    TRY(ms_kvm_get_stats(r.kvm, &st));
    printf("  slots in use at the end: %u of %u\n", st.slots_used,
           st.slots_max);

    TRY(ms_listener_unregister(&r.q.l));
    ms_kvm_free(r.kvm);
    ms_region_unref(hp);
    ms_region_unref(win);
    kb_release(&b);
    ms_system_free(sys);
}

/* ---- part 2: exit round trip --------------------------------------------- */

struct exits {
    ms_kvm_vcpu *cpu;
    uint64_t n, want;
};

static uint64_t dev_read(void *opaque, uint64_t off, unsigned size)
{
    struct exits *e = opaque;
    (void)off, (void)size;
    if (++e->n == e->want) {
        (void)ms_kvm_vcpu_kick(e->cpu);
    }
    return e->n;
}

static void dev_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
    (void)opaque, (void)off, (void)v, (void)size;
}

static const struct ms_region_ops dev_ops = {
    .read = dev_read,
    .write = dev_write,
    .endianness = MS_ENDIAN_LITTLE,
    .impl = {.min_access_size = 1, .max_access_size = 4},
};

/* ns per exit through the helper; 0 on failure. */
static double helper_loop(uint64_t want)
{
    ms_system *sys;
    TRY(ms_system_new(NULL, &sys));
    ms_region *root, *rom, *dev;
    struct exits e = {.want = want};
    TRY(ms_region_new(sys,
                      &(struct ms_region_config){.kind = MS_REGION_CONTAINER,
                                                 .name = "system",
                                                 .size = MS_SIZE_FULL},
                      &root));
    TRY(ms_region_new(sys,
                      &(struct ms_region_config){.kind = MS_REGION_ROM,
                                                 .name = "rom",
                                                 .size = KG_ROM_SIZE},
                      &rom));
    TRY(ms_region_new(sys,
                      &(struct ms_region_config){.kind = MS_REGION_IO,
                                                 .name = "dev",
                                                 .size = 0x1000,
                                                 .ops = &dev_ops,
                                                 .opaque = &e},
                      &dev));
    KG_LOAD(ms_region_host(rom), mmio_loop);
    TRY(ms_region_add(root, KG_ROM_GPA, rom));
    TRY(ms_region_add(root, 0xd0000, dev));
    ms_as *mem;
    TRY(ms_as_new(sys, root, "memory", &mem));
    ms_kvm *kvm;
    TRY(ms_kvm_new(sys, NULL, &kvm));
    TRY(ms_kvm_attach(kvm, mem, NULL));
    TRY(ms_kvm_vcpu_new(kvm, 0, &e.cpu));
    struct ms_kvm_exit ex;
    uint64_t t0 = now_ns();
    int err = ms_kvm_vcpu_run(e.cpu, &ex);
    uint64_t t1 = now_ns();
    double r = err == 0 && ex.kind == MS_KVM_EXIT_KICK && e.n == want
                   ? (double)(t1 - t0) / (double)want
                   : 0;
    ms_kvm_vcpu_free(e.cpu);
    ms_kvm_free(kvm);
    ms_region_unref(root);
    ms_region_unref(rom);
    ms_region_unref(dev);
    ms_system_free(sys);
    return r;
}

/* ns per exit through a raw KVM_RUN loop; 0 on failure. */
static double raw_loop(uint64_t want)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        return 0;
    }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0UL);
    uint64_t idmap = 0xfeffc000;
    void *rom = mmap(NULL, KG_ROM_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (vm < 0 || rom == MAP_FAILED ||
        ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0 ||
        ioctl(vm, KVM_SET_TSS_ADDR, 0xfeffd000UL) < 0) {
        close(kvm);
        return 0;
    }
    KG_LOAD(rom, mmio_loop);
    struct kvm_userspace_memory_region slot = {
        .slot = 0,
        .flags = KVM_MEM_READONLY,
        .guest_phys_addr = KG_ROM_GPA,
        .memory_size = KG_ROM_SIZE,
        .userspace_addr = (uintptr_t)rom,
    };
    int cpu = ioctl(vm, KVM_CREATE_VCPU, 0UL);
    int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0UL);
    struct kvm_run *run = NULL;
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0 || cpu < 0 ||
        size <= 0 ||
        (run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu,
                    0)) == MAP_FAILED) {
        close(vm);
        close(kvm);
        return 0;
    }
    uint64_t n = 0;
    uint64_t t0 = now_ns();
    while (n < want) {
        if (ioctl(cpu, KVM_RUN, 0UL) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (run->exit_reason != KVM_EXIT_MMIO || run->mmio.is_write) {
            break;
        }
        n++;
        uint32_t v = (uint32_t)n;
        memcpy(run->mmio.data, &v, sizeof(v));
    }
    uint64_t t1 = now_ns();
    munmap(run, (size_t)size);
    close(cpu);
    close(vm);
    close(kvm);
    munmap(rom, KG_ROM_SIZE);
    return n == want ? (double)(t1 - t0) / (double)want : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median5(double *v)
{
    qsort(v, 5, sizeof(*v), cmp_double);
    return v[2];
}

/*
 * What the helper adds per exit in userspace, without KVM: the routing of
 * one 4-byte MMIO read through the access path to the same device.
 */
static double routing_cost(void)
{
    ms_system *sys;
    TRY(ms_system_new(NULL, &sys));
    ms_region *root, *dev;
    struct exits e = {.want = UINT64_MAX};
    TRY(ms_region_new(sys,
                      &(struct ms_region_config){.kind = MS_REGION_CONTAINER,
                                                 .name = "system",
                                                 .size = MS_SIZE_FULL},
                      &root));
    TRY(ms_region_new(sys,
                      &(struct ms_region_config){.kind = MS_REGION_IO,
                                                 .name = "dev",
                                                 .size = 0x1000,
                                                 .ops = &dev_ops,
                                                 .opaque = &e},
                      &dev));
    TRY(ms_region_add(root, 0xd0000, dev));
    ms_as *mem;
    TRY(ms_as_new(sys, root, "memory", &mem));
    const unsigned n = 1000000;
    uint8_t data[8];
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < n; i++) {
        (void)ms_as_read(mem, 0xd0000, MS_ATTRS_UNSPECIFIED, data, 4);
    }
    uint64_t t1 = now_ns();
    ms_region_unref(root);
    ms_region_unref(dev);
    ms_system_free(sys);
    return (double)(t1 - t0) / n;
}

int main(int argc, char **argv)
{
    uint64_t exits = argc > 1 ? strtoull(argv[1], NULL, 0) : 20000;
    if (!exits) {
        exits = 1;
    }
    printf("KVM backend: memslot ioctls per topology change ('7.2': what "
           "QEMU 7.2's per-section rule would do)\n");
    struct kvm_model m;
    kvm_model_init(&m, 509, 4096);
    m.log_dirty_calls = false;
    struct ms_kvm_config fake = {.ops = &kvm_model_ops,
                                 .ops_opaque = &m,
                                 .host_page_size = 4096,
                                 .pause = kvm_model_pause,
                                 .resume = kvm_model_resume,
                                 .pause_opaque = &m};
    topology("fake ioctl seam (kernel-rules model), 512 MiB PC", &fake, &m);
    kvm_model_free(&m);

    printf("\nthe vCPU helper's userspace routing of one MMIO read exit "
           "(access path to the device, measured without KVM): %.0f ns\n",
           routing_cost());

    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        printf("\nno /dev/kvm (%s): the real-kernel runs and the exit round "
               "trip are skipped\n",
               strerror(errno));
        return 0;
    }
    close(fd);
    struct ms_kvm_config real = {0};
    topology("real KVM, 512 MiB PC", &real, NULL);

    printf("\nexit round trip: guest MMIO read -> userspace -> guest (%" PRIu64
           " exits per run, 5 alternating runs each, median)\n",
           exits);
    double h[5], r[5];
    for (int i = 0; i < 5; i++) {
        h[i] = helper_loop(exits);
        r[i] = raw_loop(exits);
        if (!h[i] || !r[i]) {
            printf("  failed (helper %.0f ns, raw %.0f ns)\n", h[i], r[i]);
            return 0;
        }
    }
    double mh = median5(h), mr = median5(r);
    printf("  raw KVM_RUN loop:          %8.0f ns per exit\n", mr);
    printf("  vCPU helper + access path: %8.0f ns per exit\n", mh);
    printf("  ratio: %.3f (target <= 1.1)\n", mh / mr);
    return 0;
}
