/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the fuzzer's bytes choose a topology and a sequence of edits
 * (tests/refmodel.c); every published flat view must equal the per-address
 * brute force.  A mismatch aborts, so libFuzzer keeps the input.
 */
#include <stdint.h>
#include <stdlib.h>

#include "refmodel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rm_src src = { .data = data, .len = size };
    if (rm_run(&src, true) != 0) {
        abort();
    }
    return 0;
}
