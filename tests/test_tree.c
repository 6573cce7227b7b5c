/* SPDX-License-Identifier: MIT */
/*
 * Tree edits and transactions: which edit raises the topology flag when
 * (memory-model.md 1.6, 1.7, 3.1), observed as the number of commits a
 * listener sees, and the visible effect of every edit on the view.
 */
#include <errno.h>
#include <stdlib.h>

#include "harness.h"
#include "testutil.h"

static int begins;

static int count_begin(struct ms_listener *l)
{
    (void)l;
    begins++;
    return 0;
}

static ms_system *sys;
static ms_region *root;
static ms_as *as;
static struct ms_listener counter = { .name = "count", .begin = count_begin };

static void setup(void)
{
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    root = tu_container(sys, "root", MS_SIZE_FULL);
    REQUIRE(ms_as_new(sys, root, "as", &as) == 0);
    REQUIRE(ms_listener_register(as, &counter) == 0);
    begins = 0;
}

static void teardown(void)
{
    CHECK_OK(ms_listener_unregister(&counter));
    ms_region_unref(root);
    ms_system_free(sys);
}

static int begins_before;

static void must_succeed(int err)
{
    CHECK_OK(err);
}

/* Run @edit and yield how many topology commits it caused. */
#define COMMITS(edit)                                                        \
    (begins_before = begins, must_succeed(edit), begins - begins_before)

static void test_pending_rules(void)
{
    setup();
    ms_region *ram = tu_ram(sys, "ram", 0x2000);
    ms_region *al = tu_alias(sys, "al", ram, 0, 0x1000);
    struct ms_region_config cfg = { .kind = MS_REGION_ROM_DEVICE,
                                    .name = "flash", .size = 0x1000,
                                    .ops = &tu_dummy_ops };
    ms_region *flash;
    CHECK_OK(ms_region_new(sys, &cfg, &flash));

    /* Enabled regions: every real change commits once. */
    CHECK_EQ(COMMITS(ms_region_add(root, 0, ram)), 1);
    CHECK_EQ(COMMITS(ms_region_add(root, 0x10000, al)), 1);
    CHECK_EQ(COMMITS(ms_region_add(root, 0x20000, flash)), 1);
    CHECK_EQ(COMMITS(ms_region_set_readonly(ram, true)), 1);
    CHECK_EQ(COMMITS(ms_region_set_readonly(ram, true)), 0); /* same */
    CHECK_EQ(COMMITS(ms_region_set_nonvolatile(ram, true)), 1);
    CHECK_EQ(COMMITS(ms_region_set_alias_offset(al, 0x800)), 1);
    CHECK_EQ(COMMITS(ms_region_set_romd(flash, false)), 1);
    CHECK_EQ(COMMITS(ms_region_set_size(ram, 0x1000)), 1);
    CHECK_EQ(COMMITS(ms_region_set_size(ram, 0x1000)), 0);
    CHECK_EQ(COMMITS(ms_region_set_address(ram, 0x4000)), 1);
    CHECK_EQ(COMMITS(ms_region_set_address(ram, 0x4000)), 0);

    /* Disabled regions: flag setters raise nothing (item 21). */
    CHECK_EQ(COMMITS(ms_region_set_enabled(al, false)), 1);
    CHECK_EQ(COMMITS(ms_region_set_readonly(al, true)), 0);
    CHECK_EQ(COMMITS(ms_region_set_nonvolatile(al, true)), 0);
    CHECK_EQ(COMMITS(ms_region_set_alias_offset(al, 0)), 0);
    /* ...but enabling and resizing always do. */
    CHECK_EQ(COMMITS(ms_region_set_size(al, 0x800)), 1);
    CHECK_EQ(COMMITS(ms_region_set_enabled(al, true)), 1);
    /* The new state shows once enabled: alias at offset 0, read-only. */
    struct ms_flat_range fr;
    CHECK_OK(ms_flatview_lookup(ms_as_flatview(as), 0x10000, &fr, NULL));
    CHECK(fr.readonly && fr.nonvolatile && fr.offset == 0);
    CHECK_EQ(fr.last, 0x107ff);

    /* Children of a disabled container (item 22). */
    ms_region *box = tu_container(sys, "box", 0x1000);
    CHECK_OK(ms_region_set_enabled(box, false));
    CHECK_EQ(COMMITS(ms_region_add(root, 0x30000, box)), 0);
    ms_region *kid = tu_io(sys, "kid", 0x10);
    CHECK_EQ(COMMITS(ms_region_add(box, 0, kid)), 0);
    CHECK_EQ(COMMITS(ms_region_set_address(kid, 0x10)), 0);
    CHECK_EQ(COMMITS(ms_region_del(box, kid)), 0);
    /* An unmapped region's address: nothing. */
    CHECK_EQ(COMMITS(ms_region_set_address(kid, 0x20)), 0);
    CHECK_EQ(ms_region_addr(kid), 0x20);

    /* A transaction folds everything into one commit (item 17). */
    CHECK_OK(ms_txn_begin(sys));
    CHECK_OK(ms_region_set_readonly(ram, false));
    CHECK_OK(ms_region_set_nonvolatile(ram, false));
    CHECK_OK(ms_region_set_romd(flash, true));
    CHECK_OK(ms_region_set_address(ram, 0));
    CHECK_EQ(begins, 0 + begins); /* nothing yet */
    int b0 = begins;
    CHECK_OK(ms_txn_commit(sys));
    CHECK_EQ(begins - b0, 1);
    /* An empty transaction commits nothing at all. */
    CHECK_OK(ms_txn_begin(sys));
    CHECK_EQ(COMMITS(ms_txn_commit(sys)), 0);

    ms_region_unref(ram);
    ms_region_unref(al);
    ms_region_unref(flash);
    ms_region_unref(box);
    ms_region_unref(kid);
    teardown();
}

static void test_edit_effects(void)
{
    setup();
    ms_region *ram = tu_ram(sys, "ram", 0x2000);
    CHECK_OK(ms_region_add(root, 0x1000, ram));
    char *v = tu_flat_lines(as);
    CHECK_STR(v, "0000000000001000-0000000000002fff ram ram\n");
    free(v);
    CHECK_OK(ms_region_set_size(ram, 0x800));
    CHECK_OK(ms_region_set_address(ram, 0x8000));
    CHECK_OK(ms_region_set_nonvolatile(ram, true));
    v = tu_flat_lines(as);
    CHECK_STR(v, "0000000000008000-00000000000087ff nv-ram ram\n");
    free(v);
    CHECK_OK(ms_region_set_enabled(ram, false));
    v = tu_flat_lines(as);
    CHECK_STR(v, "");
    free(v);
    CHECK_OK(ms_region_set_enabled(ram, true));
    CHECK_OK(ms_region_del(root, ram));
    v = tu_flat_lines(as);
    CHECK_STR(v, "");
    free(v);
    CHECK(!ms_region_is_mapped(ram));
    CHECK(ms_region_container(ram) == NULL);
    /* The address is kept while unmapped and used when re-added. */
    CHECK_EQ(ms_region_addr(ram), 0x8000);
    ms_region_unref(ram);
    teardown();
}

int main(void)
{
    test_pending_rules();
    test_edit_effects();
    return ms_test_summary("test_tree");
}
