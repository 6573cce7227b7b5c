/* SPDX-License-Identifier: MIT */
/*
 * The vCPU helper: a KVM_RUN loop that routes MMIO and port I/O exits
 * through the access path, with kick and pause.
 *
 * Fast path: one KVM_RUN, one exit handled through ms_as_read/ms_as_write
 * (RCU, no lock), back into the guest.  The only shared state it touches
 * per exit is two atomics (its own in_run flag and the backend's pause
 * request), so routing costs about what a hand-written loop costs.
 *
 * Kick: set the vCPU's kick flag (or the pause request), then store 1 to
 * kvm_run.immediate_exit and signal the thread.  A vCPU inside KVM_RUN is
 * interrupted by the signal (KVM_RUN fails with EINTR); one about to enter
 * sees immediate_exit and KVM_RUN returns at once.  The loop checks the
 * flags before every entry, so no kick is lost.
 *
 * Pause (Dekker-style, all atomics sequentially consistent):
 *   vCPU:   in_run = 1; if (pause_req) { in_run = 0; park; } else KVM_RUN;
 *           in_run = 0; if (pause_req) wake the pauser
 *   pauser: pause_req = 1; kick every vCPU with in_run; wait until no
 *           vCPU has in_run
 * Either the vCPU sees the request before entering, or the pauser sees
 * in_run and waits for the vCPU to leave.  A vCPU thread that pauses from
 * its own exit handler has in_run == 0, so it does not wait for itself.
 * The pauser re-kicks every millisecond while it waits.
 *
 * A vCPU's thread is only signalled while that vCPU is inside
 * ms_kvm_vcpu_run() (in_call, under kvm->lock), so a kick never targets a
 * thread that has gone.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../internal.h"
#include "kvm_int.h"
#include "memspace/access.h"

struct ms_kvm_vcpu {
    ms_kvm *kvm;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    unsigned id;
    pthread_t thread; /* valid while in_call (under kvm->lock) */
    bool in_call;
    unsigned in_run; /* atomic */
    unsigned kick;   /* atomic */
    struct ms_kvm_vcpu *next;
};

#define LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

int ms__kvm_vcpu_state_init(ms_kvm *kvm)
{
    if (pthread_mutex_init(&kvm->lock, NULL) != 0) {
        return -ENOMEM;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&kvm->parked, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&kvm->lock);
        return -ENOMEM;
    }
    if (pthread_cond_init(&kvm->resumed, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_cond_destroy(&kvm->parked);
        pthread_mutex_destroy(&kvm->lock);
        return -ENOMEM;
    }
    pthread_condattr_destroy(&ca);
    return 0;
}

void ms__kvm_vcpu_state_destroy(ms_kvm *kvm)
{
    pthread_cond_destroy(&kvm->resumed);
    pthread_cond_destroy(&kvm->parked);
    pthread_mutex_destroy(&kvm->lock);
}

static void kick_handler(int sig)
{
    (void)sig; /* only there to interrupt KVM_RUN */
}

/* Make sure the kick signal interrupts KVM_RUN instead of killing us. */
static int ensure_signal(ms_kvm *kvm)
{
    if (kvm->signal_ready) {
        return 0;
    }
    struct sigaction old;
    if (sigaction(kvm->kick_signal, NULL, &old) != 0) {
        return -errno;
    }
    bool has_handler =
        (old.sa_flags & SA_SIGINFO)
            ? old.sa_sigaction != NULL
            : (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN);
    if (!has_handler) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = kick_handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must return EINTR */
        if (sigaction(kvm->kick_signal, &sa, NULL) != 0) {
            return -errno;
        }
    }
    kvm->signal_ready = true;
    return 0;
}

/* Under kvm->lock: interrupt @v if it is inside ms_kvm_vcpu_run(). */
static void kick_locked(ms_kvm_vcpu *v)
{
    __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (v->in_call) {
        (void)pthread_kill(v->thread, v->kvm->kick_signal);
    }
}

MS_EXPORT int ms_kvm_vcpu_new(ms_kvm *kvm, unsigned id, ms_kvm_vcpu **out)
{
    if (!kvm || !out) {
        return -EINVAL;
    }
    if (!kvm->real) {
        return -ENOTSUP;
    }
    if (!kvm->attached) {
        return -EBUSY;
    }
    int err = ensure_signal(kvm);
    if (err < 0) {
        return err;
    }
    ms_kvm_vcpu *v = calloc(1, sizeof(*v));
    if (!v) {
        return -ENOMEM;
    }
    err = ms__kvm_create_vcpu(kvm, id, &v->fd, &v->run_size);
    if (err < 0) {
        ms__log(kvm->sys, MS_LOG_ERROR, "KVM_CREATE_VCPU %u failed (errno %d)",
                id, -err);
        free(v);
        return err;
    }
    void *run =
        mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (run == MAP_FAILED) {
        err = -errno;
        close(v->fd);
        free(v);
        return err;
    }
    v->run = run;
    v->kvm = kvm;
    v->id = id;
    pthread_mutex_lock(&kvm->lock);
    v->next = kvm->vcpus;
    kvm->vcpus = v;
    pthread_mutex_unlock(&kvm->lock);
    *out = v;
    return 0;
}

MS_EXPORT void ms_kvm_vcpu_free(ms_kvm_vcpu *v)
{
    if (!v) {
        return;
    }
    ms_kvm *kvm = v->kvm;
    pthread_mutex_lock(&kvm->lock);
    for (ms_kvm_vcpu **pp = &kvm->vcpus; *pp; pp = &(*pp)->next) {
        if (*pp == v) {
            *pp = v->next;
            break;
        }
    }
    pthread_mutex_unlock(&kvm->lock);
    munmap(v->run, v->run_size);
    close(v->fd);
    free(v);
}

MS_EXPORT int ms_kvm_vcpu_fd(const ms_kvm_vcpu *v)
{
    return v ? v->fd : -1;
}

MS_EXPORT void *ms_kvm_vcpu_run_struct(ms_kvm_vcpu *v)
{
    return v ? v->run : NULL;
}

MS_EXPORT int ms_kvm_vcpu_kick(ms_kvm_vcpu *v)
{
    if (!v) {
        return -EINVAL;
    }
    STORE(&v->kick, 1u);
    pthread_mutex_lock(&v->kvm->lock);
    kick_locked(v);
    pthread_mutex_unlock(&v->kvm->lock);
    return 0;
}

/* ---- pause --------------------------------------------------------------- */

MS_EXPORT int ms_kvm_pause(ms_kvm *kvm)
{
    if (!kvm) {
        return -EINVAL;
    }
    if (kvm->pause_hook) {
        return kvm->pause_hook(kvm->pause_opaque);
    }
    pthread_mutex_lock(&kvm->lock);
    kvm->pause_depth++;
    STORE(&kvm->pause_req, 1u);
    for (;;) {
        bool running = false;
        for (ms_kvm_vcpu *v = kvm->vcpus; v; v = v->next) {
            if (LOAD(&v->in_run)) {
                running = true;
                kick_locked(v);
            }
        }
        if (!running) {
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        (void)pthread_cond_timedwait(&kvm->parked, &kvm->lock, &ts);
    }
    pthread_mutex_unlock(&kvm->lock);
    return 0;
}

MS_EXPORT void ms_kvm_resume(ms_kvm *kvm)
{
    if (!kvm) {
        return;
    }
    if (kvm->resume_hook) {
        kvm->resume_hook(kvm->pause_opaque);
        return;
    }
    pthread_mutex_lock(&kvm->lock);
    if (kvm->pause_depth && --kvm->pause_depth == 0) {
        STORE(&kvm->pause_req, 0u);
        pthread_cond_broadcast(&kvm->resumed);
    }
    pthread_mutex_unlock(&kvm->lock);
}

static void park(ms_kvm *kvm)
{
    pthread_mutex_lock(&kvm->lock);
    pthread_cond_broadcast(&kvm->parked);
    while (kvm->pause_depth) {
        pthread_cond_wait(&kvm->resumed, &kvm->lock);
    }
    pthread_mutex_unlock(&kvm->lock);
}

/* ---- exit routing -------------------------------------------------------- */

static void route_mmio(ms_kvm *kvm, struct kvm_run *run)
{
    ms_as *as = kvm->mem.as;
    uint32_t len = run->mmio.len;
    if (len > sizeof(run->mmio.data)) {
        len = sizeof(run->mmio.data);
    }
    if (run->mmio.is_write) {
        (void)ms_as_write(as, run->mmio.phys_addr, MS_ATTRS_UNSPECIFIED,
                          run->mmio.data, len);
    } else {
        (void)ms_as_read(as, run->mmio.phys_addr, MS_ATTRS_UNSPECIFIED,
                         run->mmio.data, len);
    }
}

static void route_io(ms_kvm *kvm, struct kvm_run *run, size_t run_size)
{
    ms_as *as = kvm->io.as;
    uint64_t size = run->io.size;
    uint64_t bytes = size * run->io.count;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    if (run->io.data_offset > run_size || bytes > run_size ||
        run->io.data_offset + bytes > run_size) {
        return; /* malformed: never seen from a real kernel */
    }
    for (uint32_t i = 0; i < run->io.count; i++) {
        uint8_t *p = data + i * size;
        if (!as) {
            if (run->io.direction == KVM_EXIT_IO_IN) {
                memset(p, 0xff, size); /* nothing decodes ports */
            }
            continue;
        }
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            (void)ms_as_write(as, run->io.port, MS_ATTRS_UNSPECIFIED, p, size);
        } else {
            (void)ms_as_read(as, run->io.port, MS_ATTRS_UNSPECIFIED, p, size);
        }
    }
}

int ms__kvm_route(ms_kvm *kvm, struct kvm_run *run, size_t run_size)
{
    switch (run->exit_reason) {
    case KVM_EXIT_MMIO:
        route_mmio(kvm, run);
        return 1;
    case KVM_EXIT_IO:
        route_io(kvm, run, run_size);
        return 1;
    default:
        return 0;
    }
}

static void enter_call(ms_kvm_vcpu *v, bool on)
{
    pthread_mutex_lock(&v->kvm->lock);
    v->in_call = on;
    if (on) {
        v->thread = pthread_self();
    }
    pthread_mutex_unlock(&v->kvm->lock);
}

MS_EXPORT int ms_kvm_vcpu_run(ms_kvm_vcpu *v, struct ms_kvm_exit *out)
{
    if (!v || !out) {
        return -EINVAL;
    }
    ms_kvm *kvm = v->kvm;
    struct kvm_run *run = v->run;
    memset(out, 0, sizeof(*out));
    enter_call(v, true);
    int rc = 0;
    for (;;) {
        if (LOAD(&v->kick)) {
            STORE(&v->kick, 0u);
            out->kind = MS_KVM_EXIT_KICK;
            break;
        }
        STORE(&v->in_run, 1u);
        if (LOAD(&kvm->pause_req)) {
            STORE(&v->in_run, 0u);
            park(kvm);
            continue;
        }
        int err = ms__kvm_run(v->fd);
        STORE(&v->in_run, 0u);
        __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
        if (LOAD(&kvm->pause_req)) {
            pthread_mutex_lock(&kvm->lock);
            pthread_cond_broadcast(&kvm->parked);
            pthread_mutex_unlock(&kvm->lock);
        }
        if (err == -EINTR || err == -EAGAIN) {
            continue; /* kicked or interrupted: the flags say why */
        }
        if (err < 0) {
            ms__log(kvm->sys, MS_LOG_ERROR,
                    "KVM_RUN of vCPU %u failed (errno %d)", v->id, -err);
            rc = err;
            break;
        }
        out->exit_reason = run->exit_reason;
        if (ms__kvm_route(kvm, run, v->run_size)) {
            if (run->exit_reason == KVM_EXIT_MMIO) {
                out->mmio_exits++;
            } else {
                out->io_exits++;
            }
            continue;
        }
        switch (run->exit_reason) {
        case KVM_EXIT_INTR:
            continue;
        case KVM_EXIT_HLT:
            out->kind = MS_KVM_EXIT_HLT;
            break;
        case KVM_EXIT_SHUTDOWN:
            out->kind = MS_KVM_EXIT_SHUTDOWN;
            break;
        case KVM_EXIT_SYSTEM_EVENT:
            out->kind = MS_KVM_EXIT_SYSTEM_EVENT;
            break;
        default:
            out->kind = MS_KVM_EXIT_OTHER;
            break;
        }
        break;
    }
    enter_call(v, false);
    return rc;
}
