/* SPDX-License-Identifier: MIT */
/*
 * RCU glue: lock-free readers of published flat views (liburcu, "bp"
 * flavour, so reader threads need no registration), and deferred
 * reclamation of retired views.
 *
 * Publication is a release store of the view pointer and reading it an
 * acquire load (C11 atomics, which ThreadSanitizer understands).  A retired
 * view is handed to call_rcu(); after the grace period the callback pushes
 * it onto the owning system's reclaim stack, and the owner thread frees it
 * (dropping region references) at its next commit or at ms_system_free().
 * So region and view lifetimes are only ever changed on the owner thread.
 *
 * ThreadSanitizer cannot see liburcu's grace periods (they synchronise
 * through membarrier and uninstrumented code), so TSan builds annotate
 * them: every read-side unlock releases the system's token, every grace
 * period end acquires it.
 */
#ifndef MS_RCU_H
#define MS_RCU_H

#include <urcu/urcu-bp.h>

#if defined(__SANITIZE_THREAD__)
#define MS__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MS__TSAN 1
#endif
#endif

#ifdef MS__TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define MS__TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define MS__TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define MS__TSAN_ACQUIRE(p) ((void)(p))
#define MS__TSAN_RELEASE(p) ((void)(p))
#endif

static inline void ms__rcu_read_lock(void)
{
    urcu_bp_read_lock();
}

/* @token: the system's rcu_token (TSan happens-before anchor). */
static inline void ms__rcu_read_unlock(void *token)
{
    MS__TSAN_RELEASE(token);
    urcu_bp_read_unlock();
}

#define ms__rcu_publish(pp, v) __atomic_store_n((pp), (v), __ATOMIC_RELEASE)
#define ms__rcu_deref(pp) __atomic_load_n((pp), __ATOMIC_ACQUIRE)

#endif
