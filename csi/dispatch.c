/* One table from gRPC path to handler; everything a request goes through
 * before and after its handler (decode, UNIMPLEMENTED, free) is here. */
#include <string.h>

#include "internal.h"

typedef struct {
        const char *path;
        tv_handler handler;
} route;

/* Methods not listed answer UNIMPLEMENTED. Keep in step with the
 * capabilities the Identity/Controller/Node services report. */
static const route routes[] = {
        {"/csi.v1.Identity/GetPluginInfo", identity_get_plugin_info},
        {"/csi.v1.Identity/GetPluginCapabilities", identity_get_plugin_capabilities},
        {"/csi.v1.Identity/Probe", identity_probe},
        {"/csi.v1.Controller/CreateVolume", controller_create_volume},
        {"/csi.v1.Controller/DeleteVolume", controller_delete_volume},
        {"/csi.v1.Controller/ValidateVolumeCapabilities", controller_validate_volume_capabilities},
        {"/csi.v1.Controller/ListVolumes", controller_list_volumes},
        {"/csi.v1.Controller/GetCapacity", controller_get_capacity},
        {"/csi.v1.Controller/ControllerGetCapabilities", controller_get_capabilities},
        {"/csi.v1.Controller/CreateSnapshot", controller_create_snapshot},
        {"/csi.v1.Controller/DeleteSnapshot", controller_delete_snapshot},
        {"/csi.v1.Controller/ListSnapshots", controller_list_snapshots},
        {"/csi.v1.Controller/ControllerExpandVolume", controller_expand_volume},
        {"/csi.v1.Controller/ControllerModifyVolume", controller_modify_volume},
        {"/csi.v1.Node/NodeGetCapabilities", node_get_capabilities},
        {"/csi.v1.Node/NodeGetInfo", node_get_info},
        {"/csi.v1.Node/NodeStageVolume", node_stage_volume},
        {"/csi.v1.Node/NodeUnstageVolume", node_unstage_volume},
        {"/csi.v1.Node/NodePublishVolume", node_publish_volume},
        {"/csi.v1.Node/NodeUnpublishVolume", node_unpublish_volume},
        {"/csi.v1.Node/NodeExpandVolume", node_expand_volume},
        {"/csi.v1.Node/NodeGetVolumeStats", node_get_volume_stats},
};

static tv_handler route_find(const char *path) {
        for (size_t i = 0; i < ELEMENTSOF(routes); i++)
                if (strcmp(routes[i].path, path) == 0)
                        return routes[i].handler;
        return NULL;
}

void tv_dispatch(tv_server *s, const char *path, const uint8_t *body, size_t len, tv_reply *reply) {
        const tv_rpc_method *m = tv_rpc_method_find(path);
        ProtobufCMessage *req;
        tv_handler h;

        tv_reply_clear(reply);
        /* Only gRPC paths: the CLI's "Service.Method" spelling is not a path. */
        if (!m || !path || path[0] != '/') {
                reply_status(reply, TV_STATUS_UNIMPLEMENTED, "unknown method %.200s", path ? path : "");
                return;
        }
        h = route_find(m->path);
        if (!h) {
                reply_status(reply, TV_STATUS_UNIMPLEMENTED, "%s is not implemented by %s", m->name,
                             TV_DRIVER_NAME);
                return;
        }
        req = protobuf_c_message_unpack(m->request, NULL, len, body);
        if (!req) {
                reply_invalid(reply, "request body is not a valid %s message (%zu bytes)", m->request->name, len);
                return;
        }
        (void)h(s, req, reply);
        protobuf_c_message_free_unpacked(req, NULL);
}
