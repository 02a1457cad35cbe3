/* Tenant keys: from a node-stage secret (base64) or derived by HKDF-SHA256
 * from a master key file. A tv_key and its bytes share one locked mapping;
 * every intermediate copy of a secret (the normalised base64 text, the
 * decoded bytes, the master key) sits in locked memory too. */
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

struct tv_key {
        size_t map_size; /* the whole locked mapping, this struct included */
        size_t size;
        char tenant[TV_TENANT_SIZE];
        char fingerprint[TV_KEY_FINGERPRINT_SIZE];
        uint8_t data[];
};

/* Longest secret value looked at: base64 of TV_KEY_MAX_SIZE bytes, with
 * room for line breaks every 64 chars and padding. */
#define SECRET_TEXT_MAX 2048

#define FINGERPRINT_LABEL "thinvault key fingerprint v1"

TV_DEFINE_FREEP(EVP_MD_CTX, EVP_MD_CTX_free)
TV_DEFINE_FREEP(EVP_KDF, EVP_KDF_free)
TV_DEFINE_FREEP(EVP_KDF_CTX, EVP_KDF_CTX_free)

const uint8_t *tv_key_data(const tv_key *key) {
        return key->data;
}

const char *tv_key_tenant(const tv_key *key) {
        return key ? key->tenant : NULL;
}

const char *tv_key_fingerprint(const tv_key *key) {
        return key ? key->fingerprint : NULL;
}

size_t tv_key_size(const tv_key *key) {
        return key ? key->size : 0;
}

bool tv_key_equal(const tv_key *a, const tv_key *b) {
        if (!a || !b || a->size != b->size)
                return false;
        return CRYPTO_memcmp(a->data, b->data, a->size) == 0;
}

void tv_key_free(tv_key *key) {
        secbuf b;

        if (!key)
                return;
        b = (secbuf){.data = (uint8_t *)key, .size = key->map_size, .map_size = key->map_size};
        secbuf_release(&b);
}

static int key_fingerprint(const uint8_t *data, size_t size, char ret[TV_KEY_FINGERPRINT_SIZE]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        static const char label[] = FINGERPRINT_LABEL; /* sizeof includes the NUL */
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;

        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(ctx, label, sizeof(label)) != 1 || EVP_DigestUpdate(ctx, data, size) != 1 ||
            EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len < (TV_KEY_FINGERPRINT_SIZE - 1) / 2)
                return -EIO;
        for (size_t i = 0; i < (TV_KEY_FINGERPRINT_SIZE - 1) / 2; i++)
                (void)snprintf(ret + 2 * i, 3, "%02x", md[i]);
        explicit_bzero(md, sizeof(md));
        return 0;
}

/* A key of `size` bytes, zeroed, for an already validated tenant; the
 * caller fills ->data and then calls key_seal(). */
static int key_alloc(const char *tenant, size_t size, tv_key **ret) {
        secbuf b;
        tv_key *k;
        int r;

        r = secbuf_alloc(sizeof(tv_key) + size, &b);
        if (r < 0)
                return r;
        k = (tv_key *)b.data;
        k->map_size = b.map_size;
        k->size = size;
        crypt_strlcpy(k->tenant, tenant, sizeof(k->tenant));
        *ret = k;
        return 0;
}

static int key_seal(tv_key *k) {
        return key_fingerprint(k->data, k->size, k->fingerprint);
}

/* A quoted, log-safe rendering of a tenant name that failed validation. */
static const char *tenant_q(const char *tenant, char *buf, size_t size) {
        return tv_log_quote(tenant ? tenant : "(null)", buf, size);
}

static int check_tenant(const char *tenant, tv_crypt_error *err) {
        char q[128];

        if (tv_tenant_valid(tenant))
                return 0;
        return crypt_error(err, -EINVAL,
                           "tenant %s is not a valid namespace name (1-63 characters of a-z, 0-9 and "
                           "'-', starting and ending with a letter or digit)",
                           tenant_q(tenant, q, sizeof(q)));
}

int tv_key_new(const char *tenant, const void *bytes, size_t size, tv_key **ret_key,
               tv_crypt_error *err) {
        _cleanup_(tv_key_freep) tv_key *k = NULL;
        int r;

        crypt_error_clear(err);
        r = check_tenant(tenant, err);
        if (r < 0)
                return r;
        if (!bytes || size < TV_KEY_MIN_SIZE || size > TV_KEY_MAX_SIZE || !ret_key)
                return crypt_error(err, -EINVAL, "tenant %s: a key must be %d to %d bytes, not %zu",
                                   tenant, TV_KEY_MIN_SIZE, TV_KEY_MAX_SIZE, bytes ? size : 0);
        r = key_alloc(tenant, size, &k);
        if (r < 0)
                return crypt_error(err, r, "tenant %s: cannot lock memory for the key (RLIMIT_MEMLOCK)",
                                   tenant);
        memcpy(k->data, bytes, size);
        r = key_seal(k);
        if (r < 0)
                return crypt_error(err, r, "tenant %s: cannot compute the key fingerprint", tenant);
        *ret_key = TAKE_PTR(k);
        return 0;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_b64_common(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Decode base64 `text` (standard or URL-safe alphabet, not mixed, padded
 * or not, ASCII whitespace ignored) into locked memory. The text is first
 * normalised (standard alphabet, whitespace dropped, padding restored) into
 * locked memory as well, because OpenSSL's EVP_DecodeBlock wants exactly
 * that and accepts '=' in the middle. Returns 0, -EINVAL (not base64),
 * -E2BIG (text longer than SECRET_TEXT_MAX), -ENOMEM. */
static int base64_decode_locked(const char *text, secbuf *ret) {
        _cleanup_secbuf_ secbuf norm = {0};
        _cleanup_secbuf_ secbuf out = {0};
        bool std_alpha = false, url_alpha = false;
        size_t len, n = 0, pad = 0, padded;
        int r, got;

        len = strnlen(text, SECRET_TEXT_MAX + 1);
        if (len > SECRET_TEXT_MAX)
                return -E2BIG;
        r = secbuf_alloc(len + 4, &norm);
        if (r < 0)
                return r;
        for (size_t i = 0; i < len; i++) {
                char c = text[i];

                if (is_space(c))
                        continue;
                if (c == '=') {
                        pad++;
                        continue;
                }
                if (pad > 0) /* data after padding */
                        return -EINVAL;
                if (c == '+' || c == '/')
                        std_alpha = true;
                else if (c == '-' || c == '_') {
                        url_alpha = true;
                        c = c == '-' ? '+' : '/';
                } else if (!is_b64_common(c))
                        return -EINVAL;
                norm.data[n++] = (uint8_t)c;
        }
        if (std_alpha && url_alpha)
                return -EINVAL;
        if (n == 0 || n % 4 == 1 || pad > 2 || (pad > 0 && (n + pad) % 4 != 0))
                return -EINVAL;
        pad = (4 - n % 4) % 4;
        padded = n + pad;
        for (size_t i = n; i < padded; i++)
                norm.data[i] = '=';

        r = secbuf_alloc(padded / 4 * 3, &out);
        if (r < 0)
                return r;
        got = EVP_DecodeBlock(out.data, norm.data, (int)padded);
        if (got < 0 || (size_t)got != padded / 4 * 3)
                return -EINVAL;
        out.size = (size_t)got - pad;
        *ret = out;
        out = (secbuf){0};
        return 0;
}

int tv_key_from_secret(const char *const *keys, const char *const *values, size_t n,
                       const char *tenant, tv_key **ret_key, tv_crypt_error *err) {
        _cleanup_(tv_key_freep) tv_key *k = NULL;
        _cleanup_secbuf_ secbuf raw = {0};
        const char *value = NULL;
        int r;

        crypt_error_clear(err);
        r = check_tenant(tenant, err);
        if (r < 0)
                return r;
        if ((n > 0 && (!keys || !values)) || !ret_key)
                return crypt_error(err, -EINVAL, "tenant %s: bad node-stage secret arguments", tenant);
        for (size_t i = 0; i < n; i++) {
                if (!keys[i] || strcmp(keys[i], TV_KEY_SECRET_FIELD) != 0)
                        continue;
                if (value)
                        return crypt_error(err, -EINVAL,
                                           "tenant %s: node-stage secret has more than one \"%s\" entry",
                                           tenant, TV_KEY_SECRET_FIELD);
                value = values[i] ? values[i] : "";
        }
        if (!value)
                return crypt_error(err, -EINVAL,
                                   "tenant %s: node-stage secret has no \"%s\" entry (it must hold the "
                                   "tenant key as base64 of at least %d random bytes, e.g. `openssl rand "
                                   "-base64 32`)",
                                   tenant, TV_KEY_SECRET_FIELD, TV_KEY_MIN_SIZE);

        r = base64_decode_locked(value, &raw);
        if (r == -ENOMEM)
                return crypt_error(err, r, "tenant %s: cannot lock memory for the key (RLIMIT_MEMLOCK)",
                                   tenant);
        if (r < 0)
                return crypt_error(err, -EINVAL,
                                   "tenant %s: node-stage secret \"%s\" is not base64 (standard or "
                                   "URL-safe alphabet, at most %d characters); raw keys are not accepted",
                                   tenant, TV_KEY_SECRET_FIELD, SECRET_TEXT_MAX);
        if (raw.size < TV_KEY_MIN_SIZE || raw.size > TV_KEY_MAX_SIZE)
                return crypt_error(err, -EINVAL,
                                   "tenant %s: node-stage secret \"%s\" decodes to %zu bytes; a tenant key "
                                   "must be %d to %d random bytes (e.g. `openssl rand -base64 32`)",
                                   tenant, TV_KEY_SECRET_FIELD, raw.size, TV_KEY_MIN_SIZE, TV_KEY_MAX_SIZE);

        r = key_alloc(tenant, raw.size, &k);
        if (r < 0)
                return crypt_error(err, r, "tenant %s: cannot lock memory for the key (RLIMIT_MEMLOCK)",
                                   tenant);
        memcpy(k->data, raw.data, raw.size);
        r = key_seal(k);
        if (r < 0)
                return crypt_error(err, r, "tenant %s: cannot compute the key fingerprint", tenant);
        log_debug("tenant key loaded from secret", "tenant=%s fingerprint=%s bytes=%zu", tenant,
                  k->fingerprint, k->size);
        *ret_key = TAKE_PTR(k);
        return 0;
}

/* Read the whole master key file into locked memory, after checking that
 * nobody but its owner (root or us) can read it. */
static int read_master_key(const char *path, secbuf *ret, tv_crypt_error *err) {
        _cleanup_secbuf_ secbuf buf = {0};
        _cleanup_close_ int fd = -1;
        struct stat st;
        size_t got = 0;
        int r;

        /* O_NONBLOCK: opening a FIFO must not hang; it is refused below. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                if (r == -ENOENT)
                        return crypt_error(err, r, "master key file %s does not exist", path);
                return crypt_error(err, r == -EACCES || r == -EPERM ? -EACCES : r,
                                   "master key file %s cannot be opened: %s", path, strerror(-r));
        }
        if (fstat(fd, &st) < 0)
                return crypt_error(err, -errno, "master key file %s: cannot stat it", path);
        if (!S_ISREG(st.st_mode))
                return crypt_error(err, -EINVAL, "master key file %s is not a regular file", path);
        if (st.st_mode & 0077)
                return crypt_error(err, -EPERM,
                                   "master key file %s has mode %04o: group or others may use it; it "
                                   "must be 0600 or 0400 (a Kubernetes Secret volume needs defaultMode: "
                                   "0400)",
                                   path, (unsigned)(st.st_mode & 07777));
        if (st.st_uid != 0 && st.st_uid != geteuid())
                return crypt_error(err, -EPERM, "master key file %s is owned by uid %u, not by root",
                                   path, (unsigned)st.st_uid);

        /* One byte more than allowed, to see a file that grew after fstat. */
        r = secbuf_alloc(TV_MASTER_KEY_MAX_SIZE + 1, &buf);
        if (r < 0)
                return crypt_error(err, r, "cannot lock memory for the master key (RLIMIT_MEMLOCK)");
        while (got < buf.size) {
                ssize_t k = read(fd, buf.data + got, buf.size - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return crypt_error(err, -EIO, "master key file %s: read failed: %s", path,
                                           strerror(errno));
                if (k == 0)
                        break;
                got += (size_t)k;
        }
        if (got < TV_MASTER_KEY_MIN_SIZE || got > TV_MASTER_KEY_MAX_SIZE)
                return crypt_error(err, -EINVAL,
                                   "master key file %s holds %zu%s bytes; it must hold %d to %d random "
                                   "bytes (e.g. `head -c 32 /dev/urandom`)",
                                   path, got, got > TV_MASTER_KEY_MAX_SIZE ? "+" : "",
                                   TV_MASTER_KEY_MIN_SIZE, TV_MASTER_KEY_MAX_SIZE);
        buf.size = got;
        *ret = buf;
        buf = (secbuf){0};
        return 0;
}

int tv_key_derive(const char *master_key_path, const char *tenant, tv_key **ret_key,
                  tv_crypt_error *err) {
        _cleanup_(tv_key_freep) tv_key *k = NULL;
        _cleanup_(EVP_KDF_freep) EVP_KDF *kdf = NULL;
        _cleanup_(EVP_KDF_CTX_freep) EVP_KDF_CTX *ctx = NULL;
        _cleanup_secbuf_ secbuf ikm = {0};
        static const char salt[] = TV_KEY_HKDF_SALT;
        char info[sizeof(TV_KEY_HKDF_INFO_PREFIX) + TV_TENANT_SIZE];
        OSSL_PARAM params[5];
        size_t info_len;
        int r;

        crypt_error_clear(err);
        r = check_tenant(tenant, err);
        if (r < 0)
                return r;
        if (!master_key_path || !*master_key_path || !ret_key)
                return crypt_error(err, -EINVAL, "tenant %s: no master key file given", tenant);

        r = read_master_key(master_key_path, &ikm, err);
        if (r < 0)
                return r;

        info_len = (size_t)snprintf(info, sizeof(info), "%s%s", TV_KEY_HKDF_INFO_PREFIX, tenant);
        kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
        if (!kdf)
                return crypt_error(err, -EIO, "tenant %s: OpenSSL has no HKDF", tenant);
        ctx = EVP_KDF_CTX_new(kdf);
        if (!ctx)
                return crypt_error(err, -ENOMEM, "tenant %s: cannot set up HKDF", tenant);
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm.data, ikm.size);
        params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, sizeof(salt) - 1);
        params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, info_len);
        params[4] = OSSL_PARAM_construct_end();

        r = key_alloc(tenant, TV_KEY_DERIVED_SIZE, &k);
        if (r < 0)
                return crypt_error(err, r, "tenant %s: cannot lock memory for the key (RLIMIT_MEMLOCK)",
                                   tenant);
        if (EVP_KDF_derive(ctx, k->data, k->size, params) != 1)
                return crypt_error(err, -EIO, "tenant %s: HKDF-SHA256 derivation failed", tenant);
        r = key_seal(k);
        if (r < 0)
                return crypt_error(err, r, "tenant %s: cannot compute the key fingerprint", tenant);
        log_debug("tenant key derived", "tenant=%s fingerprint=%s", tenant, k->fingerprint);
        *ret_key = TAKE_PTR(k);
        return 0;
}
