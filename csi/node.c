/* The Node service. */
#include "internal.h"

int node_get_info(tv_server *s, const ProtobufCMessage *req, tv_reply *reply) {
        Csi__V1__NodeGetInfoResponse resp = CSI__V1__NODE_GET_INFO_RESPONSE__INIT;
        Csi__V1__Topology topo = CSI__V1__TOPOLOGY__INIT;
        Csi__V1__Topology__SegmentsEntry seg = CSI__V1__TOPOLOGY__SEGMENTS_ENTRY__INIT;
        Csi__V1__Topology__SegmentsEntry *segs[] = {&seg};

        seg.key = (char *)TV_TOPOLOGY_KEY;
        seg.value = s->node_id;
        topo.n_segments = 1;
        topo.segments = segs;
        resp.node_id = s->node_id;
        resp.accessible_topology = &topo;
        /* 0: no limit of our own; the pool's capacity is the limit. */
        resp.max_volumes_per_node = 0;
        return reply_pack(reply, &resp.base);
}

int node_get_capabilities(tv_server *s, const ProtobufCMessage *req, tv_reply *reply) {
        Csi__V1__NodeGetCapabilitiesResponse resp = CSI__V1__NODE_GET_CAPABILITIES_RESPONSE__INIT;

        /* Nothing beyond NodeGetInfo is served yet; staging, stats and
         * expansion are announced when they exist. */
        return reply_pack(reply, &resp.base);
}
