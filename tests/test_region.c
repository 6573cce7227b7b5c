/* SPDX-License-Identifier: MIT */
/*
 * Regions: creation of every kind, properties, queries, reference counts,
 * RAM backings, and every bad input of the foundation issue (each returns a
 * negative errno and leaves everything as it was).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "testutil.h"

static ms_system *new_sys(void)
{
    ms_system *sys;
    struct ms_system_config cfg = { .log = tu_log };
    REQUIRE(ms_system_new(&cfg, &sys) == 0);
    return sys;
}

/* The whole printed state, to prove that failed calls changed nothing. */
static char *state(ms_system *sys)
{
    char *a = NULL, *b = NULL;
    REQUIRE(ms_mtree_to_string(sys, MS_MTREE_DISABLED | MS_MTREE_OWNER,
                               &a) == 0);
    REQUIRE(ms_mtree_to_string(sys, MS_MTREE_FLAT, &b) == 0);
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    REQUIRE(s);
    snprintf(s, n, "%s%s", a, b);
    free(a);
    free(b);
    return s;
}

static void test_system(void)
{
    ms_system *sys;
    CHECK_ERR(ms_system_new(NULL, NULL), EINVAL);
    struct ms_system_config bad = { .target_page_size = 1000 };
    CHECK_ERR(ms_system_new(&bad, &sys), EINVAL);
    bad.target_page_size = 256;
    CHECK_ERR(ms_system_new(&bad, &sys), EINVAL);
    CHECK_OK(ms_system_new(NULL, &sys));
    CHECK_EQ(ms_txn_depth(sys), 0);
    CHECK_ERR(ms_txn_begin(NULL), EINVAL);
    CHECK_ERR(ms_txn_commit(NULL), EINVAL);
    CHECK_ERR(ms_txn_commit(sys), EINVAL);
    CHECK_OK(ms_txn_begin(sys));
    CHECK_OK(ms_txn_begin(sys));
    CHECK_EQ(ms_txn_depth(sys), 2);
    CHECK_OK(ms_txn_commit(sys));
    CHECK_OK(ms_txn_commit(sys));
    ms_system_free(sys);
    ms_system_free(NULL);
}

static void test_kinds(void)
{
    ms_system *sys = new_sys();
    ms_region *c = tu_container(sys, "c", MS_SIZE_FULL);
    CHECK_EQ(ms_region_kind(c), MS_REGION_CONTAINER);
    CHECK_EQ(ms_region_size(c), MS_SIZE_FULL);
    CHECK(!ms_region_terminates(c));
    CHECK_STR(ms_region_type_name(c), "i/o");
    CHECK(ms_region_enabled(c));
    CHECK(!ms_region_readonly(c));
    CHECK(ms_region_romd(c)); /* QEMU: romd_mode defaults to true */
    CHECK(ms_region_host(c) == NULL);
    CHECK(ms_region_system(c) == sys);

    ms_region *ram = tu_ram(sys, "ram", 0x3000);
    CHECK_STR(ms_region_type_name(ram), "ram");
    CHECK(ms_region_terminates(ram));
    unsigned char *h = ms_region_host(ram);
    CHECK(h != NULL);
    CHECK_EQ(((uintptr_t)h) % 4096, 0);
    CHECK_EQ(h[0x2fff], 0); /* zeroed */
    h[0x10] = 0x5a;

    ms_region *rom = tu_rom(sys, "rom", 0x1000);
    CHECK(ms_region_readonly(rom));
    CHECK_STR(ms_region_type_name(rom), "rom");
    CHECK_OK(ms_region_set_readonly(rom, false)); /* then it is RAM */
    CHECK_STR(ms_region_type_name(rom), "ram");

    struct ms_region_config cfg = { .kind = MS_REGION_ROM_DEVICE,
                                    .name = "flash", .size = 0x1000,
                                    .ops = &tu_dummy_ops };
    ms_region *flash;
    CHECK_OK(ms_region_new(sys, &cfg, &flash));
    CHECK_STR(ms_region_type_name(flash), "romd");
    CHECK_OK(ms_region_set_romd(flash, false));
    CHECK_STR(ms_region_type_name(flash), "i/o");
    CHECK(ms_region_host(flash) != NULL);
    CHECK_ERR(ms_region_set_romd(ram, false), EINVAL);

    unsigned char devmem[64];
    cfg = (struct ms_region_config){ .kind = MS_REGION_RAM_DEVICE,
                                     .name = "bar", .size = sizeof(devmem),
                                     .backing = MS_RAM_HOST,
                                     .host = devmem };
    ms_region *bar;
    CHECK_OK(ms_region_new(sys, &cfg, &bar));
    CHECK_STR(ms_region_type_name(bar), "ramd");
    CHECK(ms_region_host(bar) == devmem);

    ms_region *io = tu_io(sys, "io", 0);
    CHECK_EQ(ms_region_size(io), 0); /* size 0 is fine for I/O */
    cfg = (struct ms_region_config){ .kind = MS_REGION_RESERVATION,
                                     .name = "hole", .size = 0x1000 };
    ms_region *res;
    CHECK_OK(ms_region_new(sys, &cfg, &res));
    CHECK(ms_region_terminates(res));
    CHECK_STR(ms_region_type_name(res), "i/o");

    /* Aliases: type of the final target; host pointer with offsets. */
    ms_region *a1 = tu_alias(sys, "a1", ram, 0x1000, 0x2000);
    ms_region *a2 = tu_alias(sys, "a2", a1, 0x10, 0x100);
    CHECK_STR(ms_region_type_name(a2), "ram");
    CHECK(ms_region_alias_target(a2) == a1);
    CHECK_EQ(ms_region_alias_offset(a2), 0x10);
    CHECK(ms_region_host(a2) == h + 0x1010);
    CHECK(!ms_region_terminates(a2));

    /* Owner labels and initial flags. */
    cfg = (struct ms_region_config){ .kind = MS_REGION_CONTAINER,
                                     .name = "owned", .size = 1,
                                     .owner = "owner:{dev id=x}",
                                     .disabled = true, .nonvolatile = true,
                                     .readonly = true };
    ms_region *owned;
    CHECK_OK(ms_region_new(sys, &cfg, &owned));
    CHECK_STR(ms_region_owner(owned), "owner:{dev id=x}");
    CHECK(ms_region_owner(c) == NULL);
    CHECK(!ms_region_enabled(owned));
    CHECK(ms_region_nonvolatile(owned));
    CHECK(ms_region_readonly(owned));

    /* NULL queries are harmless. */
    CHECK(ms_region_name(NULL) == NULL);
    CHECK_EQ(ms_region_size(NULL), 0);
    CHECK(ms_region_ref(NULL) == NULL);
    ms_region_unref(NULL);

    ms_region *all[] = { c, ram, rom, flash, bar, io, res, a1, a2, owned };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        ms_region_unref(all[i]);
    }
    ms_system_free(sys);
}

static void test_backings(void)
{
    ms_system *sys = new_sys();
    /* Caller memory: used in place, never freed by the library. */
    void *mem = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem != MAP_FAILED);
    struct ms_region_config cfg = { .kind = MS_REGION_RAM, .name = "host",
                                    .size = 8192, .backing = MS_RAM_HOST,
                                    .host = mem };
    ms_region *r;
    CHECK_OK(ms_region_new(sys, &cfg, &r));
    CHECK(ms_region_host(r) == mem);
    ms_region_unref(r);
    ((char *)mem)[0] = 1; /* still mapped */
    munmap(mem, 8192);

    /* A memfd, shared: writes through the region reach the file. */
    int fd = memfd_create("ms-test", 0);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, 3 * 4096) == 0);
    cfg = (struct ms_region_config){ .kind = MS_REGION_RAM, .name = "memfd",
                                     .size = 4096, .backing = MS_RAM_FD,
                                     .fd = fd, .fd_offset = 4096,
                                     .shared = true };
    CHECK_OK(ms_region_new(sys, &cfg, &r));
    char *p = ms_region_host(r);
    REQUIRE(p);
    memcpy(p, "hello", 5);
    char buf[5];
    CHECK_EQ(pread(fd, buf, 5, 4096), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    ms_region_unref(r);
    /* Private: the file is not changed. */
    cfg.shared = false;
    cfg.fd_offset = 0;
    CHECK_OK(ms_region_new(sys, &cfg, &r));
    p = ms_region_host(r);
    memcpy(p, "XXXXX", 5);
    CHECK_EQ(pread(fd, buf, 5, 0), 5);
    CHECK(buf[0] == 0);
    ms_region_unref(r);
    /* Bad fd and unaligned offset come back as errors. */
    cfg.fd = -1;
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    cfg.fd = fd;
    cfg.fd_offset = 100;
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    close(fd);
    ms_system_free(sys);
}

static void test_bad_creation(void)
{
    ms_system *sys = new_sys();
    ms_region *r = NULL, *ram = tu_ram(sys, "ram", 0x1000);
    struct ms_region_config cfg = { .kind = MS_REGION_RAM, .size = 0x1000 };
    /* NULL and empty names. */
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    cfg.name = "";
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    CHECK(strstr(tu_last_log, "name") != NULL);
    cfg.name = "x";
    CHECK_ERR(ms_region_new(NULL, &cfg, &r), EINVAL);
    CHECK_ERR(ms_region_new(sys, NULL, &r), EINVAL);
    CHECK_ERR(ms_region_new(sys, &cfg, NULL), EINVAL);
    /* Size 0 where it makes no sense: RAM-backed kinds. */
    cfg.size = 0;
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    cfg.kind = MS_REGION_ROM;
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    cfg.size = MS_SIZE_FULL;
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    /* Unknown kind / backing; missing host, ops. */
    cfg = (struct ms_region_config){ .kind = (enum ms_region_kind)99,
                                     .name = "x", .size = 1 };
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    cfg = (struct ms_region_config){ .kind = MS_REGION_RAM, .name = "x",
                                     .size = 1,
                                     .backing = (enum ms_ram_backing)7 };
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    cfg.backing = MS_RAM_HOST;
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    cfg = (struct ms_region_config){ .kind = MS_REGION_RAM_DEVICE,
                                     .name = "x", .size = 1,
                                     .backing = MS_RAM_HOST };
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    cfg = (struct ms_region_config){ .kind = MS_REGION_IO, .name = "x",
                                     .size = 1 };
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    cfg.kind = MS_REGION_ROM_DEVICE;
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    /* Alias without target; window beyond its target (the rule: the
     * window must lie inside the target when it is defined). */
    cfg = (struct ms_region_config){ .kind = MS_REGION_ALIAS, .name = "a",
                                     .size = 0x800 };
    CHECK_ERR(ms_region_new(sys, &cfg, &r), EINVAL);
    cfg.alias_target = ram;
    cfg.alias_offset = 0x900;
    CHECK_ERR(ms_region_new(sys, &cfg, &r), ERANGE);
    cfg.alias_offset = 0x1001;
    cfg.size = 0;
    CHECK_ERR(ms_region_new(sys, &cfg, &r), ERANGE);
    cfg.alias_offset = UINT64_MAX;
    cfg.size = 2;
    CHECK_ERR(ms_region_new(sys, &cfg, &r), ERANGE);
    cfg.alias_offset = 0x800;
    cfg.size = 0x800;
    CHECK_OK(ms_region_new(sys, &cfg, &r)); /* exactly the end: fine */
    CHECK_ERR(ms_region_set_alias_offset(r, 0x801), ERANGE);
    CHECK_EQ(ms_region_alias_offset(r), 0x800);
    CHECK_ERR(ms_region_set_size(r, 0x801), ERANGE);
    CHECK_ERR(ms_region_set_alias_offset(ram, 0), EINVAL);
    /* Alias across systems. */
    ms_system *other = new_sys();
    CHECK_ERR(ms_region_new(other, &cfg, &r), EXDEV);
    ms_system_free(other);
    CHECK(r != NULL);
    ms_region_unref(r);
    ms_region_unref(ram);
    ms_system_free(sys);
}

static void test_bad_edits(void)
{
    ms_system *sys = new_sys();
    ms_region *root = tu_container(sys, "root", MS_SIZE_FULL);
    ms_region *box = tu_container(sys, "box", 0x10000);
    ms_region *inner = tu_container(sys, "inner", 0x1000);
    ms_region *ram = tu_ram(sys, "ram", 0x1000);
    ms_region *loop_alias = tu_alias(sys, "loop", box, 0, 0x1000);
    ms_as *as;
    CHECK_OK(ms_as_new(sys, root, "memory", &as));
    CHECK_OK(ms_region_add(root, 0, box));
    CHECK_OK(ms_region_add(box, 0x1000, inner));
    CHECK_OK(ms_region_add(inner, 0, ram));
    char *before = state(sys);

    /* Added twice, or to a second parent. */
    CHECK_ERR(ms_region_add(inner, 0x100, ram), EEXIST);
    CHECK_ERR(ms_region_add(root, 0x100, ram), EEXIST);
    /* Added to itself or its own descendant. */
    ms_region *lonely = tu_container(sys, "lonely", 0x10);
    CHECK_ERR(ms_region_add(lonely, 0, lonely), ELOOP);
    CHECK_OK(ms_region_del(root, box)); /* detach box ... */
    CHECK_ERR(ms_region_add(inner, 0, box), ELOOP); /* ... then loop */
    CHECK(strstr(tu_last_log, "contain itself") != NULL);
    CHECK_OK(ms_region_add(root, 0, box));
    /* An alias whose chain loops: an alias of box placed inside box. */
    CHECK_ERR(ms_region_add(inner, 0x800, loop_alias), ELOOP);
    /* An alias of an alias of box, placed deeper inside box. */
    ms_region *loop2 = tu_alias(sys, "loop2", loop_alias, 0, 0x10);
    CHECK_ERR(ms_region_add(inner, 0x900, loop2), ELOOP);
    /* Removing a region that is not a child. */
    CHECK_ERR(ms_region_del(root, ram), ENOENT);
    CHECK_ERR(ms_region_del(inner, lonely), ENOENT);
    CHECK_ERR(ms_region_del(NULL, ram), EINVAL);
    /* Regions of another system; an AS root as a subregion. */
    ms_system *other = new_sys();
    ms_region *foreign = tu_ram(other, "foreign", 0x1000);
    CHECK_ERR(ms_region_add(root, 0, foreign), EXDEV);
    CHECK_ERR(ms_as_new(sys, foreign, "x", &as), EXDEV);
    CHECK_ERR(ms_region_add(box, 0, root), EBUSY);
    /* Size 0 for RAM; growing a RAM region beyond its block. */
    CHECK_ERR(ms_region_set_size(ram, 0), EINVAL);
    CHECK_ERR(ms_region_set_size(ram, 0x1001), ERANGE);
    /* NULL everywhere. */
    CHECK_ERR(ms_region_add(NULL, 0, ram), EINVAL);
    CHECK_ERR(ms_region_add(root, 0, NULL), EINVAL);
    CHECK_ERR(ms_region_set_address(NULL, 0), EINVAL);
    CHECK_ERR(ms_region_set_size(NULL, 0), EINVAL);
    CHECK_ERR(ms_region_set_enabled(NULL, true), EINVAL);
    CHECK_ERR(ms_region_set_readonly(NULL, true), EINVAL);
    CHECK_ERR(ms_region_set_nonvolatile(NULL, true), EINVAL);
    CHECK_ERR(ms_region_set_romd(NULL, true), EINVAL);
    CHECK_ERR(ms_as_new(sys, root, NULL, &as), EINVAL);
    CHECK_ERR(ms_as_new(sys, root, "", &as), EINVAL);
    CHECK_ERR(ms_as_new(sys, NULL, "x", &as), EINVAL);
    CHECK_ERR(ms_as_destroy(NULL), EINVAL);

    char *after = state(sys);
    CHECK_STR(after, before);
    free(before);
    free(after);

    ms_region_unref(foreign);
    ms_system_free(other);
    ms_region_unref(loop2);
    ms_region_unref(lonely);
    ms_region_unref(root);
    ms_region_unref(box);
    ms_region_unref(inner);
    ms_region_unref(ram);
    ms_region_unref(loop_alias);
    ms_system_free(sys);
}

static void test_refcounts(void)
{
    ms_system *sys = new_sys();
    ms_region *root = tu_container(sys, "root", MS_SIZE_FULL);
    ms_as *as;
    CHECK_OK(ms_as_new(sys, root, "memory", &as));
    ms_region *ram = tu_ram(sys, "ram", 0x1000);
    ms_region *al = tu_alias(sys, "al", ram, 0, 0x1000);
    CHECK_OK(ms_region_add(root, 0x1000, al));
    CHECK(ms_region_is_mapped(al));
    CHECK(ms_region_is_mapped(ram)); /* mapped via the alias */
    CHECK(ms_region_container(al) == root);
    /* Drop the caller's references: still alive through the tree. */
    ms_region_unref(ram);
    ms_region_unref(al);
    struct ms_flat_range fr;
    CHECK_OK(ms_flatview_lookup(ms_as_flatview(as), 0x1000, &fr, NULL));
    CHECK_STR(ms_region_name(fr.mr), "ram");
    /* A view reference keeps its regions alive after they are removed. */
    const ms_flatview *fv = ms_flatview_ref(ms_as_flatview(as));
    CHECK_OK(ms_region_del(root, al));
    CHECK_ERR(ms_flatview_lookup(ms_as_flatview(as), 0x1000, &fr, NULL),
              ENOENT);
    CHECK_OK(ms_flatview_lookup(fv, 0x1000, &fr, NULL));
    CHECK_STR(ms_region_name(fr.mr), "ram");
    CHECK_EQ(((unsigned char *)ms_region_host(fr.mr))[0], 0);
    ms_flatview_unref(fv);
    CHECK_ERR(ms_flatview_range(NULL, 0, &fr), EINVAL);
    CHECK_ERR(ms_flatview_range(ms_as_flatview(as), 99, &fr), ERANGE);

    /* Freeing a system while the caller still holds regions: no leak (ASan
     * checks), no crash, a warning through the log hook. */
    ms_region *held = tu_ram(sys, "held", 0x2000);
    ms_region *held2 = tu_io(sys, "held2", 0x10);
    CHECK_OK(ms_region_add(root, 0x8000, held2));
    tu_log_count = 0;
    ms_system_free(sys);
    CHECK(tu_log_count >= 1);
    CHECK(strstr(tu_last_log, "3 region(s)") != NULL);
    (void)held;
}

static void test_subregion_queries(void)
{
    ms_system *sys = new_sys();
    ms_region *c = tu_container(sys, "c", 0x10000);
    ms_region *a = tu_io(sys, "a", 0x10);
    ms_region *b = tu_io(sys, "b", 0x10);
    ms_region *d = tu_io(sys, "d", 0x10);
    CHECK_OK(ms_region_add_prio(c, 0, a, 1));
    CHECK_OK(ms_region_add_prio(c, 0, b, 1));
    CHECK_OK(ms_region_add_prio(c, 0, d, 5));
    /* Priority descending, newest first among equals. */
    CHECK_EQ(ms_region_nr_subregions(c), 3);
    CHECK(ms_region_subregion(c, 0) == d);
    CHECK(ms_region_subregion(c, 1) == b);
    CHECK(ms_region_subregion(c, 2) == a);
    CHECK(ms_region_subregion(c, 3) == NULL);
    CHECK_EQ(ms_region_priority(d), 5);
    /* Re-insertion by set_address makes a the newest of its group. */
    CHECK_OK(ms_region_set_address(a, 0x100));
    CHECK(ms_region_subregion(c, 1) == a);
    CHECK_EQ(ms_region_addr(a), 0x100);
    /* ms_region_add() overwrites the priority with 0. */
    CHECK_OK(ms_region_del(c, d));
    CHECK_OK(ms_region_add(c, 0x200, d));
    CHECK_EQ(ms_region_priority(d), 0);
    CHECK(ms_region_subregion(c, 2) == d);
    /* An unmapped region only records its address. */
    ms_region *loose = tu_io(sys, "loose", 0x10);
    CHECK_OK(ms_region_set_address(loose, 0x1234));
    CHECK_EQ(ms_region_addr(loose), 0x1234);
    CHECK(!ms_region_is_mapped(loose));
    ms_region_unref(loose);
    ms_region_unref(a);
    ms_region_unref(b);
    ms_region_unref(d);
    ms_region_unref(c);
    ms_system_free(sys);
}

int main(void)
{
    test_system();
    test_kinds();
    test_backings();
    test_bad_creation();
    test_bad_edits();
    test_refcounts();
    test_subregion_queries();
    return ms_test_summary("test_region");
}
