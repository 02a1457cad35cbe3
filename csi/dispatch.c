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

/* Wire-level check protobuf-c does not make: a string field holding a NUL
 * byte. protobuf-c keeps the bytes but hands out a C string, so "pvc-1\0x"
 * would be read as "pvc-1": another request's name, id or path. Walks the
 * body the decoder already accepted; returns the first such field's name,
 * or NULL. */
#define WIRE_DEPTH_MAX 32

static bool wire_varint(const uint8_t *b, size_t len, size_t *pos, uint64_t *ret) {
        uint64_t v = 0;

        for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
                uint8_t c = b[(*pos)++];
                v |= (uint64_t)(c & 0x7f) << shift;
                if (!(c & 0x80)) {
                        *ret = v;
                        return true;
                }
        }
        return false;
}

static const char *wire_nul_string(const ProtobufCMessageDescriptor *d, const uint8_t *b, size_t len, int depth) {
        size_t pos = 0;

        while (pos < len) {
                uint64_t tag, n;
                const ProtobufCFieldDescriptor *f;
                const char *bad;

                if (!wire_varint(b, len, &pos, &tag))
                        return NULL;
                switch (tag & 7) {
                case 0:
                        if (!wire_varint(b, len, &pos, &n))
                                return NULL;
                        continue;
                case 1:
                        pos += 8;
                        continue;
                case 5:
                        pos += 4;
                        continue;
                case 2:
                        break;
                default:
                        return NULL; /* groups: the decoder refused them already */
                }
                if (!wire_varint(b, len, &pos, &n) || n > len - pos)
                        return NULL;
                f = tag >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3)) : NULL;
                if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(b + pos, 0, n))
                        return f->name;
                if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < WIRE_DEPTH_MAX) {
                        bad = wire_nul_string(f->descriptor, b + pos, n, depth + 1);
                        if (bad)
                                return bad;
                }
                pos += n;
        }
        return NULL;
}

static tv_handler route_find(const char *path) {
        for (size_t i = 0; i < ELEMENTSOF(routes); i++)
                if (strcmp(routes[i].path, path) == 0)
                        return routes[i].handler;
        return NULL;
}

void tv_dispatch(tv_server *s, const char *path, const uint8_t *body, size_t len, tv_reply *reply) {
        const tv_rpc_method *m = tv_rpc_method_find(path);
        ProtobufCMessage *req;
        const char *bad;
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
        bad = wire_nul_string(m->request, body, len, 0);
        if (bad) {
                reply_invalid(reply, "%s: a string field (%s) holds a NUL byte", m->request->name, bad);
                protobuf_c_message_free_unpacked(req, NULL);
                return;
        }
        (void)h(s, req, reply);
        protobuf_c_message_free_unpacked(req, NULL);
}
