/* SPDX-License-Identifier: MIT */
/*
 * Dirty logging (placeholder until the listener work lands).
 */
#include "internal.h"

void ms__dirty_mark(ms_region *r, uint64_t offset, uint64_t len)
{
    (void)r;
    (void)offset;
    (void)len;
}
