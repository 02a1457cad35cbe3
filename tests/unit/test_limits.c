/* I/O limits, pure half: StorageClass parameters -> spec -> limits of a
 * volume, and the spec's LVM tag string. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinvault/limits.h"
#include "thinvault/lvm.h"
#include "tv_test.h"

#define MiB (1024ULL * 1024ULL)
#define GiB TV_LIMITS_GIB

/* Parse `n` key/value pairs given inline. */
static int parse(tv_limits_spec *spec, tv_limits_error *err, size_t n, const char *const *kv) {
        const char *keys[16], *values[16];
        for (size_t i = 0; i < n; i++) {
                keys[i] = kv[2 * i];
                values[i] = kv[2 * i + 1];
        }
        return tv_limits_spec_from_params(keys, values, n, spec, err);
}
#define PARSE(spec, err, ...)                                                                      \
        parse(spec, err, ELEMENTSOF(((const char *const[]){__VA_ARGS__})) / 2,                     \
              (const char *const[]){__VA_ARGS__})

/* A rejected single parameter: -EINVAL, message names it and says `why`. */
static void check_rejected(const char *key, const char *value, const char *why) {
        tv_limits_spec spec;
        tv_limits_error err;
        const char *keys[] = {key}, *values[] = {value};

        memset(&spec, 0xaa, sizeof(spec));
        int r = tv_limits_spec_from_params(keys, values, 1, &spec, &err);
        if (r != -EINVAL || !strstr(err.message, key) || (why && !strstr(err.message, why)))
                tv_test_fail(__FILE__, __LINE__,
                             "%s=\"%s\": r=%d message \"%s\", wanted -EINVAL and \"%s\"",
                             key, value ? value : "(null)", r, err.message, why ? why : "");
        /* ret_ written only on success */
        unsigned char *b = (unsigned char *)&spec;
        for (size_t i = 0; i < sizeof(spec); i++)
                if (b[i] != 0xaa) {
                        tv_test_fail(__FILE__, __LINE__, "%s=\"%s\": spec written on failure", key,
                                     value ? value : "(null)");
                        break;
                }
}

/* ---- parameters ------------------------------------------------------- */

TEST(test_limits_params_absolute_iops_and_bandwidth_parse) {
        tv_limits_spec s;
        tv_limits_error err;

        CHECK_INT(PARSE(&s, &err, "readIOPS", "3000", "writeIOPS", "2", "readBytesPerSecond",
                        "1048576", "writeBytesPerSecond", "100Mi"),
                  0);
        CHECK_STR(err.message, "");
        CHECK_INT(s.rule[TV_LIMIT_READ_IOPS].absolute, 3000);
        CHECK_INT(s.rule[TV_LIMIT_WRITE_IOPS].absolute, 2);
        CHECK_INT(s.rule[TV_LIMIT_READ_BPS].absolute, 1048576);
        CHECK_INT(s.rule[TV_LIMIT_WRITE_BPS].absolute, 100 * MiB);
        CHECK_INT(s.rule[TV_LIMIT_READ_IOPS].per_gib, 0);
        CHECK(!tv_limits_spec_is_empty(&s));
}

TEST(test_limits_params_iops_sets_both_directions) {
        tv_limits_spec s;
        CHECK_INT(PARSE(&s, NULL, "iops", "500"), 0);
        CHECK_INT(s.rule[TV_LIMIT_READ_IOPS].absolute, 500);
        CHECK_INT(s.rule[TV_LIMIT_WRITE_IOPS].absolute, 500);
        CHECK_INT(s.rule[TV_LIMIT_READ_BPS].absolute, 0);
}

TEST(test_limits_params_other_keys_are_left_to_the_caller) {
        tv_limits_spec s;
        CHECK_INT(PARSE(&s, NULL, "csi.storage.k8s.io/fstype", "ext4", "readIOPS", "100",
                        "keySource", "secret", "readiops", "garbage"),
                  0);
        CHECK_INT(s.rule[TV_LIMIT_READ_IOPS].absolute, 100);
}

TEST(test_limits_params_without_limit_keys_is_an_empty_spec) {
        tv_limits_spec s;
        CHECK_INT(PARSE(&s, NULL, "fsType", "xfs"), 0);
        CHECK(tv_limits_spec_is_empty(&s));
        CHECK_INT(tv_limits_spec_from_params(NULL, NULL, 0, &s, NULL), 0);
        CHECK(tv_limits_spec_is_empty(&s));
}

TEST(test_limits_params_bandwidth_takes_ki_mi_gi) {
        tv_limits_spec s;
        CHECK_INT(PARSE(&s, NULL, "readBytesPerSecond", "512Ki", "writeBytesPerSecond", "2Gi"), 0);
        CHECK_INT(s.rule[TV_LIMIT_READ_BPS].absolute, 512 * 1024);
        CHECK_INT(s.rule[TV_LIMIT_WRITE_BPS].absolute, 2 * GiB);
        CHECK_INT(PARSE(&s, NULL, "readBytesPerSecondPerGiB", "1Mi"), 0);
        CHECK_INT(s.rule[TV_LIMIT_READ_BPS].per_gib, MiB);
}

TEST(test_limits_params_negative_zero_and_one_are_einval) {
        check_rejected("readIOPS", "-5", "negative");
        check_rejected("writeBytesPerSecond", "-1Mi", "negative");
        check_rejected("readIOPS", "0", "leave the parameter out");
        check_rejected("readIOPSPerGiB", "0", "leave the parameter out");
        check_rejected("maxReadIOPS", "0", NULL);
        /* the kernel refuses 1 (and 0) in io.max */
        check_rejected("writeIOPS", "1", "at least 2");
        check_rejected("readBytesPerSecond", "1", "at least 2");
        check_rejected("minWriteIOPS", "1", "at least 2");
}

TEST(test_limits_params_per_gib_may_be_one) {
        tv_limits_spec s;
        CHECK_INT(PARSE(&s, NULL, "writeIOPSPerGiB", "1"), 0);
        CHECK_INT(s.rule[TV_LIMIT_WRITE_IOPS].per_gib, 1);
}

TEST(test_limits_params_non_numbers_and_trailing_garbage_are_einval) {
        check_rejected("readIOPS", "", "empty");
        check_rejected("readIOPS", NULL, "no value");
        check_rejected("readIOPS", "abc", "not a number");
        check_rejected("readIOPS", " 100", "not a number");
        check_rejected("readIOPS", "+100", "not a number");
        check_rejected("readIOPS", "100 ", "trailing");
        check_rejected("readIOPS", "100abc", "trailing");
        check_rejected("readIOPS", "1.5", "whole number");
        check_rejected("readIOPS", "0x10", "trailing");
        check_rejected("iops", "1e3", "trailing");
        check_rejected("writeBytesPerSecond", "1.5Mi", "whole number");
        check_rejected("writeBytesPerSecond", "100Mi ", "unknown suffix");
        check_rejected("writeBytesPerSecond", "100 Mi", "trailing");
}

TEST(test_limits_params_iops_take_no_suffix) {
        check_rejected("writeIOPS", "3Ki", "no suffix");
        check_rejected("readIOPSPerGiB", "1Mi", "no suffix");
}

TEST(test_limits_params_si_and_unknown_suffixes_are_einval) {
        /* "M" is 10^6 in Kubernetes quantities: refuse rather than guess. */
        check_rejected("readBytesPerSecond", "100M", "use Ki, Mi or Gi");
        check_rejected("readBytesPerSecond", "100MB", "use Ki, Mi or Gi");
        check_rejected("readBytesPerSecond", "100mi", "use Ki, Mi or Gi");
        check_rejected("readBytesPerSecond", "1Ti", "use Ki, Mi or Gi");
        check_rejected("readBytesPerSecond", "100MiB", "use Ki, Mi or Gi");
}

TEST(test_limits_params_too_large_is_einval) {
        check_rejected("readIOPS", "4294967295", "too large");
        check_rejected("readIOPS", "99999999999999999999999", "too large");
        check_rejected("writeBytesPerSecond", "17179869184Gi", "too large"); /* 2^64 */
        check_rejected("writeBytesPerSecond", "18446744073709551615", "too large");

        tv_limits_spec s;
        CHECK_INT(PARSE(&s, NULL, "readIOPS", "4294967294", "writeBytesPerSecond",
                        "18446744073709551614"),
                  0);
        CHECK_INT(s.rule[TV_LIMIT_READ_IOPS].absolute, TV_LIMITS_IOPS_MAX);
        CHECK(s.rule[TV_LIMIT_WRITE_BPS].absolute == TV_LIMITS_BPS_MAX);
}

TEST(test_limits_params_absolute_and_per_gib_for_one_direction_conflict) {
        tv_limits_spec s;
        tv_limits_error err;

        CHECK_INT(PARSE(&s, &err, "readIOPS", "100", "readIOPSPerGiB", "10"), -EINVAL);
        CHECK(strstr(err.message, "readIOPS and readIOPSPerGiB") != NULL);
        CHECK_INT(PARSE(&s, &err, "iops", "100", "writeIOPSPerGiB", "10"), -EINVAL);
        CHECK(strstr(err.message, "iops and writeIOPSPerGiB") != NULL);
        CHECK_INT(PARSE(&s, &err, "writeBytesPerSecondPerGiB", "1Mi", "writeBytesPerSecond", "5Mi"),
                  -EINVAL);
        CHECK(strstr(err.message, "writeBytesPerSecond and writeBytesPerSecondPerGiB") != NULL);
        /* other direction or kind: fine */
        CHECK_INT(PARSE(&s, &err, "readIOPS", "100", "writeIOPSPerGiB", "10",
                        "readBytesPerSecondPerGiB", "1Mi", "writeBytesPerSecond", "5Mi"),
                  0);
}

TEST(test_limits_params_iops_with_read_or_write_iops_conflict) {
        tv_limits_spec s;
        tv_limits_error err;

        CHECK_INT(PARSE(&s, &err, "readIOPS", "100", "iops", "200"), -EINVAL);
        CHECK(strstr(err.message, "readIOPS and iops") != NULL);
        CHECK_INT(PARSE(&s, &err, "iops", "200", "writeIOPS", "100"), -EINVAL);
        CHECK(strstr(err.message, "iops and writeIOPS") != NULL);
}

TEST(test_limits_params_given_twice_is_einval) {
        tv_limits_spec s;
        tv_limits_error err;
        CHECK_INT(PARSE(&s, &err, "readIOPS", "100", "readIOPS", "100"), -EINVAL);
        CHECK(strstr(err.message, "readIOPS given twice") != NULL);
}

TEST(test_limits_params_floor_and_ceiling_need_per_gib) {
        tv_limits_spec s;
        tv_limits_error err;

        CHECK_INT(PARSE(&s, &err, "minReadIOPS", "100"), -EINVAL);
        CHECK(strstr(err.message, "minReadIOPS needs readIOPSPerGiB") != NULL);
        CHECK_INT(PARSE(&s, &err, "writeIOPS", "100", "maxWriteIOPS", "1000"), -EINVAL);
        CHECK(strstr(err.message, "maxWriteIOPS needs writeIOPSPerGiB") != NULL);
        CHECK_INT(PARSE(&s, &err, "iops", "100", "maxReadIOPS", "1000"), -EINVAL);
        CHECK(strstr(err.message, "maxReadIOPS") != NULL);
        CHECK_INT(PARSE(&s, &err, "readBytesPerSecondPerGiB", "1Mi", "minReadBytesPerSecond",
                        "10Mi", "maxReadBytesPerSecond", "1Gi"),
                  0);
        CHECK_INT(s.rule[TV_LIMIT_READ_BPS].floor, 10 * MiB);
        CHECK_INT(s.rule[TV_LIMIT_READ_BPS].ceiling, GiB);
}

TEST(test_limits_params_floor_above_ceiling_is_einval) {
        tv_limits_spec s;
        tv_limits_error err;

        CHECK_INT(PARSE(&s, &err, "readIOPSPerGiB", "10", "minReadIOPS", "500", "maxReadIOPS",
                        "100"),
                  -EINVAL);
        CHECK_STR(err.message, "parameter minReadIOPS=500 is above maxReadIOPS=100");
        /* equal is a fixed limit, allowed */
        CHECK_INT(PARSE(&s, &err, "readIOPSPerGiB", "10", "minReadIOPS", "100", "maxReadIOPS",
                        "100"),
                  0);
}

TEST(test_limits_params_error_message_quotes_the_value_safely) {
        tv_limits_spec s;
        tv_limits_error err;
        CHECK_INT(PARSE(&s, &err, "readIOPS",
                        "12\"\n\x01zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
                  -EINVAL);
        CHECK(strstr(err.message, "parameter readIOPS=\"12???zzz") != NULL);
        CHECK(strstr(err.message, "...\"") != NULL);
        CHECK(strchr(err.message, '\n') == NULL);
}

TEST(test_limits_is_param_knows_exactly_the_table) {
        size_t n = 0;
        const char *const *names = tv_limits_param_names(&n);

        CHECK_INT(n, 17);
        for (size_t i = 0; i < n; i++)
                CHECK(tv_limits_is_param(names[i]));
        CHECK(tv_limits_is_param("iops"));
        CHECK(tv_limits_is_param("writeBytesPerSecondPerGiB"));
        CHECK(tv_limits_is_param("minWriteBytesPerSecond"));
        CHECK(!tv_limits_is_param("readiops"));
        CHECK(!tv_limits_is_param("IOPS"));
        CHECK(!tv_limits_is_param("csi.storage.k8s.io/fstype"));
        CHECK(!tv_limits_is_param(""));
        CHECK(!tv_limits_is_param(NULL));
        /* every name in the table is accepted by the parser */
        for (size_t i = 0; i < n; i++) {
                tv_limits_spec s;
                char buf[64];
                const char *keys[2] = {names[i], NULL}, *values[2] = {"100", "10"};
                size_t k = 1;
                bool bound = strncmp(names[i], "min", 3) == 0 || strncmp(names[i], "max", 3) == 0;
                if (bound) {
                        /* minReadIOPS -> readIOPSPerGiB */
                        snprintf(buf, sizeof(buf), "%c%sPerGiB", names[i][3] + ('a' - 'A'),
                                 names[i] + 4);
                        keys[1] = buf;
                        k = 2;
                }
                CHECK_INT(tv_limits_spec_from_params(keys, values, k, &s, NULL), 0);
        }
}

/* ---- resolve ----------------------------------------------------------- */

static tv_limits resolve_ok(const tv_limits_spec *s, uint64_t capacity) {
        tv_limits l = {0};
        tv_limits_error err;
        int r = tv_limits_resolve(s, capacity, &l, &err);
        if (r != 0)
                tv_test_fail(__FILE__, __LINE__, "resolve(%llu): %d %s",
                             (unsigned long long)capacity, r, err.message);
        return l;
}

TEST(test_limits_resolve_absolute_ignores_capacity) {
        tv_limits_spec s;
        CHECK_INT(PARSE(&s, NULL, "iops", "300", "writeBytesPerSecond", "4Mi"), 0);
        tv_limits a = resolve_ok(&s, 1 * GiB), b = resolve_ok(&s, 1000 * GiB);
        CHECK(tv_limits_equal(&a, &b));
        CHECK_INT(a.read_iops, 300);
        CHECK_INT(a.write_iops, 300);
        CHECK_INT(a.read_bps, 0);
        CHECK_INT(a.write_bps, 4 * MiB);
}

TEST(test_limits_resolve_per_gib_rounds_capacity_up_to_whole_gib) {
        tv_limits_spec s;
        CHECK_INT(PARSE(&s, NULL, "readIOPSPerGiB", "10", "writeBytesPerSecondPerGiB", "1Mi"), 0);
        CHECK_INT(resolve_ok(&s, 2 * GiB).read_iops, 20);
        CHECK_INT(resolve_ok(&s, 2 * GiB + 1).read_iops, 30);
        CHECK_INT(resolve_ok(&s, GiB + GiB / 2).read_iops, 20);
        CHECK_INT(resolve_ok(&s, 1).read_iops, 10);
        CHECK_INT(resolve_ok(&s, 0).read_iops, 10); /* no capacity asked: 1 GiB */
        CHECK_INT(resolve_ok(&s, 100 * GiB).write_bps, 100 * MiB);
        CHECK_INT(resolve_ok(&s, 100 * GiB).write_iops, 0);
}

TEST(test_limits_resolve_applies_floor_and_ceiling) {
        tv_limits_spec s;
        CHECK_INT(PARSE(&s, NULL, "writeIOPSPerGiB", "3", "minWriteIOPS", "100", "maxWriteIOPS",
                        "1000"),
                  0);
        CHECK_INT(resolve_ok(&s, 1 * GiB).write_iops, 100);
        CHECK_INT(resolve_ok(&s, 100 * GiB).write_iops, 300);
        CHECK_INT(resolve_ok(&s, 1000 * GiB).write_iops, 1000);
}

TEST(test_limits_resolve_never_goes_below_the_kernel_minimum) {
        tv_limits_spec s;
        CHECK_INT(PARSE(&s, NULL, "readIOPSPerGiB", "1", "readBytesPerSecondPerGiB", "1"), 0);
        tv_limits l = resolve_ok(&s, 1 * GiB);
        CHECK_INT(l.read_iops, 2);
        CHECK_INT(l.read_bps, 2);
        CHECK(tv_limits_valid(&l));
}

TEST(test_limits_resolve_overflowing_per_gib_product_is_einval) {
        tv_limits_spec s;
        tv_limits_error err;
        tv_limits l = {.read_iops = 77};

        CHECK_INT(PARSE(&s, NULL, "readBytesPerSecondPerGiB", "1Gi"), 0);
        /* 2^34 GiB x 2^30 = 2^64: wraps in uint64 */
        CHECK_INT(tv_limits_resolve(&s, UINT64_MAX, &l, &err), -EINVAL);
        CHECK(strstr(err.message, "readBytesPerSecondPerGiB") != NULL);
        CHECK(strstr(err.message, "maxReadBytesPerSecond") != NULL);
        CHECK_INT(l.read_iops, 77); /* untouched */

        CHECK_INT(PARSE(&s, NULL, "writeIOPSPerGiB", "1000000"), 0);
        CHECK_INT(tv_limits_resolve(&s, 4295 * GiB, &l, &err), 0 - EINVAL);
        CHECK(strstr(err.message, "writeIOPSPerGiB=1000000 for a 4295 GiB volume") != NULL);
        CHECK_INT(resolve_ok(&s, 4294 * GiB).write_iops, 4294000000ULL);
}

TEST(test_limits_resolve_ceiling_bounds_an_overflowing_product) {
        tv_limits_spec s;
        CHECK_INT(PARSE(&s, NULL, "readBytesPerSecondPerGiB", "1Gi", "maxReadBytesPerSecond",
                        "10Gi"),
                  0);
        CHECK_INT(resolve_ok(&s, UINT64_MAX).read_bps, 10 * GiB);
}

TEST(test_limits_resolve_empty_spec_is_unlimited) {
        tv_limits_spec s = {0};
        tv_limits l = resolve_ok(&s, 10 * GiB);
        CHECK(tv_limits_is_unlimited(&l));
}

TEST(test_limits_resolve_refuses_an_invalid_hand_built_spec) {
        tv_limits_spec s = {0};
        tv_limits l;
        tv_limits_error err;

        s.rule[TV_LIMIT_READ_IOPS].absolute = 100;
        s.rule[TV_LIMIT_READ_IOPS].per_gib = 1;
        CHECK_INT(tv_limits_resolve(&s, GiB, &l, &err), -EINVAL);
        CHECK(strstr(err.message, "readIOPS and readIOPSPerGiB") != NULL);
        s = (tv_limits_spec){0};
        s.rule[TV_LIMIT_WRITE_IOPS].absolute = 1;
        CHECK_INT(tv_limits_spec_validate(&s, &err), -EINVAL);
        CHECK(strstr(err.message, "writeIOPS=1 is out of range") != NULL);
}

TEST(test_limits_valid_follows_the_kernel_range) {
        tv_limits l = {0};
        CHECK(tv_limits_valid(&l));
        l.read_iops = 1;
        CHECK(!tv_limits_valid(&l));
        l.read_iops = TV_LIMITS_IOPS_MAX + 1;
        CHECK(!tv_limits_valid(&l));
        l.read_iops = TV_LIMITS_IOPS_MAX;
        l.write_bps = UINT64_MAX;
        CHECK(!tv_limits_valid(&l));
        l.write_bps = TV_LIMITS_BPS_MAX;
        CHECK(tv_limits_valid(&l));
}

/* ---- the spec as a string ----------------------------------------------- */

TEST(test_limits_spec_string_is_short_and_round_trips) {
        tv_limits_spec s, back;
        tv_limits_error err;
        char buf[TV_LIMITS_SPEC_STRING_MAX];

        CHECK_INT(PARSE(&s, NULL, "readIOPS", "3000", "writeIOPSPerGiB", "10", "minWriteIOPS",
                        "100", "maxWriteIOPS", "5000", "readBytesPerSecond", "100Mi",
                        "writeBytesPerSecondPerGiB", "1536"),
                  0);
        int n = tv_limits_spec_to_string(&s, buf);
        CHECK_STR(buf, "v1/ri:3000/wig:10/win:100/wix:5000/rb:100Mi/wbg:1536");
        CHECK_INT(n, (int)strlen(buf));
        CHECK_INT(tv_limits_spec_from_string(buf, &back, &err), 0);
        CHECK(memcmp(&s, &back, sizeof(s)) == 0);
}

TEST(test_limits_spec_string_of_empty_spec_is_v1) {
        tv_limits_spec s = {0}, back;
        char buf[TV_LIMITS_SPEC_STRING_MAX];

        CHECK_INT(tv_limits_spec_to_string(&s, buf), 2);
        CHECK_STR(buf, "v1");
        memset(&back, 0xaa, sizeof(back));
        CHECK_INT(tv_limits_spec_from_string("v1", &back, NULL), 0);
        CHECK(tv_limits_spec_is_empty(&back));
}

TEST(test_limits_spec_string_uses_largest_exact_binary_suffix) {
        tv_limits_spec s = {0};
        char buf[TV_LIMITS_SPEC_STRING_MAX];

        s.rule[TV_LIMIT_READ_BPS].absolute = 3072;
        s.rule[TV_LIMIT_WRITE_BPS].absolute = 2 * GiB;
        CHECK(tv_limits_spec_to_string(&s, buf) > 0);
        CHECK_STR(buf, "v1/rb:3Ki/wb:2Gi");
}

TEST(test_limits_spec_string_fits_lvm_tag_unescaped) {
        tv_limits_spec s = {0}, back;
        char buf[TV_LIMITS_SPEC_STRING_MAX];

        /* the longest string: per-GiB, floor and ceiling everywhere (an
         * absolute excludes them), 10- and 20-digit values, no suffix */
        for (int k = 0; k < TV_LIMIT_KIND_COUNT; k++) {
                bool iops = k == TV_LIMIT_READ_IOPS || k == TV_LIMIT_WRITE_IOPS;
                uint64_t max = iops ? TV_LIMITS_IOPS_MAX : TV_LIMITS_BPS_MAX;
                s.rule[k].per_gib = max - 1;
                s.rule[k].floor = max - 2;
                s.rule[k].ceiling = max - 1;
        }
        int n = tv_limits_spec_to_string(&s, buf);
        CHECK_INT(n, 242);
        for (const char *p = buf; *p; p++)
                CHECK(strchr("abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:",
                             *p));
        CHECK_INT(tv_limits_spec_from_string(buf, &back, NULL), 0);
        CHECK(memcmp(&s, &back, sizeof(s)) == 0);

        /* tv_lvm_tag_encode() keeps it as it is */
        char *tag = NULL;
        CHECK_INT(tv_lvm_tag_encode("limits", buf, &tag), 0);
        if (tag) {
                CHECK(strncmp(tag, "tv.limits=", 10) == 0);
                CHECK_STR(tag + 10, buf);
        }
        free(tag);
}

TEST(test_limits_spec_string_rejects_anything_malformed) {
        static const char *const bad[] = {
                "", "v2", "v2/ri:100", "v1x", "v1/", "v1//ri:100", "v1/ri", "v1/ri:",
                "v1/zz:100", "v1/rig100", "v1/ri:100/ri:200", "v1/ri:abc", "v1/ri:100x",
                "v1/ri:1", "v1/ri:0", "v1/ri:100/rig:2", "v1/rin:10", "v1/rb:100M",
                "v1/ri:100/", "V1/ri:100", "v1/ri:-3", "v1/rigg:3",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                tv_limits_spec s;
                tv_limits_error err;
                int r = tv_limits_spec_from_string(bad[i], &s, &err);
                if (r != -EINVAL || err.message[0] == '\0')
                        tv_test_fail(__FILE__, __LINE__, "\"%s\": r=%d message \"%s\"", bad[i], r,
                                     err.message);
        }
        CHECK_INT(tv_limits_spec_from_string(NULL, &(tv_limits_spec){0}, NULL), -EINVAL);
}

TEST(test_limits_spec_string_refuses_an_invalid_spec) {
        tv_limits_spec s = {0};
        char buf[TV_LIMITS_SPEC_STRING_MAX];
        s.rule[TV_LIMIT_READ_IOPS].floor = 10;
        CHECK_INT(tv_limits_spec_to_string(&s, buf), -EINVAL);
}
