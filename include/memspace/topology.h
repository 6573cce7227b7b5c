/* SPDX-License-Identifier: MIT */
/*
 * Topology descriptions: a memory map as data.
 *
 * An ms_topology is a plain description of regions and address spaces (no
 * host memory, no callbacks): what a memspace topology file holds
 * (docs/topology-format.md), or what was reconstructed from the text of
 * QEMU's `info mtree -D` (optionally helped by `info mtree -f`).  It can be
 * saved back as JSON, checked for likely mistakes, built into an ms_system,
 * and applied onto a system built earlier so that the system's listeners
 * see exactly the events the change produces.
 *
 * Every region has an id, unique in its topology; ids are what ms_topology
 * _apply() uses to tell "the same region, changed" from "another region".
 *
 * Errors: loaders and builders fill a struct ms_topology_error with where
 * (file, line and column or JSON path) and which rule was broken; nothing
 * is ever printed.
 */
#ifndef MEMSPACE_TOPOLOGY_H
#define MEMSPACE_TOPOLOGY_H

#include "common.h"
#include "explain.h"
#include "region.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A topology description (opaque). */
typedef struct ms_topology ms_topology;
/** The regions and address spaces a topology was built into (opaque). */
typedef struct ms_topology_map ms_topology_map;

/** Version of the JSON format written by ms_topology_save_json(). */
#define MS_TOPOLOGY_VERSION 1

/** Where and why loading, importing or building failed. */
struct ms_topology_error {
    int error;       /**< negative errno; 0 if no error */
    char file[256];  /**< file name given by the caller, or "" */
    unsigned line;   /**< 1-based line, 0 if not applicable */
    unsigned column; /**< 1-based column, 0 if not applicable */
    char path[256];  /**< JSON path ("$.regions[2].size") or "" */
    char rule[512];  /**< the rule that was broken, one sentence */
};

/** What the import had to guess (flags of ms_topology_region.guessed). */
enum ms_topology_guess {
    /** Container or terminating I/O region (both print "i/o"). */
    MS_GUESS_TERMINATES = 1u << 0,
    /** Size 0 or 1 (both print "X-X"). */
    MS_GUESS_SIZE = 1u << 1,
    /** Own read-only flag of an alias (never printed). */
    MS_GUESS_READONLY = 1u << 2,
    /** Which of several same-named regions an alias points to. */
    MS_GUESS_TARGET = 1u << 3,
};

/** One ioeventfd of a region description (region-relative offset). */
struct ms_topology_eventfd {
    uint64_t offset;
    unsigned size; /**< 0 (any), 1, 2, 4 or 8 */
    bool match_data;
    uint64_t data;
    int fd; /**< a label in files; see ms_topology_build() */
};

/** A read-only view of one region description. */
struct ms_topology_region {
    const char *id;    /**< unique in the topology */
    const char *name;  /**< NULL for an unnamed region */
    const char *owner; /**< owner label or NULL */
    enum ms_region_kind kind;
    uint64_t size; /**< MS_SIZE_FULL means 2^64 */
    uint64_t addr; /**< offset in the container */
    int32_t priority;
    bool enabled;
    bool readonly;
    bool nonvolatile;
    bool romd;           /**< ROM devices: ROMD mode */
    bool log_vga;        /**< explicitly logged for MS_DIRTY_VGA */
    size_t container;    /**< index of the container, or SIZE_MAX */
    size_t alias_target; /**< index of the alias target, or SIZE_MAX */
    uint64_t alias_offset;
    size_t nr_subregions; /**< see ms_topology_subregion() */
    size_t nr_eventfds;   /**< see ms_topology_eventfd() */
    unsigned guessed;     /**< enum ms_topology_guess flags (import) */
    const char *where;    /**< JSON path or "line N" it came from */
};

/** A read-only view of one address-space description. */
struct ms_topology_as {
    const char *id;   /**< unique in the topology */
    const char *name; /**< need not be unique */
    size_t root;      /**< index of the root region */
};

/**
 * ms_topology_load_json() - parse a topology file held in memory.
 * @text, @len: the file's bytes (need not be NUL-terminated).
 * @file:       name used in error messages (may be NULL).
 * @err:        receives the error detail on failure (may be NULL).
 * @out:        receives the topology.
 *
 * Every key is checked: unknown keys, wrong types, numbers out of range,
 * duplicate ids, unknown alias targets, cycles through containers and
 * aliases and nesting deeper than 256 levels are errors.
 *
 * Context: any thread.
 * Return: 0; -EINVAL for NULL arguments or an invalid file (@err says
 * where); -ENOMEM.
 */
MS_EXPORT MS_WUR int ms_topology_load_json(const char *text, size_t len,
                                           const char *file,
                                           struct ms_topology_error *err,
                                           ms_topology **out);

/**
 * ms_topology_save_json() - the topology as a JSON document.
 * @out: receives a malloc()ed, NUL-terminated string (indented, ending in a
 *       newline) that ms_topology_load_json() reads back into an equal
 *       topology.
 *
 * Context: any thread.
 * Return: 0; -EINVAL for NULL arguments; -ENOMEM.
 */
MS_EXPORT MS_WUR int ms_topology_save_json(const ms_topology *t, char **out);

/**
 * ms_topology_import_mtree() - reconstruct a topology from QEMU's text.
 * @tree, @tree_len: the output of `info mtree -D` or `info mtree -o -D`.
 * @tree_file:       name for messages (may be NULL).
 * @flat, @flat_len: the output of `info mtree -f` of the same machine, or
 *                   NULL: it settles what the tree text cannot show
 *                   (container or I/O region, size 0 or 1, an alias's own
 *                   read-only flag, which same-named region an alias
 *                   targets, the creation order of address spaces).
 * @flat_file:       name for messages (may be NULL).
 * @err, @out:       as for ms_topology_load_json().
 *
 * Without @flat, or where @flat cannot settle a question, documented
 * guesses are used and the regions concerned are flagged in
 * ms_topology_region.guessed.  Plain `info mtree` text (without -D) and
 * flat-view text given as a tree are refused.
 *
 * Context: any thread.
 * Return: 0; -EINVAL for NULL arguments or text that cannot be read (@err
 * says where); -ENOMEM.
 */
MS_EXPORT MS_WUR int ms_topology_import_mtree(const char *tree, size_t tree_len,
                                              const char *tree_file,
                                              const char *flat, size_t flat_len,
                                              const char *flat_file,
                                              struct ms_topology_error *err,
                                              ms_topology **out);

/** Free a topology (NULL is a no-op).  Context: any thread. */
MS_EXPORT void ms_topology_free(ms_topology *t);

/** Number of region descriptions. */
MS_EXPORT size_t ms_topology_nr_regions(const ms_topology *t);

/**
 * ms_topology_region() - read region description @i.
 * Strings are borrowed from @t.
 * Return: 0; -EINVAL for NULL; -ERANGE if @i is out of bounds.
 */
MS_EXPORT MS_WUR int ms_topology_region(const ms_topology *t, size_t i,
                                        struct ms_topology_region *out);

/**
 * ms_topology_subregion() - index of the @k-th subregion of region @i, in
 * the order they are added (among equal priorities a later one is rendered
 * on top); SIZE_MAX if out of bounds.
 */
MS_EXPORT size_t ms_topology_subregion(const ms_topology *t, size_t i,
                                       size_t k);

/**
 * ms_topology_eventfd() - read ioeventfd @k of region @i.
 * Return: 0; -EINVAL; -ERANGE.
 */
MS_EXPORT MS_WUR int ms_topology_eventfd(const ms_topology *t, size_t i,
                                         size_t k,
                                         struct ms_topology_eventfd *out);

/** Index of the region with id @id, or SIZE_MAX. */
MS_EXPORT size_t ms_topology_find(const ms_topology *t, const char *id);

/** Number of address-space descriptions (creation order). */
MS_EXPORT size_t ms_topology_nr_as(const ms_topology *t);

/**
 * ms_topology_as() - read address-space description @i.
 * Return: 0; -EINVAL; -ERANGE.
 */
MS_EXPORT MS_WUR int ms_topology_as(const ms_topology *t, size_t i,
                                    struct ms_topology_as *out);

/** One finding of ms_topology_check(). */
struct ms_topology_issue {
    const char *kind;    /**< short tag, e.g. "equal-priority-overlap" */
    const char *message; /**< one sentence naming the regions involved */
    size_t region;       /**< index of the region concerned */
    const char *where;   /**< where it was described (JSON path, line) */
};

/** Callback of ms_topology_check(); strings valid during the call. */
typedef void (*ms_topology_issue_fn)(void *opaque,
                                     const struct ms_topology_issue *issue);

/**
 * ms_topology_check() - look for likely mistakes.
 *
 * Reports, through @fn: enabled siblings of equal priority that overlap
 * (which one wins depends only on the order they were added); aliases whose
 * window reaches past their target; regions sticking out of their
 * container; unnamed regions; RAM-backed regions of size 0.
 *
 * Context: any thread.
 * Return: the number of findings (0 if none); -EINVAL for NULL @t;
 * -ENOMEM.
 */
MS_EXPORT MS_WUR int ms_topology_check(const ms_topology *t,
                                       ms_topology_issue_fn fn, void *opaque);

/**
 * Options of ms_topology_build() and ms_topology_apply().  Zero-initialise.
 */
struct ms_topology_build_options {
    /**
     * Called before each region is created, with the description and the
     * configuration about to be used; it may set the ops, opaque pointer
     * and RAM backing (host, fd...).  A non-zero return aborts with that
     * error.  Without it, I/O regions and ROM devices get inert ops (reads
     * return 0, writes are ignored) and RAM devices fail with -EINVAL
     * (they need caller memory).
     */
    int (*prepare)(void *opaque, const struct ms_topology_region *desc,
                   struct ms_region_config *cfg);
    /**
     * Maps the fd label of an ioeventfd description to a real file
     * descriptor (>= 0) or a negative errno.  Without it, labels are used
     * as descriptors unchanged.
     */
    int (*eventfd)(void *opaque, const struct ms_topology_region *desc,
                   const struct ms_topology_eventfd *efd);
    /**
     * ms_topology_apply(): called before an address space that the new
     * topology no longer has is destroyed (after the commit), so that the
     * caller can unregister its listeners.
     */
    void (*as_removed)(void *opaque, ms_as *as);
    void *opaque;
};

/**
 * ms_topology_build() - create the regions and address spaces of @t in
 * @sys, in one transaction.
 * @out: receives the map from ids to the created objects.  It holds a
 *       reference on every region; free it with ms_topology_map_free()
 *       before freeing @sys.
 *
 * Address spaces are created in @t's order.  Subregions are added in the
 * description's order, so the system's sibling lists are the same as those
 * of the system the description was taken from.
 *
 * Context: owner thread of @sys, outside listener callbacks.
 * Return: 0; -EINVAL for NULL arguments; a negative errno from the region,
 * address-space, ioeventfd or logging calls (@err names the region and the
 * rule); on failure nothing is left behind in @sys.
 */
MS_EXPORT MS_WUR int
ms_topology_build(const ms_topology *t, ms_system *sys,
                  const struct ms_topology_build_options *opts,
                  struct ms_topology_error *err, ms_topology_map **out);

/**
 * ms_topology_apply() - change the system of @map to match @t, in ONE
 * transaction.
 *
 * Regions are matched by id.  A matched region whose kind, name, owner or
 * alias target changed, or whose RAM block is too small for its new size,
 * is replaced by a new region; others are edited in place (size, address,
 * priority, container, flags, alias offset, ioeventfds, dirty logging).
 * Regions @t lacks are removed.  Address spaces are matched by id; new ones
 * are created inside the transaction, vanished ones are destroyed after it
 * (see ms_topology_build_options.as_removed), as are those whose root was
 * replaced (and then created again).  Listeners registered on the system
 * therefore see exactly the region_del / region_add / log / eventfd events
 * that the change from the old description to @t produces.
 *
 * On success @map describes @t.  On failure the transaction is still
 * committed (the library cannot roll it back), the system is left
 * somewhere between the two topologies and @map must only be freed.
 *
 * Context: owner thread, outside listener callbacks.
 * Return: 0; -EINVAL for NULL arguments; -EBUSY if an address space to
 * destroy still has listeners; or any error of ms_topology_build().
 */
MS_EXPORT MS_WUR int
ms_topology_apply(ms_topology_map *map, const ms_topology *t,
                  const struct ms_topology_build_options *opts,
                  struct ms_topology_error *err);

/** The system of @map. */
MS_EXPORT ms_system *ms_topology_map_system(const ms_topology_map *map);

/** The region built for id @id, or NULL (borrowed from @map). */
MS_EXPORT ms_region *ms_topology_map_region(const ms_topology_map *map,
                                            const char *id);

/** The address space built for address-space id @id, or NULL. */
MS_EXPORT ms_as *ms_topology_map_as(const ms_topology_map *map, const char *id);

/**
 * ms_topology_map_free() - drop the map's references (NULL is a no-op).
 * Regions stay in the system as long as something else holds them.
 * Context: owner thread, before ms_system_free().
 */
MS_EXPORT void ms_topology_map_free(ms_topology_map *map);

/**
 * ms_topology_error_format() - "FILE:LINE:COL: PATH: RULE" (parts that are
 * not set are left out) into @buf.
 * Return: @buf.
 */
MS_EXPORT const char *
ms_topology_error_format(const struct ms_topology_error *err, char *buf,
                         size_t size);

#ifdef __cplusplus
}
#endif

#endif
