/* SPDX-License-Identifier: MIT */
/*
 * memspace: types and conventions shared by every public header.
 *
 * Error rule (one for the whole library): a host-side call returns 0 or a
 * non-negative count on success and a negative errno on failure; it writes
 * its out-parameters only on success and leaves every object as it was on
 * failure (except where a function's documentation says otherwise, e.g. a
 * listener error reported by a commit that has already been applied).  The
 * library never prints, exits or aborts because of caller input; an optional
 * log hook (ms_system_config.log) receives a message naming the objects and
 * the rule involved.
 *
 * Guest-side accesses (access.h) instead return an ms_tx_result bit set.
 */
#ifndef MEMSPACE_COMMON_H
#define MEMSPACE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MS_EXPORT __attribute__((visibility("default")))
#define MS_WUR __attribute__((warn_unused_result))
#else
#define MS_EXPORT
#define MS_WUR
#endif

/** One virtual machine (or test) worth of memory state.  See system.h. */
typedef struct ms_system ms_system;
/** A node of the region tree.  See region.h. */
typedef struct ms_region ms_region;
/** An address space: a name and a root region.  See as.h. */
typedef struct ms_as ms_as;
/** An immutable rendering of an address space.  See flatview.h. */
typedef struct ms_flatview ms_flatview;

/**
 * Size value meaning 2^64.  Region sizes are given as uint64_t; the value
 * UINT64_MAX stands for the full 64-bit space (2^64 bytes), so a region can
 * never be exactly 2^64 - 1 bytes long (the same convention as QEMU).
 */
#define MS_SIZE_FULL UINT64_MAX

/** Severity of a message sent to the log hook. */
enum ms_log_level {
    MS_LOG_ERROR = 0,       /**< a caller error or a failed operation */
    MS_LOG_WARN = 1,        /**< something likely wrong but accepted */
    MS_LOG_GUEST_ERROR = 2, /**< the guest did something invalid */
    MS_LOG_INFO = 3,
    MS_LOG_DEBUG = 4,
};

/**
 * Log hook.  @msg is a complete sentence without a trailing newline; it is
 * only valid during the call.
 */
typedef void (*ms_log_fn)(void *opaque, enum ms_log_level level,
                          const char *msg);

/**
 * Result of one guest-side access: a bit set, OR-ed over the pieces of an
 * access (processing does not stop at the first error).
 */
typedef uint32_t ms_tx_result;
#define MS_TX_OK 0u
#define MS_TX_ERROR 1u        /**< the device reported an error */
#define MS_TX_DECODE_ERROR 2u /**< nothing decodes there, or access invalid */
#define MS_TX_ACCESS_ERROR 4u /**< denied by policy (attrs, re-entrancy) */

/** Transaction attributes of a guest-side access. */
struct ms_attrs {
    unsigned unspecified : 1; /**< set by MS_ATTRS_UNSPECIFIED */
    unsigned secure : 1;
    unsigned user : 1;
    unsigned memory : 1; /**< the requester may only touch RAM */
    unsigned byte_swap : 1;
    unsigned debug : 1;
    unsigned requester_id : 16;
};

/** The attributes most callers use. */
#define MS_ATTRS_UNSPECIFIED ((struct ms_attrs){ .unspecified = 1 })

/** Byte order of an MMIO region's registers. */
enum ms_endian {
    MS_ENDIAN_NATIVE = 0, /**< the target's order (ms_system_config) */
    MS_ENDIAN_LITTLE = 1,
    MS_ENDIAN_BIG = 2,
};

#ifdef __cplusplus
}
#endif

#endif
