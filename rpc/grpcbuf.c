#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "grpcbuf.h"

int tv_bb_to_bytes(grpc_byte_buffer *bb, uint8_t **ret_data, size_t *ret_len) {
        grpc_byte_buffer_reader reader;
        grpc_slice all;
        uint8_t *data = NULL;
        size_t len;

        *ret_data = NULL;
        *ret_len = 0;
        if (!bb)
                return 0;
        if (!grpc_byte_buffer_reader_init(&reader, bb))
                return -EINVAL;
        all = grpc_byte_buffer_reader_readall(&reader);
        grpc_byte_buffer_reader_destroy(&reader);
        len = GRPC_SLICE_LENGTH(all);
        if (len > 0) {
                data = malloc(len);
                if (!data) {
                        grpc_slice_unref(all);
                        return -ENOMEM;
                }
                memcpy(data, GRPC_SLICE_START_PTR(all), len);
        }
        grpc_slice_unref(all);
        *ret_data = data;
        *ret_len = len;
        return 0;
}

grpc_byte_buffer *tv_bb_from_bytes(const uint8_t *data, size_t len) {
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
        grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        return bb;
}
