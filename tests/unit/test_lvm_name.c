/* LV name mapping: CSI request name -> LV name. */
#include <stdlib.h>

#include "thinvault/lvm.h"
#include "tv_test.h"

static const char *map(tv_lv_kind kind, const char *req, char buf[TV_LV_NAME_SIZE]) {
        int r = tv_lv_name_from_request(kind, req, buf);
        if (r < 0) {
                tv_test_fail(__FILE__, __LINE__, "mapping \"%s\" failed: %d", req, r);
                return "";
        }
        return buf;
}

/* Everything a name must satisfy whatever the request name was. */
static void check_name_shape(const char *name) {
        size_t n = strlen(name);
        CHECK(tv_lvm_name_valid(name));
        CHECK(n <= TV_LV_NAME_SIZE - 3);
        CHECK(strncmp(name, "tv-", 3) == 0 || strncmp(name, "tvs-", 4) == 0);
        CHECK(!strchr(name, '_'));
        CHECK(!strchr(name, '.'));
        CHECK(!strstr(name, "--"));
        CHECK(name[n - 1] != '-');
        for (size_t i = 0; i < n; i++)
                CHECK((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
                      name[i] == '-');
        /* The last 16 chars are the hash, after a '-'. */
        CHECK(n > 17 && name[n - 17] == '-');
}

TEST(test_lvm_name_of_pvc_keeps_the_name_and_appends_sha256_prefix) {
        char b[TV_LV_NAME_SIZE];
        /* printf %s NAME | sha256sum | cut -c1-16 */
        CHECK_STR(map(TV_LV_KIND_VOLUME, "pvc-3f1c2b9e-8d4a-4c1e-9a7b-0123456789ab", b),
                  "tv-pvc-3f1c2b9e-8d4a-4c1e-9a7b-0123456789ab-559b10e37020c629");
        CHECK_STR(map(TV_LV_KIND_SNAPSHOT, "snap-1", b), "tvs-snap-1-9f2460b56367bc4e");
}

TEST(test_lvm_name_sanitises_separators_case_and_dots) {
        char b[TV_LV_NAME_SIZE];
        CHECK_STR(map(TV_LV_KIND_VOLUME, "My Volume/../x", b), "tv-my-volume-x-04f865362cc27384");
}

TEST(test_lvm_name_of_non_ascii_only_name_is_prefix_and_hash) {
        char b[TV_LV_NAME_SIZE];
        CHECK_STR(map(TV_LV_KIND_VOLUME, "ÄÖÜ", b), "tv-1eccaaf0c4c68c0b");
}

TEST(test_lvm_name_is_deterministic) {
        char a[TV_LV_NAME_SIZE], b[TV_LV_NAME_SIZE];
        map(TV_LV_KIND_VOLUME, "pvc-retry", a);
        map(TV_LV_KIND_VOLUME, "pvc-retry", b);
        CHECK_STR(a, b);
}

TEST(test_lvm_name_volume_and_snapshot_of_same_request_differ) {
        char a[TV_LV_NAME_SIZE], b[TV_LV_NAME_SIZE];
        map(TV_LV_KIND_VOLUME, "same", a);
        map(TV_LV_KIND_SNAPSHOT, "same", b);
        CHECK(strcmp(a, b) != 0);
}

TEST(test_lvm_name_names_differing_only_in_dropped_bytes_do_not_collide) {
        const char *const groups[][4] = {
                {"ABC", "abc", "a-b-c", "a b c"},
                {"x/y", "x_y", "x.y", "x..y"},
                {"vol", "vol ", " vol", "-vol"},
        };
        for (size_t g = 0; g < ELEMENTSOF(groups); g++)
                for (size_t i = 0; i < 4; i++)
                        for (size_t j = i + 1; j < 4; j++) {
                                char a[TV_LV_NAME_SIZE], b[TV_LV_NAME_SIZE];
                                map(TV_LV_KIND_VOLUME, groups[g][i], a);
                                map(TV_LV_KIND_VOLUME, groups[g][j], b);
                                CHECK(strcmp(a, b) != 0);
                        }
}

TEST(test_lvm_name_hostile_request_names_give_valid_lvm_names) {
        static const char *const hostile[] = {
                "/", "..", ".", " ", "-", "--", "-leading", "snapshot", "snapshot0", "pvmove",
                "pvmove0", "x_tmeta", "x_tdata", "_pmspare", "lvol0_rimage_0", "a/../../etc/passwd",
                "--help", "-n", "tv-", "tv--x", "vg/lv", "@tag", "%00", "name\twith\ttabs",
                "new\nline", "ünïcödé ñame", "日本語のボリューム", "\xff\xfe\x80",
                "UPPER_CASE.Name", "x-tpool", "x_vorigin", "a-", "-a-",
        };
        for (size_t i = 0; i < ELEMENTSOF(hostile); i++) {
                char a[TV_LV_NAME_SIZE], b[TV_LV_NAME_SIZE];
                map(TV_LV_KIND_VOLUME, hostile[i], a);
                check_name_shape(a);
                map(TV_LV_KIND_SNAPSHOT, hostile[i], b);
                check_name_shape(b);
        }
}

TEST(test_lvm_name_long_request_names_are_cut_but_stay_distinct) {
        char req[600], a[TV_LV_NAME_SIZE], b[TV_LV_NAME_SIZE];
        memset(req, 'a', sizeof(req) - 1);
        req[sizeof(req) - 1] = '\0';
        map(TV_LV_KIND_SNAPSHOT, req, a);
        check_name_shape(a);
        CHECK_INT(strlen(a), 4 + 40 + 1 + 16);
        req[500] = 'b'; /* differs far past the kept part */
        map(TV_LV_KIND_SNAPSHOT, req, b);
        check_name_shape(b);
        CHECK(strncmp(a, b, 45) == 0);
        CHECK(strcmp(a, b) != 0);
}

TEST(test_lvm_name_cut_never_ends_on_a_dash) {
        /* 39 kept chars then a separator then more: the '-' must not be the
         * 40th char. */
        char req[128], a[TV_LV_NAME_SIZE];
        memset(req, 'x', 39);
        strcpy(req + 39, "//yyyy");
        map(TV_LV_KIND_VOLUME, req, a);
        check_name_shape(a);
        CHECK_INT(strlen(a), 3 + 39 + 1 + 16);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp((const char *)a, (const char *)b);
}

TEST(test_lvm_name_many_similar_and_random_requests_never_collide) {
        enum { N = 20000 };
        char(*names)[TV_LV_NAME_SIZE] = calloc(N, TV_LV_NAME_SIZE);
        unsigned seed = 12345;
        CHECK(names != NULL);
        if (!names)
                return;
        for (size_t i = 0; i < N; i++) {
                char req[64];
                if (i % 2 == 0)
                        (void)snprintf(req, sizeof(req), "pvc-%zu", i);
                else {
                        size_t len = 1 + (seed = seed * 1103515245u + 12345u) % 40;
                        for (size_t k = 0; k < len; k++) {
                                seed = seed * 1103515245u + 12345u;
                                req[k] = (char)(1 + (seed >> 16) % 255);
                        }
                        req[len] = '\0';
                }
                CHECK_INT(tv_lv_name_from_request(TV_LV_KIND_VOLUME, req, names[i]), 0);
                CHECK(tv_lvm_name_valid(names[i]));
        }
        qsort(names, N, TV_LV_NAME_SIZE, cmp_str);
        size_t dups = 0;
        for (size_t i = 1; i < N; i++)
                dups += strcmp(names[i - 1], names[i]) == 0;
        /* The random half may repeat a request by chance; pvc-N never do. */
        CHECK(dups < 3);
        free(names);
}

TEST(test_lvm_name_empty_or_null_request_is_einval_and_output_untouched) {
        char b[TV_LV_NAME_SIZE] = "untouched";
        CHECK_INT(tv_lv_name_from_request(TV_LV_KIND_VOLUME, "", b), -EINVAL);
        CHECK_INT(tv_lv_name_from_request(TV_LV_KIND_VOLUME, NULL, b), -EINVAL);
        CHECK_INT(tv_lv_name_from_request((tv_lv_kind)7, "x", b), -EINVAL);
        CHECK_STR(b, "untouched");
}

TEST(test_lvm_name_valid_follows_lvm2_rules) {
        static const char *const ok[] = {"a", "vg0", "tv-x-0123", "A+b_c.d-e", "lvol0", "x.",
                                         "pool"};
        static const char *const bad[] = {
                "", "-a", ".", "..", "a b", "a/b", "a:b", "snapshot", "snapshotx", "pvmove1",
                "x_tmeta", "x_tdata", "y_cdata", "p_pmspare", "r_rimage_1", "v_vorigin", "é",
        };
        char long_ok[128], long_bad[129];
        for (size_t i = 0; i < ELEMENTSOF(ok); i++)
                if (!tv_lvm_name_valid(ok[i]))
                        tv_test_fail(__FILE__, __LINE__, "\"%s\" should be valid", ok[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (tv_lvm_name_valid(bad[i]))
                        tv_test_fail(__FILE__, __LINE__, "\"%s\" should be invalid", bad[i]);
        CHECK(!tv_lvm_name_valid(NULL));
        memset(long_ok, 'a', 127);
        long_ok[127] = '\0';
        memset(long_bad, 'a', 128);
        long_bad[128] = '\0';
        CHECK(tv_lvm_name_valid(long_ok));
        CHECK(!tv_lvm_name_valid(long_bad));
}
