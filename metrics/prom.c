/* The Prometheus text exposition format, version 0.0.4, of a collection
 * and the plugin's RPC statistics. Each family is written whole (HELP,
 * TYPE, every sample) before the next, walking the volumes once per
 * family: O(families x N). */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "thinvault/metrics.h"

/* ---- values ------------------------------------------------------------------- */

typedef enum { V_COUNT, V_MILLIS, V_MICROS, V_REAL } value_kind;

typedef struct {
        value_kind kind;
        uint64_t u; /* V_COUNT: as is; V_MILLIS/V_MICROS: printed as seconds */
        double d;   /* V_REAL */
} value;

#define COUNT(x) ((value){.kind = V_COUNT, .u = (x)})
#define MILLIS(x) ((value){.kind = V_MILLIS, .u = (x)})
#define MICROS(x) ((value){.kind = V_MICROS, .u = (x)})

/* Seconds are printed from integer milli/microseconds in decimal, so a
 * counter never shows binary floating-point noise; a real that is not
 * finite is written as 0 (the format allows NaN, but no consumer of ours
 * wants one). */
static int put_value(tv_metrics_buf *b, value v) {
        switch (v.kind) {
        case V_COUNT:
                return tv_metrics_buf_printf(b, "%" PRIu64, v.u);
        case V_MILLIS:
                return tv_metrics_buf_printf(b, "%" PRIu64 ".%03" PRIu64, v.u / 1000, v.u % 1000);
        case V_MICROS:
                return tv_metrics_buf_printf(b, "%" PRIu64 ".%06" PRIu64, v.u / 1000000, v.u % 1000000);
        case V_REAL:
                return tv_metrics_buf_printf(b, "%.9g", isfinite(v.d) ? v.d : 0.0);
        }
        return -EINVAL;
}

/* ---- lines ---------------------------------------------------------------------- */

static int family(tv_metrics_buf *b, const char *name, const char *type, const char *help) {
        return tv_metrics_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef struct {
        const char *key, *value;
} label;

/* name{k="v",...} value\n; labels with a NULL key are the end. */
static int sample(tv_metrics_buf *b, const char *name, const char *suffix, const label *labels, size_t n,
                  value v) {
        (void)tv_metrics_buf_printf(b, "%s%s", name, suffix ? suffix : "");
        for (size_t i = 0; i < n; i++) {
                (void)tv_metrics_buf_printf(b, "%s%s=\"", i == 0 ? "{" : ",", labels[i].key);
                (void)tv_metrics_buf_label_value(b, labels[i].value);
                (void)tv_metrics_buf_printf(b, "\"");
        }
        (void)tv_metrics_buf_printf(b, "%s ", n ? "}" : "");
        (void)put_value(b, v);
        return tv_metrics_buf_printf(b, "\n");
}

/* ---- per volume ------------------------------------------------------------------ */

typedef bool (*volume_get)(const tv_meter_volume *v, value *ret);

static bool get_provisioned(const tv_meter_volume *v, value *ret) {
        *ret = COUNT(v->size_bytes);
        return true;
}
static bool get_allocated(const tv_meter_volume *v, value *ret) {
        *ret = COUNT(v->allocated_bytes);
        return v->usage_errno == 0;
}
static bool get_staged(const tv_meter_volume *v, value *ret) {
        *ret = COUNT(v->staged ? 1 : 0);
        return true;
}
static bool get_snapshots(const tv_meter_volume *v, value *ret) {
        *ret = COUNT(v->n_snapshots);
        return true;
}
static bool get_fs_size(const tv_meter_volume *v, value *ret) {
        *ret = COUNT(v->fs_size_bytes);
        return v->fs_valid;
}
static bool get_fs_used(const tv_meter_volume *v, value *ret) {
        *ret = COUNT(v->fs_used_bytes);
        return v->fs_valid;
}
static bool get_fs_inodes(const tv_meter_volume *v, value *ret) {
        *ret = COUNT(v->fs_inodes);
        return v->fs_valid;
}
static bool get_fs_inodes_used(const tv_meter_volume *v, value *ret) {
        *ret = COUNT(v->fs_inodes_used);
        return v->fs_valid;
}
static bool get_read_ops(const tv_meter_volume *v, value *ret) {
        *ret = COUNT(v->io.reads);
        return v->io_valid;
}
static bool get_write_ops(const tv_meter_volume *v, value *ret) {
        *ret = COUNT(v->io.writes);
        return v->io_valid;
}
/* /sys/block/<dev>/stat counts 512-byte sectors whatever the block size. */
static bool get_read_bytes(const tv_meter_volume *v, value *ret) {
        *ret = COUNT(v->io.read_sectors * 512);
        return v->io_valid;
}
static bool get_write_bytes(const tv_meter_volume *v, value *ret) {
        *ret = COUNT(v->io.write_sectors * 512);
        return v->io_valid;
}
static bool get_read_time(const tv_meter_volume *v, value *ret) {
        *ret = MILLIS(v->io.read_ticks_ms);
        return v->io_valid;
}
static bool get_write_time(const tv_meter_volume *v, value *ret) {
        *ret = MILLIS(v->io.write_ticks_ms);
        return v->io_valid;
}
static bool get_throttled(const tv_meter_volume *v, value *ret) {
        *ret = MICROS(v->throttled_us);
        return v->throttle_valid;
}
/* io.max in force: only limits that are set (0 is "max"), read without error. */
static bool in_force(const tv_meter_volume *v, uint64_t x, value *ret) {
        *ret = COUNT(x);
        return v->staged && v->io_max_errno == 0 && x > 0;
}
static bool get_limit_riops(const tv_meter_volume *v, value *ret) {
        return in_force(v, v->in_force.read_iops, ret);
}
static bool get_limit_wiops(const tv_meter_volume *v, value *ret) {
        return in_force(v, v->in_force.write_iops, ret);
}
static bool get_limit_rbps(const tv_meter_volume *v, value *ret) {
        return in_force(v, v->in_force.read_bps, ret);
}
static bool get_limit_wbps(const tv_meter_volume *v, value *ret) {
        return in_force(v, v->in_force.write_bps, ret);
}

static const struct {
        const char *name, *type, *help;
        volume_get get;
} volume_families[] = {
        {"thinvault_volume_provisioned_bytes", "gauge", "Virtual size of the volume.", get_provisioned},
        {"thinvault_volume_allocated_bytes", "gauge", "Pool space the volume maps (thin mapped bytes).",
         get_allocated},
        {"thinvault_volume_staged", "gauge", "1 when the volume is staged (opened) on this node.", get_staged},
        {"thinvault_volume_snapshots", "gauge", "Snapshots taken of the volume.", get_snapshots},
        {"thinvault_volume_fs_size_bytes", "gauge", "Size of the mounted file system.", get_fs_size},
        {"thinvault_volume_fs_used_bytes", "gauge", "Bytes used in the mounted file system.", get_fs_used},
        {"thinvault_volume_fs_inodes", "gauge", "Inodes of the mounted file system.", get_fs_inodes},
        {"thinvault_volume_fs_used_inodes", "gauge", "Inodes used in the mounted file system.", get_fs_inodes_used},
        {"thinvault_volume_read_ops_total", "counter", "Reads completed by the staged volume's device.",
         get_read_ops},
        {"thinvault_volume_write_ops_total", "counter", "Writes completed by the staged volume's device.",
         get_write_ops},
        {"thinvault_volume_read_bytes_total", "counter", "Bytes read from the staged volume's device.",
         get_read_bytes},
        {"thinvault_volume_write_bytes_total", "counter", "Bytes written to the staged volume's device.",
         get_write_bytes},
        {"thinvault_volume_read_time_seconds_total", "counter", "Time spent on reads by the staged volume's device.",
         get_read_time},
        {"thinvault_volume_write_time_seconds_total", "counter",
         "Time spent on writes by the staged volume's device.", get_write_time},
        {"thinvault_volume_throttled_seconds_total", "counter",
         "Time the volume's I/O waited for an I/O controller, where the kernel reports it.", get_throttled},
        {"thinvault_volume_limit_read_iops", "gauge", "Read IOPS limit in force (io.max riops); absent when unlimited.",
         get_limit_riops},
        {"thinvault_volume_limit_write_iops", "gauge",
         "Write IOPS limit in force (io.max wiops); absent when unlimited.", get_limit_wiops},
        {"thinvault_volume_limit_read_bytes_per_second", "gauge",
         "Read bandwidth limit in force (io.max rbps); absent when unlimited.", get_limit_rbps},
        {"thinvault_volume_limit_write_bytes_per_second", "gauge",
         "Write bandwidth limit in force (io.max wbps); absent when unlimited.", get_limit_wbps},
};

/* Per-volume families cover the tenants' volumes: snapshots share their
 * origin's blocks and foreign LVs belong to nobody. */
static bool volume_listed(const tv_meter_volume *v) {
        return v->thinvault && !v->snapshot && v->tenant;
}

static int write_volumes(tv_metrics_buf *b, const tv_meter_report *rep) {
        for (size_t f = 0; f < ELEMENTSOF(volume_families); f++) {
                (void)family(b, volume_families[f].name, volume_families[f].type, volume_families[f].help);
                for (size_t i = 0; i < rep->n_volumes; i++) {
                        const tv_meter_volume *v = &rep->volumes[i];
                        char ns[256] = "";
                        const char *name = "", *slash;
                        value val;

                        if (!volume_listed(v) || !volume_families[f].get(v, &val))
                                continue;
                        /* The pvc tag is "<namespace>/<name>". */
                        if (v->pvc && (slash = strchr(v->pvc, '/')) && (size_t)(slash - v->pvc) < sizeof(ns)) {
                                memcpy(ns, v->pvc, (size_t)(slash - v->pvc));
                                ns[slash - v->pvc] = '\0';
                                name = slash + 1;
                        }
                        label l[] = {{"volume", v->name}, {"tenant", v->tenant}, {"pvc_namespace", ns},
                                     {"pvc_name", name}};
                        (void)sample(b, volume_families[f].name, NULL, l, ELEMENTSOF(l), val);
                }
        }
        return b->err;
}

/* ---- per tenant ------------------------------------------------------------------ */

static uint64_t tenant_provisioned(const tv_meter_tenant *t) {
        return t->provisioned_bytes;
}
static uint64_t tenant_allocated(const tv_meter_tenant *t) {
        return t->allocated_bytes;
}
static uint64_t tenant_used(const tv_meter_tenant *t) {
        return t->used_bytes;
}
static uint64_t tenant_volumes(const tv_meter_tenant *t) {
        return t->volumes;
}
static uint64_t tenant_snapshots(const tv_meter_tenant *t) {
        return t->snapshots;
}

static int write_tenants(tv_metrics_buf *b, const tv_meter_report *rep) {
        static const struct {
                const char *name, *help;
                uint64_t (*get)(const tv_meter_tenant *t);
        } fams[] = {
                {"thinvault_tenant_provisioned_bytes", "Sum of the virtual sizes of the tenant's volumes.",
                 tenant_provisioned},
                {"thinvault_tenant_allocated_bytes", "Sum of the pool space the tenant's volumes map.",
                 tenant_allocated},
                {"thinvault_tenant_used_bytes", "Sum of file system bytes used on the tenant's mounted volumes.",
                 tenant_used},
                {"thinvault_tenant_volumes", "Volumes of the tenant in the pool (snapshots apart).", tenant_volumes},
                {"thinvault_tenant_snapshots", "Snapshots of the tenant in the pool.", tenant_snapshots},
        };

        for (size_t f = 0; f < ELEMENTSOF(fams); f++) {
                (void)family(b, fams[f].name, "gauge", fams[f].help);
                for (size_t i = 0; i < rep->n_tenants; i++) {
                        label l[] = {{"tenant", rep->tenants[i].tenant}};
                        (void)sample(b, fams[f].name, NULL, l, 1, COUNT(fams[f].get(&rep->tenants[i])));
                }
        }
        return b->err;
}

/* ---- the pool ------------------------------------------------------------------------ */

static int write_pool(tv_metrics_buf *b, const tv_metrics_input *in) {
        const tv_meter_report *rep = in->report;
        const tv_meter_pool *p = rep ? &rep->pool : NULL;
        const tv_pool_status *st = p ? &p->status : NULL;
        label l[] = {{"vg", p ? p->vg : in->vg}, {"thin_pool", p ? p->thin_pool : in->thin_pool}};
        const struct {
                const char *name, *help;
                value v;
                bool valid;
        } fams[] = {
                {"thinvault_pool_data_used_bytes", "Data space of the thin pool in use.",
                 COUNT(st ? st->data_used_bytes : 0), p && p->status_valid},
                {"thinvault_pool_data_total_bytes", "Data space of the thin pool.", COUNT(st ? st->data_total_bytes : 0),
                 p && p->status_valid},
                {"thinvault_pool_metadata_used_bytes", "Metadata space of the thin pool in use.",
                 COUNT(st ? st->metadata_used_bytes : 0), p && p->status_valid},
                {"thinvault_pool_metadata_total_bytes", "Metadata space of the thin pool.",
                 COUNT(st ? st->metadata_total_bytes : 0), p && p->status_valid},
                {"thinvault_pool_virtual_bytes", "Sum of the sizes of the pool's thin LVs, snapshots included.",
                 COUNT(st ? st->thin_virtual_bytes : 0), p != NULL},
                {"thinvault_pool_overprovision_ratio", "Virtual bytes over data space of the thin pool.",
                 (value){.kind = V_REAL, .d = p ? p->overprovision_ratio : 0}, p && p->status_valid},
                {"thinvault_pool_healthy", "1 when the thin pool is writable, checked, not out of space, not failed.",
                 COUNT(st && st->healthy ? 1 : 0), p && p->status_valid},
                {"thinvault_pool_out_of_metadata_space",
                 "1 when the kernel stopped allocating because the pool's metadata is full (extend it with lvextend "
                 "--poolmetadatasize).",
                 COUNT(st && st->out_of_metadata_space ? 1 : 0), p && p->status_valid},
                {"thinvault_pool_volumes", "thinvault volumes in the pool (snapshots apart).",
                 COUNT(p ? p->n_volumes : 0), p != NULL},
                {"thinvault_pool_snapshots", "thinvault snapshots in the pool.", COUNT(p ? p->n_snapshots : 0),
                 p != NULL},
        };

        (void)family(b, "thinvault_pool_up", "gauge", "1 when this scrape could read the thin pool.");
        (void)sample(b, "thinvault_pool_up", NULL, l, ELEMENTSOF(l), COUNT(p ? 1 : 0));
        for (size_t f = 0; f < ELEMENTSOF(fams); f++) {
                (void)family(b, fams[f].name, "gauge", fams[f].help);
                if (fams[f].valid)
                        (void)sample(b, fams[f].name, NULL, l, ELEMENTSOF(l), fams[f].v);
        }
        return b->err;
}

/* ---- the plugin ------------------------------------------------------------------------- */

static const char *method_name(const tv_rpc_snapshot *s, size_t i) {
        return i < s->n_methods ? s->method_names[i] : "unknown";
}

static int write_rpc(tv_metrics_buf *b, const tv_rpc_snapshot *s) {
        static const char *const hist = "thinvault_rpc_duration_seconds";

        (void)family(b, "thinvault_rpc_requests_total", "counter", "CSI calls served, by method and gRPC status code.");
        for (size_t i = 0; i <= s->n_methods; i++)
                for (int c = 0; c < TV_METRICS_N_CODES; c++) {
                        if (s->methods[i].by_code[c] == 0)
                                continue;
                        label l[] = {{"method", method_name(s, i)}, {"code", s->code_names[c]}};
                        (void)sample(b, "thinvault_rpc_requests_total", NULL, l, 2, COUNT(s->methods[i].by_code[c]));
                }

        (void)family(b, hist, "histogram", "Time from receiving a CSI call to its status, by method.");
        for (size_t i = 0; i <= s->n_methods; i++) {
                const tv_rpc_method_stats *m = &s->methods[i];
                uint64_t cum = 0;

                if (m->count == 0)
                        continue;
                for (size_t k = 0; k < TV_METRICS_N_BUCKETS; k++) {
                        cum += m->bucket[k];
                        label l[] = {{"method", method_name(s, i)}, {"le", tv_metrics_bucket_le[k]}};
                        (void)sample(b, hist, "_bucket", l, 2, COUNT(cum));
                }
                cum += m->bucket[TV_METRICS_N_BUCKETS];
                label inf[] = {{"method", method_name(s, i)}, {"le", "+Inf"}};
                (void)sample(b, hist, "_bucket", inf, 2, COUNT(cum));
                label l[] = {{"method", method_name(s, i)}};
                (void)sample(b, hist, "_sum", l, 1, MICROS(m->sum_us));
                (void)sample(b, hist, "_count", l, 1, COUNT(m->count));
        }
        return b->err;
}

int tv_metrics_write(tv_metrics_buf *b, const tv_metrics_input *in) {
        if (in->report) {
                (void)write_volumes(b, in->report);
                (void)write_tenants(b, in->report);
        }
        (void)write_pool(b, in);
        if (in->rpc)
                (void)write_rpc(b, in->rpc);
        (void)family(b, "thinvault_scrape_duration_seconds", "gauge",
                     "Time this scrape took to read the pool and its volumes.");
        (void)sample(b, "thinvault_scrape_duration_seconds", NULL, NULL, 0, MICROS(in->scrape_us));
        return b->err;
}
