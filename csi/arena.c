#include <stdio.h>
#include <string.h>

#include "arena.h"

struct arena_block {
        arena_block *next;
        max_align_t data[];
};

void *arena_alloc(arena *a, size_t size) {
        arena_block *b = calloc(1, sizeof(*b) + size);

        if (!b) {
                a->failed = true;
                return NULL;
        }
        b->next = a->head;
        a->head = b;
        return b->data;
}

char *arena_strdup(arena *a, const char *s) {
        size_t n = strlen(s) + 1;
        char *d = arena_alloc(a, n);
        if (d)
                memcpy(d, s, n);
        return d;
}

char *arena_printf(arena *a, const char *fmt, ...) {
        va_list ap;
        char *d;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
                a->failed = true;
                return NULL;
        }
        d = arena_alloc(a, (size_t)n + 1);
        if (!d)
                return NULL;
        va_start(ap, fmt);
        (void)vsnprintf(d, (size_t)n + 1, fmt, ap);
        va_end(ap);
        return d;
}

void arena_free(arena *a) {
        while (a->head) {
                arena_block *n = a->head->next;
                free(a->head);
                a->head = n;
        }
        a->failed = false;
}
