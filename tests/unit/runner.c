#include <stdarg.h>
#include <stdlib.h>

#include "tv_test.h"

typedef struct {
        const char *name;
        tv_test_fn fn;
} test_case;

static test_case tests[1024];
static size_t n_tests;
static int current_failed;
static char current_skip[256]; /* the reason, when the current test skipped */

void tv_test_register(const char *name, tv_test_fn fn) {
        if (n_tests < sizeof(tests) / sizeof(tests[0]))
                tests[n_tests++] = (test_case){name, fn};
}

void tv_test_fail(const char *file, int line, const char *fmt, ...) {
        va_list ap;
        fprintf(stdout, "    %s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
        current_failed = 1;
}

void tv_test_skip(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(current_skip, sizeof(current_skip), fmt, ap);
        va_end(ap);
        if (!current_skip[0])
                snprintf(current_skip, sizeof(current_skip), "no reason given");
}

/* Usage: tv-unit [SUBSTRING]: run every test whose name contains SUBSTRING. */
int main(int argc, char **argv) {
        unsigned passed = 0, failed = 0, skipped = 0;

        for (size_t i = 0; i < n_tests; i++) {
                if (argc > 1 && !strstr(tests[i].name, argv[1]))
                        continue;
                current_failed = 0;
                current_skip[0] = '\0';
                tests[i].fn();
                /* A check that failed before the skip still fails the test. */
                if (current_failed) {
                        printf("FAIL %s\n", tests[i].name);
                        failed++;
                } else if (current_skip[0]) {
                        printf("SKIP %s: %s\n", tests[i].name, current_skip);
                        skipped++;
                } else {
                        printf("PASS %s\n", tests[i].name);
                        passed++;
                }
                fflush(stdout);
        }
        if (skipped)
                printf("%u skipped\n", skipped);
        printf("%u passed, %u failed\n", passed, failed);
        return failed ? 1 : 0;
}
