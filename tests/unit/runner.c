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

/* Usage: tv-unit [SUBSTRING]: run every test whose name contains SUBSTRING. */
int main(int argc, char **argv) {
        unsigned passed = 0, failed = 0;

        for (size_t i = 0; i < n_tests; i++) {
                if (argc > 1 && !strstr(tests[i].name, argv[1]))
                        continue;
                current_failed = 0;
                tests[i].fn();
                printf("%s %s\n", current_failed ? "FAIL" : "PASS", tests[i].name);
                fflush(stdout);
                if (current_failed)
                        failed++;
                else
                        passed++;
        }
        printf("%u passed, %u failed\n", passed, failed);
        return failed ? 1 : 0;
}
