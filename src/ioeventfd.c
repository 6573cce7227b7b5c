/* SPDX-License-Identifier: MIT */
/*
 * ioeventfds (placeholder until the listener work lands).
 */
#include <errno.h>
#include <stdlib.h>

#include "memspace/ioeventfd.h"

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

MS_EXPORT int ms_region_add_eventfd(ms_region *r, uint64_t offset,
                                    unsigned size, bool match_data,
                                    uint64_t data, int fd)
{
    (void)r, (void)offset, (void)size, (void)match_data, (void)data, (void)fd;
    return -ENOSYS;
}

MS_EXPORT int ms_region_del_eventfd(ms_region *r, uint64_t offset,
                                    unsigned size, bool match_data,
                                    uint64_t data, int fd)
{
    (void)r, (void)offset, (void)size, (void)match_data, (void)data, (void)fd;
    return -ENOSYS;
}

MS_EXPORT size_t ms_as_nr_eventfds(const ms_as *as)
{
    (void)as;
    return 0;
}

MS_EXPORT int ms_as_eventfd(const ms_as *as, size_t i,
                            struct ms_eventfd_info *out)
{
    (void)as, (void)i, (void)out;
    return -ENOSYS;
}
