/* SPDX-License-Identifier: MIT */
/*
 * The kernel-rules model and fake ioctl seam (see kvm_model.h).
 *
 * Log format, one line per request:
 *   set SLOT gpa=0xG size=0xS flags=F host=NAME+0xOFF
 *   delete SLOT gpa=0xG
 *   get_dirty_log SLOT
 *   clear_dirty_log SLOT first=F num=N
 *   ioeventfd assign|deassign mmio|pio 0xADDR len=L fd=F [data=0xD]
 *   pause | resume
 * followed by " -> -ERR" when the model refuses it.
 */
#include "kvm_model.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEM_LOG 1u
#define MEM_RO 2u

void kvm_model_init(struct kvm_model *m, uint32_t nr_slots, uint64_t page)
{
    memset(m, 0, sizeof(*m));
    m->caps.nr_memslots = nr_slots;
    m->caps.readonly_mem = true;
    m->caps.ioeventfd = true;
    m->caps.ioeventfd_any_length = true;
    m->caps.manual_dirty_log = false;
    m->page = page;
    m->max_gpa = UINT64_C(1) << 52;
    m->slots = calloc(nr_slots ? nr_slots : 1, sizeof(*m->slots));
    m->log_dirty_calls = true;
    if (!m->slots) {
        abort();
    }
}

void kvm_model_free(struct kvm_model *m)
{
    for (uint32_t i = 0; i < m->caps.nr_memslots; i++) {
        free(m->slots[i].dirty);
    }
    free(m->slots);
    free(m->ioevs);
    free(m->log);
    memset(m, 0, sizeof(*m));
}

void kvm_model_name(struct kvm_model *m, const void *host, uint64_t size,
                    const char *name)
{
    if (m->nr_names < sizeof(m->names) / sizeof(m->names[0])) {
        struct kvm_model_name *n = &m->names[m->nr_names++];
        n->host = (uint64_t)(uintptr_t)host;
        n->size = size;
        snprintf(n->name, sizeof(n->name), "%s", name);
    }
}

static void logf_(struct kvm_model *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void logf_(struct kvm_model *m, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    size_t len = strlen(buf);
    if (m->len + len + 1 > m->cap) {
        size_t ncap = (m->cap + len + 1) * 2;
        char *nl = realloc(m->log, ncap);
        if (!nl) {
            abort();
        }
        m->log = nl;
        m->cap = ncap;
    }
    memcpy(m->log + m->len, buf, len + 1);
    m->len += len;
}

const char *kvm_model_log(const struct kvm_model *m)
{
    return m->log ? m->log : "";
}

void kvm_model_log_clear(struct kvm_model *m)
{
    m->len = 0;
    if (m->log) {
        m->log[0] = 0;
    }
}

static void host_name(const struct kvm_model *m, uint64_t host, char *out,
                      size_t len)
{
    for (unsigned i = 0; i < m->nr_names; i++) {
        const struct kvm_model_name *n = &m->names[i];
        if (host >= n->host && host - n->host < n->size) {
            snprintf(out, len, "%s+0x%" PRIx64, n->name, host - n->host);
            return;
        }
    }
    snprintf(out, len, "0x%" PRIx64, host);
}

static void result(struct kvm_model *m, int rc)
{
    if (rc < 0) {
        logf_(m, " -> -%s\n",
              rc == -EINVAL   ? "EINVAL"
              : rc == -EEXIST ? "EEXIST"
              : rc == -ENOENT ? "ENOENT"
                              : "ERR");
    } else {
        logf_(m, "\n");
    }
}

static uint64_t words_for(uint64_t pages)
{
    return pages / 64 + (pages % 64 != 0);
}

unsigned kvm_model_nr_slots(const struct kvm_model *m)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < m->caps.nr_memslots; i++) {
        n += m->slots[i].used;
    }
    return n;
}

const struct kvm_model_slot *kvm_model_lookup(const struct kvm_model *m,
                                              uint64_t gpa)
{
    for (uint32_t i = 0; i < m->caps.nr_memslots; i++) {
        const struct kvm_model_slot *s = &m->slots[i];
        if (s->used && gpa >= s->gpa && gpa - s->gpa < s->size) {
            return s;
        }
    }
    return NULL;
}

void kvm_model_watch(struct kvm_model *m, uint64_t gpa, uint64_t last)
{
    if (m->nr_watch < sizeof(m->watch) / sizeof(m->watch[0])) {
        m->watch[m->nr_watch].gpa = gpa;
        m->watch[m->nr_watch].last = last;
        m->nr_watch++;
    }
}

/* After every change: a running guest touching a watched page. */
static void check_holes(struct kvm_model *m)
{
    if (m->paused) {
        return;
    }
    for (unsigned w = 0; w < m->nr_watch; w++) {
        for (uint64_t a = m->watch[w].gpa;; a += m->page) {
            if (!kvm_model_lookup(m, a)) {
                m->holes++;
                return;
            }
            if (m->watch[w].last - a < m->page) {
                break;
            }
        }
    }
}

static bool overlaps(uint64_t a, uint64_t asz, uint64_t b, uint64_t bsz)
{
    return a < b + bsz && b < a + asz;
}

int kvm_model_set_memslot(struct kvm_model *m, const struct ms_kvm_memslot *r)
{
    char hn[96];
    host_name(m, r->host, hn, sizeof(hn));
    uint32_t id = r->slot & 0xffff, as_id = r->slot >> 16;
    if (r->size) {
        logf_(m, "set %u gpa=0x%" PRIx64 " size=0x%" PRIx64 " flags=%u host=%s",
              r->slot, r->gpa, r->size, r->flags, hn);
    } else {
        logf_(m, "delete %u gpa=0x%" PRIx64, r->slot, r->gpa);
    }
    m->nr_set_calls++;
    int rc = 0;
    uint32_t valid = MEM_LOG | (m->caps.readonly_mem ? MEM_RO : 0);
    struct kvm_model_slot *old =
        id < m->caps.nr_memslots ? &m->slots[id] : NULL;
    if (m->fail_set_at && m->nr_set_calls == m->fail_set_at) {
        rc = m->fail_errno ? -m->fail_errno : -ENOMEM;
    } else if (r->flags & ~valid) {
        rc = -EINVAL;
    } else if (as_id != 0 || !old) {
        rc = -EINVAL;
    } else if ((r->size & (m->page - 1)) || (r->gpa & (m->page - 1)) ||
               (r->host & (m->page - 1))) {
        rc = -EINVAL;
    } else if (r->gpa + r->size < r->gpa) {
        rc = -EINVAL;
    } else if (r->size == 0) {
        if (!old->used) {
            rc = -EINVAL;
        } else {
            free(old->dirty);
            memset(old, 0, sizeof(*old));
        }
    } else if (r->gpa + r->size > m->max_gpa) {
        rc = -EINVAL;
    } else {
        bool create = !old->used;
        bool move = false;
        if (!create) {
            if (r->host != old->host || r->size != old->size ||
                ((r->flags ^ old->flags) & MEM_RO)) {
                rc = -EINVAL;
            } else if (r->gpa != old->gpa) {
                move = true;
            } else if (r->flags == old->flags) {
                result(m, 0);
                return 0; /* nothing to change */
            }
        }
        if (rc == 0 && (create || move)) {
            for (uint32_t i = 0; i < m->caps.nr_memslots; i++) {
                const struct kvm_model_slot *s = &m->slots[i];
                if (i != id && s->used &&
                    overlaps(s->gpa, s->size, r->gpa, r->size)) {
                    rc = -EEXIST;
                    break;
                }
            }
        }
        if (rc == 0) {
            uint64_t words = words_for(r->size / m->page);
            bool log_now = r->flags & MEM_LOG;
            bool log_before = !create && (old->flags & MEM_LOG);
            if (create || move || !log_now) {
                free(old->dirty);
                old->dirty = NULL;
            }
            if (log_now && (!log_before || move || !old->dirty)) {
                free(old->dirty);
                old->dirty = calloc(words ? words : 1, 8);
                if (!old->dirty) {
                    abort();
                }
            }
            old->used = true;
            old->flags = r->flags;
            old->gpa = r->gpa;
            old->size = r->size;
            old->host = r->host;
        }
    }
    result(m, rc);
    check_holes(m);
    return rc;
}

int kvm_model_get_dirty_log(struct kvm_model *m, uint32_t slot,
                            uint64_t *bitmap)
{
    if (m->log_dirty_calls) {
        logf_(m, "get_dirty_log %u", slot);
    }
    int rc = 0;
    struct kvm_model_slot *s =
        slot < m->caps.nr_memslots ? &m->slots[slot] : NULL;
    if (!s) {
        rc = -EINVAL;
    } else if (!s->used || !s->dirty) {
        rc = -ENOENT;
    } else {
        uint64_t words = words_for(s->size / m->page);
        memcpy(bitmap, s->dirty, words * 8);
        if (!m->caps.manual_dirty_log) {
            memset(s->dirty, 0, words * 8);
        }
    }
    if (m->log_dirty_calls) {
        result(m, rc);
    }
    return rc;
}

int kvm_model_clear_dirty_log(struct kvm_model *m, uint32_t slot,
                              uint64_t first_page, uint32_t num_pages,
                              const uint64_t *bitmap)
{
    if (m->log_dirty_calls) {
        logf_(m, "clear_dirty_log %u first=%" PRIu64 " num=%u", slot,
              first_page, num_pages);
    }
    int rc = 0;
    struct kvm_model_slot *s =
        slot < m->caps.nr_memslots ? &m->slots[slot] : NULL;
    uint64_t npages = s ? s->size / m->page : 0;
    if (!s || (first_page & 63)) {
        rc = -EINVAL;
    } else if (!s->used || !s->dirty) {
        rc = -ENOENT;
    } else if (first_page > npages || num_pages > npages - first_page ||
               (num_pages < npages - first_page && (num_pages & 63))) {
        rc = -EINVAL;
    } else {
        for (uint64_t i = 0; i < num_pages; i++) {
            if (bitmap[i / 64] & (UINT64_C(1) << (i % 64))) {
                uint64_t p = first_page + i;
                s->dirty[p / 64] &= ~(UINT64_C(1) << (p % 64));
            }
        }
    }
    if (m->log_dirty_calls) {
        result(m, rc);
    }
    return rc;
}

static bool ioev_collides(const struct ms_kvm_ioeventfd *a,
                          const struct ms_kvm_ioeventfd *b)
{
    return a->pio == b->pio && a->addr == b->addr &&
           (!a->len || !b->len ||
            (a->len == b->len &&
             (!a->datamatch || !b->datamatch || a->data == b->data)));
}

int kvm_model_ioeventfd(struct kvm_model *m, const struct ms_kvm_ioeventfd *e)
{
    logf_(m, "ioeventfd %s %s 0x%" PRIx64 " len=%u fd=%d",
          e->deassign ? "deassign" : "assign", e->pio ? "pio" : "mmio", e->addr,
          e->len, e->fd);
    if (e->datamatch) {
        logf_(m, " data=0x%" PRIx64, e->data);
    }
    int rc = 0;
    if (e->len != 0 && e->len != 1 && e->len != 2 && e->len != 4 &&
        e->len != 8) {
        rc = -EINVAL;
    } else if (e->len == 0 && (e->datamatch || !m->caps.ioeventfd_any_length)) {
        rc = -EINVAL;
    } else if (e->addr + e->len < e->addr) {
        rc = -EINVAL;
    } else if (e->fd < 0) {
        rc = -EINVAL; /* EBADF really */
    } else if (e->deassign) {
        rc = -ENOENT;
        for (size_t i = 0; i < m->nr_ioevs; i++) {
            const struct ms_kvm_ioeventfd *x = &m->ioevs[i].e;
            if (x->fd == e->fd && x->pio == e->pio && x->addr == e->addr &&
                x->len == e->len && x->datamatch == e->datamatch &&
                (!e->datamatch || x->data == e->data)) {
                memmove(&m->ioevs[i], &m->ioevs[i + 1],
                        (m->nr_ioevs - i - 1) * sizeof(*m->ioevs));
                m->nr_ioevs--;
                rc = 0;
                break;
            }
        }
    } else {
        for (size_t i = 0; i < m->nr_ioevs; i++) {
            if (ioev_collides(&m->ioevs[i].e, e)) {
                rc = -EEXIST;
                break;
            }
        }
        if (rc == 0) {
            if (m->nr_ioevs == m->cap_ioevs) {
                m->cap_ioevs = m->cap_ioevs ? m->cap_ioevs * 2 : 8;
                m->ioevs = realloc(m->ioevs, m->cap_ioevs * sizeof(*m->ioevs));
                if (!m->ioevs) {
                    abort();
                }
            }
            m->ioevs[m->nr_ioevs].e = *e;
            m->ioevs[m->nr_ioevs].e.deassign = false;
            m->nr_ioevs++;
        }
    }
    result(m, rc);
    return rc;
}

int kvm_model_guest_write(struct kvm_model *m, uint64_t gpa)
{
    for (uint32_t i = 0; i < m->caps.nr_memslots; i++) {
        struct kvm_model_slot *s = &m->slots[i];
        if (!s->used || gpa < s->gpa || gpa - s->gpa >= s->size) {
            continue;
        }
        if (s->flags & MEM_RO) {
            return 1;
        }
        if (s->dirty) {
            uint64_t p = (gpa - s->gpa) / m->page;
            s->dirty[p / 64] |= UINT64_C(1) << (p % 64);
        }
        return 0;
    }
    return 1;
}

static int op_get_caps(void *opaque, struct ms_kvm_caps *caps)
{
    *caps = ((struct kvm_model *)opaque)->caps;
    return 0;
}

static int op_set_memslot(void *opaque, const struct ms_kvm_memslot *s)
{
    return kvm_model_set_memslot(opaque, s);
}

static int op_get_dirty_log(void *opaque, uint32_t slot, uint64_t *bitmap)
{
    return kvm_model_get_dirty_log(opaque, slot, bitmap);
}

static int op_clear_dirty_log(void *opaque, uint32_t slot, uint64_t first_page,
                              uint32_t num_pages, const uint64_t *bitmap)
{
    return kvm_model_clear_dirty_log(opaque, slot, first_page, num_pages,
                                     bitmap);
}

static int op_ioeventfd(void *opaque, const struct ms_kvm_ioeventfd *e)
{
    return kvm_model_ioeventfd(opaque, e);
}

const struct ms_kvm_ops kvm_model_ops = {
    .get_caps = op_get_caps,
    .set_memslot = op_set_memslot,
    .get_dirty_log = op_get_dirty_log,
    .clear_dirty_log = op_clear_dirty_log,
    .ioeventfd = op_ioeventfd,
};

int kvm_model_pause(void *opaque)
{
    struct kvm_model *m = opaque;
    logf_(m, "pause\n");
    m->paused = true;
    m->pauses++;
    return 0;
}

void kvm_model_resume(void *opaque)
{
    struct kvm_model *m = opaque;
    logf_(m, "resume\n");
    m->paused = false;
    check_holes(m);
}
