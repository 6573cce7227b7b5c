/* SPDX-License-Identifier: MIT */
/* The PC-style board of kvm_board.h. */
#include "kvm_board.h"

#include <stdio.h>
#include <stdlib.h>

static uint64_t io_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque, (void)offset, (void)size;
    return 0;
}

static void io_write(void *opaque, uint64_t offset, uint64_t value,
                     unsigned size)
{
    (void)opaque, (void)offset, (void)value, (void)size;
}

static const struct ms_region_ops vga_ops = {
    .read = io_read,
    .write = io_write,
    .endianness = MS_ENDIAN_LITTLE,
};

static ms_region *mk(ms_system *sys, struct ms_region_config cfg)
{
    ms_region *r = NULL;
    int err = ms_region_new(sys, &cfg, &r);
    if (err) {
        fprintf(stderr, "kvm_board: cannot create %s: %d\n", cfg.name, err);
        exit(1);
    }
    return r;
}

static void add(ms_region *c, uint64_t off, ms_region *r, int32_t prio)
{
    int err = ms_region_add_prio(c, off, r, prio);
    if (err) {
        fprintf(stderr, "kvm_board: cannot add %s: %d\n", ms_region_name(r),
                err);
        exit(1);
    }
}

uint64_t kb_pam_start(unsigned i)
{
    return i == 0 ? 0xf0000 : 0xc0000 + (uint64_t)(i - 1) * 0x4000;
}

uint64_t kb_pam_size(unsigned i)
{
    return i == 0 ? 0x10000 : 0x4000;
}

void kb_build(struct kvm_board *b, ms_system *sys, uint64_t ram_size)
{
    b->sys = sys;
    b->ram_size = ram_size;
    if (ms_txn_begin(sys)) {
        exit(1);
    }
    b->system = mk(sys, (struct ms_region_config){.kind = MS_REGION_CONTAINER,
                                                  .name = "system",
                                                  .size = MS_SIZE_FULL});
    b->pci = mk(sys, (struct ms_region_config){.kind = MS_REGION_CONTAINER,
                                               .name = "pci",
                                               .size = MS_SIZE_FULL});
    b->ram =
        mk(sys, (struct ms_region_config){
                    .kind = MS_REGION_RAM, .name = "pc.ram", .size = ram_size});
    b->rom =
        mk(sys, (struct ms_region_config){
                    .kind = MS_REGION_ROM, .name = "pc.rom", .size = 0x20000});
    b->bios =
        mk(sys, (struct ms_region_config){
                    .kind = MS_REGION_ROM, .name = "pc.bios", .size = 0x40000});
    b->vga = mk(sys, (struct ms_region_config){.kind = MS_REGION_IO,
                                               .name = "vga-lowmem",
                                               .size = 0x20000,
                                               .ops = &vga_ops});
    ms_region *below =
        mk(sys, (struct ms_region_config){.kind = MS_REGION_ALIAS,
                                          .name = "ram-below-4g",
                                          .size = ram_size,
                                          .alias_target = b->ram});
    ms_region *isa = mk(sys, (struct ms_region_config){.kind = MS_REGION_ALIAS,
                                                       .name = "isa-bios",
                                                       .size = 0x20000,
                                                       .alias_target = b->bios,
                                                       .alias_offset = 0x20000,
                                                       .readonly = true});
    add(b->system, 0, below, 0);
    add(b->system, 0, b->pci, -1);
    add(b->pci, 0xc0000, b->rom, 1);
    add(b->pci, 0xfffc0000, b->bios, 0);
    add(b->pci, 0xe0000, isa, 1);
    add(b->system, 0xa0000, b->vga, 1);
    ms_region_unref(below);
    ms_region_unref(isa);
    static const char *names[3] = {"pam-pci", "pam-rom", "pam-ram"};
    for (unsigned i = 0; i < KB_PAM_SEGMENTS; i++) {
        uint64_t start = kb_pam_start(i), size = kb_pam_size(i);
        for (unsigned k = 0; k < 3; k++) {
            b->pam[i][k] = mk(sys, (struct ms_region_config){
                                       .kind = MS_REGION_ALIAS,
                                       .name = names[k],
                                       .size = size,
                                       .alias_target = k == 0 ? b->pci : b->ram,
                                       .alias_offset = start,
                                       .readonly = k == 1,
                                       .disabled = k != 0});
            add(b->system, start, b->pam[i][k], 1);
        }
        b->mode[i] = 0;
    }
    if (ms_as_new(sys, b->system, "memory", &b->mem) || ms_txn_commit(sys)) {
        exit(1);
    }
}

static unsigned alias_of(unsigned mode)
{
    return mode == 1 ? 1 : mode == 3 ? 2 : 0;
}

int kb_pam_set(struct kvm_board *b, unsigned seg, unsigned mode)
{
    unsigned from = alias_of(b->mode[seg]), to = alias_of(mode);
    b->mode[seg] = mode;
    if (from == to) {
        return 0;
    }
    int err = ms_txn_begin(b->sys);
    if (err) {
        return err;
    }
    int e1 = ms_region_set_enabled(b->pam[seg][from], false);
    int e2 = ms_region_set_enabled(b->pam[seg][to], true);
    int e3 = ms_txn_commit(b->sys);
    return e1 ? e1 : e2 ? e2 : e3;
}

void kb_release(struct kvm_board *b)
{
    ms_region_unref(b->system);
    ms_region_unref(b->pci);
    ms_region_unref(b->ram);
    ms_region_unref(b->rom);
    ms_region_unref(b->bios);
    ms_region_unref(b->vga);
    for (unsigned i = 0; i < KB_PAM_SEGMENTS; i++) {
        for (unsigned k = 0; k < 3; k++) {
            ms_region_unref(b->pam[i][k]);
        }
    }
}
