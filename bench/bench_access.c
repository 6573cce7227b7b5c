/* SPDX-License-Identifier: MIT */
/*
 * Access path benchmark: memspace against the floor (a raw host pointer, a
 * direct indirect call) and against Unicorn 2 (QEMU-derived), side by side
 * in one run, for N = 16, 1024 and 100 000 RAM regions.
 *
 * Layout: N RAM regions of S bytes each, back to back from guest address
 * 0, all backed by one caller buffer (the same memory for every N and every
 * engine, so caches and TLBs behave alike): 4 MiB (fits in the caches), then
 * 128 MiB (every random access misses them), region i on the i-th slice of
 * the buffer; then 128 MiB again with the slices shuffled (--apart), so
 * that no two neighbouring regions are neighbours in host memory and the
 * TLB cannot cache pages of small ranges; two MMIO regions of 4 KiB at
 * 1 TiB whose trivial callbacks return the offset (8-byte callbacks, and
 * QEMU's default 4-byte ones).
 * Accesses go to random 8-byte-aligned addresses over all N regions (the
 * same sequence for every engine); one row also reads the RAM in order,
 * the locality a device model walking rings and buffers has.
 *
 * Prints nanoseconds per access (thread CPU time, median of several runs,
 * the variants of a run interleaved so that noise hits them alike) and the
 * ratios; asserts nothing.  Unicorn maps at most 4095 regions (it aborts
 * beyond), so its column is empty at N = 100 000.
 *
 * Usage: bench_access [--smoke] [--runs R] [--ram MiB] [--apart]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <memspace/memspace.h>

#ifdef MS_BENCH_HAVE_UNICORN
#include <unicorn/unicorn.h>
#endif

#define U MS_ATTRS_UNSPECIFIED
#define MMIO_GPA (UINT64_C(1) << 40)
#define MAX_RUNS 15
#define UC_MAX_REGIONS 4095

static bool smoke;
static int runs = 7;
static volatile uint64_t sink;

/*
 * Thread CPU time: on a shared machine the time other processes get does
 * not count (caches they disturb still do; hence medians).
 */
static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static inline uint64_t xs(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A random 8-aligned offset in [0, span - 8], span < 2^32. */
static inline uint64_t rnd_off(uint64_t *s, uint64_t span)
{
    return (((xs(s) >> 32) * (span - 8)) >> 32) & ~UINT64_C(7);
}

/* ---- the engines ----------------------------------------------------------
 */

struct setup {
    unsigned n;
    uint64_t size; /* bytes per region */
    uint64_t span; /* n * size */
    uint8_t *host;
    ms_system *sys;
    ms_as *as;
#ifdef MS_BENCH_HAVE_UNICORN
    uc_engine *uc;
#endif
};

static uint64_t trivial_read(void *opaque, uint64_t off, unsigned size)
{
    (void)opaque, (void)size;
    return off;
}

static void trivial_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
    (void)opaque, (void)off, (void)v, (void)size;
}

/* One 8-byte callback per 8-byte access. */
static const struct ms_region_ops mmio8_ops = {
    .read = trivial_read,
    .write = trivial_write,
    .valid = {.max_access_size = 8},
    .impl = {.max_access_size = 8},
};

/* QEMU's defaults: 4-byte callbacks, so an 8-byte read makes two. */
static const struct ms_region_ops mmio4_ops = {
    .read = trivial_read,
    .write = trivial_write,
    .valid = {.max_access_size = 8},
};

#ifdef MS_BENCH_HAVE_UNICORN
static uint64_t uc_trivial_read(uc_engine *uc, uint64_t off, unsigned size,
                                void *opaque)
{
    (void)uc, (void)size, (void)opaque;
    return off;
}

static void uc_trivial_write(uc_engine *uc, uint64_t off, unsigned size,
                             uint64_t v, void *opaque)
{
    (void)uc, (void)off, (void)size, (void)v, (void)opaque;
}
#endif

static void die(const char *what)
{
    fprintf(stderr, "bench_access: %s\n", what);
    exit(1);
}

/*
 * The host slice of region @i of @n: the i-th, or when @apart the
 * (i * 7919 mod n)-th (7919 is a prime dividing no N here), so that
 * neighbouring regions are not neighbours in host memory.
 */
static uint64_t slice(unsigned i, unsigned n, bool apart)
{
    return apart ? (uint64_t)i * 7919 % n : i;
}

static void setup_init(struct setup *st, unsigned n, uint8_t *host,
                       uint64_t total, bool apart)
{
    memset(st, 0, sizeof(*st));
    st->n = n;
    st->size = (total / n) & ~UINT64_C(7);
    st->span = st->size * n;
    st->host = host;
    if (ms_system_new(NULL, &st->sys) != 0) {
        die("ms_system_new");
    }
    ms_region *root;
    if (ms_region_new(st->sys,
                      &(struct ms_region_config){.kind = MS_REGION_CONTAINER,
                                                 .name = "system",
                                                 .size = MS_SIZE_FULL},
                      &root) != 0 ||
        ms_as_new(st->sys, root, "memory", &st->as) != 0 ||
        ms_txn_begin(st->sys) != 0) {
        die("setup");
    }
    for (unsigned i = 0; i < n; i++) {
        ms_region *r;
        if (ms_region_new(st->sys,
                          &(struct ms_region_config){
                              .kind = MS_REGION_RAM,
                              .name = "ram",
                              .size = st->size,
                              .backing = MS_RAM_HOST,
                              .host = host + slice(i, n, apart) * st->size},
                          &r) != 0 ||
            ms_region_add(root, (uint64_t)i * st->size, r) != 0) {
            die("RAM region");
        }
        ms_region_unref(r);
    }
    static const struct ms_region_ops *ops[2] = {&mmio8_ops, &mmio4_ops};
    for (unsigned k = 0; k < 2; k++) {
        ms_region *r;
        if (ms_region_new(st->sys,
                          &(struct ms_region_config){.kind = MS_REGION_IO,
                                                     .name = "mmio",
                                                     .size = 4096,
                                                     .ops = ops[k]},
                          &r) != 0 ||
            ms_region_add(root, MMIO_GPA + 4096 * k, r) != 0) {
            die("MMIO region");
        }
        ms_region_unref(r);
    }
    if (ms_txn_commit(st->sys) != 0) {
        die("commit");
    }
    ms_region_unref(root);

#ifdef MS_BENCH_HAVE_UNICORN
    if (n <= UC_MAX_REGIONS && st->size % 4096 == 0 && (!smoke || n <= 16)) {
        if (uc_open(UC_ARCH_X86, UC_MODE_64, &st->uc) != UC_ERR_OK) {
            die("uc_open");
        }
        for (unsigned i = 0; i < n; i++) {
            if (uc_mem_map_ptr(st->uc, (uint64_t)i * st->size, st->size,
                               UC_PROT_ALL,
                               host + slice(i, n, apart) * st->size) !=
                                   UC_ERR_OK) {
                die("uc_mem_map_ptr");
            }
        }
        if (uc_mmio_map(st->uc, MMIO_GPA, 4096, uc_trivial_read, NULL,
                        uc_trivial_write, NULL) != UC_ERR_OK) {
            die("uc_mmio_map");
        }
    }
#endif
}

static void setup_free(struct setup *st)
{
    ms_system_free(st->sys);
#ifdef MS_BENCH_HAVE_UNICORN
    if (st->uc) {
        uc_close(st->uc);
    }
#endif
}

/* ---- the measured loops ----------------------------------------------------
 */

enum variant {
    V_RAW,   /* floor */
    V_TYPED, /* ms_as_ldq_le / ms_as_stq_le */
    V_BUF,   /* ms_as_read / ms_as_write */
    V_UC,    /* uc_mem_read / uc_mem_write */
    V_COUNT,
};

enum op {
    OP_READ,
    OP_WRITE,
    OP_MMIO,
    OP_MMIO2,
    OP_COPY,
    OP_SEQ, /* 8-byte reads walking the RAM in order (locality) */
    OP_COUNT
};

static const char *op_names[OP_COUNT] = {
    "RAM read 8B",         "RAM write 8B", "MMIO read 8B (1 cb)",
    "MMIO read 8B (2 cb)", "copy 4 KiB",   "RAM read 8B in order",
};

/* volatile: the compiler may not inline or devirtualise the floor call. */
static uint64_t (*volatile floor_read)(void *, uint64_t,
                                       unsigned) = trivial_read;

static double run_one(struct setup *st, enum op op, enum variant v,
                      uint64_t iters)
{
    uint64_t s = 0x2545f4914f6cdd1dull, sum = 0;
    uint8_t buf[4096];
    ms_as *as = st->as;
    uint8_t *host = st->host;
    uint64_t span = st->span;
    double t0 = now_ns();
    uint64_t next = 0; /* OP_SEQ */
    switch (op) {
    case OP_READ:
    case OP_SEQ:
        for (uint64_t i = 0; i < iters; i++) {
            uint64_t a, x = 0;
            if (op == OP_SEQ) {
                a = next;
                next = next + 16 >= span ? 0 : next + 8;
            } else {
                a = rnd_off(&s, span);
            }
            switch (v) {
            case V_RAW:
                memcpy(&x, host + a, 8);
                break;
            case V_TYPED:
                x = ms_as_ldq_le(as, a, U, NULL);
                break;
            case V_BUF:
                (void)ms_as_read(as, a, U, &x, 8);
                break;
            default:
#ifdef MS_BENCH_HAVE_UNICORN
                (void)uc_mem_read(st->uc, a, &x, 8);
#endif
                break;
            }
            sum += x;
        }
        break;
    case OP_WRITE:
        for (uint64_t i = 0; i < iters; i++) {
            uint64_t a = rnd_off(&s, span);
            switch (v) {
            case V_RAW:
                memcpy(host + a, &i, 8);
                break;
            case V_TYPED:
                (void)ms_as_stq_le(as, a, i, U);
                break;
            case V_BUF:
                (void)ms_as_write(as, a, U, &i, 8);
                break;
            default:
#ifdef MS_BENCH_HAVE_UNICORN
                (void)uc_mem_write(st->uc, a, &i, 8);
#endif
                break;
            }
        }
        break;
    case OP_MMIO:
    case OP_MMIO2: {
        uint64_t base = MMIO_GPA + (op == OP_MMIO2 ? 4096 : 0);
        for (uint64_t i = 0; i < iters; i++) {
            uint64_t a = rnd_off(&s, 4096), x = 0;
            switch (v) {
            case V_RAW:
                x = floor_read(NULL, a, 8);
                if (op == OP_MMIO2) {
                    x += floor_read(NULL, a + 4, 4);
                }
                break;
            case V_TYPED:
                x = ms_as_ldq_le(as, base + a, U, NULL);
                break;
            case V_BUF:
                (void)ms_as_read(as, base + a, U, &x, 8);
                break;
            default:
#ifdef MS_BENCH_HAVE_UNICORN
                (void)uc_mem_read(st->uc, MMIO_GPA + a, &x, 8);
#endif
                break;
            }
            sum += x;
        }
        break;
    }
    default: /* 4 KiB copies at random page-aligned addresses */
        for (uint64_t i = 0; i < iters; i++) {
            uint64_t a = rnd_off(&s, span - 4096) & ~UINT64_C(4095);
            switch (v) {
            case V_RAW:
                memcpy(buf, host + a, 4096);
                break;
            case V_BUF:
                (void)ms_as_read(as, a, U, buf, 4096);
                break;
            default:
#ifdef MS_BENCH_HAVE_UNICORN
                (void)uc_mem_read(st->uc, a, buf, 4096);
#endif
                break;
            }
            sum += buf[i & 4095];
        }
        break;
    }
    double t = now_ns() - t0;
    sink += sum;
    return t / (double)iters;
}

static bool applies(const struct setup *st, enum op op, enum variant v)
{
    if (v == V_UC) {
#ifdef MS_BENCH_HAVE_UNICORN
        return st->uc && op != OP_MMIO;
#else
        (void)st;
        return false;
#endif
    }
    if (op == OP_COPY && v == V_TYPED) {
        return false;
    }
    return true;
}

static uint64_t iterations(enum op op, enum variant v)
{
    uint64_t n = op == OP_COPY ? 20000 : 1000000;
    if (v == V_UC) {
        n /= 8; /* 100+ ns each */
    }
    return smoke ? n / 1000 + 1 : n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median ns per access of @n runs, [op][variant]; < 0: not applicable. */
static void measure(struct setup *st, int n, double res[OP_COUNT][V_COUNT])
{
    static double samples[OP_COUNT][V_COUNT][MAX_RUNS];
    for (int r = 0; r < n; r++) {
        for (int op = 0; op < OP_COUNT; op++) {
            for (int v = 0; v < V_COUNT; v++) {
                if (applies(st, op, v)) {
                    samples[op][v][r] = run_one(st, op, v, iterations(op, v));
                }
            }
        }
    }
    for (int op = 0; op < OP_COUNT; op++) {
        for (int v = 0; v < V_COUNT; v++) {
            if (!applies(st, op, v)) {
                res[op][v] = -1;
                continue;
            }
            qsort(samples[op][v], (size_t)n, sizeof(double), cmp_double);
            res[op][v] = samples[op][v][n / 2];
        }
    }
}

static void cell(double ns)
{
    if (ns < 0) {
        printf(" %9s", "-");
    } else {
        printf(" %9.1f", ns);
    }
}

static void ratio(double a, double b)
{
    if (a < 0 || b <= 0) {
        printf(" %7s", "-");
    } else {
        printf(" %6.2fx", a / b);
    }
}

/*
 * One table: N = 16, 1024, 100 000 over @total bytes of guest RAM, the
 * regions slices of one host buffer in order (neighbours in guest memory
 * are neighbours in host memory, which the TLB can use: pages of small
 * ranges) or, if @apart, shuffled (each access past the TLB's reach goes
 * through the index).
 */
static void table(uint64_t total, bool apart)
{
    static const unsigned counts[] = {16, 1024, 100000};
    uint8_t *host = mmap(NULL, total, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (host == MAP_FAILED) {
        die("mmap");
    }
    memset(host, 0x5a, total);
    printf("== %" PRIu64 " MiB of guest RAM in N regions%s; random "
           "8-aligned addresses; ns per access, median of %d runs\n",
           total >> 20,
           apart ? ", slices of the host buffer shuffled" : "", runs);
    printf("%-8s %-20s %9s %9s %9s %9s %8s %8s %8s %8s\n", "N", "access",
           "floor", "ms ld/st", "ms buf", "unicorn", "ld/flr", "buf/flr",
           "uc/ld", "uc/buf");

    double res[3][OP_COUNT][V_COUNT];
    unsigned last_n = 0;
    for (unsigned k = 0; k < 3; k++) {
        unsigned n = counts[k];
        if (smoke && n > 1024) {
            n = 4096; /* keep the smoke run short */
        }
        last_n = n;
        struct setup st;
        double t0 = now_ns();
        setup_init(&st, n, host, total, apart);
        double built = (now_ns() - t0) / 1e6;
        if (k == 0) {
            /* Warm up (caches, page tables, the CPU's clock) before the
             * first figures, which otherwise come out slower. */
            measure(&st, 1, res[k]);
        }
        measure(&st, runs, res[k]);
        for (int op = 0; op < OP_COUNT; op++) {
            double *r = res[k][op];
            printf("%-8u %-20s", n, op_names[op]);
            for (int v = 0; v < V_COUNT; v++) {
                cell(r[v]);
            }
            ratio(r[V_TYPED], r[V_RAW]);
            ratio(r[V_BUF], r[V_RAW]);
            ratio(r[V_UC], r[V_TYPED]);
            ratio(r[V_UC], r[V_BUF]);
            printf("\n");
        }
        printf("%-8s (set up in %.0f ms of CPU%s)\n", "", built,
#ifdef MS_BENCH_HAVE_UNICORN
               st.uc                ? ", both engines"
               : n > UC_MAX_REGIONS ? "; unicorn: n/a, it cannot map more than "
                                      "4095 regions (it aborts)"
                                    : "; unicorn: skipped"
#else
               ""
#endif
        );
        setup_free(&st);
    }
    printf("memspace at N = %u relative to N = 16 (ld/st, buffer):\n", last_n);
    for (int op = 0; op < OP_COUNT; op++) {
        printf("  %-20s", op_names[op]);
        ratio(res[2][op][V_TYPED], res[0][op][V_TYPED]);
        ratio(res[2][op][V_BUF], res[0][op][V_BUF]);
        printf("\n");
    }
    printf("\n");
    munmap(host, total);
}

int main(int argc, char **argv)
{
    uint64_t ram_mib = 0;
    bool apart = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--smoke")) {
            smoke = true;
            runs = 1;
        } else if (!strcmp(argv[i], "--apart")) {
            apart = true;
        } else if (!strcmp(argv[i], "--ram") && i + 1 < argc) {
            ram_mib = strtoull(argv[++i], NULL, 0);
            if (ram_mib < 1 || ram_mib > 1024) {
                ram_mib = 0;
            }
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
            if (runs < 1 || runs > MAX_RUNS) {
                runs = 7;
            }
        }
    }
#ifdef MS_BENCH_HAVE_UNICORN
    unsigned maj, min;
    uc_version(&maj, &min);
    printf("unicorn: %u.%u (uc_mem_read/uc_mem_write, uc_mmio_map)\n", maj,
           min);
#else
    printf("unicorn: not available (built without libunicorn-dev)\n");
#endif
    printf("floor: a raw host pointer (RAM), a direct indirect call (MMIO), "
           "memcpy (copies)\n\n");
    if (smoke) {
        table(UINT64_C(4) << 20, apart);
    } else if (ram_mib) {
        table(ram_mib << 20, apart);
    } else {
        /* Hot: the RAM stays in the caches; cold: every access misses;
         * then cold with no pages of small ranges to cache. */
        table(UINT64_C(4) << 20, false);
        table(UINT64_C(128) << 20, false);
        table(UINT64_C(128) << 20, true);
    }
    return 0;
}
