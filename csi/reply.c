/* Status selection lives here and only here: handlers report a negative
 * errno from the layer below, this maps it to the gRPC code (STYLE.md). */
#include <stdio.h>
#include <string.h>

#include "internal.h"

int tv_status_from_errno(int r) {
        switch (r) {
        case 0:
                return TV_STATUS_OK;
        case -EINVAL:
        case -ENAMETOOLONG:
        case -E2BIG:
        case -ENOKEY: /* no usable key in the request's secret */
                return TV_STATUS_INVALID_ARGUMENT;
        case -ENOENT:
        case -ENODEV:
        case -ENXIO:
                return TV_STATUS_NOT_FOUND;
        case -EEXIST:
                return TV_STATUS_ALREADY_EXISTS;
        case -ENOSPC:
        case -EDQUOT:
        case -EMFILE:
        case -ENFILE:
                return TV_STATUS_RESOURCE_EXHAUSTED;
        case -EBUSY:
        case -ENOTEMPTY:
        case -EROFS:
        case -EMEDIUMTYPE: /* the device holds something that is not ours */
        case -ENODATA:
                return TV_STATUS_FAILED_PRECONDITION;
        case -EACCES:
        case -EPERM:
        case -EKEYREJECTED:
                return TV_STATUS_PERMISSION_DENIED;
        case -ETIMEDOUT:
                return TV_STATUS_DEADLINE_EXCEEDED;
        case -EAGAIN:
        case -EINPROGRESS:
                return TV_STATUS_ABORTED;
        case -EOPNOTSUPP:
                return TV_STATUS_UNIMPLEMENTED;
        case -EHOSTDOWN:
        case -ENOMEDIUM:
                return TV_STATUS_UNAVAILABLE;
        case -ERANGE:
        case -EOVERFLOW:
                return TV_STATUS_OUT_OF_RANGE;
        default:
                return TV_STATUS_INTERNAL;
        }
}

void tv_reply_clear(tv_reply *r) {
        free(r->body);
        r->body = NULL;
        r->body_len = 0;
        r->message[0] = '\0';
        r->status = TV_STATUS_OK;
}

int reply_pack(tv_reply *reply, const ProtobufCMessage *resp) {
        size_t len = protobuf_c_message_get_packed_size(resp);
        /* malloc(0) may return NULL; an empty message is a valid reply. */
        uint8_t *buf = malloc(len ? len : 1);

        if (!buf)
                return reply_errno(reply, -ENOMEM, "encode response");
        protobuf_c_message_pack(resp, buf);
        free(reply->body);
        reply->body = buf;
        reply->body_len = len;
        reply->status = TV_STATUS_OK;
        reply->message[0] = '\0';
        return 0;
}

static _printf_(3, 0) void reply_vset(tv_reply *reply, int status, const char *fmt, va_list ap) {
        reply->status = status;
        (void)vsnprintf(reply->message, sizeof(reply->message), fmt, ap);
        free(reply->body);
        reply->body = NULL;
        reply->body_len = 0;
}

int reply_status(tv_reply *reply, int status, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        reply_vset(reply, status, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

int reply_errno(tv_reply *reply, int r, const char *fmt, ...) {
        va_list ap;
        size_t n;

        va_start(ap, fmt);
        reply_vset(reply, tv_status_from_errno(r), fmt, ap);
        va_end(ap);
        /* Append the reason unless the caller already wrote one. */
        n = strlen(reply->message);
        if (!strchr(reply->message, ':') && n + 3 < sizeof(reply->message))
                (void)snprintf(reply->message + n, sizeof(reply->message) - n, ": %s", strerror(-r));
        return r;
}
