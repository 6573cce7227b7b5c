/* SPDX-License-Identifier: MIT */
/*
 * Regions: kinds, RAM blocks, tree edits, properties and reference counts.
 *
 * Invariants kept here:
 * - A region has at most one container; the container's subregion list is
 *   sorted by priority, highest first, and among equal priorities the most
 *   recently inserted first (insert before the first sibling whose priority
 *   is <= the new one).
 * - The graph made of subregion edges and alias edges never has a cycle
 *   (checked on every insertion), so rendering and printing terminate.
 * - mapped_via_alias of a region counts the mapped regions whose alias
 *   chain passes through it.
 * - Every edit raises the pending flag exactly as docs/model.md's table says
 *   and runs inside its own begin/commit pair.
 *
 * Expected workload: thousands to a few hundred thousand regions, edited
 * from one thread; sibling insertion is O(siblings of higher priority).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/* Refcounts may be touched by DMA maps on other threads. */
static void ref_inc(ms_region *r)
{
    __atomic_add_fetch(&r->refcnt, 1, __ATOMIC_RELAXED);
}

static bool ref_dec(ms_region *r)
{
    return __atomic_sub_fetch(&r->refcnt, 1, __ATOMIC_ACQ_REL) == 0;
}

uint64_t ms__region_last(const ms_region *r)
{
    return ms__size_last(r->size);
}

static bool kind_has_block(enum ms_region_kind k)
{
    return k == MS_REGION_RAM || k == MS_REGION_ROM ||
           k == MS_REGION_ROM_DEVICE || k == MS_REGION_RAM_DEVICE;
}

static size_t host_page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static int alloc_block(ms_region *r, const struct ms_region_config *cfg)
{
    size_t page = host_page_size();
    uint64_t len = (cfg->size + page - 1) & ~(uint64_t)(page - 1);
    void *p;

    switch (cfg->backing) {
    case MS_RAM_HOST:
        r->host = cfg->host;
        r->map_len = 0;
        break;
    case MS_RAM_ANON:
        p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            return -errno;
        }
        r->host = p;
        r->map_len = len;
        break;
    case MS_RAM_FD:
        p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 cfg->shared ? MAP_SHARED : MAP_PRIVATE, cfg->fd,
                 (off_t)cfg->fd_offset);
        if (p == MAP_FAILED) {
            return -errno;
        }
        r->host = p;
        r->map_len = len;
        break;
    }
    r->backing = cfg->backing;
    r->block_size = cfg->size;
    int err = ms__dirty_init(r);
    if (err < 0 && r->map_len) {
        munmap(r->host, r->map_len);
    }
    return err;
}

static int check_config(ms_system *sys, const struct ms_region_config *cfg)
{
    if (!cfg->name || !cfg->name[0]) {
        ms__log(sys, MS_LOG_ERROR, "region created without a name");
        return -EINVAL;
    }
    if ((unsigned)cfg->kind > MS_REGION_IOMMU) {
        ms__log(sys, MS_LOG_ERROR, "region '%s': unknown kind %d", cfg->name,
                (int)cfg->kind);
        return -EINVAL;
    }
    if (kind_has_block(cfg->kind)) {
        if (cfg->size == 0 || cfg->size > (UINT64_C(1) << 63)) {
            ms__log(sys, MS_LOG_ERROR,
                    "region '%s': a RAM block needs 1 to 2^63 bytes",
                    cfg->name);
            return -EINVAL;
        }
        if ((unsigned)cfg->backing > MS_RAM_FD) {
            return -EINVAL;
        }
        if (cfg->backing == MS_RAM_HOST && !cfg->host) {
            ms__log(sys, MS_LOG_ERROR, "region '%s': no host pointer",
                    cfg->name);
            return -EINVAL;
        }
        if (cfg->backing == MS_RAM_FD && cfg->fd < 0) {
            ms__log(sys, MS_LOG_ERROR, "region '%s': invalid fd %d",
                    cfg->name, cfg->fd);
            return -EINVAL;
        }
    }
    if ((cfg->kind == MS_REGION_IO || cfg->kind == MS_REGION_ROM_DEVICE) &&
        !cfg->ops) {
        ms__log(sys, MS_LOG_ERROR,
                "region '%s': I/O regions and ROM devices need ops "
                "(use MS_REGION_RESERVATION for a region without them)",
                cfg->name);
        return -EINVAL;
    }
    if (cfg->kind == MS_REGION_IOMMU &&
        (!cfg->iommu_ops || !cfg->iommu_ops->translate)) {
        ms__log(sys, MS_LOG_ERROR,
                "IOMMU region '%s' needs iommu_ops with a translate callback",
                cfg->name);
        return -EINVAL;
    }
    if (cfg->kind == MS_REGION_ALIAS) {
        if (!cfg->alias_target) {
            ms__log(sys, MS_LOG_ERROR, "alias '%s' has no target",
                    cfg->name);
            return -EINVAL;
        }
        if (cfg->alias_target->sys != sys) {
            ms__log(sys, MS_LOG_ERROR,
                    "alias '%s': target '%s' belongs to another system",
                    cfg->name, cfg->alias_target->name);
            return -EXDEV;
        }
        if (!ms__window_fits(cfg->alias_offset, cfg->size,
                             cfg->alias_target->size)) {
            ms__log(sys, MS_LOG_ERROR,
                    "alias '%s': window leaves its target '%s'", cfg->name,
                    cfg->alias_target->name);
            return -ERANGE;
        }
    }
    return 0;
}

MS_EXPORT int ms_region_new(ms_system *sys,
                            const struct ms_region_config *cfg,
                            ms_region **out)
{
    if (!sys || !cfg || !out) {
        return -EINVAL;
    }
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    int err = check_config(sys, cfg);
    if (err < 0) {
        return err;
    }
    if (sys->zombies) {
        ms__region_reap(sys);
    }
    ms_region *r = calloc(1, sizeof(*r));
    if (!r) {
        return -ENOMEM;
    }
    r->name = ms__strdup(cfg->name);
    r->owner = cfg->owner ? ms__strdup(cfg->owner) : NULL;
    if (!r->name || (cfg->owner && !r->owner)) {
        free(r->name);
        free(r->owner);
        free(r);
        return -ENOMEM;
    }
    r->sys = sys;
    r->refcnt = 1;
    r->kind = cfg->kind;
    r->size = cfg->size;
    r->enabled = !cfg->disabled;
    r->readonly = cfg->readonly || cfg->kind == MS_REGION_ROM;
    r->nonvolatile = cfg->nonvolatile;
    r->romd_mode = !cfg->romd_off;
    r->has_block = kind_has_block(cfg->kind);
    r->ram = cfg->kind == MS_REGION_RAM || cfg->kind == MS_REGION_ROM ||
             cfg->kind == MS_REGION_RAM_DEVICE;
    r->terminates =
        cfg->kind != MS_REGION_CONTAINER && cfg->kind != MS_REGION_ALIAS;
    if (cfg->kind == MS_REGION_IO || cfg->kind == MS_REGION_ROM_DEVICE) {
        r->ops = cfg->ops;
        r->opaque = cfg->opaque;
    } else if (cfg->kind == MS_REGION_IOMMU) {
        r->iommu_ops = cfg->iommu_ops;
        r->opaque = cfg->opaque;
    }
    /* Re-entrancy guard key (access.c): device, else opaque, else self. */
    r->guard_key = cfg->device ? cfg->device
                               : cfg->opaque ? cfg->opaque : (void *)r;
    r->guard_off = cfg->reentrant;
    if (r->has_block) {
        err = alloc_block(r, cfg);
        if (err < 0) {
            ms__log(sys, MS_LOG_ERROR,
                    "region '%s': cannot map its RAM block (errno %d)",
                    cfg->name, -err);
            free(r->name);
            free(r->owner);
            free(r);
            return err;
        }
    }
    if (cfg->kind == MS_REGION_ALIAS) {
        r->alias = ms_region_ref(cfg->alias_target);
        r->alias_offset = cfg->alias_offset;
    }
    r->sys_prev = sys->reg_last;
    if (sys->reg_last) {
        sys->reg_last->sys_next = r;
    } else {
        sys->reg_first = r;
    }
    sys->reg_last = r;
    sys->nr_regions++;
    *out = r;
    return 0;
}

/* Release everything a region owns except other regions. */
static void region_release_storage(ms_region *r)
{
    if (r->map_len) {
        munmap(r->host, r->map_len);
    }
    ms__dirty_free(r);
    ms__region_ioeventfds_free(r);
    free(r->coalesced);
    free(r->name);
    free(r->owner);
}

static void region_unlink_sys(ms_region *r)
{
    ms_system *sys = r->sys;
    if (r->sys_prev) {
        r->sys_prev->sys_next = r->sys_next;
    } else {
        sys->reg_first = r->sys_next;
    }
    if (r->sys_next) {
        r->sys_next->sys_prev = r->sys_prev;
    } else {
        sys->reg_last = r->sys_prev;
    }
    sys->nr_regions--;
}

static void alias_chain_adjust(ms_region *sub, int delta)
{
    for (ms_region *a = sub->alias; a; a = a->alias) {
        a->mapped_via_alias += (unsigned)delta;
    }
}

static void list_unlink(ms_region *c, ms_region *sub)
{
    if (sub->sib_prev) {
        sub->sib_prev->sib_next = sub->sib_next;
    } else {
        c->sub_first = sub->sib_next;
    }
    if (sub->sib_next) {
        sub->sib_next->sib_prev = sub->sib_prev;
    } else {
        c->sub_last = sub->sib_prev;
    }
    sub->sib_prev = sub->sib_next = NULL;
    c->nr_subregions--;
}

static void list_insert(ms_region *c, ms_region *sub)
{
    ms_region *pos = c->sub_first;
    while (pos && pos->priority > sub->priority) {
        pos = pos->sib_next;
    }
    sub->sib_next = pos;
    if (pos) {
        sub->sib_prev = pos->sib_prev;
        if (pos->sib_prev) {
            pos->sib_prev->sib_next = sub;
        } else {
            c->sub_first = sub;
        }
        pos->sib_prev = sub;
    } else {
        sub->sib_prev = c->sub_last;
        if (c->sub_last) {
            c->sub_last->sib_next = sub;
        } else {
            c->sub_first = sub;
        }
        c->sub_last = sub;
    }
    c->nr_subregions++;
}

static void region_destroy(ms_region *r)
{
    /*
     * Unreferenced: not in a container, not an AS root, shown by no view,
     * not an alias target.  Removing its children changes no view.
     */
    while (r->sub_first) {
        ms_region *sub = r->sub_first;
        list_unlink(r, sub);
        sub->container = NULL;
        alias_chain_adjust(sub, -1);
        ms_region_unref(sub);
    }
    ms_region *target = r->alias;
    region_unlink_sys(r);
    if (__atomic_load_n(&r->pins, __ATOMIC_ACQUIRE)) {
        /*
         * A DMA mapping (access.c) still uses the RAM block: keep it and
         * the struct until ms__region_reap() sees the pins gone.  No view
         * shows the region any more, so no new pin can be taken.
         */
        r->zombie_next = r->sys->zombies;
        r->sys->zombies = r;
    } else {
        region_release_storage(r);
        free(r);
    }
    ms_region_unref(target);
}

void ms__region_reap(ms_system *sys)
{
    ms_region **pp = &sys->zombies;
    while (*pp) {
        ms_region *r = *pp;
        if (__atomic_load_n(&r->pins, __ATOMIC_ACQUIRE)) {
            pp = &r->zombie_next;
            continue;
        }
        *pp = r->zombie_next;
        region_release_storage(r);
        free(r);
    }
}

MS_EXPORT ms_region *ms_region_ref(ms_region *r)
{
    if (r) {
        ref_inc(r);
    }
    return r;
}

MS_EXPORT void ms_region_unref(ms_region *r)
{
    if (!r || r->dying) {
        return;
    }
    ms_system *sys = r->sys;
    if (ref_dec(r)) {
        region_destroy(r);
    }
    if (sys->zombies) {
        ms__region_reap(sys);
    }
}

void ms__region_free_all(ms_system *sys)
{
    /*
     * Count the references that are not held by other regions of the
     * system: those are the caller's (address spaces and views are gone).
     */
    size_t held = 0;
    for (ms_region *r = sys->reg_first; r; r = r->sys_next) {
        r->walk_gen = 0;
    }
    for (ms_region *r = sys->reg_first; r; r = r->sys_next) {
        if (r->alias) {
            r->alias->walk_gen++;
        }
    }
    for (ms_region *r = sys->reg_first; r; r = r->sys_next) {
        unsigned long internal = (r->container ? 1 : 0) + r->walk_gen;
        if (r->refcnt > internal) {
            held++;
        }
        r->dying = true;
    }
    if (held) {
        ms__log(sys, MS_LOG_WARN,
                "system freed while the caller still held references to "
                "%zu region(s); they are freed too",
                held);
    }
    while (sys->reg_first) {
        ms_region *r = sys->reg_first;
        region_unlink_sys(r);
        region_release_storage(r);
        free(r);
    }
    ms__region_reap(sys);
    if (sys->zombies) {
        ms__log(sys, MS_LOG_WARN,
                "system freed with DMA mappings still outstanding; their "
                "memory is released anyway");
    }
    while (sys->zombies) {
        ms_region *r = sys->zombies;
        sys->zombies = r->zombie_next;
        region_release_storage(r);
        free(r);
    }
}

/*
 * Is @target reachable from @from through subregion or alias edges?
 * Iterative DFS, marks by generation.  -ENOMEM on allocation failure.
 */
static int reaches(ms_system *sys, ms_region *from, ms_region *target)
{
    uint64_t gen = ++sys->walk_gen;
    size_t cap = 64, n = 0;
    ms_region **stack = malloc(cap * sizeof(*stack));
    if (!stack) {
        return -ENOMEM;
    }
    stack[n++] = from;
    from->walk_gen = gen;
    int found = 0;
    while (n && !found) {
        ms_region *r = stack[--n];
        if (r == target) {
            found = 1;
            break;
        }
        /* Room for all children and the alias target. */
        if (n + r->nr_subregions + 1 > cap) {
            size_t ncap = (n + r->nr_subregions + 1) * 2;
            ms_region **ns = realloc(stack, ncap * sizeof(*stack));
            if (!ns) {
                free(stack);
                return -ENOMEM;
            }
            stack = ns;
            cap = ncap;
        }
        if (r->alias && r->alias->walk_gen != gen) {
            r->alias->walk_gen = gen;
            stack[n++] = r->alias;
        }
        for (ms_region *s = r->sub_first; s; s = s->sib_next) {
            if (s->walk_gen != gen) {
                s->walk_gen = gen;
                stack[n++] = s;
            }
        }
    }
    free(stack);
    return found;
}

/*
 * The root of a view is placed at its own offset, whatever its container
 * (docs/model.md 2.2, top-level call), so moving a flat-view root changes
 * that view even when the container is disabled or absent.  QEMU leaves
 * the view stale then; memspace re-renders.
 */
static bool offset_is_visible(const ms_region *r)
{
    return r->enabled && r->fv_root_views > 0;
}

static void do_add(ms_region *c, uint64_t offset, ms_region *sub,
                   int32_t priority)
{
    ms_system *sys = c->sys;
    sub->container = c;
    sub->addr = offset;
    sub->priority = priority;
    alias_chain_adjust(sub, +1);
    ms_region_ref(sub);
    list_insert(c, sub);
    if ((c->enabled && sub->enabled) || offset_is_visible(sub)) {
        sys->topology_pending = true;
    }
}

/* The caller keeps a reference on @sub across this call if it needs it. */
static void do_del(ms_region *c, ms_region *sub)
{
    ms_system *sys = c->sys;
    sub->container = NULL;
    alias_chain_adjust(sub, -1);
    list_unlink(c, sub);
    if ((c->enabled && sub->enabled) || offset_is_visible(sub)) {
        sys->topology_pending = true;
    }
    ms_region_unref(sub);
}

MS_EXPORT int ms_region_add(ms_region *container, uint64_t offset,
                            ms_region *sub)
{
    return ms_region_add_prio(container, offset, sub, 0);
}

MS_EXPORT int ms_region_add_prio(ms_region *container, uint64_t offset,
                                 ms_region *sub, int32_t priority)
{
    if (!container || !sub) {
        return -EINVAL;
    }
    ms_system *sys = container->sys;
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    if (sub->sys != sys) {
        ms__log(sys, MS_LOG_ERROR,
                "cannot add '%s' to '%s': different systems", sub->name,
                container->name);
        return -EXDEV;
    }
    if (sub->container) {
        ms__log(sys, MS_LOG_ERROR,
                "cannot add '%s' to '%s': it is already in '%s'", sub->name,
                container->name, sub->container->name);
        return -EEXIST;
    }
    if (sub->as_root_count) {
        ms__log(sys, MS_LOG_ERROR,
                "cannot add '%s' to '%s': it is the root of an address "
                "space",
                sub->name, container->name);
        return -EBUSY;
    }
    int loop = reaches(sys, sub, container);
    if (loop < 0) {
        return loop;
    }
    if (loop) {
        ms__log(sys, MS_LOG_ERROR,
                "cannot add '%s' to '%s': '%s' would contain itself "
                "(directly or through aliases)",
                sub->name, container->name, container->name);
        return -ELOOP;
    }
    ms__txn_begin(sys);
    do_add(container, offset, sub, priority);
    return ms__txn_commit(sys);
}

MS_EXPORT int ms_region_del(ms_region *container, ms_region *sub)
{
    if (!container || !sub) {
        return -EINVAL;
    }
    ms_system *sys = container->sys;
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    if (sub->container != container) {
        ms__log(sys, MS_LOG_ERROR, "cannot remove '%s' from '%s': not a "
                                   "child of it",
                sub->name, container->name);
        return -ENOENT;
    }
    ms__txn_begin(sys);
    do_del(container, sub);
    return ms__txn_commit(sys);
}

MS_EXPORT int ms_region_set_address(ms_region *r, uint64_t offset)
{
    if (!r) {
        return -EINVAL;
    }
    ms_system *sys = r->sys;
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    if (r->addr == offset) {
        return 0;
    }
    ms_region *c = r->container;
    if (!c) {
        /*
         * QEMU only stores the field here and leaves views stale.  A root
         * region's own offset shifts its view (and an alias target can be a
         * flat-view root), so memspace re-renders in those cases.
         */
        r->addr = offset;
        if (!offset_is_visible(r)) {
            return 0;
        }
        ms__txn_begin(sys);
        sys->topology_pending = true;
        return ms__txn_commit(sys);
    }
    ms__txn_begin(sys);
    ms_region_ref(r);
    do_del(c, r);
    do_add(c, offset, r, r->priority);
    ms_region_unref(r);
    return ms__txn_commit(sys);
}

MS_EXPORT int ms_region_set_size(ms_region *r, uint64_t size)
{
    if (!r) {
        return -EINVAL;
    }
    ms_system *sys = r->sys;
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    if (r->size == size) {
        return 0;
    }
    if (r->has_block) {
        if (size == 0) {
            return -EINVAL;
        }
        if (size > r->block_size) {
            ms__log(sys, MS_LOG_ERROR,
                    "region '%s': size 0x%llx exceeds its RAM block",
                    r->name, (unsigned long long)size);
            return -ERANGE;
        }
    }
    if (r->alias && !ms__window_fits(r->alias_offset, size, r->alias->size)) {
        ms__log(sys, MS_LOG_ERROR, "alias '%s': window leaves its target",
                r->name);
        return -ERANGE;
    }
    ms__txn_begin(sys);
    r->size = size;
    sys->topology_pending = true;
    return ms__txn_commit(sys);
}

/* Common tail of the flag setters: pending iff the region is enabled. */
static int flag_commit(ms_region *r)
{
    ms_system *sys = r->sys;
    ms__txn_begin(sys);
    if (r->enabled) {
        sys->topology_pending = true;
    }
    return ms__txn_commit(sys);
}

MS_EXPORT int ms_region_set_alias_offset(ms_region *r, uint64_t offset)
{
    if (!r || !r->alias) {
        return -EINVAL;
    }
    if (ms__busy(r->sys)) {
        return -EBUSY;
    }
    if (r->alias_offset == offset) {
        return 0;
    }
    if (!ms__window_fits(offset, r->size, r->alias->size)) {
        ms__log(r->sys, MS_LOG_ERROR,
                "alias '%s': window at 0x%llx leaves its target '%s'",
                r->name, (unsigned long long)offset, r->alias->name);
        return -ERANGE;
    }
    r->alias_offset = offset;
    return flag_commit(r);
}

MS_EXPORT int ms_region_set_enabled(ms_region *r, bool enabled)
{
    if (!r) {
        return -EINVAL;
    }
    ms_system *sys = r->sys;
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    if (r->enabled == enabled) {
        return 0;
    }
    ms__txn_begin(sys);
    r->enabled = enabled;
    sys->topology_pending = true;
    return ms__txn_commit(sys);
}

MS_EXPORT int ms_region_set_readonly(ms_region *r, bool readonly)
{
    if (!r) {
        return -EINVAL;
    }
    if (ms__busy(r->sys)) {
        return -EBUSY;
    }
    if (r->readonly == readonly) {
        return 0;
    }
    r->readonly = readonly;
    return flag_commit(r);
}

MS_EXPORT int ms_region_set_nonvolatile(ms_region *r, bool nv)
{
    if (!r) {
        return -EINVAL;
    }
    if (ms__busy(r->sys)) {
        return -EBUSY;
    }
    if (r->nonvolatile == nv) {
        return 0;
    }
    r->nonvolatile = nv;
    return flag_commit(r);
}

MS_EXPORT int ms_region_set_romd(ms_region *r, bool romd)
{
    if (!r || r->kind != MS_REGION_ROM_DEVICE) {
        return -EINVAL;
    }
    if (ms__busy(r->sys)) {
        return -EBUSY;
    }
    if (r->romd_mode == romd) {
        return 0;
    }
    r->romd_mode = romd;
    return flag_commit(r);
}

/* Queries. */

MS_EXPORT enum ms_region_kind ms_region_kind(const ms_region *r)
{
    return r ? r->kind : MS_REGION_CONTAINER;
}

MS_EXPORT const char *ms_region_name(const ms_region *r)
{
    return r ? r->name : NULL;
}

MS_EXPORT const char *ms_region_owner(const ms_region *r)
{
    return r ? r->owner : NULL;
}

MS_EXPORT uint64_t ms_region_size(const ms_region *r)
{
    return r ? r->size : 0;
}

MS_EXPORT uint64_t ms_region_addr(const ms_region *r)
{
    return r ? r->addr : 0;
}

MS_EXPORT int32_t ms_region_priority(const ms_region *r)
{
    return r ? r->priority : 0;
}

MS_EXPORT bool ms_region_enabled(const ms_region *r)
{
    return r && r->enabled;
}

MS_EXPORT bool ms_region_readonly(const ms_region *r)
{
    return r && r->readonly;
}

MS_EXPORT bool ms_region_nonvolatile(const ms_region *r)
{
    return r && r->nonvolatile;
}

MS_EXPORT bool ms_region_romd(const ms_region *r)
{
    return r && r->romd_mode;
}

MS_EXPORT bool ms_region_terminates(const ms_region *r)
{
    return r && r->terminates;
}

MS_EXPORT ms_region *ms_region_container(const ms_region *r)
{
    return r ? r->container : NULL;
}

MS_EXPORT ms_region *ms_region_alias_target(const ms_region *r)
{
    return r ? r->alias : NULL;
}

MS_EXPORT uint64_t ms_region_alias_offset(const ms_region *r)
{
    return r ? r->alias_offset : 0;
}

MS_EXPORT bool ms_region_is_mapped(const ms_region *r)
{
    return r && (r->container || r->mapped_via_alias > 0);
}

MS_EXPORT size_t ms_region_nr_subregions(const ms_region *r)
{
    return r ? r->nr_subregions : 0;
}

MS_EXPORT ms_region *ms_region_subregion(const ms_region *r, size_t i)
{
    if (!r) {
        return NULL;
    }
    ms_region *s = r->sub_first;
    while (s && i--) {
        s = s->sib_next;
    }
    return s;
}

MS_EXPORT void *ms_region_host(const ms_region *r)
{
    uint64_t off = 0;
    while (r && r->alias) {
        if (ms__add_overflows(off, r->alias_offset)) {
            return NULL;
        }
        off += r->alias_offset;
        r = r->alias;
    }
    if (!r || !r->has_block || off >= r->block_size) {
        return NULL;
    }
    return (char *)r->host + off;
}

MS_EXPORT ms_system *ms_region_system(const ms_region *r)
{
    return r ? r->sys : NULL;
}

const char *ms__region_type(const ms_region *r)
{
    while (r->alias) {
        r = r->alias;
    }
    if (r->kind == MS_REGION_RAM_DEVICE) {
        return "ramd";
    }
    if (r->kind == MS_REGION_ROM_DEVICE) {
        return r->romd_mode ? "romd" : "i/o";
    }
    if (r->ram) {
        return r->readonly ? "rom" : "ram";
    }
    return "i/o";
}

MS_EXPORT const char *ms_region_type_name(const ms_region *r)
{
    return r ? ms__region_type(r) : NULL;
}
