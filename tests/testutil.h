/* SPDX-License-Identifier: MIT */
/* Helpers shared by the test programs (public API only). */
#ifndef MS_TESTUTIL_H
#define MS_TESTUTIL_H

#include <memspace/memspace.h>
#include <stdio.h>

/* Ops whose callbacks return 0 and ignore writes. */
extern const struct ms_region_ops tu_dummy_ops;

/* Builders that abort the test on failure. */
ms_region *tu_region(ms_system *sys, struct ms_region_config cfg);
ms_region *tu_container(ms_system *sys, const char *name, uint64_t size);
ms_region *tu_ram(ms_system *sys, const char *name, uint64_t size);
ms_region *tu_rom(ms_system *sys, const char *name, uint64_t size);
ms_region *tu_io(ms_system *sys, const char *name, uint64_t size);
ms_region *tu_iommu(ms_system *sys, const char *name, uint64_t size,
                    const struct ms_iommu_ops *ops, void *opaque);
ms_region *tu_alias(ms_system *sys, const char *name, ms_region *target,
                    uint64_t offset, uint64_t size);
/* RAM over the caller's memory @host (MS_RAM_HOST). */
ms_region *tu_host_ram(ms_system *sys, const char *name, void *host,
                       uint64_t size);
/* Add and drop the caller's reference (the container keeps one). */
void tu_add(ms_region *c, uint64_t offset, ms_region *sub, int32_t prio);

/* Little-endian typed load or store of @len = 1, 2, 4 or 8 bytes. */
uint64_t tu_load(ms_as *as, uint64_t gpa, unsigned len, ms_tx_result *res);
ms_tx_result tu_store(ms_as *as, uint64_t gpa, uint64_t v, unsigned len);

/*
 * Hide (TU_HIDE: disable), write-protect (TU_READONLY) or log for the VGA
 * client (TU_LOG) @r if @on, else undo it; returns the call's result.
 */
enum tu_change { TU_HIDE, TU_READONLY, TU_LOG };
int tu_change(ms_region *r, enum tu_change what, bool on);

/* The flat view of @as in `info mtree -f` range-line form, one per line. */
char *tu_flat_lines(const ms_as *as);

/* Read a whole file; NULL if it cannot be read. */
char *tu_read_file(const char *path);

/*
 * Compare two outputs as sets (@set != 0) or multisets of blocks (a block
 * ends with an empty line).  "FlatView #N" headers are normalised.  Returns
 * 1 if equal; else 0 and, if @diag is not NULL, writes the first unmatched
 * blocks there.
 */
int tu_blocks_equal(const char *got, const char *expected, int set,
                    FILE *diag);

/* Remove " KVM"-style accelerator suffixes from flat range lines. */
char *tu_strip_accel(const char *text);

/*
 * The subdirectories of @dir holding a file named @file, sorted by name
 * (malloc()ed names, at most @max); returns how many, or -1 with errno if
 * @dir cannot be opened.  Free with tu_names_free().
 */
int tu_list_configs(const char *dir, const char *file, char **names,
                    size_t max);
void tu_names_free(char **names, size_t n);

/* Log hook that records the last message (for error-message tests). */
extern char tu_last_log[512];
extern int tu_log_count;
void tu_log(void *opaque, enum ms_log_level level, const char *msg);

#endif
