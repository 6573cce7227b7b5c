/* SPDX-License-Identifier: MIT */
/*
 * The KVM backend: memslots, ioeventfds, dirty logging and a vCPU helper.
 *
 * ms_kvm_attach() registers memory listeners that turn every flat-view
 * change of an address space into KVM memslot ioctls
 * (KVM_SET_USER_MEMORY_REGION), its ioeventfds into KVM_IOEVENTFD, and
 * dirty syncs into KVM_GET_DIRTY_LOG / KVM_CLEAR_DIRTY_LOG merged into the
 * regions' dirty bitmaps (dirty.h).  docs/kvm.md explains the design; the
 * short version:
 *
 * - RAM, ROM, RAM-device and (in ROMD mode) ROM-device ranges become slots,
 *   trimmed inwards to host pages; read-only regions get KVM_MEM_READONLY
 *   when the kernel offers it, logged regions KVM_MEM_LOG_DIRTY_PAGES.
 * - Slots are planned at the listener's commit from the whole new view.  A
 *   slot whose guest range still shows the same host memory with the same
 *   read-only flag is kept, whatever happened around it (neighbours merging
 *   or splitting never delete it); only what changed is touched, and a
 *   logging flag change is done in place.
 * - A commit that must delete a slot whose memory stays mapped (shrink,
 *   split, move, read-only toggle) pauses the vCPUs around its ioctls, so a
 *   guest never sees a transient hole in memory that stayed RAM.  Commits
 *   that only add or only remove memory do not pause.
 * - Slot ids are the lowest free ones; running out gives -ENOSPC from the
 *   commit (every slot that exists is still correct, the memory that got
 *   no slot is served through exits, and the next commit retries).
 *
 * Every ioctl goes through struct ms_kvm_ops; tests replace it with a fake.
 * The library never prints: ioctls can be observed with a trace hook.
 */
#ifndef MEMSPACE_KVM_H
#define MEMSPACE_KVM_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The KVM backend of one virtual machine. */
typedef struct ms_kvm ms_kvm;
/** A vCPU run by the helper (see ms_kvm_vcpu_new()). */
typedef struct ms_kvm_vcpu ms_kvm_vcpu;

/** Memslot flags (the kernel's values). */
#define MS_KVM_MEM_LOG_DIRTY_PAGES 1u
#define MS_KVM_MEM_READONLY 2u

/** One KVM_SET_USER_MEMORY_REGION request (or a slot of the table). */
struct ms_kvm_memslot {
    uint32_t slot;  /**< slot id (bits 16-31: KVM address space, 0 here) */
    uint32_t flags; /**< MS_KVM_MEM_* */
    uint64_t gpa;   /**< guest physical address, host-page aligned */
    uint64_t size;  /**< bytes, host-page multiple; 0 deletes the slot */
    uint64_t host;  /**< userspace address, host-page aligned */
};

/** One KVM_IOEVENTFD request. */
struct ms_kvm_ioeventfd {
    uint64_t addr;  /**< MMIO address, or I/O port when @pio */
    uint32_t len;   /**< 0 (any length), 1, 2, 4 or 8 */
    int fd;         /**< the eventfd */
    bool pio;       /**< KVM_IOEVENTFD_FLAG_PIO */
    bool datamatch; /**< KVM_IOEVENTFD_FLAG_DATAMATCH */
    uint64_t data;  /**< value to match (host byte order) */
    bool deassign;  /**< KVM_IOEVENTFD_FLAG_DEASSIGN */
};

/** What the kernel offers (read once, at ms_kvm_new()). */
struct ms_kvm_caps {
    /** KVM_CAP_NR_MEMSLOTS (32 when the kernel reports 0). */
    uint32_t nr_memslots;
    /** KVM_CAP_READONLY_MEM: read-only slots exist. */
    bool readonly_mem;
    /** KVM_CAP_IOEVENTFD. */
    bool ioeventfd;
    /** KVM_CAP_IOEVENTFD_ANY_LENGTH: len 0 is accepted. */
    bool ioeventfd_any_length;
    /**
     * KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is enabled: KVM_GET_DIRTY_LOG does
     * not re-protect, KVM_CLEAR_DIRTY_LOG does (on log_clear).
     */
    bool manual_dirty_log;
};

/**
 * The ioctl seam.  Every callback returns 0 or a negative errno (a real
 * kernel's -1/errno already converted, EINTR/EAGAIN already retried).
 * Tests supply a fake; NULL in ms_kvm_config selects the real kernel.
 */
struct ms_kvm_ops {
    /** Capabilities (called once by ms_kvm_new()). */
    int (*get_caps)(void *opaque, struct ms_kvm_caps *caps);
    /** KVM_SET_USER_MEMORY_REGION. */
    int (*set_memslot)(void *opaque, const struct ms_kvm_memslot *s);
    /**
     * KVM_GET_DIRTY_LOG of @slot into @bitmap (one bit per host page of the
     * slot, rounded up to 64 bits).
     */
    int (*get_dirty_log)(void *opaque, uint32_t slot, uint64_t *bitmap);
    /** KVM_CLEAR_DIRTY_LOG (only called when manual_dirty_log is on). */
    int (*clear_dirty_log)(void *opaque, uint32_t slot, uint64_t first_page,
                           uint32_t num_pages, const uint64_t *bitmap);
    /** KVM_IOEVENTFD. */
    int (*ioeventfd)(void *opaque, const struct ms_kvm_ioeventfd *e);
};

/** What a trace event reports. */
enum ms_kvm_event_kind {
    MS_KVM_EV_MEMSLOT = 0,     /**< KVM_SET_USER_MEMORY_REGION */
    MS_KVM_EV_GET_DIRTY_LOG,   /**< KVM_GET_DIRTY_LOG */
    MS_KVM_EV_CLEAR_DIRTY_LOG, /**< KVM_CLEAR_DIRTY_LOG */
    MS_KVM_EV_IOEVENTFD,       /**< KVM_IOEVENTFD */
    MS_KVM_EV_PAUSE,           /**< vCPUs paused before slot changes */
    MS_KVM_EV_RESUME,          /**< vCPUs resumed */
};

/** One trace event; pointers are valid during the call only. */
struct ms_kvm_event {
    enum ms_kvm_event_kind kind;
    int result;  /**< 0 or the negative errno of the ioctl */
    uint64_t ns; /**< time the ioctl (or the pause) took */
    /** MEMSLOT: the request; GET/CLEAR_DIRTY_LOG: the slot concerned. */
    const struct ms_kvm_memslot *slot;
    /** MEMSLOT/dirty: the region the slot maps and its offset there. */
    const ms_region *region;
    uint64_t offset;
    /** GET/CLEAR_DIRTY_LOG: page range and number of dirty bits. */
    uint64_t first_page;
    uint64_t num_pages;
    uint64_t dirty_pages;
    /** IOEVENTFD: the request. */
    const struct ms_kvm_ioeventfd *ioeventfd;
};

/** Trace hook: called after every ioctl (and around pauses). */
typedef void (*ms_kvm_trace_fn)(void *opaque, const struct ms_kvm_event *ev);

/** Options for ms_kvm_new(); zero-initialise and set what you need. */
struct ms_kvm_config {
    /**
     * A KVM VM file descriptor the caller created and keeps owning (and
     * has set up: on x86 KVM_SET_TSS_ADDR etc.), or 0 (the default): the
     * library opens /dev/kvm, creates a VM (on x86 reserving 0xfeffc000-
     * 0xfeffffff for KVM, see docs/kvm.md) and closes both in
     * ms_kvm_free().  Ignored when @ops is set.
     */
    int vm_fd;
    /** Replace every ioctl (tests, record/replay); NULL: the kernel. */
    const struct ms_kvm_ops *ops;
    void *ops_opaque;
    /** Use at most this many slot ids (0: the kernel's limit). */
    uint32_t max_slots;
    /** Split slots larger than this (host-page multiple; 0: no limit). */
    uint64_t max_slot_size;
    /** Host page size (0: the system's). */
    uint32_t host_page_size;
    /** Never use KVM_MEM_READONLY (ROM then gets writable slots). */
    bool no_readonly_mem;
    /** Do not enable KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2. */
    bool no_manual_dirty_log;
    /**
     * vCPU pause hooks for VMMs that run their own vCPU loops: @pause
     * returns once no vCPU is inside KVM_RUN (and none re-enters until
     * @resume).  When NULL, vCPUs created with ms_kvm_vcpu_new() are
     * paused by the library.
     */
    int (*pause)(void *opaque);
    void (*resume)(void *opaque);
    void *pause_opaque;
    /** Optional trace hook. */
    ms_kvm_trace_fn trace;
    void *trace_opaque;
    /**
     * Signal used to kick vCPU threads out of KVM_RUN (0: SIGUSR1).  If it
     * has no handler when the first vCPU is created, a no-op handler is
     * installed (process-wide; documented in docs/kvm.md).
     */
    int kick_signal;
};

/**
 * ms_kvm_new() - create the KVM backend of @sys.
 * @cfg: options (NULL for the defaults: open /dev/kvm).
 * @out: receives the backend.
 *
 * Reads the capabilities, enables manual dirty-log protection when
 * offered (unless disabled).  Nothing is registered until ms_kvm_attach().
 *
 * Context: owner thread.
 * Return: 0; -EINVAL for NULL or invalid options; -ENOENT (or the error of
 * open()) when /dev/kvm cannot be opened; -ENOTSUP if the KVM API version
 * is not 12; -ENOMEM; or the error of a KVM ioctl.
 */
MS_EXPORT MS_WUR int ms_kvm_new(ms_system *sys, const struct ms_kvm_config *cfg,
                                ms_kvm **out);

/**
 * ms_kvm_attach() - map @memory into the VM and route ioeventfds.
 * @memory: address space whose RAM becomes memslots and whose ioeventfds
 *          become MMIO ioeventfds.
 * @io:     the I/O-port address space (PIO ioeventfds), or NULL.
 *
 * Registers the listeners (priority 10); the current topology is replayed
 * at once, so regions mapped before this call get their slots now.  Once
 * attached, `info mtree -f` prints " KVM" after ranges a slot covers.
 *
 * Context: owner thread; not from inside a listener callback.
 * Return: 0; -EINVAL for NULL or address spaces of another system; -EBUSY
 * if already attached or from inside a callback; -ENODEV once the system
 * was freed; -ENOMEM; or the first error of the replay (the listeners stay
 * registered; the next commit retries what failed).
 */
MS_EXPORT MS_WUR int ms_kvm_attach(ms_kvm *kvm, ms_as *memory, ms_as *io);

/**
 * ms_kvm_free() - detach (every slot is deleted, every ioeventfd
 * deassigned), then free the backend; closes the VM if it opened it.
 * vCPUs must have been freed first.  NULL is a no-op.
 *
 * Context: owner thread, outside listener callbacks, before
 * ms_system_free() of its system.  If the system is freed first, it
 * detaches the backend then (with a warning) and this only frees it.
 */
MS_EXPORT void ms_kvm_free(ms_kvm *kvm);

/** The VM file descriptor, or -1 when a fake seam is in use. */
MS_EXPORT int ms_kvm_vm_fd(const ms_kvm *kvm);

/** The capabilities in use (after options).  Return: 0; -EINVAL. */
MS_EXPORT MS_WUR int ms_kvm_get_caps(const ms_kvm *kvm,
                                     struct ms_kvm_caps *out);

/** Counters of what the backend did (since ms_kvm_new() or a reset). */
struct ms_kvm_stats {
    uint64_t commits;      /**< listener commits that planned slots */
    uint64_t slot_creates; /**< KVM_SET_USER_MEMORY_REGION creating */
    uint64_t slot_deletes; /**< ... deleting */
    uint64_t slot_updates; /**< ... changing flags in place */
    uint64_t dirty_ioctls; /**< KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG */
    uint64_t ioeventfd_ioctls;
    uint64_t ioctl_errors;
    uint64_t pauses;     /**< commits that paused the vCPUs */
    uint64_t plan_ns;    /**< time in the listener outside ioctls */
    uint64_t ioctl_ns;   /**< time inside ioctls */
    uint64_t pause_ns;   /**< time waiting for vCPUs to pause */
    uint32_t slots_used; /**< live slots now */
    uint32_t slots_max;  /**< slot ids available */
};

/** Read the counters.  Context: owner thread.  Return: 0; -EINVAL. */
MS_EXPORT MS_WUR int ms_kvm_get_stats(const ms_kvm *kvm,
                                      struct ms_kvm_stats *out);

/** Zero the counters (slots_used/max stay).  Context: owner thread. */
MS_EXPORT void ms_kvm_reset_stats(ms_kvm *kvm);

/** Number of live slots.  Context: owner thread. */
MS_EXPORT size_t ms_kvm_nr_slots(const ms_kvm *kvm);

/**
 * ms_kvm_slot() - live slot @i, in ascending guest-address order.
 * Context: owner thread.
 * Return: 0; -EINVAL; -ERANGE if @i is out of bounds.
 */
MS_EXPORT MS_WUR int ms_kvm_slot(const ms_kvm *kvm, size_t i,
                                 struct ms_kvm_memslot *out);

/**
 * ms_kvm_pause() - stop every helper vCPU outside KVM_RUN (nests).
 *
 * Kicks the vCPUs and waits until none is in KVM_RUN; until the matching
 * ms_kvm_resume() none re-enters it.  A vCPU thread may call it from an
 * exit handler (it counts as paused).  Commits use it on their own when a
 * slot whose memory stays mapped must be deleted.  Uses the configured
 * pause hook when there is one.
 *
 * Context: any thread.  Return: 0; -EINVAL; or the pause hook's error.
 */
MS_EXPORT MS_WUR int ms_kvm_pause(ms_kvm *kvm);

/** ms_kvm_resume() - undo one ms_kvm_pause().  Context: any thread. */
MS_EXPORT void ms_kvm_resume(ms_kvm *kvm);

/* ---- vCPU helper ------------------------------------------------------ */

/** Why ms_kvm_vcpu_run() returned. */
enum ms_kvm_exit_kind {
    MS_KVM_EXIT_HLT = 0,  /**< the guest halted */
    MS_KVM_EXIT_KICK,     /**< ms_kvm_vcpu_kick() */
    MS_KVM_EXIT_SHUTDOWN, /**< triple fault or similar */
    MS_KVM_EXIT_SYSTEM_EVENT,
    MS_KVM_EXIT_OTHER, /**< any exit the helper does not route */
};

/** Result of ms_kvm_vcpu_run(). */
struct ms_kvm_exit {
    enum ms_kvm_exit_kind kind;
    uint32_t exit_reason; /**< the kernel's KVM_EXIT_* value */
    uint64_t mmio_exits;  /**< MMIO exits routed during this call */
    uint64_t io_exits;    /**< port I/O exits routed during this call */
};

/**
 * ms_kvm_vcpu_new() - create vCPU @id (KVM_CREATE_VCPU) and map its run
 * structure.  Needs a real VM (not the fake seam) and an attached backend.
 *
 * Context: owner thread.
 * Return: 0; -EINVAL; -ENOTSUP with a fake seam; -EBUSY if not attached;
 * -ENOMEM; or the ioctl's error.
 */
MS_EXPORT MS_WUR int ms_kvm_vcpu_new(ms_kvm *kvm, unsigned id,
                                     ms_kvm_vcpu **out);

/** Close the vCPU (it must not be running).  NULL is a no-op. */
MS_EXPORT void ms_kvm_vcpu_free(ms_kvm_vcpu *v);

/** The vCPU file descriptor (for register set-up with KVM ioctls). */
MS_EXPORT int ms_kvm_vcpu_fd(const ms_kvm_vcpu *v);

/** The vCPU's mapped `struct kvm_run`. */
MS_EXPORT void *ms_kvm_vcpu_run_struct(ms_kvm_vcpu *v);

/**
 * ms_kvm_vcpu_run() - run the vCPU until an exit the helper does not
 * handle itself.
 *
 * KVM_EXIT_MMIO is routed to the memory address space and KVM_EXIT_IO to
 * the I/O address space through the access path (ms_as_read() /
 * ms_as_write(), unspecified attributes); both resume the guest at once.
 * Every other exit, and a kick, returns.  A pause (ms_kvm_pause()) parks
 * the calling thread until the resume and then re-enters the guest.
 *
 * Context: the vCPU's thread (the thread a kick signals); one call at a
 * time per vCPU.
 * Return: 0 and *@out; -EINVAL; or the error of KVM_RUN (other than
 * EINTR/EAGAIN, which are retried or reported as a kick).
 */
MS_EXPORT MS_WUR int ms_kvm_vcpu_run(ms_kvm_vcpu *v, struct ms_kvm_exit *out);

/**
 * ms_kvm_vcpu_kick() - make ms_kvm_vcpu_run() return MS_KVM_EXIT_KICK
 * soon (at once if it is inside KVM_RUN, else at its next entry).
 * Context: any thread.  Return: 0; -EINVAL.
 */
MS_EXPORT int ms_kvm_vcpu_kick(ms_kvm_vcpu *v);

#ifdef __cplusplus
}
#endif

#endif
