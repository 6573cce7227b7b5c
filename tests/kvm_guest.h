/* SPDX-License-Identifier: MIT */
/*
 * The real-mode guests of kvm_guest.S, and loading one into a ROM so that
 * a vCPU starts it from KVM's reset state.
 */
#ifndef MS_KVM_GUEST_H
#define MS_KVM_GUEST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define KG_ROM_GPA UINT64_C(0xfffff000)
#define KG_ROM_SIZE 0x1000u

#define KG_DECLARE(name)                                                       \
    extern const uint8_t kg_##name##_start[], kg_##name##_end[]

KG_DECLARE(basic);
KG_DECLARE(ioeventfd);
KG_DECLARE(dirty);
KG_DECLARE(hotplug);
KG_DECLARE(nohole);
KG_DECLARE(spin);
KG_DECLARE(mmio_loop);

/*
 * Copy a program to ROM offset 0 (@rom: the ROM's host memory, 4 KiB) and
 * put "jmp near 0xf000" at the reset vector (offset 0xff0, IP 0xfff0).
 */
static inline void kg_load(void *rom, const uint8_t *start, const uint8_t *end)
{
    uint8_t *p = rom;
    memset(p, 0xf4, KG_ROM_SIZE); /* hlt everywhere else */
    memcpy(p, start, (size_t)(end - start));
    /* e9 rel16: target 0xf000 from the next IP 0xfff3. */
    uint16_t rel = (uint16_t)(0xf000 - 0xfff3);
    p[0xff0] = 0xe9;
    p[0xff1] = (uint8_t)rel;
    p[0xff2] = (uint8_t)(rel >> 8);
}

#define KG_LOAD(rom, name) kg_load((rom), kg_##name##_start, kg_##name##_end)

#endif
