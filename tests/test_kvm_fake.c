/* SPDX-License-Identifier: MIT */
/*
 * The KVM backend through the real commit machinery, with the ioctl seam
 * replaced by the kernel-rules model (kvm_model.c): exact ioctl sequences,
 * slot-limit exhaustion, failures, dirty logging, ioeventfds, and a
 * PC-style board whose PAM segments toggle many times.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness.h"
#include "kvm_board.h"
#include "kvm_model.h"
#include "testutil.h"

#define PG UINT64_C(0x1000)

static char all_log[8192];

static void log_all(void *opaque, enum ms_log_level level, const char *msg)
{
    (void)opaque, (void)level;
    size_t len = strlen(all_log);
    snprintf(all_log + len, sizeof(all_log) - len, "%s\n", msg);
    tu_log(opaque, level, msg);
}

struct fx {
    ms_system *sys;
    ms_region *system, *io_root;
    ms_as *mem, *io;
    struct kvm_model m;
    ms_kvm *kvm;
};

static void fx_init_cfg(struct fx *f, uint32_t nr_slots,
                        struct ms_kvm_config cfg)
{
    memset(f, 0, sizeof(*f));
    struct ms_system_config sc = {.log = log_all};
    REQUIRE(ms_system_new(&sc, &f->sys) == 0);
    f->system = tu_container(f->sys, "system", MS_SIZE_FULL);
    f->io_root = tu_container(f->sys, "io", 0x10000);
    REQUIRE(ms_as_new(f->sys, f->system, "memory", &f->mem) == 0);
    REQUIRE(ms_as_new(f->sys, f->io_root, "I/O", &f->io) == 0);
    kvm_model_init(&f->m, nr_slots, PG);
    cfg.ops = &kvm_model_ops;
    cfg.ops_opaque = &f->m;
    cfg.pause = kvm_model_pause;
    cfg.resume = kvm_model_resume;
    cfg.pause_opaque = &f->m;
    cfg.host_page_size = PG;
    REQUIRE(ms_kvm_new(f->sys, &cfg, &f->kvm) == 0);
}

static void fx_init(struct fx *f)
{
    fx_init_cfg(f, 32, (struct ms_kvm_config){0});
}

static void fx_attach(struct fx *f)
{
    CHECK_OK(ms_kvm_attach(f->kvm, f->mem, f->io));
}

static void fx_fini(struct fx *f)
{
    ms_kvm_free(f->kvm);
    CHECK_EQ(kvm_model_nr_slots(&f->m), 0);
    CHECK_EQ(f->m.nr_ioevs, 0);
    ms_region_unref(f->system);
    ms_region_unref(f->io_root);
    ms_system_free(f->sys);
    kvm_model_free(&f->m);
}

/* The backend's table and the model agree exactly. */
static void check_table(ms_kvm *kvm, const struct kvm_model *m)
{
    CHECK_EQ(ms_kvm_nr_slots(kvm), kvm_model_nr_slots(m));
    for (size_t i = 0; i < ms_kvm_nr_slots(kvm); i++) {
        struct ms_kvm_memslot s;
        CHECK_OK(ms_kvm_slot(kvm, i, &s));
        const struct kvm_model_slot *k = &m->slots[s.slot];
        CHECK(k->used && k->gpa == s.gpa && k->size == s.size &&
              k->host == s.host && k->flags == s.flags);
    }
}

static void check_consistent(struct fx *f)
{
    check_table(f->kvm, &f->m);
}

static ms_region *ram(struct fx *f, const char *name, uint64_t size)
{
    ms_region *r = tu_ram(f->sys, name, size);
    kvm_model_name(&f->m, ms_region_host(r), size, name);
    return r;
}

/* Take the log and clear it (the returned text lives until next call). */
static const char *take(struct fx *f)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf), "%s", kvm_model_log(&f->m));
    kvm_model_log_clear(&f->m);
    return buf;
}

static void test_sequences(void)
{
    struct fx f;
    fx_init(&f);
    ms_region *r = ram(&f, "ram", 16 * PG);
    CHECK_OK(ms_region_add(f.system, 0, r));
    /* Mapped before attaching: replayed at attach. */
    fx_attach(&f);
    CHECK_STR(take(&f), "set 0 gpa=0x0 size=0x10000 flags=0 host=ram+0x0\n");

    /* Adding: one creation. */
    ms_region *r2 = ram(&f, "ram2", 4 * PG);
    CHECK_OK(ms_region_add(f.system, 0x100000, r2));
    CHECK_STR(take(&f),
              "set 1 gpa=0x100000 size=0x4000 flags=0 host=ram2+0x0\n");

    /* Moving: the old place is not RAM anymore, no pause. */
    CHECK_OK(ms_region_set_address(r2, 0x200000));
    CHECK_STR(take(&f), "delete 1 gpa=0x100000\n"
                        "set 1 gpa=0x200000 size=0x4000 flags=0 "
                        "host=ram2+0x0\n");

    /* Splitting: an MMIO window punched into RAM shrinks its slot; the
     * surviving parts would go through a hole, so vCPUs are paused. */
    ms_region *win = tu_io(f.sys, "win", PG);
    CHECK_OK(ms_region_add_prio(f.system, 0x4000, win, 1));
    CHECK_STR(take(&f), "pause\n"
                        "delete 0 gpa=0x0\n"
                        "set 0 gpa=0x0 size=0x4000 flags=0 host=ram+0x0\n"
                        "set 2 gpa=0x5000 size=0xb000 flags=0 "
                        "host=ram+0x5000\n"
                        "resume\n");
    /* Closing the window only fills the hole. */
    CHECK_OK(ms_region_del(f.system, win));
    CHECK_STR(take(&f),
              "set 3 gpa=0x4000 size=0x1000 flags=0 host=ram+0x4000\n");
    /* Punching the same window again is a pure deletion. */
    CHECK_OK(ms_region_add_prio(f.system, 0x4000, win, 1));
    CHECK_STR(take(&f), "delete 3 gpa=0x4000\n");
    CHECK_OK(ms_region_del(f.system, win));
    CHECK_STR(take(&f),
              "set 3 gpa=0x4000 size=0x1000 flags=0 host=ram+0x4000\n");

    /* Read-only toggling: KVM cannot flip READONLY in place. */
    CHECK_OK(ms_region_set_readonly(r2, true));
    CHECK_STR(take(&f), "pause\n"
                        "delete 1 gpa=0x200000\n"
                        "set 1 gpa=0x200000 size=0x4000 flags=2 "
                        "host=ram2+0x0\n"
                        "resume\n");
    CHECK_OK(ms_region_set_readonly(r2, false));
    CHECK_STR(take(&f), "pause\n"
                        "delete 1 gpa=0x200000\n"
                        "set 1 gpa=0x200000 size=0x4000 flags=0 "
                        "host=ram2+0x0\n"
                        "resume\n");

    /* A commit that changes nothing for KVM: no ioctl at all. */
    ms_region *io = tu_io(f.sys, "dev", PG);
    CHECK_OK(ms_region_add(f.system, 0x300000, io));
    CHECK_STR(take(&f), "");

    /* Removing. */
    CHECK_OK(ms_region_del(f.system, r2));
    CHECK_STR(take(&f), "delete 1 gpa=0x200000\n");
    check_consistent(&f);
    CHECK_EQ(f.m.holes, 0);

    /* `info mtree -f` marks what a slot covers. */
    char *txt = NULL;
    CHECK_OK(ms_mtree_to_string(f.sys, MS_MTREE_FLAT, &txt));
    CHECK(txt && strstr(txt, "(prio 0, ram): ram KVM\n"));
    CHECK(txt && strstr(txt, "(prio 0, i/o): dev\n"));
    free(txt);

    struct ms_kvm_stats st;
    CHECK_OK(ms_kvm_get_stats(f.kvm, &st));
    CHECK_EQ(st.slots_used, 3);
    CHECK_EQ(st.pauses, 3);
    CHECK(st.slot_creates >= 9 && st.slot_deletes >= 6);

    ms_region_unref(r);
    ms_region_unref(r2);
    ms_region_unref(win);
    ms_region_unref(io);
    fx_fini(&f);
}

static struct ms_iommu_entry no_translation(void *opaque, uint64_t addr,
                                            enum ms_iommu_perm flag, int index)
{
    (void)opaque, (void)addr, (void)flag, (void)index;
    return (struct ms_iommu_entry){0};
}

static const struct ms_iommu_ops no_iommu_ops = {.translate = no_translation};

static void test_kinds_and_alignment(void)
{
    struct fx f;
    fx_init(&f);
    fx_attach(&f);
    ms_region *rom = tu_rom(f.sys, "rom", 2 * PG);
    kvm_model_name(&f.m, ms_region_host(rom), 2 * PG, "rom");
    CHECK_OK(ms_region_add(f.system, 0x10000, rom));
    CHECK_STR(take(&f), "set 0 gpa=0x10000 size=0x2000 flags=2 host=rom+0x0\n");

    /* A ROM device: read-only slot in ROMD mode, none out of it. */
    ms_region *romd = NULL;
    CHECK_OK(
        ms_region_new(f.sys,
                      &(struct ms_region_config){.kind = MS_REGION_ROM_DEVICE,
                                                 .name = "flash",
                                                 .size = PG,
                                                 .ops = &tu_dummy_ops},
                      &romd));
    kvm_model_name(&f.m, ms_region_host(romd), PG, "flash");
    CHECK_OK(ms_region_add(f.system, 0x20000, romd));
    CHECK_STR(take(&f),
              "set 1 gpa=0x20000 size=0x1000 flags=2 host=flash+0x0\n");
    CHECK_OK(ms_region_set_romd(romd, false));
    CHECK_STR(take(&f), "delete 1 gpa=0x20000\n");
    CHECK_OK(ms_region_set_romd(romd, true));
    CHECK_STR(take(&f),
              "set 1 gpa=0x20000 size=0x1000 flags=2 host=flash+0x0\n");

    /* Not page-aligned: the interior only, if guest and host addresses
     * agree modulo the page (else KVM cannot map it at all). */
    ms_region *odd = ram(&f, "odd", 4 * PG);
    ms_region *odd_a = tu_alias(f.sys, "odd-a", odd, 0x800, 0x2800);
    CHECK_OK(ms_region_add(f.system, 0x30800, odd_a));
    CHECK_STR(take(&f),
              "set 2 gpa=0x31000 size=0x2000 flags=0 host=odd+0x1000\n");
    ms_region *skew = ram(&f, "skew", 4 * PG);
    CHECK_OK(ms_region_add(f.system, 0x60800, skew));
    CHECK_STR(take(&f), "");
    /* Sub-page: nothing. */
    ms_region *tiny = ram(&f, "tiny", 0x800);
    CHECK_OK(ms_region_add(f.system, 0x40000, tiny));
    CHECK_STR(take(&f), "");
    /* An IOMMU: nothing either, also while globally logged. */
    ms_region *iommu =
        tu_iommu(f.sys, "iommu", 0x10000, &no_iommu_ops, NULL);
    CHECK_OK(ms_region_add(f.system, 0x70000, iommu));
    CHECK_STR(take(&f), "");
    CHECK_OK(ms_dirty_global_start(f.sys, MS_GLOBAL_DIRTY_MIGRATION));
    CHECK_OK(ms_dirty_global_stop(f.sys, MS_GLOBAL_DIRTY_MIGRATION));
    CHECK(!strstr(take(&f), "0x70000"));
    ms_region_unref(iommu);
    char *txt = NULL;
    CHECK_OK(ms_mtree_to_string(f.sys, MS_MTREE_FLAT, &txt));
    CHECK(txt && strstr(txt, "(prio 0, ram): odd @0000000000000800\n"));
    CHECK(txt && strstr(txt, "(prio 0, ram): skew\n"));
    CHECK(txt && strstr(txt, "(prio 0, ram): tiny\n"));
    CHECK(txt && strstr(txt, "(prio 0, rom): rom KVM\n"));
    free(txt);

    /* A read-only alias of RAM still maps a writable slot (QEMU's rule:
     * only the terminating region's flag counts). */
    ms_region *r = ram(&f, "r", PG);
    ms_region *ro = tu_alias(f.sys, "r-ro", r, 0, PG);
    CHECK_OK(ms_region_set_readonly(ro, true));
    CHECK_OK(ms_region_add(f.system, 0x50000, ro));
    CHECK_STR(take(&f), "set 3 gpa=0x50000 size=0x1000 flags=0 host=r+0x0\n");
    ms_region_unref(odd_a);
    ms_region_unref(skew);
    check_consistent(&f);
    ms_region_unref(rom);
    ms_region_unref(romd);
    ms_region_unref(odd);
    ms_region_unref(tiny);
    ms_region_unref(r);
    ms_region_unref(ro);
    fx_fini(&f);

    /* Without KVM_CAP_READONLY_MEM: ROM gets a writable slot, a ROM device
     * none (its writes must trap). */
    fx_init_cfg(&f, 32, (struct ms_kvm_config){.no_readonly_mem = true});
    fx_attach(&f);
    rom = tu_rom(f.sys, "rom", PG);
    kvm_model_name(&f.m, ms_region_host(rom), PG, "rom");
    CHECK_OK(ms_region_add(f.system, 0, rom));
    CHECK_OK(
        ms_region_new(f.sys,
                      &(struct ms_region_config){.kind = MS_REGION_ROM_DEVICE,
                                                 .name = "flash",
                                                 .size = PG,
                                                 .ops = &tu_dummy_ops},
                      &romd));
    CHECK_OK(ms_region_add(f.system, 0x1000, romd));
    CHECK_STR(take(&f), "set 0 gpa=0x0 size=0x1000 flags=0 host=rom+0x0\n");
    ms_region_unref(rom);
    ms_region_unref(romd);
    fx_fini(&f);

    /* max_slot_size: several slots, all deleted on removal. */
    fx_init_cfg(&f, 32, (struct ms_kvm_config){.max_slot_size = 4 * PG});
    fx_attach(&f);
    r = ram(&f, "big", 10 * PG);
    CHECK_OK(ms_region_add(f.system, 0, r));
    CHECK_STR(take(&f), "set 0 gpa=0x0 size=0x4000 flags=0 host=big+0x0\n"
                        "set 1 gpa=0x4000 size=0x4000 flags=0 "
                        "host=big+0x4000\n"
                        "set 2 gpa=0x8000 size=0x2000 flags=0 "
                        "host=big+0x8000\n");
    CHECK_OK(ms_region_del(f.system, r));
    CHECK_STR(take(&f), "delete 0 gpa=0x0\n"
                        "delete 1 gpa=0x4000\n"
                        "delete 2 gpa=0x8000\n");
    ms_region_unref(r);
    fx_fini(&f);
}

static void test_limit(void)
{
    struct fx f;
    fx_init(&f);
    f.m.caps.nr_memslots = 4; /* what the "kernel" reports */
    ms_kvm_free(f.kvm);
    struct ms_kvm_config cfg = {
        .ops = &kvm_model_ops, .ops_opaque = &f.m, .host_page_size = PG};
    REQUIRE(ms_kvm_new(f.sys, &cfg, &f.kvm) == 0);
    struct ms_kvm_caps caps;
    CHECK_OK(ms_kvm_get_caps(f.kvm, &caps));
    CHECK_EQ(caps.nr_memslots, 4);
    fx_attach(&f);
    ms_region *r[6];
    for (int i = 0; i < 6; i++) {
        char name[8];
        snprintf(name, sizeof(name), "r%d", i);
        r[i] = ram(&f, name, PG);
    }
    for (int i = 0; i < 4; i++) {
        CHECK_OK(ms_region_add(f.system, (uint64_t)i * 0x10000, r[i]));
    }
    kvm_model_log_clear(&f.m);
    all_log[0] = 0;
    /* The fifth does not fit: a clear error, no abort, a consistent
     * state; its memory is still reachable through exits. */
    CHECK_ERR(ms_region_add(f.system, 0x40000, r[4]), ENOSPC);
    CHECK_STR(take(&f), "");
    CHECK(strstr(all_log, "KVM: no free memslot: 4 slot(s) in use, limit "
                          "4; 1 range(s) stay unmapped"));
    struct ms_error_info ei;
    ms_system_last_error(f.sys, &ei);
    CHECK_EQ(ei.error, -ENOSPC);
    CHECK_STR(ei.callback, "commit");
    CHECK_EQ(ms_kvm_nr_slots(f.kvm), 4);
    check_consistent(&f);
    /* Other changes still apply while full. */
    CHECK_ERR(ms_region_del(f.system, r[0]), 0 /* frees an id */);
    CHECK_STR(take(&f), "delete 0 gpa=0x0\n"
                        "set 0 gpa=0x40000 size=0x1000 flags=0 "
                        "host=r4+0x0\n");
    check_consistent(&f);
    /* Full again: an addition fails, a removal then retries it. */
    CHECK_ERR(ms_region_add(f.system, 0x50000, r[5]), ENOSPC);
    CHECK_OK(ms_region_del(f.system, r[1]));
    CHECK_STR(take(&f), "delete 1 gpa=0x10000\n"
                        "set 1 gpa=0x50000 size=0x1000 flags=0 "
                        "host=r5+0x0\n");
    check_consistent(&f);
    for (int i = 0; i < 6; i++) {
        ms_region_unref(r[i]);
    }
    fx_fini(&f);
}

static void test_failures(void)
{
    struct fx f;
    fx_init(&f);
    fx_attach(&f);
    ms_region *a = ram(&f, "a", 4 * PG);
    /* The kernel refuses the creation: error returned, nothing recorded,
     * retried by the next commit. */
    f.m.fail_set_at = f.m.nr_set_calls + 1;
    f.m.fail_errno = ENOMEM;
    CHECK_ERR(ms_region_add(f.system, 0, a), ENOMEM);
    CHECK_EQ(ms_kvm_nr_slots(f.kvm), 0);
    check_consistent(&f);
    kvm_model_log_clear(&f.m);
    ms_region *b = ram(&f, "b", PG);
    CHECK_OK(ms_region_add(f.system, 0x10000, b));
    CHECK_STR(take(&f), "set 0 gpa=0x0 size=0x4000 flags=0 host=a+0x0\n"
                        "set 1 gpa=0x10000 size=0x1000 flags=0 "
                        "host=b+0x0\n");
    /* A refused deletion keeps the slot (and blocks what overlaps it). */
    ms_region *win = tu_io(f.sys, "win", PG);
    f.m.fail_set_at = f.m.nr_set_calls + 1;
    CHECK_ERR(ms_region_add_prio(f.system, 0x1000, win, 1), ENOMEM);
    check_consistent(&f);
    CHECK_EQ(ms_kvm_nr_slots(f.kvm), 2);
    kvm_model_log_clear(&f.m);
    /* The next commit converges. */
    ms_region *c = ram(&f, "c", PG);
    CHECK_OK(ms_region_add(f.system, 0x20000, c));
    CHECK_STR(take(&f), "pause\n"
                        "delete 0 gpa=0x0\n"
                        "set 0 gpa=0x0 size=0x1000 flags=0 host=a+0x0\n"
                        "set 2 gpa=0x2000 size=0x2000 flags=0 "
                        "host=a+0x2000\n"
                        "set 3 gpa=0x20000 size=0x1000 flags=0 "
                        "host=c+0x0\n"
                        "resume\n");
    check_consistent(&f);
    ms_region_unref(a);
    ms_region_unref(b);
    ms_region_unref(c);
    ms_region_unref(win);
    fx_fini(&f);
}

static void test_dirty(void)
{
    struct fx f;
    fx_init(&f);
    f.m.caps.manual_dirty_log = true;
    ms_kvm_free(f.kvm);
    struct ms_kvm_config cfg = {
        .ops = &kvm_model_ops, .ops_opaque = &f.m, .host_page_size = PG};
    REQUIRE(ms_kvm_new(f.sys, &cfg, &f.kvm) == 0);
    fx_attach(&f);
    ms_region *r = ram(&f, "vram", 16 * PG);
    ms_region *rom = tu_rom(f.sys, "rom", PG);
    kvm_model_name(&f.m, ms_region_host(rom), PG, "rom");
    CHECK_OK(ms_region_add(f.system, 0, r));
    CHECK_OK(ms_region_add(f.system, 0x100000, rom));
    kvm_model_log_clear(&f.m);

    /* Logging starts in place. */
    CHECK_OK(ms_region_set_log(r, true, MS_DIRTY_VGA));
    CHECK_STR(take(&f), "set 0 gpa=0x0 size=0x10000 flags=1 host=vram+0x0\n");
    CHECK_EQ(kvm_model_guest_write(&f.m, 0x1000), 0);
    CHECK_EQ(kvm_model_guest_write(&f.m, 0x5800), 0);
    CHECK_EQ(kvm_model_guest_write(&f.m, 0x100000), 1); /* ROM: exits */
    CHECK_OK(ms_dirty_sync(f.sys, NULL));
    CHECK_STR(take(&f), "get_dirty_log 0\n");
    for (uint64_t pg = 0; pg < 16; pg++) {
        CHECK_EQ(ms_region_get_dirty(r, pg * PG, PG, MS_DIRTY_VGA),
                 pg == 1 || pg == 5);
    }
    /* Clearing re-protects exactly the cached dirty pages (manual mode):
     * a 64-page-aligned window, here the whole 16-page slot. */
    CHECK_EQ(ms_region_test_and_clear_dirty(r, 0, 2 * PG, MS_DIRTY_VGA), 1);
    CHECK_STR(take(&f), "clear_dirty_log 0 first=0 num=16\n");
    CHECK_EQ(f.m.slots[0].dirty[0], UINT64_C(1) << 5);
    CHECK_EQ(ms_region_get_dirty(r, PG, PG, MS_DIRTY_VGA), false);
    CHECK_OK(ms_dirty_sync(f.sys, NULL));
    take(&f);
    CHECK_EQ(ms_region_get_dirty(r, PG, PG, MS_DIRTY_VGA), false);
    CHECK_EQ(ms_region_get_dirty(r, 5 * PG, PG, MS_DIRTY_VGA), true);

    /* Global tracking: every slot starts logging in place, ROM too. */
    CHECK_OK(ms_dirty_global_start(f.sys, MS_GLOBAL_DIRTY_MIGRATION));
    CHECK_STR(take(&f), "set 1 gpa=0x100000 size=0x1000 flags=3 "
                        "host=rom+0x0\n");
    CHECK_OK(ms_dirty_global_stop(f.sys, MS_GLOBAL_DIRTY_MIGRATION));
    CHECK_STR(take(&f), "get_dirty_log 1\n"
                        "set 1 gpa=0x100000 size=0x1000 flags=2 "
                        "host=rom+0x0\n");

    /* A logging slot's log is fetched before the slot goes. */
    CHECK_EQ(kvm_model_guest_write(&f.m, 0x3000), 0);
    CHECK_OK(ms_region_del(f.system, r));
    CHECK_STR(take(&f), "get_dirty_log 0\ndelete 0 gpa=0x0\n");
    CHECK_EQ(ms_region_get_dirty(r, 3 * PG, PG, MS_DIRTY_VGA), true);
    /* Stopping the log fetches it too. */
    CHECK_OK(ms_region_add(f.system, 0, r));
    take(&f);
    CHECK_EQ(kvm_model_guest_write(&f.m, 0x7000), 0);
    CHECK_OK(ms_region_set_log(r, false, MS_DIRTY_VGA));
    CHECK_STR(take(&f), "get_dirty_log 0\n"
                        "set 0 gpa=0x0 size=0x10000 flags=0 "
                        "host=vram+0x0\n");
    CHECK_EQ(ms_region_get_dirty(r, 7 * PG, PG, MS_DIRTY_VGA), true);

    /* KVM_CLEAR_DIRTY_LOG windows: 64-page aligned, or to the slot end. */
    ms_region *big = ram(&f, "big", 200 * PG);
    CHECK_OK(ms_region_set_log(big, true, MS_DIRTY_VGA));
    CHECK_OK(ms_region_add(f.system, 0x400000, big));
    take(&f);
    CHECK_EQ(kvm_model_guest_write(&f.m, 0x400000 + 70 * PG), 0);
    CHECK_EQ(kvm_model_guest_write(&f.m, 0x400000 + 195 * PG), 0);
    CHECK_OK(ms_dirty_sync(f.sys, NULL));
    take(&f);
    CHECK_EQ(ms_region_test_and_clear_dirty(big, 70 * PG, PG, MS_DIRTY_VGA), 1);
    CHECK_STR(take(&f), "clear_dirty_log 2 first=64 num=64\n");
    CHECK_EQ(ms_region_test_and_clear_dirty(big, 195 * PG, PG, MS_DIRTY_VGA),
             1);
    CHECK_STR(take(&f), "clear_dirty_log 2 first=192 num=8\n");
    /* Nothing cached there any more: no ioctl. */
    CHECK_EQ(ms_region_test_and_clear_dirty(big, 195 * PG, PG, MS_DIRTY_VGA),
             0);
    CHECK_STR(take(&f), "");
    CHECK_EQ(f.m.slots[2].dirty[1], 0);
    CHECK_EQ(f.m.slots[2].dirty[3], 0);
    ms_region_unref(big);
    ms_region_unref(r);
    ms_region_unref(rom);
    fx_fini(&f);
}

static void test_ioeventfds(void)
{
    struct fx f;
    fx_init(&f);
    fx_attach(&f);
    int e1 = eventfd(0, EFD_CLOEXEC), e2 = eventfd(0, EFD_CLOEXEC);
    REQUIRE(e1 >= 0 && e2 >= 0);
    ms_region *dev = tu_io(f.sys, "dev", PG);
    CHECK_OK(ms_region_add(f.system, 0xfe000000, dev));
    ms_region *port = tu_io(f.sys, "port", 8);
    CHECK_OK(ms_region_add(f.io_root, 0x510, port));
    kvm_model_log_clear(&f.m);
    char want[512];

    /* MMIO with data match. */
    CHECK_OK(ms_region_add_eventfd(dev, 0x10, 4, true, 0x42, e1));
    snprintf(want, sizeof(want),
             "ioeventfd assign mmio 0xfe000010 len=4 fd=%d data=0x42\n", e1);
    CHECK_STR(take(&f), want);
    struct ms_eventfd_info info;
    CHECK_OK(ms_as_eventfd(f.mem, 0, &info));
    CHECK(info.taken);
    /* PIO without data match, and any-length MMIO. */
    CHECK_OK(ms_region_add_eventfd(port, 0, 2, false, 0, e2));
    CHECK_OK(ms_region_add_eventfd(dev, 0x20, 0, false, 0, e2));
    snprintf(want, sizeof(want),
             "ioeventfd assign pio 0x510 len=2 fd=%d\n"
             "ioeventfd assign mmio 0xfe000020 len=0 fd=%d\n",
             e2, e2);
    CHECK_STR(take(&f), want);
    /* The kernel refuses a colliding one: reported, not taken. */
    CHECK_ERR(ms_region_add_eventfd(dev, 0x10, 4, false, 0, e2), EEXIST);
    take(&f);
    for (size_t i = 0; i < ms_as_nr_eventfds(f.mem); i++) {
        CHECK_OK(ms_as_eventfd(f.mem, i, &info));
        CHECK_EQ(info.taken, info.fd == e1 || info.gpa == 0xfe000020);
    }
    CHECK_OK(ms_region_del_eventfd(dev, 0x10, 4, false, 0, e2));
    CHECK_STR(take(&f), "");
    /* Deassigned on removal. */
    CHECK_OK(ms_region_del_eventfd(dev, 0x10, 4, true, 0x42, e1));
    snprintf(want, sizeof(want),
             "ioeventfd deassign mmio 0xfe000010 len=4 fd=%d data=0x42\n", e1);
    CHECK_STR(take(&f), want);
    /* The region moves: deassigned at the old address, assigned anew. */
    CHECK_OK(ms_region_set_address(dev, 0xfe100000));
    snprintf(want, sizeof(want),
             "ioeventfd deassign mmio 0xfe000020 len=0 fd=%d\n"
             "ioeventfd assign mmio 0xfe100020 len=0 fd=%d\n",
             e2, e2);
    CHECK_STR(take(&f), want);
    /* An entry straddling a split of its region is reported twice with
     * the same address: registered with KVM once, deassigned once. */
    ms_region *split = tu_io(f.sys, "split", 0x1000);
    ms_region *over = tu_io(f.sys, "over", 2);
    CHECK_OK(ms_region_add(f.system, 0xfd000000, split));
    CHECK_OK(ms_region_add_prio(f.system, 0xfd000800, over, 1));
    take(&f);
    CHECK_OK(ms_region_add_eventfd(split, 0x7fe, 8, true, 0x1122, e1));
    CHECK_EQ(ms_as_nr_eventfds(f.mem), 3);
    snprintf(want, sizeof(want),
             "ioeventfd assign mmio 0xfd0007fe len=8 fd=%d data=0x1122\n", e1);
    CHECK_STR(take(&f), want);
    CHECK_OK(ms_region_del_eventfd(split, 0x7fe, 8, true, 0x1122, e1));
    snprintf(want, sizeof(want),
             "ioeventfd deassign mmio 0xfd0007fe len=8 fd=%d data=0x1122\n",
             e1);
    CHECK_STR(take(&f), want);
    ms_region_unref(split);
    ms_region_unref(over);
    ms_region_unref(dev);
    ms_region_unref(port);
    fx_fini(&f); /* deassigns what is left */
    close(e1);
    close(e2);

    /* No ioeventfd support: nothing taken, no ioctl. */
    fx_init(&f);
    f.m.caps.ioeventfd = false;
    ms_kvm_free(f.kvm);
    struct ms_kvm_config cfg = {
        .ops = &kvm_model_ops, .ops_opaque = &f.m, .host_page_size = PG};
    REQUIRE(ms_kvm_new(f.sys, &cfg, &f.kvm) == 0);
    fx_attach(&f);
    e1 = eventfd(0, EFD_CLOEXEC);
    dev = tu_io(f.sys, "dev", PG);
    CHECK_OK(ms_region_add(f.system, 0xfe000000, dev));
    CHECK_OK(ms_region_add_eventfd(dev, 0x10, 4, false, 0, e1));
    CHECK_OK(ms_as_eventfd(f.mem, 0, &info));
    CHECK(!info.taken);
    CHECK_STR(take(&f), "");
    CHECK_OK(ms_region_del_eventfd(dev, 0x10, 4, false, 0, e1));
    ms_region_unref(dev);
    fx_fini(&f);
    close(e1);
}

static void test_pam_board(void)
{
    /* A 512 MiB PC: the board QEMU 7.2 boots SeaBIOS on. */
    ms_system *sys;
    struct ms_system_config sc = {.log = tu_log};
    REQUIRE(ms_system_new(&sc, &sys) == 0);
    struct kvm_board b;
    kb_build(&b, sys, 512u << 20);
    struct kvm_model m;
    kvm_model_init(&m, 32, PG);
    kvm_model_name(&m, ms_region_host(b.ram), b.ram_size, "pc.ram");
    kvm_model_name(&m, ms_region_host(b.rom), 0x20000, "pc.rom");
    kvm_model_name(&m, ms_region_host(b.bios), 0x40000, "pc.bios");
    struct ms_kvm_config cfg = {
        .ops = &kvm_model_ops,
        .ops_opaque = &m,
        .host_page_size = PG,
        .pause = kvm_model_pause,
        .resume = kvm_model_resume,
        .pause_opaque = &m,
    };
    ms_kvm *kvm;
    REQUIRE(ms_kvm_new(sys, &cfg, &kvm) == 0);
    CHECK_OK(ms_kvm_attach(kvm, b.mem, NULL));
    /* One slot per piece that can change on its own: each PAM segment's
     * window onto the ROMs is its own slot. */
    CHECK_STR(kvm_model_log(&m),
              "set 0 gpa=0x0 size=0xa0000 flags=0 host=pc.ram+0x0\n"
              "set 1 gpa=0xc0000 size=0x4000 flags=2 host=pc.rom+0x0\n"
              "set 2 gpa=0xc4000 size=0x4000 flags=2 host=pc.rom+0x4000\n"
              "set 3 gpa=0xc8000 size=0x4000 flags=2 host=pc.rom+0x8000\n"
              "set 4 gpa=0xcc000 size=0x4000 flags=2 host=pc.rom+0xc000\n"
              "set 5 gpa=0xd0000 size=0x4000 flags=2 host=pc.rom+0x10000\n"
              "set 6 gpa=0xd4000 size=0x4000 flags=2 host=pc.rom+0x14000\n"
              "set 7 gpa=0xd8000 size=0x4000 flags=2 host=pc.rom+0x18000\n"
              "set 8 gpa=0xdc000 size=0x4000 flags=2 host=pc.rom+0x1c000\n"
              "set 9 gpa=0xe0000 size=0x4000 flags=2 host=pc.bios+0x20000\n"
              "set 10 gpa=0xe4000 size=0x4000 flags=2 "
              "host=pc.bios+0x24000\n"
              "set 11 gpa=0xe8000 size=0x4000 flags=2 "
              "host=pc.bios+0x28000\n"
              "set 12 gpa=0xec000 size=0x4000 flags=2 "
              "host=pc.bios+0x2c000\n"
              "set 13 gpa=0xf0000 size=0x10000 flags=2 "
              "host=pc.bios+0x30000\n"
              "set 14 gpa=0x100000 size=0x1ff00000 flags=0 "
              "host=pc.ram+0x100000\n"
              "set 15 gpa=0xfffc0000 size=0x40000 flags=2 "
              "host=pc.bios+0x0\n");
    kvm_model_log_clear(&m);
    /* Low RAM below 1 MiB and everything above it stay RAM throughout. */
    kvm_model_watch(&m, 0, 0x9ffff);
    kvm_model_watch(&m, 0x100000, b.ram_size - 1);

    unsigned bad_deletes = 0, max_ioctls = 0, toggles = 0;
    uint64_t rng = 12345;
    struct ms_kvm_stats st;
    struct kvm_model_slot *prev = calloc(m.caps.nr_memslots, sizeof(*prev));
    REQUIRE(prev);
    /* SeaBIOS's order first (shadow RAM read-write, then read-only), then
     * random modes. */
    for (unsigned round = 0; round < 600; round++) {
        unsigned seg, mode;
        if (round < 13) {
            seg = round;
            mode = 3;
        } else if (round < 26) {
            seg = round - 13;
            mode = 1;
        } else {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            seg = (unsigned)(rng % KB_PAM_SEGMENTS);
            mode = (unsigned)((rng >> 8) % 4);
        }
        memcpy(prev, m.slots, m.caps.nr_memslots * sizeof(*prev));
        unsigned calls0 = m.nr_set_calls;
        CHECK_OK(kb_pam_set(&b, seg, mode));
        unsigned calls = m.nr_set_calls - calls0;
        if (calls > max_ioctls) {
            max_ioctls = calls;
        }
        toggles++;
        /* Every slot this commit deleted: none of its pages may show the
         * same memory with the same read-only flag afterwards (that would
         * be RAM staying RAM, unmapped for a while). */
        const char *log = kvm_model_log(&m);
        for (const char *p = strstr(log, "delete "); p;
             p = strstr(p + 1, "delete ")) {
            const struct kvm_model_slot *d = &prev[strtoul(p + 7, NULL, 10)];
            for (uint64_t off = 0; off < d->size; off += PG) {
                const struct kvm_model_slot *a =
                    kvm_model_lookup(&m, d->gpa + off);
                if (a && a->host + (d->gpa + off - a->gpa) == d->host + off &&
                    !((a->flags ^ d->flags) & MS_KVM_MEM_READONLY)) {
                    bad_deletes++;
                    break;
                }
            }
        }
        kvm_model_log_clear(&m);
        check_table(kvm, &m);
    }
    free(prev);
    CHECK_EQ(bad_deletes, 0);
    CHECK_EQ(m.holes, 0);
    CHECK(max_ioctls <= 2);
    /* The big RAM slot above 1 MiB was never touched. */
    const struct kvm_model_slot *hi = kvm_model_lookup(&m, 0x100000);
    CHECK(hi && hi->gpa == 0x100000 && hi->size == b.ram_size - 0x100000);
    CHECK_OK(ms_kvm_get_stats(kvm, &st));
    printf("PAM board: %u toggles, %" PRIu64 " creations, %" PRIu64
           " deletions, %" PRIu64 " pauses, at most %u ioctls per toggle, "
           "%u slots\n",
           toggles, st.slot_creates, st.slot_deletes, st.pauses, max_ioctls,
           st.slots_used);
    ms_kvm_free(kvm);
    CHECK_EQ(kvm_model_nr_slots(&m), 0);
    kb_release(&b);
    ms_system_free(sys);
    kvm_model_free(&m);
}

/*
 * Freeing the system before the backend (wrong order): the backend
 * detaches while the system still exists (slots deleted, ioeventfds
 * deassigned), warns, refuses further use and frees cleanly later.
 */
static void test_system_freed_first(void)
{
    struct fx f;
    fx_init(&f);
    fx_attach(&f);
    int efd = eventfd(0, EFD_CLOEXEC);
    REQUIRE(efd >= 0);
    ms_region *r = ram(&f, "ram", 16 * PG);
    CHECK_OK(ms_region_add(f.system, 0, r));
    ms_region *dev = tu_io(f.sys, "dev", PG);
    CHECK_OK(ms_region_add(f.system, 0xfe000000, dev));
    CHECK_OK(ms_region_add_eventfd(dev, 0x10, 4, false, 0, efd));
    CHECK_EQ(kvm_model_nr_slots(&f.m), 1);
    CHECK_EQ(f.m.nr_ioevs, 1);
    ms_region_unref(r);
    ms_region_unref(dev);
    ms_region_unref(f.system);
    ms_region_unref(f.io_root);
    all_log[0] = 0;
    ms_system_free(f.sys);
    CHECK(strstr(all_log, "system freed before its KVM backend") != NULL);
    CHECK_EQ(kvm_model_nr_slots(&f.m), 0);
    CHECK_EQ(f.m.nr_ioevs, 0);
    CHECK_EQ(ms_kvm_nr_slots(f.kvm), 0);
    CHECK_ERR(ms_kvm_attach(f.kvm, NULL, NULL), ENODEV);
    ms_kvm_vcpu *v = NULL;
    CHECK(ms_kvm_vcpu_new(f.kvm, 0, &v) < 0);
    struct ms_kvm_stats st;
    CHECK_OK(ms_kvm_get_stats(f.kvm, &st));
    ms_kvm_free(f.kvm);
    kvm_model_free(&f.m);
    close(efd);
}

static void test_config(void)
{
    ms_system *sys;
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    struct kvm_model m;
    kvm_model_init(&m, 8, PG);
    ms_kvm *kvm = NULL;
    struct ms_kvm_config c = {.ops = &kvm_model_ops, .ops_opaque = &m};
    CHECK_ERR(ms_kvm_new(NULL, &c, &kvm), EINVAL);
    CHECK_ERR(ms_kvm_new(sys, &c, NULL), EINVAL);
    c.host_page_size = 3000;
    CHECK_ERR(ms_kvm_new(sys, &c, &kvm), EINVAL);
    c.host_page_size = PG;
    c.max_slot_size = PG + 1;
    CHECK_ERR(ms_kvm_new(sys, &c, &kvm), EINVAL);
    c.max_slot_size = 0;
    c.pause = kvm_model_pause; /* without resume */
    CHECK_ERR(ms_kvm_new(sys, &c, &kvm), EINVAL);
    c.pause = NULL;
    struct ms_kvm_ops half = kvm_model_ops;
    half.ioeventfd = NULL;
    c.ops = &half;
    CHECK_ERR(ms_kvm_new(sys, &c, &kvm), EINVAL);
    c.ops = &kvm_model_ops;
    c.max_slots = 3;
    CHECK_OK(ms_kvm_new(sys, &c, &kvm));
    struct ms_kvm_caps caps;
    CHECK_OK(ms_kvm_get_caps(kvm, &caps));
    CHECK_EQ(caps.nr_memslots, 3);
    CHECK_EQ(ms_kvm_vm_fd(kvm), -1);
    ms_kvm_vcpu *v = NULL;
    CHECK_ERR(ms_kvm_vcpu_new(kvm, 0, &v), ENOTSUP);
    ms_region *root = tu_container(sys, "root", MS_SIZE_FULL);
    ms_as *as, *other;
    REQUIRE(ms_as_new(sys, root, "memory", &as) == 0);
    REQUIRE(ms_as_new(sys, root, "other", &other) == 0);
    CHECK_ERR(ms_kvm_attach(kvm, NULL, NULL), EINVAL);
    CHECK_ERR(ms_kvm_attach(kvm, as, as), EINVAL);
    CHECK_OK(ms_kvm_attach(kvm, as, NULL));
    CHECK_ERR(ms_kvm_attach(kvm, other, NULL), EBUSY);
    struct ms_kvm_memslot s;
    CHECK_ERR(ms_kvm_slot(kvm, 0, &s), ERANGE);
    ms_kvm_free(kvm);
    ms_kvm_free(NULL);
    ms_region_unref(root);
    ms_system_free(sys);
    kvm_model_free(&m);
}

int main(void)
{
    test_config();
    test_system_freed_first();
    test_sequences();
    test_kinds_and_alignment();
    test_limit();
    test_failures();
    test_dirty();
    test_ioeventfds();
    test_pam_board();
    return ms_test_summary("test_kvm_fake");
}
