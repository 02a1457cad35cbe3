/* The table of every CSI v1.12.0 RPC: one place that ties gRPC paths to
 * the generated protobuf-c descriptors, for the server's dispatch and the
 * CLI's JSON conversion alike. */
#include <string.h>

#include "csi.pb-c.h"
#include "thinvault/rpc.h"

const tv_rpc_method tv_rpc_methods[] = {
        {"/csi.v1.Identity/GetPluginInfo", "Identity.GetPluginInfo", TV_SERVICE_IDENTITY, false,
         &csi__v1__get_plugin_info_request__descriptor, &csi__v1__get_plugin_info_response__descriptor},
        {"/csi.v1.Identity/GetPluginCapabilities", "Identity.GetPluginCapabilities", TV_SERVICE_IDENTITY, false,
         &csi__v1__get_plugin_capabilities_request__descriptor, &csi__v1__get_plugin_capabilities_response__descriptor},
        {"/csi.v1.Identity/Probe", "Identity.Probe", TV_SERVICE_IDENTITY, false,
         &csi__v1__probe_request__descriptor, &csi__v1__probe_response__descriptor},
        {"/csi.v1.Controller/CreateVolume", "Controller.CreateVolume", TV_SERVICE_CONTROLLER, false,
         &csi__v1__create_volume_request__descriptor, &csi__v1__create_volume_response__descriptor},
        {"/csi.v1.Controller/DeleteVolume", "Controller.DeleteVolume", TV_SERVICE_CONTROLLER, false,
         &csi__v1__delete_volume_request__descriptor, &csi__v1__delete_volume_response__descriptor},
        {"/csi.v1.Controller/ControllerPublishVolume", "Controller.ControllerPublishVolume", TV_SERVICE_CONTROLLER, false,
         &csi__v1__controller_publish_volume_request__descriptor, &csi__v1__controller_publish_volume_response__descriptor},
        {"/csi.v1.Controller/ControllerUnpublishVolume", "Controller.ControllerUnpublishVolume", TV_SERVICE_CONTROLLER, false,
         &csi__v1__controller_unpublish_volume_request__descriptor, &csi__v1__controller_unpublish_volume_response__descriptor},
        {"/csi.v1.Controller/ValidateVolumeCapabilities", "Controller.ValidateVolumeCapabilities", TV_SERVICE_CONTROLLER, false,
         &csi__v1__validate_volume_capabilities_request__descriptor, &csi__v1__validate_volume_capabilities_response__descriptor},
        {"/csi.v1.Controller/ListVolumes", "Controller.ListVolumes", TV_SERVICE_CONTROLLER, false,
         &csi__v1__list_volumes_request__descriptor, &csi__v1__list_volumes_response__descriptor},
        {"/csi.v1.Controller/GetCapacity", "Controller.GetCapacity", TV_SERVICE_CONTROLLER, false,
         &csi__v1__get_capacity_request__descriptor, &csi__v1__get_capacity_response__descriptor},
        {"/csi.v1.Controller/ControllerGetCapabilities", "Controller.ControllerGetCapabilities", TV_SERVICE_CONTROLLER, false,
         &csi__v1__controller_get_capabilities_request__descriptor, &csi__v1__controller_get_capabilities_response__descriptor},
        {"/csi.v1.Controller/CreateSnapshot", "Controller.CreateSnapshot", TV_SERVICE_CONTROLLER, false,
         &csi__v1__create_snapshot_request__descriptor, &csi__v1__create_snapshot_response__descriptor},
        {"/csi.v1.Controller/DeleteSnapshot", "Controller.DeleteSnapshot", TV_SERVICE_CONTROLLER, false,
         &csi__v1__delete_snapshot_request__descriptor, &csi__v1__delete_snapshot_response__descriptor},
        {"/csi.v1.Controller/ListSnapshots", "Controller.ListSnapshots", TV_SERVICE_CONTROLLER, false,
         &csi__v1__list_snapshots_request__descriptor, &csi__v1__list_snapshots_response__descriptor},
        {"/csi.v1.Controller/GetSnapshot", "Controller.GetSnapshot", TV_SERVICE_CONTROLLER, false,
         &csi__v1__get_snapshot_request__descriptor, &csi__v1__get_snapshot_response__descriptor},
        {"/csi.v1.Controller/ControllerExpandVolume", "Controller.ControllerExpandVolume", TV_SERVICE_CONTROLLER, false,
         &csi__v1__controller_expand_volume_request__descriptor, &csi__v1__controller_expand_volume_response__descriptor},
        {"/csi.v1.Controller/ControllerGetVolume", "Controller.ControllerGetVolume", TV_SERVICE_CONTROLLER, false,
         &csi__v1__controller_get_volume_request__descriptor, &csi__v1__controller_get_volume_response__descriptor},
        {"/csi.v1.Controller/ControllerModifyVolume", "Controller.ControllerModifyVolume", TV_SERVICE_CONTROLLER, false,
         &csi__v1__controller_modify_volume_request__descriptor, &csi__v1__controller_modify_volume_response__descriptor},
        {"/csi.v1.GroupController/GroupControllerGetCapabilities", "GroupController.GroupControllerGetCapabilities", TV_SERVICE_GROUP_CONTROLLER, false,
         &csi__v1__group_controller_get_capabilities_request__descriptor, &csi__v1__group_controller_get_capabilities_response__descriptor},
        {"/csi.v1.GroupController/CreateVolumeGroupSnapshot", "GroupController.CreateVolumeGroupSnapshot", TV_SERVICE_GROUP_CONTROLLER, false,
         &csi__v1__create_volume_group_snapshot_request__descriptor, &csi__v1__create_volume_group_snapshot_response__descriptor},
        {"/csi.v1.GroupController/DeleteVolumeGroupSnapshot", "GroupController.DeleteVolumeGroupSnapshot", TV_SERVICE_GROUP_CONTROLLER, false,
         &csi__v1__delete_volume_group_snapshot_request__descriptor, &csi__v1__delete_volume_group_snapshot_response__descriptor},
        {"/csi.v1.GroupController/GetVolumeGroupSnapshot", "GroupController.GetVolumeGroupSnapshot", TV_SERVICE_GROUP_CONTROLLER, false,
         &csi__v1__get_volume_group_snapshot_request__descriptor, &csi__v1__get_volume_group_snapshot_response__descriptor},
        {"/csi.v1.SnapshotMetadata/GetMetadataAllocated", "SnapshotMetadata.GetMetadataAllocated", TV_SERVICE_SNAPSHOT_METADATA, true,
         &csi__v1__get_metadata_allocated_request__descriptor, &csi__v1__get_metadata_allocated_response__descriptor},
        {"/csi.v1.SnapshotMetadata/GetMetadataDelta", "SnapshotMetadata.GetMetadataDelta", TV_SERVICE_SNAPSHOT_METADATA, true,
         &csi__v1__get_metadata_delta_request__descriptor, &csi__v1__get_metadata_delta_response__descriptor},
        {"/csi.v1.Node/NodeStageVolume", "Node.NodeStageVolume", TV_SERVICE_NODE, false,
         &csi__v1__node_stage_volume_request__descriptor, &csi__v1__node_stage_volume_response__descriptor},
        {"/csi.v1.Node/NodeUnstageVolume", "Node.NodeUnstageVolume", TV_SERVICE_NODE, false,
         &csi__v1__node_unstage_volume_request__descriptor, &csi__v1__node_unstage_volume_response__descriptor},
        {"/csi.v1.Node/NodePublishVolume", "Node.NodePublishVolume", TV_SERVICE_NODE, false,
         &csi__v1__node_publish_volume_request__descriptor, &csi__v1__node_publish_volume_response__descriptor},
        {"/csi.v1.Node/NodeUnpublishVolume", "Node.NodeUnpublishVolume", TV_SERVICE_NODE, false,
         &csi__v1__node_unpublish_volume_request__descriptor, &csi__v1__node_unpublish_volume_response__descriptor},
        {"/csi.v1.Node/NodeGetVolumeStats", "Node.NodeGetVolumeStats", TV_SERVICE_NODE, false,
         &csi__v1__node_get_volume_stats_request__descriptor, &csi__v1__node_get_volume_stats_response__descriptor},
        {"/csi.v1.Node/NodeExpandVolume", "Node.NodeExpandVolume", TV_SERVICE_NODE, false,
         &csi__v1__node_expand_volume_request__descriptor, &csi__v1__node_expand_volume_response__descriptor},
        {"/csi.v1.Node/NodeGetCapabilities", "Node.NodeGetCapabilities", TV_SERVICE_NODE, false,
         &csi__v1__node_get_capabilities_request__descriptor, &csi__v1__node_get_capabilities_response__descriptor},
        {"/csi.v1.Node/NodeGetInfo", "Node.NodeGetInfo", TV_SERVICE_NODE, false,
         &csi__v1__node_get_info_request__descriptor, &csi__v1__node_get_info_response__descriptor},
};
const size_t tv_rpc_n_methods = sizeof(tv_rpc_methods) / sizeof(tv_rpc_methods[0]);

const tv_rpc_method *tv_rpc_method_find(const char *path_or_name) {
        if (!path_or_name)
                return NULL;
        for (size_t i = 0; i < tv_rpc_n_methods; i++)
                if (strcmp(tv_rpc_methods[i].path, path_or_name) == 0 ||
                    strcmp(tv_rpc_methods[i].name, path_or_name) == 0)
                        return &tv_rpc_methods[i];
        return NULL;
}

bool tv_rpc_field_is_secret(const ProtobufCMessageDescriptor *msg, const ProtobufCFieldDescriptor *field) {
        /* protobuf-c keeps no custom options, so the csi_secret marking is
         * recognised by its shape: in CSI v1.12.0 every csi_secret field is
         * `map<string,string> secrets` and no other field has that name. */
        (void)msg;
        return field && strcmp(field->name, "secrets") == 0 && field->label == PROTOBUF_C_LABEL_REPEATED;
}

static const char *const status_names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED",
};

const char *tv_status_name(int status) {
        if (status < 0 || (size_t)status >= sizeof(status_names) / sizeof(status_names[0]))
                return "UNKNOWN_STATUS";
        return status_names[status];
}
