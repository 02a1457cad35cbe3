/* Validation of CreateVolume and friends: pure, no LVM. */
#include <stdio.h>
#include <string.h>

#include "volspec.h"

bool tenant_name_valid(const char *t) {
        size_t n = t ? strlen(t) : 0;

        if (n == 0 || n > 63)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = t[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                if (!alnum && !(c == '-' && i > 0 && i < n - 1))
                        return false;
        }
        return true;
}

int capacity_resolve(const Csi__V1__CapacityRange *cr, uint64_t extent, uint64_t *ret_size, tv_reply *reply) {
        int64_t required = cr ? cr->required_bytes : 0, limit = cr ? cr->limit_bytes : 0;
        uint64_t want, rounded;

        if (required < 0 || limit < 0)
                return reply_invalid(reply, "capacity_range: required_bytes (%lld) and limit_bytes (%lld) must not be negative",
                                     (long long)required, (long long)limit);
        if (limit > 0 && required > limit) {
                reply_status(reply, TV_STATUS_OUT_OF_RANGE,
                             "capacity_range: required_bytes %lld is more than limit_bytes %lld", (long long)required,
                             (long long)limit);
                return -ERANGE;
        }
        want = required > 0 ? (uint64_t)required : TV_DEFAULT_VOLUME_BYTES;
        if (required == 0 && limit > 0 && (uint64_t)limit < want)
                want = (uint64_t)limit;
        if (extent == 0)
                extent = 1;
        if (want > UINT64_MAX - extent || want / extent + 1 > (uint64_t)INT64_MAX / extent) {
                reply_status(reply, TV_STATUS_OUT_OF_RANGE, "capacity_range: %llu bytes is beyond any volume size",
                             (unsigned long long)want);
                return -ERANGE;
        }
        rounded = (want + extent - 1) / extent * extent;
        if (limit > 0 && rounded > (uint64_t)limit) {
                reply_status(reply, TV_STATUS_OUT_OF_RANGE,
                             "capacity_range: %llu bytes rounded up to the %llu-byte extent size is %llu, above limit_bytes %lld",
                             (unsigned long long)want, (unsigned long long)extent, (unsigned long long)rounded,
                             (long long)limit);
                return -ERANGE;
        }
        *ret_size = rounded;
        return 0;
}

static bool access_mode_single_node(Csi__V1__VolumeCapability__AccessMode__Mode m) {
        return m == CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_WRITER ||
               m == CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_READER_ONLY ||
               m == CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_SINGLE_WRITER ||
               m == CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_MULTI_WRITER;
}

static bool fs_type_supported(const char *fs) {
        return strcmp(fs, "ext4") == 0 || strcmp(fs, "xfs") == 0;
}

int capabilities_check(Csi__V1__VolumeCapability *const *caps, size_t n, bool required, const char **ret_fs,
                       bool *ret_block, tv_reply *reply) {
        const char *fs = NULL;
        bool block = false;

        if (n == 0 && required)
                return reply_invalid(reply, "volume_capabilities: at least one capability is required");
        for (size_t i = 0; i < n; i++) {
                const Csi__V1__VolumeCapability *c = caps[i];

                if (!c->access_mode || c->access_mode->mode == CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__UNKNOWN)
                        return reply_invalid(reply, "volume_capabilities[%zu]: access_mode is required", i);
                if (!access_mode_single_node(c->access_mode->mode))
                        return reply_invalid(reply,
                                             "volume_capabilities[%zu]: access mode %d needs several nodes; thinvault volumes are node-local (use a SINGLE_NODE_* mode)",
                                             i, (int)c->access_mode->mode);
                switch (c->access_type_case) {
                case CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_BLOCK:
                        block = true;
                        break;
                case CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT: {
                        const char *f = c->mount->fs_type;
                        if (f && *f) {
                                if (!fs_type_supported(f))
                                        return reply_invalid(reply,
                                                             "volume_capabilities[%zu]: fs_type \"%.32s\" is not supported (ext4 or xfs)",
                                                             i, f);
                                if (fs && strcmp(fs, f) != 0)
                                        return reply_invalid(reply, "volume_capabilities: two file systems asked for (%s, %s)",
                                                             fs, f);
                                fs = f;
                        }
                        if (!fs)
                                fs = "";
                        break;
                }
                default:
                        return reply_invalid(reply, "volume_capabilities[%zu]: access_type (block or mount) is required", i);
                }
        }
        *ret_fs = fs;
        *ret_block = block;
        return 0;
}

static const char *const known_params[] = {
        TV_PARAM_PVC_NAME, TV_PARAM_PVC_NAMESPACE, TV_PARAM_PV_NAME,
        TV_PARAM_TENANT,   TV_PARAM_FS_TYPE,       TV_PARAM_KEY_SOURCE,
};

static bool param_known(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(known_params); i++)
                if (strcmp(known_params[i], key) == 0)
                        return true;
        return false;
}

static int params_read(const Csi__V1__CreateVolumeRequest *req, volume_spec *spec, const char **ret_fs_param,
                       tv_reply *reply) {
        const char *tenant_param = NULL, *fs_param = NULL;

        for (size_t i = 0; i < req->n_parameters; i++) {
                const char *k = req->parameters[i]->key, *v = req->parameters[i]->value;

                if (tv_limits_is_param(k))
                        continue; /* read by limits_from_map() */
                if (!param_known(k))
                        return reply_invalid(reply,
                                             "parameters: unknown key \"%.64s\" (known: csi.storage.k8s.io/pvc/name, "
                                             "csi.storage.k8s.io/pvc/namespace, csi.storage.k8s.io/pv/name, tenant, fsType, keySource, "
                                             "and the I/O limits readIOPS, writeIOPS, iops, readBytesPerSecond, ... (see deploy/)",
                                             k);
                if (strlen(v) > TV_PARAM_VALUE_MAX)
                        return reply_invalid(reply, "parameters: value of %s is longer than %d bytes", k, TV_PARAM_VALUE_MAX);
                if (strcmp(k, TV_PARAM_PVC_NAMESPACE) == 0)
                        spec->pvc_namespace = v;
                else if (strcmp(k, TV_PARAM_PVC_NAME) == 0)
                        spec->pvc_name = v;
                else if (strcmp(k, TV_PARAM_PV_NAME) == 0)
                        spec->pv_name = v;
                else if (strcmp(k, TV_PARAM_TENANT) == 0)
                        tenant_param = v;
                else if (strcmp(k, TV_PARAM_FS_TYPE) == 0)
                        fs_param = v;
                else if (strcmp(k, TV_PARAM_KEY_SOURCE) == 0)
                        spec->key_source = v;
        }

        /* The PVC's namespace is the tenant; the parameter is for callers
         * without --extra-create-metadata. */
        spec->tenant = spec->pvc_namespace && *spec->pvc_namespace ? spec->pvc_namespace : tenant_param;
        if (!spec->tenant || !*spec->tenant)
                return reply_invalid(reply, "no tenant: the request needs parameter %s (external-provisioner "
                                            "--extra-create-metadata) or a \"tenant\" parameter",
                                     TV_PARAM_PVC_NAMESPACE);
        if (!tenant_name_valid(spec->tenant))
                return reply_invalid(reply, "tenant \"%.64s\" is not a Kubernetes namespace name (RFC 1123 label)",
                                     spec->tenant);
        if (!spec->key_source || !*spec->key_source)
                spec->key_source = "secret";
        if (strcmp(spec->key_source, "secret") != 0 && strcmp(spec->key_source, "derived") != 0)
                return reply_invalid(reply, "parameters: keySource must be \"secret\" or \"derived\", not \"%.32s\"",
                                     spec->key_source);
        if (fs_param && *fs_param && !fs_type_supported(fs_param))
                return reply_invalid(reply, "parameters: fsType \"%.32s\" is not supported (ext4 or xfs)", fs_param);
        *ret_fs_param = fs_param;
        return 0;
}

int volume_spec_from_request(const Csi__V1__CreateVolumeRequest *req, volume_spec *spec, tv_reply *reply) {
        const char *cap_fs = NULL, *fs_param = NULL;
        size_t len = req->name ? strlen(req->name) : 0;
        int r;

        *spec = (volume_spec){0};
        if (len == 0)
                return reply_invalid(reply, "name is required");
        if (len > TV_NAME_MAX)
                return reply_invalid(reply, "name is %zu bytes long; at most %d are accepted", len, TV_NAME_MAX);
        spec->name = req->name;
        r = tv_lv_name_from_request(TV_LV_KIND_VOLUME, req->name, spec->lv_name);
        if (r < 0)
                return reply_invalid(reply, "name cannot be mapped to a volume name");

        r = capabilities_check(req->volume_capabilities, req->n_volume_capabilities, true, &cap_fs, &spec->block,
                               reply);
        if (r < 0)
                return r;
        r = params_read(req, spec, &fs_param, reply);
        if (r < 0)
                return r;
        if (cap_fs && *cap_fs && fs_param && *fs_param && strcmp(cap_fs, fs_param) != 0)
                return reply_invalid(reply, "fsType parameter \"%s\" contradicts the capability's fs_type \"%s\"", fs_param,
                                     cap_fs);
        if (cap_fs)
                spec->fs_type = *cap_fs ? cap_fs : (fs_param && *fs_param ? fs_param : "ext4");

        /* A VolumeAttributesClass's mutable_parameters, when they set
         * limits, win over the StorageClass's. */
        r = limits_from_map(req->parameters, req->n_parameters, false, "parameters", &spec->limits, reply);
        if (r < 0)
                return r;
        if (req->n_mutable_parameters > 0) {
                tv_limits_spec m;
                r = limits_from_map((Csi__V1__CreateVolumeRequest__ParametersEntry *const *)req->mutable_parameters,
                                    req->n_mutable_parameters, true, "mutable_parameters", &m, reply);
                if (r < 0)
                        return r;
                if (!tv_limits_spec_is_empty(&m))
                        spec->limits = m;
        }
        return 0;
}

int snapshot_meta_from_request(const Csi__V1__CreateSnapshotRequest *req, snapshot_meta *ret, tv_reply *reply) {
        *ret = (snapshot_meta){0};
        for (size_t i = 0; i < req->n_parameters; i++) {
                const char *k = req->parameters[i]->key, *v = req->parameters[i]->value;

                if (strcmp(k, TV_PARAM_VS_NAME) == 0)
                        ret->vs_name = v;
                else if (strcmp(k, TV_PARAM_VS_NAMESPACE) == 0)
                        ret->vs_namespace = v;
                else if (strcmp(k, TV_PARAM_VSC_NAME) == 0)
                        ret->vsc_name = v;
                else
                        return reply_invalid(reply,
                                             "parameters: unknown key \"%.64s\" (snapshots take none but the snapshotter's "
                                             "%s, %s and %s)",
                                             k, TV_PARAM_VS_NAME, TV_PARAM_VS_NAMESPACE, TV_PARAM_VSC_NAME);
                if (strlen(v) > TV_PARAM_VALUE_MAX)
                        return reply_invalid(reply, "parameters: value of %s is longer than %d bytes", k, TV_PARAM_VALUE_MAX);
        }
        return 0;
}

int limits_from_map(Csi__V1__CreateVolumeRequest__ParametersEntry *const *entries, size_t n, bool only_limits,
                    const char *field, tv_limits_spec *ret_spec, tv_reply *reply) {
        _cleanup_free_ const char **keys = calloc(n + 1, sizeof(*keys));
        _cleanup_free_ const char **values = calloc(n + 1, sizeof(*values));
        tv_limits_error err;
        int r;

        if (!keys || !values)
                return reply_errno(reply, -ENOMEM, "read %s", field);
        for (size_t i = 0; i < n; i++) {
                if (only_limits && !tv_limits_is_param(entries[i]->key))
                        return reply_invalid(reply, "%s: unknown key \"%.64s\" (only I/O limits can change: "
                                                    "readIOPS, writeIOPS, iops, readBytesPerSecond, ... see deploy/)",
                                             field, entries[i]->key);
                keys[i] = entries[i]->key;
                values[i] = entries[i]->value;
        }
        r = tv_limits_spec_from_params(keys, values, n, ret_spec, &err);
        if (r < 0)
                return reply_invalid(reply, "%s: %s", field, err.message);
        return 0;
}

int limits_check_size(const tv_limits_spec *spec, uint64_t size, tv_reply *reply) {
        tv_limits_error err;
        tv_limits l;

        if (tv_limits_resolve(spec, size, &l, &err) < 0)
                return reply_invalid(reply, "%s", err.message);
        return 0;
}

int volume_id_format(const char *vg, const char *lv, char *buf, size_t size) {
        int n = snprintf(buf, size, "%s:%s", vg, lv);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int volume_id_parse(const char *id, const char *vg, tv_lv_kind kind, char ret_lv[TV_LV_NAME_SIZE]) {
        const char *prefix = kind == TV_LV_KIND_SNAPSHOT ? "tvs-" : "tv-";
        size_t vglen = strlen(vg);
        const char *lv;

        if (!id || !*id)
                return -EINVAL;
        if (strncmp(id, vg, vglen) != 0 || id[vglen] != ':')
                return -ENOENT;
        lv = id + vglen + 1;
        if (strlen(lv) >= TV_LV_NAME_SIZE || strncmp(lv, prefix, strlen(prefix)) != 0 || !tv_lvm_name_valid(lv))
                return -ENOENT;
        /* "tv-" is a prefix of neither kind's other: "tvs-" vs "tv-s..."
         * differ at the third byte, so a snapshot id is never a volume's. */
        strcpy(ret_lv, lv);
        return 0;
}

int page_token_parse(const char *token, size_t *ret_offset) {
        unsigned long long v = 0;

        if (!token || !*token) {
                *ret_offset = 0;
                return 0;
        }
        for (const char *p = token; *p; p++) {
                if (*p < '0' || *p > '9' || v > 100000000ULL)
                        return -EINVAL;
                v = v * 10 + (unsigned)(*p - '0');
        }
        *ret_offset = (size_t)v;
        return 0;
}
