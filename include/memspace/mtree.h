/* SPDX-License-Identifier: MIT */
/*
 * `info mtree` text, byte for byte as QEMU 7.2 prints it.
 *
 * Tree mode prints one block per distinct root region (the address spaces
 * sharing it listed first, sorted by name), then one "memory-region:" block
 * per alias target met while printing.  Flat mode prints one block per
 * distinct flat view with the address spaces that share it.  QEMU prints
 * blocks in hash order; memspace prints them in the creation order of their
 * first address space (and alias targets in the order they were met), which
 * is deterministic.  Everything inside a block is as QEMU prints it.
 */
#ifndef MEMSPACE_MTREE_H
#define MEMSPACE_MTREE_H

#include <stdio.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Flags of ms_mtree_print(); they mirror the HMP options. */
enum ms_mtree_flags {
    MS_MTREE_FLAT = 1u << 0,     /**< -f: flat views instead of trees */
    MS_MTREE_OWNER = 1u << 1,    /**< -o: owner labels */
    MS_MTREE_DISABLED = 1u << 2, /**< -D: show disabled regions (tree) */
    MS_MTREE_DISPATCH = 1u << 3, /**< -d: section list (flat mode) */
};

/** Output sink: called with consecutive pieces of text. */
typedef int (*ms_write_fn)(void *opaque, const char *text, size_t len);

/**
 * ms_mtree_print() - print the topology.
 * @flags: enum ms_mtree_flags.
 * @write: sink; a negative return stops printing and is returned.
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL for NULL or unknown flags; -ENOMEM; or the sink's
 * error.
 */
MS_EXPORT MS_WUR int ms_mtree_print(ms_system *sys, unsigned flags,
                                    ms_write_fn write, void *opaque);

/**
 * ms_mtree_to_string() - the same text in a NUL-terminated string.
 * @out: receives a malloc()ed string the caller frees.
 * Return: as ms_mtree_print().
 */
MS_EXPORT MS_WUR int ms_mtree_to_string(ms_system *sys, unsigned flags,
                                        char **out);

/**
 * ms_mtree_fprint() - the same text to a stdio stream.
 * Return: as ms_mtree_print(); -EIO if writing fails.
 */
MS_EXPORT MS_WUR int ms_mtree_fprint(ms_system *sys, unsigned flags,
                                     FILE *f);

#ifdef __cplusplus
}
#endif

#endif
