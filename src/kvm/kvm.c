/* SPDX-License-Identifier: MIT */
/*
 * The KVM backend object, and the only code in memspace that calls ioctl().
 *
 * Everything the backend asks of the kernel goes through struct
 * ms_kvm_ops; ms__kvm_real_ops below is the kernel's implementation, a
 * thin translation to the KVM API (Documentation/virt/kvm/api.rst):
 * KVM_SET_USER_MEMORY_REGION, KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG,
 * KVM_IOEVENTFD, plus VM and vCPU creation and KVM_RUN for the helper.
 * Every ioctl's result is checked; EINTR (and a bounded number of EAGAIN)
 * are retried, except for KVM_RUN, where EINTR means "kicked".
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../internal.h"
#include "kvm_int.h"

#define KVM_API_EXPECTED 12
#define EAGAIN_RETRIES 1000

/*
 * Guest-physical pages KVM needs for itself on Intel hosts without
 * unrestricted-guest support (set when the library creates the VM; the
 * guest must not put RAM there).  The same places QEMU uses on a PC.
 */
#define X86_IDENTITY_MAP_GPA 0xfeffc000ull
#define X86_TSS_GPA 0xfeffd000ull

static int xioctl(int fd, unsigned long req, void *arg)
{
    unsigned again = 0;
    for (;;) {
        int r = ioctl(fd, req, arg);
        if (r >= 0) {
            return r;
        }
        if (errno == EINTR || (errno == EAGAIN && again++ < EAGAIN_RETRIES)) {
            continue;
        }
        return -errno;
    }
}

static int xioctl_val(int fd, unsigned long req, unsigned long val)
{
    for (;;) {
        int r = ioctl(fd, req, val);
        if (r >= 0) {
            return r;
        }
        if (errno == EINTR) {
            continue;
        }
        return -errno;
    }
}

static int check_ext(int fd, long cap)
{
    int r = xioctl_val(fd, KVM_CHECK_EXTENSION, (unsigned long)cap);
    return r < 0 ? 0 : r;
}

/* ---- the seam, kernel side ----------------------------------------------- */

static int real_get_caps(void *opaque, struct ms_kvm_caps *caps)
{
    const ms_kvm *kvm = opaque;
    *caps = kvm->caps;
    return 0;
}

static int real_set_memslot(void *opaque, const struct ms_kvm_memslot *s)
{
    const ms_kvm *kvm = opaque;
    struct kvm_userspace_memory_region r = {
        .slot = s->slot,
        .flags = s->flags,
        .guest_phys_addr = s->gpa,
        .memory_size = s->size,
        .userspace_addr = s->host,
    };
    int rc = xioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
    return rc < 0 ? rc : 0;
}

static int real_get_dirty_log(void *opaque, uint32_t slot, uint64_t *bitmap)
{
    const ms_kvm *kvm = opaque;
    struct kvm_dirty_log d = {.slot = slot, .dirty_bitmap = bitmap};
    int rc = xioctl(kvm->vm_fd, KVM_GET_DIRTY_LOG, &d);
    return rc < 0 ? rc : 0;
}

static int real_clear_dirty_log(void *opaque, uint32_t slot,
                                uint64_t first_page, uint32_t num_pages,
                                const uint64_t *bitmap)
{
    const ms_kvm *kvm = opaque;
    struct kvm_clear_dirty_log d = {
        .slot = slot,
        .num_pages = num_pages,
        .first_page = first_page,
        .dirty_bitmap = (void *)(uintptr_t)bitmap,
    };
    int rc = xioctl(kvm->vm_fd, KVM_CLEAR_DIRTY_LOG, &d);
    return rc < 0 ? rc : 0;
}

static int real_ioeventfd(void *opaque, const struct ms_kvm_ioeventfd *e)
{
    const ms_kvm *kvm = opaque;
    struct kvm_ioeventfd k = {
        .datamatch = e->datamatch ? e->data : 0,
        .addr = e->addr,
        .len = e->len,
        .fd = e->fd,
        .flags = (e->datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0u) |
                 (e->pio ? KVM_IOEVENTFD_FLAG_PIO : 0u) |
                 (e->deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0u),
    };
    int rc = xioctl(kvm->vm_fd, KVM_IOEVENTFD, &k);
    return rc < 0 ? rc : 0;
}

const struct ms_kvm_ops ms__kvm_real_ops = {
    .get_caps = real_get_caps,
    .set_memslot = real_set_memslot,
    .get_dirty_log = real_get_dirty_log,
    .clear_dirty_log = real_clear_dirty_log,
    .ioeventfd = real_ioeventfd,
};

static int open_dev(int *out)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int v = xioctl_val(fd, KVM_GET_API_VERSION, 0);
    if (v != KVM_API_EXPECTED) {
        close(fd);
        return v < 0 ? v : -ENOTSUP;
    }
    *out = fd;
    return 0;
}

/* x86: reserve KVM's own pages before any vCPU exists (see above). */
static int x86_vm_setup(ms_kvm *kvm)
{
#if defined(__x86_64__) || defined(__i386__)
    if (check_ext(kvm->vm_fd, KVM_CAP_SET_IDENTITY_MAP_ADDR)) {
        uint64_t base = X86_IDENTITY_MAP_GPA;
        int rc = xioctl(kvm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &base);
        if (rc < 0) {
            ms__log(kvm->sys, MS_LOG_ERROR,
                    "KVM_SET_IDENTITY_MAP_ADDR failed (errno %d)", -rc);
            return rc;
        }
    }
    int rc = xioctl_val(kvm->vm_fd, KVM_SET_TSS_ADDR, X86_TSS_GPA);
    if (rc < 0) {
        ms__log(kvm->sys, MS_LOG_ERROR, "KVM_SET_TSS_ADDR failed (errno %d)",
                -rc);
        return rc;
    }
#else
    (void)kvm;
#endif
    return 0;
}

int ms__kvm_open(ms_kvm *kvm, int vm_fd, bool manual_dirty)
{
    int err;
    kvm->dev_fd = -1;
    if (vm_fd > 0) {
        kvm->vm_fd = vm_fd;
        kvm->own_vm = false;
    } else {
        err = open_dev(&kvm->dev_fd);
        if (err < 0) {
            return err;
        }
        int fd;
        do {
            fd = ioctl(kvm->dev_fd, KVM_CREATE_VM, 0UL);
        } while (fd < 0 && errno == EINTR);
        if (fd < 0) {
            err = -errno;
            ms__log(kvm->sys, MS_LOG_ERROR, "KVM_CREATE_VM failed (errno %d)",
                    -err);
            close(kvm->dev_fd);
            kvm->dev_fd = -1;
            return err;
        }
        kvm->vm_fd = fd;
        kvm->own_vm = true;
        err = x86_vm_setup(kvm);
        if (err < 0) {
            ms__kvm_close(kvm);
            return err;
        }
    }
    struct ms_kvm_caps *c = &kvm->caps;
    int n = check_ext(kvm->vm_fd, KVM_CAP_NR_MEMSLOTS);
    c->nr_memslots = n > 0 ? (uint32_t)n : 32;
    c->readonly_mem = check_ext(kvm->vm_fd, KVM_CAP_READONLY_MEM) > 0;
    c->ioeventfd = check_ext(kvm->vm_fd, KVM_CAP_IOEVENTFD) > 0;
    c->ioeventfd_any_length =
        check_ext(kvm->vm_fd, KVM_CAP_IOEVENTFD_ANY_LENGTH) > 0;
    c->manual_dirty_log = false;
    int manual = check_ext(kvm->vm_fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
    if (manual_dirty && (manual & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)) {
        /* Not KVM_DIRTY_LOG_INITIALLY_SET: a new log starts clean. */
        struct kvm_enable_cap cap = {
            .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
            .args = {KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE},
        };
        int rc = xioctl(kvm->vm_fd, KVM_ENABLE_CAP, &cap);
        if (rc == 0) {
            c->manual_dirty_log = true;
        } else {
            ms__log(kvm->sys, MS_LOG_WARN,
                    "KVM: enabling manual dirty-log protection failed "
                    "(errno %d); using plain KVM_GET_DIRTY_LOG",
                    -rc);
        }
    }
    return 0;
}

void ms__kvm_close(ms_kvm *kvm)
{
    if (kvm->own_vm && kvm->vm_fd >= 0) {
        close(kvm->vm_fd);
    }
    if (kvm->dev_fd >= 0) {
        close(kvm->dev_fd);
    }
    kvm->vm_fd = -1;
    kvm->dev_fd = -1;
}

int ms__kvm_create_vcpu(ms_kvm *kvm, unsigned id, int *fd, size_t *mmap_size)
{
    int dev = kvm->dev_fd;
    int err;
    if (dev < 0) {
        err = open_dev(&dev);
        if (err < 0) {
            return err;
        }
    }
    int size = xioctl_val(dev, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (dev != kvm->dev_fd) {
        close(dev);
    }
    if (size < 0) {
        return size;
    }
    if ((size_t)size < sizeof(struct kvm_run)) {
        return -EINVAL;
    }
    int v = xioctl_val(kvm->vm_fd, KVM_CREATE_VCPU, id);
    if (v < 0) {
        return v;
    }
    (void)fcntl(v, F_SETFD, FD_CLOEXEC);
    *fd = v;
    *mmap_size = (size_t)size;
    return 0;
}

int ms__kvm_run(int vcpu_fd)
{
    return ioctl(vcpu_fd, KVM_RUN, 0UL) < 0 ? -errno : 0;
}

/* ---- the object ---------------------------------------------------------- */

/*
 * The system is being freed before the backend: detach now (slots
 * deleted, ioeventfds deassigned, as ms_kvm_free() would), while the
 * system still exists, and keep only what ms_kvm_free() needs.
 */
static void kvm_system_gone(struct ms__dependent *d)
{
    ms_kvm *kvm = (ms_kvm *)((char *)d - offsetof(ms_kvm, dep));
    ms__log(kvm->sys, MS_LOG_WARN,
            "system freed before its KVM backend: the backend is detached "
            "(call ms_kvm_free() before ms_system_free())");
    ms__kvm_listeners_unregister(kvm);
    ms__kvm_slots_drop_all(kvm);
    kvm->attached = false;
    kvm->mem.as = NULL;
    kvm->io.as = NULL;
    kvm->sys = NULL;
}

MS_EXPORT int ms_kvm_new(ms_system *sys, const struct ms_kvm_config *cfg,
                         ms_kvm **out)
{
    static const struct ms_kvm_config defaults;
    if (!sys || !out) {
        return -EINVAL;
    }
    if (!cfg) {
        cfg = &defaults;
    }
    long sys_page = sysconf(_SC_PAGESIZE);
    uint64_t page = cfg->host_page_size
                        ? cfg->host_page_size
                        : (uint64_t)(sys_page > 0 ? sys_page : 4096);
    if (page < 512 || (page & (page - 1)) != 0 ||
        cfg->max_slot_size % page != 0 || cfg->vm_fd < 0 ||
        (!cfg->pause != !cfg->resume) || cfg->kick_signal < 0 ||
        cfg->kick_signal >= NSIG ||
        (cfg->ops && (!cfg->ops->get_caps || !cfg->ops->set_memslot ||
                      !cfg->ops->get_dirty_log || !cfg->ops->clear_dirty_log ||
                      !cfg->ops->ioeventfd))) {
        return -EINVAL;
    }
    ms_kvm *kvm = calloc(1, sizeof(*kvm));
    if (!kvm) {
        return -ENOMEM;
    }
    kvm->sys = sys;
    kvm->vm_fd = -1;
    kvm->dev_fd = -1;
    kvm->page_size = page;
    kvm->max_slot_size = cfg->max_slot_size;
    kvm->trace = cfg->trace;
    kvm->trace_opaque = cfg->trace_opaque;
    kvm->pause_hook = cfg->pause;
    kvm->resume_hook = cfg->resume;
    kvm->pause_opaque = cfg->pause_opaque;
    kvm->kick_signal = cfg->kick_signal ? cfg->kick_signal : SIGUSR1;
    int err = ms__kvm_vcpu_state_init(kvm);
    if (err < 0) {
        free(kvm);
        return err;
    }
    if (cfg->ops) {
        kvm->ops = *cfg->ops;
        kvm->ops_opaque = cfg->ops_opaque;
        err = kvm->ops.get_caps(kvm->ops_opaque, &kvm->caps);
        if (err == 0 && kvm->caps.nr_memslots == 0) {
            kvm->caps.nr_memslots = 32;
        }
        if (cfg->no_manual_dirty_log) {
            kvm->caps.manual_dirty_log = false;
        }
    } else {
        kvm->ops = ms__kvm_real_ops;
        kvm->ops_opaque = kvm;
        kvm->real = true;
        err = ms__kvm_open(kvm, cfg->vm_fd, !cfg->no_manual_dirty_log);
    }
    if (err < 0) {
        ms__kvm_vcpu_state_destroy(kvm);
        free(kvm);
        return err;
    }
    if (cfg->no_readonly_mem) {
        kvm->caps.readonly_mem = false;
    }
    uint32_t limit = kvm->caps.nr_memslots;
    if (limit > 32768) {
        limit = 32768; /* ids are 15 bits in every kernel */
    }
    if (cfg->max_slots && cfg->max_slots < limit) {
        limit = cfg->max_slots;
    }
    kvm->max_slots = limit;
    ms__kvm_listeners_init(kvm);
    kvm->dep.system_gone = kvm_system_gone;
    ms__dependent_add(sys, &kvm->dep);
    *out = kvm;
    return 0;
}

MS_EXPORT int ms_kvm_attach(ms_kvm *kvm, ms_as *memory, ms_as *io)
{
    if (kvm && !kvm->sys) {
        return -ENODEV; /* its system is gone */
    }
    if (!kvm || !memory || ms_as_system(memory) != kvm->sys ||
        (io && (ms_as_system(io) != kvm->sys || io == memory))) {
        return -EINVAL;
    }
    if (kvm->attached || ms__busy(kvm->sys)) {
        return -EBUSY;
    }
    int err = ms__kvm_listeners_register(kvm, memory, io);
    if (kvm->mem.registered) {
        kvm->attached = true;
    }
    return err;
}

MS_EXPORT void ms_kvm_free(ms_kvm *kvm)
{
    if (!kvm) {
        return;
    }
    if (kvm->vcpus) {
        ms__log(kvm->sys, MS_LOG_ERROR,
                "ms_kvm_free: vCPUs still exist; freeing them");
        while (kvm->vcpus) {
            ms_kvm_vcpu_free(kvm->vcpus);
        }
    }
    ms__kvm_listeners_unregister(kvm);
    ms__kvm_slots_drop_all(kvm);
    if (kvm->sys) {
        ms__dependent_del(kvm->sys, &kvm->dep);
    }
    if (kvm->real) {
        ms__kvm_close(kvm);
    }
    ms__kvm_vcpu_state_destroy(kvm);
    free(kvm);
}

MS_EXPORT int ms_kvm_vm_fd(const ms_kvm *kvm)
{
    return kvm && kvm->real ? kvm->vm_fd : -1;
}

MS_EXPORT int ms_kvm_get_caps(const ms_kvm *kvm, struct ms_kvm_caps *out)
{
    if (!kvm || !out) {
        return -EINVAL;
    }
    *out = kvm->caps;
    out->nr_memslots = kvm->max_slots;
    return 0;
}
