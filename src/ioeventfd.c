/* SPDX-License-Identifier: MIT */
/*
 * ioeventfds (placeholder until the listener work lands).
 */
#include <stdlib.h>

#include "internal.h"

int ms__as_update_ioeventfds(ms_as *as)
{
    (void)as;
    return 0;
}

void ms__region_ioeventfds_free(ms_region *r)
{
    free(r->ioeventfds);
    r->ioeventfds = NULL;
    r->nr_ioeventfds = 0;
}

bool ms__ioeventfd_consume(ms_region *r, uint64_t offset, unsigned size,
                           uint64_t data)
{
    (void)r;
    (void)offset;
    (void)size;
    (void)data;
    return false;
}
