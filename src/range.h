/* SPDX-License-Identifier: MIT */
/*
 * Inclusive interval arithmetic, overflow-safe.
 *
 * Every interval in memspace is [first, last] with an inclusive last, so the
 * whole 2^64 space is [0, UINT64_MAX] and nothing ever needs 65 bits.  Sizes
 * at the API use the QEMU convention (UINT64_MAX means 2^64); the helpers
 * here convert between the two so that no other file writes
 * `addr + size - 1` by hand.
 */
#ifndef MS_RANGE_H
#define MS_RANGE_H

#include <stdbool.h>
#include <stdint.h>

/** A non-empty inclusive interval. */
struct ms__range {
    uint64_t first;
    uint64_t last;
};

/*
 * Interval of @size bytes starting at @start, clipped at 2^64 - 1.
 * @size uses the API convention (UINT64_MAX = 2^64).  Returns false for an
 * empty interval (size 0).
 */
static inline bool ms__range_make(uint64_t start, uint64_t size,
                                  struct ms__range *out)
{
    if (size == 0) {
        return false;
    }
    out->first = start;
    if (size == UINT64_MAX) {
        out->last = UINT64_MAX;
    } else if (size - 1 > UINT64_MAX - start) {
        out->last = UINT64_MAX;
    } else {
        out->last = start + (size - 1);
    }
    return true;
}

/* Last offset of a size (API convention); size must not be 0. */
static inline uint64_t ms__size_last(uint64_t size)
{
    return size == UINT64_MAX ? UINT64_MAX : size - 1;
}

/* Size (API convention) of an interval: 2^64 comes out as UINT64_MAX. */
static inline uint64_t ms__range_size(struct ms__range r)
{
    if (r.first == 0 && r.last == UINT64_MAX) {
        return UINT64_MAX;
    }
    return r.last - r.first + 1;
}

/* Intersection; false if empty. */
static inline bool ms__range_intersect(struct ms__range a, struct ms__range b,
                                       struct ms__range *out)
{
    uint64_t first = a.first > b.first ? a.first : b.first;
    uint64_t last = a.last < b.last ? a.last : b.last;
    if (first > last) {
        return false;
    }
    out->first = first;
    out->last = last;
    return true;
}

static inline bool ms__range_contains(struct ms__range r, uint64_t x)
{
    return x >= r.first && x <= r.last;
}

static inline bool ms__range_overlaps(struct ms__range a, struct ms__range b)
{
    return a.first <= b.last && b.first <= a.last;
}

/*
 * Shift an interval down by @delta (r - delta), keeping only the part that
 * stays >= 0.  False if nothing remains.
 */
static inline bool ms__range_sub(struct ms__range r, uint64_t delta,
                                 struct ms__range *out)
{
    if (r.last < delta) {
        return false;
    }
    out->first = r.first < delta ? 0 : r.first - delta;
    out->last = r.last - delta;
    return true;
}

/*
 * Shift an interval up by @delta (r + delta), keeping only the part that
 * stays <= 2^64 - 1.  False if nothing remains.
 */
static inline bool ms__range_add(struct ms__range r, uint64_t delta,
                                 struct ms__range *out)
{
    if (delta > UINT64_MAX - r.first) {
        return false;
    }
    out->first = r.first + delta;
    out->last = delta > UINT64_MAX - r.last ? UINT64_MAX : r.last + delta;
    return true;
}

/* a + b would pass 2^64 - 1. */
static inline bool ms__add_overflows(uint64_t a, uint64_t b)
{
    return b > UINT64_MAX - a;
}

/*
 * A window [offset, offset + size) fits in [0, limit) (sizes in API
 * convention).  A zero-size window fits if offset <= limit.
 */
static inline bool ms__window_fits(uint64_t offset, uint64_t size,
                                   uint64_t limit)
{
    /* Compare in "last" terms to stay in 64 bits. */
    if (size == 0) {
        return limit == UINT64_MAX || offset <= limit;
    }
    if (limit == 0) {
        return false;
    }
    uint64_t lim_last = ms__size_last(limit);
    uint64_t win_last_rel = ms__size_last(size);
    if (offset > lim_last) {
        return false;
    }
    return win_last_rel <= lim_last - offset;
}

#endif
