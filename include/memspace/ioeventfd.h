/* SPDX-License-Identifier: MIT */
/*
 * ioeventfds: "a write of this data at this address signals this eventfd".
 *
 * Entries are added to the region that owns them (region-relative offset).
 * Only entries of terminating regions count (an entry on a container or an
 * alias is stored but never reported or matched).  At every commit the
 * entries of each address space's ranges are translated into address-space
 * coordinates and diffed; listeners get eventfd_del (ascending priority)
 * and eventfd_add (descending priority, as QEMU does), with no surrounding
 * begin/commit when only ioeventfds changed.
 *
 * Userspace fallback: an eventfd_add callback returns 1 to say it *took*
 * the entry (e.g. the KVM backend registered it with the kernel), 0 to say
 * it only observed it, or a negative errno.  A write reaching a region
 * through the access path that matches an entry no listener took signals
 * the eventfd (writes 1 to it) instead of reaching the device.
 */
#ifndef MEMSPACE_IOEVENTFD_H
#define MEMSPACE_IOEVENTFD_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * ms_region_add_eventfd() - register an ioeventfd on @r.
 * @offset:     region-relative address.
 * @size:       access size it matches: 0 (any), 1, 2, 4 or 8.
 * @match_data: only writes of @data match (else any value).
 * @data:       value in the target's byte order; converted to the region's
 *              register order like an access of @size bytes.
 * @fd:         the eventfd (not owned: the caller closes it after removing
 *              the entry).
 *
 * Identical entries may be added more than once.
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL for NULL @r, a negative @fd, a @size other than 0, 1,
 * 2, 4 or 8, or @match_data with @size 0; -ERANGE if [@offset, @offset +
 * @size) leaves the region; -ENOMEM; -EBUSY from a callback; or a listener
 * error from the implicit commit (the entry is then registered).
 */
MS_EXPORT MS_WUR int ms_region_add_eventfd(ms_region *r, uint64_t offset,
                                           unsigned size, bool match_data,
                                           uint64_t data, int fd);

/**
 * ms_region_del_eventfd() - remove the first entry of @r that matches.
 *
 * Arguments as for ms_region_add_eventfd(); an entry matches if it has the
 * same offset, size, match flag, data (when matching) and fd.
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL for NULL; -ENOENT if no entry matches; -EBUSY; or a
 * listener error from the implicit commit.
 */
MS_EXPORT MS_WUR int ms_region_del_eventfd(ms_region *r, uint64_t offset,
                                           unsigned size, bool match_data,
                                           uint64_t data, int fd);

/** One ioeventfd of an address space (address-space coordinates). */
struct ms_eventfd_info {
    uint64_t gpa;
    unsigned size;
    bool match_data;
    uint64_t data; /**< in the region's register order */
    int fd;
    bool taken;    /**< some listener took it (eventfd_add returned 1) */
};

/** Number of ioeventfds of @as after the last commit. */
MS_EXPORT size_t ms_as_nr_eventfds(const ms_as *as);

/**
 * ms_as_eventfd() - ioeventfd @i of @as, in QEMU's sort order.
 * Return: 0; -EINVAL; -ERANGE if @i is out of bounds.
 */
MS_EXPORT MS_WUR int ms_as_eventfd(const ms_as *as, size_t i,
                                   struct ms_eventfd_info *out);

#ifdef __cplusplus
}
#endif

#endif
