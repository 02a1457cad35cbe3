/* Shared by the files of limits/ only; the public API is thinvault/limits.h. */
#ifndef THINVAULT_LIMITS_INTERNAL_H
#define THINVAULT_LIMITS_INTERNAL_H

#include "thinvault/limits.h"

/* Clear `err` (may be NULL). */
void tv_limits_err_clear(tv_limits_error *err);

/* printf into err->message (when err is not NULL) and return `r`, so that
 * `return tv_limits_errf(err, -EINVAL, "...")` is one line. */
int tv_limits_errf(tv_limits_error *err, int r, const char *fmt, ...) _printf_(3, 4);

/* Copy `s` for an error message: at most 40 chars, anything that is not
 * printable ASCII (or is '"' or '\\') as '?', "..." when cut. */
const char *tv_limits_show(const char *s, char *buf, size_t size);

/* Parse [0-9]+ in s[0..n) into a uint64. Returns 0, -EINVAL (not digits,
 * empty) or -ERANGE (overflow). */
int tv_limits_parse_u64(const char *s, size_t n, uint64_t *ret);

/* "max" for 0, else the decimal value; buf needs 21 bytes. */
const char *tv_limits_value_str(uint64_t v, char buf[static 21]);

/* Whole file, NUL-terminated, at most 1 MiB. Returns 0 and a heap string,
 * -EFBIG, or the negative errno of open/read. */
int tv_limits_read_file(const char *path, char **ret_text);

/* One write(2) of `len` bytes to an existing file (O_TRUNC, no O_CREAT):
 * cgroup files take a whole command per write. Returns 0, -EIO on a short
 * write, or the negative errno of open/write (the kernel's verdict). */
int tv_limits_write_file(const char *path, const char *buf, size_t len);

/* The cgroup mounts of a mountinfo text. */
typedef struct tv_limits_mount {
        char *point;               /* decoded mount point */
        tv_cgroup_version version; /* V2: cgroup2; V1: cgroup with blkio */
} tv_limits_mount;

void tv_limits_mounts_free(tv_limits_mount *m, size_t n);

/* Every cgroup2 mount and every cgroup v1 mount with blkio, in order.
 * Returns 0 (n may be 0), -EBADMSG, -ENOMEM. */
int tv_limits_parse_mounts(const char *text, tv_limits_mount **ret_mounts, size_t *ret_n);

/* True when whitespace-separated `text` has the word `word`. */
bool tv_limits_has_word(const char *text, const char *word);

#endif
