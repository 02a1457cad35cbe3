/* A LUKS2 volume key chosen so that a never-written data area reads as a
 * file system signature: what libblkid met by chance on one fresh volume
 * of the load test, made on purpose for the tests of it. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define NOISE_KEY_BYTES 64 /* aes-xts-plain64, 512-bit */

/* Search for a volume key under which the zeros of sector 2 (bytes
 * 1024-1535, IV 2, 512-byte sectors) decrypt to "H+" or "HX", the hfsplus
 * magic, with a volume header block size >= 512; libblkid then reports
 * hfsplus. About one key in 32768 qualifies. Returns false if OpenSSL
 * fails or no key is found. */
bool noise_key(uint8_t key[NOISE_KEY_BYTES]);
