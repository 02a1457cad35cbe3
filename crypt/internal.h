/* crypt/: what the files of this layer share and nobody else sees. */
#ifndef THINVAULT_CRYPT_INTERNAL_H
#define THINVAULT_CRYPT_INTERNAL_H

#include <stdarg.h>

#include "thinvault/crypt.h"

/* The key bytes, for libcryptsetup only. Never log, format or copy them
 * outside locked memory. */
const uint8_t *tv_key_data(const tv_key *key);

/* Memory for secrets: its own anonymous mapping (so munlock cannot unlock a
 * neighbour's page), mlock'ed, excluded from core dumps and from fork()ed
 * children. Zeroed on allocation. */
typedef struct secbuf {
        uint8_t *data;
        size_t size;     /* usable bytes asked for */
        size_t map_size; /* whole pages mapped */
} secbuf;

/* Returns 0, or -ENOMEM (mmap failed, or mlock refused: RLIMIT_MEMLOCK). */
int secbuf_alloc(size_t size, secbuf *ret);
/* explicit_bzero, munlock, munmap; leaves *b empty. Safe on an empty one. */
void secbuf_release(secbuf *b);
static inline void secbuf_releasep(secbuf *b) {
        secbuf_release(b);
}
#define _cleanup_secbuf_ _cleanup_(secbuf_releasep)

/* Fill err->message (when err is not NULL) and return r (< 0). */
int crypt_error(tv_crypt_error *err, int r, const char *fmt, ...) _printf_(3, 4);
void crypt_error_clear(tv_crypt_error *err);

/* Copy src into dst[size] (truncating, always NUL-terminated). */
void crypt_strlcpy(char *dst, const char *src, size_t size);

#endif
