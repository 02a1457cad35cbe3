/* key=value logging to stderr, one event per line, one write(2) per line so
 * lines from concurrent RPC threads never interleave. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "thinvault/util.h"

static _Atomic int log_level = TV_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int tv_log_level_from_string(const char *s, tv_log_level *ret) {
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (s && strcasecmp(s, level_names[i]) == 0) {
                        *ret = (tv_log_level)i;
                        return 0;
                }
        if (s && strcasecmp(s, "warning") == 0) {
                *ret = TV_LOG_WARN;
                return 0;
        }
        return -EINVAL;
}

void tv_log_set_level(tv_log_level level) {
        atomic_store(&log_level, (int)level);
}

bool tv_log_enabled(tv_log_level level) {
        return (int)level <= atomic_load(&log_level);
}

/* logfmt: bare when the value is a plain token, else "quoted" with `"`
 * and `\` escaped; control characters are dropped either way. */
static bool needs_quotes(const char *s) {
        if (!*s)
                return true;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
                        return true;
        return false;
}

static const char *quote_into(const char *s, bool quote, char *buf, size_t size) {
        size_t o = 0;

        if (size < 3) {
                if (size > 0)
                        buf[0] = '\0';
                return buf;
        }
        if (quote)
                buf[o++] = '"';
        for (const unsigned char *p = (const unsigned char *)s; *p && o + 3 < size; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        continue;
                if (*p == '"' || *p == '\\')
                        buf[o++] = '\\';
                buf[o++] = (char)*p;
        }
        if (quote)
                buf[o++] = '"';
        buf[o] = '\0';
        return buf;
}

const char *tv_log_quote(const char *s, char *buf, size_t size) {
        if (!s)
                s = "";
        return quote_into(s, needs_quotes(s), buf, size);
}

static _printf_(4, 0) void log_va(tv_log_level level, int err, const char *msg, const char *fields, va_list ap) {
        char line[4096], qmsg[1024];
        struct timespec ts;
        struct tm tm;
        int n;

        if (!tv_log_enabled(level))
                return;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        (void)gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], quote_into(msg ? msg : "", true, qmsg, sizeof(qmsg)));
        if (n < 0)
                return;
        if (fields && *fields && (size_t)n + 2 < sizeof(line)) {
                line[n++] = ' ';
                int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fields, ap);
                if (m > 0)
                        n += m;
        }
        if ((size_t)n >= sizeof(line) - 64)
                n = (int)sizeof(line) - 64;
        if (err != 0) {
                char eb[256];
                n += snprintf(line + n, sizeof(line) - (size_t)n, " err=%s",
                              tv_log_quote(strerror(err < 0 ? -err : err), eb, sizeof(eb)));
        }
        line[n++] = '\n';
        (void)!write(STDERR_FILENO, line, (size_t)n);
}

void tv_log(tv_log_level level, const char *msg, const char *fields, ...) {
        va_list ap;
        va_start(ap, fields);
        log_va(level, 0, msg, fields, ap);
        va_end(ap);
}

int tv_log_errno(int r, const char *msg, const char *fields, ...) {
        va_list ap;
        va_start(ap, fields);
        log_va(TV_LOG_ERROR, r, msg, fields, ap);
        va_end(ap);
        return r;
}
