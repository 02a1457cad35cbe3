/* `thinvaultctl audit`: does every promise hold for every thin LV of the
 * pool? Each volume encrypted with LUKS2 and our token, the token's tenant
 * the tag's tenant, a staged volume held to its limits, nothing in the
 * pool that thinvault did not make. Findings, exit status 1; or "clean". */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"

typedef struct {
        char *volume; /* NULL for the pool itself */
        const char *check;
        char *message;
} finding;

typedef struct {
        finding *items;
        size_t n;
        bool oom;
} findings;

static void findings_clear(findings *f) {
        for (size_t i = 0; i < f->n; i++) {
                free(f->items[i].volume);
                free(f->items[i].message);
        }
        free(f->items);
}

static void add(findings *f, const char *volume, const char *check, const char *fmt, ...) _printf_(4, 5);
static void add(findings *f, const char *volume, const char *check, const char *fmt, ...) {
        finding *n = realloc(f->items, (f->n + 1) * sizeof(*n));
        va_list ap;
        char *msg = NULL;

        if (!n) {
                f->oom = true;
                return;
        }
        f->items = n;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        n[f->n] = (finding){.volume = volume ? strdup(volume) : NULL, .check = check, .message = msg};
        if (!msg || (volume && !n[f->n].volume)) {
                free(msg);
                free(n[f->n].volume);
                f->oom = true;
                return;
        }
        f->n++;
}

static void audit_pool(const tv_meter_report *rep, findings *f) {
        const tv_pool_status *s = &rep->pool.status;

        char why[400];

        if (rep->pool.status_valid && !s->healthy)
                add(f, NULL, "pool-health", "thin pool %s/%s is not healthy: %s", rep->pool.vg, rep->pool.thin_pool,
                    tv_pool_health_text(s, rep->pool.vg, rep->pool.thin_pool, why, sizeof(why)));
}

/* What a probe found, for a message. */
static const char *holds(const tv_meter_volume *v) {
        switch (v->luks.kind) {
        case TV_LUKS_KIND_EMPTY:
                return v->usage_errno == 0 && v->allocated_bytes ? "data without any known signature" : "nothing yet";
        case TV_LUKS_KIND_FOREIGN:
                return v->luks.luks_version == 2 ? "LUKS2 without a thinvault token" : "LUKS1";
        case TV_LUKS_KIND_OTHER:
                return v->luks.type;
        default:
                return "LUKS2 with a thinvault token";
        }
}

static void audit_encryption(const tv_meter_volume *v, findings *f) {
        if (v->probe_errno < 0) {
                add(f, v->name, "unchecked", "cannot read the LUKS header: %s", v->probe_error);
                return;
        }
        switch (v->luks.kind) {
        case TV_LUKS_KIND_OURS:
                if (!v->tenant || strcmp(v->luks.tenant, v->tenant) != 0)
                        add(f, v->name, "tenant-mismatch",
                            "the LUKS2 token says tenant %s, the tv.tenant tag says %s", v->luks.tenant,
                            v->tenant ? v->tenant : "(none)");
                return;
        case TV_LUKS_KIND_EMPTY:
                /* A volume is formatted when first staged; until then it
                 * maps no block and holds nothing to protect. */
                if (v->usage_errno == 0 && v->allocated_bytes == 0)
                        return;
                add(f, v->name, "unencrypted", "no LUKS2 header, but %s of pool space is written",
                    admin_bytes(v->allocated_bytes, (char[32]){0}, 32));
                return;
        case TV_LUKS_KIND_FOREIGN:
                add(f, v->name, "not-ours", "the volume holds %s: thinvault did not format it", holds(v));
                return;
        default:
                add(f, v->name, "unencrypted", "the volume holds %s, unencrypted", holds(v));
                return;
        }
}

static void audit_limits(const tv_meter_report *rep, const tv_meter_volume *v, findings *f) {
        char want[160], have[160];

        if (v->limits_errno < 0) {
                add(f, v->name, "limits-tag", "the limits tag \"%s\" cannot be used: %s", v->limits_tag, v->limits_error);
                return;
        }
        if (!v->staged)
                return;
        if (v->map_on_lv == 0)
                add(f, v->name, "mapping", "mapping %s does not sit on this LV", v->mapping);
        if (!rep->cgroup) {
                if (!tv_limits_is_unlimited(&v->resolved))
                        add(f, v->name, "io-max", "staged with limits %s, but there is no pods cgroup to hold them: %s",
                            admin_limits(&v->resolved, want, sizeof(want)), rep->cgroup_error);
                return;
        }
        if (v->io_max_errno < 0) {
                add(f, v->name, "io-max", "cannot read %s/io.max: %s", rep->cgroup, strerror(-v->io_max_errno));
                return;
        }
        if (tv_limits_equal(&v->resolved, &v->in_force))
                return;
        if (tv_limits_is_unlimited(&v->in_force))
                add(f, v->name, "io-max", "staged as %u:%u without its io.max limit: want %s, %s/io.max has no line",
                    v->map_major, v->map_minor, admin_limits(&v->resolved, want, sizeof(want)), rep->cgroup);
        else
                add(f, v->name, "io-max", "io.max of %u:%u is %s, want %s", v->map_major, v->map_minor,
                    admin_limits(&v->in_force, have, sizeof(have)), admin_limits(&v->resolved, want, sizeof(want)));
}

static void audit_volume(const tv_meter_report *rep, const tv_meter_volume *v, findings *f) {
        if (!v->thinvault) {
                const char *what = v->probe_errno < 0 ? "contents unknown" : holds(v);
                if (v->probe_errno == 0 && v->luks.kind == TV_LUKS_KIND_FOREIGN)
                        add(f, v->name, "foreign-lv", "LV in the pool not made by thinvault (no tv. tags): holds %s", what);
                else
                        add(f, v->name, "unencrypted-lv",
                            "unencrypted LV in the pool: not made by thinvault (no tv. tags), holds %s", what);
                return;
        }
        if (!v->tenant || !tv_tenant_valid(v->tenant))
                add(f, v->name, "no-tenant", "no valid tv.tenant tag (%s)", v->tenant ? v->tenant : "none");
        if (v->usage_errno == -ENXIO) {
                add(f, v->name, "unchecked", "the LV is not active: its header cannot be read (lvchange -ay %s/%s)",
                    rep->pool.vg, v->name);
                return;
        }
        if (v->usage_errno == 0 && v->thin_failed)
                add(f, v->name, "thin-failed", "the thin device fails all I/O (see the pool's health)");
        audit_encryption(v, f);
        audit_limits(rep, v, f);
}

int cli_cmd_audit(const cli_globals *g, int argc, char **argv) {
        static const admin_command cmd = {
                .name = "audit",
                .summary = "Check every thin LV of the pool; list the findings (exit status 1) or say clean (0).",
                .details = "Checks: each volume and snapshot holds LUKS2 with a thinvault token (a volume that was\n"
                           "never staged maps no block and passes), the token's tenant is the tv.tenant tag, a\n"
                           "volume staged on this node (mapping tvc-LV) has exactly its resolved limits in io.max\n"
                           "on the pods cgroup, and the pool holds no LV that thinvault did not make.\n",
        };
        _cleanup_(tv_meter_report_freep) tv_meter_report *rep = NULL;
        _cleanup_(findings_clear) findings f = {0};
        admin_opts o;
        int r;

        r = admin_parse(&cmd, argc, argv, &o);
        if (r >= 0)
                return r;
        r = admin_collect(&o, o.vg, NULL, TV_METER_PROBE_LUKS | TV_METER_POOL_STATUS, &rep);
        if (r != 0)
                return r;
        audit_pool(rep, &f);
        for (size_t i = 0; i < rep->n_volumes; i++)
                audit_volume(rep, &rep->volumes[i], &f);
        if (f.oom) {
                fprintf(stderr, "thinvaultctl audit: out of memory\n");
                return CLI_FAILED;
        }

        if (o.output == ADMIN_OUT_JSON) {
                json_t *root = json_object(), *a = json_array();
                if (!root || !a)
                        return admin_print_json(NULL);
                json_object_set_new(root, "vg", json_string(rep->pool.vg));
                json_object_set_new(root, "thinPool", json_string(rep->pool.thin_pool));
                json_object_set_new(root, "checked", json_integer((json_int_t)rep->n_volumes));
                json_object_set_new(root, "clean", json_boolean(f.n == 0));
                for (size_t i = 0; i < f.n; i++)
                        json_array_append_new(a, json_pack("{s:s?, s:s, s:s}", "volume", f.items[i].volume, "check",
                                                           f.items[i].check, "message", f.items[i].message));
                json_object_set_new(root, "findings", a);
                r = admin_print_json(root);
                if (r != CLI_OK)
                        return r;
        } else if (f.n == 0)
                printf("clean: %zu thin LVs of %s/%s checked\n", rep->n_volumes, rep->pool.vg, rep->pool.thin_pool);
        else {
                for (size_t i = 0; i < f.n; i++)
                        printf("%s/%s: %s: %s\n", rep->pool.vg, f.items[i].volume ? f.items[i].volume : rep->pool.thin_pool,
                               f.items[i].check, f.items[i].message);
                printf("%zu findings in %zu thin LVs of %s/%s\n", f.n, rep->n_volumes, rep->pool.vg, rep->pool.thin_pool);
        }
        return f.n ? CLI_FAILED : CLI_OK;
}
