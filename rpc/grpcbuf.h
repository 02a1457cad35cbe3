/* Byte buffer helpers shared by rpc/ and csi/ (private to those layers). */
#ifndef THINVAULT_GRPCBUF_H
#define THINVAULT_GRPCBUF_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/byte_buffer.h>

/* Flatten a received byte buffer into one heap copy (NULL bb = empty).
 * Returns 0 or -ENOMEM; *ret_data is NULL when *ret_len is 0. */
int tv_bb_to_bytes(grpc_byte_buffer *bb, uint8_t **ret_data, size_t *ret_len);

/* Wrap a copy of data in a new byte buffer; NULL on failure. */
grpc_byte_buffer *tv_bb_from_bytes(const uint8_t *data, size_t len);

#endif
