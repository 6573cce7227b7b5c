/* SPDX-License-Identifier: MIT */
/*
 * The demo's guest: a few hundred real-mode instructions.
 *
 * It is copied to offset 0 of the 4 KiB ROM "bios" at 0xfffff000, with a
 * near jump to it at the reset vector (demo.c), so the vCPU starts it from
 * KVM's reset state: real mode, CS base 0xffff0000, IP 0xfff0.  Code and
 * strings are addressed through CS (IP 0xf000 = ROM offset 0).
 *
 * Devices (demo.c): serial port 0x3f8; memory hot-plug controller at
 * 0xd0000 (ES): CMD +0 (1 plug, 2 unplug), STATUS +4 (bit 0: plugged),
 * BASE +8 (real-mode segment of the new RAM), DOORBELL +0x10 (an
 * ioeventfd), ACK +0x14 (doorbells the host has handled).
 */
#define ROM_IP(label) ((label) - demo_guest_start + 0xf000)
#define CTL_SEG 0xd000
#define SERIAL 0x3f8

    .section .rodata.demo_guest, "a"
    .code16
    .globl demo_guest_start, demo_guest_end
demo_guest_start:
    cli
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %ss
    movw $0x7000, %sp               /* stack in RAM */
    movw $ROM_IP(msg_hello), %si
    movw $msg_hello_len, %cx
    call print

    movw $CTL_SEG, %ax
    movw %ax, %es
    movl $1, %es:0                  /* plug: the device adds RAM */
    testb $1, %es:4                 /* plugged? */
    jz fail
    movw %es:8, %ax                 /* where */
    movw %ax, %fs
    movl $0x11111111, %fs:0x0000    /* pages 0, 2 and 5 of the new RAM: */
    movl $0x22222222, %fs:0x2000    /* no exits, straight to memory */
    movl $0x55555555, %fs:0x5000
    cmpl $0x11111111, %fs:0x0000
    jne fail
    cmpl $0x22222222, %fs:0x2000
    jne fail
    cmpl $0x55555555, %fs:0x5000
    jne fail
    movw $ROM_IP(msg_wrote), %si
    movw $msg_wrote_len, %cx
    call print

    movl $1, %es:0x10               /* doorbell: an eventfd, no exit */
1:  movw $200, %cx                  /* wait for the host's report */
2:  loop 2b
    cmpl $0, %es:0x14
    je 1b

    movl $2, %es:0                  /* unplug */
    testb $1, %es:4
    jnz fail
    movl %fs:0x2000, %eax           /* now a hole: an exit, reads 0 */
    cmpl $0, %eax
    jne fail
    movw $ROM_IP(msg_gone), %si
    movw $msg_gone_len, %cx
    call print
    hlt

fail:
    movw $ROM_IP(msg_fail), %si
    movw $msg_fail_len, %cx
    call print
    hlt

/* Print %cx bytes at %cs:%si to the serial port (string I/O). */
print:
    movw $SERIAL, %dx
    rep outsb %cs:(%si), (%dx)
    ret

msg_hello:
    .ascii "hello from the guest: asking the controller for memory\n"
    .set msg_hello_len, . - msg_hello
msg_wrote:
    .ascii "wrote and checked pages 0, 2 and 5 of the new memory\n"
    .set msg_wrote_len, . - msg_wrote
msg_gone:
    .ascii "unplugged: the old address now reads 0 (a hole)\n"
    .set msg_gone_len, . - msg_gone
msg_fail:
    .ascii "FAILED\n"
    .set msg_fail_len, . - msg_fail
demo_guest_end:

    .section .note.GNU-stack, "", @progbits
