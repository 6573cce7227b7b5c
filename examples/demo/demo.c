/* SPDX-License-Identifier: MIT */
/*
 * ms-demo: a small VMM built on memspace.
 *
 * It starts a KVM guest (examples/demo/guest.S, real mode, a few hundred
 * instructions) on a board with RAM, a ROM holding the guest, a serial
 * port on the I/O address space and an MMIO "memory hot-plug controller"
 * with an ioeventfd doorbell.  The guest asks the controller for memory;
 * the device adds a RAM region (transaction, commit, region_add, the
 * memslot ioctl); the guest writes and checks it and rings the doorbell;
 * the host syncs the dirty log and reports the dirty pages; the guest asks
 * for the memory to be unplugged and sees the hole.  Along the way the
 * demo prints `info mtree -f` before and after, the listener events, the
 * KVM ioctls they caused and the guest's serial output.
 *
 * Without /dev/kvm (or with --replay) it says so and replays the same
 * accesses without a guest: a thread performs them through the access
 * path, and the ioctls go to a stand-in that accepts them.
 *
 * Exit status: 0 if the guest did everything and the dirty pages were
 * reported exactly; 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <memspace/access.h>
#include <memspace/memspace.h>

#define RAM_SIZE 0x10000u
#define CTL_GPA 0xd0000u
#define HP_GPA 0x80000u
#define HP_SIZE 0x10000u
#define ROM_GPA 0xfffff000u
#define ROM_SIZE 0x1000u
#define SERIAL_PORT 0x3f8u

extern const uint8_t demo_guest_start[], demo_guest_end[];

struct demo {
    bool kvm_mode;
    ms_system *sys;
    ms_region *system, *io, *ram, *bios, *ctl, *serial, *hp;
    ms_as *mem, *ioas;
    ms_kvm *kvm;
    ms_kvm_vcpu *cpu;
    pthread_mutex_t bql; /* the VMM's big lock: devices and the host */
    int doorbell;
    unsigned acks; /* atomic: doorbells handled */
    bool halted;   /* atomic */
    char line[256];
    size_t len;
    struct ms_listener printer;
    bool printing; /* the printer is quiet during its own replay */
    unsigned ok_lines, fail_lines;
    unsigned dirty_ok;
    struct ms_kvm_exit exit;
    int run_rc;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* ---- devices ------------------------------------------------------------- */

static uint64_t serial_read(void *opaque, uint64_t off, unsigned size)
{
    (void)opaque, (void)size;
    return off == 5 ? 0x60 : 0; /* LSR: transmitter empty */
}

static void serial_write(void *opaque, uint64_t off, uint64_t val,
                         unsigned size)
{
    struct demo *d = opaque;
    (void)size;
    if (off != 0) {
        return;
    }
    pthread_mutex_lock(&d->bql);
    char c = (char)val;
    if (c == '\n' || d->len == sizeof(d->line) - 1) {
        d->line[d->len] = 0;
        say("[serial]   %s\n", d->line);
        if (strstr(d->line, "FAILED")) {
            d->fail_lines++;
        } else if (strstr(d->line, "unplugged:")) {
            d->ok_lines++;
        }
        d->len = 0;
    } else {
        d->line[d->len++] = c;
    }
    pthread_mutex_unlock(&d->bql);
}

static const struct ms_region_ops serial_ops = {
    .read = serial_read,
    .write = serial_write,
    .endianness = MS_ENDIAN_LITTLE,
    .impl = {.min_access_size = 1, .max_access_size = 1},
};

/* The device edits the topology from its MMIO handler, under the BQL. */
static void plug(struct demo *d)
{
    if (d->hp) {
        return;
    }
    say("[device]   plug: adding %u KiB of RAM \"hotplug\" at 0x%x, with "
        "dirty logging\n",
        HP_SIZE / 1024, HP_GPA);
    ms_region *hp = NULL;
    struct ms_region_config c = {
        .kind = MS_REGION_RAM, .name = "hotplug", .size = HP_SIZE};
    if (ms_region_new(d->sys, &c, &hp) != 0 ||
        ms_region_set_log(hp, true, MS_DIRTY_VGA) != 0) {
        say("[device]   cannot create the region\n");
        ms_region_unref(hp);
        return;
    }
    int err = ms_region_add(d->system, HP_GPA, hp);
    if (err != 0) {
        say("[device]   plug failed: %s\n", strerror(-err));
    }
    d->hp = hp;
}

static void unplug(struct demo *d)
{
    if (!d->hp) {
        return;
    }
    say("[device]   unplug: removing \"hotplug\"\n");
    int err = ms_region_del(d->system, d->hp);
    if (err != 0) {
        say("[device]   unplug failed: %s\n", strerror(-err));
    }
    ms_region_unref(d->hp);
    d->hp = NULL;
}

static uint64_t ctl_read(void *opaque, uint64_t off, unsigned size)
{
    struct demo *d = opaque;
    (void)size;
    switch (off) {
    case 4: {
        pthread_mutex_lock(&d->bql);
        uint64_t v = d->hp != NULL;
        pthread_mutex_unlock(&d->bql);
        return v;
    }
    case 8:
        return HP_GPA >> 4; /* a real-mode segment */
    case 0xc:
        return HP_SIZE;
    case 0x14:
        return __atomic_load_n(&d->acks, __ATOMIC_SEQ_CST);
    default:
        return 0;
    }
}

static void ctl_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct demo *d = opaque;
    (void)size;
    if (off != 0) {
        return; /* the doorbell (+0x10) only ever reaches here unhandled */
    }
    pthread_mutex_lock(&d->bql);
    if (val == 1) {
        plug(d);
    } else if (val == 2) {
        unplug(d);
    }
    pthread_mutex_unlock(&d->bql);
}

static const struct ms_region_ops ctl_ops = {
    .read = ctl_read,
    .write = ctl_write,
    .endianness = MS_ENDIAN_LITTLE,
    .impl = {.min_access_size = 1, .max_access_size = 4},
};

/* ---- what the listeners and the backend did ------------------------------ */

static int pr_add(struct ms_listener *l, const struct ms_section *s)
{
    if (!((struct demo *)l->opaque)->printing) {
        return 0;
    }
    say("[listener] region_add  0x%" PRIx64 "-0x%" PRIx64 " %s%s\n", s->gpa,
        s->last, ms_region_name(s->mr),
        ms_region_log_mask(s->mr) ? " (logged)" : "");
    return 0;
}

static int pr_del(struct ms_listener *l, const struct ms_section *s)
{
    if (!((struct demo *)l->opaque)->printing) {
        return 0;
    }
    say("[listener] region_del  0x%" PRIx64 "-0x%" PRIx64 " %s\n", s->gpa,
        s->last, ms_region_name(s->mr));
    return 0;
}

static int pr_eventfd(struct ms_listener *l, const struct ms_section *s,
                      bool match, uint64_t data, int fd)
{
    (void)l, (void)match, (void)data, (void)fd;
    say("[listener] eventfd     0x%" PRIx64 " size %" PRIu64
        " (the doorbell)\n",
        s->gpa, s->size);
    return 0;
}

static const char *flag_names(uint32_t f)
{
    switch (f & 3u) {
    case 0:
        return "0";
    case MS_KVM_MEM_LOG_DIRTY_PAGES:
        return "LOG_DIRTY_PAGES";
    case MS_KVM_MEM_READONLY:
        return "READONLY";
    default:
        return "LOG_DIRTY_PAGES|READONLY";
    }
}

static void trace(void *opaque, const struct ms_kvm_event *ev)
{
    (void)opaque;
    char res[64] = "";
    if (ev->result < 0) {
        snprintf(res, sizeof(res), " -> %s", strerror(-ev->result));
    }
    switch (ev->kind) {
    case MS_KVM_EV_MEMSLOT:
        if (ev->slot->size == 0) {
            say("[kvm]      KVM_SET_USER_MEMORY_REGION slot %u gpa 0x%" PRIx64
                " size 0 (delete)%s\n",
                ev->slot->slot, ev->slot->gpa, res);
        } else {
            say("[kvm]      KVM_SET_USER_MEMORY_REGION slot %u gpa 0x%" PRIx64
                " size 0x%" PRIx64 " flags %s (%s+0x%" PRIx64 ")%s\n",
                ev->slot->slot, ev->slot->gpa, ev->slot->size,
                flag_names(ev->slot->flags), ms_region_name(ev->region),
                ev->offset, res);
        }
        break;
    case MS_KVM_EV_GET_DIRTY_LOG:
        say("[kvm]      KVM_GET_DIRTY_LOG slot %u: %" PRIu64
            " dirty page(s)%s\n",
            ev->slot->slot, ev->dirty_pages, res);
        break;
    case MS_KVM_EV_CLEAR_DIRTY_LOG:
        say("[kvm]      KVM_CLEAR_DIRTY_LOG slot %u pages %" PRIu64 "+%" PRIu64
            "%s\n",
            ev->slot->slot, ev->first_page, ev->num_pages, res);
        break;
    case MS_KVM_EV_IOEVENTFD:
        say("[kvm]      KVM_IOEVENTFD %s %s 0x%" PRIx64 " len %u%s\n",
            ev->ioeventfd->deassign ? "deassign" : "assign",
            ev->ioeventfd->pio ? "port" : "mmio", ev->ioeventfd->addr,
            ev->ioeventfd->len, res);
        break;
    case MS_KVM_EV_PAUSE:
        say("[kvm]      vCPUs paused\n");
        break;
    case MS_KVM_EV_RESUME:
        say("[kvm]      vCPUs resumed\n");
        break;
    }
}

/* ---- replay: a stand-in kernel and a stand-in guest ---------------------- */

static int fake_caps(void *opaque, struct ms_kvm_caps *caps)
{
    (void)opaque;
    /* No in-kernel ioeventfds: the access path signals the doorbell. */
    *caps = (struct ms_kvm_caps){.nr_memslots = 32, .readonly_mem = true};
    return 0;
}

static int fake_set(void *opaque, const struct ms_kvm_memslot *s)
{
    (void)opaque, (void)s;
    return 0;
}

static int fake_get_log(void *opaque, uint32_t slot, uint64_t *bitmap)
{
    (void)opaque, (void)slot, (void)bitmap;
    return 0; /* guest writes went through the access path instead */
}

static int fake_clear_log(void *opaque, uint32_t slot, uint64_t first,
                          uint32_t num, const uint64_t *bitmap)
{
    (void)opaque, (void)slot, (void)first, (void)num, (void)bitmap;
    return 0;
}

static int fake_ioeventfd(void *opaque, const struct ms_kvm_ioeventfd *e)
{
    (void)opaque, (void)e;
    return -ENOSYS;
}

static const struct ms_kvm_ops fake_ops = {
    .get_caps = fake_caps,
    .set_memslot = fake_set,
    .get_dirty_log = fake_get_log,
    .clear_dirty_log = fake_clear_log,
    .ioeventfd = fake_ioeventfd,
};

static void replay_print(struct demo *d, const char *s)
{
    for (; *s; s++) {
        (void)ms_as_stb(d->ioas, SERIAL_PORT, (uint8_t)*s,
                        MS_ATTRS_UNSPECIFIED);
    }
}

/* The guest's accesses, in order, through the access path. */
static void replay_guest(struct demo *d)
{
    struct ms_attrs a = MS_ATTRS_UNSPECIFIED;
    ms_tx_result r;
    replay_print(d, "hello from the guest: asking the controller for "
                    "memory\n");
    (void)ms_as_stl_le(d->mem, CTL_GPA, 1, a);
    if (!(ms_as_ldub(d->mem, CTL_GPA + 4, a, &r) & 1)) {
        replay_print(d, "FAILED\n");
        return;
    }
    uint64_t base = (uint64_t)ms_as_lduw_le(d->mem, CTL_GPA + 8, a, &r) << 4;
    static const uint32_t pat[3] = {0x11111111, 0x22222222, 0x55555555};
    static const uint64_t off[3] = {0x0000, 0x2000, 0x5000};
    for (int i = 0; i < 3; i++) {
        (void)ms_as_stl_le(d->mem, base + off[i], pat[i], a);
    }
    for (int i = 0; i < 3; i++) {
        if (ms_as_ldl_le(d->mem, base + off[i], a, &r) != pat[i]) {
            replay_print(d, "FAILED\n");
            return;
        }
    }
    replay_print(d, "wrote and checked pages 0, 2 and 5 of the new "
                    "memory\n");
    (void)ms_as_stl_le(d->mem, CTL_GPA + 0x10, 1, a); /* doorbell */
    while (ms_as_ldl_le(d->mem, CTL_GPA + 0x14, a, &r) == 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    (void)ms_as_stl_le(d->mem, CTL_GPA, 2, a);
    if ((ms_as_ldub(d->mem, CTL_GPA + 4, a, &r) & 1) ||
        ms_as_ldl_le(d->mem, base + 0x2000, a, &r) != 0) {
        replay_print(d, "FAILED\n");
        return;
    }
    replay_print(d, "unplugged: the old address now reads 0 (a hole)\n");
}

/* ---- running ------------------------------------------------------------- */

static void *guest_thread(void *arg)
{
    struct demo *d = arg;
    if (d->kvm_mode) {
        d->run_rc = ms_kvm_vcpu_run(d->cpu, &d->exit);
    } else {
        replay_guest(d);
    }
    __atomic_store_n(&d->halted, true, __ATOMIC_SEQ_CST);
    uint64_t one = 1;
    /* Wake the host loop (the doorbell's eventfd doubles as a wake-up). */
    if (write(d->doorbell, &one, sizeof(one)) < 0) {
        (void)0;
    }
    return NULL;
}

/* The host side of the doorbell: sync the dirty log and report. */
static void doorbell(struct demo *d)
{
    pthread_mutex_lock(&d->bql);
    say("[host]     doorbell rang (ioeventfd%s): syncing the dirty log\n",
        d->kvm_mode ? ", no exit" : " signalled by the access path");
    int err = ms_dirty_sync(d->sys, NULL);
    if (err) {
        say("[host]     sync failed: %s\n", strerror(-err));
    }
    char pages[128] = "";
    size_t len = 0;
    unsigned mask = 0;
    for (unsigned pg = 0; d->hp && pg < HP_SIZE / 0x1000; pg++) {
        if (ms_region_get_dirty(d->hp, pg * 0x1000u, 0x1000, MS_DIRTY_VGA)) {
            mask |= 1u << pg;
            len += (size_t)snprintf(pages + len, sizeof(pages) - len, " 0x%x",
                                    HP_GPA + pg * 0x1000u);
        }
    }
    say("[host]     dirty pages of \"hotplug\":%s\n", len ? pages : " none");
    d->dirty_ok = mask == ((1u << 0) | (1u << 2) | (1u << 5));
    __atomic_add_fetch(&d->acks, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&d->bql);
}

static void print_mtree(struct demo *d)
{
    if (ms_mtree_fprint(d->sys, MS_MTREE_FLAT, stdout) != 0) {
        say("(info mtree failed)\n");
    }
    fflush(stdout);
}

static ms_region *mk(struct demo *d, struct ms_region_config c)
{
    ms_region *r = NULL;
    int err = ms_region_new(d->sys, &c, &r);
    if (err) {
        fprintf(stderr, "ms-demo: cannot create %s: %s\n", c.name,
                strerror(-err));
        exit(1);
    }
    return r;
}

static void build(struct demo *d)
{
    struct ms_region_config c;
    d->system = mk(d, (struct ms_region_config){.kind = MS_REGION_CONTAINER,
                                                .name = "system",
                                                .size = MS_SIZE_FULL});
    d->io =
        mk(d, (struct ms_region_config){
                  .kind = MS_REGION_CONTAINER, .name = "io", .size = 0x10000});
    d->ram = mk(d, (struct ms_region_config){
                       .kind = MS_REGION_RAM, .name = "ram", .size = RAM_SIZE});
    d->bios =
        mk(d, (struct ms_region_config){
                  .kind = MS_REGION_ROM, .name = "bios", .size = ROM_SIZE});
    c = (struct ms_region_config){.kind = MS_REGION_IO,
                                  .name = "hotplug-ctl",
                                  .size = 0x1000,
                                  .ops = &ctl_ops,
                                  .opaque = d};
    d->ctl = mk(d, c);
    c = (struct ms_region_config){.kind = MS_REGION_IO,
                                  .name = "serial",
                                  .size = 8,
                                  .ops = &serial_ops,
                                  .opaque = d};
    d->serial = mk(d, c);

    /* The guest in the ROM, with a jump to it at the reset vector. */
    uint8_t *rom = ms_region_host(d->bios);
    memset(rom, 0xf4, ROM_SIZE);
    memcpy(rom, demo_guest_start, (size_t)(demo_guest_end - demo_guest_start));
    uint16_t rel = (uint16_t)(0xf000 - 0xfff3);
    rom[0xff0] = 0xe9;
    rom[0xff1] = (uint8_t)rel;
    rom[0xff2] = (uint8_t)(rel >> 8);

    if (ms_txn_begin(d->sys) || ms_region_add(d->system, 0, d->ram) ||
        ms_region_add(d->system, CTL_GPA, d->ctl) ||
        ms_region_add(d->system, ROM_GPA, d->bios) ||
        ms_region_add(d->io, SERIAL_PORT, d->serial) ||
        ms_as_new(d->sys, d->system, "memory", &d->mem) ||
        ms_as_new(d->sys, d->io, "I/O", &d->ioas) || ms_txn_commit(d->sys)) {
        fprintf(stderr, "ms-demo: cannot build the board\n");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    struct demo d = {0};
    bool force_replay = argc > 1 && strcmp(argv[1], "--replay") == 0;
    if (argc > 1 && !force_replay) {
        fprintf(stderr, "usage: %s [--replay]\n", argv[0]);
        return 2;
    }
    pthread_mutex_init(&d.bql, NULL);
    if (ms_system_new(NULL, &d.sys) != 0) {
        return 1;
    }
    build(&d);
    d.doorbell = eventfd(0, EFD_CLOEXEC);
    if (d.doorbell < 0) {
        return 1;
    }

    say("memspace demo: a KVM guest asks for memory at run time\n");
    struct ms_kvm_config cfg = {.trace = trace, .trace_opaque = &d};
    int err = -ENOENT;
    char why[160] = "--replay";
    if (!force_replay) {
        err = ms_kvm_new(d.sys, &cfg, &d.kvm);
        snprintf(why, sizeof(why), "/dev/kvm: %s", strerror(-err));
    }
    if (err == 0) {
        d.kvm_mode = true;
        say("mode: KVM guest (/dev/kvm)\n");
    } else {
        say("mode: replay without a guest (%s): the same accesses through "
            "the access path; the ioctls go to a stand-in kernel\n",
            why);
        cfg.ops = &fake_ops;
        if (ms_kvm_new(d.sys, &cfg, &d.kvm) != 0) {
            return 1;
        }
    }

    say("\n== attaching KVM: the topology becomes memslots ==\n");
    err = ms_kvm_attach(d.kvm, d.mem, d.ioas);
    if (err) {
        say("attach failed: %s\n", strerror(-err));
        return 1;
    }
    say("\n== ioeventfd: the controller's doorbell at 0x%x ==\n",
        CTL_GPA + 0x10);
    d.printer = (struct ms_listener){
        .name = "demo-printer",
        .priority = 5,
        .opaque = &d,
        .region_add = pr_add,
        .region_del = pr_del,
        .eventfd_add = pr_eventfd,
    };
    if (ms_listener_register(d.mem, &d.printer) != 0 ||
        ms_region_add_eventfd(d.ctl, 0x10, 4, false, 0, d.doorbell) != 0) {
        say("cannot set up the doorbell\n");
        return 1;
    }
    d.printing = true;
    say("\n== info mtree -f (before) ==\n");
    print_mtree(&d);
    if (d.kvm_mode && (err = ms_kvm_vcpu_new(d.kvm, 0, &d.cpu)) != 0) {
        say("cannot create the vCPU: %s\n", strerror(-err));
        return 1;
    }

    say("== running the guest ==\n");
    pthread_t th;
    if (pthread_create(&th, NULL, guest_thread, &d) != 0) {
        return 1;
    }
    while (!__atomic_load_n(&d.halted, __ATOMIC_SEQ_CST)) {
        struct pollfd p = {.fd = d.doorbell, .events = POLLIN};
        if (poll(&p, 1, 60000) <= 0) {
            say("[host]     no doorbell within 60 s\n");
            break;
        }
        uint64_t n;
        if (read(d.doorbell, &n, sizeof(n)) != sizeof(n) ||
            __atomic_load_n(&d.halted, __ATOMIC_SEQ_CST)) {
            continue;
        }
        doorbell(&d);
    }
    pthread_join(th, NULL);
    if (d.kvm_mode) {
        say("[host]     guest stopped: %s\n", d.run_rc ? strerror(-d.run_rc)
                                              : d.exit.kind == MS_KVM_EXIT_HLT
                                                  ? "hlt"
                                                  : "unexpected exit");
    }
    say("\n== info mtree -f (after) ==\n");
    print_mtree(&d);

    struct ms_kvm_stats st;
    if (ms_kvm_get_stats(d.kvm, &st) != 0) {
        memset(&st, 0, sizeof(st));
    }
    bool ok = d.ok_lines == 1 && d.fail_lines == 0 && d.dirty_ok;
    say("== result: %s ==\n", ok ? "ok" : "FAILED");
    say("[stats]    memslot ioctls: %" PRIu64 " created, %" PRIu64
        " deleted, %" PRIu64 " updated; dirty-log ioctls %" PRIu64
        "; ioeventfd ioctls %" PRIu64 "\n",
        st.slot_creates, st.slot_deletes, st.slot_updates, st.dirty_ioctls,
        st.ioeventfd_ioctls);
    if (d.kvm_mode) {
        say("[stats]    guest exits routed: %" PRIu64 " MMIO, %" PRIu64
            " port I/O; library %.3f ms, ioctls %.3f ms\n",
            d.exit.mmio_exits, d.exit.io_exits, (double)st.plan_ns / 1e6,
            (double)st.ioctl_ns / 1e6);
    }

    say("\n== teardown ==\n");
    d.printing = false;
    if (ms_region_del_eventfd(d.ctl, 0x10, 4, false, 0, d.doorbell) != 0) {
        say("cannot remove the doorbell\n");
    }
    (void)ms_listener_unregister(&d.printer);
    ms_kvm_vcpu_free(d.cpu);
    ms_kvm_free(d.kvm);
    ms_region *rs[] = {d.system, d.io, d.ram, d.bios, d.ctl, d.serial};
    for (size_t i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
        ms_region_unref(rs[i]);
    }
    ms_system_free(d.sys);
    close(d.doorbell);
    pthread_mutex_destroy(&d.bql);
    return ok ? 0 : 1;
}
