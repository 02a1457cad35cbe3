/* Private to csi/: validation of what CSI requests ask for, as pure
 * functions (unit-tested on the host). Each writes a message a person can
 * act on into `reply` and returns a negative errno on refusal. */
#ifndef THINVAULT_CSI_VOLSPEC_H
#define THINVAULT_CSI_VOLSPEC_H

#include "internal.h"
#include "thinvault/limits.h"
#include "thinvault/lvm.h"

/* Longest CSI name (volume, snapshot) accepted: the spec asks plugins to
 * take at least 128 bytes; Kubernetes sends "pvc-<uuid>" (40). */
#define TV_NAME_MAX 128
/* A volume without a capacity range gets this much. */
#define TV_DEFAULT_VOLUME_BYTES (1ULL << 30)
/* Longest parameter value kept (they end up in LVM tags). */
#define TV_PARAM_VALUE_MAX 256

/* StorageClass parameters the driver reads (unknown keys are refused). */
#define TV_PARAM_PVC_NAME "csi.storage.k8s.io/pvc/name"
#define TV_PARAM_PVC_NAMESPACE "csi.storage.k8s.io/pvc/namespace"
#define TV_PARAM_PV_NAME "csi.storage.k8s.io/pv/name"
#define TV_PARAM_TENANT "tenant"
#define TV_PARAM_FS_TYPE "fsType"
#define TV_PARAM_KEY_SOURCE "keySource"

/* CreateSnapshot parameters: external-snapshotter --extra-create-metadata
 * adds these; VolumeSnapshotClass parameters are otherwise refused. */
#define TV_PARAM_VS_NAME "csi.storage.k8s.io/volumesnapshot/name"
#define TV_PARAM_VS_NAMESPACE "csi.storage.k8s.io/volumesnapshot/namespace"
#define TV_PARAM_VSC_NAME "csi.storage.k8s.io/volumesnapshotcontent/name"

/* Tag keys beyond lvm.h's. */
#define TV_TAG_FS "fs"
#define TV_TAG_KEY_SOURCE "keysrc"
#define TV_TAG_LIMITS "limits" /* tv_limits_spec_to_string() */
#define TV_TAG_VOLUMESNAPSHOT "vs" /* a snapshot's VolumeSnapshot, "namespace/name" */
#define TV_TAG_VOLUMESNAPSHOTCONTENT "vsc"

typedef struct {
        const char *name;   /* CSI request name (borrowed from the request) */
        char lv_name[TV_LV_NAME_SIZE];
        const char *tenant; /* borrowed */
        const char *pvc_namespace, *pvc_name, *pv_name; /* borrowed, may be NULL */
        const char *fs_type;    /* "ext4", "xfs", or NULL for block-only */
        const char *key_source; /* "secret" (default) or "derived" */
        uint64_t size;          /* rounded to the extent size */
        bool block;             /* asked for as a raw block volume */
        tv_limits_spec limits;  /* I/O budget asked for (zero: none) */
} volume_spec;

/* The I/O limit parameters of a string map (CreateVolume's parameters or
 * mutable_parameters, ControllerModifyVolume's mutable_parameters).
 * `only_limits`: any other key is refused. */
int limits_from_map(Csi__V1__CreateVolumeRequest__ParametersEntry *const *entries, size_t n, bool only_limits,
                    const char *field, tv_limits_spec *ret_spec, tv_reply *reply);

/* Check that `spec` resolves for a volume of `size` bytes (a per-GiB
 * product can overflow only once the size is known). */
int limits_check_size(const tv_limits_spec *spec, uint64_t size, tv_reply *reply);

/* A tenant is a Kubernetes namespace: an RFC 1123 label (1..63 of [a-z0-9-],
 * alphanumeric at both ends). */
bool tenant_name_valid(const char *t);

/* Size for a CapacityRange (NULL: default), rounded up to `extent` bytes.
 * -EINVAL for negative values; -ERANGE (OUT_OF_RANGE) when required >
 * limit or the rounded size exceeds the limit or overflows. */
int capacity_resolve(const Csi__V1__CapacityRange *cr, uint64_t extent, uint64_t *ret_size, tv_reply *reply);

/* Checks that every capability is one a node-local volume can honour
 * (single node access modes; block, or mount with ext4/xfs). `required`:
 * an empty list is refused. Writes the mount fs type asked for (NULL if
 * none) and whether block was asked for. */
int capabilities_check(Csi__V1__VolumeCapability *const *caps, size_t n, bool required, const char **ret_fs,
                       bool *ret_block, tv_reply *reply);

/* Fills spec (all but size) from a CreateVolumeRequest. */
int volume_spec_from_request(const Csi__V1__CreateVolumeRequest *req, volume_spec *spec, tv_reply *reply);

/* What CreateSnapshot's parameters name (borrowed, may be NULL): only the
 * snapshotter's metadata keys are accepted, any other is refused. */
typedef struct {
        const char *vs_namespace, *vs_name, *vsc_name;
} snapshot_meta;
int snapshot_meta_from_request(const Csi__V1__CreateSnapshotRequest *req, snapshot_meta *ret, tv_reply *reply);

/* Ids are "<vg>:<lv>": enough to find the LV without a scan. */
int volume_id_format(const char *vg, const char *lv, char *buf, size_t size);
/* Parse an id made by volume_id_format() for this `vg` and `kind`.
 * -EINVAL for an empty id; -ENOENT for anything that cannot name one of
 * our LVs of that kind in this VG (so a malformed id is "not found"). */
int volume_id_parse(const char *id, const char *vg, tv_lv_kind kind, char ret_lv[TV_LV_NAME_SIZE]);

/* Pagination tokens are decimal offsets into a name-sorted listing.
 * -EINVAL for anything else (the caller answers ABORTED, as the spec asks). */
int page_token_parse(const char *token, size_t *ret_offset);

#endif
