/* SPDX-License-Identifier: MIT */
/*
 * A recording listener: one line per callback, so tests compare the log
 * with an expected block.  Line format:
 *
 *   NAME begin | NAME commit
 *   NAME region_add AS FIRST-LAST REGION@OFFSET [ro] [nv]
 *   NAME log_start AS FIRST-LAST REGION@OFFSET old=M new=M
 *   NAME eventfd_add AS GPA+SIZE [data=D] fd=F
 *   NAME coalesced_io_add AS FIRST-LAST GPA+SIZE
 *   NAME log_global_start ...
 *
 * Addresses are lowercase hex without leading zeros.
 */
#ifndef MS_RECLOG_H
#define MS_RECLOG_H

#include <memspace/memspace.h>

struct reclog {
    struct ms_listener l;
    char *buf; /* shared between recorders if @shared is set */
    size_t len, cap;
    struct reclog *shared;
    /* Failure injection: callback name to fail, and how often (-1: always). */
    const char *fail_cb;
    int fail_count;
    int fail_errno;
    /* eventfd_add return value when not failing (0 observe, 1 take). */
    int eventfd_ret;
    /* Re-entrancy probe: region to edit from inside region_add. */
    ms_region *edit_from_cb;
    int edit_result;
};

/* Set up @r with every callback, name @name, priority @prio. */
void reclog_init(struct reclog *r, const char *name, unsigned prio);
/* Use log_sync_global instead of log_sync. */
void reclog_use_sync_global(struct reclog *r);
/* Record into @target's buffer (for interleaving several listeners). */
void reclog_share(struct reclog *r, struct reclog *target);
/* The log so far, and reset it. */
const char *reclog_text(struct reclog *r);
void reclog_clear(struct reclog *r);
void reclog_free(struct reclog *r);

#endif
