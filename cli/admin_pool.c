/* `thinvaultctl pool`: how full the thin pool is, how overprovisioned, and
 * whose volumes are in it. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"

/* The plugin's guard thresholds (its --config file's "pool" object; the
 * plugin's defaults for missing keys: 90 %, 90 %, no overprovision cap). */
typedef struct {
        unsigned data_percent, metadata_percent, overprovision_percent;
} pool_thresholds;

static int percent_of(json_t *v, unsigned max, unsigned *ret) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (json_int_t)max)
                return -EINVAL;
        *ret = (unsigned)json_integer_value(v);
        return 0;
}

/* Only the "pool" object is read here; the plugin checks the rest. */
static int thresholds_load(const char *path, pool_thresholds *ret) {
        pool_thresholds t = {.data_percent = 90, .metadata_percent = 90};
        json_error_t jerr;
        json_t *root, *pool, *v;
        const char *key;
        int r = 0;

        root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                fprintf(stderr, "thinvaultctl pool: config %s line %d: %s\n", path, jerr.line, jerr.text);
                return -EINVAL;
        }
        pool = json_is_object(root) ? json_object_get(root, "pool") : NULL;
        if (!json_is_object(root) || (pool && !json_is_object(pool))) {
                fprintf(stderr, "thinvaultctl pool: config %s: expected {\"pool\": {...}, ...}\n", path);
                json_decref(root);
                return -EINVAL;
        }
        if (pool)
                json_object_foreach(pool, key, v) {
                        if (strcmp(key, "maxDataPercent") == 0)
                                r = percent_of(v, 100, &t.data_percent);
                        else if (strcmp(key, "maxMetadataPercent") == 0)
                                r = percent_of(v, 100, &t.metadata_percent);
                        else if (strcmp(key, "maxOverprovisionPercent") == 0)
                                r = percent_of(v, 100000, &t.overprovision_percent);
                        else {
                                fprintf(stderr, "thinvaultctl pool: config %s: pool: unknown key \"%.64s\"\n", path, key);
                                r = -EINVAL;
                        }
                        if (r < 0) {
                                fprintf(stderr, "thinvaultctl pool: config %s: pool.%.64s: expected an integer percentage\n",
                                        path, key);
                                break;
                        }
                }
        json_decref(root);
        if (r < 0)
                return r;
        *ret = t;
        return 0;
}

static double pct(uint64_t used, uint64_t total) {
        return total ? 100.0 * (double)used / (double)total : 0.0;
}

static const char *health(const tv_meter_pool *p, char *buf, size_t size) {
        const tv_pool_status *s = &p->status;
        char why[400];

        if (s->healthy)
                snprintf(buf, size, "healthy");
        else
                snprintf(buf, size, "NOT HEALTHY: %s", tv_pool_health_text(s, p->vg, p->thin_pool, why, sizeof(why)));
        return buf;
}

static int pool_json(const tv_meter_report *rep, const pool_thresholds *th) {
        const tv_meter_pool *p = &rep->pool;
        const tv_pool_status *s = &p->status;
        json_t *o = json_object(), *tenants = json_array();

        if (!o || !tenants)
                return admin_print_json(NULL);
        json_object_set_new(o, "vg", json_string(p->vg));
        json_object_set_new(o, "thinPool", json_string(p->thin_pool));
        json_object_set_new(o, "healthy", json_boolean(s->healthy));
        json_object_set_new(o, "readOnly", json_boolean(s->read_only));
        json_object_set_new(o, "needsCheck", json_boolean(s->needs_check));
        json_object_set_new(o, "outOfDataSpace", json_boolean(s->out_of_data_space));
        json_object_set_new(o, "outOfMetadataSpace", json_boolean(s->out_of_metadata_space));
        json_object_set_new(o, "failed", json_boolean(s->failed));
        json_object_set_new(o, "errorWhenFull", json_boolean(s->error_if_no_space));
        json_object_set_new(o, "dataTotalBytes", json_integer((json_int_t)s->data_total_bytes));
        json_object_set_new(o, "dataUsedBytes", json_integer((json_int_t)s->data_used_bytes));
        json_object_set_new(o, "dataPercent", json_real(pct(s->data_used_bytes, s->data_total_bytes)));
        json_object_set_new(o, "metadataTotalBytes", json_integer((json_int_t)s->metadata_total_bytes));
        json_object_set_new(o, "metadataUsedBytes", json_integer((json_int_t)s->metadata_used_bytes));
        json_object_set_new(o, "metadataPercent", json_real(pct(s->metadata_used_bytes, s->metadata_total_bytes)));
        json_object_set_new(o, "chunkBytes", json_integer((json_int_t)s->chunk_bytes));
        json_object_set_new(o, "virtualBytes", json_integer((json_int_t)s->thin_virtual_bytes));
        json_object_set_new(o, "overprovisionRatio", json_real(p->overprovision_ratio));
        json_object_set_new(o, "thinLvs", json_integer(s->n_thin));
        json_object_set_new(o, "volumes", json_integer(p->n_volumes));
        json_object_set_new(o, "snapshots", json_integer(p->n_snapshots));
        json_object_set_new(o, "foreignLvs", json_integer(p->n_foreign));
        json_object_set_new(o, "vgSizeBytes", json_integer((json_int_t)s->vg_size_bytes));
        json_object_set_new(o, "vgFreeBytes", json_integer((json_int_t)s->vg_free_bytes));
        if (th)
                json_object_set_new(
                        o, "thresholds",
                        json_pack("{s:i, s:i, s:i, s:b, s:b, s:b}", "maxDataPercent", (int)th->data_percent,
                                  "maxMetadataPercent", (int)th->metadata_percent, "maxOverprovisionPercent",
                                  (int)th->overprovision_percent, "dataOver",
                                  th->data_percent && pct(s->data_used_bytes, s->data_total_bytes) >= th->data_percent,
                                  "metadataOver",
                                  th->metadata_percent &&
                                          pct(s->metadata_used_bytes, s->metadata_total_bytes) >= th->metadata_percent,
                                  "overprovisionOver",
                                  th->overprovision_percent &&
                                          p->overprovision_ratio * 100.0 > (double)th->overprovision_percent));
        for (size_t i = 0; i < rep->n_tenants; i++) {
                const tv_meter_tenant *t = &rep->tenants[i];
                json_array_append_new(tenants,
                                      json_pack("{s:s, s:i, s:i, s:I, s:I}", "tenant", t->tenant, "volumes",
                                                (int)t->volumes, "snapshots", (int)t->snapshots, "provisionedBytes",
                                                (json_int_t)t->provisioned_bytes, "allocatedBytes",
                                                (json_int_t)t->allocated_bytes));
        }
        json_object_set_new(o, "tenants", tenants);
        return admin_print_json(o);
}

/* The guard refuses new space while data or metadata use is at or above
 * its percentage, and when the virtual sum would exceed the ratio. */
static void threshold_note(char *buf, size_t size, double value_percent, unsigned limit_percent, bool ratio) {
        if (!limit_percent)
                snprintf(buf, size, "(no limit)");
        else if (ratio)
                snprintf(buf, size, "limit %.2fx%s", (double)limit_percent / 100.0,
                         value_percent > (double)limit_percent ? "  OVER" : "");
        else
                snprintf(buf, size, "limit %u%%%s", limit_percent,
                         value_percent >= (double)limit_percent ? "  OVER" : "");
}

static int pool_table(const tv_meter_report *rep, const pool_thresholds *th) {
        const tv_meter_pool *p = &rep->pool;
        const tv_pool_status *s = &p->status;
        static const char *const headers[] = {"TENANT", ">VOLUMES", ">SNAPSHOTS", ">PROVISIONED", ">ALLOCATED"};
        _cleanup_(admin_table_freep) admin_table *t = NULL;
        char a[32], b[32], h[440], note[64];
        double dp = pct(s->data_used_bytes, s->data_total_bytes), mp = pct(s->metadata_used_bytes, s->metadata_total_bytes);

        printf("Thin pool   %s/%s: %s%s\n", p->vg, p->thin_pool, health(p, h, sizeof(h)),
               s->error_if_no_space ? "" : " (queues I/O when full)");
        note[0] = '\0';
        if (th)
                threshold_note(note, sizeof(note), dp, th->data_percent, false);
        printf("Data        %s of %s (%.1f%%)  %s\n", admin_bytes(s->data_used_bytes, a, sizeof(a)),
               admin_bytes(s->data_total_bytes, b, sizeof(b)), dp, note);
        if (th)
                threshold_note(note, sizeof(note), mp, th->metadata_percent, false);
        printf("Metadata    %s of %s (%.1f%%)  %s\n", admin_bytes(s->metadata_used_bytes, a, sizeof(a)),
               admin_bytes(s->metadata_total_bytes, b, sizeof(b)), mp, note);
        printf("Chunk       %s\n", admin_bytes(s->chunk_bytes, a, sizeof(a)));
        printf("Virtual     %s in %u thin LVs: %u volumes, %u snapshots, %u not made by thinvault\n",
               admin_bytes(s->thin_virtual_bytes, a, sizeof(a)), s->n_thin, p->n_volumes, p->n_snapshots, p->n_foreign);
        if (th)
                threshold_note(note, sizeof(note), p->overprovision_ratio * 100.0, th->overprovision_percent, true);
        printf("Ratio       %.2fx overprovisioned (virtual / data)  %s\n", p->overprovision_ratio, note);
        printf("VG          %s free of %s\n", admin_bytes(s->vg_free_bytes, a, sizeof(a)),
               admin_bytes(s->vg_size_bytes, b, sizeof(b)));
        if (!th)
                printf("Thresholds  not shown (give the plugin's config file with --config)\n");
        printf("\n");

        t = admin_table_new(headers, ELEMENTSOF(headers));
        if (!t)
                return CLI_FAILED;
        for (size_t i = 0; i < rep->n_tenants; i++) {
                const tv_meter_tenant *e = &rep->tenants[i];
                char nv[16], ns[16], pv[32], al[32];
                snprintf(nv, sizeof(nv), "%u", e->volumes);
                snprintf(ns, sizeof(ns), "%u", e->snapshots);
                const char *row[] = {e->tenant, nv, ns, admin_bytes(e->provisioned_bytes, pv, sizeof(pv)),
                                     admin_bytes(e->allocated_bytes, al, sizeof(al))};
                if (admin_table_add(t, row) < 0)
                        return CLI_FAILED;
        }
        admin_table_print(t, stdout);
        return CLI_OK;
}

int cli_cmd_pool(const cli_globals *g, int argc, char **argv) {
        static const admin_command cmd = {
                .name = "pool",
                .synopsis = "[--config PATH]",
                .summary = "Show the thin pool: data and metadata use, overprovisioning, volumes per tenant.",
                .details = "With --config (the plugin's config file), the guard thresholds it sets are shown\n"
                           "next to the numbers they limit, and marked OVER when reached.\n",
                .takes_config = true,
        };
        _cleanup_(tv_meter_report_freep) tv_meter_report *rep = NULL;
        pool_thresholds th;
        admin_opts o;
        int r;

        r = admin_parse(&cmd, argc, argv, &o);
        if (r >= 0)
                return r;
        if (o.config && thresholds_load(o.config, &th) < 0)
                return CLI_USAGE;
        r = admin_collect(&o, o.vg, NULL, TV_METER_POOL_STATUS, &rep);
        if (r != 0)
                return r;
        return o.output == ADMIN_OUT_JSON ? pool_json(rep, o.config ? &th : NULL)
                                          : pool_table(rep, o.config ? &th : NULL);
}
