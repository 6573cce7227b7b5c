/* SPDX-License-Identifier: MIT */
/*
 * A tiny test harness: assertion macros that print both values and keep
 * going, and a summary exit code.  Exit 77 means "skipped" to CTest.
 */
#ifndef MS_TEST_HARNESS_H
#define MS_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ms_test_failures;
static int ms_test_checks;

#define MS_SKIP 77

#define CHECK(cond)                                                          \
    do {                                                                     \
        ms_test_checks++;                                                    \
        if (!(cond)) {                                                       \
            ms_test_failures++;                                              \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__,           \
                    __LINE__, #cond);                                        \
        }                                                                    \
    } while (0)

#define CHECK_EQ(a, b)                                                       \
    do {                                                                     \
        unsigned long long va_ = (unsigned long long)(a);                    \
        unsigned long long vb_ = (unsigned long long)(b);                    \
        ms_test_checks++;                                                    \
        if (va_ != vb_) {                                                    \
            ms_test_failures++;                                              \
            fprintf(stderr,                                                  \
                    "%s:%d: %s == %s failed: 0x%llx (%lld) != 0x%llx "      \
                    "(%lld)\n",                                              \
                    __FILE__, __LINE__, #a, #b, va_, (long long)va_, vb_,    \
                    (long long)vb_);                                         \
        }                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                      \
    do {                                                                     \
        const char *sa_ = (a), *sb_ = (b);                                   \
        ms_test_checks++;                                                    \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                         \
            ms_test_failures++;                                              \
            fprintf(stderr,                                                  \
                    "%s:%d: %s == %s failed:\n--- got:\n%s\n--- "            \
                    "expected:\n%s\n---\n",                                  \
                    __FILE__, __LINE__, #a, #b, sa_ ? sa_ : "(null)",        \
                    sb_ ? sb_ : "(null)");                                   \
        }                                                                    \
    } while (0)

/* An expression returning 0 on success. */
#define CHECK_OK(expr) CHECK_EQ((long long)(expr), 0)
/* An expression returning a negative errno. */
#define CHECK_ERR(expr, err) CHECK_EQ((long long)(expr), -(long long)(err))

/* Abort the test program (fatal setup failure). */
#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: REQUIRE(%s) failed\n", __FILE__,         \
                    __LINE__, #cond);                                        \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

static inline int ms_test_summary(const char *name)
{
    if (ms_test_failures) {
        fprintf(stderr, "%s: %d of %d checks FAILED\n", name,
                ms_test_failures, ms_test_checks);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, ms_test_checks);
    return 0;
}

#endif
