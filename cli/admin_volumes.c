/* `thinvaultctl volumes` (every thin LV of the pool, one line each) and
 * `thinvaultctl usage` (per-tenant totals: the metering view). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"

/* ---- volumes ------------------------------------------------------------------ */

/* The IOPS in force on a staged volume: "300/300" (read/write), "max" when
 * io.max has no line for it, "?" when it cannot be read, "-" unstaged. */
static const char *iops_word(const tv_meter_volume *v, char *buf, size_t size) {
        if (!v->staged)
                return "-";
        if (v->io_max_errno < 0)
                return "?";
        if (v->in_force.read_iops == 0 && v->in_force.write_iops == 0)
                return "max";
        char r[24], w[24];
        snprintf(r, sizeof(r), "%" PRIu64, v->in_force.read_iops);
        snprintf(w, sizeof(w), "%" PRIu64, v->in_force.write_iops);
        snprintf(buf, size, "%s/%s", v->in_force.read_iops ? r : "max", v->in_force.write_iops ? w : "max");
        return buf;
}

/* Where a volume is staged: its mount points, "block" (mapped, not
 * mounted), or "no". Heap string. */
static char *staged_where(const tv_meter_volume *v) {
        char *s;
        size_t len = 1;

        if (!v->staged)
                return strdup("no");
        if (v->n_mounts == 0)
                return strdup("block");
        for (size_t i = 0; i < v->n_mounts; i++)
                len += strlen(v->mounts[i]) + 1;
        s = malloc(len);
        if (!s)
                return NULL;
        s[0] = '\0';
        for (size_t i = 0; i < v->n_mounts; i++) {
                if (i)
                        strcat(s, ",");
                strcat(s, v->mounts[i]);
        }
        return s;
}

static int volumes_table(const tv_meter_report *rep) {
        static const char *const headers[] = {"NAME", "KIND", "TENANT", "PVC", ">SIZE", ">ALLOCATED",
                                              ">USED", ">IOPS(r/w)", "ENCRYPTED", "STAGED"};
        _cleanup_(admin_table_freep) admin_table *t = admin_table_new(headers, ELEMENTSOF(headers));

        if (!t)
                return CLI_FAILED;
        for (size_t i = 0; i < rep->n_volumes; i++) {
                const tv_meter_volume *v = &rep->volumes[i];
                _cleanup_free_ char *where = staged_where(v);
                char size[32], alloc[32], used[32], iops[64];
                const char *row[] = {
                        v->name,
                        v->thinvault ? (v->snapshot ? "snapshot" : "volume") : "foreign",
                        v->tenant,
                        v->pvc,
                        admin_bytes(v->size_bytes, size, sizeof(size)),
                        v->usage_errno == 0 ? admin_bytes(v->allocated_bytes, alloc, sizeof(alloc)) : "inactive",
                        v->fs_valid ? admin_bytes(v->fs_used_bytes, used, sizeof(used)) : NULL,
                        iops_word(v, iops, sizeof(iops)),
                        admin_encrypted_word(v),
                        where,
                };
                if (!where || admin_table_add(t, row) < 0)
                        return CLI_FAILED;
        }
        admin_table_print(t, stdout);
        if (rep->n_volumes == 0)
                printf("(no thin volumes in %s/%s)\n", rep->pool.vg, rep->pool.thin_pool);
        return CLI_OK;
}

static int volumes_json(const tv_meter_report *rep) {
        json_t *o = json_object(), *a = json_array();

        if (!o || !a)
                return admin_print_json(NULL);
        json_object_set_new(o, "vg", json_string(rep->pool.vg));
        json_object_set_new(o, "thinPool", json_string(rep->pool.thin_pool));
        json_object_set_new(o, "cgroup", admin_json_str(rep->cgroup));
        for (size_t i = 0; i < rep->n_volumes; i++)
                json_array_append_new(a, admin_volume_json(rep, &rep->volumes[i]));
        json_object_set_new(o, "volumes", a);
        return admin_print_json(o);
}

int cli_cmd_volumes(const cli_globals *g, int argc, char **argv) {
        static const admin_command cmd = {
                .name = "volumes",
                .summary = "List every thin LV of the pool: tenant, size, allocated, used, IOPS, encryption, staging.",
                .details = "ALLOCATED is the pool space the LV maps; USED the file system's used bytes when it is\n"
                           "mounted on this node; IOPS(r/w) the io.max in force on the pods cgroup for a staged\n"
                           "volume (max: no limit); ENCRYPTED yes when the LV holds LUKS2 with a thinvault token\n"
                           "(foreign: LUKS without it); STAGED the mount points of its tvc- mapping. KIND foreign\n"
                           "marks a thin LV that thinvault did not make.\n",
        };
        _cleanup_(tv_meter_report_freep) tv_meter_report *rep = NULL;
        admin_opts o;
        int r;

        r = admin_parse(&cmd, argc, argv, &o);
        if (r >= 0)
                return r;
        r = admin_collect(&o, o.vg, NULL, TV_METER_PROBE_LUKS, &rep);
        if (r != 0)
                return r;
        return o.output == ADMIN_OUT_JSON ? volumes_json(rep) : volumes_table(rep);
}

/* ---- usage ---------------------------------------------------------------------- */

static json_t *tenant_json(const tv_meter_tenant *t) {
        return json_pack("{s:s?, s:i, s:i, s:I, s:I, s:I, s:i, s:I, s:I}", "tenant", t->tenant, "volumes",
                         (int)t->volumes, "staged", (int)t->staged, "provisionedBytes",
                         (json_int_t)t->provisioned_bytes, "allocatedBytes", (json_int_t)t->allocated_bytes,
                         "usedBytes", (json_int_t)t->used_bytes, "snapshots", (int)t->snapshots,
                         "snapshotProvisionedBytes", (json_int_t)t->snapshot_provisioned_bytes,
                         "snapshotAllocatedBytes", (json_int_t)t->snapshot_allocated_bytes);
}

static tv_meter_tenant usage_total(const tv_meter_report *rep) {
        tv_meter_tenant sum = {0};

        for (size_t i = 0; i < rep->n_tenants; i++) {
                const tv_meter_tenant *t = &rep->tenants[i];
                sum.volumes += t->volumes;
                sum.staged += t->staged;
                sum.snapshots += t->snapshots;
                sum.provisioned_bytes += t->provisioned_bytes;
                sum.allocated_bytes += t->allocated_bytes;
                sum.used_bytes += t->used_bytes;
                sum.snapshot_provisioned_bytes += t->snapshot_provisioned_bytes;
                sum.snapshot_allocated_bytes += t->snapshot_allocated_bytes;
        }
        return sum;
}

static int usage_json(const tv_meter_report *rep) {
        tv_meter_tenant total = usage_total(rep);
        json_t *o = json_object(), *a = json_array();

        if (!o || !a)
                return admin_print_json(NULL);
        json_object_set_new(o, "vg", json_string(rep->pool.vg));
        json_object_set_new(o, "thinPool", json_string(rep->pool.thin_pool));
        for (size_t i = 0; i < rep->n_tenants; i++)
                json_array_append_new(a, tenant_json(&rep->tenants[i]));
        json_object_set_new(o, "tenants", a);
        json_object_set_new(o, "total", tenant_json(&total));
        json_object_set_new(o, "foreignLvs", json_integer(rep->pool.n_foreign));
        return admin_print_json(o);
}

static int usage_row(admin_table *t, const char *name, const tv_meter_tenant *e) {
        char nv[16], st[16], ns[16], pv[32], al[32], us[32], sa[32];

        snprintf(nv, sizeof(nv), "%u", e->volumes);
        snprintf(st, sizeof(st), "%u", e->staged);
        snprintf(ns, sizeof(ns), "%u", e->snapshots);
        const char *row[] = {name,
                             nv,
                             st,
                             admin_bytes(e->provisioned_bytes, pv, sizeof(pv)),
                             admin_bytes(e->allocated_bytes, al, sizeof(al)),
                             admin_bytes(e->used_bytes, us, sizeof(us)),
                             ns,
                             admin_bytes(e->snapshot_allocated_bytes, sa, sizeof(sa))};
        return admin_table_add(t, row);
}

static int usage_table(const tv_meter_report *rep) {
        static const char *const headers[] = {"TENANT",     ">VOLUMES", ">STAGED",    ">PROVISIONED",
                                              ">ALLOCATED", ">USED",    ">SNAPSHOTS", ">SNAPSHOT-ALLOCATED"};
        _cleanup_(admin_table_freep) admin_table *t = admin_table_new(headers, ELEMENTSOF(headers));
        tv_meter_tenant total = usage_total(rep);

        if (!t)
                return CLI_FAILED;
        for (size_t i = 0; i < rep->n_tenants; i++)
                if (usage_row(t, rep->tenants[i].tenant, &rep->tenants[i]) < 0)
                        return CLI_FAILED;
        if (usage_row(t, "TOTAL", &total) < 0)
                return CLI_FAILED;
        admin_table_print(t, stdout);
        if (rep->pool.n_foreign)
                printf("(%u thin LVs not made by thinvault are not counted: see thinvaultctl audit)\n",
                       rep->pool.n_foreign);
        return CLI_OK;
}

int cli_cmd_usage(const cli_globals *g, int argc, char **argv) {
        static const admin_command cmd = {
                .name = "usage",
                .summary = "Per-tenant totals of the pool (the metering view).",
                .details = "VOLUMES and PROVISIONED count volumes (virtual sizes); ALLOCATED the pool space their\n"
                           "thin devices map; USED the used bytes of their file systems mounted on this node;\n"
                           "snapshots are counted apart, since they share blocks with their origins.\n",
        };
        _cleanup_(tv_meter_report_freep) tv_meter_report *rep = NULL;
        admin_opts o;
        int r;

        r = admin_parse(&cmd, argc, argv, &o);
        if (r >= 0)
                return r;
        r = admin_collect(&o, o.vg, NULL, 0, &rep);
        if (r != 0)
                return r;
        return o.output == ADMIN_OUT_JSON ? usage_json(rep) : usage_table(rep);
}
