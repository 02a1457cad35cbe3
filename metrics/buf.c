/* A growing text buffer for the exposition. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinvault/metrics.h"

static int buf_reserve(tv_metrics_buf *b, size_t more) {
        size_t need, cap;
        char *d;

        if (b->err)
                return b->err;
        if (more > SIZE_MAX - b->len - 1)
                return b->err = -ENOMEM;
        need = b->len + more + 1;
        if (need <= b->cap)
                return 0;
        cap = b->cap ? b->cap : 4096;
        while (cap < need)
                cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        d = realloc(b->data, cap);
        if (!d)
                return b->err = -ENOMEM;
        b->data = d;
        b->cap = cap;
        return 0;
}

int tv_metrics_buf_printf(tv_metrics_buf *b, const char *fmt, ...) {
        va_list ap;
        int n;
        int r;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return b->err ? b->err : (b->err = -EINVAL);
        r = buf_reserve(b, (size_t)n);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        (void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return 0;
}

static int buf_put(tv_metrics_buf *b, const char *s, size_t n) {
        int r = buf_reserve(b, n);

        if (r < 0)
                return r;
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

int tv_metrics_buf_label_value(tv_metrics_buf *b, const char *s) {
        const char *p = s ? s : "";
        int r = buf_put(b, "", 0); /* NUL-terminated even for an empty value */

        while (*p && r >= 0) {
                size_t run = strcspn(p, "\\\"\n");

                r = buf_put(b, p, run);
                p += run;
                if (!*p || r < 0)
                        break;
                r = buf_put(b, *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : "\\n", 2);
                p++;
        }
        return r;
}

char *tv_metrics_buf_steal(tv_metrics_buf *b, size_t *ret_len) {
        char *d;

        if (b->err || !b->data)
                return NULL;
        d = TAKE_PTR(b->data);
        if (ret_len)
                *ret_len = b->len;
        b->len = b->cap = 0;
        return d;
}

void tv_metrics_buf_clear(tv_metrics_buf *b) {
        free(b->data);
        *b = (tv_metrics_buf){0};
}

int tv_metrics_parse_address(const char *address, char *host, size_t host_size, uint16_t *ret_port) {
        const char *colon, *h = address, *port;
        size_t hlen;
        char *end;
        unsigned long v;

        if (!address || !*address)
                return -EINVAL;
        if (address[0] == '[') {
                const char *close = strchr(address, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                h = address + 1;
                hlen = (size_t)(close - h);
                port = close + 2;
                if (hlen == 0)
                        return -EINVAL;
        } else {
                colon = strrchr(address, ':');
                if (!colon || memchr(address, ':', (size_t)(colon - address)))
                        return -EINVAL;
                hlen = (size_t)(colon - address);
                port = colon + 1;
        }
        if (hlen >= host_size || *port < '0' || *port > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(port, &end, 10);
        if (errno || *end || v > 65535)
                return -EINVAL;
        memcpy(host, h, hlen);
        host[hlen] = '\0';
        *ret_port = (uint16_t)v;
        return 0;
}
