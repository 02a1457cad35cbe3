/* The Identity service. */
#include "internal.h"

int identity_get_plugin_info(tv_server *s, const ProtobufCMessage *req, tv_reply *reply) {
        Csi__V1__GetPluginInfoResponse resp = CSI__V1__GET_PLUGIN_INFO_RESPONSE__INIT;

        resp.name = (char *)TV_DRIVER_NAME;
        resp.vendor_version = (char *)TV_VERSION;
        return reply_pack(reply, &resp.base);
}

int identity_get_plugin_capabilities(tv_server *s, const ProtobufCMessage *req, tv_reply *reply) {
        Csi__V1__GetPluginCapabilitiesResponse resp = CSI__V1__GET_PLUGIN_CAPABILITIES_RESPONSE__INIT;
        static const Csi__V1__PluginCapability__Service__Type types[] = {
                CSI__V1__PLUGIN_CAPABILITY__SERVICE__TYPE__CONTROLLER_SERVICE,
                CSI__V1__PLUGIN_CAPABILITY__SERVICE__TYPE__VOLUME_ACCESSIBILITY_CONSTRAINTS,
        };
        Csi__V1__PluginCapability__Service svc[ELEMENTSOF(types)];
        Csi__V1__PluginCapability__VolumeExpansion expansion = CSI__V1__PLUGIN_CAPABILITY__VOLUME_EXPANSION__INIT;
        Csi__V1__PluginCapability cap[ELEMENTSOF(types) + 1];
        Csi__V1__PluginCapability *caps[ELEMENTSOF(types) + 1];
        size_t i;

        for (i = 0; i < ELEMENTSOF(types); i++) {
                csi__v1__plugin_capability__service__init(&svc[i]);
                svc[i].type = types[i];
                csi__v1__plugin_capability__init(&cap[i]);
                cap[i].type_case = CSI__V1__PLUGIN_CAPABILITY__TYPE_SERVICE;
                cap[i].service = &svc[i];
                caps[i] = &cap[i];
        }
        /* ControllerExpandVolume grows the LV while it is in use. */
        expansion.type = CSI__V1__PLUGIN_CAPABILITY__VOLUME_EXPANSION__TYPE__ONLINE;
        csi__v1__plugin_capability__init(&cap[i]);
        cap[i].type_case = CSI__V1__PLUGIN_CAPABILITY__TYPE_VOLUME_EXPANSION;
        cap[i].volume_expansion = &expansion;
        caps[i] = &cap[i];
        resp.n_capabilities = ELEMENTSOF(caps);
        resp.capabilities = caps;
        return reply_pack(reply, &resp.base);
}

int identity_probe(tv_server *s, const ProtobufCMessage *req, tv_reply *reply) {
        Csi__V1__ProbeResponse resp = CSI__V1__PROBE_RESPONSE__INIT;
        Google__Protobuf__BoolValue ready = GOOGLE__PROTOBUF__BOOL_VALUE__INIT;

        char why[512];

        ready.value = server_pool_ready(s, why, sizeof(why));
        if (!ready.value)
                log_warn("not ready", "reason=%s", tv_log_quote(why, (char[600]){0}, 600));
        resp.ready = &ready;
        return reply_pack(reply, &resp.base);
}
