/* A very small test harness: TEST(name) registers a test at load time,
 * CHECK()/CHECK_EQ_*() record a failure and keep going, SKIP() ends a test
 * that cannot run here; the runner prints `PASS name` / `FAIL name` /
 * `SKIP name: reason` per test and ends on `N passed, N failed`. */
#ifndef TV_TEST_H
#define TV_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef void (*tv_test_fn)(void);
void tv_test_register(const char *name, tv_test_fn fn);
void tv_test_fail(const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void tv_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define TEST(name)                                                                                 \
        static void name(void);                                                                    \
        __attribute__((constructor)) static void register_##name(void) {                           \
                tv_test_register(#name, name);                                                     \
        }                                                                                          \
        static void name(void)

/* End the current test as skipped, saying why: for a test that cannot run in
 * this build or on this machine (never to hide a failure). A skipped test
 * counts as neither passed nor failed. */
#define SKIP(...)                                                                                  \
        do {                                                                                       \
                tv_test_skip(__VA_ARGS__);                                                         \
                return;                                                                            \
        } while (0)

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond))                                                                       \
                        tv_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                      \
        } while (0)

#define CHECK_INT(a, b)                                                                            \
        do {                                                                                       \
                long long _a = (long long)(a), _b = (long long)(b);                                \
                if (_a != _b)                                                                      \
                        tv_test_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, _a, \
                                     #b, _b);                                                      \
        } while (0)

#define CHECK_STR(a, b)                                                                            \
        do {                                                                                       \
                const char *_a = (a), *_b = (b);                                                   \
                if (!_a || !_b || strcmp(_a, _b) != 0)                                             \
                        tv_test_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a,      \
                                     _a ? _a : "(null)", _b ? _b : "(null)");                      \
        } while (0)

#endif
