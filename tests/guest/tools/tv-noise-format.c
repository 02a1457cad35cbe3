/* tv-noise-format DEVICE TENANT < SECRET
 *
 * Leave DEVICE as a NodeStageVolume that was killed right after its LUKS2
 * format would (kill point stage.after_format): a thinvault LUKS2 header
 * with the tenant's token and one keyslot for the tenant's key (SECRET:
 * the node-stage secret's base64 "key", read from stdin, never argv),
 * nothing written through a mapping. Unlike the plugin's format, the
 * volume key is chosen (noise_key.h), so that the never-written data area
 * reads as hfsplus. The retried stage must format it, not refuse it. */
#include <errno.h>
#include <libcryptsetup.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h" /* crypt/: tv_key_data(), the passphrase tv_luks_format() gives the keyslot */
#include "noise_key.h"
#include "thinvault/crypt.h"

static int fail(const char *what, int r) {
        fprintf(stderr, "tv-noise-format: %s: %s\n", what, strerror(r < 0 ? -r : r));
        return 1;
}

int main(int argc, char **argv) {
        struct crypt_pbkdf_type pbkdf = {.type = CRYPT_KDF_PBKDF2, .hash = "sha256",
                                         .iterations = 1000, .flags = CRYPT_PBKDF_NO_BENCHMARK};
        struct crypt_params_luks2 params = {.pbkdf = &pbkdf, .sector_size = 512};
        const char *keys[] = {TV_KEY_SECRET_FIELD};
        const char *values[1];
        struct crypt_device *cd = NULL;
        uint8_t vk[NOISE_KEY_BYTES];
        char secret[4096];
        tv_key *key = NULL;
        tv_crypt_error err;
        char *json = NULL;
        size_t n;
        int r;

        if (argc != 3) {
                fprintf(stderr, "usage: tv-noise-format DEVICE TENANT < SECRET\n");
                return 2;
        }
        n = fread(secret, 1, sizeof(secret) - 1, stdin);
        secret[n] = '\0';
        values[0] = secret;
        r = tv_key_from_secret(keys, values, 1, argv[2], &key, &err);
        explicit_bzero(secret, sizeof(secret));
        if (r < 0) {
                fprintf(stderr, "tv-noise-format: %s\n", err.message);
                return 1;
        }
        if (!noise_key(vk))
                return fail("no noise key found", EIO);
        r = tv_luks_token_to_json(tv_key_tenant(key), tv_key_fingerprint(key), &json);
        if (r < 0)
                return fail("token", r);
        r = crypt_init(&cd, argv[1]);
        if (r == 0)
                r = crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, (const char *)vk, sizeof(vk), &params);
        if (r == 0)
                r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, json);
        if (r >= 0)
                r = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, (const char *)vk, sizeof(vk),
                                                    (const char *)tv_key_data(key), tv_key_size(key));
        explicit_bzero(vk, sizeof(vk));
        crypt_free(cd);
        free(json);
        tv_key_free(key);
        if (r < 0)
                return fail(argv[1], r);
        return 0;
}
