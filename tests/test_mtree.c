/* SPDX-License-Identifier: MIT */
/*
 * `info mtree` text: the worked example of memory-model.md 9.5 (golden
 * files tests/golden/mtree_example*.txt), -D and -o, number formats,
 * overflow marks, disabled parents, alias queues, the accelerator suffix,
 * the dispatch header, the sinks and bad arguments.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

#ifndef GOLDEN_DIR
#define GOLDEN_DIR "tests/golden"
#endif

static char *golden(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, name);
    char *s = tu_read_file(path);
    REQUIRE(s);
    return s;
}

/* A copy of @s with every @from replaced by @to. */
static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t n = 0, fl = strlen(from), tl = strlen(to);
    for (const char *p = strstr(s, from); p; p = strstr(p + fl, from)) {
        n++;
    }
    char *out = malloc(strlen(s) + n * tl + 1), *o = out;
    REQUIRE(out);
    for (const char *p = s, *q; (q = strstr(p, from)); p = q + fl) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, tl);
        o += tl;
        s = q + fl;
    }
    strcpy(o, s);
    return out;
}

static char *text(ms_system *sys, unsigned flags)
{
    char *s = NULL;
    REQUIRE(ms_mtree_to_string(sys, flags, &s) == 0);
    return s;
}

static ms_region *mk(ms_system *sys, struct ms_region_config cfg)
{
    ms_region *r;
    REQUIRE(ms_region_new(sys, &cfg, &r) == 0);
    return r;
}

static void test_worked_example(void)
{
    ms_system *sys;
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    ms_region *sysmem = tu_container(sys, "sysmem", MS_SIZE_FULL);
    ms_region *dram = tu_ram(sys, "dram", 0x100000);
    ms_region *bootrom = tu_rom(sys, "bootrom", 0x20000);
    ms_region *ioport = tu_io(sys, "ioport", 0x10000);
    ms_region *dma_root = tu_alias(sys, "dma-root", sysmem, 0, MS_SIZE_FULL);
    ms_region *bm = tu_container(sys, "bm-container", MS_SIZE_FULL);
    ms_region *bma = tu_alias(sys, "bm-alias", sysmem, 0, MS_SIZE_FULL);
    CHECK_OK(ms_region_set_enabled(bma, false));
    tu_add(bm, 0, bma, 0);

    CHECK_OK(ms_txn_begin(sys));
    tu_add(sysmem, 0, tu_alias(sys, "ram-lo", dram, 0, 0xc0000), 0);
    tu_add(sysmem, 0x100000, tu_alias(sys, "ram-hi", dram, 0xc0000, 0x40000),
           0);
    CHECK_OK(ms_region_add(sysmem, 0xfffe0000, bootrom));
    tu_add(sysmem, 0xf0000,
           tu_alias(sys, "bootrom-shadow", bootrom, 0x10000, 0x10000), 1);
    tu_add(sysmem, 0xa0000, tu_io(sys, "smm-lock", 0x20000), 2);
    tu_add(sysmem, 0x200000,
           mk(sys, (struct ms_region_config){ .kind = MS_REGION_RAM,
                                              .name = "nvdimm",
                                              .size = 0x1000,
                                              .nonvolatile = true }),
           0);
    ms_region *periph = tu_container(sys, "periph", 0x2000);
    tu_add(periph, 0, tu_io(sys, "uart", 8), 0);
    ms_region *gpio = tu_io(sys, "gpio", 0x100);
    CHECK_OK(ms_region_set_enabled(gpio, false));
    tu_add(periph, 0x1000, gpio, 0);
    tu_add(sysmem, 0xfe000000, periph, 0);
    tu_add(sysmem, 0xff000000,
           mk(sys, (struct ms_region_config){ .kind = MS_REGION_ROM_DEVICE,
                                              .name = "flash",
                                              .size = 0x10000,
                                              .ops = &tu_dummy_ops }),
           0);
    tu_add(ioport, 0x40, tu_io(sys, "pit", 4), 0);
    tu_add(ioport, 0xcf8, tu_io(sys, "cfg-idx", 4), 0);
    tu_add(ioport, 0xcf9, tu_io(sys, "reset", 1), 1);
    ms_as *as[4];
    CHECK_OK(ms_as_new(sys, sysmem, "memory", &as[0]));
    CHECK_OK(ms_as_new(sys, dma_root, "dma", &as[1]));
    CHECK_OK(ms_as_new(sys, ioport, "I/O", &as[2]));
    CHECK_OK(ms_as_new(sys, bm, "pci-dev", &as[3]));
    CHECK_OK(ms_txn_commit(sys));

    char *t = text(sys, 0), *g = golden("mtree_example.txt");
    CHECK_STR(t, g);
    free(t);
    free(g);
    t = text(sys, MS_MTREE_FLAT);
    g = golden("mtree_example_flat.txt");
    CHECK_STR(t, g);
    free(t);
    free(g);

    /* -D adds exactly the disabled lines (gpio twice: sysmem is printed
     * again as an alias target). */
    t = text(sys, MS_MTREE_DISABLED);
    g = golden("mtree_example.txt");
    char *e1 = replace_all(g, "): uart\n",
                           "): uart\n      00000000fe001000-00000000fe0010ff "
                           "(prio 0, i/o): gpio [disabled]\n");
    char *e2 = replace_all(e1, "): bm-container\n",
                           "): bm-container\n"
                           "    0000000000000000-ffffffffffffffff (prio 0, "
                           "i/o): alias bm-alias @sysmem "
                           "0000000000000000-ffffffffffffffff [disabled]\n");
    CHECK_STR(t, e2);
    free(t);
    free(g);
    free(e1);
    free(e2);

    /* -o: owner labels, "orphan" without one. */
    t = text(sys, MS_MTREE_OWNER);
    CHECK(strstr(t, "(prio 0, i/o): sysmem orphan\n") != NULL);
    free(t);

    /* The dispatch header of -d (not byte-exact by design). */
    t = text(sys, MS_MTREE_FLAT | MS_MTREE_DISPATCH);
    CHECK(strstr(t, "  Dispatch\n    Physical sections\n      #0 "
                    "@0000000000000000..ffffffffffffffff (noname) "
                    "[unassigned]\n") != NULL);
    free(t);

    ms_region_unref(sysmem);
    ms_region_unref(dram);
    ms_region_unref(bootrom);
    ms_region_unref(ioport);
    ms_region_unref(dma_root);
    ms_region_unref(bm);
    ms_system_free(sys);
}

static bool fake_has_memory(struct ms_listener *l, const ms_as *as,
                            uint64_t gpa, uint64_t size)
{
    (void)l;
    (void)as;
    return gpa == 0x1000 && size == 0x1000;
}

static int sink_count(void *opaque, const char *t, size_t len)
{
    (void)t;
    *(size_t *)opaque += len;
    return 0;
}

static int sink_fail(void *opaque, const char *t, size_t len)
{
    (void)opaque;
    (void)t;
    (void)len;
    return -ENOSPC;
}

static void test_formats(void)
{
    ms_system *sys;
    REQUIRE(ms_system_new(NULL, &sys) == 0);
    ms_region *root = tu_container(sys, "root", MS_SIZE_FULL);
    ms_as *as;
    CHECK_OK(ms_as_new(sys, root, "memory", &as));
    /* Top of the space: wraps in the tree, clipped in the view (10.1.8). */
    tu_add(root, 0xfffffffffffff000, tu_io(sys, "top", 0x2000), -1);
    /* Size 0 prints start-start; a 1-byte region too. */
    tu_add(root, 0x10, tu_io(sys, "empty", 0), 0);
    tu_add(root, 0x20, tu_io(sys, "one", 1), 0);
    ms_region *ram = tu_ram(sys, "ram", 0x1000);
    tu_add(root, 0x1000, ram, 0);
    /* A disabled parent hides its line, not its children's. */
    ms_region *off = tu_container(sys, "off", 0x100);
    tu_add(off, 0, tu_io(sys, "child", 0x10), 0);
    CHECK_OK(ms_region_set_enabled(off, false));
    tu_add(root, 0x100, off, 0);
    char *t = text(sys, 0);
    CHECK_STR(t, "address-space: memory\n"
                 "  0000000000000000-ffffffffffffffff (prio 0, i/o): root\n"
                 "    0000000000000010-0000000000000010 (prio 0, i/o): "
                 "empty\n"
                 "    0000000000000020-0000000000000020 (prio 0, i/o): one\n"
                 "      0000000000000100-000000000000010f (prio 0, i/o): "
                 "child\n"
                 "    0000000000001000-0000000000001fff (prio 0, ram): ram\n"
                 "[DETECTED OVERFLOW!]     fffffffffffff000-0000000000000fff "
                 "(prio -1, i/o): top\n\n");
    free(t);
    t = text(sys, MS_MTREE_FLAT);
    CHECK_STR(t, "FlatView #0\n"
                 " AS \"memory\", root: root\n"
                 " Root memory region: root\n"
                 "  0000000000000020-0000000000000020 (prio 0, i/o): one\n"
                 "  0000000000001000-0000000000001fff (prio 0, ram): ram\n"
                 "  fffffffffffff000-ffffffffffffffff (prio -1, i/o): top\n"
                 "\n");
    free(t);

    /* Accelerator suffix from listeners that answer has_memory. */
    struct ms_listener kvm = { .name = "kvm", .accel_name = "KVM",
                               .has_memory = fake_has_memory };
    CHECK_OK(ms_listener_register(as, &kvm));
    t = text(sys, MS_MTREE_FLAT);
    CHECK(strstr(t, "(prio 0, ram): ram KVM\n") != NULL);
    CHECK(strstr(t, "(prio 0, i/o): one\n") != NULL);
    free(t);
    CHECK_OK(ms_listener_unregister(&kvm));

    /* Sinks and errors. */
    size_t n = 0;
    CHECK_OK(ms_mtree_print(sys, 0, sink_count, &n));
    t = text(sys, 0);
    CHECK_EQ(n, strlen(t));
    free(t);
    CHECK_ERR(ms_mtree_print(sys, 0, sink_fail, NULL), ENOSPC);
    CHECK_ERR(ms_mtree_print(sys, 0, NULL, NULL), EINVAL);
    CHECK_ERR(ms_mtree_print(NULL, 0, sink_count, &n), EINVAL);
    CHECK_ERR(ms_mtree_print(sys, 1u << 9, sink_count, &n), EINVAL);
    CHECK_ERR(ms_mtree_to_string(sys, 0, NULL), EINVAL);
    CHECK_ERR(ms_mtree_fprint(sys, 0, NULL), EINVAL);
    FILE *f = tmpfile();
    REQUIRE(f);
    CHECK_OK(ms_mtree_fprint(sys, MS_MTREE_FLAT, f));
    CHECK(ftell(f) > 0);
    fclose(f);

    /* Groups: ASes sharing a root listed together, sorted by name. */
    ms_as *b, *a2;
    CHECK_OK(ms_as_new(sys, root, "cpu-memory-0", &b));
    CHECK_OK(ms_as_new(sys, root, "Zed", &a2));
    t = text(sys, 0);
    CHECK(strncmp(t, "address-space: Zed\naddress-space: cpu-memory-0\n"
                     "address-space: memory\n",
                  strlen("address-space: Zed\naddress-space: cpu-memory-0\n"
                         "address-space: memory\n")) == 0);
    free(t);
    t = text(sys, MS_MTREE_FLAT);
    CHECK(strstr(t, " AS \"memory\", root: root\n AS \"cpu-memory-0\", "
                    "root: root\n AS \"Zed\", root: root\n") != NULL);
    free(t);

    ms_region_unref(root);
    ms_system_free(sys);
}

int main(void)
{
    test_worked_example();
    test_formats();
    return ms_test_summary("test_mtree");
}
