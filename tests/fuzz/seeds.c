#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csi.pb-c.h"
#include "fuzz.h"
#include "seeds.h"
#include "thinvault/lvm.h"

#define MAX_SEEDS 48
#define STAGING FUZZ_KUBELET_DIR "/plugins/kubernetes.io/csi/thinvault.csi.io/a1/globalmount"
#define STAGING_C FUZZ_KUBELET_DIR "/plugins/kubernetes.io/csi/thinvault.csi.io/c1"
#define STAGING_F FUZZ_KUBELET_DIR "/plugins/kubernetes.io/csi/thinvault.csi.io/f1"
#define STAGING_B FUZZ_KUBELET_DIR "/plugins/kubernetes.io/csi/volumeDevices/staging/pvc-b"
#define TARGET FUZZ_KUBELET_DIR "/pods/0f1e/volumes/kubernetes.io~csi/pvc-a/mount"
#define TARGET_B FUZZ_KUBELET_DIR "/pods/0f1e/volumeDevices/kubernetes.io~csi/pvc-b"
/* 32 bytes, base64: a node-stage secret's "key". */
#define SECRET_KEY "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
/* Another 32 bytes: the key a tenant rotates to. */
#define SECRET_KEY_NEW "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="

typedef Csi__V1__CreateVolumeRequest__ParametersEntry param;

static int add(fuzz_seed *s, size_t *n, const char *path, const char *label, const ProtobufCMessage *m) {
        size_t len = protobuf_c_message_get_packed_size(m);
        uint8_t *body = malloc(len ? len : 1);

        if (!body || *n == MAX_SEEDS) {
                free(body);
                return -ENOMEM;
        }
        protobuf_c_message_pack(m, body);
        s[(*n)++] = (fuzz_seed){.path = path, .label = label, .body = body, .len = len};
        return 0;
}

static void id_of(tv_lv_kind kind, const char *name, char *buf, size_t size) {
        char lv[TV_LV_NAME_SIZE];

        if (tv_lv_name_from_request(kind, name, lv) < 0)
                lv[0] = '\0';
        snprintf(buf, size, "%s:%s", FUZZ_VG, lv);
}

int fuzz_seeds(fuzz_seed **ret) {
        fuzz_seed *s = calloc(MAX_SEEDS, sizeof(*s));
        size_t n = 0;
        int r = 0;
        char id_a[128], id_b[128], id_c[128], id_f[128], id_snap[128];

        if (!s)
                return -ENOMEM;
        id_of(TV_LV_KIND_VOLUME, "pvc-a", id_a, sizeof(id_a));
        id_of(TV_LV_KIND_VOLUME, "pvc-b", id_b, sizeof(id_b));
        id_of(TV_LV_KIND_VOLUME, "pvc-c", id_c, sizeof(id_c));
        id_of(TV_LV_KIND_VOLUME, "pvc-f", id_f, sizeof(id_f));
        id_of(TV_LV_KIND_SNAPSHOT, "snap-a", id_snap, sizeof(id_snap));

        /* Capabilities: a mounted ext4 volume and a raw block one. */
        Csi__V1__VolumeCapability__AccessMode mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__INIT;
        mode.mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_WRITER;
        char *flags[] = {"noatime"};
        Csi__V1__VolumeCapability__MountVolume mnt = CSI__V1__VOLUME_CAPABILITY__MOUNT_VOLUME__INIT;
        mnt.fs_type = "ext4";
        mnt.n_mount_flags = 1;
        mnt.mount_flags = flags;
        Csi__V1__VolumeCapability cap_fs = CSI__V1__VOLUME_CAPABILITY__INIT;
        cap_fs.access_type_case = CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT;
        cap_fs.mount = &mnt;
        cap_fs.access_mode = &mode;
        Csi__V1__VolumeCapability__BlockVolume blk = CSI__V1__VOLUME_CAPABILITY__BLOCK_VOLUME__INIT;
        Csi__V1__VolumeCapability cap_blk = CSI__V1__VOLUME_CAPABILITY__INIT;
        cap_blk.access_type_case = CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_BLOCK;
        cap_blk.block = &blk;
        cap_blk.access_mode = &mode;
        Csi__V1__VolumeCapability *caps_fs[] = {&cap_fs}, *caps_blk[] = {&cap_blk};

        Csi__V1__CapacityRange cr = CSI__V1__CAPACITY_RANGE__INIT;
        cr.required_bytes = 64 << 20;
        Csi__V1__CapacityRange cr_big = CSI__V1__CAPACITY_RANGE__INIT;
        cr_big.required_bytes = 128 << 20;

        /* StorageClass parameters as the external-provisioner passes them. */
        param p_a[7], p_b[5];
        param *pp_a[7], *pp_b[5];
        const char *kv_a[][2] = {{"tenant", "team-a"}, {"csi.storage.k8s.io/pvc/namespace", "team-a"},
                                 {"csi.storage.k8s.io/pvc/name", "data-a"}, {"csi.storage.k8s.io/pv/name", "pvc-a"},
                                 {"fsType", "ext4"}, {"keySource", "derived"}, {"readIOPS", "100"}};
        const char *kv_b[][2] = {{"tenant", "team-b"}, {"csi.storage.k8s.io/pvc/namespace", "team-b"},
                                 {"csi.storage.k8s.io/pvc/name", "data-b"}, {"keySource", "secret"},
                                 {"writeBytesPerSecondPerGiB", "10Mi"}};
        for (size_t i = 0; i < 7; i++) {
                csi__v1__create_volume_request__parameters_entry__init(&p_a[i]);
                p_a[i].key = (char *)kv_a[i][0];
                p_a[i].value = (char *)kv_a[i][1];
                pp_a[i] = &p_a[i];
        }
        for (size_t i = 0; i < 5; i++) {
                csi__v1__create_volume_request__parameters_entry__init(&p_b[i]);
                p_b[i].key = (char *)kv_b[i][0];
                p_b[i].value = (char *)kv_b[i][1];
                pp_b[i] = &p_b[i];
        }

        /* ---- setup: the pool the other seeds talk about ---- */
        Csi__V1__CreateVolumeRequest cv_a = CSI__V1__CREATE_VOLUME_REQUEST__INIT;
        cv_a.name = "pvc-a";
        cv_a.capacity_range = &cr;
        cv_a.n_volume_capabilities = 1;
        cv_a.volume_capabilities = caps_fs;
        cv_a.n_parameters = 7;
        cv_a.parameters = pp_a;
        r |= add(s, &n, "/csi.v1.Controller/CreateVolume", "create-a", &cv_a.base);
        Csi__V1__CreateVolumeRequest cv_b = cv_a;
        cv_b.name = "pvc-b";
        cv_b.volume_capabilities = caps_blk;
        cv_b.n_parameters = 5;
        cv_b.parameters = pp_b;
        r |= add(s, &n, "/csi.v1.Controller/CreateVolume", "create-b-block", &cv_b.base);
        Csi__V1__CreateSnapshotRequest cs = CSI__V1__CREATE_SNAPSHOT_REQUEST__INIT;
        cs.source_volume_id = id_a;
        cs.name = "snap-a";
        r |= add(s, &n, "/csi.v1.Controller/CreateSnapshot", "snapshot-a", &cs.base);
        Csi__V1__NodeStageVolumeRequest ns = CSI__V1__NODE_STAGE_VOLUME_REQUEST__INIT;
        ns.volume_id = id_a;
        ns.staging_target_path = STAGING;
        ns.volume_capability = &cap_fs;
        r |= add(s, &n, "/csi.v1.Node/NodeStageVolume", "stage-a", &ns.base);
        Csi__V1__NodePublishVolumeRequest np = CSI__V1__NODE_PUBLISH_VOLUME_REQUEST__INIT;
        np.volume_id = id_a;
        np.staging_target_path = STAGING;
        np.target_path = TARGET;
        np.volume_capability = &cap_fs;
        r |= add(s, &n, "/csi.v1.Node/NodePublishVolume", "publish-a", &np.base);
        Csi__V1__NodeStageVolumeRequest__SecretsEntry sec = CSI__V1__NODE_STAGE_VOLUME_REQUEST__SECRETS_ENTRY__INIT;
        Csi__V1__NodeStageVolumeRequest__SecretsEntry *secs[] = {&sec};
        sec.key = "key";
        sec.value = SECRET_KEY;
        Csi__V1__NodeStageVolumeRequest ns_b = CSI__V1__NODE_STAGE_VOLUME_REQUEST__INIT;
        ns_b.volume_id = id_b;
        ns_b.staging_target_path = STAGING_B;
        ns_b.volume_capability = &cap_blk;
        ns_b.n_secrets = 1;
        ns_b.secrets = secs;
        r |= add(s, &n, "/csi.v1.Node/NodeStageVolume", "stage-b-block", &ns_b.base);
        Csi__V1__CreateVolumeRequest cv_c_blk = cv_b;
        cv_c_blk.name = "pvc-c";
        r |= add(s, &n, "/csi.v1.Controller/CreateVolume", "create-c-block", &cv_c_blk.base);
        /* pvc-f: formatted under team-b's key, then unstaged: what
         * DeleteVolume crypto-erases and removes. */
        Csi__V1__CreateVolumeRequest cv_f = cv_b;
        cv_f.name = "pvc-f";
        cv_f.volume_capabilities = caps_fs;
        r |= add(s, &n, "/csi.v1.Controller/CreateVolume", "create-f", &cv_f.base);
        Csi__V1__NodeStageVolumeRequest ns_f = ns_b;
        ns_f.volume_id = id_f;
        ns_f.staging_target_path = STAGING_F;
        ns_f.volume_capability = &cap_fs;
        r |= add(s, &n, "/csi.v1.Node/NodeStageVolume", "stage-f", &ns_f.base);
        Csi__V1__NodeUnstageVolumeRequest nu_f = CSI__V1__NODE_UNSTAGE_VOLUME_REQUEST__INIT;
        nu_f.volume_id = id_f;
        nu_f.staging_target_path = STAGING_F;
        r |= add(s, &n, "/csi.v1.Node/NodeUnstageVolume", "unstage-f", &nu_f.base);

        /* ---- Identity ---- */
        Csi__V1__GetPluginInfoRequest gpi = CSI__V1__GET_PLUGIN_INFO_REQUEST__INIT;
        r |= add(s, &n, "/csi.v1.Identity/GetPluginInfo", "info", &gpi.base);
        Csi__V1__GetPluginCapabilitiesRequest gpc = CSI__V1__GET_PLUGIN_CAPABILITIES_REQUEST__INIT;
        r |= add(s, &n, "/csi.v1.Identity/GetPluginCapabilities", "caps", &gpc.base);
        Csi__V1__ProbeRequest pr = CSI__V1__PROBE_REQUEST__INIT;
        r |= add(s, &n, "/csi.v1.Identity/Probe", "probe", &pr.base);

        /* ---- Controller ---- */
        Csi__V1__VolumeContentSource__SnapshotSource snap_src = CSI__V1__VOLUME_CONTENT_SOURCE__SNAPSHOT_SOURCE__INIT;
        snap_src.snapshot_id = id_snap;
        Csi__V1__VolumeContentSource src = CSI__V1__VOLUME_CONTENT_SOURCE__INIT;
        src.type_case = CSI__V1__VOLUME_CONTENT_SOURCE__TYPE_SNAPSHOT;
        src.snapshot = &snap_src;
        Csi__V1__CreateVolumeRequest cv_c = cv_a;
        cv_c.name = "pvc-e";
        cv_c.volume_content_source = &src;
        r |= add(s, &n, "/csi.v1.Controller/CreateVolume", "create-from-snapshot", &cv_c.base);
        Csi__V1__VolumeContentSource__VolumeSource vol_src = CSI__V1__VOLUME_CONTENT_SOURCE__VOLUME_SOURCE__INIT;
        vol_src.volume_id = id_a;
        Csi__V1__VolumeContentSource src_v = CSI__V1__VOLUME_CONTENT_SOURCE__INIT;
        src_v.type_case = CSI__V1__VOLUME_CONTENT_SOURCE__TYPE_VOLUME;
        src_v.volume = &vol_src;
        Csi__V1__CreateVolumeRequest cv_d = cv_a;
        cv_d.name = "pvc-d";
        cv_d.capacity_range = &cr_big;
        cv_d.volume_content_source = &src_v;
        r |= add(s, &n, "/csi.v1.Controller/CreateVolume", "clone-a", &cv_d.base);
        Csi__V1__DeleteVolumeRequest dv = CSI__V1__DELETE_VOLUME_REQUEST__INIT;
        dv.volume_id = id_b;
        r |= add(s, &n, "/csi.v1.Controller/DeleteVolume", "delete-b", &dv.base);
        /* DeleteVolume's success paths: an empty volume (discard, lvremove)
         * and a formatted one (keyslots erased first). */
        Csi__V1__DeleteVolumeRequest dv_c = dv;
        dv_c.volume_id = id_c;
        r |= add(s, &n, "/csi.v1.Controller/DeleteVolume", "delete-c-empty", &dv_c.base);
        Csi__V1__DeleteVolumeRequest dv_f = dv;
        dv_f.volume_id = id_f;
        r |= add(s, &n, "/csi.v1.Controller/DeleteVolume", "delete-f-formatted", &dv_f.base);
        Csi__V1__ValidateVolumeCapabilitiesRequest vvc = CSI__V1__VALIDATE_VOLUME_CAPABILITIES_REQUEST__INIT;
        vvc.volume_id = id_a;
        vvc.n_volume_capabilities = 1;
        vvc.volume_capabilities = caps_fs;
        r |= add(s, &n, "/csi.v1.Controller/ValidateVolumeCapabilities", "validate-a", &vvc.base);
        Csi__V1__ListVolumesRequest lv = CSI__V1__LIST_VOLUMES_REQUEST__INIT;
        lv.max_entries = 1;
        lv.starting_token = "1";
        r |= add(s, &n, "/csi.v1.Controller/ListVolumes", "list-page", &lv.base);
        Csi__V1__GetCapacityRequest gc = CSI__V1__GET_CAPACITY_REQUEST__INIT;
        gc.n_volume_capabilities = 1;
        gc.volume_capabilities = caps_fs;
        r |= add(s, &n, "/csi.v1.Controller/GetCapacity", "capacity", &gc.base);
        Csi__V1__ControllerGetCapabilitiesRequest cgc = CSI__V1__CONTROLLER_GET_CAPABILITIES_REQUEST__INIT;
        r |= add(s, &n, "/csi.v1.Controller/ControllerGetCapabilities", "caps", &cgc.base);
        Csi__V1__CreateSnapshotRequest cs2 = cs;
        cs2.name = "snap-new";
        cs2.source_volume_id = id_b;
        r |= add(s, &n, "/csi.v1.Controller/CreateSnapshot", "snapshot-b", &cs2.base);
        Csi__V1__DeleteSnapshotRequest ds = CSI__V1__DELETE_SNAPSHOT_REQUEST__INIT;
        ds.snapshot_id = id_snap;
        r |= add(s, &n, "/csi.v1.Controller/DeleteSnapshot", "delete-snap-a", &ds.base);
        Csi__V1__ListSnapshotsRequest ls = CSI__V1__LIST_SNAPSHOTS_REQUEST__INIT;
        ls.source_volume_id = id_a;
        r |= add(s, &n, "/csi.v1.Controller/ListSnapshots", "list-of-a", &ls.base);
        Csi__V1__ControllerExpandVolumeRequest ce = CSI__V1__CONTROLLER_EXPAND_VOLUME_REQUEST__INIT;
        ce.volume_id = id_a;
        ce.capacity_range = &cr_big;
        ce.volume_capability = &cap_fs;
        r |= add(s, &n, "/csi.v1.Controller/ControllerExpandVolume", "expand-a", &ce.base);
        Csi__V1__ControllerModifyVolumeRequest cm = CSI__V1__CONTROLLER_MODIFY_VOLUME_REQUEST__INIT;
        Csi__V1__ControllerModifyVolumeRequest__MutableParametersEntry mp =
                CSI__V1__CONTROLLER_MODIFY_VOLUME_REQUEST__MUTABLE_PARAMETERS_ENTRY__INIT;
        Csi__V1__ControllerModifyVolumeRequest__MutableParametersEntry *mps[] = {&mp};
        mp.key = "readIOPSPerGiB";
        mp.value = "50";
        cm.volume_id = id_a;
        cm.n_mutable_parameters = 1;
        cm.mutable_parameters = mps;
        r |= add(s, &n, "/csi.v1.Controller/ControllerModifyVolume", "modify-a", &cm.base);

        /* ---- Node ---- */
        Csi__V1__NodeGetCapabilitiesRequest ngc = CSI__V1__NODE_GET_CAPABILITIES_REQUEST__INIT;
        r |= add(s, &n, "/csi.v1.Node/NodeGetCapabilities", "caps", &ngc.base);
        Csi__V1__NodeGetInfoRequest ngi = CSI__V1__NODE_GET_INFO_REQUEST__INIT;
        r |= add(s, &n, "/csi.v1.Node/NodeGetInfo", "info", &ngi.base);
        /* A block volume staged as a file system: refused after its
         * mapping is opened, which the undo closes again (the undo once
         * read the mapping name out of scope: 57d3b88). */
        Csi__V1__NodeStageVolumeRequest ns_c = ns_b;
        ns_c.volume_id = id_c;
        ns_c.staging_target_path = STAGING_C;
        ns_c.volume_capability = &cap_fs;
        r |= add(s, &n, "/csi.v1.Node/NodeStageVolume", "stage-c-block-as-fs-refused", &ns_c.base);
        /* Key rotation: the Secret's new "key" and old "previousKey". */
        Csi__V1__NodeStageVolumeRequest__SecretsEntry sec_new = CSI__V1__NODE_STAGE_VOLUME_REQUEST__SECRETS_ENTRY__INIT,
                                                      sec_prev = CSI__V1__NODE_STAGE_VOLUME_REQUEST__SECRETS_ENTRY__INIT;
        Csi__V1__NodeStageVolumeRequest__SecretsEntry *secs_rot[] = {&sec_new, &sec_prev};
        sec_new.key = "key";
        sec_new.value = SECRET_KEY_NEW;
        sec_prev.key = "previousKey";
        sec_prev.value = SECRET_KEY;
        Csi__V1__NodeStageVolumeRequest ns_rot = ns_b;
        ns_rot.n_secrets = 2;
        ns_rot.secrets = secs_rot;
        r |= add(s, &n, "/csi.v1.Node/NodeStageVolume", "stage-b-block-rotate", &ns_rot.base);
        Csi__V1__NodeUnstageVolumeRequest nu = CSI__V1__NODE_UNSTAGE_VOLUME_REQUEST__INIT;
        nu.volume_id = id_a;
        nu.staging_target_path = STAGING;
        r |= add(s, &n, "/csi.v1.Node/NodeUnstageVolume", "unstage-a", &nu.base);
        Csi__V1__NodeUnstageVolumeRequest nu_b = nu;
        nu_b.volume_id = id_b;
        nu_b.staging_target_path = STAGING_B;
        r |= add(s, &n, "/csi.v1.Node/NodeUnstageVolume", "unstage-b-block", &nu_b.base);
        Csi__V1__NodePublishVolumeRequest np_b = np;
        np_b.volume_id = id_b;
        np_b.staging_target_path = STAGING_B;
        np_b.target_path = TARGET_B;
        np_b.volume_capability = &cap_blk;
        np_b.readonly = 1;
        r |= add(s, &n, "/csi.v1.Node/NodePublishVolume", "publish-b-block", &np_b.base);
        Csi__V1__NodeUnpublishVolumeRequest nup = CSI__V1__NODE_UNPUBLISH_VOLUME_REQUEST__INIT;
        nup.volume_id = id_a;
        nup.target_path = TARGET;
        r |= add(s, &n, "/csi.v1.Node/NodeUnpublishVolume", "unpublish-a", &nup.base);
        Csi__V1__NodeExpandVolumeRequest ne = CSI__V1__NODE_EXPAND_VOLUME_REQUEST__INIT;
        ne.volume_id = id_a;
        ne.volume_path = TARGET;
        ne.staging_target_path = STAGING;
        ne.capacity_range = &cr;
        ne.volume_capability = &cap_fs;
        r |= add(s, &n, "/csi.v1.Node/NodeExpandVolume", "expand-a", &ne.base);
        Csi__V1__NodeGetVolumeStatsRequest nst = CSI__V1__NODE_GET_VOLUME_STATS_REQUEST__INIT;
        nst.volume_id = id_a;
        nst.volume_path = TARGET;
        nst.staging_target_path = STAGING;
        r |= add(s, &n, "/csi.v1.Node/NodeGetVolumeStats", "stats-a", &nst.base);

        if (r < 0) {
                fuzz_seeds_free(s, n);
                return -ENOMEM;
        }
        *ret = s;
        return (int)n;
}

void fuzz_seeds_free(fuzz_seed *s, size_t n) {
        for (size_t i = 0; s && i < n; i++)
                free(s[i].body);
        free(s);
}
