/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the fuzzer's bytes choose a topology (RAM, ROM, RAM and ROM
 * devices, MMIO regions with arbitrary access rules, reservations, aliases,
 * containers) and a sequence of accesses and topology edits; every access
 * must agree with the reference access splitter (tests/access_ref.c) on
 * the result, the bytes, the device callbacks and the RAM contents.  A
 * mismatch aborts, so libFuzzer keeps the input.
 */
#include <stdint.h>
#include <stdlib.h>

#include "access_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ar_src src = {.data = data, .len = size};
    if (ar_run(&src, 1000, false) != 0) {
        abort();
    }
    return 0;
}
