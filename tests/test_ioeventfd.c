/* SPDX-License-Identifier: MIT */
/*
 * ioeventfds: registration rules, translation into address-space
 * coordinates, the diff reported to listeners (memory-model.md section 5,
 * edge cases 32-40), and the bookkeeping of entries a listener took.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness.h"
#include "reclog.h"
#include "testutil.h"

#define EXPECT_LOG(rec, text)                                                \
    do {                                                                     \
        CHECK_STR(reclog_text(rec), text);                                   \
        reclog_clear(rec);                                                   \
    } while (0)

static ms_system *sys;
static ms_region *sysmem;
static ms_as *mem;
static struct reclog L;

static void setup(void)
{
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    sysmem = tu_container(sys, "system", MS_SIZE_FULL);
    REQUIRE(ms_as_new(sys, sysmem, "memory", &mem) == 0);
    reclog_init(&L, "L", 0);
    REQUIRE(ms_listener_register(mem, &L.l) == 0);
    reclog_clear(&L);
}

static void teardown(void)
{
    CHECK_OK(ms_listener_unregister(&L.l));
    reclog_free(&L);
    ms_region_unref(sysmem);
    ms_system_free(sys);
}

static void test_bad_input(void)
{
    setup();
    ms_region *dev = tu_io(sys, "dev", 0x100);
    CHECK_ERR(ms_region_add_eventfd(NULL, 0, 4, false, 0, 3), EINVAL);
    CHECK_ERR(ms_region_add_eventfd(dev, 0, 4, false, 0, -1), EINVAL);
    CHECK_ERR(ms_region_add_eventfd(dev, 0, 3, false, 0, 3), EINVAL);
    CHECK_ERR(ms_region_add_eventfd(dev, 0, 16, false, 0, 3), EINVAL);
    CHECK_ERR(ms_region_add_eventfd(dev, 0, 0, true, 0, 3), EINVAL);
    CHECK_ERR(ms_region_add_eventfd(dev, 0xfe, 4, false, 0, 3), ERANGE);
    CHECK_ERR(ms_region_add_eventfd(dev, 0x100, 0, false, 0, 3), ERANGE);
    CHECK_ERR(ms_region_add_eventfd(dev, UINT64_MAX, 8, false, 0, 3),
              ERANGE);
    /* Deleting an entry that does not exist (item 40). */
    CHECK_ERR(ms_region_del_eventfd(dev, 0, 4, false, 0, 3), ENOENT);
    CHECK_OK(ms_region_add_eventfd(dev, 0, 4, true, 1, 3));
    CHECK_ERR(ms_region_del_eventfd(dev, 0, 4, true, 2, 3), ENOENT);
    CHECK_ERR(ms_region_del_eventfd(dev, 0, 4, false, 1, 3), ENOENT);
    CHECK_ERR(ms_region_del_eventfd(dev, 0, 4, true, 1, 4), ENOENT);
    CHECK_OK(ms_region_del_eventfd(dev, 0, 4, true, 1, 3));
    CHECK_EQ(ms_as_nr_eventfds(mem), 0);
    CHECK_STR(reclog_text(&L), ""); /* unmapped: nothing reported */
    ms_region_unref(dev);
    teardown();
}

static void test_basic_and_transactions(void)
{
    setup();
    ms_region *dev = tu_io(sys, "dev", 0x100);
    tu_add(sysmem, 0x1000, dev, 0);
    reclog_clear(&L);
    /* ioeventfd-only commit: no begin/commit (item 33). */
    CHECK_OK(ms_region_add_eventfd(dev, 0x10, 2, false, 0, 5));
    EXPECT_LOG(&L, "L eventfd_add memory 1010+2 fd=5\n");
    CHECK_EQ(ms_as_nr_eventfds(mem), 1);
    struct ms_eventfd_info ei;
    CHECK_OK(ms_as_eventfd(mem, 0, &ei));
    CHECK_EQ(ei.gpa, 0x1010);
    CHECK_EQ(ei.size, 2);
    CHECK_EQ(ei.fd, 5);
    CHECK(!ei.taken);
    CHECK_ERR(ms_as_eventfd(mem, 1, &ei), ERANGE);
    /* Add and delete inside one transaction: nothing (item 32). */
    CHECK_OK(ms_txn_begin(sys));
    CHECK_OK(ms_region_add_eventfd(dev, 0x20, 4, true, 9, 6));
    CHECK_OK(ms_region_del_eventfd(dev, 0x20, 4, true, 9, 6));
    CHECK_OK(ms_txn_commit(sys));
    CHECK_STR(reclog_text(&L), "");
    /* Moving the region: region callbacks, then eventfd del/add. */
    CHECK_OK(ms_region_set_address(dev, 0x3000));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_del memory 1000-10ff dev@0\n"
                   "L region_add memory 3000-30ff dev@0\n"
                   "L eventfd_del memory 1010+2 fd=5\n"
                   "L eventfd_add memory 3010+2 fd=5\n"
                   "L commit\n");
    /* Duplicates are allowed and reported one by one. */
    CHECK_OK(ms_region_add_eventfd(dev, 0x10, 2, false, 0, 5));
    EXPECT_LOG(&L, "L eventfd_add memory 3010+2 fd=5\n");
    CHECK_EQ(ms_as_nr_eventfds(mem), 2);
    CHECK_OK(ms_region_del_eventfd(dev, 0x10, 2, false, 0, 5));
    EXPECT_LOG(&L, "L eventfd_del memory 3010+2 fd=5\n");
    /* Disabling the region removes its entries from the set. */
    CHECK_OK(ms_region_set_enabled(dev, false));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_del memory 3000-30ff dev@0\n"
                   "L eventfd_del memory 3010+2 fd=5\n"
                   "L commit\n");
    /* An edit on a disabled region raises nothing. */
    CHECK_OK(ms_region_add_eventfd(dev, 0x30, 1, false, 0, 5));
    CHECK_STR(reclog_text(&L), "");
    CHECK_OK(ms_region_set_enabled(dev, true));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_add memory 3000-30ff dev@0\n"
                   "L eventfd_add memory 3010+2 fd=5\n"
                   "L eventfd_add memory 3030+1 fd=5\n"
                   "L commit\n");
    teardown();
}

static void test_containers_aliases_splits(void)
{
    setup();
    /* Entries on a container or an alias never count (item 34). */
    ms_region *box = tu_container(sys, "box", 0x1000);
    ms_region *ram = tu_ram(sys, "ram", 0x1000);
    tu_add(sysmem, 0x10000, box, 0);
    ms_region *al = tu_alias(sys, "al", ram, 0, 0x1000);
    tu_add(sysmem, 0x20000, al, 0);
    reclog_clear(&L);
    CHECK_OK(ms_region_add_eventfd(box, 0, 4, false, 0, 7));
    CHECK_OK(ms_region_add_eventfd(al, 0, 4, false, 0, 7));
    CHECK_STR(reclog_text(&L), "");
    CHECK_EQ(ms_as_nr_eventfds(mem), 0);

    /* On an unmapped region, then mapped: after region callbacks (35). */
    ms_region *dev = tu_io(sys, "dev", 0x100);
    CHECK_OK(ms_region_add_eventfd(dev, 0x40, 4, true, 0x11, 8));
    CHECK_STR(reclog_text(&L), "");
    CHECK_OK(ms_region_add(sysmem, 0x30000, dev));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_nop memory 20000-20fff ram@0\n"
                   "L region_add memory 30000-300ff dev@0\n"
                   "L eventfd_add memory 30040+4 data=11 fd=8\n"
                   "L commit\n");
    /* Mapped twice through aliases: one entry per place (36). */
    ms_region *a1 = tu_alias(sys, "a1", dev, 0, 0x100);
    ms_region *a2 = tu_alias(sys, "a2", dev, 0, 0x100);
    CHECK_OK(ms_txn_begin(sys));
    CHECK_OK(ms_region_del(sysmem, dev));
    tu_add(sysmem, 0x40000, a1, 0);
    tu_add(sysmem, 0x50000, a2, 0);
    CHECK_OK(ms_txn_commit(sys));
    EXPECT_LOG(&L, "L begin\n"
                   "L region_del memory 30000-300ff dev@0\n"
                   "L region_nop memory 20000-20fff ram@0\n"
                   "L region_add memory 40000-400ff dev@0\n"
                   "L region_add memory 50000-500ff dev@0\n"
                   "L eventfd_del memory 30040+4 data=11 fd=8\n"
                   "L eventfd_add memory 40040+4 data=11 fd=8\n"
                   "L eventfd_add memory 50040+4 data=11 fd=8\n"
                   "L commit\n");
    CHECK_EQ(ms_as_nr_eventfds(mem), 2);

    /* Straddling a split of its region: reported twice (37). */
    ms_region *big = tu_io(sys, "big", 0x100);
    CHECK_OK(ms_region_add_eventfd(big, 0x7c, 8, false, 0, 9));
    ms_region *hole = tu_io(sys, "hole", 0x80);
    tu_add(big, 0x80, hole, 0); /* big now renders as [0,0x80) only */
    CHECK_OK(ms_region_set_size(hole, 0x2));
    tu_add(sysmem, 0x60000, big, 0);
    reclog_clear(&L);
    /* big renders [0,0x80) and [0x82,0x100): the entry [0x7c,0x84) meets
     * both pieces and is reported (whole, not clipped) once per piece. */
    size_t n = ms_as_nr_eventfds(mem);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        struct ms_eventfd_info ei;
        CHECK_OK(ms_as_eventfd(mem, i, &ei));
        if (ei.fd == 9) {
            CHECK_EQ(ei.gpa, 0x6007c);
            CHECK_EQ(ei.size, 8);
            found++;
        }
    }
    CHECK_EQ(found, 2);
    CHECK_OK(ms_region_set_address(big, 0x70000));
    CHECK_STR(reclog_text(&L),
              "L begin\n"
              "L region_del memory 60000-6007f big@0\n"
              "L region_del memory 60080-60081 hole@0\n"
              "L region_del memory 60082-600ff big@82\n"
              "L region_nop memory 20000-20fff ram@0\n"
              "L region_nop memory 40000-400ff dev@0\n"
              "L region_nop memory 50000-500ff dev@0\n"
              "L region_add memory 70000-7007f big@0\n"
              "L region_add memory 70080-70081 hole@0\n"
              "L region_add memory 70082-700ff big@82\n"
              "L eventfd_del memory 6007c+8 fd=9\n"
              "L eventfd_del memory 6007c+8 fd=9\n"
              "L eventfd_add memory 7007c+8 fd=9\n"
              "L eventfd_add memory 7007c+8 fd=9\n"
              "L commit\n");
    ms_region_unref(ram);
    ms_region_unref(dev);
    teardown();
}

static void test_big_endian_and_taken(void)
{
    setup();
    struct ms_region_ops be = { .endianness = MS_ENDIAN_BIG };
    ms_region *dev;
    struct ms_region_config cfg = { .kind = MS_REGION_IO, .name = "be",
                                    .size = 0x10, .ops = &be };
    CHECK_OK(ms_region_new(sys, &cfg, &dev));
    tu_add(sysmem, 0, dev, 0);
    reclog_clear(&L);
    /* Data is converted to the region's register order (5.1). */
    CHECK_OK(ms_region_add_eventfd(dev, 0, 4, true, 0x11223344, 3));
    EXPECT_LOG(&L, "L eventfd_add memory 0+4 data=44332211 fd=3\n");
    /* Deleting uses the same conversion, so the caller's value works. */
    CHECK_OK(ms_region_del_eventfd(dev, 0, 4, true, 0x11223344, 3));
    reclog_clear(&L);

    /* A listener that takes entries: the set records it. */
    L.eventfd_ret = 1;
    CHECK_OK(ms_region_add_eventfd(dev, 8, 0, false, 0, 4));
    struct ms_eventfd_info ei;
    CHECK_OK(ms_as_eventfd(mem, 0, &ei));
    CHECK(ei.taken);
    /* Listener errors are reported, the entry stays registered. */
    L.fail_cb = "eventfd_add";
    L.fail_count = 1;
    CHECK_ERR(ms_region_add_eventfd(dev, 4, 2, false, 0, 4), EIO);
    CHECK_EQ(ms_as_nr_eventfds(mem), 2);
    /* Registered after the entries exist: not told about them (39). */
    struct reclog M;
    reclog_init(&M, "M", 0);
    CHECK_OK(ms_listener_register(mem, &M.l));
    CHECK_STR(reclog_text(&M), "M begin\nM region_add memory 0-f be@0\n"
                               "M commit\n");
    CHECK_OK(ms_listener_unregister(&M.l));
    reclog_free(&M);
    teardown();
}

/* Userspace fallback through the access path, and entries a listener took
 * (e.g. registered with the kernel) are left to the device. */
static uint64_t dev_writes;

static void count_write(void *opaque, uint64_t offset, uint64_t value,
                        unsigned size)
{
    (void)opaque;
    (void)offset;
    (void)value;
    (void)size;
    dev_writes++;
}

static void test_userspace_fallback(void)
{
    setup();
    static const struct ms_region_ops ops = { .write = count_write };
    struct ms_region_config cfg = { .kind = MS_REGION_IO, .name = "bell",
                                    .size = 0x100, .ops = &ops };
    ms_region *dev;
    CHECK_OK(ms_region_new(sys, &cfg, &dev));
    tu_add(sysmem, 0x9000, dev, 0);
    int fd = eventfd(0, EFD_NONBLOCK);
    REQUIRE(fd >= 0);
    uint64_t cnt = 0;
    struct ms_attrs u = MS_ATTRS_UNSPECIFIED;

    /* Nobody took it: the write signals the eventfd, not the device. */
    CHECK_OK(ms_region_add_eventfd(dev, 0x8, 4, false, 0, fd));
    dev_writes = 0;
    CHECK_EQ(ms_as_stl_le(mem, 0x9008, 99, u), MS_TX_OK);
    CHECK_EQ(dev_writes, 0);
    CHECK_EQ(read(fd, &cnt, 8), 8);
    CHECK_EQ(cnt, 1);
    CHECK_OK(ms_region_del_eventfd(dev, 0x8, 4, false, 0, fd));

    /* A listener takes it: the device gets the write (the backend would
     * have handled guest writes itself). */
    L.eventfd_ret = 1;
    CHECK_OK(ms_region_add_eventfd(dev, 0x8, 4, false, 0, fd));
    CHECK_EQ(ms_as_stl_le(mem, 0x9008, 99, u), MS_TX_OK);
    CHECK_EQ(dev_writes, 1);
    CHECK_EQ(read(fd, &cnt, 8), -1); /* not signalled */
    /* Once deleted (eventfd_del), a re-added, untaken entry is matched
     * in userspace again. */
    L.eventfd_ret = 0;
    CHECK_OK(ms_region_del_eventfd(dev, 0x8, 4, false, 0, fd));
    CHECK_OK(ms_region_add_eventfd(dev, 0x8, 0, false, 0, fd));
    CHECK_EQ(ms_as_stb(mem, 0x9008, 1, u), MS_TX_OK); /* any size */
    CHECK_EQ(dev_writes, 1);
    CHECK_EQ(read(fd, &cnt, 8), 8);
    close(fd);
    teardown();
}

int main(void)
{
    test_bad_input();
    test_basic_and_transactions();
    test_containers_aliases_splits();
    test_big_endian_and_taken();
    test_userspace_fallback();
    return ms_test_summary("test_ioeventfd");
}
