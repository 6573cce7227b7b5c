/* SPDX-License-Identifier: MIT */
/*
 * Tiny real-mode guests for the real-KVM tests (tests/test_kvm_real.c).
 *
 * Each program is copied to offset 0 of a 4 KiB ROM at 0xfffff000; the
 * test puts a near jump to it at the reset vector (ROM offset 0xff0), so a
 * vCPU starts it straight from KVM's reset state: real mode, CS base
 * 0xffff0000, IP 0xfff0.  The program runs at IP 0xf000 + offset, and
 * cs:0xf800 is ROM offset 0x800.  DS is 0; ES reaches the rest.  No stack.
 *
 * The test board: RAM 0x0-0xffff, a logged RAM 0x10000-0x1ffff, a
 * hot-plug slot at 0x20000, a big RAM 0x30000-0x9ffff, an MMIO device at
 * 0xd0000, and I/O ports 0x10-0x1f (report), 0x20 (status), 0x510.
 */
    .section .rodata.kvm_guest, "a"
    .code16

/* RAM, MMIO, ROM write, port I/O. */
    .globl kg_basic_start, kg_basic_end
kg_basic_start:
    xorw %ax, %ax
    movw %ax, %ds
    movw $0x1234, 0x500         /* RAM write */
    movw 0x500, %bx             /* RAM read */
    cmpw $0x1234, %bx
    jne 9f
    movw $0xd000, %ax
    movw %ax, %es
    movb $0x55, %es:0           /* MMIO write: 1 exit */
    movl %es:4, %eax            /* MMIO read, 4 bytes: 1 exit */
    outl %eax, $0x14            /* report it */
    movb $0x77, %cs:0xf800      /* ROM write: exits as MMIO, dropped */
    movb %cs:0xf800, %al        /* ROM read: from the slot */
    outb %al, $0x11
    inb $0x12, %al              /* port read */
    outb %al, $0x13             /* echo it */
    movb $1, %al
    outb %al, $0x10             /* pass */
    hlt
9:  movb $0xee, %al
    outb %al, $0x10
    hlt
kg_basic_end:

/* ioeventfds: a matching MMIO write and a PIO write never exit. */
    .globl kg_ioeventfd_start, kg_ioeventfd_end
kg_ioeventfd_start:
    movw $0xd000, %ax
    movw %ax, %es
    movl $0x42, %es:0x10        /* datamatch 0x42: signalled in the kernel */
    movl $0x43, %es:0x10        /* no match: an MMIO exit to the device */
    movw $7, %ax
    movw $0x510, %dx
    outw %ax, %dx               /* PIO ioeventfd: signalled */
    hlt
kg_ioeventfd_end:

/* Dirty pages 1, 3, 7 of the logged RAM; then, resumed, page 2. */
    .globl kg_dirty_start, kg_dirty_end
kg_dirty_start:
    movw $0x1000, %ax
    movw %ax, %es
    movb $1, %es:0x1000
    movb $3, %es:0x3000
    movb $7, %es:0x7000
    hlt
    movb $2, %es:0x2000
    hlt
kg_dirty_end:

/* Hot-plug: wait for status 1, use the new RAM, wait for 2, see a hole. */
    .globl kg_hotplug_start, kg_hotplug_end
kg_hotplug_start:
1:  inb $0x20, %al
    cmpb $1, %al
    jne 1b
    movw $0x2000, %ax
    movw %ax, %es
    movb $0xab, %es:0           /* plugged RAM at 0x20000: no exit */
    movb %es:0, %al
    outb %al, $0x10
2:  inb $0x20, %al
    cmpb $2, %al
    jne 2b
    movb %es:0, %al             /* unplugged: an exit, reads 0 */
    outb %al, $0x11
    hlt
kg_hotplug_end:

/* Touch one RAM page until the host sets the stop flag beside it. */
    .globl kg_nohole_start, kg_nohole_end
kg_nohole_start:
    movw $0x3000, %ax
    movw %ax, %es
1:  incw %es:0x8000
    cmpb $0, %es:0x8004
    je 1b
    hlt
kg_nohole_end:

/* Spin forever (kick test). */
    .globl kg_spin_start, kg_spin_end
kg_spin_start:
1:  jmp 1b
kg_spin_end:

/* One MMIO read per iteration, forever (exit round-trip benchmark). */
    .globl kg_mmio_loop_start, kg_mmio_loop_end
kg_mmio_loop_start:
    movw $0xd000, %ax
    movw %ax, %es
1:  movl %es:0, %eax
    jmp 1b
kg_mmio_loop_end:

    .section .note.GNU-stack, "", @progbits
