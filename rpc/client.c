/* A blocking unary call over gRPC core, for thinvaultctl and the tests. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "grpcbuf.h"
#include "thinvault/rpc.h"
#include "thinvault/util.h"

void tv_rpc_result_clear(tv_rpc_result *r) {
        if (!r)
                return;
        free(r->message);
        free(r->body);
        *r = (tv_rpc_result){0};
}

static gpr_timespec deadline_in(int ms) {
        return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* Runs the one batch of a unary call and fills ret. */
static int unary(grpc_channel *ch, grpc_completion_queue *cq, const char *path, const uint8_t *body,
                 size_t len, int timeout_ms, tv_rpc_result *ret) {
        grpc_metadata_array md_initial, md_trailing;
        grpc_byte_buffer *send = NULL, *recv = NULL;
        grpc_status_code status = GRPC_STATUS_UNKNOWN;
        grpc_slice details = grpc_empty_slice();
        grpc_slice method = grpc_slice_from_static_string(path);
        gpr_timespec deadline = deadline_in(timeout_ms);
        grpc_call *call;
        grpc_op ops[6];
        int r = 0;

        call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL, deadline, NULL);
        if (!call)
                return -ENOMEM;
        send = tv_bb_from_bytes(body, len);
        grpc_metadata_array_init(&md_initial);
        grpc_metadata_array_init(&md_trailing);

        memset(ops, 0, sizeof(ops));
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = send;
        ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_initial;
        ops[4].op = GRPC_OP_RECV_MESSAGE;
        ops[4].data.recv_message.recv_message = &recv;
        ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        ops[5].data.recv_status_on_client.trailing_metadata = &md_trailing;
        ops[5].data.recv_status_on_client.status = &status;
        ops[5].data.recv_status_on_client.status_details = &details;

        if (grpc_call_start_batch(call, ops, ELEMENTSOF(ops), call, NULL) != GRPC_CALL_OK) {
                r = -EIO;
        } else {
                grpc_event ev = grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
                if (ev.type != GRPC_OP_COMPLETE)
                        r = -EIO;
        }
        if (r == 0) {
                ret->status = (int)status;
                ret->message = grpc_slice_to_c_string(details);
                if (!ret->message)
                        r = -ENOMEM;
        }
        if (r == 0 && status == GRPC_STATUS_OK)
                r = tv_bb_to_bytes(recv, &ret->body, &ret->body_len);

        grpc_slice_unref(details);
        grpc_metadata_array_destroy(&md_initial);
        grpc_metadata_array_destroy(&md_trailing);
        if (send)
                grpc_byte_buffer_destroy(send);
        if (recv)
                grpc_byte_buffer_destroy(recv);
        grpc_call_unref(call);
        return r;
}

int tv_rpc_call(const char *endpoint, const char *path, const uint8_t *body, size_t len, int timeout_ms,
                tv_rpc_result *ret) {
        grpc_channel_credentials *creds;
        grpc_completion_queue *cq;
        grpc_channel *ch;
        int r;

        *ret = (tv_rpc_result){0};
        if (!endpoint || !*endpoint || !path)
                return -EINVAL;
        grpc_init();
        creds = grpc_insecure_credentials_create();
        ch = grpc_channel_create(endpoint, creds, NULL);
        grpc_channel_credentials_release(creds);
        cq = grpc_completion_queue_create_for_pluck(NULL);

        r = unary(ch, cq, path, body, len, timeout_ms, ret);

        grpc_completion_queue_shutdown(cq);
        while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy(cq);
        grpc_channel_destroy(ch);
        grpc_shutdown();
        if (r < 0)
                tv_rpc_result_clear(ret);
        return r;
}
