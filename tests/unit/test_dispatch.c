/* Request dispatch and status mapping, without a socket. */
#include <errno.h>
#include <stdlib.h>

#include "csi.pb-c.h"
#include "thinvault/csi.h"
#include "thinvault/util.h"
#include "tv_test.h"

static tv_server *test_server(void) {
        tv_server *s = NULL;
        CHECK_INT(tv_server_new_for_test("node-a", &s), 0);
        return s;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len) {
        *len = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = malloc(*len + 1);
        protobuf_c_message_pack(m, buf);
        return buf;
}

TEST(test_dispatch_get_plugin_info_names_driver_and_version) {
        tv_server *s = test_server();
        tv_reply reply = {0};

        tv_dispatch(s, "/csi.v1.Identity/GetPluginInfo", NULL, 0, &reply);
        CHECK_INT(reply.status, TV_STATUS_OK);
        Csi__V1__GetPluginInfoResponse *r = csi__v1__get_plugin_info_response__unpack(NULL, reply.body_len, reply.body);
        CHECK(r != NULL);
        if (r) {
                CHECK_STR(r->name, "thinvault.csi.io");
                CHECK_STR(r->vendor_version, TV_VERSION);
                csi__v1__get_plugin_info_response__free_unpacked(r, NULL);
        }
        tv_reply_clear(&reply);
        tv_server_free(s);
}

TEST(test_dispatch_plugin_capabilities_are_controller_topology_and_online_expansion) {
        tv_server *s = test_server();
        tv_reply reply = {0};

        tv_dispatch(s, "/csi.v1.Identity/GetPluginCapabilities", NULL, 0, &reply);
        CHECK_INT(reply.status, TV_STATUS_OK);
        Csi__V1__GetPluginCapabilitiesResponse *r =
                csi__v1__get_plugin_capabilities_response__unpack(NULL, reply.body_len, reply.body);
        CHECK(r != NULL);
        if (r) {
                CHECK_INT(r->n_capabilities, 3);
                for (size_t i = 0; i < r->n_capabilities && i < 2; i++)
                        CHECK_INT(r->capabilities[i]->type_case, CSI__V1__PLUGIN_CAPABILITY__TYPE_SERVICE);
                if (r->n_capabilities == 3) {
                        CHECK_INT(r->capabilities[0]->service->type,
                                  CSI__V1__PLUGIN_CAPABILITY__SERVICE__TYPE__CONTROLLER_SERVICE);
                        CHECK_INT(r->capabilities[1]->service->type,
                                  CSI__V1__PLUGIN_CAPABILITY__SERVICE__TYPE__VOLUME_ACCESSIBILITY_CONSTRAINTS);
                        CHECK_INT(r->capabilities[2]->type_case, CSI__V1__PLUGIN_CAPABILITY__TYPE_VOLUME_EXPANSION);
                        CHECK_INT(r->capabilities[2]->volume_expansion->type,
                                  CSI__V1__PLUGIN_CAPABILITY__VOLUME_EXPANSION__TYPE__ONLINE);
                }
                csi__v1__get_plugin_capabilities_response__free_unpacked(r, NULL);
        }
        tv_reply_clear(&reply);
        tv_server_free(s);
}

TEST(test_dispatch_node_get_info_reports_node_and_topology) {
        tv_server *s = test_server();
        tv_reply reply = {0};

        tv_dispatch(s, "/csi.v1.Node/NodeGetInfo", NULL, 0, &reply);
        CHECK_INT(reply.status, TV_STATUS_OK);
        Csi__V1__NodeGetInfoResponse *r = csi__v1__node_get_info_response__unpack(NULL, reply.body_len, reply.body);
        CHECK(r != NULL);
        if (r) {
                CHECK_STR(r->node_id, "node-a");
                CHECK(r->accessible_topology != NULL);
                if (r->accessible_topology && r->accessible_topology->n_segments == 1) {
                        CHECK_STR(r->accessible_topology->segments[0]->key, "topology.thinvault.io/node");
                        CHECK_STR(r->accessible_topology->segments[0]->value, "node-a");
                } else {
                        CHECK(!"one topology segment");
                }
                csi__v1__node_get_info_response__free_unpacked(r, NULL);
        }
        tv_reply_clear(&reply);
        tv_server_free(s);
}

TEST(test_dispatch_probe_without_pool_is_not_ready) {
        tv_server *s = test_server();
        tv_reply reply = {0};

        tv_dispatch(s, "/csi.v1.Identity/Probe", NULL, 0, &reply);
        CHECK_INT(reply.status, TV_STATUS_OK);
        Csi__V1__ProbeResponse *r = csi__v1__probe_response__unpack(NULL, reply.body_len, reply.body);
        CHECK(r != NULL);
        if (r) {
                CHECK(r->ready != NULL && !r->ready->value);
                csi__v1__probe_response__free_unpacked(r, NULL);
        }
        tv_reply_clear(&reply);
        tv_server_free(s);
}

TEST(test_dispatch_unknown_method_is_unimplemented) {
        tv_server *s = test_server();
        tv_reply reply = {0};

        tv_dispatch(s, "/csi.v1.Identity/NoSuchThing", NULL, 0, &reply);
        CHECK_INT(reply.status, TV_STATUS_UNIMPLEMENTED);
        CHECK(strstr(reply.message, "NoSuchThing") != NULL);
        tv_dispatch(s, "/other.Service/Probe", NULL, 0, &reply);
        CHECK_INT(reply.status, TV_STATUS_UNIMPLEMENTED);
        tv_dispatch(s, "Identity.Probe", NULL, 0, &reply);
        CHECK_INT(reply.status, TV_STATUS_UNIMPLEMENTED);
        tv_dispatch(s, "", NULL, 0, &reply);
        CHECK_INT(reply.status, TV_STATUS_UNIMPLEMENTED);
        tv_reply_clear(&reply);
        tv_server_free(s);
}

TEST(test_dispatch_every_spec_method_answers_ok_or_a_status) {
        tv_server *s = test_server();
        tv_reply reply = {0};

        for (size_t i = 0; i < tv_rpc_n_methods; i++) {
                tv_dispatch(s, tv_rpc_methods[i].path, NULL, 0, &reply);
                /* An empty body is a valid proto3 message of every type; a
                 * server without a pool cannot serve volume calls. */
                CHECK(reply.status == TV_STATUS_OK || reply.status == TV_STATUS_UNIMPLEMENTED ||
                      reply.status == TV_STATUS_INVALID_ARGUMENT || reply.status == TV_STATUS_UNAVAILABLE);
                if (reply.status != TV_STATUS_OK)
                        CHECK(reply.message[0] != '\0');
                tv_reply_clear(&reply);
        }
        tv_server_free(s);
}

TEST(test_dispatch_garbage_body_is_invalid_argument) {
        tv_server *s = test_server();
        tv_reply reply = {0};
        /* field 1, wire type 2 (length-delimited) claiming 100 bytes, 3 given */
        static const uint8_t truncated[] = {0x0a, 0x64, 'a', 'b', 'c'};
        static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};

        tv_dispatch(s, "/csi.v1.Node/NodeGetInfo", truncated, sizeof(truncated), &reply);
        CHECK_INT(reply.status, TV_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(reply.message, "csi.v1.NodeGetInfoRequest") != NULL);
        tv_dispatch(s, "/csi.v1.Identity/Probe", garbage, sizeof(garbage), &reply);
        CHECK_INT(reply.status, TV_STATUS_INVALID_ARGUMENT);
        CHECK(reply.body == NULL);
        tv_reply_clear(&reply);
        tv_server_free(s);
}

TEST(test_dispatch_unknown_fields_in_a_valid_body_are_ignored) {
        tv_server *s = test_server();
        tv_reply reply = {0};
        /* GetPluginInfoRequest has no fields; field 7 varint is unknown. */
        static const uint8_t body[] = {0x38, 0x05};

        tv_dispatch(s, "/csi.v1.Identity/GetPluginInfo", body, sizeof(body), &reply);
        CHECK_INT(reply.status, TV_STATUS_OK);
        tv_reply_clear(&reply);
        tv_server_free(s);
}

TEST(test_dispatch_unbuilt_method_names_itself_in_unimplemented) {
        tv_server *s = test_server();
        tv_reply reply = {0};
        Csi__V1__GetMetadataAllocatedRequest req = CSI__V1__GET_METADATA_ALLOCATED_REQUEST__INIT;
        size_t len;
        uint8_t *body;

        req.snapshot_id = "snap";
        body = pack(&req.base, &len);
        tv_dispatch(s, "/csi.v1.SnapshotMetadata/GetMetadataAllocated", body, len, &reply);
        CHECK_INT(reply.status, TV_STATUS_UNIMPLEMENTED);
        CHECK(strstr(reply.message, "SnapshotMetadata.GetMetadataAllocated") != NULL);
        free(body);
        tv_reply_clear(&reply);
        tv_server_free(s);
}

TEST(test_status_from_errno_follows_style_table) {
        CHECK_INT(tv_status_from_errno(0), TV_STATUS_OK);
        CHECK_INT(tv_status_from_errno(-EINVAL), TV_STATUS_INVALID_ARGUMENT);
        CHECK_INT(tv_status_from_errno(-ENOENT), TV_STATUS_NOT_FOUND);
        CHECK_INT(tv_status_from_errno(-EEXIST), TV_STATUS_ALREADY_EXISTS);
        CHECK_INT(tv_status_from_errno(-ENOSPC), TV_STATUS_RESOURCE_EXHAUSTED);
        CHECK_INT(tv_status_from_errno(-EDQUOT), TV_STATUS_RESOURCE_EXHAUSTED);
        CHECK_INT(tv_status_from_errno(-EBUSY), TV_STATUS_FAILED_PRECONDITION);
        CHECK_INT(tv_status_from_errno(-EACCES), TV_STATUS_PERMISSION_DENIED);
        CHECK_INT(tv_status_from_errno(-EPERM), TV_STATUS_PERMISSION_DENIED);
        CHECK_INT(tv_status_from_errno(-ETIMEDOUT), TV_STATUS_DEADLINE_EXCEEDED);
        CHECK_INT(tv_status_from_errno(-EHOSTDOWN), TV_STATUS_UNAVAILABLE);
        CHECK_INT(tv_status_from_errno(-EIO), TV_STATUS_INTERNAL);
        CHECK_INT(tv_status_from_errno(-ENOMEM), TV_STATUS_INTERNAL);
}

TEST(test_status_from_errno_maps_crypt_refusals) {
        CHECK_INT(tv_status_from_errno(-EKEYREJECTED), TV_STATUS_PERMISSION_DENIED);
        CHECK_INT(tv_status_from_errno(-EMEDIUMTYPE), TV_STATUS_FAILED_PRECONDITION);
        CHECK_INT(tv_status_from_errno(-ENODATA), TV_STATUS_FAILED_PRECONDITION);
        CHECK_INT(tv_status_from_errno(-ENOKEY), TV_STATUS_INVALID_ARGUMENT);
}

TEST(test_status_names_cover_the_grpc_codes) {
        CHECK_STR(tv_status_name(0), "OK");
        CHECK_STR(tv_status_name(3), "INVALID_ARGUMENT");
        CHECK_STR(tv_status_name(12), "UNIMPLEMENTED");
        CHECK_STR(tv_status_name(16), "UNAUTHENTICATED");
        CHECK_STR(tv_status_name(17), "UNKNOWN_STATUS");
        CHECK_STR(tv_status_name(-1), "UNKNOWN_STATUS");
}

TEST(test_rpc_table_has_every_spec_rpc_once) {
        CHECK_INT(tv_rpc_n_methods, 32);
        for (size_t i = 0; i < tv_rpc_n_methods; i++) {
                CHECK(tv_rpc_method_find(tv_rpc_methods[i].path) == &tv_rpc_methods[i]);
                CHECK(tv_rpc_method_find(tv_rpc_methods[i].name) == &tv_rpc_methods[i]);
        }
        CHECK(tv_rpc_method_find("Node.NodeStageVolume")->request == &csi__v1__node_stage_volume_request__descriptor);
        CHECK(tv_rpc_method_find("/csi.v1.SnapshotMetadata/GetMetadataDelta")->server_streaming);
}

TEST(test_rpc_secret_fields_are_the_secrets_maps) {
        const ProtobufCMessageDescriptor *d = &csi__v1__node_stage_volume_request__descriptor;
        CHECK(tv_rpc_field_is_secret(d, protobuf_c_message_descriptor_get_field_by_name(d, "secrets")));
        CHECK(!tv_rpc_field_is_secret(d, protobuf_c_message_descriptor_get_field_by_name(d, "volume_context")));
        CHECK(!tv_rpc_field_is_secret(d, protobuf_c_message_descriptor_get_field_by_name(d, "volume_id")));
}

/* protobuf-c hands a string out as a C string: a NUL inside it would cut
 * "pvc-1\0x" to "pvc-1", another request's name. Refused before any
 * handler, at any depth (a map entry inside the request here). */
TEST(test_dispatch_string_with_nul_byte_is_invalid_argument) {
        static const uint8_t name_nul[] = {0x0a, 0x03, 'a', 0x00, 'b'};
        static const uint8_t name_ok[] = {0x0a, 0x01, 'a'};
        /* NodeStageVolumeRequest.secrets (5): {key: "key", value: "x\0y"} */
        static const uint8_t secret_nul[] = {0x2a, 0x0a, 0x0a, 0x03, 'k', 'e', 'y', 0x12, 0x03, 'x', 0x00, 'y'};
        tv_server *s = test_server();
        tv_reply reply = {0};

        tv_dispatch(s, "/csi.v1.Controller/CreateVolume", name_nul, sizeof(name_nul), &reply);
        CHECK_INT(reply.status, TV_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(reply.message, "NUL") != NULL && strstr(reply.message, "name") != NULL);
        tv_dispatch(s, "/csi.v1.Controller/CreateVolume", name_ok, sizeof(name_ok), &reply);
        CHECK(strstr(reply.message, "NUL") == NULL);
        tv_dispatch(s, "/csi.v1.Node/NodeStageVolume", secret_nul, sizeof(secret_nul), &reply);
        CHECK_INT(reply.status, TV_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(reply.message, "value") != NULL);
        tv_reply_clear(&reply);
        tv_server_free(s);
}
