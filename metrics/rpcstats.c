/* The plugin's RPC statistics: counts by method and status code and a
 * latency histogram, behind one small mutex held only for additions and
 * copies. */
#include <stdlib.h>
#include <string.h>

#include "thinvault/metrics.h"

/* 1 ms to 60 s: Probe and NodeGetInfo answer in a millisecond, an lvm2
 * call takes seconds in a busy node, a stage with mkfs tens of seconds. */
const uint64_t tv_metrics_bucket_us[TV_METRICS_N_BUCKETS] = {
        1000,    2500,    5000,    10000,   25000,    50000,    100000,  250000,
        500000,  1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};
const char *const tv_metrics_bucket_le[TV_METRICS_N_BUCKETS] = {
        "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
        "0.5",   "1",      "2.5",   "5",    "10",    "30",   "60",
};

struct tv_rpc_stats {
        pthread_mutex_t lock;
        size_t n_methods;
        const char *const *method_names;
        const char *const *code_names;
        tv_rpc_method_stats *methods; /* n_methods + 1 ("unknown") */
};

int tv_rpc_stats_new(const char *const *method_names, size_t n_methods, const char *const *code_names,
                     tv_rpc_stats **ret) {
        tv_rpc_stats *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->methods = calloc(n_methods + 1, sizeof(*s->methods));
        if (!s->methods || pthread_mutex_init(&s->lock, NULL) != 0) {
                free(s->methods);
                free(s);
                return -ENOMEM;
        }
        s->n_methods = n_methods;
        s->method_names = method_names;
        s->code_names = code_names;
        *ret = s;
        return 0;
}

void tv_rpc_stats_free(tv_rpc_stats *s) {
        if (!s)
                return;
        pthread_mutex_destroy(&s->lock);
        free(s->methods);
        free(s);
}

void tv_rpc_stats_record(tv_rpc_stats *s, size_t method, int code, uint64_t duration_us) {
        size_t b = 0;

        if (method > s->n_methods)
                method = s->n_methods;
        if (code < 0 || code >= TV_METRICS_N_CODES)
                code = 2; /* UNKNOWN */
        while (b < TV_METRICS_N_BUCKETS && duration_us > tv_metrics_bucket_us[b])
                b++;
        pthread_mutex_lock(&s->lock);
        tv_rpc_method_stats *m = &s->methods[method];
        m->by_code[code]++;
        m->bucket[b]++;
        m->count++;
        m->sum_us += duration_us;
        pthread_mutex_unlock(&s->lock);
}

void tv_rpc_snapshot_free(tv_rpc_snapshot *s) {
        if (!s)
                return;
        free(s->methods);
        free(s);
}

int tv_rpc_stats_snapshot(tv_rpc_stats *s, tv_rpc_snapshot **ret) {
        _cleanup_(tv_rpc_snapshot_freep) tv_rpc_snapshot *snap = calloc(1, sizeof(*snap));

        if (!snap)
                return -ENOMEM;
        snap->methods = calloc(s->n_methods + 1, sizeof(*snap->methods));
        if (!snap->methods)
                return -ENOMEM;
        snap->n_methods = s->n_methods;
        snap->method_names = s->method_names;
        snap->code_names = s->code_names;
        pthread_mutex_lock(&s->lock);
        memcpy(snap->methods, s->methods, (s->n_methods + 1) * sizeof(*snap->methods));
        pthread_mutex_unlock(&s->lock);
        *ret = TAKE_PTR(snap);
        return 0;
}
