/* crypt/: locked memory for secrets, error messages, tenant names. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

int secbuf_alloc(size_t size, secbuf *ret) {
        long page = sysconf(_SC_PAGESIZE);
        size_t map_size;
        void *p;

        if (page <= 0)
                page = 4096;
        map_size = size == 0 ? (size_t)page : (size + (size_t)page - 1) / (size_t)page * (size_t)page;
        p = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return -ENOMEM;
        if (mlock(p, map_size) < 0) {
                (void)munmap(p, map_size);
                return -ENOMEM;
        }
        /* Best effort: a key must not end up in a core file, nor be copied
         * into a child that fork()s (tv_exec uses posix_spawn, but libraries
         * may fork). */
        (void)madvise(p, map_size, MADV_DONTDUMP);
        (void)madvise(p, map_size, MADV_DONTFORK);
        *ret = (secbuf){.data = p, .size = size, .map_size = map_size};
        return 0;
}

void secbuf_release(secbuf *b) {
        if (!b || !b->data)
                return;
        explicit_bzero(b->data, b->map_size);
        (void)munlock(b->data, b->map_size);
        (void)munmap(b->data, b->map_size);
        *b = (secbuf){0};
}

void crypt_error_clear(tv_crypt_error *err) {
        if (err)
                err->message[0] = '\0';
}

int crypt_error(tv_crypt_error *err, int r, const char *fmt, ...) {
        va_list ap;

        if (!err)
                return r;
        va_start(ap, fmt);
        (void)vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        return r;
}

void crypt_strlcpy(char *dst, const char *src, size_t size) {
        size_t n;

        if (size == 0)
                return;
        n = src ? strnlen(src, size - 1) : 0;
        if (n > 0)
                memcpy(dst, src, n);
        dst[n] = '\0';
}

bool tv_tenant_valid(const char *tenant) {
        size_t n;

        if (!tenant)
                return false;
        n = strlen(tenant);
        if (n < 1 || n > TV_TENANT_SIZE - 1)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = tenant[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                if (!alnum && !(c == '-' && i > 0 && i < n - 1))
                        return false;
        }
        return true;
}

/* Pure helpers of luks.c's interface, kept here so that a program
 * without libcryptsetup (tests/fuzz) links the real ones. */

const char *tv_luks_kind_to_string(tv_luks_kind kind) {
        switch (kind) {
        case TV_LUKS_KIND_EMPTY:
                return "empty";
        case TV_LUKS_KIND_OURS:
                return "ours";
        case TV_LUKS_KIND_FOREIGN:
                return "foreign";
        case TV_LUKS_KIND_OTHER:
                return "other";
        }
        return "unknown";
}

bool tv_luks_mapping_name_valid(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n < 1 || n > TV_LUKS_MAPPING_NAME_MAX || name[0] == '-' || strcmp(name, ".") == 0 ||
            strcmp(name, "..") == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '+' || c == '-'))
                        return false;
        }
        return true;
}
