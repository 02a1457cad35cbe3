/* The LUKS verbs of crypt/luks.c over the LUKS state stub_lvm.c keeps per
 * LV. Keys are the real tv_key objects (crypt/key.c): a volume opens only
 * with the key of the tenant and fingerprint it was formatted for. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "thinvault/crypt.h"

#define LUKS_HEADER_BYTES (16ULL << 20)

static _printf_(3, 4) int fail(tv_crypt_error *err, int r, const char *fmt, ...) {
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                (void)vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
        }
        return r;
}

int tv_luks_probe(const char *device_path, tv_luks_info *ret_info, tv_crypt_error *err) {
        fuzz_luks *l = fuzz_luks_by_path(device_path, NULL);
        tv_luks_info info = {0};

        if (!l && !(l = fuzz_luks_by_mapping(strrchr(device_path, '/') ? strrchr(device_path, '/') + 1 : "", NULL)))
                return fail(err, -ENOENT, "no device %s", device_path);
        if (strncmp(device_path, "/dev/mapper/", 12) == 0) {
                /* What is inside the open mapping: what mkfs made. */
                if (l->fs[0]) {
                        info.kind = TV_LUKS_KIND_OTHER;
                        snprintf(info.type, sizeof(info.type), "%s", l->fs);
                }
                *ret_info = info;
                return 0;
        }
        info.kind = l->kind;
        if (l->kind == TV_LUKS_KIND_OURS) {
                snprintf(info.type, sizeof(info.type), "crypto_LUKS");
                info.luks_version = 2;
                snprintf(info.tenant, sizeof(info.tenant), "%s", l->tenant);
                snprintf(info.fingerprint, sizeof(info.fingerprint), "%s", l->fingerprint);
        }
        *ret_info = info;
        return 0;
}

/* The stand-in's mappings hold only what mkfs made, which was written. */
int tv_luks_plaintext_unwritten(const char *device_path, uint64_t offset, uint64_t len, tv_crypt_error *err) {
        fuzz_luks *l = fuzz_luks_by_path(device_path, NULL);

        (void)offset;
        if (!l)
                return fail(err, -ENOENT, "no device %s", device_path);
        if (l->kind != TV_LUKS_KIND_OURS)
                return fail(err, -EMEDIUMTYPE, "device %s holds no LUKS2 header", device_path);
        if (len == 0)
                return fail(err, -ERANGE, "device %s: an empty range", device_path);
        return 0;
}

int tv_luks_format(const char *device_path, const tv_key *key, tv_crypt_error *err) {
        fuzz_luks *l = fuzz_luks_by_path(device_path, NULL);

        if (!l)
                return fail(err, -ENOENT, "no device %s", device_path);
        if (!key || !tv_tenant_valid(tv_key_tenant(key)))
                return fail(err, -EINVAL, "format %s: no valid key", device_path);
        if (l->kind != TV_LUKS_KIND_EMPTY)
                return fail(err, -EEXIST, "format %s: not empty", device_path);
        l->kind = TV_LUKS_KIND_OURS;
        snprintf(l->tenant, sizeof(l->tenant), "%s", tv_key_tenant(key));
        snprintf(l->fingerprint, sizeof(l->fingerprint), "%s", tv_key_fingerprint(key));
        return 0;
}

int tv_luks_open(const char *device_path, const char *mapping_name, const tv_key *key, uint32_t flags,
                 tv_crypt_error *err) {
        fuzz_luks *l = fuzz_luks_by_path(device_path, NULL), *other;

        if (!tv_luks_mapping_name_valid(mapping_name))
                return fail(err, -EINVAL, "mapping name %s is not valid", mapping_name);
        if (!l)
                return fail(err, -ENOENT, "no device %s", device_path);
        if (l->kind != TV_LUKS_KIND_OURS)
                return fail(err, -EMEDIUMTYPE, "%s is not a thinvault LUKS2 volume", device_path);
        if (!key || strcmp(tv_key_tenant(key), l->tenant) != 0 || strcmp(tv_key_fingerprint(key), l->fingerprint) != 0)
                return fail(err, -EKEYREJECTED, "the key does not open %s", device_path);
        other = fuzz_luks_by_mapping(mapping_name, NULL);
        if (other && other != l)
                return fail(err, -EEXIST, "mapping %s belongs to another device", mapping_name);
        snprintf(l->mapping, sizeof(l->mapping), "%s", mapping_name);
        return 0;
}

int tv_luks_close(const char *mapping_name, tv_crypt_error *err) {
        fuzz_luks *l;

        if (!tv_luks_mapping_name_valid(mapping_name))
                return fail(err, -EINVAL, "mapping name %s is not valid", mapping_name);
        l = fuzz_luks_by_mapping(mapping_name, NULL);
        if (l)
                l->mapping[0] = '\0';
        return 0;
}

int tv_luks_resize(const char *mapping_name, uint64_t *ret_size, tv_crypt_error *err) {
        uint64_t size = 0;

        if (!fuzz_luks_by_mapping(mapping_name, &size))
                return fail(err, -ENOENT, "no mapping %s", mapping_name);
        if (ret_size)
                *ret_size = size - LUKS_HEADER_BYTES;
        return 0;
}

int tv_luks_rotate(const char *device_path, const tv_key *old_key, const tv_key *new_key, tv_crypt_error *err) {
        fuzz_luks *l = fuzz_luks_by_path(device_path, NULL);

        if (!l)
                return fail(err, -ENOENT, "no device %s", device_path);
        if (!old_key || !new_key || strcmp(tv_key_tenant(old_key), tv_key_tenant(new_key)) != 0 ||
            tv_key_equal(old_key, new_key))
                return fail(err, -EINVAL, "rotate %s: keys of different tenants, or equal", device_path);
        if (l->kind != TV_LUKS_KIND_OURS)
                return fail(err, -EMEDIUMTYPE, "%s is not a thinvault LUKS2 volume", device_path);
        if (strcmp(l->tenant, tv_key_tenant(new_key)) != 0)
                return fail(err, -EKEYREJECTED, "%s belongs to another tenant", device_path);
        if (strcmp(l->fingerprint, tv_key_fingerprint(new_key)) == 0)
                return 0; /* done already: a retry */
        if (strcmp(l->fingerprint, tv_key_fingerprint(old_key)) != 0)
                return fail(err, -EKEYREJECTED, "neither key opens %s", device_path);
        snprintf(l->fingerprint, sizeof(l->fingerprint), "%s", tv_key_fingerprint(new_key));
        return 0;
}

int tv_luks_erase(const char *device_path, tv_crypt_error *err) {
        fuzz_luks *l = fuzz_luks_by_path(device_path, NULL);

        if (!l)
                return fail(err, -ENOENT, "no device %s", device_path);
        if (l->mapping[0])
                return fail(err, -EBUSY, "%s is open", device_path);
        if (l->kind != TV_LUKS_KIND_OURS && l->kind != TV_LUKS_KIND_FOREIGN)
                return 0;
        *l = (fuzz_luks){0};
        return 1;
}
