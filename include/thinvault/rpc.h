/* thinvault: the CSI transport shared by the plugin and the CLI.
 *
 * - the table of every CSI RPC (gRPC path, request and response message
 *   descriptors), generated code's names in one place;
 * - status code names;
 * - a blocking unary client call over gRPC core, for thinvaultctl and the
 *   tests.
 *
 * Only this layer and csi/ include gRPC headers. */
#ifndef THINVAULT_RPC_H
#define THINVAULT_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Mirrors grpc_status_code (values fixed by the gRPC spec), so layers that
 * do not include gRPC can still speak about statuses. */
typedef enum {
        TV_STATUS_OK = 0,
        TV_STATUS_CANCELLED = 1,
        TV_STATUS_UNKNOWN = 2,
        TV_STATUS_INVALID_ARGUMENT = 3,
        TV_STATUS_DEADLINE_EXCEEDED = 4,
        TV_STATUS_NOT_FOUND = 5,
        TV_STATUS_ALREADY_EXISTS = 6,
        TV_STATUS_PERMISSION_DENIED = 7,
        TV_STATUS_RESOURCE_EXHAUSTED = 8,
        TV_STATUS_FAILED_PRECONDITION = 9,
        TV_STATUS_ABORTED = 10,
        TV_STATUS_OUT_OF_RANGE = 11,
        TV_STATUS_UNIMPLEMENTED = 12,
        TV_STATUS_INTERNAL = 13,
        TV_STATUS_UNAVAILABLE = 14,
        TV_STATUS_DATA_LOSS = 15,
        TV_STATUS_UNAUTHENTICATED = 16,
} tv_status;

/* "INVALID_ARGUMENT" etc.; "UNKNOWN_STATUS" for values outside the enum. */
const char *tv_status_name(int status);

typedef enum {
        TV_SERVICE_IDENTITY,
        TV_SERVICE_CONTROLLER,
        TV_SERVICE_GROUP_CONTROLLER,
        TV_SERVICE_SNAPSHOT_METADATA,
        TV_SERVICE_NODE,
} tv_service;

typedef struct {
        const char *path;  /* "/csi.v1.Identity/GetPluginInfo" */
        const char *name;  /* "Identity.GetPluginInfo" (the CLI's spelling) */
        tv_service service;
        bool server_streaming; /* SnapshotMetadata's RPCs */
        const ProtobufCMessageDescriptor *request;
        const ProtobufCMessageDescriptor *response;
} tv_rpc_method;

/* Every RPC of CSI v1.12.0, in the spec's order. */
extern const tv_rpc_method tv_rpc_methods[];
extern const size_t tv_rpc_n_methods;

/* Find a method by gRPC path or by "Service.Method" (case-sensitive).
 * Returns NULL when there is none. */
const tv_rpc_method *tv_rpc_method_find(const char *path_or_name);

/* True for fields CSI marks `csi_secret` (every such field in the spec is a
 * map named `secrets`); used to keep secrets out of logs and CLI output. */
bool tv_rpc_field_is_secret(const ProtobufCMessageDescriptor *msg, const ProtobufCFieldDescriptor *field);

/* Result of a client call. */
typedef struct {
        int status;          /* tv_status */
        char *message;       /* status details (heap), may be empty */
        uint8_t *body;       /* serialized response (heap), when status OK */
        size_t body_len;
} tv_rpc_result;

void tv_rpc_result_clear(tv_rpc_result *r);

/* Send one unary request (already serialized) to `endpoint`
 * ("unix:///path" or anything gRPC accepts) and wait up to timeout_ms.
 * Returns 0 when the call completed (whatever its gRPC status; see
 * ret->status), or a negative errno when it could not be made (-EINVAL bad
 * endpoint, -ENOMEM). */
int tv_rpc_call(const char *endpoint, const char *path, const uint8_t *body, size_t len, int timeout_ms,
                tv_rpc_result *ret);

#endif
