/* LV tag encoding: tv.<key>=<value> in lvm2's tag alphabet, reversibly. */
#include <stdlib.h>

#include "thinvault/lvm.h"
#include "tv_test.h"

/* lib/misc/lvm-string.c validate_tag(): A-Za-z0-9._-+/=!:&# */
static bool lvm2_accepts_tag(const char *t) {
        if (!*t)
                return false;
        for (; *t; t++) {
                char c = *t;
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (!alnum && !strchr("._-+/=!:&#", c))
                        return false;
        }
        return true;
}

static void check_round_trip(const char *key, const char *value) {
        char *tag = NULL, *k = NULL, *v = NULL;
        int r = tv_lvm_tag_encode(key, value, &tag);
        if (r < 0) {
                tv_test_fail(__FILE__, __LINE__, "encode(%s) failed: %d", key, r);
                return;
        }
        CHECK(lvm2_accepts_tag(tag));
        CHECK(strlen(tag) <= TV_LVM_TAG_MAX);
        CHECK_INT(tv_lvm_tag_decode(tag, &k, &v), 0);
        CHECK_STR(k, key);
        CHECK_STR(v, value);
        free(tag);
        free(k);
        free(v);
}

TEST(test_lvm_tag_encode_keeps_safe_chars_and_escapes_the_rest) {
        char *tag = NULL;
        CHECK_INT(tv_lvm_tag_encode("tenant", "team a/\xc3\xbc", &tag), 0);
        CHECK_STR(tag, "tv.tenant=team#20a/#C3#BC");
        free(tag);
        CHECK_INT(tv_lvm_tag_encode("name", "pvc-1.2_3+4:5", &tag), 0);
        CHECK_STR(tag, "tv.name=pvc-1.2_3+4:5");
        free(tag);
        CHECK_INT(tv_lvm_tag_encode("x", "a=b#c!d&e%f,g", &tag), 0);
        CHECK_STR(tag, "tv.x=a#3Db#23c#21d#26e#25f#2Cg");
        free(tag);
}

TEST(test_lvm_tag_empty_value_round_trips) {
        char *tag = NULL;
        CHECK_INT(tv_lvm_tag_encode("pvc", "", &tag), 0);
        CHECK_STR(tag, "tv.pvc=");
        free(tag);
        check_round_trip("pvc", "");
}

TEST(test_lvm_tag_every_byte_round_trips) {
        for (int b = 1; b < 256; b++) {
                char v[4] = {'a', (char)b, 'z', '\0'};
                check_round_trip("k", v);
        }
}

TEST(test_lvm_tag_random_values_round_trip_and_are_lvm_safe) {
        unsigned seed = 42;
        for (int i = 0; i < 2000; i++) {
                char v[200];
                size_t len = (seed = seed * 1103515245u + 12345u) % 199;
                for (size_t k = 0; k < len; k++) {
                        seed = seed * 1103515245u + 12345u;
                        v[k] = (char)(1 + (seed >> 16) % 255);
                }
                v[len] = '\0';
                check_round_trip("name", v);
        }
}

TEST(test_lvm_tag_real_kubernetes_values_round_trip) {
        check_round_trip(TV_TAG_TENANT, "team-a");
        check_round_trip(TV_TAG_NAME, "pvc-3f1c2b9e-8d4a-4c1e-9a7b-0123456789ab");
        check_round_trip(TV_TAG_PVC, "data-postgres-0");
        check_round_trip("pvc.namespace", "kube-system");
        check_round_trip(TV_TAG_SOURCE, "tvs-snap-1-9f2460b56367bc4e");
        check_round_trip("iops", "200");
}

TEST(test_lvm_tag_length_limit_is_enforced_on_the_encoded_form) {
        /* "tv.k=" is 5 bytes: 1019 kept bytes fit exactly, escaped ones
         * count 3 each. */
        char v[1100], *tag = NULL;
        memset(v, 'a', 1019);
        v[1019] = '\0';
        CHECK_INT(tv_lvm_tag_encode("k", v, &tag), 0);
        CHECK_INT(strlen(tag), TV_LVM_TAG_MAX);
        free(tag);
        tag = NULL;
        v[1019] = 'a';
        v[1020] = '\0';
        CHECK_INT(tv_lvm_tag_encode("k", v, &tag), -EINVAL);
        CHECK(tag == NULL);
        memset(v, ' ', 340); /* 340 * 3 = 1020 > 1019 */
        v[340] = '\0';
        CHECK_INT(tv_lvm_tag_encode("k", v, &tag), -EINVAL);
}

TEST(test_lvm_tag_bad_keys_are_refused) {
        static const char *const bad[] = {"", "A", "Tenant", "-x", ".x", "x y", "x=y", "x/y",
                                          "\xc3\xbc", "x#"};
        char *tag = NULL, k65[66];
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (tv_lvm_tag_encode(bad[i], "v", &tag) != -EINVAL)
                        tv_test_fail(__FILE__, __LINE__, "key \"%s\" should be refused", bad[i]);
        CHECK_INT(tv_lvm_tag_encode(NULL, "v", &tag), -EINVAL);
        CHECK_INT(tv_lvm_tag_encode("k", NULL, &tag), -EINVAL);
        memset(k65, 'k', 65);
        k65[65] = '\0';
        CHECK_INT(tv_lvm_tag_encode(k65, "v", &tag), -EINVAL);
        k65[64] = '\0';
        CHECK_INT(tv_lvm_tag_encode(k65, "v", &tag), 0);
        free(tag);
}

TEST(test_lvm_tag_decode_of_foreign_tag_is_enomsg) {
        char *k = NULL, *v = NULL;
        CHECK_INT(tv_lvm_tag_decode("admin-tag", &k, &v), -ENOMSG);
        CHECK_INT(tv_lvm_tag_decode("tvx.a=b", &k, &v), -ENOMSG);
        CHECK_INT(tv_lvm_tag_decode("backup", &k, &v), -ENOMSG);
        CHECK(k == NULL && v == NULL);
}

TEST(test_lvm_tag_decode_refuses_malformed_and_non_canonical_tags) {
        static const char *const bad[] = {
                "tv.",        "tv.name",     "tv.=x",      "tv.Name=x", "tv.name=a#",
                "tv.name=#4", "tv.name=#zz", "tv.name=#00", "tv.name=#2f" /* lowercase */,
                "tv.name=#41" /* 'A' needs no escape */, "tv.name=a=b", "tv.name=a!b",
                "tv.name=a&b",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *k = NULL, *v = NULL;
                if (tv_lvm_tag_decode(bad[i], &k, &v) != -EINVAL)
                        tv_test_fail(__FILE__, __LINE__, "\"%s\" should be refused", bad[i]);
                CHECK(k == NULL && v == NULL);
        }
}

TEST(test_lvm_tag_decode_then_encode_gives_the_same_tag) {
        static const char *const tags[] = {"tv.name=pvc#20one/#C3#BC", "tv.tenant=team-a",
                                           "tv.x=", "tv.a.b_c-d=#23#3D"};
        for (size_t i = 0; i < ELEMENTSOF(tags); i++) {
                char *k = NULL, *v = NULL, *again = NULL;
                CHECK_INT(tv_lvm_tag_decode(tags[i], &k, &v), 0);
                CHECK_INT(tv_lvm_tag_encode(k, v, &again), 0);
                CHECK_STR(again, tags[i]);
                free(k);
                free(v);
                free(again);
        }
}
