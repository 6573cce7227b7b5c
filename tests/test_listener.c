/* SPDX-License-Identifier: MIT */
/*
 * The MemoryListener contract, checked with recording listeners: what a
 * commit tells which listener, in which order (docs/listeners.md and
 * memory-model.md sections 3 and 4).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "reclog.h"
#include "testutil.h"

#define EXPECT_LOG(rec, text)                                                \
    do {                                                                     \
        CHECK_STR(reclog_text(rec), text);                                   \
        reclog_clear(rec);                                                   \
    } while (0)

struct fixture {
    ms_system *sys;
    ms_region *sysmem;
    ms_as *mem;
};

static void setup(struct fixture *f)
{
    REQUIRE(ms_system_new(NULL, &f->sys) == 0);
    f->sysmem = tu_container(f->sys, "system", MS_SIZE_FULL);
    REQUIRE(ms_as_new(f->sys, f->sysmem, "memory", &f->mem) == 0);
}

static void teardown(struct fixture *f)
{
    ms_region_unref(f->sysmem);
    ms_system_free(f->sys);
}

/* The seed: add a RAM region to system memory. */
static void test_seed_flow(void)
{
    struct fixture f;
    struct reclog L;
    setup(&f);
    reclog_init(&L, "L", 0);
    CHECK_OK(ms_listener_register(f.mem, &L.l));
    EXPECT_LOG(&L, "L begin\nL commit\n");

    ms_region *ram = tu_ram(f.sys, "ram", 0x100000);
    CHECK_OK(ms_region_add(f.sysmem, 0, ram));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_add memory 0-fffff ram@0\n"
                   "L commit\n");
    ms_region_unref(ram);
    CHECK_OK(ms_listener_unregister(&L.l));
    EXPECT_LOG(&L, "L begin\nL region_del memory 0-fffff ram@0\nL commit\n");
    reclog_free(&L);
    teardown(&f);
}

/* Spec 3.7 worked sequences. */
static void test_worked_sequences(void)
{
    struct fixture f;
    struct reclog L;
    setup(&f);
    ms_region *r = tu_ram(f.sys, "r", 0x1000);
    CHECK_OK(ms_region_add(f.sysmem, 0, r));
    reclog_init(&L, "L", 0);
    CHECK_OK(ms_listener_register(f.mem, &L.l));
    EXPECT_LOG(&L, "L begin\nL region_add memory 0-fff r@0\nL commit\n");

    /* 1. readonly outside a transaction: del rw, add ro. */
    CHECK_OK(ms_region_set_readonly(r, true));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_del memory 0-fff r@0\n"
                   "L region_add memory 0-fff r@0 ro\n"
                   "L commit\n");
    CHECK_OK(ms_region_set_readonly(r, false));
    reclog_clear(&L);

    /* 2. delete and re-add in one transaction: only region_nop. */
    CHECK_OK(ms_txn_begin(f.sys));
    CHECK_OK(ms_region_del(f.sysmem, r));
    CHECK_OK(ms_region_add(f.sysmem, 0, r));
    CHECK_OK(ms_txn_commit(f.sys));
    EXPECT_LOG(&L, "L begin\nL region_nop memory 0-fff r@0\nL commit\n");

    /* 3. VGA logging: region_nop + log_start(old 0, new 1). */
    CHECK_OK(ms_region_set_log(r, true, MS_DIRTY_VGA));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_nop memory 0-fff r@0\n"
                   "L log_start memory 0-fff r@0 old=0 new=1\n"
                   "L commit\n");
    CHECK_OK(ms_region_set_log(r, false, MS_DIRTY_VGA));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_nop memory 0-fff r@0\n"
                   "L log_stop memory 0-fff r@0 old=1 new=0\n"
                   "L commit\n");

    /* 5. two listeners P=0 and Q=10, r moved from 0 to 0x2000. */
    CHECK_OK(ms_listener_unregister(&L.l));
    struct reclog P, Q;
    reclog_init(&P, "P", 0);
    reclog_init(&Q, "Q", 10);
    reclog_share(&Q, &P);
    CHECK_OK(ms_listener_register(f.mem, &Q.l));
    CHECK_OK(ms_listener_register(f.mem, &P.l));
    reclog_clear(&P);
    CHECK_OK(ms_region_set_address(r, 0x2000));
    EXPECT_LOG(&P, "P begin\nQ begin\n"
                   "Q region_del memory 0-fff r@0\n"
                   "P region_del memory 0-fff r@0\n"
                   "P region_add memory 2000-2fff r@0\n"
                   "Q region_add memory 2000-2fff r@0\n"
                   "P commit\nQ commit\n");
    CHECK_OK(ms_listener_unregister(&P.l));
    CHECK_OK(ms_listener_unregister(&Q.l));
    ms_region_unref(r);
    reclog_free(&L);
    reclog_free(&P);
    teardown(&f);
}

static void test_nested_transactions(void)
{
    struct fixture f;
    struct reclog L;
    setup(&f);
    reclog_init(&L, "L", 0);
    CHECK_OK(ms_listener_register(f.mem, &L.l));
    reclog_clear(&L);
    ms_region *a = tu_ram(f.sys, "a", 0x1000);
    ms_region *b = tu_io(f.sys, "b", 0x100);

    CHECK_OK(ms_txn_begin(f.sys));
    CHECK_OK(ms_txn_begin(f.sys));
    CHECK_OK(ms_region_add(f.sysmem, 0x1000, a));
    CHECK_OK(ms_region_add(f.sysmem, 0x8000, b));
    CHECK_OK(ms_region_set_address(a, 0x4000));
    CHECK_OK(ms_txn_commit(f.sys));
    CHECK_STR(reclog_text(&L), ""); /* inner commit: nothing */
    CHECK_EQ(ms_txn_depth(f.sys), 1);
    CHECK_OK(ms_txn_commit(f.sys));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_add memory 4000-4fff a@0\n"
                   "L region_add memory 8000-80ff b@0\n"
                   "L commit\n");
    CHECK_ERR(ms_txn_commit(f.sys), EINVAL); /* commit without begin */
    CHECK_STR(reclog_text(&L), "");

    /* Unchanged ranges get region_nop; a toggled alias adds/removes. */
    ms_region *al = tu_alias(f.sys, "al", a, 0x800, 0x800);
    CHECK_OK(ms_region_add_prio(f.sysmem, 0x10000, al, 1));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_nop memory 4000-4fff a@0\n"
                   "L region_nop memory 8000-80ff b@0\n"
                   "L region_add memory 10000-107ff a@800\n"
                   "L commit\n");
    CHECK_OK(ms_region_set_enabled(al, false));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_del memory 10000-107ff a@800\n"
                   "L region_nop memory 4000-4fff a@0\n"
                   "L region_nop memory 8000-80ff b@0\n"
                   "L commit\n");
    /* Toggle twice in one transaction: only no-ops (10.2 item 20). */
    CHECK_OK(ms_txn_begin(f.sys));
    CHECK_OK(ms_region_set_enabled(al, true));
    CHECK_OK(ms_region_set_enabled(al, false));
    CHECK_OK(ms_txn_commit(f.sys));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_nop memory 4000-4fff a@0\n"
                   "L region_nop memory 8000-80ff b@0\n"
                   "L commit\n");
    /* Resize: the changed range is deleted and re-added. */
    CHECK_OK(ms_region_set_size(b, 0x80));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_del memory 8000-80ff b@0\n"
                   "L region_nop memory 4000-4fff a@0\n"
                   "L region_add memory 8000-807f b@0\n"
                   "L commit\n");
    /* Changes on a disabled region: nothing pending (10.2 item 21). */
    CHECK_OK(ms_region_set_readonly(al, true));
    CHECK_OK(ms_region_set_alias_offset(al, 0));
    CHECK_STR(reclog_text(&L), "");
    CHECK_OK(ms_region_set_enabled(al, true));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_nop memory 4000-4fff a@0\n"
                   "L region_nop memory 8000-807f b@0\n"
                   "L region_add memory 10000-107ff a@0 ro\n"
                   "L commit\n");
    /* Child added to a disabled container: nothing (item 22). */
    ms_region *off = tu_container(f.sys, "off", 0x1000);
    CHECK_OK(ms_region_set_enabled(off, false));
    reclog_clear(&L);
    ms_region *c = tu_io(f.sys, "c", 0x10);
    tu_add(off, 0, c, 0);
    CHECK_STR(reclog_text(&L), "");
    ms_region_unref(off);

    CHECK_OK(ms_listener_unregister(&L.l));
    ms_region_unref(a);
    ms_region_unref(b);
    ms_region_unref(al);
    reclog_free(&L);
    teardown(&f);
}

/* Two address spaces sharing a view; begin/commit scope; empty view. */
static void test_sharing_and_scope(void)
{
    struct fixture f;
    setup(&f);
    ms_region *io = tu_io(f.sys, "io", 0x10000);
    ms_region *bm = tu_container(f.sys, "bm", MS_SIZE_FULL);
    ms_region *bma = tu_alias(f.sys, "bma", f.sysmem, 0, MS_SIZE_FULL);
    CHECK_OK(ms_region_set_enabled(bma, false));
    tu_add(bm, 0, bma, 0);
    ms_as *cpu, *ioas, *dev;
    CHECK_OK(ms_as_new(f.sys, f.sysmem, "cpu-memory", &cpu));
    CHECK_OK(ms_as_new(f.sys, io, "I/O", &ioas));
    CHECK_OK(ms_as_new(f.sys, bm, "dev", &dev));
    CHECK(ms_as_flatview(cpu) == ms_as_flatview(f.mem));
    CHECK(ms_flatview_root(ms_as_flatview(dev)) == NULL);

    struct reclog M, C, I, D;
    reclog_init(&M, "M", 0);
    reclog_init(&C, "C", 0);
    reclog_init(&I, "I", 0);
    reclog_init(&D, "D", 0);
    reclog_share(&C, &M);
    reclog_share(&I, &M);
    reclog_share(&D, &M);
    CHECK_OK(ms_listener_register(f.mem, &M.l));
    CHECK_OK(ms_listener_register(cpu, &C.l));
    CHECK_OK(ms_listener_register(ioas, &I.l));
    CHECK_OK(ms_listener_register(dev, &D.l));
    reclog_clear(&M);

    ms_region *ram = tu_ram(f.sys, "ram", 0x1000);
    tu_add(f.sysmem, 0, ram, 0);
    /* I and D only bracket; D stays on the empty view (item 27). */
    EXPECT_LOG(&M, "M begin\nC begin\nI begin\nD begin\n"
                   "M region_add memory 0-fff ram@0\n"
                   "C region_add cpu-memory 0-fff ram@0\n"
                   "I region_nop I/O 0-ffff io@0\n"
                   "M commit\nC commit\nI commit\nD commit\n");
    /* Bus mastering on: dev joins the shared view. */
    CHECK_OK(ms_region_set_enabled(bma, true));
    CHECK(ms_as_flatview(dev) == ms_as_flatview(f.mem));
    EXPECT_LOG(&M, "M begin\nC begin\nI begin\nD begin\n"
                   "M region_nop memory 0-fff ram@0\n"
                   "C region_nop cpu-memory 0-fff ram@0\n"
                   "I region_nop I/O 0-ffff io@0\n"
                   "D region_add dev 0-fff ram@0\n"
                   "M commit\nC commit\nI commit\nD commit\n");
    CHECK_OK(ms_listener_unregister(&D.l));
    CHECK_OK(ms_listener_unregister(&I.l));
    CHECK_OK(ms_listener_unregister(&C.l));
    CHECK_OK(ms_listener_unregister(&M.l));
    /* Destroying an address space with listeners is refused. */
    CHECK_OK(ms_listener_register(dev, &D.l));
    CHECK_ERR(ms_as_destroy(dev), EBUSY);
    CHECK_OK(ms_listener_unregister(&D.l));
    CHECK_OK(ms_as_destroy(dev));
    ms_region_unref(io);
    ms_region_unref(bm);
    reclog_free(&M);
    teardown(&f);
}

/* Priorities: forward ascending, reverse descending, ties by order. */
static void test_priorities(void)
{
    struct fixture f;
    setup(&f);
    ms_region *io = tu_io(f.sys, "dev", 0x100);
    tu_add(f.sysmem, 0x1000, io, 0);
    struct reclog P, Q, R;
    reclog_init(&P, "P", 0);
    reclog_init(&Q, "Q", 10);
    reclog_init(&R, "R", 10);
    reclog_share(&Q, &P);
    reclog_share(&R, &P);
    CHECK_OK(ms_listener_register(f.mem, &Q.l));
    CHECK_OK(ms_listener_register(f.mem, &P.l));
    CHECK_OK(ms_listener_register(f.mem, &R.l));
    reclog_clear(&P);
    CHECK_OK(ms_region_set_address(io, 0x2000));
    EXPECT_LOG(&P, "P begin\nQ begin\nR begin\n"
                   "R region_del memory 1000-10ff dev@0\n"
                   "Q region_del memory 1000-10ff dev@0\n"
                   "P region_del memory 1000-10ff dev@0\n"
                   "P region_add memory 2000-20ff dev@0\n"
                   "Q region_add memory 2000-20ff dev@0\n"
                   "R region_add memory 2000-20ff dev@0\n"
                   "P commit\nQ commit\nR commit\n");
    /* eventfd_add goes in reverse, eventfd_del forward (QEMU's quirk);
     * no begin/commit around an ioeventfd-only change (item 33). */
    CHECK_OK(ms_region_add_eventfd(io, 0x10, 4, true, 7, 42));
    EXPECT_LOG(&P, "R eventfd_add memory 2010+4 data=7 fd=42\n"
                   "Q eventfd_add memory 2010+4 data=7 fd=42\n"
                   "P eventfd_add memory 2010+4 data=7 fd=42\n");
    CHECK_OK(ms_region_del_eventfd(io, 0x10, 4, true, 7, 42));
    EXPECT_LOG(&P, "P eventfd_del memory 2010+4 data=7 fd=42\n"
                   "Q eventfd_del memory 2010+4 data=7 fd=42\n"
                   "R eventfd_del memory 2010+4 data=7 fd=42\n");
    CHECK_OK(ms_listener_unregister(&P.l));
    CHECK_OK(ms_listener_unregister(&Q.l));
    CHECK_OK(ms_listener_unregister(&R.l));
    reclog_free(&P);
    teardown(&f);
}

/* Registration replays the committed view, even inside a transaction. */
static void test_register_in_transaction(void)
{
    struct fixture f;
    setup(&f);
    ms_region *a = tu_ram(f.sys, "a", 0x1000);
    tu_add(f.sysmem, 0, a, 0);
    struct reclog L;
    reclog_init(&L, "L", 0);
    CHECK_OK(ms_txn_begin(f.sys));
    ms_region *b = tu_ram(f.sys, "b", 0x1000);
    tu_add(f.sysmem, 0x1000, b, 0);
    CHECK_OK(ms_region_set_enabled(a, false));
    CHECK_OK(ms_listener_register(f.mem, &L.l));
    EXPECT_LOG(&L, "L begin\nL region_add memory 0-fff a@0\nL commit\n");
    CHECK_OK(ms_txn_commit(f.sys));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_del memory 0-fff a@0\n"
                   "L region_add memory 1000-1fff b@0\n"
                   "L commit\n");
    /* Unregistered inside a transaction: unreplay now, nothing later. */
    CHECK_OK(ms_txn_begin(f.sys));
    CHECK_OK(ms_region_set_enabled(a, true));
    CHECK_OK(ms_listener_unregister(&L.l));
    EXPECT_LOG(&L, "L begin\nL region_del memory 1000-1fff b@0\nL commit\n");
    CHECK_OK(ms_txn_commit(f.sys));
    CHECK_STR(reclog_text(&L), "");
    /* Double registration and both sync flavours are refused. */
    CHECK_OK(ms_listener_register(f.mem, &L.l));
    CHECK_ERR(ms_listener_register(f.mem, &L.l), EEXIST);
    CHECK_OK(ms_listener_unregister(&L.l));
    CHECK_OK(ms_listener_unregister(&L.l)); /* no-op */
    struct reclog B;
    reclog_init(&B, "B", 0);
    B.l.log_sync_global = L.l.log_global_start;
    CHECK_ERR(ms_listener_register(f.mem, &B.l), EINVAL);
    CHECK_ERR(ms_listener_register(NULL, &B.l), EINVAL);
    reclog_free(&L);
    teardown(&f);
}

/* An AS created inside a transaction sees the committed state of a
 * shared root until the outermost commit (item 30). */
static void test_as_created_in_transaction(void)
{
    struct fixture f;
    setup(&f);
    ms_region *a = tu_ram(f.sys, "a", 0x1000);
    tu_add(f.sysmem, 0, a, 0);
    /* A second child keeps "system" the flat-view root (2.6). */
    tu_add(f.sysmem, 0x10000, tu_ram(f.sys, "b", 0x1000), 0);
    CHECK_OK(ms_txn_begin(f.sys));
    CHECK_OK(ms_region_set_address(a, 0x5000));
    ms_as *late;
    CHECK_OK(ms_as_new(f.sys, f.sysmem, "late", &late));
    struct ms_flat_range fr;
    CHECK_OK(ms_flatview_lookup(ms_as_flatview(late), 0, &fr, NULL));
    CHECK_OK(ms_txn_commit(f.sys));
    CHECK_ERR(ms_flatview_lookup(ms_as_flatview(late), 0, &fr, NULL), ENOENT);
    CHECK_OK(ms_flatview_lookup(ms_as_flatview(late), 0x5000, &fr, NULL));
    CHECK(ms_as_flatview(late) == ms_as_flatview(f.mem));
    teardown(&f);
}

/* Removing a region in a transaction and dropping the caller's reference:
 * the region stays valid until its region_del was delivered (item 19). */
static int name_reader_del(struct ms_listener *l, const struct ms_section *s)
{
    /* Touch the region: ASan would flag a use after free. */
    size_t *n = l->opaque;
    *n += strlen(ms_region_name(s->mr)) + ms_region_size(s->mr);
    return 0;
}

static void test_lifetime_until_del(void)
{
    struct fixture f;
    setup(&f);
    size_t touched = 0;
    struct ms_listener l = { .name = "life", .opaque = &touched,
                             .region_del = name_reader_del };
    ms_region *a = tu_ram(f.sys, "alpha", 0x1000);
    CHECK_OK(ms_region_add(f.sysmem, 0, a));
    CHECK_OK(ms_listener_register(f.mem, &l));
    CHECK_OK(ms_txn_begin(f.sys));
    CHECK_OK(ms_region_del(f.sysmem, a));
    ms_region_unref(a); /* last caller reference */
    CHECK_OK(ms_txn_commit(f.sys));
    CHECK_EQ(touched, 5 + 0x1000);
    CHECK_OK(ms_listener_unregister(&l));
    teardown(&f);
}

/* Editing from a callback is refused and the commit completes. */
static void test_reentrancy(void)
{
    struct fixture f;
    setup(&f);
    struct reclog L;
    reclog_init(&L, "L", 0);
    CHECK_OK(ms_listener_register(f.mem, &L.l));
    ms_region *a = tu_ram(f.sys, "a", 0x1000);
    ms_region *b = tu_ram(f.sys, "b", 0x1000);
    L.edit_from_cb = b;
    L.edit_result = 1;
    tu_add(f.sysmem, 0, a, 0);
    CHECK_EQ(L.edit_result, -EBUSY);
    CHECK(ms_region_enabled(b)); /* unchanged */
    L.edit_from_cb = NULL;
    CHECK_EQ(ms_txn_depth(f.sys), 0);
    /* Every other entry point is refused from a callback as well. */
    reclog_clear(&L);
    tu_add(f.sysmem, 0x1000, b, 0);
    EXPECT_LOG(&L, "L begin\n"
                   "L region_nop memory 0-fff a@0\n"
                   "L region_add memory 1000-1fff b@0\n"
                   "L commit\n");
    CHECK_OK(ms_listener_unregister(&L.l));
    reclog_free(&L);
    teardown(&f);
}

/* Failing callbacks: the error comes back, state stays consistent, the
 * failed add is retried, later commits work. */
static void test_failures(void)
{
    struct fixture f;
    setup(&f);
    struct reclog L, M;
    reclog_init(&L, "L", 0);
    reclog_init(&M, "M", 5);
    reclog_share(&M, &L);
    CHECK_OK(ms_listener_register(f.mem, &L.l));
    CHECK_OK(ms_listener_register(f.mem, &M.l));
    reclog_clear(&L);

    L.fail_cb = "region_add";
    L.fail_count = 1;
    L.fail_errno = ENOSPC;
    ms_region *a = tu_ram(f.sys, "a", 0x1000);
    CHECK_ERR(ms_region_add(f.sysmem, 0x3000, a), ENOSPC);
    EXPECT_LOG(&L, "L begin\nM begin\n"
                   "L region_add memory 3000-3fff a@0\n"
                   "M region_add memory 3000-3fff a@0\n"
                   "L commit\nM commit\n");
    struct ms_error_info e;
    ms_system_last_error(f.sys, &e);
    CHECK_EQ(e.error, -ENOSPC);
    CHECK(e.listener == &L.l);
    CHECK_STR(e.callback, "region_add");
    CHECK_STR(e.region, "a");
    CHECK_EQ(e.gpa, 0x3000);
    CHECK_EQ(e.size, 0x1000);
    CHECK(e.as == f.mem);
    /* The topology is in place regardless. */
    struct ms_flat_range fr;
    CHECK_OK(ms_flatview_lookup(ms_as_flatview(f.mem), 0x3000, &fr, NULL));

    /* Next commit: L gets region_add again instead of region_nop. */
    ms_region *b = tu_ram(f.sys, "b", 0x1000);
    CHECK_OK(ms_region_add(f.sysmem, 0x8000, b));
    EXPECT_LOG(&L, "L begin\nM begin\n"
                   "L region_add memory 3000-3fff a@0\n"
                   "M region_nop memory 3000-3fff a@0\n"
                   "L region_add memory 8000-8fff b@0\n"
                   "M region_add memory 8000-8fff b@0\n"
                   "L commit\nM commit\n");
    ms_system_last_error(f.sys, &e);
    CHECK_EQ(e.error, 0);

    /* A failed add whose range then disappears gets no region_del. */
    L.fail_count = 1;
    CHECK_ERR(ms_region_set_address(b, 0x9000), ENOSPC);
    reclog_clear(&L);
    CHECK_OK(ms_region_del(f.sysmem, b));
    EXPECT_LOG(&L, "L begin\nM begin\n"
                   "M region_del memory 9000-9fff b@0\n"
                   "L region_nop memory 3000-3fff a@0\n"
                   "M region_nop memory 3000-3fff a@0\n"
                   "L commit\nM commit\n");

    /* ms_listener_resync() retries at once. */
    L.fail_count = 1;
    CHECK_ERR(ms_region_set_address(a, 0x4000), ENOSPC);
    reclog_clear(&L);
    CHECK_OK(ms_listener_resync(&L.l));
    EXPECT_LOG(&L, "L begin\nL region_add memory 4000-4fff a@0\nL commit\n");
    CHECK_OK(ms_listener_resync(&L.l)); /* nothing left: no callbacks */
    CHECK_STR(reclog_text(&L), "");

    /* A failing commit callback is reported too. */
    M.fail_cb = "commit";
    M.fail_count = 1;
    CHECK_ERR(ms_region_set_readonly(a, true), EIO);
    ms_system_last_error(f.sys, &e);
    CHECK(e.listener == &M.l);
    CHECK_STR(e.callback, "commit");
    reclog_clear(&L);

    /* Replay failures: registration returns the error, stays registered. */
    struct reclog R;
    reclog_init(&R, "R", 0);
    R.fail_cb = "region_add";
    R.fail_count = 1;
    CHECK_ERR(ms_listener_register(f.mem, &R.l), EIO);
    CHECK_OK(ms_listener_resync(&R.l));
    CHECK_STR(reclog_text(&R), "R begin\nR region_add memory 4000-4fff a@0 ro\n"
                               "R commit\nR begin\n"
                               "R region_add memory 4000-4fff a@0 ro\n"
                               "R commit\n");
    CHECK_OK(ms_listener_unregister(&R.l));
    CHECK_OK(ms_listener_unregister(&L.l));
    CHECK_OK(ms_listener_unregister(&M.l));
    ms_region_unref(a);
    ms_region_unref(b);
    reclog_free(&L);
    reclog_free(&R);
    teardown(&f);
}

/* ms_system_free() unregisters remaining listeners (they hear it). */
static void test_free_with_listeners(void)
{
    struct fixture f;
    setup(&f);
    struct reclog L;
    reclog_init(&L, "L", 0);
    ms_region *a = tu_ram(f.sys, "a", 0x1000);
    tu_add(f.sysmem, 0, a, 0);
    CHECK_OK(ms_listener_register(f.mem, &L.l));
    reclog_clear(&L);
    teardown(&f);
    EXPECT_LOG(&L, "L begin\nL region_del memory 0-fff a@0\nL commit\n");
    CHECK(L.l.priv_ == NULL);
    reclog_free(&L);
}

int main(void)
{
    test_seed_flow();
    test_worked_sequences();
    test_nested_transactions();
    test_sharing_and_scope();
    test_priorities();
    test_register_in_transaction();
    test_as_created_in_transaction();
    test_lifetime_until_del();
    test_reentrancy();
    test_failures();
    test_free_with_listeners();
    return ms_test_summary("test_listener");
}
