/* SPDX-License-Identifier: MIT */
/*
 * Coalesced MMIO ranges: parts of an MMIO region whose writes a backend may
 * buffer instead of exiting for each one (KVM's coalesced MMIO ring).
 * Listeners are told at once when a range is added or cleared
 * (coalesced_io_add / coalesced_io_del, per visible piece), and again
 * around region_add / region_del of the ranges that show the region.
 */
#ifndef MEMSPACE_COALESCED_H
#define MEMSPACE_COALESCED_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * ms_region_add_coalescing() - mark [@offset, @offset + @size) of @r as
 * coalesced.
 *
 * Every listener whose address space shows part of it gets
 * coalesced_io_add with that part, immediately (no transaction).
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL for NULL or size 0; -ERANGE if the range leaves @r;
 * -ENOMEM; -EBUSY; or the first listener error.
 */
MS_EXPORT MS_WUR int ms_region_add_coalescing(ms_region *r, uint64_t offset,
                                              uint64_t size);

/**
 * ms_region_set_coalescing() - clear, then coalesce all of @r.
 * Return: as ms_region_add_coalescing().
 */
MS_EXPORT MS_WUR int ms_region_set_coalescing(ms_region *r);

/**
 * ms_region_clear_coalescing() - drop every coalesced range of @r, telling
 * listeners (coalesced_io_del, in insertion order) first.
 *
 * Context: owner thread.  Return: 0; -EINVAL; -EBUSY; or the first
 * listener error.
 */
MS_EXPORT MS_WUR int ms_region_clear_coalescing(ms_region *r);

#ifdef __cplusplus
}
#endif

#endif
