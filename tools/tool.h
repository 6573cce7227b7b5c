/* SPDX-License-Identifier: MIT */
/* Shared by the files of the `memspace` command-line tool. */
#ifndef MEMSPACE_TOOL_H
#define MEMSPACE_TOOL_H

#include <memspace/memspace.h>
#include <stdio.h>

/* Exit codes. */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

/* A topology built into a fresh system, with its RAM-device memory. */
struct built {
    ms_topology *t;
    ms_system *sys;
    ms_topology_map *map;
    void **ramdev;
    uint64_t *ramdev_len;
    size_t nr_ramdev, cap_ramdev;
};

/* Load FILE (memspace JSON or QEMU tree text, detected); prints errors. */
int tool_load(const char *path, ms_topology **out);
/* Build @t into a new system (takes ownership of @t); prints errors. */
int tool_build(ms_topology *t, const char *path, struct built *b);
void tool_built_free(struct built *b);
/* The prepare callback used for building (RAM devices get memory). */
int tool_prepare(void *opaque, const struct ms_topology_region *d,
                 struct ms_region_config *cfg);

/* svg.c: draw every address space's flat view and the tree. */
int tool_draw_svg(struct built *b, FILE *out);

/* Printing helpers. */
void tool_range_line(FILE *f, uint64_t gpa, uint64_t last, ms_region *mr,
                     uint64_t offset, bool readonly, bool nonvolatile);

#endif
