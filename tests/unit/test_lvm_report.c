/* Parsing lvm2's JSON report. Every literal below is real output of
 * `lvm lvs --reportformat json --units b --nosuffix -o TV_LVM_LVS_FIELDS`
 * from lvm2 2.03.16 in the test guest, captured by
 * tests/guest/capture-lvm-reports.sh (VG "tvcap": a thin pool, a tagged
 * volume, its read-only snapshot, a clone of that, an inactive volume). */
#include <stdlib.h>

#include "thinvault/lvm.h"
#include "tv_test.h"

static const char REPORT_EMPTY_VG[] =
        "  {\n"
        "      \"report\": [\n"
        "          {\n"
        "              \"lv\": [\n"
        "              ]\n"
        "          }\n"
        "      ]\n"
        "  }\n";

static const char REPORT_POOL_ONLY[] =
        "  {\n"
        "      \"report\": [\n"
        "          {\n"
        "              \"lv\": [\n"
        "                  {\"lv_name\":\"pool\", \"vg_name\":\"tvcap\", \"lv_uuid\":\"bH031U-zQMZ-3pJW-r4Y0-GKOX-PQeL-ARmwHN\", \"lv_attr\":\"twi-a-t---\", \"lv_size\":\"255852544\", \"segtype\":\"thin-pool\", \"pool_lv\":\"\", \"origin\":\"\", \"data_percent\":\"0.00\", \"lv_tags\":\"\", \"lv_kernel_major\":\"254\", \"lv_kernel_minor\":\"2\", \"lv_time\":\"2026-11-25 17:17:20 +0000\", \"lv_path\":\"\", \"lv_dm_path\":\"/dev/mapper/tvcap-pool\", \"vg_extent_size\":\"4194304\", \"vg_size\":\"264241152\", \"vg_free\":\"0\"}\n"
        "              ]\n"
        "          }\n"
        "      ]\n"
        "  }\n";

static const char REPORT_VOLUMES[] =
        "  {\n"
        "      \"report\": [\n"
        "          {\n"
        "              \"lv\": [\n"
        "                  {\"lv_name\":\"inactive\", \"vg_name\":\"tvcap\", \"lv_uuid\":\"hinMMJ-OrhH-NvOz-6iTH-qgR0-NKr9-GwonD3\", \"lv_attr\":\"Vwi---t---\", \"lv_size\":\"4194304\", \"segtype\":\"thin\", \"pool_lv\":\"pool\", \"origin\":\"\", \"data_percent\":\"\", \"lv_tags\":\"\", \"lv_kernel_major\":\"-1\", \"lv_kernel_minor\":\"-1\", \"lv_time\":\"2026-11-25 17:17:30 +0000\", \"lv_path\":\"/dev/tvcap/inactive\", \"lv_dm_path\":\"/dev/mapper/tvcap-inactive\", \"vg_extent_size\":\"4194304\", \"vg_size\":\"264241152\", \"vg_free\":\"0\"},\n"
        "                  {\"lv_name\":\"pool\", \"vg_name\":\"tvcap\", \"lv_uuid\":\"bH031U-zQMZ-3pJW-r4Y0-GKOX-PQeL-ARmwHN\", \"lv_attr\":\"twi-aot---\", \"lv_size\":\"255852544\", \"segtype\":\"thin-pool\", \"pool_lv\":\"\", \"origin\":\"\", \"data_percent\":\"0.00\", \"lv_tags\":\"\", \"lv_kernel_major\":\"254\", \"lv_kernel_minor\":\"2\", \"lv_time\":\"2026-11-25 17:17:20 +0000\", \"lv_path\":\"\", \"lv_dm_path\":\"/dev/mapper/tvcap-pool\", \"vg_extent_size\":\"4194304\", \"vg_size\":\"264241152\", \"vg_free\":\"0\"},\n"
        "                  {\"lv_name\":\"tv-clone-0123456789abcdef\", \"vg_name\":\"tvcap\", \"lv_uuid\":\"2UXTyA-5NPG-EkSP-5cft-2dOZ-frUG-vUZJjD\", \"lv_attr\":\"Vwi-a-t---\", \"lv_size\":\"8388608\", \"segtype\":\"thin\", \"pool_lv\":\"pool\", \"origin\":\"tvs-snap-0123456789abcdef\", \"data_percent\":\"0.00\", \"lv_tags\":\"\", \"lv_kernel_major\":\"254\", \"lv_kernel_minor\":\"6\", \"lv_time\":\"2026-11-25 17:17:28 +0000\", \"lv_path\":\"/dev/tvcap/tv-clone-0123456789abcdef\", \"lv_dm_path\":\"/dev/mapper/tvcap-tv--clone--0123456789abcdef\", \"vg_extent_size\":\"4194304\", \"vg_size\":\"264241152\", \"vg_free\":\"0\"},\n"
        "                  {\"lv_name\":\"tv-vol-0123456789abcdef\", \"vg_name\":\"tvcap\", \"lv_uuid\":\"A2vE0o-6ic6-VXeW-eeGb-WerE-YyJZ-PkflLJ\", \"lv_attr\":\"Vwi-a-t---\", \"lv_size\":\"8388608\", \"segtype\":\"thin\", \"pool_lv\":\"pool\", \"origin\":\"\", \"data_percent\":\"0.00\", \"lv_tags\":\"admin-tag,tv.name=pvc#20one/#C3#BC,tv.tenant=team-a\", \"lv_kernel_major\":\"254\", \"lv_kernel_minor\":\"4\", \"lv_time\":\"2026-11-25 17:17:25 +0000\", \"lv_path\":\"/dev/tvcap/tv-vol-0123456789abcdef\", \"lv_dm_path\":\"/dev/mapper/tvcap-tv--vol--0123456789abcdef\", \"vg_extent_size\":\"4194304\", \"vg_size\":\"264241152\", \"vg_free\":\"0\"},\n"
        "                  {\"lv_name\":\"tvs-snap-0123456789abcdef\", \"vg_name\":\"tvcap\", \"lv_uuid\":\"bCoWRo-cYMX-jP5u-Ssrc-cUSY-Unyk-sAaUSC\", \"lv_attr\":\"Vri-a-t---\", \"lv_size\":\"8388608\", \"segtype\":\"thin\", \"pool_lv\":\"pool\", \"origin\":\"tv-vol-0123456789abcdef\", \"data_percent\":\"0.00\", \"lv_tags\":\"tv.kind=snapshot\", \"lv_kernel_major\":\"254\", \"lv_kernel_minor\":\"5\", \"lv_time\":\"2026-11-25 17:17:27 +0000\", \"lv_path\":\"/dev/tvcap/tvs-snap-0123456789abcdef\", \"lv_dm_path\":\"/dev/mapper/tvcap-tvs--snap--0123456789abcdef\", \"vg_extent_size\":\"4194304\", \"vg_size\":\"264241152\", \"vg_free\":\"0\"}\n"
        "              ]\n"
        "          }\n"
        "      ]\n"
        "  }\n";

static const char REPORT_ONE_VOLUME[] =
        "  {\n"
        "      \"report\": [\n"
        "          {\n"
        "              \"lv\": [\n"
        "                  {\"lv_name\":\"tv-vol-0123456789abcdef\", \"vg_name\":\"tvcap\", \"lv_uuid\":\"A2vE0o-6ic6-VXeW-eeGb-WerE-YyJZ-PkflLJ\", \"lv_attr\":\"Vwi-a-t---\", \"lv_size\":\"8388608\", \"segtype\":\"thin\", \"pool_lv\":\"pool\", \"origin\":\"\", \"data_percent\":\"0.00\", \"lv_tags\":\"admin-tag,tv.name=pvc#20one/#C3#BC,tv.tenant=team-a\", \"lv_kernel_major\":\"254\", \"lv_kernel_minor\":\"4\", \"lv_time\":\"2026-11-25 17:17:25 +0000\", \"lv_path\":\"/dev/tvcap/tv-vol-0123456789abcdef\", \"lv_dm_path\":\"/dev/mapper/tvcap-tv--vol--0123456789abcdef\", \"vg_extent_size\":\"4194304\", \"vg_size\":\"264241152\", \"vg_free\":\"0\"}\n"
        "              ]\n"
        "          }\n"
        "      ]\n"
        "  }\n";

static const char REPORT_MISSING_LV[] =
        "  {\n"
        "      \"report\": [\n"
        "          {\n"
        "              \"lv\": [\n"
        "              ]\n"
        "          }\n"
        "      ]\n"
        "  }\n";

static const char REPORT_FULL_POOL[] =
        "  {\n"
        "      \"report\": [\n"
        "          {\n"
        "              \"lv\": [\n"
        "                  {\"lv_name\":\"pool\", \"vg_name\":\"tvcap\", \"lv_uuid\":\"bH031U-zQMZ-3pJW-r4Y0-GKOX-PQeL-ARmwHN\", \"lv_attr\":\"twi-aot-D-\", \"lv_size\":\"255852544\", \"segtype\":\"thin-pool\", \"pool_lv\":\"\", \"origin\":\"\", \"data_percent\":\"100.00\", \"lv_tags\":\"\", \"lv_kernel_major\":\"254\", \"lv_kernel_minor\":\"2\", \"lv_time\":\"2026-11-25 17:17:20 +0000\", \"lv_path\":\"\", \"lv_dm_path\":\"/dev/mapper/tvcap-pool\", \"vg_extent_size\":\"4194304\", \"vg_size\":\"264241152\", \"vg_free\":\"0\"}\n"
        "              ]\n"
        "          }\n"
        "      ]\n"
        "  }\n";


static tv_lv_list *parse(const char *json, const char *only_pool) {
        tv_lv_list *l = NULL;
        tv_lvm_error err;
        int r = tv_lvm_parse_lvs_json(json, only_pool, &l, &err);
        if (r < 0)
                tv_test_fail(__FILE__, __LINE__, "parse failed: %d %s", r, err.message);
        return l;
}

static const tv_lv *find(const tv_lv_list *l, const char *name) {
        for (size_t i = 0; i < tv_lv_list_size(l); i++) {
                const tv_lv *lv = tv_lv_list_get(l, i);
                if (lv && strcmp(tv_lv_name(lv), name) == 0)
                        return lv;
        }
        return NULL;
}

TEST(test_lvm_report_of_empty_vg_has_no_rows_and_no_vg_info) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = parse(REPORT_EMPTY_VG, NULL);
        tv_vg_info vi;
        if (!l)
                return;
        CHECK_INT(tv_lv_list_size(l), 0);
        CHECK_INT(tv_lv_list_vg_info(l, &vi), -ENODATA);
        CHECK(tv_lv_list_get(l, 0) == NULL);
}

TEST(test_lvm_report_pool_row_is_parsed_and_filtered_out_of_volume_lists) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *all = parse(REPORT_POOL_ONLY, NULL);
        _cleanup_(tv_lv_list_freep) tv_lv_list *thin = parse(REPORT_POOL_ONLY, "pool");
        tv_vg_info vi;
        if (!all || !thin)
                return;
        CHECK_INT(tv_lv_list_size(all), 1);
        const tv_lv *pool = tv_lv_list_get(all, 0);
        CHECK_STR(tv_lv_name(pool), "pool");
        CHECK_STR(tv_lv_vg(pool), "tvcap");
        CHECK_STR(tv_lv_segtype(pool), "thin-pool");
        CHECK_INT(tv_lv_size(pool), 255852544);
        CHECK(tv_lv_pool(pool) == NULL);
        CHECK(tv_lv_path(pool) == NULL);
        CHECK_STR(tv_lv_dm_path(pool), "/dev/mapper/tvcap-pool");
        CHECK(tv_lv_active(pool));
        CHECK_INT(tv_lv_list_size(thin), 0);
        /* The VG numbers come from the first row even when it is filtered. */
        CHECK_INT(tv_lv_list_vg_info(thin, &vi), 0);
        CHECK_INT(vi.extent_bytes, 4194304);
        CHECK_INT(vi.size_bytes, 264241152);
        CHECK_INT(vi.free_bytes, 0);
}

TEST(test_lvm_report_volumes_of_the_pool_are_the_thin_rows_only) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = parse(REPORT_VOLUMES, "pool");
        _cleanup_(tv_lv_list_freep) tv_lv_list *other = parse(REPORT_VOLUMES, "otherpool");
        if (!l || !other)
                return;
        CHECK_INT(tv_lv_list_size(l), 4);
        CHECK(find(l, "pool") == NULL);
        CHECK(find(l, "inactive") != NULL);
        CHECK(find(l, "tv-vol-0123456789abcdef") != NULL);
        CHECK(find(l, "tvs-snap-0123456789abcdef") != NULL);
        CHECK(find(l, "tv-clone-0123456789abcdef") != NULL);
        CHECK_INT(tv_lv_list_size(other), 0);
}

/* The scrape's one lvs: the whole VG for the pool status, then kept down to
 * what a listing with only_pool would have given. */
TEST(test_lvm_report_keep_pool_leaves_what_only_pool_gives) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = parse(REPORT_VOLUMES, NULL);
        _cleanup_(tv_lv_list_freep) tv_lv_list *want = parse(REPORT_VOLUMES, "pool");
        _cleanup_(tv_lv_list_freep) tv_lv_list *other = parse(REPORT_VOLUMES, NULL);
        tv_lv *taken = NULL;
        tv_vg_info vi;
        if (!l || !want || !other)
                return;
        CHECK_INT(tv_lv_list_size(l), 5);
        /* A taken item (a hole) is dropped, not kept. */
        CHECK_INT(tv_lv_list_take(l, 0, &taken), 0);
        CHECK_STR(tv_lv_name(taken), "inactive");
        tv_lv_free(taken);
        tv_lv_list_keep_pool(l, "pool");
        CHECK_INT(tv_lv_list_size(l), tv_lv_list_size(want) - 1);
        for (size_t i = 0; i < tv_lv_list_size(l); i++) {
                const tv_lv *lv = tv_lv_list_get(l, i);
                CHECK(lv != NULL);
                if (lv)
                        CHECK(find(want, tv_lv_name(lv)) != NULL);
        }
        CHECK(find(l, "pool") == NULL);
        CHECK(find(l, "tv-vol-0123456789abcdef") != NULL);
        CHECK_INT(tv_lv_list_vg_info(l, &vi), 0);
        CHECK_INT(vi.extent_bytes, 4194304);
        tv_lv_list_keep_pool(other, "otherpool");
        CHECK_INT(tv_lv_list_size(other), 0);
        CHECK_INT(tv_lv_list_vg_info(other, &vi), 0);
}

TEST(test_lvm_report_volume_fields_and_tags_are_decoded) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = parse(REPORT_VOLUMES, "pool");
        uint32_t maj = 0, min = 0;
        size_t n = 0;
        if (!l)
                return;
        const tv_lv *v = find(l, "tv-vol-0123456789abcdef");
        CHECK(v != NULL);
        if (!v)
                return;
        CHECK_STR(tv_lv_uuid(v), "A2vE0o-6ic6-VXeW-eeGb-WerE-YyJZ-PkflLJ");
        CHECK_STR(tv_lv_attr(v), "Vwi-a-t---");
        CHECK_STR(tv_lv_segtype(v), "thin");
        CHECK_STR(tv_lv_pool(v), "pool");
        CHECK(tv_lv_origin(v) == NULL);
        CHECK_INT(tv_lv_size(v), 8388608);
        CHECK(tv_lv_active(v));
        CHECK(!tv_lv_read_only(v));
        CHECK(tv_lv_data_percent(v) == 0.0);
        CHECK_INT(tv_lv_created(v), 1795627045);
        CHECK_INT(tv_lv_devnum(v, &maj, &min), 0);
        CHECK_INT(maj, 254);
        CHECK_INT(min, 4);
        CHECK_STR(tv_lv_path(v), "/dev/tvcap/tv-vol-0123456789abcdef");
        CHECK_STR(tv_lv_dm_path(v), "/dev/mapper/tvcap-tv--vol--0123456789abcdef");
        /* "admin-tag,tv.name=pvc#20one/#C3#BC,tv.tenant=team-a": the admin's
         * own tag is not ours and is left out. */
        const tv_lvm_tag *tags = tv_lv_tags(v, &n);
        CHECK_INT(n, 2);
        if (n == 2) {
                CHECK_STR(tags[0].key, "name");
                CHECK_STR(tags[0].value, "pvc one/\xc3\xbc");
                CHECK_STR(tags[1].key, "tenant");
                CHECK_STR(tags[1].value, "team-a");
        }
        CHECK_STR(tv_lv_tag(v, TV_TAG_TENANT), "team-a");
        CHECK(tv_lv_tag(v, "admin-tag") == NULL);
        CHECK(tv_lv_tag(v, TV_TAG_PVC) == NULL);
}

TEST(test_lvm_report_snapshot_is_read_only_with_origin_and_clone_is_writable) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = parse(REPORT_VOLUMES, "pool");
        if (!l)
                return;
        const tv_lv *s = find(l, "tvs-snap-0123456789abcdef");
        const tv_lv *c = find(l, "tv-clone-0123456789abcdef");
        CHECK(s && c);
        if (!s || !c)
                return;
        CHECK(tv_lv_read_only(s));
        CHECK_STR(tv_lv_origin(s), "tv-vol-0123456789abcdef");
        CHECK_STR(tv_lv_tag(s, TV_TAG_KIND), "snapshot");
        CHECK_INT(tv_lv_created(s), 1795627047);
        CHECK(!tv_lv_read_only(c));
        CHECK_STR(tv_lv_origin(c), "tvs-snap-0123456789abcdef");
        /* lvm2 copied no tags from the snapshot to its clone. */
        size_t n = 9;
        (void)tv_lv_tags(c, &n);
        CHECK_INT(n, 0);
}

TEST(test_lvm_report_inactive_volume_has_no_devnum_and_no_data_percent) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = parse(REPORT_VOLUMES, "pool");
        uint32_t maj = 7, min = 7;
        if (!l)
                return;
        const tv_lv *v = find(l, "inactive");
        CHECK(v != NULL);
        if (!v)
                return;
        CHECK(!tv_lv_active(v));
        CHECK_INT(tv_lv_devnum(v, &maj, &min), -ENXIO);
        CHECK_INT(maj, 7);
        CHECK(tv_lv_data_percent(v) < 0);
}

TEST(test_lvm_report_full_pool_row_reports_100_percent) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = parse(REPORT_FULL_POOL, NULL);
        if (!l)
                return;
        CHECK_INT(tv_lv_list_size(l), 1);
        const tv_lv *p = tv_lv_list_get(l, 0);
        if (!p)
                return;
        CHECK(tv_lv_data_percent(p) == 100.0);
        CHECK_STR(tv_lv_attr(p), "twi-aot-D-");
}

TEST(test_lvm_report_of_missing_lv_parses_as_empty) {
        /* lvs exits 5 and still prints an empty report. */
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = parse(REPORT_MISSING_LV, NULL);
        if (l)
                CHECK_INT(tv_lv_list_size(l), 0);
}

TEST(test_lvm_report_take_moves_an_item_out_once) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = parse(REPORT_ONE_VOLUME, NULL);
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        tv_lv *again = NULL;
        if (!l)
                return;
        CHECK_INT(tv_lv_list_take(l, 0, &lv), 0);
        CHECK(lv != NULL);
        if (lv)
                CHECK_STR(tv_lv_name(lv), "tv-vol-0123456789abcdef");
        CHECK(tv_lv_list_get(l, 0) == NULL);
        CHECK_INT(tv_lv_list_take(l, 0, &again), -ENOENT);
        CHECK_INT(tv_lv_list_take(l, 1, &again), -ENOENT);
        CHECK(again == NULL);
}

static const char ROW_HEAD[] = "{\"report\":[{\"lv\":[{";
static const char ROW_TAIL[] = "}]}]}";

/* Parse one row made of `fields`; returns the errno. */
static int parse_row(const char *fields, tv_lvm_error *err) {
        char json[2048];
        tv_lv_list *l = NULL;
        (void)snprintf(json, sizeof(json), "%s%s%s", ROW_HEAD, fields, ROW_TAIL);
        int r = tv_lvm_parse_lvs_json(json, NULL, &l, err);
        tv_lv_list_free(l);
        return r;
}

#define BASE "\"lv_name\":\"a\",\"vg_name\":\"v\",\"lv_attr\":\"Vwi-a-t---\",\"segtype\":\"thin\""

TEST(test_lvm_report_minimal_row_parses_with_defaults) {
        tv_lvm_error err;
        CHECK_INT(parse_row(BASE ",\"lv_size\":\"4194304\"", &err), 0);
}

TEST(test_lvm_report_time_with_offset_is_converted_to_utc) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = parse(
                "{\"report\":[{\"lv\":[{" BASE
                ",\"lv_size\":\"1\",\"lv_time\":\"2024-03-01 12:00:00 +0130\"}]}]}",
                NULL);
        if (l)
                CHECK_INT(tv_lv_created(tv_lv_list_get(l, 0)), 1709289000);
}

TEST(test_lvm_report_decimal_comma_percent_is_accepted) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = parse(
                "{\"report\":[{\"lv\":[{" BASE ",\"lv_size\":\"1\",\"data_percent\":\"12,50\"}]}]}",
                NULL);
        if (l)
                CHECK(tv_lv_data_percent(tv_lv_list_get(l, 0)) == 12.5);
}

TEST(test_lvm_report_malformed_input_is_ebadmsg_with_a_message) {
        static const char *const bad[] = {
                "",
                "not json",
                "{\"report\":{}}",
                "{\"nothing\":[]}",
                "{\"report\":[{\"vg\":[]}]}",
                "{\"report\":[{\"lv\":[42]}]}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                tv_lv_list *l = NULL;
                tv_lvm_error err;
                if (tv_lvm_parse_lvs_json(bad[i], NULL, &l, &err) != -EBADMSG)
                        tv_test_fail(__FILE__, __LINE__, "\"%s\" should be -EBADMSG", bad[i]);
                CHECK(l == NULL);
                CHECK(strncmp(err.message, "cannot parse lvm2 report", 24) == 0);
        }
}

TEST(test_lvm_report_bad_rows_are_ebadmsg) {
        static const char *const bad[] = {
                BASE,                                             /* no lv_size */
                BASE ",\"lv_size\":\"\"",                         /* empty size */
                BASE ",\"lv_size\":\"12.5\"",                     /* not an integer */
                BASE ",\"lv_size\":\"-1\"",                       /* negative */
                BASE ",\"lv_size\":\"99999999999999999999999\"",  /* overflow */
                BASE ",\"lv_size\":4194304",                      /* a JSON number */
                "\"vg_name\":\"v\",\"lv_attr\":\"x\",\"segtype\":\"thin\",\"lv_size\":\"1\"",
                BASE ",\"lv_size\":\"1\",\"lv_kernel_major\":\"x\"",
                BASE ",\"lv_size\":\"1\",\"lv_time\":\"yesterday\"",
                BASE ",\"lv_size\":\"1\",\"data_percent\":\"12%\"",
                BASE ",\"lv_size\":\"1\",\"lv_tags\":[\"a\"]",
                BASE ",\"lv_size\":\"1\",\"origin\":7",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                tv_lvm_error err;
                if (parse_row(bad[i], &err) != -EBADMSG)
                        tv_test_fail(__FILE__, __LINE__, "row {%s} should be -EBADMSG", bad[i]);
        }
}

TEST(test_lvm_report_malformed_tv_tags_are_skipped_not_fatal) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = parse(
                "{\"report\":[{\"lv\":[{" BASE
                ",\"lv_size\":\"1\",\"lv_tags\":\"tv.bad=#zz,other,tv.ok=1,tv.Upper=x\"}]}]}",
                NULL);
        size_t n = 0;
        if (!l)
                return;
        const tv_lvm_tag *t = tv_lv_tags(tv_lv_list_get(l, 0), &n);
        CHECK_INT(n, 1);
        if (n == 1) {
                CHECK_STR(t[0].key, "ok");
                CHECK_STR(t[0].value, "1");
        }
}
