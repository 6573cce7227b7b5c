/* SPDX-License-Identifier: MIT */
/*
 * Dirty logging (memory-model.md section 6, edge cases 41-44): explicit VGA
 * logging, global tracking with the postponed stop, per-client bitmaps,
 * test-and-clear, snapshots, sync and clear through listeners, merging a
 * backend's bitmap.  Also coalesced MMIO announcements (4.7).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "reclog.h"
#include "testutil.h"

#define EXPECT_LOG(rec, text)                                                  \
    do {                                                                       \
        CHECK_STR(reclog_text(rec), text);                                     \
        reclog_clear(rec);                                                     \
    } while (0)

#define PAGE 4096u

static ms_system *sys;
static ms_region *sysmem, *ram, *io;
static ms_as *mem;
static struct reclog L;

static void setup(void)
{
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    sysmem = tu_container(sys, "system", MS_SIZE_FULL);
    REQUIRE(ms_as_new(sys, sysmem, "memory", &mem) == 0);
    ram = tu_ram(sys, "ram", 256 * PAGE);
    io = tu_io(sys, "io", 0x100);
    REQUIRE(ms_region_add(sysmem, 0, ram) == 0);
    REQUIRE(ms_region_add(sysmem, 0x100000, io) == 0);
    reclog_init(&L, "L", 0);
    REQUIRE(ms_listener_register(mem, &L.l) == 0);
    reclog_clear(&L);
}

static void teardown(void)
{
    CHECK_OK(ms_listener_unregister(&L.l));
    reclog_free(&L);
    ms_region_unref(ram);
    ms_region_unref(io);
    ms_region_unref(sysmem);
    ms_system_free(sys);
}

static void test_vga_logging(void)
{
    setup();
    CHECK_ERR(ms_region_set_log(ram, true, MS_DIRTY_MIGRATION), EINVAL);
    CHECK_ERR(ms_region_set_log(ram, true, MS_DIRTY_CODE), EINVAL);
    CHECK_ERR(ms_region_set_log(NULL, true, MS_DIRTY_VGA), EINVAL);
    CHECK_ERR(ms_region_set_log(ram, false, MS_DIRTY_VGA), EOVERFLOW);
    CHECK_STR(reclog_text(&L), "");
    /* Twice on, once off: still logging (item 41). */
    CHECK_OK(ms_region_set_log(ram, true, MS_DIRTY_VGA));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_nop memory 0-fffff ram@0\n"
                   "L log_start memory 0-fffff ram@0 old=0 new=1\n"
                   "L region_nop memory 100000-1000ff io@0\n"
                   "L commit\n");
    CHECK_EQ(ms_region_log_mask(ram), 1);
    CHECK_OK(ms_region_set_log(ram, true, MS_DIRTY_VGA));
    CHECK_STR(reclog_text(&L), "");
    CHECK_OK(ms_region_set_log(ram, false, MS_DIRTY_VGA));
    CHECK_STR(reclog_text(&L), "");
    CHECK_OK(ms_region_set_log(ram, false, MS_DIRTY_VGA));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_nop memory 0-fffff ram@0\n"
                   "L log_stop memory 0-fffff ram@0 old=1 new=0\n"
                   "L region_nop memory 100000-1000ff io@0\n"
                   "L commit\n");
    /* Registration replays logged ranges with log_start(0, mask). */
    CHECK_OK(ms_region_set_log(ram, true, MS_DIRTY_VGA));
    struct reclog M;
    reclog_init(&M, "M", 0);
    CHECK_OK(ms_listener_register(mem, &M.l));
    EXPECT_LOG(&M, "M begin\n"
                   "M region_add memory 0-fffff ram@0\n"
                   "M log_start memory 0-fffff ram@0 old=0 new=1\n"
                   "M region_add memory 100000-1000ff io@0\n"
                   "M commit\n");
    CHECK_OK(ms_listener_unregister(&M.l));
    EXPECT_LOG(&M, "M begin\n"
                   "M log_stop memory 0-fffff ram@0 old=1 new=0\n"
                   "M region_del memory 0-fffff ram@0\n"
                   "M region_del memory 100000-1000ff io@0\n"
                   "M commit\n");
    reclog_free(&M);
    teardown();
}

static void test_bitmaps(void)
{
    setup();
    /* Not logging: writes mark nothing. */
    CHECK_OK(ms_region_set_dirty(ram, 0, 1));
    CHECK(!ms_region_get_dirty(ram, 0, PAGE, MS_DIRTY_VGA));
    CHECK_OK(ms_region_set_log(ram, true, MS_DIRTY_VGA));
    reclog_clear(&L);
    CHECK_OK(ms_region_set_dirty(ram, PAGE + 5, 2 * PAGE)); /* pages 1-3 */
    CHECK(!ms_region_get_dirty(ram, 0, PAGE, MS_DIRTY_VGA));
    CHECK(ms_region_get_dirty(ram, PAGE, 1, MS_DIRTY_VGA));
    CHECK(ms_region_get_dirty(ram, 3 * PAGE, 1, MS_DIRTY_VGA));
    CHECK(!ms_region_get_dirty(ram, 4 * PAGE, PAGE, MS_DIRTY_VGA));
    /* Per client: MIGRATION is off. */
    CHECK(!ms_region_get_dirty(ram, 0, 256 * PAGE, MS_DIRTY_MIGRATION));
    CHECK(!ms_region_get_dirty(ram, 0, 256 * PAGE, MS_DIRTY_CODE));
    /* Bad arguments. */
    CHECK_ERR(ms_region_set_dirty(io, 0, 1), EINVAL);
    CHECK_ERR(ms_region_set_dirty(ram, 256 * PAGE, 1), ERANGE);
    CHECK_ERR(ms_region_set_dirty(ram, 0, 0), ERANGE);
    CHECK_ERR(ms_region_set_dirty(ram, UINT64_MAX, 2), ERANGE);
    CHECK_ERR(ms_region_test_and_clear_dirty(ram, 0, 1, 7), EINVAL);
    /* Test-and-clear reports once and tells log_clear listeners. */
    CHECK_EQ(ms_region_test_and_clear_dirty(ram, 2 * PAGE, PAGE, MS_DIRTY_VGA),
             1);
    EXPECT_LOG(&L, "L log_clear memory 2000-2fff ram@2000\n");
    CHECK_EQ(ms_region_test_and_clear_dirty(ram, 2 * PAGE, PAGE, MS_DIRTY_VGA),
             0);
    reclog_clear(&L);
    CHECK(ms_region_get_dirty(ram, PAGE, PAGE, MS_DIRTY_VGA));
    CHECK(ms_region_get_dirty(ram, 3 * PAGE, PAGE, MS_DIRTY_VGA));

    /* Snapshot of pages 65..66 clears the 64-page window 64..127 (44). */
    CHECK_OK(ms_region_set_dirty(ram, 64 * PAGE, 1));
    CHECK_OK(ms_region_set_dirty(ram, 100 * PAGE, 1));
    CHECK_OK(ms_region_set_dirty(ram, 130 * PAGE, 1));
    ms_dirty_snapshot *snap = NULL;
    CHECK_OK(ms_region_snapshot_and_clear_dirty(ram, 65 * PAGE, 2 * PAGE,
                                                MS_DIRTY_VGA, &snap));
    EXPECT_LOG(&L, "L log_sync memory 0-fffff ram@0\n"
                   "L log_clear memory 41000-42fff ram@41000\n"
                   "L log_global_after_sync\n");
    CHECK(snap != NULL);
    CHECK(ms_dirty_snapshot_get(snap, 64 * PAGE, 1));
    CHECK(ms_dirty_snapshot_get(snap, 100 * PAGE, PAGE));
    CHECK(!ms_dirty_snapshot_get(snap, 65 * PAGE, 2 * PAGE));
    CHECK(!ms_dirty_snapshot_get(snap, 130 * PAGE, PAGE)); /* outside */
    CHECK(!ms_region_get_dirty(ram, 64 * PAGE, 64 * PAGE, MS_DIRTY_VGA));
    CHECK(ms_region_get_dirty(ram, 130 * PAGE, 1, MS_DIRTY_VGA));
    CHECK(ms_region_get_dirty(ram, PAGE, 1, MS_DIRTY_VGA)); /* untouched */
    ms_dirty_snapshot_free(snap);
    ms_dirty_snapshot_free(NULL);

    /* A backend's bitmap: host pages of 8 KiB here, bits 0 and 3. */
    CHECK(ms_region_test_and_clear_dirty(ram, 0, 256 * PAGE, MS_DIRTY_VGA) >=
          0);
    uint64_t bm[1] = {(1u << 0) | (1u << 3)};
    CHECK_OK(ms_region_merge_dirty(ram, 16 * PAGE, bm, 4, 2 * PAGE));
    CHECK(ms_region_get_dirty(ram, 16 * PAGE, 1, MS_DIRTY_VGA));
    CHECK(ms_region_get_dirty(ram, 17 * PAGE, 1, MS_DIRTY_VGA));
    CHECK(!ms_region_get_dirty(ram, 18 * PAGE, 4 * PAGE, MS_DIRTY_VGA));
    CHECK(ms_region_get_dirty(ram, 22 * PAGE, 2 * PAGE, MS_DIRTY_VGA));
    CHECK(!ms_region_get_dirty(ram, 0, 256 * PAGE, MS_DIRTY_MIGRATION));
    CHECK_ERR(ms_region_merge_dirty(ram, 1, bm, 4, PAGE), EINVAL);
    CHECK_ERR(ms_region_merge_dirty(ram, 0, bm, 4, 3000), EINVAL);
    CHECK_ERR(ms_region_merge_dirty(ram, 255 * PAGE, bm, 2, PAGE), ERANGE);
    CHECK_ERR(ms_region_merge_dirty(io, 0, bm, 1, PAGE), EINVAL);
    teardown();
}

static void test_global_tracking(void)
{
    setup();
    CHECK_ERR(ms_dirty_global_start(sys, 0), EINVAL);
    CHECK_ERR(ms_dirty_global_start(sys, 8), EINVAL);
    CHECK_ERR(ms_dirty_global_stop(sys, MS_GLOBAL_DIRTY_MIGRATION), EINVAL);
    CHECK_OK(ms_dirty_global_start(sys, MS_GLOBAL_DIRTY_MIGRATION));
    /* Mask-only change: nop + log_start, never del/add (item 43). */
    EXPECT_LOG(&L, "L log_global_start\n"
                   "L begin\n"
                   "L region_nop memory 0-fffff ram@0\n"
                   "L log_start memory 0-fffff ram@0 old=0 new=4\n"
                   "L region_nop memory 100000-1000ff io@0\n"
                   "L commit\n");
    CHECK_EQ(ms_region_log_mask(ram), 4);
    CHECK_EQ(ms_region_log_mask(io), 0);
    CHECK_EQ(ms_dirty_global_flags(sys), 1);
    /* A second reason changes nothing visible. */
    CHECK_OK(ms_dirty_global_start(sys, MS_GLOBAL_DIRTY_DIRTY_RATE));
    CHECK_STR(reclog_text(&L), "");
    /* Writes now mark MIGRATION (and not VGA). */
    CHECK_OK(ms_region_set_dirty(ram, 5 * PAGE, 1));
    CHECK(ms_region_get_dirty(ram, 5 * PAGE, 1, MS_DIRTY_MIGRATION));
    CHECK(!ms_region_get_dirty(ram, 5 * PAGE, 1, MS_DIRTY_VGA));
    /* Sync: one log_sync per logged range, then after_sync. */
    CHECK_OK(ms_dirty_sync(sys, NULL));
    EXPECT_LOG(&L, "L log_sync memory 0-fffff ram@0\n"
                   "L log_global_after_sync\n");
    CHECK_OK(ms_dirty_sync(sys, io));
    EXPECT_LOG(&L, "L log_global_after_sync\n");
    struct reclog G;
    reclog_init(&G, "G", 5);
    reclog_use_sync_global(&G);
    reclog_share(&G, &L);
    CHECK_OK(ms_listener_register(mem, &G.l));
    EXPECT_LOG(&L, "G begin\n"
                   "G log_global_start\n"
                   "G region_add memory 0-fffff ram@0\n"
                   "G log_start memory 0-fffff ram@0 old=0 new=4\n"
                   "G region_add memory 100000-1000ff io@0\n"
                   "G commit\n");
    CHECK_OK(ms_dirty_sync(sys, NULL));
    EXPECT_LOG(&L, "L log_sync memory 0-fffff ram@0\n"
                   "G log_sync_global\n"
                   "L log_global_after_sync\n"
                   "G log_global_after_sync\n");
    CHECK_OK(ms_listener_unregister(&G.l));
    reclog_clear(&L);

    /* VM stopped: the stop is postponed until it runs (item 42). */
    CHECK_OK(ms_system_set_running(sys, false));
    CHECK_OK(ms_dirty_global_stop(sys, MS_GLOBAL_DIRTY_MIGRATION |
                                           MS_GLOBAL_DIRTY_DIRTY_RATE));
    CHECK_STR(reclog_text(&L), "");
    CHECK_EQ(ms_dirty_global_flags(sys), 3);
    /* A new start cancels the postponed bits it names; the rest stop. */
    CHECK_OK(ms_dirty_global_start(sys, MS_GLOBAL_DIRTY_MIGRATION));
    CHECK_EQ(ms_dirty_global_flags(sys), 1);
    CHECK_STR(reclog_text(&L), "");
    CHECK_OK(ms_dirty_global_stop(sys, MS_GLOBAL_DIRTY_MIGRATION));
    CHECK_STR(reclog_text(&L), "");
    CHECK_OK(ms_system_set_running(sys, true));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_nop memory 0-fffff ram@0\n"
                   "L log_stop memory 0-fffff ram@0 old=4 new=0\n"
                   "L region_nop memory 100000-1000ff io@0\n"
                   "L commit\n"
                   "L log_global_stop\n");
    CHECK_EQ(ms_dirty_global_flags(sys), 0);
    /* Listener errors during start are returned; tracking is on. */
    L.fail_cb = "log_global_start";
    L.fail_count = 1;
    CHECK_ERR(ms_dirty_global_start(sys, MS_GLOBAL_DIRTY_LIMIT), EIO);
    CHECK_EQ(ms_dirty_global_flags(sys), 4);
    struct ms_error_info e;
    ms_system_last_error(sys, &e);
    CHECK_STR(e.callback, "log_global_start");
    CHECK_OK(ms_dirty_global_stop(sys, MS_GLOBAL_DIRTY_LIMIT));
    reclog_free(&G);
    teardown();
}

/*
 * Bitmaps exist once a client logs a region: a region created while
 * global logging is on is tracked at once, one created before is tracked
 * from the start on, and a huge RAM region that nobody logs costs no
 * bitmap (creating and freeing a 1 TiB one stays cheap).
 */
static void test_bitmaps_when_needed(void)
{
    setup();
    ms_region *huge = NULL;
    int err = ms_region_new(sys,
                            &(struct ms_region_config){
                                .kind = MS_REGION_RAM,
                                .name = "huge",
                                .size = UINT64_C(1) << 40,
                            },
                            &huge);
    if (err < 0) { /* an address-space limit (valgrind, ulimit -v) */
        printf("note: no 1 TiB RAM region here (errno %d)\n", -err);
    }
    ms_region_unref(huge);
    CHECK_OK(ms_dirty_global_start(sys, MS_GLOBAL_DIRTY_MIGRATION));
    ms_region *late = tu_ram(sys, "late", 16 * PAGE);
    CHECK_OK(ms_region_add(sysmem, 0x200000, late));
    CHECK_EQ(ms_as_stb(mem, 0x200000 + 3 * PAGE, 1, MS_ATTRS_UNSPECIFIED),
             MS_TX_OK);
    CHECK(ms_region_get_dirty(late, 3 * PAGE, 1, MS_DIRTY_MIGRATION));
    CHECK(!ms_region_get_dirty(late, 2 * PAGE, 1, MS_DIRTY_MIGRATION));
    CHECK_EQ(ms_as_stb(mem, 7 * PAGE, 1, MS_ATTRS_UNSPECIFIED), MS_TX_OK);
    CHECK(ms_region_get_dirty(ram, 7 * PAGE, 1, MS_DIRTY_MIGRATION));
    CHECK(!ms_region_get_dirty(ram, 7 * PAGE, 1, MS_DIRTY_VGA));
    CHECK_OK(ms_dirty_global_stop(sys, MS_GLOBAL_DIRTY_MIGRATION));
    /* VGA logging started later on an existing region. */
    CHECK_OK(ms_region_set_log(late, true, MS_DIRTY_VGA));
    CHECK_EQ(ms_as_stb(mem, 0x200000 + 5 * PAGE, 1, MS_ATTRS_UNSPECIFIED),
             MS_TX_OK);
    CHECK(ms_region_get_dirty(late, 5 * PAGE, 1, MS_DIRTY_VGA));
    CHECK_OK(ms_region_set_log(late, false, MS_DIRTY_VGA));
    ms_region_unref(late);
    teardown();
}

static void test_coalesced(void)
{
    setup();
    CHECK_ERR(ms_region_add_coalescing(io, 0, 0), EINVAL);
    CHECK_ERR(ms_region_add_coalescing(io, 0xf0, 0x20), ERANGE);
    CHECK_OK(ms_region_add_coalescing(io, 0x10, 0x20));
    EXPECT_LOG(&L, "L coalesced_io_add memory 100000-1000ff io@0 "
                   "100010+20\n");
    /* Around region_del / region_add of a moved region. */
    CHECK_OK(ms_region_set_address(io, 0x200000));
    EXPECT_LOG(&L, "L begin\n"
                   "L coalesced_io_del memory 100000-1000ff io@0 "
                   "100010+20\n"
                   "L region_del memory 100000-1000ff io@0\n"
                   "L region_nop memory 0-fffff ram@0\n"
                   "L region_add memory 200000-2000ff io@0\n"
                   "L coalesced_io_add memory 200000-2000ff io@0 "
                   "200010+20\n"
                   "L commit\n");
    CHECK_OK(ms_region_set_coalescing(io));
    EXPECT_LOG(&L, "L coalesced_io_del memory 200000-2000ff io@0 "
                   "200010+20\n"
                   "L coalesced_io_add memory 200000-2000ff io@0 "
                   "200000+100\n");
    CHECK_OK(ms_region_clear_coalescing(io));
    EXPECT_LOG(&L, "L coalesced_io_del memory 200000-2000ff io@0 "
                   "200000+100\n");
    CHECK_OK(ms_region_clear_coalescing(io));
    CHECK_STR(reclog_text(&L), "");
    teardown();
}

/*
 * A logged RAM region of 1 TiB: its bitmaps (32 MiB each) are mapped, not
 * allocated, so only what dirty pages reach costs memory; marks at both
 * ends are seen, cleared, and the region goes cleanly.
 */
static void test_huge_bitmap(void)
{
    setup();
    const uint64_t size = UINT64_C(1) << 40, at = UINT64_C(1) << 44;
    ms_region *huge = NULL;
    int err = ms_region_new(sys,
                            &(struct ms_region_config){
                                .kind = MS_REGION_RAM,
                                .name = "huge",
                                .size = size,
                            },
                            &huge);
    if (err < 0) { /* an address-space limit (valgrind, ulimit -v) */
        printf("note: no 1 TiB RAM region here (errno %d)\n", -err);
        teardown();
        return;
    }
    CHECK_OK(ms_region_add(sysmem, at, huge));
    CHECK_OK(ms_region_set_log(huge, true, MS_DIRTY_VGA));
    CHECK_OK(ms_dirty_global_start(sys, MS_GLOBAL_DIRTY_MIGRATION));
    const struct ms_attrs u = MS_ATTRS_UNSPECIFIED;
    CHECK_EQ(ms_as_stb(mem, at + size - 1, 1, u), MS_TX_OK);
    CHECK_EQ(ms_as_stq_le(mem, at + 5 * PAGE, 2, u), MS_TX_OK);
    CHECK(ms_region_get_dirty(huge, size - PAGE, PAGE, MS_DIRTY_VGA));
    CHECK(ms_region_get_dirty(huge, size - 1, 1, MS_DIRTY_MIGRATION));
    CHECK(ms_region_get_dirty(huge, 5 * PAGE, 8, MS_DIRTY_VGA));
    CHECK(!ms_region_get_dirty(huge, size - 2 * PAGE, PAGE, MS_DIRTY_VGA));
    CHECK(!ms_region_get_dirty(huge, 6 * PAGE, size / 2, MS_DIRTY_VGA));
    CHECK_EQ(ms_region_test_and_clear_dirty(huge, 0, size, MS_DIRTY_VGA), 1);
    CHECK(!ms_region_get_dirty(huge, 0, size, MS_DIRTY_VGA));
    CHECK(ms_region_get_dirty(huge, size - 1, 1, MS_DIRTY_MIGRATION));
    CHECK_OK(ms_dirty_global_stop(sys, MS_GLOBAL_DIRTY_MIGRATION));
    CHECK_OK(ms_region_set_log(huge, false, MS_DIRTY_VGA));
    CHECK_OK(ms_region_del(sysmem, huge));
    ms_region_unref(huge);
    teardown();
}

int main(void)
{
    test_vga_logging();
    test_bitmaps();
    test_global_tracking();
    test_bitmaps_when_needed();
    test_huge_bitmap();
    test_coalesced();
    return ms_test_summary("test_dirty");
}
