/* `thinvaultctl limits VOLUME [--set KEY=VALUE]... [--clear]`: a volume's
 * I/O budget as recorded on its LV, resolved for its size, and in force in
 * the pods cgroup. Showing reads LVM and the cgroup directly; a change goes
 * through the plugin's ControllerModifyVolume, so that the plugin stays the
 * one writer of the tag and of io.max and validates like it does for a
 * VolumeAttributesClass. */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "csi.pb-c.h"
#include "thinvault/rpc.h"

static int limits_json(const tv_meter_report *rep, const tv_meter_volume *v) {
        json_t *o = json_object();

        if (!o)
                return admin_print_json(NULL);
        json_object_set_new(o, "volumeId", json_sprintf("%s:%s", rep->pool.vg, v->name));
        json_object_set_new(o, "sizeBytes", json_integer((json_int_t)v->size_bytes));
        json_object_set_new(o, "spec", admin_json_str(v->limits_tag));
        json_object_set_new(o, "resolved", v->limits_errno < 0 ? json_null() : admin_json_limits(&v->resolved));
        json_object_set_new(o, "resolveError", v->limits_errno < 0 ? json_string(v->limits_error) : json_null());
        json_object_set_new(o, "staged", json_boolean(v->staged));
        json_object_set_new(o, "inForce",
                            v->staged && v->io_max_errno == 0 ? admin_json_limits(&v->in_force) : json_null());
        json_object_set_new(o, "cgroup", admin_json_str(rep->cgroup));
        return admin_print_json(o);
}

static int limits_text(const tv_meter_report *rep, const tv_meter_volume *v) {
        char lim[160], sz[32], force[640];

        printf("Volume    %s:%s (%s)\n", rep->pool.vg, v->name, admin_bytes(v->size_bytes, sz, sizeof(sz)));
        printf("Spec      %s\n", v->limits_tag ? v->limits_tag : "(none: unlimited)");
        if (v->limits_errno < 0)
                printf("Resolved  cannot: %s\n", v->limits_error);
        else
                printf("Resolved  %s\n", admin_limits(&v->resolved, lim, sizeof(lim)));
        printf("In force  %s\n", admin_in_force(rep, v, force, sizeof(force)));
        return CLI_OK;
}

static int show(const admin_opts *o, const char *vg, const char *lv) {
        _cleanup_(tv_meter_report_freep) tv_meter_report *rep = NULL;
        int r;

        r = admin_collect(o, vg, lv, 0, &rep);
        if (r != 0)
                return r;
        return o->output == ADMIN_OUT_JSON ? limits_json(rep, &rep->volumes[0]) : limits_text(rep, &rep->volumes[0]);
}

/* The ControllerModifyVolume request for the --set options (none with
 * --clear: an empty set removes the budget), packed into *ret_body. */
static int pack_modify(const char *volume_id, const admin_opts *o, uint8_t **ret_body, size_t *ret_len) {
        Csi__V1__ControllerModifyVolumeRequest req = CSI__V1__CONTROLLER_MODIFY_VOLUME_REQUEST__INIT;
        Csi__V1__ControllerModifyVolumeRequest__MutableParametersEntry entries[ADMIN_MAX_SETS];
        Csi__V1__ControllerModifyVolumeRequest__MutableParametersEntry *ptrs[ADMIN_MAX_SETS];
        char keys[ADMIN_MAX_SETS][64];
        size_t len;
        uint8_t *body;

        for (size_t i = 0; i < o->n_sets; i++) {
                const char *eq = strchr(o->sets[i], '=');
                size_t klen = eq ? (size_t)(eq - o->sets[i]) : 0;

                if (klen == 0 || klen >= sizeof(keys[i]) || !eq[1]) {
                        fprintf(stderr, "thinvaultctl limits: --set wants KEY=VALUE (e.g. iops=500), got '%s'\n",
                                o->sets[i]);
                        return -EINVAL;
                }
                memcpy(keys[i], o->sets[i], klen);
                keys[i][klen] = '\0';
                entries[i] = (Csi__V1__ControllerModifyVolumeRequest__MutableParametersEntry)
                        CSI__V1__CONTROLLER_MODIFY_VOLUME_REQUEST__MUTABLE_PARAMETERS_ENTRY__INIT;
                entries[i].key = keys[i];
                entries[i].value = (char *)eq + 1;
                ptrs[i] = &entries[i];
        }
        req.volume_id = (char *)volume_id;
        req.n_mutable_parameters = o->n_sets;
        req.mutable_parameters = ptrs;
        len = protobuf_c_message_get_packed_size(&req.base);
        body = malloc(len ? len : 1);
        if (!body)
                return -ENOMEM;
        protobuf_c_message_pack(&req.base, body);
        *ret_body = body;
        *ret_len = len;
        return 0;
}

static int modify(const cli_globals *g, const admin_opts *o, const char *volume_id) {
        _cleanup_free_ uint8_t *body = NULL;
        tv_rpc_result res;
        size_t len = 0;
        int r;

        r = pack_modify(volume_id, o, &body, &len);
        if (r == -EINVAL)
                return CLI_USAGE;
        if (r < 0) {
                fprintf(stderr, "thinvaultctl limits: %s\n", strerror(-r));
                return CLI_FAILED;
        }
        r = tv_rpc_call(g->endpoint, "/csi.v1.Controller/ControllerModifyVolume", body, len, g->timeout_ms, &res);
        if (r < 0) {
                fprintf(stderr, "thinvaultctl limits: cannot call ControllerModifyVolume on %s: %s\n", g->endpoint,
                        strerror(-r));
                return CLI_FAILED;
        }
        if (res.status != TV_STATUS_OK) {
                fprintf(stderr, "%s: %s\n", tv_status_name(res.status), res.message ? res.message : "");
                tv_rpc_result_clear(&res);
                return CLI_FAILED;
        }
        tv_rpc_result_clear(&res);
        return CLI_OK;
}

int cli_cmd_limits(const cli_globals *g, int argc, char **argv) {
        static const admin_command cmd = {
                .name = "limits",
                .synopsis = "VOLUME [--set KEY=VALUE]... [--clear]",
                .summary = "Show a volume's I/O budget (recorded, resolved for its size, in force); change it.",
                .details = "VOLUME is a volume id (VG:LV) or an LV name. KEY is a StorageClass budget parameter:\n"
                           "iops, readIOPS, writeIOPS, readBytesPerSecond, writeBytesPerSecond, the *PerGiB forms\n"
                           "and their min*/max* bounds (README: StorageClass parameters). --set replaces the whole\n"
                           "budget with the parameters given, as a VolumeAttributesClass does; the plugin records\n"
                           "it and, where the volume is staged on its node, applies it at once. Then the new\n"
                           "budget is shown. Example: thinvaultctl limits thinvault:pvc-1234 --set iops=500\n",
                .n_args = 1,
                .takes_set = true,
        };
        char vg[ADMIN_NAME_MAX], lv[ADMIN_NAME_MAX], id[2 * ADMIN_NAME_MAX + 1];
        admin_opts o;
        int r;

        r = admin_parse_volume(&cmd, argc, argv, &o, vg, lv);
        if (r >= 0)
                return r;
        if (o.clear && o.n_sets > 0) {
                fprintf(stderr, "thinvaultctl limits: --clear removes the budget; it does not go with --set\n");
                return CLI_USAGE;
        }
        if (o.clear || o.n_sets > 0) {
                snprintf(id, sizeof(id), "%s:%s", vg, lv);
                r = modify(g, &o, id);
                if (r != CLI_OK)
                        return r;
        }
        return show(&o, vg, lv);
}
