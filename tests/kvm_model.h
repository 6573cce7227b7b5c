/* SPDX-License-Identifier: MIT */
/*
 * A model of the kernel's KVM memslot, dirty-log and ioeventfd rules, and
 * a fake ioctl seam built on it (struct ms_kvm_ops).
 *
 * The rules are those of KVM_SET_USER_MEMORY_REGION, KVM_GET_DIRTY_LOG,
 * KVM_CLEAR_DIRTY_LOG and KVM_IOEVENTFD as documented in the kernel's
 * Documentation/virt/kvm/api.rst and enforced by virt/kvm/kvm_main.c and
 * virt/kvm/eventfd.c, checked in the same order:
 *
 * memslots: flags within LOG_DIRTY_PAGES (| READONLY if offered); address
 * space 0; id below the limit; size, guest address and userspace address
 * page-aligned; no wrap; size 0 deletes an existing slot (EINVAL if none);
 * an existing slot may change its guest address (move) or its flags but
 * not its size, userspace address or READONLY flag (EINVAL); creating or
 * moving onto another slot's guest range is EEXIST; an unchanged request is
 * a no-op.  A slot's dirty bitmap exists while LOG_DIRTY_PAGES is set and
 * starts clean.
 *
 * The model also plays the guest: guest_write() dirties a page or reports
 * an exit, and "holes" are counted: a guest access to a page that is
 * watched (memory that must stay mapped) while no slot maps it and vCPUs
 * are not paused.
 */
#ifndef MS_KVM_MODEL_H
#define MS_KVM_MODEL_H

#include <memspace/memspace.h>
#include <stdbool.h>
#include <stdint.h>

struct kvm_model_slot {
    bool used;
    uint32_t flags;
    uint64_t gpa, size, host;
    uint64_t *dirty; /* kernel bitmap while LOG_DIRTY_PAGES */
};

struct kvm_model_ioev {
    struct ms_kvm_ioeventfd e;
};

struct kvm_model_name {
    uint64_t host, size;
    char name[48];
};

struct kvm_model {
    /* What the "kernel" offers. */
    struct ms_kvm_caps caps;
    uint64_t page;
    uint64_t max_gpa; /* exclusive bound of slot ends (MAXPHYADDR) */

    struct kvm_model_slot *slots; /* caps.nr_memslots entries */
    struct kvm_model_ioev *ioevs;
    size_t nr_ioevs, cap_ioevs;

    /* Request log, one line per call (see kvm_model.c for the format). */
    char *log;
    size_t len, cap;
    bool log_dirty_calls; /* also log GET/CLEAR_DIRTY_LOG (default on) */

    /* Failure injection: fail the Nth set_memslot call (1-based). */
    unsigned fail_set_at;
    int fail_errno;
    unsigned nr_set_calls;

    /* Guest view checks. */
    bool paused;
    unsigned pauses;
    /* Watched host-less ranges: must stay mapped while not paused. */
    struct {
        uint64_t gpa, last;
    } watch[16];
    unsigned nr_watch;
    unsigned holes; /* watched page unmapped while running */

    struct kvm_model_name names[32];
    unsigned nr_names;
};

void kvm_model_init(struct kvm_model *m, uint32_t nr_slots, uint64_t page);
void kvm_model_free(struct kvm_model *m);

/* Give host range [host, host+size) a name for the log. */
void kvm_model_name(struct kvm_model *m, const void *host, uint64_t size,
                    const char *name);

/* The kernel rules; 0 or a negative errno. */
int kvm_model_set_memslot(struct kvm_model *m, const struct ms_kvm_memslot *s);
int kvm_model_get_dirty_log(struct kvm_model *m, uint32_t slot,
                            uint64_t *bitmap);
int kvm_model_clear_dirty_log(struct kvm_model *m, uint32_t slot,
                              uint64_t first_page, uint32_t num_pages,
                              const uint64_t *bitmap);
int kvm_model_ioeventfd(struct kvm_model *m, const struct ms_kvm_ioeventfd *e);

/* The slot mapping @gpa, or NULL. */
const struct kvm_model_slot *kvm_model_lookup(const struct kvm_model *m,
                                              uint64_t gpa);
/*
 * A guest write of one byte at @gpa: 0 if it went to memory (dirtying the
 * page when logged), 1 if it would exit to userspace (no slot or a
 * read-only slot).
 */
int kvm_model_guest_write(struct kvm_model *m, uint64_t gpa);
/* Number of live slots. */
unsigned kvm_model_nr_slots(const struct kvm_model *m);

/* Watch [gpa, last]: count holes there while not paused. */
void kvm_model_watch(struct kvm_model *m, uint64_t gpa, uint64_t last);

/* The log so far, and clear it. */
const char *kvm_model_log(const struct kvm_model *m);
void kvm_model_log_clear(struct kvm_model *m);

/* The fake seam (opaque = struct kvm_model *). */
extern const struct ms_kvm_ops kvm_model_ops;
/* Pause hooks recording pauses in the model (for ms_kvm_config). */
int kvm_model_pause(void *opaque);
void kvm_model_resume(void *opaque);

#endif
