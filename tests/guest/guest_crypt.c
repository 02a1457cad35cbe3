/* Tenant keys and LUKS2 volumes against the real kernel (dm-crypt),
 * libcryptsetup and libblkid.
 *
 * Runs as root inside the QEMU guest (tests/vm/run-in-guest). Each TEST
 * makes its own 48-64 MiB loop devices on files in /tmp and removes them,
 * and checks what a user would observe: bytes written through
 * /dev/mapper/<name> read back after a reopen, keys of another tenant
 * refused with no mapping left, foreign devices left byte-for-byte alone,
 * a rotated key opening the same data, an erased volume that no key opens.
 *
 * Everything this process logs (fd 2) goes to LOG_FILE; the last test
 * greps it for every key used here, in hex and base64.
 *
 * Usage: tests/vm/run-in-guest -- build/tests/guest/guest_crypt [NAME-SUBSTRING] */
#include <fcntl.h>
#include <libcryptsetup.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "noise_key.h"
#include "thinvault/crypt.h"
#include "tv_test.h"

#define MiB ((uint64_t)1 << 20)
#define LOG_FILE "/tmp/guest_crypt.log"
#define PATTERN_BYTES MiB

/* ---- keys used here (the last test looks for them in the log) ---------- */

static const uint8_t key_a_bytes[32] = {
        0x3c, 0x91, 0x5e, 0x07, 0xd2, 0x4a, 0xb8, 0x16, 0xf3, 0x6d, 0x29, 0x84, 0xc5, 0x1e, 0x70, 0xab,
        0x58, 0xe2, 0x0f, 0x97, 0x33, 0xcd, 0x64, 0xba, 0x12, 0x8f, 0x4d, 0xe6, 0x75, 0x0a, 0x9b, 0xc1};
static const uint8_t key_a2_bytes[48] = {
        0xa7, 0x02, 0x6e, 0xf9, 0x14, 0xcb, 0x85, 0x3d, 0x59, 0xe0, 0x27, 0x9a, 0x61, 0xbe, 0x08, 0xd3,
        0x4f, 0x96, 0x2c, 0x73, 0xea, 0x15, 0xb0, 0x5c, 0x87, 0x3e, 0xd9, 0x40, 0x1b, 0xf6, 0x62, 0xad,
        0x98, 0x21, 0x7c, 0xe5, 0x0d, 0xb3, 0x46, 0xfa, 0x6b, 0x11, 0xc8, 0x53, 0x2e, 0x9f, 0x74, 0x05};
static const uint8_t key_b_bytes[32] = {
        0xe4, 0x1f, 0x88, 0x3a, 0x6c, 0xd5, 0x02, 0x97, 0xbb, 0x40, 0x7e, 0x19, 0xf2, 0x65, 0xa8, 0x0c,
        0x5d, 0xc3, 0x36, 0x81, 0x0e, 0x9a, 0x7f, 0x24, 0xd8, 0x4b, 0xb6, 0x13, 0x6a, 0xf0, 0x29, 0x95};
/* HKDF-SHA256 of master key 00..1f for tenant team-a (tests/unit/test_crypt.c). */
static const char derived_a_hex[] = "42340db7e44e02dcd116289cae764505f3801320408f22cb3e78efbaf814da76";
static const char foreign_passphrase[] = "foreign tool passphrase 0123456789";

static int tests_run;

static void log_to_file(void) __attribute__((constructor));
static void log_to_file(void) {
        int fd = open(LOG_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
                (void)dup2(fd, STDERR_FILENO);
                close(fd);
        }
        tv_log_set_level(TV_LOG_DEBUG);
}

static bool in_guest(void) {
        static int ok = -1;
        char cmdline[1024] = "";
        FILE *f;

        if (ok >= 0)
                return ok;
        f = fopen("/proc/cmdline", "re");
        if (f) {
                if (!fgets(cmdline, sizeof(cmdline), f))
                        cmdline[0] = '\0';
                fclose(f);
        }
        ok = strstr(cmdline, "tv_run=") && geteuid() == 0;
        if (!ok)
                tv_test_fail(__FILE__, __LINE__,
                             "not root in the test guest; run: tests/vm/run-in-guest -- %s",
                             "build/tests/guest/guest_crypt");
        return ok;
}

/* CHECK that `call` returns `want`, printing the layer's message when not. */
#define CHECK_R(call, want, err)                                                                   \
        do {                                                                                       \
                int _r = (call);                                                                   \
                if (_r != (want))                                                                  \
                        tv_test_fail(__FILE__, __LINE__, "%s == %d, expected %d: %s", #call, _r,   \
                                     (int)(want), (err).message);                                  \
        } while (0)

static void b64(const uint8_t *in, size_t n, bool url, char *out) {
        EVP_EncodeBlock((unsigned char *)out, in, (int)n);
        if (!url)
                return;
        for (char *p = out; *p; p++)
                if (*p == '+')
                        *p = '-';
                else if (*p == '/')
                        *p = '_';
                else if (*p == '=')
                        *p = '\0';
}

static void hex(const uint8_t *in, size_t n, bool upper, char *out) {
        for (size_t i = 0; i < n; i++)
                snprintf(out + 2 * i, 3, upper ? "%02X" : "%02x", in[i]);
}

/* A key for `tenant` through the node-stage secret path. */
static tv_key *secret_key(const char *tenant, const uint8_t *bytes, size_t n) {
        char value[128];
        const char *keys[] = {TV_KEY_SECRET_FIELD};
        const char *values[] = {value};
        tv_crypt_error err;
        tv_key *k = NULL;

        b64(bytes, n, false, value);
        CHECK_R(tv_key_from_secret(keys, values, 1, tenant, &k, &err), 0, err);
        explicit_bzero(value, sizeof(value));
        return k;
}

/* ---- loop devices -------------------------------------------------------- */

typedef struct loopdev {
        char file[64];
        char dev[32];
} loopdev;

static int run(const char *const argv[], char **ret_out) {
        _cleanup_free_ char *err = NULL;
        int r = tv_exec(argv, 60000, ret_out, &err);
        if (r != 0)
                tv_test_fail(__FILE__, __LINE__, "%s exited %d: %s", argv[0], r, err ? err : "");
        return r;
}

static bool loop_new(uint64_t size, loopdev *ret) {
        _cleanup_free_ char *out = NULL;
        loopdev l = {0};
        int fd;

        snprintf(l.file, sizeof(l.file), "/tmp/tv-crypt.XXXXXX");
        fd = mkstemp(l.file);
        CHECK(fd >= 0);
        if (fd < 0)
                return false;
        CHECK_INT(ftruncate(fd, (off_t)size), 0);
        close(fd);
        if (run((const char *const[]){"losetup", "--find", "--show", l.file, NULL}, &out) != 0)
                return false;
        snprintf(l.dev, sizeof(l.dev), "%s", tv_strstrip_end(out));
        *ret = l;
        return true;
}

static void loop_free(loopdev *l) {
        if (l->dev[0])
                (void)run((const char *const[]){"losetup", "-d", l->dev, NULL}, NULL);
        if (l->file[0])
                (void)unlink(l->file);
        *l = (loopdev){0};
}

/* ---- raw I/O (O_DIRECT: no stale page cache between dm and the loop) ---- */

static uint8_t *io_buf(size_t n) {
        void *p = NULL;
        CHECK_INT(posix_memalign(&p, 4096, n), 0);
        return p;
}

static bool pio(const char *path, bool write_, void *buf, size_t n, uint64_t off) {
        int fd = open(path, (write_ ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC);
        ssize_t got;

        CHECK(fd >= 0);
        if (fd < 0)
                return false;
        got = write_ ? pwrite(fd, buf, n, (off_t)off) : pread(fd, buf, n, (off_t)off);
        CHECK_INT(got, (long long)n);
        if (write_)
                CHECK_INT(fsync(fd), 0);
        close(fd);
        return got == (ssize_t)n;
}

static void fill_pattern(uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)((i * 131u + (i >> 12) * 7u) ^ 0x5a);
        memcpy(p, "thinvault pattern", 17);
}

static void sha256_first_mib(const char *dev, uint8_t ret[32]) {
        _cleanup_free_ uint8_t *b = io_buf(MiB);
        unsigned int n = 0;

        memset(ret, 0, 32);
        if (pio(dev, false, b, MiB, 0))
                CHECK(EVP_Digest(b, MiB, ret, &n, EVP_sha256(), NULL) == 1);
}

static uint64_t data_offset_bytes(const char *dev) {
        struct crypt_device *cd = NULL;
        uint64_t off = 0;

        if (crypt_init(&cd, dev) == 0 && crypt_load(cd, CRYPT_LUKS2, NULL) == 0)
                off = crypt_get_data_offset(cd) * 512;
        crypt_free(cd);
        CHECK(off > 0);
        return off;
}

static uint64_t blockdev_size(const char *path) {
        uint64_t size = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        if (fd >= 0) {
                CHECK_INT(ioctl(fd, BLKGETSIZE64, &size), 0);
                close(fd);
        }
        return size;
}

static uint32_t active_flags(const char *name) {
        struct crypt_device *cd = NULL;
        struct crypt_active_device cad = {0};

        CHECK_INT(crypt_init_by_name(&cd, name), 0);
        CHECK_INT(crypt_get_active_device(cd, name, &cad), 0);
        crypt_free(cd);
        return cad.flags;
}

static bool mapping_present(const char *name) {
        char path[160];
        snprintf(path, sizeof(path), "/dev/mapper/%s", name);
        return crypt_status(NULL, name) != CRYPT_INACTIVE || access(path, F_OK) == 0;
}

/* Add a keyslot for `new` with libcryptsetup directly, as a rotation that
 * stopped half-way would have left it. */
static void add_keyslot(const char *dev, const uint8_t *old, size_t old_n, const uint8_t *new_,
                        size_t new_n) {
        struct crypt_device *cd = NULL;
        struct crypt_pbkdf_type pbkdf = {.type = CRYPT_KDF_PBKDF2, .hash = "sha256",
                                         .iterations = 1000, .flags = CRYPT_PBKDF_NO_BENCHMARK};

        CHECK_INT(crypt_init(&cd, dev), 0);
        CHECK_INT(crypt_load(cd, CRYPT_LUKS2, NULL), 0);
        CHECK_INT(crypt_set_pbkdf_type(cd, &pbkdf), 0);
        CHECK(crypt_keyslot_add_by_passphrase(cd, CRYPT_ANY_SLOT, (const char *)old, old_n,
                                              (const char *)new_, new_n) >= 0);
        crypt_free(cd);
}

/* Format `dev` for key's tenant, timed; returns ms. */
static uint64_t format(const char *dev, const tv_key *k) {
        tv_crypt_error err;
        uint64_t t0 = tv_now_ms();

        CHECK_R(tv_luks_format(dev, k, &err), 0, err);
        return tv_now_ms() - t0;
}

static void write_pattern_through(const char *mapping) {
        char path[160];
        _cleanup_free_ uint8_t *p = io_buf(PATTERN_BYTES);

        snprintf(path, sizeof(path), "/dev/mapper/%s", mapping);
        fill_pattern(p, PATTERN_BYTES);
        (void)pio(path, true, p, PATTERN_BYTES, 0);
}

static bool pattern_reads_back(const char *mapping) {
        char path[160];
        _cleanup_free_ uint8_t *want = io_buf(PATTERN_BYTES);
        _cleanup_free_ uint8_t *got = io_buf(PATTERN_BYTES);

        snprintf(path, sizeof(path), "/dev/mapper/%s", mapping);
        fill_pattern(want, PATTERN_BYTES);
        return pio(path, false, got, PATTERN_BYTES, 0) && memcmp(want, got, PATTERN_BYTES) == 0;
}

/* ---- tests ---------------------------------------------------------------- */

TEST(guest_crypt_probe_says_empty_for_a_fresh_device) {
        loopdev l;
        tv_luks_info info;
        tv_crypt_error err;

        tests_run++;
        if (!in_guest() || !loop_new(48 * MiB, &l))
                return;
        CHECK_R(tv_luks_probe(l.dev, &info, &err), 0, err);
        CHECK_INT(info.kind, TV_LUKS_KIND_EMPTY);
        CHECK_STR(info.type, "");
        CHECK_STR(info.tenant, "");
        CHECK_R(tv_luks_probe("/dev/does-not-exist", &info, &err), -ENOENT, err);
        loop_free(&l);
}

TEST(guest_crypt_format_writes_luks2_with_our_token_readable_without_a_key) {
        _cleanup_(tv_key_freep) tv_key *a = secret_key("team-a", key_a_bytes, sizeof(key_a_bytes));
        _cleanup_free_ char *tenant = NULL, *fp = NULL;
        struct crypt_device *cd = NULL;
        struct crypt_pbkdf_type pbkdf = {0};
        uint8_t before[32], after[32];
        tv_crypt_error err;
        tv_luks_info info;
        loopdev l;

        tests_run++;
        if (!in_guest() || !loop_new(64 * MiB, &l))
                return;
        uint64_t ms = format(l.dev, a);
        printf("    luksFormat (PBKDF2-1000, 512-bit aes-xts-plain64, token, 1 keyslot): %" PRIu64
               " ms\n",
               ms);

        /* No key needed to tell whose it is. */
        CHECK_R(tv_luks_token(l.dev, &tenant, &fp, &err), 0, err);
        CHECK_STR(tenant, "team-a");
        CHECK_STR(fp, tv_key_fingerprint(a));
        CHECK_R(tv_luks_probe(l.dev, &info, &err), 0, err);
        CHECK_INT(info.kind, TV_LUKS_KIND_OURS);
        CHECK_STR(info.type, "crypto_LUKS");
        CHECK_INT(info.luks_version, 2);
        CHECK_STR(info.tenant, "team-a");
        CHECK_STR(info.fingerprint, tv_key_fingerprint(a));

        /* What libcryptsetup reads back from the header. */
        CHECK_INT(crypt_init(&cd, l.dev), 0);
        CHECK_INT(crypt_load(cd, CRYPT_LUKS2, NULL), 0);
        CHECK_STR(crypt_get_cipher(cd), "aes");
        CHECK_STR(crypt_get_cipher_mode(cd), "xts-plain64");
        CHECK_INT(crypt_get_volume_key_size(cd), 64);
        CHECK_INT(crypt_keyslot_status(cd, 0), CRYPT_SLOT_ACTIVE_LAST);
        CHECK_INT(crypt_keyslot_get_pbkdf(cd, 0, &pbkdf), 0);
        CHECK_STR(pbkdf.type, CRYPT_KDF_PBKDF2);
        CHECK_INT(pbkdf.iterations, 1000);
        crypt_free(cd);

        /* Formatting again is refused and writes nothing. */
        sha256_first_mib(l.dev, before);
        CHECK_R(tv_luks_format(l.dev, a, &err), -EEXIST, err);
        CHECK(strstr(err.message, "team-a") != NULL);
        sha256_first_mib(l.dev, after);
        CHECK(memcmp(before, after, 32) == 0);

        /* A format that stopped before its keyslot is done again. */
        CHECK_INT(crypt_init(&cd, l.dev), 0);
        CHECK_INT(crypt_load(cd, CRYPT_LUKS2, NULL), 0);
        CHECK_INT(crypt_keyslot_destroy(cd, 0), 0);
        crypt_free(cd);
        CHECK_R(tv_luks_open(l.dev, "tvc-format", a, 0, &err), -EKEYREJECTED, err);
        CHECK_R(tv_luks_format(l.dev, a, &err), 0, err);
        uint64_t t0 = tv_now_ms();
        CHECK_R(tv_luks_open(l.dev, "tvc-format", a, 0, &err), 0, err);
        printf("    open: %" PRIu64 " ms (the first dm-crypt table of a boot also loads and self-tests "
               "the kernel's aes/xts modules)\n",
               tv_now_ms() - t0);
        CHECK_R(tv_luks_close("tvc-format", &err), 0, err);
        loop_free(&l);
}

TEST(guest_crypt_open_write_close_reopen_reads_the_pattern_back) {
        _cleanup_(tv_key_freep) tv_key *a = secret_key("team-a", key_a_bytes, sizeof(key_a_bytes));
        tv_crypt_error err;
        loopdev l, other;
        uint32_t flags;
        uint64_t t0;

        tests_run++;
        if (!in_guest() || !loop_new(64 * MiB, &l) || !loop_new(48 * MiB, &other))
                return;
        format(l.dev, a);
        format(other.dev, a);
        t0 = tv_now_ms();
        CHECK_R(tv_luks_open(l.dev, "tvc-open", a, 0, &err), 0, err);
        printf("    open: %" PRIu64 " ms\n", tv_now_ms() - t0);
        CHECK(access("/dev/mapper/tvc-open", F_OK) == 0);
        flags = active_flags("tvc-open");
        CHECK(flags & CRYPT_ACTIVATE_NO_READ_WORKQUEUE);
        CHECK(flags & CRYPT_ACTIVATE_NO_WRITE_WORKQUEUE);
        CHECK(flags & CRYPT_ACTIVATE_ALLOW_DISCARDS);
        CHECK(!(flags & CRYPT_ACTIVATE_READONLY));
        CHECK_INT(blockdev_size("/dev/mapper/tvc-open"), 64 * MiB - data_offset_bytes(l.dev));
        write_pattern_through("tvc-open");

        /* Opening it again is a no-op; the name on another device is not. */
        CHECK_R(tv_luks_open(l.dev, "tvc-open", a, 0, &err), 0, err);
        CHECK_R(tv_luks_open(other.dev, "tvc-open", a, 0, &err), -EEXIST, err);
        /* One device, one mapping. */
        CHECK_R(tv_luks_open(l.dev, "tvc-open2", a, 0, &err), -EBUSY, err);
        CHECK(!mapping_present("tvc-open2"));

        CHECK_R(tv_luks_close("tvc-open", &err), 0, err);
        CHECK(!mapping_present("tvc-open"));
        CHECK_R(tv_luks_close("tvc-open", &err), 0, err);

        /* The device holds ciphertext only. */
        {
                _cleanup_free_ uint8_t *raw = io_buf(PATTERN_BYTES);
                _cleanup_free_ uint8_t *want = io_buf(PATTERN_BYTES);
                fill_pattern(want, PATTERN_BYTES);
                CHECK(pio(l.dev, false, raw, PATTERN_BYTES, data_offset_bytes(l.dev)));
                CHECK(memcmp(raw, want, PATTERN_BYTES) != 0);
                CHECK(memmem(raw, PATTERN_BYTES, "thinvault pattern", 17) == NULL);
        }

        t0 = tv_now_ms();
        CHECK_R(tv_luks_open(l.dev, "tvc-open", a, TV_LUKS_OPEN_READONLY, &err), 0, err);
        printf("    reopen: %" PRIu64 " ms\n", tv_now_ms() - t0);
        CHECK(pattern_reads_back("tvc-open"));
        CHECK(active_flags("tvc-open") & CRYPT_ACTIVATE_READONLY);
        CHECK_R(tv_luks_close("tvc-open", &err), 0, err);
        loop_free(&l);
        loop_free(&other);
}

TEST(guest_crypt_key_of_another_tenant_or_wrong_key_is_rejected_and_leaves_no_mapping) {
        _cleanup_(tv_key_freep) tv_key *a = secret_key("team-a", key_a_bytes, sizeof(key_a_bytes));
        _cleanup_(tv_key_freep) tv_key *b = secret_key("team-b", key_b_bytes, sizeof(key_b_bytes));
        /* B's bytes, labelled team-a: gets past the token, not the keyslot. */
        _cleanup_(tv_key_freep) tv_key *a_wrong = secret_key("team-a", key_b_bytes, sizeof(key_b_bytes));
        tv_crypt_error err;
        loopdev l;

        tests_run++;
        if (!in_guest() || !loop_new(48 * MiB, &l))
                return;
        format(l.dev, a);
        CHECK_R(tv_luks_open(l.dev, "tvc-reject", b, 0, &err), -EKEYREJECTED, err);
        CHECK(strstr(err.message, "team-a") && strstr(err.message, "team-b"));
        CHECK(!mapping_present("tvc-reject"));
        CHECK_R(tv_luks_open(l.dev, "tvc-reject", a_wrong, 0, &err), -EKEYREJECTED, err);
        CHECK(strstr(err.message, tv_key_fingerprint(a)) != NULL);
        CHECK(!mapping_present("tvc-reject"));

        /* Nor does a wrong key pass as a retry of an open that happened. */
        CHECK_R(tv_luks_open(l.dev, "tvc-reject", a, 0, &err), 0, err);
        CHECK_R(tv_luks_open(l.dev, "tvc-reject", a_wrong, 0, &err), -EKEYREJECTED, err);
        CHECK(mapping_present("tvc-reject"));
        CHECK_R(tv_luks_close("tvc-reject", &err), 0, err);
        loop_free(&l);
}

static void format_foreign_luks2(const char *dev, const char *token_json) {
        struct crypt_device *cd = NULL;
        struct crypt_pbkdf_type pbkdf = {.type = CRYPT_KDF_PBKDF2, .hash = "sha256",
                                         .iterations = 1000, .flags = CRYPT_PBKDF_NO_BENCHMARK};
        struct crypt_params_luks2 params = {.pbkdf = &pbkdf, .sector_size = 512};

        CHECK_INT(crypt_init(&cd, dev), 0);
        CHECK_INT(crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, NULL, 64, &params), 0);
        CHECK(crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, foreign_passphrase,
                                              strlen(foreign_passphrase)) >= 0);
        if (token_json)
                CHECK(crypt_token_json_set(cd, CRYPT_ANY_TOKEN, token_json) >= 0);
        crypt_free(cd);
}

TEST(guest_crypt_foreign_luks2_is_classified_and_left_alone) {
        _cleanup_(tv_key_freep) tv_key *a = secret_key("team-a", key_a_bytes, sizeof(key_a_bytes));
        static const char *const tokens[] = {NULL, "{\"type\":\"other-tool\",\"keyslots\":[]}"};
        uint8_t before[32], after[32];
        tv_crypt_error err;
        tv_luks_info info;

        tests_run++;
        if (!in_guest())
                return;
        for (size_t i = 0; i < ELEMENTSOF(tokens); i++) {
                loopdev l;
                if (!loop_new(48 * MiB, &l))
                        return;
                format_foreign_luks2(l.dev, tokens[i]);
                sha256_first_mib(l.dev, before);
                CHECK_R(tv_luks_probe(l.dev, &info, &err), 0, err);
                CHECK_INT(info.kind, TV_LUKS_KIND_FOREIGN);
                CHECK_STR(info.type, "crypto_LUKS");
                CHECK_INT(info.luks_version, 2);
                CHECK_STR(info.tenant, "");
                CHECK_R(tv_luks_format(l.dev, a, &err), -EEXIST, err);
                CHECK(strstr(err.message, "crypto_LUKS") != NULL);
                CHECK_R(tv_luks_open(l.dev, "tvc-foreign", a, 0, &err), -ENODATA, err);
                CHECK(!mapping_present("tvc-foreign"));
                CHECK_R(tv_luks_token(l.dev, NULL, NULL, &err), -ENODATA, err);
                sha256_first_mib(l.dev, after);
                CHECK(memcmp(before, after, 32) == 0);
                loop_free(&l);
        }
}

TEST(guest_crypt_ext4_is_classified_and_left_alone) {
        _cleanup_(tv_key_freep) tv_key *a = secret_key("team-a", key_a_bytes, sizeof(key_a_bytes));
        uint8_t before[32], after[32];
        tv_crypt_error err;
        tv_luks_info info;
        loopdev l;

        tests_run++;
        if (!in_guest() || !loop_new(48 * MiB, &l))
                return;
        if (run((const char *const[]){"mkfs.ext4", "-q", "-F", l.dev, NULL}, NULL) != 0)
                return;
        sha256_first_mib(l.dev, before);
        CHECK_R(tv_luks_probe(l.dev, &info, &err), 0, err);
        CHECK_INT(info.kind, TV_LUKS_KIND_OTHER);
        CHECK_STR(info.type, "ext4");
        CHECK_INT(info.luks_version, 0);
        CHECK_INT(info.magic_offset, 1080); /* s_magic, 0x38 into the superblock at 1 KiB */
        CHECK_INT(info.magic_len, 2);
        CHECK_R(tv_luks_format(l.dev, a, &err), -EEXIST, err);
        CHECK(strstr(err.message, "ext4") != NULL);
        CHECK_R(tv_luks_erase(l.dev, &err), -EMEDIUMTYPE, err);
        CHECK_R(tv_luks_open(l.dev, "tvc-ext4", a, 0, &err), -EMEDIUMTYPE, err);
        CHECK_R(tv_luks_token(l.dev, NULL, NULL, &err), -EMEDIUMTYPE, err);
        sha256_first_mib(l.dev, after);
        CHECK(memcmp(before, after, 32) == 0);
        loop_free(&l);
}

/* tv_luks_plaintext_unwritten() on a signature nobody wrote, and on the
 * same bytes once written through the mapping. */
TEST(guest_crypt_signature_in_never_written_bytes_is_told_from_written_data) {
        struct crypt_pbkdf_type pbkdf = {.type = CRYPT_KDF_PBKDF2, .hash = "sha256",
                                         .iterations = 1000, .flags = CRYPT_PBKDF_NO_BENCHMARK};
        struct crypt_params_luks2 params = {.pbkdf = &pbkdf, .sector_size = 512};
        _cleanup_free_ uint8_t *sector = io_buf(4096);
        struct crypt_device *cd = NULL;
        uint8_t vk[NOISE_KEY_BYTES];
        tv_crypt_error err;
        tv_luks_info info;
        uint64_t data;
        loopdev l, plain;

        bool found;

        tests_run++;
        found = noise_key(vk);
        CHECK(found);
        if (!found || !in_guest() || !loop_new(48 * MiB, &l))
                return;
        CHECK_INT(crypt_init(&cd, l.dev), 0);
        CHECK_INT(crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, (const char *)vk, sizeof(vk), &params),
                  0);
        CHECK_INT(crypt_activate_by_volume_key(cd, "tvc-noise", (const char *)vk, sizeof(vk), 0), 0);
        crypt_free(cd);
        explicit_bzero(vk, sizeof(vk));
        data = data_offset_bytes(l.dev);

        /* Nothing was written, yet libblkid sees hfsplus, and says where. */
        CHECK_R(tv_luks_probe("/dev/mapper/tvc-noise", &info, &err), 0, err);
        CHECK_INT(info.kind, TV_LUKS_KIND_OTHER);
        CHECK_STR(info.type, "hfsplus");
        CHECK_INT(info.magic_offset, 1024);
        CHECK_INT(info.magic_len, 2);
        printf("    fresh mapping probes as %s, magic at %" PRIu64 " (%u bytes)\n", info.type, info.magic_offset,
               info.magic_len);
        CHECK_R(tv_luks_plaintext_unwritten(l.dev, info.magic_offset, info.magic_len, &err), 1, err);

        /* Write that sector through the mapping with its last byte changed
         * (the magic and block size stay): the signature is now data.
         * (Written back unchanged, it would encrypt to the zeros again.) */
        CHECK(pio("/dev/mapper/tvc-noise", false, sector, 512, 1024));
        sector[511] ^= 0xff;
        CHECK(pio("/dev/mapper/tvc-noise", true, sector, 512, 1024));
        CHECK_R(tv_luks_probe("/dev/mapper/tvc-noise", &info, &err), 0, err);
        CHECK_STR(info.type, "hfsplus");
        CHECK_R(tv_luks_plaintext_unwritten(l.dev, 1024, 2, &err), 0, err);
        CHECK(pio(l.dev, false, sector, 512, data + 1024));
        {
                size_t nonzero = 0;
                for (size_t i = 0; i < 512; i++)
                        nonzero += sector[i] != 0;
                CHECK(nonzero > 0);
        }
        /* a neighbour sector, and a range over both */
        CHECK_R(tv_luks_plaintext_unwritten(l.dev, 1536, 16, &err), 1, err);
        CHECK_R(tv_luks_plaintext_unwritten(l.dev, 1530, 16, &err), 0, err);

        /* bad ranges and devices */
        CHECK_R(tv_luks_plaintext_unwritten(l.dev, 1024, 0, &err), -ERANGE, err);
        CHECK_R(tv_luks_plaintext_unwritten(l.dev, 48 * MiB - data - 1, 2, &err), -ERANGE, err);
        CHECK(strstr(err.message, "outside its data area") != NULL);
        CHECK_R(tv_luks_plaintext_unwritten(l.dev, UINT64_MAX - 1, 2, &err), -ERANGE, err);
        if (loop_new(8 * MiB, &plain)) {
                CHECK_R(tv_luks_plaintext_unwritten(plain.dev, 1024, 2, &err), -EMEDIUMTYPE, err);
                loop_free(&plain);
        }
        CHECK_R(tv_luks_plaintext_unwritten("/dev/tv-no-such-device", 1024, 2, &err), -ENOENT, err);

        CHECK_R(tv_luks_close("tvc-noise", &err), 0, err);
        loop_free(&l);
}

TEST(guest_crypt_rotate_new_key_opens_the_same_data_old_key_does_not) {
        _cleanup_(tv_key_freep) tv_key *a = secret_key("team-a", key_a_bytes, sizeof(key_a_bytes));
        _cleanup_(tv_key_freep) tv_key *a2 = secret_key("team-a", key_a2_bytes, sizeof(key_a2_bytes));
        _cleanup_(tv_key_freep) tv_key *b = secret_key("team-b", key_b_bytes, sizeof(key_b_bytes));
        _cleanup_free_ char *fp = NULL;
        tv_crypt_error err;
        loopdev l;

        tests_run++;
        if (!in_guest() || !loop_new(48 * MiB, &l))
                return;
        format(l.dev, a);
        CHECK_R(tv_luks_open(l.dev, "tvc-rotate", a, 0, &err), 0, err);
        write_pattern_through("tvc-rotate");

        /* Rotation works under an open mapping. */
        CHECK_R(tv_luks_rotate(l.dev, a, a2, &err), 0, err);
        CHECK(pattern_reads_back("tvc-rotate"));
        CHECK_R(tv_luks_close("tvc-rotate", &err), 0, err);
        CHECK_R(tv_luks_token(l.dev, NULL, &fp, &err), 0, err);
        CHECK_STR(fp, tv_key_fingerprint(a2));

        CHECK_R(tv_luks_open(l.dev, "tvc-rotate", a, 0, &err), -EKEYREJECTED, err);
        CHECK(!mapping_present("tvc-rotate"));
        CHECK_R(tv_luks_open(l.dev, "tvc-rotate", a2, 0, &err), 0, err);
        CHECK(pattern_reads_back("tvc-rotate"));
        CHECK_R(tv_luks_close("tvc-rotate", &err), 0, err);

        /* A retry finds it done; nonsense is refused. */
        CHECK_R(tv_luks_rotate(l.dev, a, a2, &err), 0, err);
        CHECK_R(tv_luks_rotate(l.dev, a2, a2, &err), -EINVAL, err);
        CHECK_R(tv_luks_rotate(l.dev, a2, b, &err), -EINVAL, err);
        CHECK_R(tv_luks_rotate(l.dev, b, b, &err), -EINVAL, err);
        /* Back again, then the first key opens. */
        CHECK_R(tv_luks_rotate(l.dev, a2, a, &err), 0, err);
        CHECK_R(tv_luks_open(l.dev, "tvc-rotate", a2, 0, &err), -EKEYREJECTED, err);
        CHECK_R(tv_luks_open(l.dev, "tvc-rotate", a, 0, &err), 0, err);
        CHECK(pattern_reads_back("tvc-rotate"));
        CHECK_R(tv_luks_close("tvc-rotate", &err), 0, err);

        /* A rotation that stopped after adding the new keyslot (token and
         * old keyslot not yet changed) is finished by the retry. */
        add_keyslot(l.dev, key_a_bytes, sizeof(key_a_bytes), key_a2_bytes, sizeof(key_a2_bytes));
        free(fp);
        fp = NULL;
        CHECK_R(tv_luks_token(l.dev, NULL, &fp, &err), 0, err);
        CHECK_STR(fp, tv_key_fingerprint(a));
        CHECK_R(tv_luks_rotate(l.dev, a, a2, &err), 0, err);
        CHECK_R(tv_luks_open(l.dev, "tvc-rotate", a, 0, &err), -EKEYREJECTED, err);
        CHECK_R(tv_luks_open(l.dev, "tvc-rotate", a2, 0, &err), 0, err);
        CHECK(pattern_reads_back("tvc-rotate"));
        CHECK_R(tv_luks_close("tvc-rotate", &err), 0, err);
        free(fp);
        fp = NULL;
        CHECK_R(tv_luks_token(l.dev, NULL, &fp, &err), 0, err);
        CHECK_STR(fp, tv_key_fingerprint(a2));
        loop_free(&l);
}

TEST(guest_crypt_erase_leaves_nothing_any_key_opens) {
        _cleanup_(tv_key_freep) tv_key *a = secret_key("team-a", key_a_bytes, sizeof(key_a_bytes));
        _cleanup_(tv_key_freep) tv_key *a2 = secret_key("team-a", key_a2_bytes, sizeof(key_a2_bytes));
        _cleanup_free_ uint8_t *hdr_before = NULL, *hdr_after = NULL;
        _cleanup_free_ uint8_t *data_before = io_buf(PATTERN_BYTES);
        _cleanup_free_ uint8_t *data_after = io_buf(PATTERN_BYTES);
        tv_crypt_error err;
        tv_luks_info info;
        uint64_t off, t0;
        size_t kept = 0, blocks = 0;
        loopdev l;

        tests_run++;
        if (!in_guest() || !loop_new(48 * MiB, &l))
                return;
        format(l.dev, a);
        CHECK_R(tv_luks_open(l.dev, "tvc-erase", a, 0, &err), 0, err);
        write_pattern_through("tvc-erase");
        /* Two keyslots (as mid-rotation): both must go. */
        add_keyslot(l.dev, key_a_bytes, sizeof(key_a_bytes), key_a2_bytes, sizeof(key_a2_bytes));

        off = data_offset_bytes(l.dev);
        hdr_before = io_buf(off);
        hdr_after = io_buf(off);
        CHECK(pio(l.dev, false, hdr_before, off, 0));
        CHECK(pio(l.dev, false, data_before, PATTERN_BYTES, off));

        /* Not while the mapping holds the volume key. */
        CHECK_R(tv_luks_erase(l.dev, &err), -EBUSY, err);
        CHECK_R(tv_luks_close("tvc-erase", &err), 0, err);
        t0 = tv_now_ms();
        CHECK_R(tv_luks_erase(l.dev, &err), 2, err);
        printf("    erase (%" PRIu64 " MiB header area): %" PRIu64 " ms\n", off / MiB, tv_now_ms() - t0);

        CHECK_R(tv_luks_probe(l.dev, &info, &err), 0, err);
        CHECK_INT(info.kind, TV_LUKS_KIND_EMPTY);
        CHECK_R(tv_luks_open(l.dev, "tvc-erase", a, 0, &err), -EMEDIUMTYPE, err);
        CHECK_R(tv_luks_open(l.dev, "tvc-erase", a2, 0, &err), -EMEDIUMTYPE, err);
        CHECK(!mapping_present("tvc-erase"));
        CHECK_R(tv_luks_token(l.dev, NULL, NULL, &err), -EMEDIUMTYPE, err);

        /* Every header block that held anything was overwritten; the data
         * area is untouched ciphertext. */
        CHECK(pio(l.dev, false, hdr_after, off, 0));
        for (uint64_t o = 0; o < off; o += 4096) {
                static const uint8_t zero[4096];
                if (memcmp(hdr_before + o, zero, 4096) == 0)
                        continue;
                blocks++;
                if (memcmp(hdr_before + o, hdr_after + o, 4096) == 0)
                        kept++;
        }
        CHECK(blocks > 0);
        CHECK_INT(kept, 0);
        CHECK(pio(l.dev, false, data_after, PATTERN_BYTES, off));
        CHECK(memcmp(data_before, data_after, PATTERN_BYTES) == 0);

        /* The blocks reused for a new volume, even with the same tenant key,
         * show only noise: the old volume key is gone. */
        CHECK_R(tv_luks_erase(l.dev, &err), 0, err);
        format(l.dev, a);
        CHECK_INT(data_offset_bytes(l.dev), off);
        CHECK_R(tv_luks_open(l.dev, "tvc-erase", a, 0, &err), 0, err);
        CHECK(!pattern_reads_back("tvc-erase"));
        {
                char path[64];
                _cleanup_free_ uint8_t *p = io_buf(PATTERN_BYTES);
                snprintf(path, sizeof(path), "/dev/mapper/tvc-erase");
                CHECK(pio(path, false, p, PATTERN_BYTES, 0));
                CHECK(memmem(p, PATTERN_BYTES, "thinvault pattern", 17) == NULL);
        }
        CHECK_R(tv_luks_close("tvc-erase", &err), 0, err);
        loop_free(&l);
}

TEST(guest_crypt_resize_grows_the_open_mapping_to_the_device) {
        _cleanup_(tv_key_freep) tv_key *a = secret_key("team-a", key_a_bytes, sizeof(key_a_bytes));
        tv_crypt_error err;
        uint64_t size = 0, off;
        loopdev l;

        tests_run++;
        if (!in_guest() || !loop_new(48 * MiB, &l))
                return;
        format(l.dev, a);
        off = data_offset_bytes(l.dev);
        CHECK_R(tv_luks_open(l.dev, "tvc-resize", a, 0, &err), 0, err);
        write_pattern_through("tvc-resize");
        CHECK_INT(blockdev_size("/dev/mapper/tvc-resize"), 48 * MiB - off);

        CHECK_INT(truncate(l.file, 80 * MiB), 0);
        (void)run((const char *const[]){"losetup", "-c", l.dev, NULL}, NULL);
        CHECK_INT(blockdev_size(l.dev), 80 * MiB);
        CHECK_R(tv_luks_resize("tvc-resize", &size, &err), 0, err);
        CHECK_INT(size, 80 * MiB - off);
        CHECK_INT(blockdev_size("/dev/mapper/tvc-resize"), 80 * MiB - off);
        CHECK(pattern_reads_back("tvc-resize"));
        CHECK_R(tv_luks_resize("tvc-no-such-mapping", NULL, &err), -ENODEV, err);
        CHECK_R(tv_luks_close("tvc-resize", &err), 0, err);
        loop_free(&l);
}

TEST(guest_crypt_derived_key_opens_and_close_leaves_other_mappings_alone) {
        _cleanup_(tv_key_freep) tv_key *d = NULL;
        char master[] = "/tmp/tv-crypt-master.XXXXXX";
        uint8_t seq[32];
        tv_crypt_error err;
        char table[128];
        loopdev l;
        int fd;

        tests_run++;
        if (!in_guest() || !loop_new(48 * MiB, &l))
                return;
        for (size_t i = 0; i < sizeof(seq); i++)
                seq[i] = (uint8_t)i;
        fd = mkstemp(master); /* mode 0600 */
        CHECK(fd >= 0);
        CHECK_INT(write(fd, seq, sizeof(seq)), 32);
        close(fd);
        CHECK_R(tv_key_derive(master, "team-a", &d, &err), 0, err);
        (void)unlink(master);
        {
                uint8_t want[32];
                _cleanup_(tv_key_freep) tv_key *w = NULL;
                for (size_t i = 0; i < 32; i++) {
                        unsigned v;
                        (void)sscanf(derived_a_hex + 2 * i, "%2x", &v);
                        want[i] = (uint8_t)v;
                }
                CHECK_INT(tv_key_new("team-a", want, sizeof(want), &w, NULL), 0);
                CHECK(tv_key_equal(d, w));
        }
        format(l.dev, d);
        CHECK_R(tv_luks_open(l.dev, "tvc-derived", d, 0, &err), 0, err);
        CHECK(access("/dev/mapper/tvc-derived", F_OK) == 0);
        CHECK_R(tv_luks_close("tvc-derived", &err), 0, err);

        /* A dm mapping that is not LUKS is not ours to close. */
        snprintf(table, sizeof(table), "0 2048 linear %s 0", l.dev);
        if (run((const char *const[]){"dmsetup", "create", "tvc-linear", "--table", table, NULL},
                NULL) == 0) {
                CHECK_R(tv_luks_close("tvc-linear", &err), -EMEDIUMTYPE, err);
                CHECK(crypt_status(NULL, "tvc-linear") == CRYPT_ACTIVE);
                (void)run((const char *const[]){"dmsetup", "remove", "tvc-linear", NULL}, NULL);
        }
        CHECK_R(tv_luks_close("bad/name", &err), -EINVAL, err);
        loop_free(&l);
}

typedef struct race {
        const char *dev;
        const tv_key *key;
        int r;
        tv_crypt_error err;
} race;

static void *race_format(void *arg) {
        race *x = arg;
        x->r = tv_luks_format(x->dev, x->key, &x->err);
        return NULL;
}

TEST(guest_crypt_concurrent_formats_of_one_device_make_exactly_one_volume) {
        _cleanup_(tv_key_freep) tv_key *a = secret_key("team-a", key_a_bytes, sizeof(key_a_bytes));
        _cleanup_(tv_key_freep) tv_key *b = secret_key("team-b", key_b_bytes, sizeof(key_b_bytes));
        _cleanup_free_ char *tenant = NULL;
        pthread_t t[4];
        race x[4];
        loopdev l, m;
        int ok = 0, exists = 0;
        tv_crypt_error err;

        tests_run++;
        if (!in_guest() || !loop_new(48 * MiB, &l) || !loop_new(48 * MiB, &m))
                return;
        /* Three racing formats of one device (a retry storm), one of another. */
        for (int i = 0; i < 4; i++) {
                x[i] = (race){.dev = i < 3 ? l.dev : m.dev, .key = i % 2 ? b : a};
                CHECK_INT(pthread_create(&t[i], NULL, race_format, &x[i]), 0);
        }
        for (int i = 0; i < 4; i++)
                CHECK_INT(pthread_join(t[i], NULL), 0);
        for (int i = 0; i < 3; i++) {
                ok += x[i].r == 0;
                exists += x[i].r == -EEXIST;
                if (x[i].r != 0 && x[i].r != -EEXIST)
                        printf("    format %d: %d %s\n", i, x[i].r, x[i].err.message);
        }
        CHECK_INT(ok, 1);
        CHECK_INT(exists, 2);
        CHECK_INT(x[3].r, 0);
        CHECK_R(tv_luks_token(l.dev, &tenant, NULL, &err), 0, err);
        for (int i = 0; i < 3; i++)
                if (x[i].r == 0) {
                        CHECK_STR(tenant, tv_key_tenant(x[i].key));
                        CHECK_R(tv_luks_open(l.dev, "tvc-race", x[i].key, 0, &err), 0, err);
                        CHECK_R(tv_luks_close("tvc-race", &err), 0, err);
                }
        loop_free(&l);
        loop_free(&m);
}

static size_t count_lines(const char *s, size_t n) {
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
                c += s[i] == '\n';
        return c;
}

/* Last in this file (tests run in definition order). */
TEST(guest_crypt_zz_log_holds_no_key_material) {
        static const struct {
                const uint8_t *b;
                size_t n;
        } keys[] = {
                {key_a_bytes, sizeof(key_a_bytes)},
                {key_a2_bytes, sizeof(key_a2_bytes)},
                {key_b_bytes, sizeof(key_b_bytes)},
                {(const uint8_t *)foreign_passphrase, sizeof(foreign_passphrase) - 1},
                {NULL, 32}, /* the derived key */
        };
        uint8_t derived[32];
        _cleanup_free_ char *log = NULL;
        size_t n = 0, cap = 0;
        FILE *f;

        if (!in_guest())
                return;
        if (tests_run == 0) {
                printf("    no other test ran before this one: nothing to look for\n");
                return;
        }
        for (size_t i = 0; i < 32; i++) {
                unsigned v;
                (void)sscanf(derived_a_hex + 2 * i, "%2x", &v);
                derived[i] = (uint8_t)v;
        }
        f = fopen(LOG_FILE, "re");
        CHECK(f != NULL);
        if (!f)
                return;
        for (;;) {
                if (n + 4096 > cap) {
                        cap = cap ? 2 * cap : 1 << 16;
                        log = realloc(log, cap);
                }
                size_t got = fread(log + n, 1, cap - n - 1, f);
                if (got == 0)
                        break;
                n += got;
        }
        fclose(f);
        log[n] = '\0';
        printf("    %zu log lines (%zu bytes) captured\n", count_lines(log, n), n);
        CHECK(strstr(log, "msg=\"luks volume formatted\"") != NULL);
        {
                uint64_t ms[64], sum = 0;
                size_t nf = 0;
                for (const char *p = log; (p = strstr(p, "msg=\"luks volume formatted\"")); p++) {
                        const char *m = strstr(p, " ms=");
                        if (m && nf < ELEMENTSOF(ms))
                                sum += ms[nf++] = strtoull(m + 4, NULL, 10);
                }
                uint64_t lo = UINT64_MAX, hi = 0;
                for (size_t i = 0; i < nf; i++) {
                        lo = ms[i] < lo ? ms[i] : lo;
                        hi = ms[i] > hi ? ms[i] : hi;
                }
                if (nf > 0)
                        printf("    %zu formats: min %" PRIu64 " ms, mean %" PRIu64 " ms, max %" PRIu64
                               " ms\n",
                               nf, lo, sum / nf, hi);
        }
        CHECK(strstr(log, "msg=\"luks key rotated\"") != NULL);
        CHECK(strstr(log, "msg=\"luks volume erased\"") != NULL);

        for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                const uint8_t *b = keys[k].b ? keys[k].b : derived;
                size_t len = keys[k].n;
                char enc[256];

                CHECK(memmem(log, n, b, len) == NULL);
                for (int upper = 0; upper < 2; upper++) {
                        hex(b, len, upper, enc);
                        CHECK(strstr(log, enc) == NULL);
                        /* nor any 8 bytes of it */
                        for (size_t i = 0; i + 8 <= len; i++) {
                                char part[17];
                                hex(b + i, 8, upper, part);
                                if (strstr(log, part))
                                        tv_test_fail(__FILE__, __LINE__, "key %zu bytes %zu..%zu in log", k,
                                                     i, i + 7);
                        }
                }
                for (int url = 0; url < 2; url++) {
                        b64(b, len, url, enc);
                        CHECK(strstr(log, enc) == NULL);
                        enc[16] = '\0';
                        CHECK(strstr(log, enc) == NULL);
                }
        }
}
