/* SPDX-License-Identifier: MIT */
/*
 * Private representation of topology descriptions, shared by the JSON
 * loader and saver (topology_json.c), the QEMU text importer
 * (import_mtree.c), the builder (topology_build.c) and the checks
 * (topology.c).
 *
 * Invariants once a description is finished (ms__topo_finish()): ids are
 * unique and indexed; container/subregion links agree; every alias has a
 * target and nothing else has; the graph of subregion and alias edges has
 * no cycle; nesting is at most MS__TOPO_MAX_DEPTH deep and the longest
 * render path at most MS__TOPO_MAX_PATH regions long (so the library's
 * recursive walks stay shallow).
 */
#ifndef MS_TOPOLOGY_INTERNAL_H
#define MS_TOPOLOGY_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "memspace/topology.h"

#define MS__TOPO_NONE SIZE_MAX
#define MS__TOPO_MAX_DEPTH 256
#define MS__TOPO_MAX_PATH 1024
#define MS__TOPO_MAX_REGIONS (4u << 20)

struct ms__treg {
    char *id;
    char *name;  /* NULL: unnamed */
    char *owner; /* NULL: none */
    char *where; /* JSON path or "line N" */
    enum ms_region_kind kind;
    uint64_t size;
    uint64_t addr;
    uint64_t alias_offset;
    int32_t priority;
    bool enabled;
    bool readonly;
    bool nonvolatile;
    bool romd;
    bool log_vga;
    size_t container;
    size_t target;
    size_t *subs; /* addition order */
    size_t nr_subs, cap_subs;
    struct ms_topology_eventfd *efd;
    size_t nr_efd;
    unsigned guessed;
};

struct ms__tas {
    char *id;
    char *name;
    size_t root;
};

struct ms_topology {
    struct ms__treg *r;
    size_t nr, cap;
    struct ms__tas *as;
    size_t nr_as, cap_as;
    /* Open-addressing index of ids: slot holds region index + 1. */
    size_t *hash;
    size_t hash_cap;
};

/* topology.c */
int ms__topo_new(ms_topology **out);
/* Append a region with defaults (enabled, no container, no target). */
int ms__topo_add(ms_topology *t, size_t *idx);
int ms__topo_add_sub(ms_topology *t, size_t parent, size_t child);
int ms__topo_add_as(ms_topology *t, const char *id, const char *name,
                    size_t root);
/* Build the id index; -EEXIST (and *dup = second index) on duplicates. */
int ms__topo_index(ms_topology *t, size_t *dup);
size_t ms__topo_find(const ms_topology *t, const char *id);
/* The hash of ids (FNV-1a) that the index uses. */
uint64_t ms__topo_hash(const char *s);
/* Cycle and depth checks; fills @err naming the region. */
int ms__topo_finish(ms_topology *t, struct ms_topology_error *err,
                    const char *file);
uint64_t ms__topo_last(uint64_t start, uint64_t size); /* size != 0 */
void ms__topo_err(struct ms_topology_error *err, int error, const char *file,
                  unsigned line, unsigned column, const char *path,
                  const char *fmt, ...) MS__PRINTF(7, 8);
char *ms__topo_strdup(const char *s);
char *ms__topo_strndup(const char *s, size_t n);
/* topology_build.c: region of description index @i after an apply. */
ms_region *ms__topo_map_at(const ms_topology_map *m, size_t i);
const char *ms__topo_kind_name(enum ms_region_kind k);
int ms__topo_kind_parse(const char *s, enum ms_region_kind *out);

#endif
