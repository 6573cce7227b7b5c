/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the fuzzer's bytes choose a slot limit, a maximum slot size
 * and a sequence of guest-memory mappings (tests/kvm_plancheck.c); every
 * plan the memslot planner makes must be accepted by the kernel-rules
 * model and keep its promises (no transient hole without a pause, kept
 * slots, lowest ids, exact final mapping).  A violation aborts, so
 * libFuzzer keeps the input.
 */
#include <stdint.h>
#include <stdlib.h>

#include "kvm_plancheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pc_src src = {.data = data, .len = size};
    if (pc_run(&src, 1000, 1) != 0) {
        abort();
    }
    return 0;
}
