/* SPDX-License-Identifier: MIT */
/*
 * Address spaces: a name, a root region, the published view, listeners.
 *
 * Address spaces are kept in creation order, the order in which commits
 * visit them and in which `info mtree -f` lists them.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

MS_EXPORT int ms_as_new(ms_system *sys, ms_region *root, const char *name,
                        ms_as **out)
{
    if (!sys || !root || !out) {
        return -EINVAL;
    }
    if (!name || !name[0]) {
        ms__log(sys, MS_LOG_ERROR, "address space created without a name");
        return -EINVAL;
    }
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    if (root->sys != sys) {
        ms__log(sys, MS_LOG_ERROR,
                "address space '%s': root '%s' belongs to another system",
                name, root->name);
        return -EXDEV;
    }
    ms_as *as = calloc(1, sizeof(*as));
    if (!as) {
        return -ENOMEM;
    }
    as->name = ms__strdup(name);
    if (!as->name) {
        free(as);
        return -ENOMEM;
    }
    as->sys = sys;
    as->root = root;
    int err = ms__as_install_view(as);
    if (err < 0) {
        free(as->name);
        free(as);
        return err;
    }
    ms_region_ref(root);
    root->as_root_count++;
    as->prev = sys->as_last;
    if (sys->as_last) {
        sys->as_last->next = as;
    } else {
        sys->as_first = as;
    }
    sys->as_last = as;
    sys->nr_as++;
    /* No listener can be registered yet, so this only records the set. */
    err = ms__as_update_ioeventfds(as);
    (void)err;
    *out = as;
    return 0;
}

MS_EXPORT int ms_as_destroy(ms_as *as)
{
    if (!as) {
        return -EINVAL;
    }
    ms_system *sys = as->sys;
    if (ms__busy(sys)) {
        return -EBUSY;
    }
    if (as->nr_listeners) {
        ms__log(sys, MS_LOG_ERROR,
                "address space '%s' destroyed with %zu listener(s) still "
                "registered",
                as->name, as->nr_listeners);
        return -EBUSY;
    }
    if (as->prev) {
        as->prev->next = as->next;
    } else {
        sys->as_first = as->next;
    }
    if (as->next) {
        as->next->prev = as->prev;
    } else {
        sys->as_last = as->prev;
    }
    sys->nr_as--;
    as->root->as_root_count--;
    ms__flatview_put(as->view);
    ms_region_unref(as->root);
    free(as->ioeventfds);
    free(as->name);
    free(as);
    return 0;
}

MS_EXPORT const char *ms_as_name(const ms_as *as)
{
    return as ? as->name : NULL;
}

MS_EXPORT ms_region *ms_as_root(const ms_as *as)
{
    return as ? as->root : NULL;
}

MS_EXPORT ms_system *ms_as_system(const ms_as *as)
{
    return as ? as->sys : NULL;
}

MS_EXPORT const ms_flatview *ms_as_flatview(const ms_as *as)
{
    return as ? as->view : NULL;
}
