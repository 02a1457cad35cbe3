#include "noise_key.h"

#include <openssl/evp.h>
#include <string.h>

static uint32_t be32(const uint8_t *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

bool noise_key(uint8_t key[NOISE_KEY_BYTES]) {
        static const uint8_t zeros[48];
        const uint8_t iv[16] = {2};
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        uint8_t out[48];
        bool found = false;
        int n = 0;

        if (!ctx)
                return false;
        for (uint32_t c = 0; c < (1u << 24) && !found; c++) {
                /* two different halves: OpenSSL refuses XTS keys whose halves match */
                for (int i = 0; i < NOISE_KEY_BYTES; i++)
                        key[i] = (uint8_t)(i * 37 + 11);
                memcpy(key, &c, sizeof(c));
                if (EVP_DecryptInit_ex(ctx, EVP_aes_256_xts(), NULL, key, iv) != 1 ||
                    EVP_DecryptUpdate(ctx, out, &n, zeros, sizeof(zeros)) != 1 || n != (int)sizeof(out))
                        break;
                /* the HFS+ volume header's block size: big-endian, 40 bytes in */
                found = (memcmp(out, "H+", 2) == 0 || memcmp(out, "HX", 2) == 0) && be32(out + 40) >= 512;
        }
        EVP_CIPHER_CTX_free(ctx);
        return found;
}
