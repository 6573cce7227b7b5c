/* SPDX-License-Identifier: MIT */
/*
 * Topology benchmarks (prints figures, asserts nothing).
 *
 *  build (a): N regions added inside ONE transaction (one render);
 *  build (b): N regions added one commit each (the simple renderer
 *             re-renders every view on every commit: O(N) per commit, so
 *             (b) is quadratic; past a time budget the rest is
 *             extrapolated, and the output says so);
 *  commit:    with N regions mapped and one recording listener, the cost
 *             of one commit that changes one region, and the number of
 *             callbacks it makes (QEMU's contract: region_nop for every
 *             unchanged range).
 *
 * Usage: bench_topology [MAX_N]   (default 100000; the suite runs 1000)
 */
#include <malloc.h>
#include <memspace/memspace.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static const struct ms_region_ops ops = { 0 };

#define TRY(x)                                                               \
    do {                                                                     \
        int e_ = (x);                                                        \
        if (e_ < 0) {                                                        \
            fprintf(stderr, "%s failed: %d\n", #x, e_);                      \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

struct world {
    ms_system *sys;
    ms_region *root;
    ms_as *as;
    ms_region **regs;
};

static void world_new(struct world *w, size_t n)
{
    TRY(ms_system_new(NULL, &w->sys));
    struct ms_region_config c = { .kind = MS_REGION_CONTAINER,
                                  .name = "system", .size = MS_SIZE_FULL };
    TRY(ms_region_new(w->sys, &c, &w->root));
    TRY(ms_as_new(w->sys, w->root, "memory", &w->as));
    w->regs = calloc(n, sizeof(*w->regs));
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "dev%zu", i);
        struct ms_region_config rc = { .kind = MS_REGION_IO, .name = name,
                                       .size = 0x800, .ops = &ops };
        TRY(ms_region_new(w->sys, &rc, &w->regs[i]));
    }
}

static void world_free(struct world *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ms_region_unref(w->regs[i]);
    }
    free(w->regs);
    ms_region_unref(w->root);
    ms_system_free(w->sys);
}

/* Region i at i * 0x1000, so every region is its own flat range. */
static void add(struct world *w, size_t i)
{
    TRY(ms_region_add(w->root, (uint64_t)i * 0x1000, w->regs[i]));
}

static void bench_build(size_t n)
{
    struct world w;
    size_t h0 = heap_used();
    world_new(&w, n);
    size_t h1 = heap_used();
    double t0 = now();
    TRY(ms_txn_begin(w.sys));
    for (size_t i = 0; i < n; i++) {
        add(&w, i);
    }
    TRY(ms_txn_commit(w.sys));
    double ta = now() - t0;
    size_t h2 = heap_used();
    printf("%8zu  (a) one transaction: %8.3f ms total, %7.1f ns/region; "
           "%zu B/region (objects) + %zu B/region (tree + view)\n",
           n, ta * 1e3, ta * 1e9 / (double)n, (h1 - h0) / n, (h2 - h1) / n);
    world_free(&w, n);

    world_new(&w, n);
    double budget = 3.0;
    size_t done = 0;
    t0 = now();
    while (done < n && now() - t0 < budget) {
        add(&w, done++);
    }
    double tb = now() - t0;
    if (done == n) {
        printf("%8zu  (b) one commit each: %8.3f ms total, %7.1f ns/region "
               "(%.1fx (a))\n",
               n, tb * 1e3, tb * 1e9 / (double)n, tb / ta);
    } else {
        /* Cost of commit k grows with k: total ~ (n/done)^2 * measured. */
        double est = tb * ((double)n / (double)done) * ((double)n /
                                                        (double)done);
        printf("%8zu  (b) one commit each: QUADRATIC with the simple "
               "renderer: %zu commits took %.2f s; all %zu estimated at "
               "%.0f s (%.0fx (a))\n",
               n, done, tb, n, est, est / ta);
    }
    world_free(&w, n);
}

static unsigned long callbacks;

static int count_cb(struct ms_listener *l, const struct ms_section *s)
{
    (void)l;
    (void)s;
    callbacks++;
    return 0;
}

static int count_simple(struct ms_listener *l)
{
    (void)l;
    callbacks++;
    return 0;
}

static void bench_commit(size_t n)
{
    struct world w;
    world_new(&w, n);
    TRY(ms_txn_begin(w.sys));
    for (size_t i = 0; i < n; i++) {
        add(&w, i);
    }
    TRY(ms_txn_commit(w.sys));
    struct ms_listener l = { .name = "count",
                             .begin = count_simple,
                             .commit = count_simple,
                             .region_add = count_cb,
                             .region_del = count_cb,
                             .region_nop = count_cb };
    TRY(ms_listener_register(w.as, &l));
    int reps = n >= 100000 ? 5 : 50;
    ms_region *victim = w.regs[n / 2];
    callbacks = 0;
    double t0 = now();
    for (int i = 0; i < reps; i++) {
        TRY(ms_region_set_enabled(victim, i % 2 != 0));
    }
    double t = (now() - t0) / reps;
    printf("%8zu  commit changing one region: %9.3f ms/commit, %lu "
           "callbacks/commit (%.0f ns/callback incl. render)\n",
           n, t * 1e3, callbacks / (unsigned long)reps,
           t * 1e9 / (double)(callbacks / (unsigned long)reps));
    TRY(ms_listener_unregister(&l));
    world_free(&w, n);
}

int main(int argc, char **argv)
{
    size_t max = argc > 1 ? strtoull(argv[1], NULL, 0) : 100000;
    printf("memspace topology benchmark (simple renderer)\n");
    printf("       N  figures\n");
    for (size_t n = 1000; n <= max; n *= 10) {
        bench_build(n);
    }
    for (size_t n = 1000; n <= max; n *= 10) {
        bench_commit(n);
    }
    return 0;
}
