/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the shadow-map property (see tests/test_shadow_random.c):
 * the fuzzer's bytes choose the topology, the edits, the transactions and
 * the ioeventfds.
 */
#include <stdint.h>
#include <stdlib.h>

#include "refmodel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rm_src src = { .data = data, .len = size };
    if (rm_run_flags(&src, true, RM_SHADOW) != 0) {
        abort();
    }
    return 0;
}
