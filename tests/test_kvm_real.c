/* SPDX-License-Identifier: MIT */
/*
 * The KVM backend against the real kernel: tiny real-mode guests
 * (kvm_guest.S) that use RAM, MMIO and port callbacks, write to ROM,
 * trigger ioeventfds without exits, dirty pages the log reports exactly,
 * see memory hot-added and hot-removed while they run, and keep touching
 * RAM while the host punches MMIO windows into the same RAM region
 * hundreds of times (zero unexpected exits).
 *
 * Skipped (exit 77) only when /dev/kvm cannot be opened.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kvm_guest.h"
#include "testutil.h"

#include <memspace/access.h>

/* ---- devices ------------------------------------------------------------- */

struct ports {
    uint32_t last[16]; /* last value written to port 0x10 + i */
    unsigned writes[16];
    unsigned status; /* read at port 0x20 */
    unsigned status_reads;
};

static uint64_t port_read(void *opaque, uint64_t off, unsigned size)
{
    struct ports *p = opaque;
    (void)size;
    if (off == 0x10) {
        __atomic_add_fetch(&p->status_reads, 1, __ATOMIC_SEQ_CST);
        return __atomic_load_n(&p->status, __ATOMIC_SEQ_CST);
    }
    if (off == 0x2) {
        return 0x5a; /* port 0x12 */
    }
    return 0;
}

static void port_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct ports *p = opaque;
    (void)size;
    if (off < 16) {
        __atomic_store_n(&p->last[off], (uint32_t)val, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&p->writes[off], 1, __ATOMIC_SEQ_CST);
    }
}

static const struct ms_region_ops port_ops = {
    .read = port_read,
    .write = port_write,
    .endianness = MS_ENDIAN_LITTLE,
    .impl = {.min_access_size = 1, .max_access_size = 4},
};

struct dev {
    unsigned writes, reads;
    uint64_t last_off, last_val;
};

static uint64_t dev_read(void *opaque, uint64_t off, unsigned size)
{
    struct dev *d = opaque;
    (void)size;
    __atomic_add_fetch(&d->reads, 1, __ATOMIC_SEQ_CST);
    return off == 4 ? 0xcafef00d : 0;
}

static void dev_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct dev *d = opaque;
    (void)size;
    d->last_off = off;
    d->last_val = val;
    __atomic_add_fetch(&d->writes, 1, __ATOMIC_SEQ_CST);
}

static const struct ms_region_ops dev_ops = {
    .read = dev_read,
    .write = dev_write,
    .endianness = MS_ENDIAN_LITTLE,
    .impl = {.min_access_size = 1, .max_access_size = 4},
};

/* ---- the board ----------------------------------------------------------- */

struct vm {
    ms_system *sys;
    ms_region *system, *io_root, *ram, *vram, *big, *rom, *mmio, *portr;
    ms_region *door;
    ms_as *mem, *io;
    ms_kvm *kvm;
    ms_kvm_vcpu *cpu;
    struct ports ports;
    struct dev dev, doordev;
};

static ms_region *mk(ms_system *sys, struct ms_region_config c)
{
    ms_region *r = NULL;
    REQUIRE(ms_region_new(sys, &c, &r) == 0);
    return r;
}

static int nop_pause(void *opaque)
{
    (void)opaque;
    return 0;
}

static void nop_resume(void *opaque)
{
    (void)opaque;
}

/* 0: ok; 77: no KVM here. */
static int vm_init_cfg(struct vm *v, const uint8_t *start, const uint8_t *end,
                       const struct ms_kvm_config *cfg)
{
    memset(v, 0, sizeof(*v));
    REQUIRE(ms_system_new(&(struct ms_system_config){.log = tu_log}, &v->sys) ==
            0);
    v->system = tu_container(v->sys, "system", MS_SIZE_FULL);
    v->io_root = tu_container(v->sys, "io", 0x10000);
    v->ram = tu_ram(v->sys, "ram", 0x10000);
    v->vram = tu_ram(v->sys, "vram", 0x10000);
    v->big = tu_ram(v->sys, "big", 0x70000);
    v->rom = tu_rom(v->sys, "rom", KG_ROM_SIZE);
    v->mmio = mk(v->sys, (struct ms_region_config){.kind = MS_REGION_IO,
                                                   .name = "dev",
                                                   .size = 0x1000,
                                                   .ops = &dev_ops,
                                                   .opaque = &v->dev});
    v->portr = mk(v->sys, (struct ms_region_config){.kind = MS_REGION_IO,
                                                    .name = "ports",
                                                    .size = 0x20,
                                                    .ops = &port_ops,
                                                    .opaque = &v->ports});
    v->door = mk(v->sys, (struct ms_region_config){.kind = MS_REGION_IO,
                                                   .name = "door",
                                                   .size = 4,
                                                   .ops = &dev_ops,
                                                   .opaque = &v->doordev});
    kg_load(ms_region_host(v->rom), start, end);
    REQUIRE(ms_region_add(v->system, 0, v->ram) == 0);
    REQUIRE(ms_region_add(v->system, 0x10000, v->vram) == 0);
    REQUIRE(ms_region_add(v->system, 0x30000, v->big) == 0);
    REQUIRE(ms_region_add(v->system, 0xd0000, v->mmio) == 0);
    REQUIRE(ms_region_add(v->system, KG_ROM_GPA, v->rom) == 0);
    REQUIRE(ms_region_add(v->io_root, 0x10, v->portr) == 0);
    REQUIRE(ms_region_add(v->io_root, 0x510, v->door) == 0);
    REQUIRE(ms_as_new(v->sys, v->system, "memory", &v->mem) == 0);
    REQUIRE(ms_as_new(v->sys, v->io_root, "I/O", &v->io) == 0);
    int err = ms_kvm_new(v->sys, cfg, &v->kvm);
    if (err == -ENOENT || err == -EACCES || err == -ENODEV || err == -ENXIO ||
        err == -EPERM) {
        return MS_SKIP;
    }
    REQUIRE(err == 0);
    CHECK_OK(ms_kvm_attach(v->kvm, v->mem, v->io));
    CHECK_OK(ms_kvm_vcpu_new(v->kvm, 0, &v->cpu));
    return v->cpu ? 0 : 1;
}

static int vm_init(struct vm *v, const uint8_t *start, const uint8_t *end)
{
    return vm_init_cfg(v, start, end, NULL);
}

static void vm_fini(struct vm *v)
{
    ms_kvm_vcpu_free(v->cpu);
    ms_kvm_free(v->kvm);
    ms_region *rs[] = {v->system, v->io_root, v->ram,   v->vram, v->big,
                       v->rom,    v->mmio,    v->portr, v->door};
    for (size_t i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
        ms_region_unref(rs[i]);
    }
    ms_system_free(v->sys);
}

static int run(struct vm *v, struct ms_kvm_exit *ex)
{
    int err = ms_kvm_vcpu_run(v->cpu, ex);
    CHECK_OK(err);
    return err;
}

/* ---- tests --------------------------------------------------------------- */

static void test_basic(void)
{
    struct vm v;
    if (vm_init(&v, kg_basic_start, kg_basic_end)) {
        return;
    }
    struct ms_kvm_exit ex;
    run(&v, &ex);
    CHECK_EQ(ex.kind, MS_KVM_EXIT_HLT);
    CHECK_EQ(v.ports.last[0], 1); /* pass */
    CHECK_EQ(*(uint16_t *)((char *)ms_region_host(v.ram) + 0x500), 0x1234);
    CHECK_EQ(v.dev.writes, 1); /* MMIO write */
    CHECK_EQ(v.dev.last_val, 0x55);
    CHECK_EQ(v.ports.last[4], 0xcafef00d); /* MMIO read result */
    CHECK_EQ(v.ports.last[1], 0xf4);       /* ROM read */
    CHECK_EQ(((uint8_t *)ms_region_host(v.rom))[0x800], 0xf4); /* intact */
    CHECK_EQ(v.ports.last[3], 0x5a); /* port read echoed */
    CHECK_EQ(ex.mmio_exits, 3);      /* write, read, ROM */
    CHECK_EQ(ex.io_exits, 5);
    printf("basic: %" PRIu64 " MMIO and %" PRIu64 " I/O exits\n", ex.mmio_exits,
           ex.io_exits);
    vm_fini(&v);
}

static uint64_t efd_read(int fd)
{
    uint64_t n = 0;
    if (read(fd, &n, sizeof(n)) != sizeof(n)) {
        return 0;
    }
    return n;
}

static void test_ioeventfd(void)
{
    struct vm v;
    if (vm_init(&v, kg_ioeventfd_start, kg_ioeventfd_end)) {
        return;
    }
    int e1 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int e2 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    REQUIRE(e1 >= 0 && e2 >= 0);
    CHECK_OK(ms_region_add_eventfd(v.mmio, 0x10, 4, true, 0x42, e1));
    CHECK_OK(ms_region_add_eventfd(v.door, 0, 2, false, 0, e2));
    struct ms_eventfd_info info;
    CHECK_OK(ms_as_eventfd(v.mem, 0, &info));
    CHECK(info.taken);
    struct ms_kvm_exit ex;
    run(&v, &ex);
    CHECK_EQ(ex.kind, MS_KVM_EXIT_HLT);
    CHECK_EQ(efd_read(e1), 1);
    CHECK_EQ(v.dev.writes, 1); /* only the non-matching write */
    CHECK_EQ(v.dev.last_val, 0x43);
    CHECK_EQ(ex.mmio_exits, 1);
    CHECK_EQ(efd_read(e2), 1);
    CHECK_EQ(v.doordev.writes, 0);
    CHECK_EQ(ex.io_exits, 0);
    CHECK_OK(ms_region_del_eventfd(v.mmio, 0x10, 4, true, 0x42, e1));
    CHECK_OK(ms_region_del_eventfd(v.door, 0, 2, false, 0, e2));
    vm_fini(&v);
    close(e1);
    close(e2);
}

static void test_dirty(bool manual)
{
    struct vm v;
    struct ms_kvm_config cfg = {.no_manual_dirty_log = !manual};
    if (vm_init_cfg(&v, kg_dirty_start, kg_dirty_end, &cfg)) {
        return;
    }
    CHECK_OK(ms_region_set_log(v.vram, true, MS_DIRTY_VGA));
    struct ms_kvm_memslot s;
    bool logging = false;
    for (size_t i = 0; i < ms_kvm_nr_slots(v.kvm); i++) {
        if (ms_kvm_slot(v.kvm, i, &s) == 0 && s.gpa == 0x10000) {
            logging = s.flags & MS_KVM_MEM_LOG_DIRTY_PAGES;
        }
    }
    CHECK(logging);
    struct ms_kvm_exit ex;
    run(&v, &ex);
    CHECK_EQ(ex.kind, MS_KVM_EXIT_HLT);
    CHECK_OK(ms_dirty_sync(v.sys, NULL));
    unsigned mask = 0;
    for (unsigned pg = 0; pg < 16; pg++) {
        if (ms_region_get_dirty(v.vram, pg * 0x1000u, 0x1000, MS_DIRTY_VGA)) {
            mask |= 1u << pg;
        }
    }
    CHECK_EQ(mask, (1u << 1) | (1u << 3) | (1u << 7));
    CHECK_EQ(ms_region_test_and_clear_dirty(v.vram, 0, 0x10000, MS_DIRTY_VGA),
             1);
    run(&v, &ex); /* page 2 */
    CHECK_EQ(ex.kind, MS_KVM_EXIT_HLT);
    CHECK_OK(ms_dirty_sync(v.sys, NULL));
    mask = 0;
    for (unsigned pg = 0; pg < 16; pg++) {
        if (ms_region_get_dirty(v.vram, pg * 0x1000u, 0x1000, MS_DIRTY_VGA)) {
            mask |= 1u << pg;
        }
    }
    CHECK_EQ(mask, 1u << 2);
    struct ms_kvm_caps caps;
    CHECK_OK(ms_kvm_get_caps(v.kvm, &caps));
    printf("dirty: exact (manual protect %s)\n",
           caps.manual_dirty_log ? "on" : "off");
    vm_fini(&v);
}

/* ---- a vCPU on its own thread -------------------------------------------- */

struct runner {
    struct vm *v;
    struct ms_kvm_exit ex;
    int rc;
    pthread_t th;
};

static void *runner_main(void *arg)
{
    struct runner *r = arg;
    r->rc = ms_kvm_vcpu_run(r->v->cpu, &r->ex);
    return NULL;
}

static void start(struct runner *r, struct vm *v)
{
    memset(r, 0, sizeof(*r));
    r->v = v;
    REQUIRE(pthread_create(&r->th, NULL, runner_main, r) == 0);
}

static void finish(struct runner *r)
{
    pthread_join(r->th, NULL);
    CHECK_OK(r->rc);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait (bounded) until *@p reaches @want. */
static bool wait_for(const unsigned *p, unsigned want)
{
    for (int i = 0; i < 60000; i++) {
        if (__atomic_load_n(p, __ATOMIC_SEQ_CST) >= want) {
            return true;
        }
        sleep_ms(1);
    }
    return false;
}

static void test_hotplug(void)
{
    struct vm v;
    if (vm_init(&v, kg_hotplug_start, kg_hotplug_end)) {
        return;
    }
    struct runner r;
    start(&r, &v);
    CHECK(wait_for(&v.ports.status_reads, 3)); /* the guest polls */
    ms_region *hp = tu_ram(v.sys, "hotplug", 0x10000);
    CHECK_OK(ms_region_add(v.system, 0x20000, hp)); /* while it runs */
    __atomic_store_n(&v.ports.status, 1, __ATOMIC_SEQ_CST);
    CHECK(wait_for(&v.ports.writes[0], 1));
    CHECK_EQ(v.ports.last[0], 0xab);
    CHECK_EQ(((uint8_t *)ms_region_host(hp))[0], 0xab);
    CHECK_OK(ms_region_del(v.system, hp)); /* while it runs */
    __atomic_store_n(&v.ports.status, 2, __ATOMIC_SEQ_CST);
    finish(&r);
    CHECK_EQ(r.ex.kind, MS_KVM_EXIT_HLT);
    CHECK_EQ(v.ports.writes[1], 1);
    CHECK_EQ(v.ports.last[1], 0); /* the hole reads as unassigned */
    CHECK_EQ(r.ex.mmio_exits, 1); /* only that read */
    ms_region_unref(hp);
    vm_fini(&v);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * @control: run without pausing vCPUs (no-op hooks), to show what the
 * pause prevents; the exits are then only reported, never asserted.
 */
static void test_nohole(bool control)
{
    struct vm v;
    struct ms_kvm_config cfg = {.pause = nop_pause, .resume = nop_resume};
    if (vm_init_cfg(&v, kg_nohole_start, kg_nohole_end,
                    control ? &cfg : NULL)) {
        return;
    }
    /* The guest touches big+0x8000 (gpa 0x38000); windows are punched
     * elsewhere in the same region, at four places in turn. */
    static const uint64_t spots[] = {0x40000, 0x60000, 0x50000, 0x80000};
    volatile uint16_t *counter =
        (volatile uint16_t *)((char *)ms_region_host(v.big) + 0x8000);
    volatile uint8_t *stop = (volatile uint8_t *)counter + 4;
    struct runner r;
    start(&r, &v);
    uint16_t c0 = *counter;
    for (int i = 0; i < 20000 && *counter == c0; i++) {
        sleep_ms(1);
    }
    CHECK(*counter != c0); /* it runs */
    ms_region *win = tu_io(v.sys, "window", 0x1000);
    const unsigned updates = 400;
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < updates / 2; i++) {
        uint64_t spot = spots[(i / 3) % 4] - 0x30000;
        CHECK_OK(ms_region_add_prio(v.big, spot, win, 1));
        CHECK_OK(ms_region_del(v.big, win));
    }
    uint64_t t1 = now_ns();
    uint16_t c1 = *counter;
    *stop = 1;
    finish(&r);
    CHECK_EQ(r.ex.kind, MS_KVM_EXIT_HLT);
    struct ms_kvm_stats st;
    CHECK_OK(ms_kvm_get_stats(v.kvm, &st));
    if (control) {
        printf("no-hole control (vCPUs not paused): %" PRIu64
               " exits into transient holes over %u updates\n",
               r.ex.mmio_exits, updates);
        ms_region_unref(win);
        vm_fini(&v);
        return;
    }
    CHECK_EQ(r.ex.mmio_exits, 0);
    CHECK_EQ(r.ex.io_exits, 0);
    printf("no-hole: %u updates in %.1f ms, guest kept running (counter "
           "moved %u), %" PRIu64 " pauses, %" PRIu64 " unexpected exits\n",
           updates, (double)(t1 - t0) / 1e6, (unsigned)(uint16_t)(c1 - c0),
           st.pauses, r.ex.mmio_exits + r.ex.io_exits);
    CHECK(st.pauses > 0); /* the windows moved: some slots shrank */
    ms_region_unref(win);
    vm_fini(&v);
}

static void test_kick(void)
{
    struct vm v;
    if (vm_init(&v, kg_spin_start, kg_spin_end)) {
        return;
    }
    struct runner r;
    start(&r, &v);
    sleep_ms(20);
    CHECK_OK(ms_kvm_vcpu_kick(v.cpu));
    finish(&r);
    CHECK_EQ(r.ex.kind, MS_KVM_EXIT_KICK);
    /* A pause from another thread with the vCPU spinning in the guest. */
    start(&r, &v);
    sleep_ms(20);
    CHECK_OK(ms_kvm_pause(v.kvm));
    ms_kvm_resume(v.kvm);
    CHECK_OK(ms_kvm_vcpu_kick(v.cpu));
    finish(&r);
    CHECK_EQ(r.ex.kind, MS_KVM_EXIT_KICK);
    vm_fini(&v);
}

int main(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        printf("test_kvm_real: /dev/kvm not available (%s): skipped\n",
               strerror(errno));
        return MS_SKIP;
    }
    close(fd);
    test_basic();
    test_ioeventfd();
    test_dirty(true);
    test_dirty(false);
    test_hotplug();
    test_nohole(false);
    test_nohole(true);
    test_kick();
    return ms_test_summary("test_kvm_real");
}
