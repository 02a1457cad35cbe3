/* Private to csi/: a response is often a tree of many small protobuf-c
 * structs; they are allocated from an arena and freed together after the
 * response is packed, so no handler has to free a tree by hand. */
#ifndef THINVAULT_CSI_ARENA_H
#define THINVAULT_CSI_ARENA_H

#include <stddef.h>

#include "thinvault/util.h"

typedef struct arena_block arena_block;
typedef struct {
        arena_block *head;
        bool failed; /* an allocation failed: the handler answers -ENOMEM */
} arena;

/* Zeroed memory owned by the arena; NULL (and a->failed) on failure. */
void *arena_alloc(arena *a, size_t size);
char *arena_strdup(arena *a, const char *s);
char *arena_printf(arena *a, const char *fmt, ...) _printf_(2, 3);
void arena_free(arena *a);

#endif
