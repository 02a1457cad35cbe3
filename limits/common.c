/* Helpers shared by limits/: error messages, numbers, whole-file I/O. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define READ_FILE_MAX (1024 * 1024)

void tv_limits_err_clear(tv_limits_error *err) {
        if (err)
                err->message[0] = '\0';
}

int tv_limits_errf(tv_limits_error *err, int r, const char *fmt, ...) {
        va_list ap;

        if (!err)
                return r;
        va_start(ap, fmt);
        (void)vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        return r;
}

const char *tv_limits_show(const char *s, char *buf, size_t size) {
        size_t o = 0, i;

        if (size == 0)
                return buf;
        for (i = 0; s[i] && i < 40 && o + 1 < size; i++) {
                unsigned char c = (unsigned char)s[i];
                buf[o++] = (c < 0x20 || c > 0x7e || c == '"' || c == '\\') ? '?' : (char)c;
        }
        if (s[i] && o + 4 < size) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = '\0';
        return buf;
}

int tv_limits_parse_u64(const char *s, size_t n, uint64_t *ret) {
        uint64_t v = 0;

        if (n == 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                unsigned d;
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                d = (unsigned)(s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

const char *tv_limits_value_str(uint64_t v, char buf[static 21]) {
        if (v == 0)
                return "max";
        (void)snprintf(buf, 21, "%" PRIu64, v);
        return buf;
}

bool tv_limits_has_word(const char *text, const char *word) {
        size_t n = strlen(word);

        for (const char *p = text; *p;) {
                size_t len;
                p += strspn(p, " \t\n");
                len = strcspn(p, " \t\n");
                if (len == n && strncmp(p, word, n) == 0)
                        return true;
                p += len;
        }
        return false;
}

int tv_limits_read_file(const char *path, char **ret_text) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t k;

                if (cap - len < 4097) {
                        char *nb;
                        if (cap >= READ_FILE_MAX)
                                return -EFBIG;
                        cap = cap ? cap * 2 : 8192;
                        nb = realloc(buf, cap);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                k = read(fd, buf + len, cap - len - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
        }
        buf[len] = '\0';
        *ret_text = TAKE_PTR(buf);
        return 0;
}

int tv_limits_write_file(const char *path, const char *buf, size_t len) {
        _cleanup_close_ int fd = -1;
        ssize_t k;

        /* O_TRUNC: harmless on cgroupfs, and keeps a regular file (the unit
         * tests' stand-in) holding exactly the last command. */
        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_TRUNC);
        if (fd < 0)
                return -errno;
        do
                k = write(fd, buf, len);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        if ((size_t)k != len)
                return -EIO;
        return 0;
}
