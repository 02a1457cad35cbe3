/* thinvault: small shared helpers every layer uses.
 *
 * - cleanup attributes (one owner per resource, early returns stay safe)
 * - key=value logging
 * - tv_exec(): the only way thinvault runs an external program
 *
 * Nothing here knows about gRPC, protobuf or LVM. */
#ifndef THINVAULT_UTIL_H
#define THINVAULT_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- cleanup ---------------------------------------------------------- */

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

static inline void tv_freep(void *p) {
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(tv_freep)

static inline void tv_closep(int *fd) {
        if (*fd >= 0)
                (void)close(*fd);
}
#define _cleanup_close_ _cleanup_(tv_closep)

/* Hand ownership out of a cleanup-managed variable. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _tp = (p);                                                           \
                (p) = NULL;                                                                        \
                _tp;                                                                               \
        })
#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _tf = (fd);                                                                    \
                (fd) = -1;                                                                         \
                _tf;                                                                               \
        })

/* Defines `name##p(type **)` calling `func(type *)` when non-NULL. */
#define TV_DEFINE_FREEP(type, func)                                                                \
        static inline void func##p(type **p) {                                                     \
                if (*p)                                                                            \
                        func(*p);                                                                  \
        }

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* ---- logging ---------------------------------------------------------- */

typedef enum {
        TV_LOG_ERROR = 0,
        TV_LOG_WARN = 1,
        TV_LOG_INFO = 2,
        TV_LOG_DEBUG = 3,
} tv_log_level;

/* Parse "error", "warn", "info", "debug". Returns 0 or -EINVAL. */
int tv_log_level_from_string(const char *s, tv_log_level *ret);
void tv_log_set_level(tv_log_level level);
bool tv_log_enabled(tv_log_level level);

/* Writes one line to stderr: `ts=... level=<l> msg="<msg>" <fields>`.
 * `fields` is a printf format producing space-separated key=value pairs
 * (may be NULL). Values with spaces must be quoted by the caller with
 * tv_log_quote(). Never pass key material. Thread-safe (one write(2)). */
void tv_log(tv_log_level level, const char *msg, const char *fields, ...) _printf_(3, 4);

/* Logs at error level with `err=<strerror>` appended and returns `r`
 * (a negative errno) so callers can `return tv_log_errno(r, ...)`. */
int tv_log_errno(int r, const char *msg, const char *fields, ...) _printf_(3, 4);

#define log_error(msg, ...) tv_log(TV_LOG_ERROR, msg, __VA_ARGS__)
#define log_warn(msg, ...) tv_log(TV_LOG_WARN, msg, __VA_ARGS__)
#define log_info(msg, ...) tv_log(TV_LOG_INFO, msg, __VA_ARGS__)
#define log_debug(msg, ...)                                                                        \
        do {                                                                                       \
                if (tv_log_enabled(TV_LOG_DEBUG))                                                  \
                        tv_log(TV_LOG_DEBUG, msg, __VA_ARGS__);                                    \
        } while (0)

/* Format a value for a log field (logfmt): `s` as it is when it is a plain
 * token, else as "..." with `"` and `\` escaped; control characters are
 * dropped. Written to `buf` (truncated to `size`); returns buf. */
const char *tv_log_quote(const char *s, char *buf, size_t size);

/* ---- external programs ------------------------------------------------ */

/* Run argv[0] (looked up in PATH) with argv, no shell, stdin from
 * /dev/null, under a time-out. Captures stdout and stderr (each capped at
 * 16 MiB) into NUL-terminated heap strings the caller frees; either ret_
 * pointer may be NULL to discard that stream.
 * Returns the program's exit status (0..255) on completion, or
 *   -ETIMEDOUT  it ran longer than timeout_ms (it is killed with SIGKILL),
 *   -ENOENT     the program was not found,
 *   -EINTR      it died from a signal,
 *   another negative errno on a failed fork/pipe/read.
 * On any return, ret_out and ret_err are set (possibly empty strings) when
 * non-NULL and the return is >= 0 or -ETIMEDOUT/-EINTR; else NULL. */
int tv_exec(const char *const argv[], int timeout_ms, char **ret_out, char **ret_err);

/* ---- strings ---------------------------------------------------------- */

/* Printf into a fresh heap string; NULL on allocation failure. */
char *tv_asprintf(const char *fmt, ...) _printf_(1, 2);

/* Trim trailing whitespace in place; returns s. */
char *tv_strstrip_end(char *s);

/* Monotonic milliseconds. */
uint64_t tv_now_ms(void);
/* Monotonic microseconds. */
uint64_t tv_now_us(void);

/* ---- crash-consistency tests ------------------------------------------ */

/* Test-only: when the environment variable TV_KILL_POINT names `name`, log
 * one line (point=NAME) and die by SIGKILL right here, as a node losing
 * power or an OOM kill would stop the plugin mid-RPC. Without the variable
 * (every deployment) it is a getenv and a return. The points and the state
 * each must leave recoverable are listed in DESIGN.md ("Kill points"). */
#define TV_KILL_POINT_ENV "TV_KILL_POINT"
void tv_kill_point(const char *name);

/* Securely zero and free a buffer of `len` bytes (for anything that held a
 * secret). Safe with NULL. */
void tv_erase_free(void *p, size_t len);

#endif
