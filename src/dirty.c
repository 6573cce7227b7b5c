/* SPDX-License-Identifier: MIT */
/*
 * Dirty logging (placeholder until the listener work lands).
 */
#include <errno.h>

#include "internal.h"
#include "memspace/dirty.h"

void ms__dirty_mark(ms_region *r, uint64_t offset, uint64_t len)
{
    (void)r;
    (void)offset;
    (void)len;
}

/* Placeholders: implemented with the listener work. */
MS_EXPORT int ms_region_set_log(ms_region *r, bool on, unsigned client)
{
    (void)r, (void)on, (void)client;
    return -ENOSYS;
}

MS_EXPORT unsigned ms_region_log_mask(const ms_region *r)
{
    return r ? ms__region_log_mask(r) : 0;
}

MS_EXPORT int ms_dirty_global_start(ms_system *sys, unsigned flags)
{
    (void)sys, (void)flags;
    return -ENOSYS;
}

MS_EXPORT int ms_dirty_global_stop(ms_system *sys, unsigned flags)
{
    (void)sys, (void)flags;
    return -ENOSYS;
}

MS_EXPORT unsigned ms_dirty_global_flags(const ms_system *sys)
{
    return sys ? sys->global_dirty : 0;
}

MS_EXPORT int ms_system_set_running(ms_system *sys, bool running)
{
    (void)sys, (void)running;
    return -ENOSYS;
}

MS_EXPORT int ms_dirty_sync(ms_system *sys, ms_region *filter)
{
    (void)sys, (void)filter;
    return -ENOSYS;
}

MS_EXPORT int ms_region_set_dirty(ms_region *r, uint64_t offset,
                                  uint64_t size)
{
    (void)r, (void)offset, (void)size;
    return -ENOSYS;
}

MS_EXPORT bool ms_region_get_dirty(const ms_region *r, uint64_t offset,
                                   uint64_t size, unsigned client)
{
    (void)r, (void)offset, (void)size, (void)client;
    return false;
}

MS_EXPORT int ms_region_test_and_clear_dirty(ms_region *r, uint64_t offset,
                                             uint64_t size, unsigned client)
{
    (void)r, (void)offset, (void)size, (void)client;
    return -ENOSYS;
}

MS_EXPORT int ms_region_snapshot_and_clear_dirty(ms_region *r,
                                                 uint64_t offset,
                                                 uint64_t size,
                                                 unsigned client,
                                                 ms_dirty_snapshot **out)
{
    (void)r, (void)offset, (void)size, (void)client, (void)out;
    return -ENOSYS;
}

MS_EXPORT bool ms_dirty_snapshot_get(const ms_dirty_snapshot *snap,
                                     uint64_t offset, uint64_t size)
{
    (void)snap, (void)offset, (void)size;
    return false;
}

MS_EXPORT void ms_dirty_snapshot_free(ms_dirty_snapshot *snap)
{
    (void)snap;
}

MS_EXPORT int ms_region_merge_dirty(ms_region *r, uint64_t offset,
                                    const uint64_t *bitmap, uint64_t npages,
                                    uint32_t page_size)
{
    (void)r, (void)offset, (void)bitmap, (void)npages, (void)page_size;
    return -ENOSYS;
}
