/* SPDX-License-Identifier: MIT */
/*
 * Why does an address land where it does?
 *
 * ms_explain() walks the region tree of an address space for one address,
 * with the rendering rules (docs/model.md section 2): from the flat-view
 * root down, children in list order (priority, then the most recently
 * added first), aliases followed into their targets.  It reports the path
 * that leads to the region answering the address, the offset at every
 * step, and every region on the way that contains the address but lost:
 * to a sibling of higher priority, to a sibling of equal priority added
 * later, because it is disabled, because nothing inside it claims the
 * address (a hole), or because one of its own children claims it.
 */
#ifndef MEMSPACE_EXPLAIN_H
#define MEMSPACE_EXPLAIN_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Why a region containing the address does not answer it. */
enum ms_explain_reason {
    /** A sibling with a higher priority claimed the address. */
    MS_EXPLAIN_PRIORITY = 0,
    /** A sibling of equal priority, added later, claimed it. */
    MS_EXPLAIN_ORDER,
    /** The region (and so its subtree) is disabled. */
    MS_EXPLAIN_DISABLED,
    /** It comes first, but nothing in it claims the address. */
    MS_EXPLAIN_HOLE,
    /** A terminating region whose own subregion claimed the address. */
    MS_EXPLAIN_CHILD,
};

/** One region on the path from the view root to the answer. */
struct ms_explain_step {
    ms_region *region;
    uint64_t offset; /**< the address, as an offset inside @region */
    bool via_alias;  /**< reached as the target of the previous step */
};

/** A region that contains the address but does not answer it. */
struct ms_explain_loser {
    ms_region *region;
    enum ms_explain_reason reason;
    uint64_t offset;   /**< the address inside @region */
    size_t step;       /**< index of the path step it lost at */
    ms_region *winner; /**< the sibling (or child) that won, if any */
    /** What it would answer on its own (terminating region) or NULL. */
    ms_region *would;
    uint64_t would_offset;
};

/** Result of ms_explain(); free with ms_explanation_free(). */
struct ms_explanation {
    uint64_t gpa;
    ms_region *as_root;   /**< the address space's root */
    ms_region *view_root; /**< the region rendering starts from, or NULL */
    ms_region *region;    /**< the answer, or NULL if unassigned */
    uint64_t offset;      /**< offset of @gpa inside @region */
    /* The flat-view range holding @gpa (valid if @region is set). */
    uint64_t range_gpa;
    uint64_t range_last;
    bool readonly;
    bool nonvolatile;
    struct ms_explain_step *steps;
    size_t nr_steps;
    struct ms_explain_loser *losers;
    size_t nr_losers;
};

/**
 * ms_explain() - explain which region answers @gpa in @as, and why.
 * @out: receives the explanation.
 *
 * The answer is the one of the address space's published flat view.
 * Regions in the result are borrowed: valid until the topology changes.
 *
 * Context: owner thread, not inside an open transaction with pending
 * changes (the tree would then differ from the published view).
 * Return: 0; -EINVAL for NULL arguments; -ENOMEM; -EPROTO if the walk and
 * the published view disagree (pending changes).
 */
MS_EXPORT MS_WUR int ms_explain(const ms_as *as, uint64_t gpa,
                                struct ms_explanation **out);

/** Free an explanation (NULL is a no-op). */
MS_EXPORT void ms_explanation_free(struct ms_explanation *e);

/** Short name of a reason ("priority", "order", "disabled"...). */
MS_EXPORT const char *ms_explain_reason_name(enum ms_explain_reason r);

#ifdef __cplusplus
}
#endif

#endif
