/* SPDX-License-Identifier: MIT */
/*
 * A PC-like memory map built with memspace, printed the way QEMU's
 * `info mtree` and `info mtree -f` print it.
 *
 * It shows the everyday building blocks: a RAM block mapped twice through
 * aliases (below the PCI hole and above 4 GiB), a lower-priority PCI
 * container filling the rest of the space, BIOS ROM mapped at the top of
 * 4 GiB and shadowed below 1 MiB, an MMIO device, and an I/O address space
 * whose root answers every unclaimed port.  Then it toggles a PAM-style
 * shadow segment from ROM to RAM inside one transaction.
 */
#include <memspace/memspace.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(x)                                                             \
    do {                                                                     \
        int err_ = (x);                                                      \
        if (err_ < 0) {                                                      \
            fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__,   \
                    #x, err_);                                               \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

static uint64_t uart_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque;
    (void)size;
    return offset == 5 ? 0x60 : 0; /* line status: transmitter empty */
}

static void uart_write(void *opaque, uint64_t offset, uint64_t value,
                       unsigned size)
{
    (void)opaque;
    (void)size;
    if (offset == 0) {
        putchar((int)value);
    }
}

static const struct ms_region_ops uart_ops = {
    .read = uart_read,
    .write = uart_write,
    .valid = { .min_access_size = 1, .max_access_size = 1 },
};

static ms_region *mk(ms_system *sys, struct ms_region_config cfg)
{
    ms_region *r;
    CHECK(ms_region_new(sys, &cfg, &r));
    return r;
}

/* Place @sub and hand our reference to the container. */
static void place(ms_region *c, uint64_t off, ms_region *sub, int prio)
{
    CHECK(ms_region_add_prio(c, off, sub, prio));
    ms_region_unref(sub);
}

int main(int argc, char **argv)
{
    uint64_t ram_size = 512ull << 20; /* 512 MiB */
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] == 'o') {
            flags |= MS_MTREE_OWNER;
        }
    }

    ms_system *sys;
    CHECK(ms_system_new(NULL, &sys));

    ms_region *system = mk(sys, (struct ms_region_config){
        .kind = MS_REGION_CONTAINER, .name = "system",
        .size = MS_SIZE_FULL });
    ms_region *io = mk(sys, (struct ms_region_config){
        .kind = MS_REGION_IO, .name = "io", .size = 0x10000,
        .ops = &(const struct ms_region_ops){ 0 } });
    ms_region *ram = mk(sys, (struct ms_region_config){
        .kind = MS_REGION_RAM, .name = "pc.ram", .size = ram_size,
        .owner = "owner:{obj path=/objects/pc.ram}" });
    ms_region *bios = mk(sys, (struct ms_region_config){
        .kind = MS_REGION_ROM, .name = "pc.bios", .size = 0x40000 });
    ms_region *pci = mk(sys, (struct ms_region_config){
        .kind = MS_REGION_CONTAINER, .name = "pci", .size = MS_SIZE_FULL });

    CHECK(ms_txn_begin(sys));
    place(system, 0, mk(sys, (struct ms_region_config){
                         .kind = MS_REGION_ALIAS, .name = "ram-below-4g",
                         .size = ram_size, .alias_target = ram }),
          0);
    place(system, 0, pci, -1);
    place(pci, 0xfffc0000, bios, 0);
    place(pci, 0xe0000, mk(sys, (struct ms_region_config){
                            .kind = MS_REGION_ALIAS, .name = "isa-bios",
                            .size = 0x20000, .alias_target = bios,
                            .alias_offset = 0x20000, .readonly = true }),
          1);
    /* A PAM segment: ROM shadow of RAM at 0xf0000 (read-only alias). */
    ms_region *pam_rom = mk(sys, (struct ms_region_config){
        .kind = MS_REGION_ALIAS, .name = "pam-rom", .size = 0x10000,
        .alias_target = ram, .alias_offset = 0xf0000, .readonly = true });
    ms_region *pam_ram = mk(sys, (struct ms_region_config){
        .kind = MS_REGION_ALIAS, .name = "pam-ram", .size = 0x10000,
        .alias_target = ram, .alias_offset = 0xf0000, .disabled = true });
    CHECK(ms_region_add_prio(system, 0xf0000, pam_rom, 1));
    CHECK(ms_region_add_prio(system, 0xf0000, pam_ram, 1));
    place(system, 0xfec00000, mk(sys, (struct ms_region_config){
                                   .kind = MS_REGION_IO, .name = "ioapic",
                                   .size = 0x1000, .ops = &uart_ops }),
          0);
    place(io, 0x3f8, mk(sys, (struct ms_region_config){
                          .kind = MS_REGION_IO, .name = "serial",
                          .size = 8, .ops = &uart_ops }),
          0);
    ms_as *mem, *ioas;
    CHECK(ms_as_new(sys, system, "memory", &mem));
    CHECK(ms_as_new(sys, io, "I/O", &ioas));
    CHECK(ms_txn_commit(sys));

    printf("== info mtree ==\n");
    CHECK(ms_mtree_fprint(sys, flags, stdout));
    printf("== info mtree -f ==\n");
    CHECK(ms_mtree_fprint(sys, MS_MTREE_FLAT | flags, stdout));

    /* Firmware unlocks the shadow: RAM becomes writable at 0xf0000. */
    CHECK(ms_txn_begin(sys));
    CHECK(ms_region_set_enabled(pam_rom, false));
    CHECK(ms_region_set_enabled(pam_ram, true));
    CHECK(ms_txn_commit(sys));
    printf("== info mtree -f after unlocking the 0xf0000 shadow ==\n");
    CHECK(ms_mtree_fprint(sys, MS_MTREE_FLAT | flags, stdout));

    ms_region_unref(pam_rom);
    ms_region_unref(pam_ram);
    ms_region_unref(system);
    ms_region_unref(io);
    ms_region_unref(ram);
    ms_system_free(sys);
    return 0;
}
