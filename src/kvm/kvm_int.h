/* SPDX-License-Identifier: MIT */
/*
 * Private definitions of the KVM backend (src/kvm/).
 *
 * Files:
 *   plan.c      the pure planner (plan.h)
 *   slots.c     the slot table: applying plans, dirty logs, introspection
 *   listener.c  the memory and I/O listeners: what a commit wants
 *   kvm.c       ms_kvm_new/free/attach and the ONLY code calling ioctl()
 *   vcpu.c      the vCPU helper: run loop, exit routing, kick, pause
 *
 * Threading: everything but the vCPU fast path and ms_kvm_pause/resume runs
 * on the system's owner thread (listener callbacks, ms_kvm_* calls).  The
 * pause state (struct ms__kvm_pause) is shared with vCPU threads.
 */
#ifndef MS_KVM_INT_H
#define MS_KVM_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "memspace/as.h"
#include "memspace/kvm.h"
#include "memspace/listener.h"

#include "../internal.h"
#include "plan.h"

/* A live slot and what the backend knows about it. */
struct ms__kvm_live {
    struct ms__kvm_slot s; /* s.key is the ms_region * (referenced) */
    /* Manual dirty-log mode: the bits of the last KVM_GET_DIRTY_LOG. */
    uint64_t *dirty;
};

/* A section collected between begin and commit. */
struct ms__kvm_sec {
    uint64_t gpa, last, offset;
    ms_region *mr;
};

/* The listener on the memory address space. */
struct ms__kvm_mem_listener {
    struct ms_listener l;
    ms_kvm *kvm;
    ms_as *as;
    struct ms__kvm_sec *secs;
    size_t nr_secs, cap_secs;
    bool touched;    /* a region or log callback came since begin */
    bool incomplete; /* a section could not be recorded */
    bool registered;
};

/* The listener on the I/O address space (PIO ioeventfds only). */
struct ms__kvm_io_listener {
    struct ms_listener l;
    ms_kvm *kvm;
    ms_as *as;
    bool registered;
};

/* An ioeventfd registered with the kernel, counted. */
struct ms__kvm_ioev {
    struct ms_kvm_ioeventfd e;
    unsigned refs;
};

struct ms__kvm_vcpu_list;

struct ms_kvm {
    ms_system *sys;      /* NULL once the system was freed first */
    struct ms__dependent dep;

    /* The seam. */
    struct ms_kvm_ops ops;
    void *ops_opaque;
    bool real;   /* ops are the kernel's (kvm.c) */
    int vm_fd;   /* -1 with a fake seam */
    int dev_fd;  /* /dev/kvm, or -1 */
    bool own_vm; /* close vm_fd (and dev_fd) at free */
    struct ms_kvm_caps caps;

    uint64_t page_size;
    uint64_t max_slot_size;
    uint32_t max_slots;

    ms_kvm_trace_fn trace;
    void *trace_opaque;
    int (*pause_hook)(void *opaque);
    void (*resume_hook)(void *opaque);
    void *pause_opaque;
    int kick_signal;

    /* Slot table, ascending gpa. */
    struct ms__kvm_live *slots;
    size_t nr_slots, cap_slots;

    struct ms__kvm_mem_listener mem;
    struct ms__kvm_io_listener io;
    bool attached;

    struct ms__kvm_ioev *ioevs;
    size_t nr_ioevs, cap_ioevs;

    struct ms_kvm_stats stats;

    /* vCPU helper state (vcpu.c). */
    pthread_mutex_t lock;
    pthread_cond_t parked;  /* a vCPU left KVM_RUN while a pause waits */
    pthread_cond_t resumed; /* the pause ended */
    unsigned pause_depth;   /* under lock */
    unsigned pause_req;     /* atomic mirror of pause_depth != 0 */
    struct ms_kvm_vcpu *vcpus;
    bool signal_ready;
};

/* kvm.c: the kernel side of the seam. */
extern const struct ms_kvm_ops ms__kvm_real_ops;
int ms__kvm_open(ms_kvm *kvm, int vm_fd, bool manual_dirty);
void ms__kvm_close(ms_kvm *kvm);
int ms__kvm_create_vcpu(ms_kvm *kvm, unsigned id, int *fd, size_t *mmap_size);
/* One KVM_RUN; 0 or -errno (EINTR not retried). */
int ms__kvm_run(int vcpu_fd);

/* slots.c */
uint64_t ms__kvm_now_ns(void);
int ms__kvm_apply(ms_kvm *kvm, const struct ms__kvm_piece *want,
                  size_t nr_want);
int ms__kvm_sync_range(ms_kvm *kvm, uint64_t gpa, uint64_t last);
int ms__kvm_clear_range(ms_kvm *kvm, uint64_t gpa, uint64_t last);
bool ms__kvm_covered(const ms_kvm *kvm, uint64_t gpa, uint64_t last);
void ms__kvm_slots_drop_all(ms_kvm *kvm);
int ms__kvm_ioeventfd(ms_kvm *kvm, const struct ms_kvm_ioeventfd *e);

/* listener.c */
void ms__kvm_listeners_init(ms_kvm *kvm);
int ms__kvm_listeners_register(ms_kvm *kvm, ms_as *memory, ms_as *io);
void ms__kvm_listeners_unregister(ms_kvm *kvm);

/* vcpu.c */
struct kvm_run;
int ms__kvm_vcpu_state_init(ms_kvm *kvm);
/*
 * Route an MMIO or port I/O exit described by @run (a kvm_run of
 * @run_size bytes) through the access path; 1 if it was one, else 0.
 */
int ms__kvm_route(ms_kvm *kvm, struct kvm_run *run, size_t run_size);
void ms__kvm_vcpu_state_destroy(ms_kvm *kvm);

#endif
