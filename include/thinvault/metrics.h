/* thinvault: the node's metrics in the Prometheus text exposition format
 * (version 0.0.4), and the plugin's own RPC statistics.
 *
 * Two parts, both free of HTTP and gRPC:
 *   - tv_rpc_stats: per method, RPC counts by status code and a latency
 *     histogram. Recording takes a small mutex for a few additions (never
 *     across I/O), so RPC workers and scrapes never wait on each other for
 *     longer than that.
 *   - tv_metrics_write(): renders a collection (tv_meter_report: volumes,
 *     tenants, pool) and an RPC snapshot as exposition text into a growing
 *     buffer. Pure: same input, same bytes.
 *
 * Families written (every name matches [a-zA-Z_:][a-zA-Z0-9_:]*, base
 * units, counters end in _total, one # HELP and # TYPE per family and all
 * of a family's samples together):
 *   per volume, labels {volume, tenant, pvc_namespace, pvc_name}; thinvault
 *   volumes only (not snapshots, not foreign LVs):
 *     thinvault_volume_provisioned_bytes       virtual size
 *     thinvault_volume_allocated_bytes         thin mapped bytes (LV active)
 *     thinvault_volume_staged                  1 when staged on this node
 *     thinvault_volume_snapshots               snapshots taken of it
 *     thinvault_volume_fs_size_bytes, _fs_used_bytes, _fs_inodes,
 *     _fs_used_inodes                          mounted volumes (statvfs)
 *     thinvault_volume_{read,write}_ops_total, _{read,write}_bytes_total,
 *     _{read,write}_time_seconds_total         the mapping's /sys/block stat
 *     thinvault_volume_throttled_seconds_total where io.stat reports a wait
 *     thinvault_volume_limit_{read,write}_iops,
 *     thinvault_volume_limit_{read,write}_bytes_per_second
 *                                              io.max in force; a limit
 *                                              that is "max" is left out
 *   per tenant, label {tenant}:
 *     thinvault_tenant_{provisioned,allocated,used}_bytes, _volumes,
 *     _snapshots                               tv_meter_aggregate()'s sums
 *   the pool, labels {vg, thin_pool}:
 *     thinvault_pool_up                        1 when this scrape's
 *                                              collection succeeded
 *     thinvault_pool_{data,metadata}_{used,total}_bytes,
 *     thinvault_pool_virtual_bytes, _overprovision_ratio, _healthy,
 *     _volumes, _snapshots                     the pool status
 *   the plugin:
 *     thinvault_rpc_requests_total{method,code}
 *     thinvault_rpc_duration_seconds{method}   histogram, 1 ms .. 60 s
 *     thinvault_scrape_duration_seconds        this scrape's collection
 *
 * Errors: 0 or a negative errno; `ret_*` written only on success. */
#ifndef THINVAULT_METRICS_H
#define THINVAULT_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "thinvault/meter.h"
#include "thinvault/util.h"

/* The media type of what tv_metrics_write() produces. */
#define TV_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- a growing text buffer -------------------------------------------------- */

typedef struct tv_metrics_buf {
        char *data; /* NUL-terminated once anything was written */
        size_t len, cap;
        int err; /* first error (-ENOMEM); later writes are dropped */
} tv_metrics_buf;

/* Append formatted text. Returns 0, or the buffer's error. */
int tv_metrics_buf_printf(tv_metrics_buf *b, const char *fmt, ...) _printf_(2, 3);
/* Append `s` as a label value: \ as \\, " as \", newline as \n. */
int tv_metrics_buf_label_value(tv_metrics_buf *b, const char *s);
/* Give the text away (caller frees); the buffer is left empty. NULL when
 * the buffer failed (its error is kept) or nothing was written. */
char *tv_metrics_buf_steal(tv_metrics_buf *b, size_t *ret_len);
void tv_metrics_buf_clear(tv_metrics_buf *b);

/* ---- RPC statistics ------------------------------------------------------------ */

/* Histogram bucket upper bounds, in microseconds, and as `le` labels. */
#define TV_METRICS_N_BUCKETS 15
extern const uint64_t tv_metrics_bucket_us[TV_METRICS_N_BUCKETS];
extern const char *const tv_metrics_bucket_le[TV_METRICS_N_BUCKETS];
/* gRPC status codes 0..16. */
#define TV_METRICS_N_CODES 17

typedef struct tv_rpc_method_stats {
        uint64_t by_code[TV_METRICS_N_CODES];
        /* Not cumulative: bucket[i] counts durations in (bound[i-1],
         * bound[i]]; bucket[TV_METRICS_N_BUCKETS] those above the last. */
        uint64_t bucket[TV_METRICS_N_BUCKETS + 1];
        uint64_t count;
        uint64_t sum_us;
} tv_rpc_method_stats;

/* A copy of the statistics, read by tv_metrics_write(). Slot n_methods
 * (the last) is "unknown": calls to paths outside the method table, kept
 * apart so clients cannot grow the label set. */
typedef struct tv_rpc_snapshot {
        size_t n_methods;                /* without the "unknown" slot */
        const char *const *method_names; /* n_methods labels */
        const char *const *code_names;   /* TV_METRICS_N_CODES labels */
        tv_rpc_method_stats *methods;    /* n_methods + 1 */
} tv_rpc_snapshot;

void tv_rpc_snapshot_free(tv_rpc_snapshot *s);
TV_DEFINE_FREEP(tv_rpc_snapshot, tv_rpc_snapshot_free)

typedef struct tv_rpc_stats tv_rpc_stats;

/* Statistics for `n_methods` methods labelled `method_names[i]` and the
 * status codes labelled `code_names[0..16]` (both arrays and their strings
 * must outlive the object: static tables). Returns 0 or -ENOMEM. */
int tv_rpc_stats_new(const char *const *method_names, size_t n_methods, const char *const *code_names,
                     tv_rpc_stats **ret);
void tv_rpc_stats_free(tv_rpc_stats *s);
TV_DEFINE_FREEP(tv_rpc_stats, tv_rpc_stats_free)

/* Count one finished call of method `method` (an index below n_methods;
 * anything else counts as "unknown") that ended with gRPC status `code`
 * (outside 0..16 counts as UNKNOWN, 2) after `duration_us`. Thread-safe;
 * never blocks on I/O. */
void tv_rpc_stats_record(tv_rpc_stats *s, size_t method, int code, uint64_t duration_us);

/* A consistent copy (taken under the mutex). Returns 0 or -ENOMEM. */
int tv_rpc_stats_snapshot(tv_rpc_stats *s, tv_rpc_snapshot **ret);

/* ---- the listening address ------------------------------------------------------ */

/* Split a --metrics-address "HOST:PORT" ("127.0.0.1:9808", "[::1]:9808",
 * ":9808" for every IPv4 address, "node-a:9808") into the host (brackets
 * removed, "" for none) and the port (0..65535; 0 lets the kernel choose).
 * Returns 0; -EINVAL for a missing or bad port, an empty address, a host
 * with a ':' outside brackets, or a host that does not fit `host_size`.
 * Pure. */
int tv_metrics_parse_address(const char *address, char *host, size_t host_size, uint16_t *ret_port);

/* ---- the exposition ------------------------------------------------------------- */

typedef struct tv_metrics_input {
        /* The collection; NULL when it failed (then only the plugin's own
         * families and thinvault_pool_up 0 are written, with `vg` and
         * `thin_pool` as labels). */
        const tv_meter_report *report;
        const char *vg, *thin_pool;
        const tv_rpc_snapshot *rpc; /* NULL: no RPC families */
        uint64_t scrape_us;         /* how long the collection took */
} tv_metrics_input;

/* Append the exposition text of `in` to `b`. Returns 0 or -ENOMEM. Pure. */
int tv_metrics_write(tv_metrics_buf *b, const tv_metrics_input *in);

#endif
