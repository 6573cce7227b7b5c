/* SPDX-License-Identifier: MIT */
/*
 * A PC-style board for KVM backend tests and benchmarks: low RAM through a
 * "ram-below-4g" alias, a PCI container below it (pc.rom, pc.bios and its
 * isa-bios alias), the legacy VGA window, and the 13 PAM segments of
 * 0xc0000-0xfffff, each a set of aliases of which one is enabled (QEMU's
 * i440fx layout, rebuilt from its `info mtree`).
 *
 * PAM modes: 0 and 2 show PCI (reads from the ROMs), 1 shows RAM through
 * a read-only alias, 3 shows RAM read-write.
 */
#ifndef MS_KVM_BOARD_H
#define MS_KVM_BOARD_H

#include <memspace/memspace.h>

#define KB_PAM_SEGMENTS 13

struct kvm_board {
    ms_system *sys;
    ms_region *system, *pci, *ram, *rom, *bios, *vga;
    ms_region *pam[KB_PAM_SEGMENTS][3]; /* pci, ro ram, rw ram aliases */
    unsigned mode[KB_PAM_SEGMENTS];
    ms_as *mem;
    uint64_t ram_size;
};

/* Guest address and size of PAM segment @i (0: 0xf0000, 64 KiB). */
uint64_t kb_pam_start(unsigned i);
uint64_t kb_pam_size(unsigned i);

/* Build the board in @sys (exits on failure); all PAM segments in mode 0. */
void kb_build(struct kvm_board *b, ms_system *sys, uint64_t ram_size);

/* Set PAM segment @seg to @mode in one transaction (like a config write). */
int kb_pam_set(struct kvm_board *b, unsigned seg, unsigned mode);

/* Drop the board's references (the system frees the rest). */
void kb_release(struct kvm_board *b);

#endif
