/* SPDX-License-Identifier: MIT */
/*
 * Reference access splitter for the access path (memory-model.md section
 * 7), used by test_access_random (seeded PRNG) and fuzz_access (fuzzer
 * bytes).
 *
 * It builds a random topology of RAM, ROM, RAM devices, ROM devices, MMIO
 * regions with random access rules, reservations, aliases, containers and
 * IOMMUs (random page sizes, permissions and targets in the same address
 * space, so chains, loops and missing targets happen),
 * then runs random accesses twice: through the library, and through a
 * model written from the specification text that works on bytes instead of
 * values (a piece of a device access is the concatenation of its
 * callbacks' values serialised in the device's byte order; RAM is shadowed
 * byte by byte).  Every access must agree on the result, the bytes read,
 * the exact sequence of device callbacks (offsets, sizes, values), the
 * number of guest-error log lines, and the contents of every RAM block.
 */
#ifndef MS_ACCESS_REF_H
#define MS_ACCESS_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A source of choices: fuzzer bytes, or a PRNG when data is NULL. */
struct ar_src {
    const uint8_t *data;
    size_t len, pos;
    uint64_t rng;
};

uint64_t ar_next(struct ar_src *s, uint64_t bound); /* [0, bound) */

/*
 * One scenario: a topology and @nops accesses.  Returns the number of
 * mismatches (details on stderr if @verbose).
 */
int ar_run(struct ar_src *src, unsigned nops, bool verbose);

#endif
