/* `thinvaultctl inspect VOLUME`: everything about one volume, from the
 * kernel and the headers, never a key. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"

/* The device-mapper name lvm2 gives VG/LV: each '-' doubled, joined by '-'. */
static char *lv_dm_name(const char *vg, const char *lv) {
        size_t n = 2;
        char *s, *o;

        for (const char *p = vg; *p; p++)
                n += *p == '-' ? 2 : 1;
        for (const char *p = lv; *p; p++)
                n += *p == '-' ? 2 : 1;
        s = o = malloc(n);
        if (!s)
                return NULL;
        for (const char *p = vg; *p; p++) {
                *o++ = *p;
                if (*p == '-')
                        *o++ = '-';
        }
        *o++ = '-';
        for (const char *p = lv; *p; p++) {
                *o++ = *p;
                if (*p == '-')
                        *o++ = '-';
        }
        *o = '\0';
        return s;
}

typedef struct {
        char *lv_table, *map_table; /* redacted; NULL when not there */
        int lv_table_errno, map_table_errno;
} tables;

static void tables_clear(tables *t) {
        free(t->lv_table);
        free(t->map_table);
}

static void read_tables(const tv_meter_report *rep, const tv_meter_volume *v, tables *t) {
        _cleanup_free_ char *dm = lv_dm_name(rep->pool.vg, v->name);

        t->lv_table_errno = dm ? tv_meter_read_dm_table(dm, &t->lv_table) : -ENOMEM;
        t->map_table_errno = -ENXIO;
        if (v->staged)
                t->map_table_errno = tv_meter_read_dm_table(v->mapping, &t->map_table);
}

static int inspect_json(const tv_meter_report *rep, const tv_meter_volume *v, const tables *t) {
        json_t *o = admin_volume_json(rep, v), *tags = json_object(), *lv = json_object(), *dm = json_object();
        const tv_lvm_tag *tg;
        size_t n = 0;

        if (!o || !tags || !lv || !dm)
                return admin_print_json(NULL);
        json_object_set_new(lv, "vg", json_string(tv_lv_vg(v->lv)));
        json_object_set_new(lv, "uuid", json_string(tv_lv_uuid(v->lv)));
        json_object_set_new(lv, "attr", json_string(tv_lv_attr(v->lv)));
        json_object_set_new(lv, "segtype", json_string(tv_lv_segtype(v->lv)));
        json_object_set_new(lv, "pool", admin_json_str(tv_lv_pool(v->lv)));
        json_object_set_new(lv, "origin", admin_json_str(tv_lv_origin(v->lv)));
        json_object_set_new(lv, "path", admin_json_str(tv_lv_path(v->lv)));
        json_object_set_new(lv, "created", json_integer(tv_lv_created(v->lv)));
        json_object_set_new(lv, "openCount", v->usage_errno == 0 ? json_integer(v->open_count) : json_null());
        json_object_set_new(lv, "failed", json_boolean(v->thin_failed));
        json_object_set_new(o, "lv", lv);
        tg = tv_lv_tags(v->lv, &n);
        for (size_t i = 0; i < n; i++)
                json_object_set_new(tags, tg[i].key, json_string(tg[i].value));
        json_object_set_new(o, "tags", tags);
        json_object_set_new(dm, "thin", admin_json_str(t->lv_table));
        json_object_set_new(dm, "crypt", admin_json_str(t->map_table));
        json_object_set_new(o, "dmTables", dm);
        json_object_set_new(o, "mappingOnLv", v->map_on_lv < 0 ? json_null() : json_boolean(v->map_on_lv == 1));
        json_object_set_new(o, "cgroup", admin_json_str(rep->cgroup));
        return admin_print_json(o);
}

static void print_table_lines(const char *text) {
        const char *p = text;

        while (*p) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                printf("            %.*s\n", (int)len, p);
                p += len + (nl ? 1 : 0);
        }
}

static int inspect_text(const tv_meter_report *rep, const tv_meter_volume *v, const tables *t) {
        char a[32], b[32], c[32], lim[160], force[640];
        const tv_lvm_tag *tg;
        size_t n = 0;
        time_t created = (time_t)tv_lv_created(v->lv);
        struct tm tm;

        printf("Volume      %s:%s\n", rep->pool.vg, v->name);
        printf("Kind        %s\n", v->thinvault ? (v->snapshot ? "snapshot" : "volume") : "not made by thinvault");
        printf("LV          %s/%s, %s in pool %s, attr %s, uuid %s\n", tv_lv_vg(v->lv), v->name, tv_lv_segtype(v->lv),
               tv_lv_pool(v->lv) ? tv_lv_pool(v->lv) : "-", tv_lv_attr(v->lv), tv_lv_uuid(v->lv));
        if (created > 0 && gmtime_r(&created, &tm)) {
                char when[64];
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
                printf("Created     %s\n", when);
        }
        if (tv_lv_origin(v->lv))
                printf("Origin      %s\n", tv_lv_origin(v->lv));
        if (v->usage_errno == 0)
                printf("Size        %s, allocated %s (%.1f%%), device %u:%u, open count %d%s\n",
                       admin_bytes(v->size_bytes, a, sizeof(a)), admin_bytes(v->allocated_bytes, b, sizeof(b)),
                       v->size_bytes ? 100.0 * (double)v->allocated_bytes / (double)v->size_bytes : 0.0, v->lv_major,
                       v->lv_minor, v->open_count, v->thin_failed ? ", FAILED" : "");
        else
                printf("Size        %s, not active (%s)\n", admin_bytes(v->size_bytes, a, sizeof(a)), strerror(-v->usage_errno));
        tg = tv_lv_tags(v->lv, &n);
        for (size_t i = 0; i < n; i++)
                printf("%-12stv.%s=%s\n", i == 0 ? "Tags" : "", tg[i].key, tg[i].value);
        if (n == 0)
                printf("Tags        (no tv. tags)\n");
        printf("Snapshots   %u\n", v->n_snapshots);

        if (v->probe_errno < 0)
                printf("LUKS        cannot read: %s\n", v->probe_error);
        else if (v->luks.kind == TV_LUKS_KIND_OURS)
                printf("LUKS        LUKS%d, thinvault token: tenant %s, key fingerprint %s%s\n", v->luks.luks_version,
                       v->luks.tenant, v->luks.fingerprint,
                       v->tenant && strcmp(v->tenant, v->luks.tenant) != 0 ? "  (tv.tenant tag DIFFERS)" : "");
        else if (v->luks.kind == TV_LUKS_KIND_FOREIGN)
                printf("LUKS        LUKS%d without a thinvault token (not ours)\n", v->luks.luks_version);
        else if (v->luks.kind == TV_LUKS_KIND_OTHER)
                printf("LUKS        none: the LV holds %s, unencrypted\n", v->luks.type);
        else if (v->usage_errno == 0 && v->allocated_bytes)
                printf("LUKS        none: no known signature, but %s of it is written\n",
                       admin_bytes(v->allocated_bytes, a, sizeof(a)));
        else
                printf("LUKS        none: nothing written yet (formatted when first staged)\n");

        printf("Limits      spec %s\n", v->limits_tag ? v->limits_tag : "(none)");
        if (v->limits_errno < 0)
                printf("            resolved: cannot: %s\n", v->limits_error);
        else
                printf("            resolved %s (for %s)\n", admin_limits(&v->resolved, lim, sizeof(lim)),
                       admin_bytes(v->size_bytes, a, sizeof(a)));
        printf("            in force %s\n", admin_in_force(rep, v, force, sizeof(force)));

        if (!v->staged)
                printf("Staged      no\n");
        else {
                printf("Staged      mapping %s, device %u:%u%s%s%s\n", v->mapping, v->map_major, v->map_minor,
                       v->dm_kernel_name[0] ? " (" : "", v->dm_kernel_name, v->dm_kernel_name[0] ? ")" : "");
                if (v->map_on_lv == 0)
                        printf("            WARNING: the mapping does not sit on this LV\n");
                for (size_t i = 0; i < v->n_mounts; i++)
                        printf("%-12s%s\n", i == 0 ? "Mounts" : "", v->mounts[i]);
                if (v->n_mounts == 0)
                        printf("Mounts      none (staged as a block device)\n");
                if (v->fs_valid)
                        printf("Filesystem  used %s of %s, %s available; inodes %" PRIu64 " of %" PRIu64 " used\n",
                               admin_bytes(v->fs_used_bytes, a, sizeof(a)), admin_bytes(v->fs_size_bytes, b, sizeof(b)),
                               admin_bytes(v->fs_avail_bytes, c, sizeof(c)), v->fs_inodes_used, v->fs_inodes);
                if (v->io_valid) {
                        printf("I/O         reads %" PRIu64 " (%s, %" PRIu64 " ms), writes %" PRIu64 " (%s, %" PRIu64
                               " ms), discards %" PRIu64 "\n",
                               v->io.reads, admin_bytes(v->io.read_sectors * 512, a, sizeof(a)), v->io.read_ticks_ms,
                               v->io.writes, admin_bytes(v->io.write_sectors * 512, b, sizeof(b)), v->io.write_ticks_ms,
                               v->io.discards);
                }
                if (v->throttle_valid)
                        printf("Throttled   %" PRIu64 " us waited (io.stat)\n", v->throttled_us);
        }

        printf("DM tables   (keys redacted)\n");
        if (t->lv_table)
                print_table_lines(t->lv_table);
        else
                printf("            thin LV: none (%s)\n", strerror(-t->lv_table_errno));
        if (t->map_table)
                print_table_lines(t->map_table);
        else if (v->staged)
                printf("            %s: cannot read (%s)\n", v->mapping, strerror(-t->map_table_errno));
        return CLI_OK;
}

int cli_cmd_inspect(const cli_globals *g, int argc, char **argv) {
        static const admin_command cmd = {
                .name = "inspect",
                .synopsis = "VOLUME",
                .summary = "Show one volume: LV, tags, LUKS2 token, limits, mounts, I/O and device-mapper tables.",
                .details = "VOLUME is a volume id (VG:LV, as CreateVolume returns it; its VG is used) or an LV\n"
                           "name. Key material is never shown: the key field of a crypt table is printed as\n"
                           "\"" TV_METER_REDACTED "\", and targets not known to be free of keys are redacted whole.\n",
                .n_args = 1,
        };
        _cleanup_(tv_meter_report_freep) tv_meter_report *rep = NULL;
        _cleanup_(tables_clear) tables t = {0};
        char vg[ADMIN_NAME_MAX], lv[ADMIN_NAME_MAX];
        admin_opts o;
        int r;

        r = admin_parse_volume(&cmd, argc, argv, &o, vg, lv);
        if (r >= 0)
                return r;
        r = admin_collect(&o, vg, lv, TV_METER_PROBE_LUKS, &rep);
        if (r != 0)
                return r;
        read_tables(rep, &rep->volumes[0], &t);
        return o.output == ADMIN_OUT_JSON ? inspect_json(rep, &rep->volumes[0], &t)
                                          : inspect_text(rep, &rep->volumes[0], &t);
}
