/* SPDX-License-Identifier: MIT */
/*
 * Rendering rules (memory-model.md section 2, edge cases 10.1 items 1-16),
 * each as a small topology and its exact flat view.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

static ms_system *sys;
static ms_region *root;
static ms_as *as;

static void setup(uint64_t root_size)
{
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    root = tu_container(sys, "root", root_size);
    REQUIRE(ms_as_new(sys, root, "as", &as) == 0);
}

static void teardown(void)
{
    ms_region_unref(root);
    ms_system_free(sys);
}

#define EXPECT_VIEW(text)                                                    \
    do {                                                                     \
        char *v_ = tu_flat_lines(as);                                        \
        CHECK_STR(v_, text);                                                 \
        free(v_);                                                            \
    } while (0)

/* Item 1: equal priority, the most recently added wins. */
static void test_equal_priority(void)
{
    setup(MS_SIZE_FULL);
    ms_region *x = tu_io(sys, "X", 0x100), *y = tu_io(sys, "Y", 0x100);
    CHECK_OK(ms_region_add(root, 0x1000, x));
    CHECK_OK(ms_region_add(root, 0x1000, y));
    EXPECT_VIEW("0000000000001000-00000000000010ff i/o Y\n");
    CHECK_OK(ms_region_set_address(x, 0x1000)); /* same: no-op */
    EXPECT_VIEW("0000000000001000-00000000000010ff i/o Y\n");
    CHECK_OK(ms_region_set_address(x, 0x2000));
    CHECK_OK(ms_region_set_address(x, 0x1000)); /* re-inserted: newest */
    EXPECT_VIEW("0000000000001000-00000000000010ff i/o X\n");
    /* Higher priority beats recency. */
    CHECK_OK(ms_region_del(root, y));
    CHECK_OK(ms_region_add_prio(root, 0x1080, y, 1));
    EXPECT_VIEW("0000000000001000-000000000000107f i/o X\n"
                "0000000000001080-000000000000117f i/o Y\n");
    ms_region_unref(x);
    ms_region_unref(y);
    teardown();
}

/* Item 2: docs/devel/memory.rst's A/B/C/D/E example. */
static void test_container_with_holes(void)
{
    setup(0x8000);
    ms_region *b = tu_container(sys, "B", 0x4000);
    tu_add(b, 0, tu_io(sys, "D", 0x1000), 0);
    tu_add(b, 0x2000, tu_io(sys, "E", 0x1000), 0);
    CHECK_OK(ms_region_add_prio(root, 0x2000, b, 2));
    tu_add(root, 0, tu_io(sys, "C", 0x6000), 1);
    EXPECT_VIEW("0000000000000000-0000000000001fff i/o C\n"
                "0000000000002000-0000000000002fff i/o D\n"
                "0000000000003000-0000000000003fff i/o C @3000\n"
                "0000000000004000-0000000000004fff i/o E\n"
                "0000000000005000-0000000000005fff i/o C @5000\n");
    /* B terminating (MMIO with children): B fills its own holes. */
    CHECK_OK(ms_region_del(root, b));
    ms_region *bt = tu_io(sys, "B", 0x4000);
    tu_add(bt, 0, tu_io(sys, "D", 0x1000), 0);
    tu_add(bt, 0x2000, tu_io(sys, "E", 0x1000), 0);
    tu_add(root, 0x2000, bt, 2);
    EXPECT_VIEW("0000000000000000-0000000000001fff i/o C\n"
                "0000000000002000-0000000000002fff i/o D\n"
                "0000000000003000-0000000000003fff i/o B @1000\n"
                "0000000000004000-0000000000004fff i/o E\n"
                "0000000000005000-0000000000005fff i/o B @3000\n");
    ms_region_unref(b);
    teardown();
}

/* Items 3-6: aliases. */
static void test_aliases(void)
{
    setup(MS_SIZE_FULL);
    ms_region *r = tu_ram(sys, "R", 0x10000);
    ms_region *mid = tu_alias(sys, "mid", r, 0x1000, 0x8000);
    ms_region *outer = tu_alias(sys, "outer", mid, 0x100, 0x1000);
    tu_add(root, 0x40000, outer, 0);
    /* Offsets add up along the chain: 0x100 + 0x1000. */
    EXPECT_VIEW("0000000000040000-0000000000040fff ram R @1100\n");
    /* Readonly on any link marks the range read-only. */
    CHECK_OK(ms_region_set_readonly(mid, true));
    EXPECT_VIEW("0000000000040000-0000000000040fff rom R @1100\n");
    CHECK_OK(ms_region_set_readonly(mid, false));
    /* Disabling the middle alias hides everything behind it. */
    CHECK_OK(ms_region_set_enabled(mid, false));
    EXPECT_VIEW("");
    CHECK_OK(ms_region_set_enabled(mid, true));
    /* A disabled final target hides too (item 6). */
    CHECK_OK(ms_region_set_enabled(r, false));
    EXPECT_VIEW("");
    CHECK_OK(ms_region_set_enabled(r, true));

    /* Alias into a container: only children inside the window, holes let
     * the alias's lower siblings through (item 4). */
    ms_region *box = tu_container(sys, "box", 0x4000);
    tu_add(box, 0x1000, tu_io(sys, "in1", 0x800), 0);
    tu_add(box, 0x3800, tu_io(sys, "in2", 0x1000), 0); /* sticks out */
    ms_region *win = tu_alias(sys, "win", box, 0x800, 0x3000);
    tu_add(root, 0x100000, win, 1);
    tu_add(root, 0x100000, tu_io(sys, "low", 0x4000), 0);
    EXPECT_VIEW("0000000000040000-0000000000040fff ram R @1100\n"
                "0000000000100000-00000000001007ff i/o low\n"
                "0000000000100800-0000000000100fff i/o in1\n"
                "0000000000101000-0000000000103fff i/o low @1000\n");
    /* Widen the window: in2 shows, clipped to box's extent. */
    CHECK_OK(ms_region_set_alias_offset(win, 0x1000));
    EXPECT_VIEW("0000000000040000-0000000000040fff ram R @1100\n"
                "0000000000100000-00000000001007ff i/o in1\n"
                "0000000000100800-00000000001027ff i/o low @800\n"
                "0000000000102800-0000000000102fff i/o in2\n"
                "0000000000103000-0000000000103fff i/o low @3000\n");
    /* Target shrunk below the window: only the target's extent shows;
     * a window wholly beyond it renders nothing (item 5). */
    CHECK_OK(ms_region_set_size(box, 0x1400));
    EXPECT_VIEW("0000000000040000-0000000000040fff ram R @1100\n"
                "0000000000100000-00000000001003ff i/o in1\n"
                "0000000000100400-0000000000103fff i/o low @400\n");
    CHECK_OK(ms_region_set_size(box, 0x800));
    EXPECT_VIEW("0000000000040000-0000000000040fff ram R @1100\n"
                "0000000000100000-0000000000103fff i/o low\n");
    ms_region_unref(r);
    ms_region_unref(mid);
    ms_region_unref(box);
    teardown();
}

/* Items 7-10: zero sizes, the top of the space, 2^64, clipping. */
static void test_sizes_and_clipping(void)
{
    setup(MS_SIZE_FULL);
    tu_add(root, 0x10, tu_io(sys, "zero-io", 0), 0);
    tu_add(root, 0x20, tu_container(sys, "zero-c", 0), 0);
    ms_region *ram = tu_ram(sys, "ram", 0x100);
    tu_add(root, 0x30, tu_alias(sys, "zero-a", ram, 0, 0), 0);
    EXPECT_VIEW("");
    /* A region crossing 2^64 is cut at the top. */
    tu_add(root, 0xfffffffffffff000, tu_io(sys, "top", 0x2000), 0);
    EXPECT_VIEW("fffffffffffff000-ffffffffffffffff i/o top\n");
    /* A child sticking out of its parent is clipped (item 10). */
    ms_region *c = tu_container(sys, "c", 0x2000);
    tu_add(c, 0x1800, tu_io(sys, "out", 0x1000), 0);
    tu_add(root, 0x10000, c, 0);
    EXPECT_VIEW("0000000000011800-0000000000011fff i/o out\n"
                "fffffffffffff000-ffffffffffffffff i/o top\n");
    /* A 2^64 region at 0 covers everything; size reads back as
     * MS_SIZE_FULL and setting it again is a no-op (item 9). */
    ms_region *full = tu_io(sys, "full", MS_SIZE_FULL);
    CHECK_EQ(ms_region_size(full), MS_SIZE_FULL);
    CHECK_OK(ms_region_set_size(full, MS_SIZE_FULL));
    tu_add(root, 0, full, -1);
    EXPECT_VIEW("0000000000000000-00000000000117ff i/o full\n"
                "0000000000011800-0000000000011fff i/o out\n"
                "0000000000012000-ffffffffffffefff i/o full @12000\n"
                "fffffffffffff000-ffffffffffffffff i/o top\n");
    ms_region_unref(ram);
    teardown();
}

/* Item 11: merging; item 12: readonly wrapper; item 13: terminating root. */
static void test_merge_and_wrappers(void)
{
    setup(MS_SIZE_FULL);
    ms_region *r = tu_ram(sys, "R", 0x4000);
    ms_region *s = tu_ram(sys, "S", 0x1000);
    tu_add(root, 0, tu_alias(sys, "a1", r, 0, 0x1000), 0);
    ms_region *a2 = tu_alias(sys, "a2", r, 0x1000, 0x1000);
    tu_add(root, 0x1000, a2, 0);
    EXPECT_VIEW("0000000000000000-0000000000001fff ram R\n");
    CHECK_OK(ms_region_set_alias_offset(a2, 0x1800));
    EXPECT_VIEW("0000000000000000-0000000000000fff ram R\n"
                "0000000000001000-0000000000001fff ram R @1800\n");
    /* Different regions never merge; nor do different flags. */
    tu_add(root, 0x2000, s, 0);
    ms_region *a3 = tu_alias(sys, "a3", r, 0x3000, 0x1000);
    tu_add(root, 0x3000, a3, 0);
    CHECK_OK(ms_region_set_alias_offset(a2, 0x1000));
    CHECK_OK(ms_region_set_readonly(a2, true));
    EXPECT_VIEW("0000000000000000-0000000000000fff ram R\n"
                "0000000000001000-0000000000001fff rom R @1000\n"
                "0000000000002000-0000000000002fff ram S\n"
                "0000000000003000-0000000000003fff ram R @3000\n");
    /* The region itself stays writable (item 12's access half lives in
     * the access-path tests). */
    CHECK(!ms_region_readonly(r));
    ms_region_unref(r);
    teardown();

    /* A terminating root fills every gap with the right offsets. */
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    root = tu_io(sys, "io", 0x100);
    REQUIRE(ms_as_new(sys, root, "I/O", &as) == 0);
    tu_add(root, 0x10, tu_io(sys, "pic", 2), 0);
    tu_add(root, 0xf8, tu_io(sys, "idx", 4), 0);
    tu_add(root, 0xf9, tu_io(sys, "rst", 1), 1);
    EXPECT_VIEW("0000000000000000-000000000000000f i/o io\n"
                "0000000000000010-0000000000000011 i/o pic\n"
                "0000000000000012-00000000000000f7 i/o io @12\n"
                "00000000000000f8-00000000000000f8 i/o idx\n"
                "00000000000000f9-00000000000000f9 i/o rst\n"
                "00000000000000fa-00000000000000fb i/o idx @2\n"
                "00000000000000fc-00000000000000ff i/o io @fc\n");
    teardown();
}

/* Items 15-16: view sharing, the empty view, a rooted view with nothing. */
static void test_view_roots(void)
{
    setup(MS_SIZE_FULL);
    ms_region *r = tu_ram(sys, "R", 0x1000);
    ms_region *q = tu_ram(sys, "Q", 0x1000);
    tu_add(root, 0, r, 0);
    tu_add(root, 0x1000, q, 0);
    ms_as *same, *full, *shifted, *off, *nokids, *two_empty;
    CHECK_OK(ms_as_new(sys, root, "same", &same));
    ms_region *fa = tu_alias(sys, "fa", root, 0, MS_SIZE_FULL);
    CHECK_OK(ms_as_new(sys, fa, "full", &full));
    ms_region *sa = tu_alias(sys, "sa", root, 0x1000, 0x1000);
    CHECK_OK(ms_as_new(sys, sa, "shifted", &shifted));
    ms_region *dis = tu_container(sys, "dis", 0x1000);
    CHECK_OK(ms_region_set_enabled(dis, false));
    CHECK_OK(ms_as_new(sys, dis, "off", &off));
    ms_region *empty = tu_container(sys, "empty", 0x1000);
    CHECK_OK(ms_as_new(sys, empty, "nokids", &nokids));
    ms_region *pair = tu_container(sys, "pair", MS_SIZE_FULL);
    tu_add(pair, 0, tu_container(sys, "e1", 0x10), 0);
    tu_add(pair, 0x10, tu_container(sys, "e2", 0x10), 0);
    CHECK_OK(ms_as_new(sys, pair, "two-empty", &two_empty));

    const ms_flatview *v = ms_as_flatview(as);
    CHECK(ms_as_flatview(same) == v);
    CHECK(ms_as_flatview(full) == v);
    CHECK(ms_as_flatview(shifted) != v);
    CHECK(ms_flatview_root(ms_as_flatview(shifted)) == sa);
    CHECK_EQ(ms_flatview_nr_ranges(ms_as_flatview(shifted)), 1);
    struct ms_flat_range fr;
    CHECK_OK(ms_flatview_range(ms_as_flatview(shifted), 0, &fr));
    CHECK(fr.mr == q && fr.gpa == 0 && fr.last == 0xfff);
    CHECK(ms_flatview_root(ms_as_flatview(off)) == NULL);
    CHECK(ms_as_flatview(off) == ms_as_flatview(nokids));
    CHECK(ms_flatview_root(ms_as_flatview(two_empty)) == pair);
    CHECK_EQ(ms_flatview_nr_ranges(ms_as_flatview(two_empty)), 0);
    char *t;
    CHECK_OK(ms_mtree_to_string(sys, MS_MTREE_FLAT, &t));
    CHECK(strstr(t, " AS \"two-empty\", root: pair\n Root memory region: "
                    "pair\n  No rendered FlatView\n") != NULL);
    CHECK(strstr(t, " AS \"full\", root: fa, alias root\n") != NULL);
    CHECK(strstr(t, " AS \"off\", root: dis\n AS \"nokids\", root: empty\n"
                    " Root memory region: (none)\n") != NULL);
    free(t);
    /* Lookup. */
    size_t idx = 99;
    CHECK_OK(ms_flatview_lookup(v, 0x1800, &fr, &idx));
    CHECK_EQ(idx, 1);
    CHECK(fr.mr == q);
    CHECK_ERR(ms_flatview_lookup(v, 0x2000, &fr, NULL), ENOENT);
    CHECK_ERR(ms_flatview_lookup(NULL, 0, &fr, NULL), EINVAL);
    ms_region_unref(fa);
    ms_region_unref(sa);
    ms_region_unref(dis);
    ms_region_unref(empty);
    ms_region_unref(pair);
    teardown();
}

/* A root placed inside a container shifts its own view (QEMU). */
static void test_root_offset(void)
{
    setup(MS_SIZE_FULL);
    ms_region *dev = tu_io(sys, "dev", 0x100);
    ms_as *das;
    CHECK_OK(ms_region_add(root, 0x5000, dev));
    CHECK_OK(ms_as_new(sys, dev, "dev", &das));
    /* (The other order is refused: an AS root cannot be added.) */
    ms_region *other = tu_container(sys, "other", 0x10000);
    CHECK_ERR(ms_region_add(other, 0, root), EBUSY);
    ms_region_unref(other);
    struct ms_flat_range fr;
    CHECK_OK(ms_flatview_range(ms_as_flatview(das), 0, &fr));
    CHECK_EQ(fr.gpa, 0x5000);
    /* Moving it re-renders its own view too. */
    CHECK_OK(ms_region_set_address(dev, 0x6000));
    CHECK_OK(ms_flatview_range(ms_as_flatview(das), 0, &fr));
    CHECK_EQ(fr.gpa, 0x6000);
    CHECK_OK(ms_as_destroy(das));
    ms_region_unref(dev);
    teardown();
}

int main(void)
{
    test_equal_priority();
    test_container_with_holes();
    test_aliases();
    test_sizes_and_clipping();
    test_merge_and_wrappers();
    test_view_roots();
    test_root_offset();
    return ms_test_summary("test_render");
}
