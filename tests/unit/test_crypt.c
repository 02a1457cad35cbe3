/* Tenant keys, the LUKS2 token JSON and the name rules of crypt/, on the
 * host. Everything that needs dm-crypt or a LUKS header on a block device
 * is in tests/guest/guest_crypt.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "thinvault/crypt.h"
#include "thinvault/util.h"
#include "tv_test.h"

/* Bytes 0x00..0x1f and their fingerprint, computed independently:
 *   printf 'thinvault key fingerprint v1\0' >fp.bin
 *   python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(32)))' >>fp.bin
 *   sha256sum fp.bin | cut -c1-16 */
#define SEQ32_FINGERPRINT "7fba854d2c4ceb5b"

/* HKDF-SHA256 of master key 00..1f, computed with the openssl CLI:
 *   openssl kdf -keylen 32 -kdfopt digest:SHA256
 *     -kdfopt hexkey:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
 *     -kdfopt hexsalt:$(printf %s 'thinvault.csi.io tenant key salt v1' | xxd -p | tr -d '\n')
 *     -kdfopt hexinfo:$(printf %s 'thinvault tenant key v1team-a' | xxd -p | tr -d '\n') HKDF */
static const char hkdf_team_a_hex[] = "42340db7e44e02dcd116289cae764505f3801320408f22cb3e78efbaf814da76";
static const char hkdf_team_b_hex[] = "07faf8c3a7b51da253c7b2d506fdb8e7d7915ac6c5ff49d0a85522759b2281e6";

/* A key whose standard base64 has both '+' and '/'. */
static const char k173_hex[] = "fca95603b05d0ab76411be6b18c5721fcc7926d3802dda8734e18e3be89542ef";
static const char k173_std[] = "/KlWA7BdCrdkEb5rGMVyH8x5JtOALdqHNOGOO+iVQu8=";
static const char k173_url[] = "_KlWA7BdCrdkEb5rGMVyH8x5JtOALdqHNOGOO-iVQu8";
#define K173_FINGERPRINT "5c218138b17c1391"

static void unhex(const char *hex, uint8_t *out, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned v;
                (void)sscanf(hex + 2 * i, "%2x", &v);
                out[i] = (uint8_t)v;
        }
}

static void tohex(const uint8_t *in, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static tv_key *key_from_hex(const char *tenant, const char *hex) {
        uint8_t b[64];
        size_t n = strlen(hex) / 2;
        tv_key *k = NULL;

        unhex(hex, b, n);
        CHECK_INT(tv_key_new(tenant, b, n, &k, NULL), 0);
        return k;
}

/* A scratch directory with a master key file of `size` bytes 0,1,2,...
 * and `mode`; returns the file's path (static buffer). */
static char master_dir[64];
static char master_path[128];

static const char *write_master_key(size_t size, mode_t mode) {
        uint8_t buf[8192];
        int fd;

        if (!master_dir[0]) {
                snprintf(master_dir, sizeof(master_dir), "/tmp/tv-unit-crypt.XXXXXX");
                CHECK(mkdtemp(master_dir) != NULL);
        }
        snprintf(master_path, sizeof(master_path), "%s/master.key", master_dir);
        (void)unlink(master_path);
        for (size_t i = 0; i < size && i < sizeof(buf); i++)
                buf[i] = (uint8_t)i;
        fd = open(master_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        CHECK(fd >= 0);
        CHECK_INT(write(fd, buf, size), (long long)size);
        CHECK_INT(fchmod(fd, mode), 0);
        close(fd);
        return master_path;
}

static tv_key *secret_key(const char *tenant, const char *value, int expect) {
        const char *keys[] = {"other", TV_KEY_SECRET_FIELD};
        const char *values[] = {"not-a-key", value};
        tv_crypt_error err;
        tv_key *k = NULL;

        CHECK_INT(tv_key_from_secret(keys, values, 2, tenant, &k, &err), expect);
        if (expect < 0) {
                CHECK(k == NULL);
                CHECK(err.message[0] != '\0');
                /* The message names the tenant, never the value. */
                CHECK(strstr(err.message, tenant) != NULL);
                if (strlen(value) >= 4)
                        CHECK(strstr(err.message, value) == NULL);
        }
        return k;
}

static long vm_locked_kb(void) {
        char line[256];
        long kb = -1;
        FILE *f = fopen("/proc/self/status", "re");

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

/* ---- derived keys ------------------------------------------------------ */

TEST(test_crypt_derive_matches_independent_openssl_hkdf_vector) {
        _cleanup_(tv_key_freep) tv_key *a = NULL, *b = NULL;
        _cleanup_(tv_key_freep) tv_key *want_a = key_from_hex("team-a", hkdf_team_a_hex);
        _cleanup_(tv_key_freep) tv_key *want_b = key_from_hex("team-b", hkdf_team_b_hex);
        const char *path = write_master_key(32, 0600);
        tv_crypt_error err;

        CHECK_INT(tv_key_derive(path, "team-a", &a, &err), 0);
        CHECK_INT(tv_key_derive(path, "team-b", &b, NULL), 0);
        CHECK_INT(tv_key_size(a), TV_KEY_DERIVED_SIZE);
        CHECK(tv_key_equal(a, want_a));
        CHECK(tv_key_equal(b, want_b));
        CHECK_STR(tv_key_tenant(a), "team-a");
        CHECK_STR(tv_key_tenant(b), "team-b");
        CHECK_STR(err.message, "");
}

TEST(test_crypt_derive_is_deterministic) {
        _cleanup_(tv_key_freep) tv_key *a1 = NULL, *a2 = NULL;
        const char *path = write_master_key(64, 0400);

        CHECK_INT(tv_key_derive(path, "team-a", &a1, NULL), 0);
        CHECK_INT(tv_key_derive(path, "team-a", &a2, NULL), 0);
        CHECK(tv_key_equal(a1, a2));
        CHECK_STR(tv_key_fingerprint(a1), tv_key_fingerprint(a2));
}

TEST(test_crypt_derive_differs_per_tenant_and_per_master_key) {
        _cleanup_(tv_key_freep) tv_key *a = NULL, *b = NULL, *a_other_master = NULL;
        const char *path = write_master_key(32, 0600);

        CHECK_INT(tv_key_derive(path, "team-a", &a, NULL), 0);
        CHECK_INT(tv_key_derive(path, "team-b", &b, NULL), 0);
        CHECK(!tv_key_equal(a, b));
        CHECK(strcmp(tv_key_fingerprint(a), tv_key_fingerprint(b)) != 0);
        path = write_master_key(33, 0600);
        CHECK_INT(tv_key_derive(path, "team-a", &a_other_master, NULL), 0);
        CHECK(!tv_key_equal(a, a_other_master));
}

TEST(test_crypt_derive_refuses_master_key_readable_by_group_or_others) {
        static const mode_t modes[] = {0640, 0604, 0660, 0644, 0610};
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                const char *path = write_master_key(32, modes[i]);
                tv_crypt_error err;
                tv_key *k = NULL;

                CHECK_INT(tv_key_derive(path, "team-a", &k, &err), -EPERM);
                CHECK(k == NULL);
                CHECK(strstr(err.message, path) != NULL);
                CHECK(strstr(err.message, "0600") != NULL);
        }
}

TEST(test_crypt_derive_refuses_short_long_missing_and_odd_master_keys) {
        tv_crypt_error err;
        tv_key *k = NULL;

        CHECK_INT(tv_key_derive(write_master_key(31, 0600), "team-a", &k, &err), -EINVAL);
        CHECK(strstr(err.message, "31 bytes") != NULL);
        CHECK_INT(tv_key_derive(write_master_key(TV_MASTER_KEY_MAX_SIZE + 1, 0600), "team-a", &k, &err),
                  -EINVAL);
        CHECK_INT(tv_key_derive(write_master_key(0, 0600), "team-a", &k, &err), -EINVAL);
        CHECK_INT(tv_key_derive("/nonexistent/thinvault/master.key", "team-a", &k, &err), -ENOENT);
        CHECK(strstr(err.message, "does not exist") != NULL);
        CHECK_INT(tv_key_derive(master_dir, "team-a", &k, &err), -EINVAL); /* a directory */
        CHECK_INT(tv_key_derive(NULL, "team-a", &k, &err), -EINVAL);
        CHECK(k == NULL);
}

TEST(test_crypt_derive_refuses_invalid_tenant) {
        const char *path = write_master_key(32, 0600);
        static const char *const bad[] = {"", "Team-A", "-a", "a-", "a_b", "a b", "a/b",
                                          "0123456789012345678901234567890123456789012345678901234567890123"};
        tv_crypt_error err;
        tv_key *k = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                CHECK_INT(tv_key_derive(path, bad[i], &k, &err), -EINVAL);
                CHECK(strstr(err.message, "namespace") != NULL);
        }
        CHECK_INT(tv_key_derive(path, NULL, &k, &err), -EINVAL);
        CHECK(k == NULL);
}

/* ---- keys from the node-stage secret ----------------------------------- */

TEST(test_crypt_secret_standard_base64_gives_the_bytes) {
        _cleanup_(tv_key_freep) tv_key *k = secret_key("team-a", k173_std, 0);
        _cleanup_(tv_key_freep) tv_key *want = key_from_hex("team-a", k173_hex);

        CHECK(tv_key_equal(k, want));
        CHECK_INT(tv_key_size(k), 32);
        CHECK_STR(tv_key_tenant(k), "team-a");
        CHECK_STR(tv_key_fingerprint(k), K173_FINGERPRINT);
}

TEST(test_crypt_secret_url_safe_unpadded_base64_is_the_same_key) {
        _cleanup_(tv_key_freep) tv_key *std = secret_key("team-a", k173_std, 0);
        _cleanup_(tv_key_freep) tv_key *url = secret_key("team-a", k173_url, 0);

        CHECK(tv_key_equal(std, url));
        CHECK_STR(tv_key_fingerprint(url), K173_FINGERPRINT);
}

TEST(test_crypt_secret_whitespace_and_line_breaks_are_ignored) {
        _cleanup_(tv_key_freep) tv_key *nl = secret_key("team-a", "/KlWA7BdCrdkEb5rGMVyH8x5JtOALdqHNOGOO+iVQu8=\n", 0);
        _cleanup_(tv_key_freep) tv_key *wrapped = secret_key(
                "team-a", "  /KlWA7BdCrdkEb5rGMVyH8x5\r\nJtOALdqHNOGOO+iVQu8=\t", 0);
        /* `base64` wraps 64 bytes over two lines. */
        _cleanup_(tv_key_freep) tv_key *k64 = secret_key(
                "team-a",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\n"
                "OTo7PD0+Pw==\n",
                0);
        _cleanup_(tv_key_freep) tv_key *want = key_from_hex("team-a", k173_hex);
        uint8_t seq[64];
        tv_key *want64 = NULL;

        for (size_t i = 0; i < sizeof(seq); i++)
                seq[i] = (uint8_t)i;
        CHECK_INT(tv_key_new("team-a", seq, sizeof(seq), &want64, NULL), 0);
        CHECK(tv_key_equal(nl, want));
        CHECK(tv_key_equal(wrapped, want));
        CHECK_INT(tv_key_size(k64), 64);
        CHECK(tv_key_equal(k64, want64));
        tv_key_free(want64);
}

TEST(test_crypt_secret_shorter_than_32_bytes_is_refused_naming_tenant_and_rule) {
        /* 31 bytes 00..1e */
        const char *keys[] = {TV_KEY_SECRET_FIELD};
        const char *values[] = {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="};
        tv_crypt_error err;
        tv_key *k = NULL;

        CHECK_INT(tv_key_from_secret(keys, values, 1, "team-a", &k, &err), -EINVAL);
        CHECK(k == NULL);
        CHECK(strstr(err.message, "team-a") != NULL);
        CHECK(strstr(err.message, "31 bytes") != NULL);
        CHECK(strstr(err.message, "32") != NULL);
        CHECK(strstr(err.message, "AAECAwQF") == NULL);
        (void)secret_key("team-a", "QUFB", -EINVAL);
}

TEST(test_crypt_secret_bad_base64_is_refused_without_echoing_it) {
        static const char *const bad[] = {
                "", "   ", "!!!!", "/KlWA7BdCrdkEb5rGMVyH8x5JtOALdqHNOGOO+iVQu8=QUFB",
                "/KlWA7BdCrdkEb5rGMVyH8x5JtOALdqHNOGOO-iVQu8=",   /* '/' and '-': mixed */
                "/KlWA7BdCrdkEb5rGMVyH8x5JtOALdqHNOGOO+iVQu8===", /* too much padding */
                "/KlWA7BdCrdkEb5rGMVyH8x5JtOALdqHNOGOO+iVQu8AA", /* 4n+1 characters */
                "/KlWA7BdCrdkEb5rGMVyH8x5JtOALdqHNOGOO+iVQu=",  /* padding that does not fit */
                /* A long raw passphrase: not base64, and raw keys are refused. */
                "correct horse battery staple, and then some more words",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                tv_key *k = secret_key("team-b", bad[i], -EINVAL);
                CHECK(k == NULL);
        }
        /* Longer than any key could be. */
        char *big = malloc(5000);
        memset(big, 'A', 4999);
        big[4999] = '\0';
        CHECK(secret_key("team-b", big, -EINVAL) == NULL);
        free(big);
}

TEST(test_crypt_secret_without_key_entry_or_with_two_is_refused) {
        const char *keys[] = {"password", TV_KEY_SECRET_FIELD, TV_KEY_SECRET_FIELD};
        const char *values[] = {k173_std, k173_std, k173_std};
        tv_crypt_error err;
        tv_key *k = NULL;

        CHECK_INT(tv_key_from_secret(keys, values, 1, "team-a", &k, &err), -EINVAL);
        CHECK(strstr(err.message, "no \"key\" entry") != NULL);
        CHECK(strstr(err.message, k173_std) == NULL);
        CHECK_INT(tv_key_from_secret(NULL, NULL, 0, "team-a", &k, &err), -EINVAL);
        CHECK_INT(tv_key_from_secret(keys, values, 3, "team-a", &k, &err), -EINVAL);
        CHECK(strstr(err.message, "more than one") != NULL);
        CHECK_INT(tv_key_from_secret(keys, values, 2, "Team A", &k, &err), -EINVAL);
        CHECK(k == NULL);
}

/* ---- fingerprints and key memory --------------------------------------- */

TEST(test_crypt_fingerprint_is_stable_and_no_part_of_the_key) {
        uint8_t seq[32];
        char key_hex[2 * 64 + 1];
        tv_key *a = NULL, *b = NULL;

        for (size_t i = 0; i < sizeof(seq); i++)
                seq[i] = (uint8_t)i;
        CHECK_INT(tv_key_new("team-a", seq, sizeof(seq), &a, NULL), 0);
        CHECK_INT(tv_key_new("team-b", seq, sizeof(seq), &b, NULL), 0);
        CHECK_STR(tv_key_fingerprint(a), SEQ32_FINGERPRINT);
        /* Over the key only: the same bytes have the same fingerprint. */
        CHECK_STR(tv_key_fingerprint(b), SEQ32_FINGERPRINT);
        CHECK_INT(strlen(tv_key_fingerprint(a)), TV_KEY_FINGERPRINT_SIZE - 1);
        tohex(seq, sizeof(seq), key_hex);
        CHECK(strstr(key_hex, tv_key_fingerprint(a)) == NULL);
        tv_key_free(a);
        tv_key_free(b);

        /* Also for a derived key and a secret key. */
        uint8_t derived[32];
        unhex(hkdf_team_a_hex, derived, sizeof(derived));
        _cleanup_(tv_key_freep) tv_key *d = NULL;
        CHECK_INT(tv_key_derive(write_master_key(32, 0600), "team-a", &d, NULL), 0);
        CHECK(strncmp(hkdf_team_a_hex, tv_key_fingerprint(d), 16) != 0);
        CHECK(strstr(hkdf_team_a_hex, tv_key_fingerprint(d)) == NULL);
        CHECK(strstr(k173_hex, K173_FINGERPRINT) == NULL);
}

TEST(test_crypt_key_sizes_outside_32_to_1024_bytes_are_refused) {
        uint8_t buf[TV_KEY_MAX_SIZE + 1] = {0};
        tv_crypt_error err;
        tv_key *k = NULL;

        CHECK_INT(tv_key_new("team-a", buf, 31, &k, &err), -EINVAL);
        CHECK(strstr(err.message, "team-a") != NULL);
        CHECK_INT(tv_key_new("team-a", buf, TV_KEY_MAX_SIZE + 1, &k, &err), -EINVAL);
        CHECK_INT(tv_key_new("team-a", NULL, 32, &k, &err), -EINVAL);
        CHECK(k == NULL);
        CHECK_INT(tv_key_new("team-a", buf, TV_KEY_MAX_SIZE, &k, &err), 0);
        CHECK_INT(tv_key_size(k), TV_KEY_MAX_SIZE);
        tv_key_free(k);
        tv_key_free(NULL);
}

/* Whether mlock() in this process really locks memory: AddressSanitizer's
 * mlock() interceptor returns 0 and locks nothing, so under ASan VmLck
 * cannot show a tv_key's page. Returns 1, 0, or -errno. */
static int mlock_locks_memory(void) {
        long page = sysconf(_SC_PAGESIZE), before = vm_locked_kb(), after;
        void *p;

        if (page <= 0 || before < 0)
                return -EIO;
        p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return -errno;
        if (mlock(p, (size_t)page) < 0) {
                int r = -errno;
                munmap(p, (size_t)page);
                return r;
        }
        after = vm_locked_kb();
        munlock(p, (size_t)page);
        munmap(p, (size_t)page);
        return after > before;
}

TEST(test_crypt_key_memory_is_locked_while_the_key_lives) {
        long before;
        tv_key *keys[8];
        uint8_t seq[32] = {1};
        int r = mlock_locks_memory();

        if (r == 0)
                SKIP("mlock() returns 0 but locks nothing in this process (AddressSanitizer "
                     "intercepts it), so VmLck cannot show the key's page");
        CHECK(r > 0);
        before = vm_locked_kb();
        CHECK(before >= 0);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                CHECK_INT(tv_key_new("team-a", seq, sizeof(seq), &keys[i], NULL), 0);
        /* One locked page (at least 4 kB) per key. */
        CHECK(vm_locked_kb() >= before + 8 * 4);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                tv_key_free(keys[i]);
        CHECK_INT(vm_locked_kb(), before);
}

/* ---- token JSON and names ---------------------------------------------- */

TEST(test_crypt_token_json_has_the_documented_shape_and_round_trips) {
        _cleanup_free_ char *json = NULL, *tenant = NULL, *fp = NULL;

        CHECK_INT(tv_luks_token_to_json("team-a", SEQ32_FINGERPRINT, &json), 0);
        CHECK_STR(json, "{\"type\":\"thinvault\",\"keyslots\":[],\"tenant\":\"team-a\","
                        "\"key_fingerprint\":\"" SEQ32_FINGERPRINT "\",\"version\":1}");
        CHECK_INT(tv_luks_token_from_json(json, &tenant, &fp), 0);
        CHECK_STR(tenant, "team-a");
        CHECK_STR(fp, SEQ32_FINGERPRINT);
        /* libcryptsetup may store the keys in another order, with spaces. */
        free(tenant);
        tenant = NULL;
        CHECK_INT(tv_luks_token_from_json("{ \"version\": 1, \"key_fingerprint\": \"0123456789abcdef\", "
                                          "\"tenant\": \"b\", \"keyslots\": [], \"type\": \"thinvault\" }",
                                          &tenant, NULL),
                  0);
        CHECK_STR(tenant, "b");
}

TEST(test_crypt_token_json_refuses_bad_values_and_other_types) {
        char *json = NULL;

        CHECK_INT(tv_luks_token_to_json("Team-A", SEQ32_FINGERPRINT, &json), -EINVAL);
        CHECK_INT(tv_luks_token_to_json("team-a", "7FBA854D2C4CEB5B", &json), -EINVAL);
        CHECK_INT(tv_luks_token_to_json("team-a", "7fba", &json), -EINVAL);
        CHECK(json == NULL);

        CHECK_INT(tv_luks_token_from_json("{\"type\":\"systemd-tpm2\",\"keyslots\":[\"0\"]}", NULL, NULL),
                  -ENODATA);
        CHECK_INT(tv_luks_token_from_json("{\"type\":\"thinvault\",\"keyslots\":[],\"tenant\":\"a\","
                                          "\"key_fingerprint\":\"0123456789abcdef\",\"version\":2}",
                                          NULL, NULL),
                  -EBADMSG);
        CHECK_INT(tv_luks_token_from_json("{\"type\":\"thinvault\",\"keyslots\":[],"
                                          "\"key_fingerprint\":\"0123456789abcdef\",\"version\":1}",
                                          NULL, NULL),
                  -EBADMSG);
        CHECK_INT(tv_luks_token_from_json("{\"type\":\"thinvault\",\"keyslots\":[],\"tenant\":\"a b\","
                                          "\"key_fingerprint\":\"0123456789abcdef\",\"version\":1}",
                                          NULL, NULL),
                  -EBADMSG);
        CHECK_INT(tv_luks_token_from_json("{\"type\":\"thinvault\",\"keyslots\":[],\"tenant\":\"a\","
                                          "\"key_fingerprint\":\"0123\",\"version\":1}",
                                          NULL, NULL),
                  -EBADMSG);
        CHECK_INT(tv_luks_token_from_json("not json", NULL, NULL), -EBADMSG);
        CHECK_INT(tv_luks_token_from_json("[]", NULL, NULL), -EBADMSG);
        CHECK_INT(tv_luks_token_from_json(NULL, NULL, NULL), -EBADMSG);
}

TEST(test_crypt_tenant_and_mapping_name_rules) {
        CHECK(tv_tenant_valid("team-a"));
        CHECK(tv_tenant_valid("a"));
        CHECK(tv_tenant_valid("0"));
        CHECK(tv_tenant_valid("012345678901234567890123456789012345678901234567890123456789012"));
        CHECK(!tv_tenant_valid("0123456789012345678901234567890123456789012345678901234567890123"));
        CHECK(!tv_tenant_valid("team_a"));
        CHECK(!tv_tenant_valid("team.a"));
        CHECK(!tv_tenant_valid(NULL));

        CHECK(tv_luks_mapping_name_valid("tv-pvc-3f1c.crypt"));
        CHECK(tv_luks_mapping_name_valid("A_b+c"));
        CHECK(!tv_luks_mapping_name_valid(""));
        CHECK(!tv_luks_mapping_name_valid("."));
        CHECK(!tv_luks_mapping_name_valid(".."));
        CHECK(!tv_luks_mapping_name_valid("-x"));
        CHECK(!tv_luks_mapping_name_valid("a/b"));
        CHECK(!tv_luks_mapping_name_valid("a b"));
        CHECK(!tv_luks_mapping_name_valid(NULL));
        char longname[TV_LUKS_MAPPING_NAME_MAX + 2];
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        CHECK(!tv_luks_mapping_name_valid(longname));
        longname[TV_LUKS_MAPPING_NAME_MAX] = '\0';
        CHECK(tv_luks_mapping_name_valid(longname));

        CHECK_STR(tv_luks_kind_to_string(TV_LUKS_KIND_EMPTY), "empty");
        CHECK_STR(tv_luks_kind_to_string(TV_LUKS_KIND_OURS), "ours");
        CHECK_STR(tv_luks_kind_to_string(TV_LUKS_KIND_FOREIGN), "foreign");
        CHECK_STR(tv_luks_kind_to_string(TV_LUKS_KIND_OTHER), "other");
        CHECK_STR(tv_luks_kind_to_string((tv_luks_kind)42), "unknown");
}

__attribute__((destructor)) static void remove_master_dir(void) {
        if (!master_dir[0])
                return;
        (void)unlink(master_path);
        (void)rmdir(master_dir);
}
