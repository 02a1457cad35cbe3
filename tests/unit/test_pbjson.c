/* pbjson: proto3 JSON <-> protobuf-c through the real CSI descriptors and
 * the well-known types compiled next to them. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "csi.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "thinvault/pbjson.h"
#include "thinvault/util.h"
#include "tv_test.h"

static void message_freep(ProtobufCMessage **m) {
        protobuf_c_message_free_unpacked(*m, NULL);
}
#define _cleanup_message_ _cleanup_(message_freep)

/* Parse that must succeed; NULL (and a recorded failure) otherwise. */
static ProtobufCMessage *parse_ok_at(const char *file, int line, const ProtobufCMessageDescriptor *desc,
                                     const char *json) {
        _cleanup_free_ char *err = NULL;
        ProtobufCMessage *m = NULL;
        int r = tv_pbjson_parse(desc, json, &m, &err);

        if (r < 0 || !m) {
                tv_test_fail(file, line, "parse %s as %s: %d (%s)", json, desc->name, r, err ? err : "no message");
                return NULL;
        }
        return m;
}
#define parse_ok(desc, json) parse_ok_at(__FILE__, __LINE__, desc, json)

/* Parse that must fail with -EINVAL; returns the error text (caller frees). */
static char *parse_err_at(const char *file, int line, const ProtobufCMessageDescriptor *desc, const char *json) {
        ProtobufCMessage *m = NULL;
        char *err = NULL;
        int r = tv_pbjson_parse(desc, json, &m, &err);

        if (r != -EINVAL || m || !err) {
                tv_test_fail(file, line, "parse %s as %s: %d, expected -EINVAL with a message", json, desc->name, r);
                protobuf_c_message_free_unpacked(m, NULL);
                free(err);
                return NULL;
        }
        return err;
}
#define parse_err(desc, json) parse_err_at(__FILE__, __LINE__, desc, json)

static char *render_at(const char *file, int line, const ProtobufCMessage *m, const tv_pbjson_options *opts) {
        char *json = NULL;
        int r;

        if (!m)
                return NULL;
        r = tv_pbjson_render(m, opts, &json);
        if (r < 0) {
                tv_test_fail(file, line, "render %s: %d", m->descriptor->name, r);
                return NULL;
        }
        return json;
}
#define render(m, opts) render_at(__FILE__, __LINE__, m, opts)

/* Both messages serialize to the same bytes. */
static bool same_wire(const ProtobufCMessage *a, const ProtobufCMessage *b) {
        size_t la, lb;
        bool same;

        if (!a || !b)
                return false;
        la = protobuf_c_message_get_packed_size(a);
        lb = protobuf_c_message_get_packed_size(b);
        if (la != lb)
                return false;
        _cleanup_free_ uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);
        if (!pa || !pb)
                return false;
        protobuf_c_message_pack(a, pa);
        protobuf_c_message_pack(b, pb);
        same = memcmp(pa, pb, la) == 0;
        return same;
}

#define CHECK_CONTAINS(haystack, needle)                                                           \
        do {                                                                                       \
                const char *_h = (haystack), *_n = (needle);                                       \
                if (!_h || !strstr(_h, _n))                                                        \
                        tv_test_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"",         \
                                     _h ? _h : "(null)", _n);                                      \
        } while (0)

#define CHECK_STARTS(s, prefix)                                                                    \
        do {                                                                                       \
                const char *_s = (s), *_p = (prefix);                                              \
                if (!_s || strncmp(_s, _p, strlen(_p)) != 0)                                       \
                        tv_test_fail(__FILE__, __LINE__, "\"%s\" does not start with \"%s\"",      \
                                     _s ? _s : "(null)", _p);                                      \
        } while (0)

static bool field_named_secrets(const ProtobufCMessageDescriptor *msg, const ProtobufCFieldDescriptor *f) {
        return strcmp(f->name, "secrets") == 0;
}

#define CVR (&csi__v1__create_volume_request__descriptor)

static const char create_volume_json[] =
        "{\"name\": \"pvc-1\","
        " \"capacity_range\": {\"required_bytes\": \"1073741824\", \"limit_bytes\": 2147483648},"
        " \"volume_capabilities\": [{\"mount\": {\"fs_type\": \"ext4\", \"mount_flags\": [\"noatime\", \"discard\"]},"
        "                            \"access_mode\": {\"mode\": \"SINGLE_NODE_WRITER\"}}],"
        " \"parameters\": {\"tenant\": \"team-a\", \"pool\": \"tvpool\"},"
        " \"secrets\": {\"passphrase\": \"hunter2\"}}";

static const char create_volume_canonical[] =
        "{\"name\":\"pvc-1\","
        "\"capacityRange\":{\"requiredBytes\":\"1073741824\",\"limitBytes\":\"2147483648\"},"
        "\"volumeCapabilities\":[{\"mount\":{\"fsType\":\"ext4\",\"mountFlags\":[\"noatime\",\"discard\"]},"
        "\"accessMode\":{\"mode\":\"SINGLE_NODE_WRITER\"}}],"
        "\"parameters\":{\"tenant\":\"team-a\",\"pool\":\"tvpool\"},"
        "\"secrets\":{\"passphrase\":\"hunter2\"}}";

TEST(test_pbjson_create_volume_request_parses_every_field) {
        _cleanup_message_ ProtobufCMessage *m = parse_ok(CVR, create_volume_json);
        const Csi__V1__CreateVolumeRequest *req = (const Csi__V1__CreateVolumeRequest *)m;

        if (!req)
                return;
        CHECK_STR(req->name, "pvc-1");
        CHECK(req->capacity_range);
        CHECK_INT(req->capacity_range->required_bytes, 1073741824);
        CHECK_INT(req->capacity_range->limit_bytes, 2147483648LL);
        CHECK_INT(req->n_volume_capabilities, 1);
        const Csi__V1__VolumeCapability *cap = req->volume_capabilities[0];
        CHECK_INT(cap->access_type_case, CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT);
        CHECK_STR(cap->mount->fs_type, "ext4");
        CHECK_INT(cap->mount->n_mount_flags, 2);
        CHECK_STR(cap->mount->mount_flags[0], "noatime");
        CHECK_STR(cap->mount->mount_flags[1], "discard");
        CHECK(cap->mount->volume_mount_group == protobuf_c_empty_string); /* unset: the default */
        CHECK_INT(cap->access_mode->mode, CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_WRITER);
        CHECK_INT(req->n_parameters, 2);
        CHECK_STR(req->parameters[0]->key, "tenant");
        CHECK_STR(req->parameters[0]->value, "team-a");
        CHECK_STR(req->parameters[1]->key, "pool");
        CHECK_STR(req->parameters[1]->value, "tvpool");
        CHECK_INT(req->n_secrets, 1);
        CHECK_STR(req->secrets[0]->value, "hunter2");
        CHECK(req->volume_content_source == NULL);
        CHECK_INT(req->n_mutable_parameters, 0);
        CHECK(protobuf_c_message_check(m));
}

TEST(test_pbjson_create_volume_request_round_trips_through_canonical_json) {
        _cleanup_message_ ProtobufCMessage *m = parse_ok(CVR, create_volume_json);
        _cleanup_free_ char *json = render(m, NULL);
        _cleanup_message_ ProtobufCMessage *again = json ? parse_ok(CVR, json) : NULL;
        _cleanup_free_ char *json2 = render(again, NULL);

        CHECK_STR(json, create_volume_canonical);
        CHECK(same_wire(m, again));
        CHECK_STR(json2, json);
}

TEST(test_pbjson_parse_camel_and_snake_names_are_equal) {
        _cleanup_message_ ProtobufCMessage *snake = parse_ok(CVR, create_volume_json);
        _cleanup_message_ ProtobufCMessage *camel = parse_ok(CVR, create_volume_canonical);
        _cleanup_message_ ProtobufCMessage *mixed = parse_ok(
                CVR, "{\"name\":\"pvc-1\",\"capacityRange\":{\"required_bytes\":1073741824,\"limitBytes\":2147483648},"
                     "\"volume_capabilities\":[{\"mount\":{\"fsType\":\"ext4\",\"mount_flags\":[\"noatime\",\"discard\"]},"
                     "\"accessMode\":{\"mode\":1}}],\"parameters\":{\"tenant\":\"team-a\",\"pool\":\"tvpool\"},"
                     "\"secrets\":{\"passphrase\":\"hunter2\"}}");

        CHECK(same_wire(snake, camel));
        CHECK(same_wire(snake, mixed));
}

TEST(test_pbjson_parsed_request_serializes_like_one_built_in_c) {
        Csi__V1__CapacityRange range = CSI__V1__CAPACITY_RANGE__INIT;
        Csi__V1__VolumeCapability__MountVolume mount = CSI__V1__VOLUME_CAPABILITY__MOUNT_VOLUME__INIT;
        Csi__V1__VolumeCapability__AccessMode mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__INIT;
        Csi__V1__VolumeCapability cap = CSI__V1__VOLUME_CAPABILITY__INIT;
        Csi__V1__VolumeCapability *caps[] = {&cap};
        Csi__V1__CreateVolumeRequest__ParametersEntry p1 = CSI__V1__CREATE_VOLUME_REQUEST__PARAMETERS_ENTRY__INIT,
                                                      p2 = CSI__V1__CREATE_VOLUME_REQUEST__PARAMETERS_ENTRY__INIT;
        Csi__V1__CreateVolumeRequest__ParametersEntry *params[] = {&p1, &p2};
        Csi__V1__CreateVolumeRequest__SecretsEntry s1 = CSI__V1__CREATE_VOLUME_REQUEST__SECRETS_ENTRY__INIT;
        Csi__V1__CreateVolumeRequest__SecretsEntry *secrets[] = {&s1};
        Csi__V1__CreateVolumeRequest req = CSI__V1__CREATE_VOLUME_REQUEST__INIT;
        char *flags[] = {"noatime", "discard"};

        range.required_bytes = 1073741824;
        range.limit_bytes = 2147483648LL;
        mount.fs_type = "ext4";
        mount.n_mount_flags = 2;
        mount.mount_flags = flags;
        mode.mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_WRITER;
        cap.access_type_case = CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT;
        cap.mount = &mount;
        cap.access_mode = &mode;
        p1.key = "tenant";
        p1.value = "team-a";
        p2.key = "pool";
        p2.value = "tvpool";
        s1.key = "passphrase";
        s1.value = "hunter2";
        req.name = "pvc-1";
        req.capacity_range = &range;
        req.n_volume_capabilities = 1;
        req.volume_capabilities = caps;
        req.n_parameters = 2;
        req.parameters = params;
        req.n_secrets = 1;
        req.secrets = secrets;

        _cleanup_message_ ProtobufCMessage *parsed = parse_ok(CVR, create_volume_json);
        _cleanup_free_ char *json = render(&req.base, NULL);
        CHECK(same_wire(parsed, &req.base));
        CHECK_STR(json, create_volume_canonical);
}

TEST(test_pbjson_render_of_unpacked_wire_message_is_canonical) {
        _cleanup_message_ ProtobufCMessage *m = parse_ok(CVR, create_volume_json);
        _cleanup_free_ uint8_t *wire = NULL;
        _cleanup_message_ ProtobufCMessage *unpacked = NULL;
        size_t len;

        if (!m)
                return;
        len = protobuf_c_message_get_packed_size(m);
        wire = malloc(len);
        CHECK(wire);
        if (!wire)
                return;
        protobuf_c_message_pack(m, wire);
        unpacked = protobuf_c_message_unpack(CVR, NULL, len, wire);
        CHECK(unpacked);
        _cleanup_free_ char *json = render(unpacked, NULL);
        CHECK_STR(json, create_volume_canonical);
}

TEST(test_pbjson_render_redacts_secret_map_values_and_keeps_keys) {
        tv_pbjson_options opts = {.is_secret = field_named_secrets};
        _cleanup_message_ ProtobufCMessage *m = parse_ok(CVR, create_volume_json);
        _cleanup_free_ char *redacted = render(m, &opts);
        _cleanup_free_ char *plain = render(m, NULL);

        CHECK_CONTAINS(redacted, "\"secrets\":{\"passphrase\":\"<redacted>\"}");
        CHECK(redacted && !strstr(redacted, "hunter2"));
        CHECK_CONTAINS(redacted, "\"parameters\":{\"tenant\":\"team-a\",\"pool\":\"tvpool\"}");
        CHECK_CONTAINS(plain, "\"passphrase\":\"hunter2\"");
}

static bool every_field_secret(const ProtobufCMessageDescriptor *msg, const ProtobufCFieldDescriptor *f) {
        return msg == CVR && (strcmp(f->name, "name") == 0 || strcmp(f->name, "volume_capabilities") == 0 ||
                              strcmp(f->name, "capacity_range") == 0);
}

TEST(test_pbjson_render_redacts_strings_messages_and_repeated_elements) {
        tv_pbjson_options opts = {.is_secret = every_field_secret};
        _cleanup_message_ ProtobufCMessage *m = parse_ok(
                CVR, "{\"name\":\"pvc-1\",\"capacityRange\":{\"requiredBytes\":\"5\"},"
                     "\"volumeCapabilities\":[{\"block\":{}},{\"block\":{}}]}");
        _cleanup_free_ char *json = render(m, &opts);

        CHECK_STR(json, "{\"name\":\"<redacted>\",\"capacityRange\":\"<redacted>\","
                        "\"volumeCapabilities\":[\"<redacted>\",\"<redacted>\"]}");
}

TEST(test_pbjson_render_pretty_indents_by_two_spaces) {
        tv_pbjson_options opts = {.pretty = true};
        _cleanup_message_ ProtobufCMessage *m =
                parse_ok(CVR, "{\"name\":\"pvc-1\",\"parameters\":{\"tenant\":\"team-a\"}}");
        _cleanup_free_ char *json = render(m, &opts);

        CHECK_STR(json, "{\n  \"name\": \"pvc-1\",\n  \"parameters\": {\n    \"tenant\": \"team-a\"\n  }\n}");
}

TEST(test_pbjson_render_omits_defaults_but_prints_set_empty_messages) {
        _cleanup_message_ ProtobufCMessage *m = parse_ok(
                CVR, "{\"name\":\"\",\"capacityRange\":{\"requiredBytes\":\"0\",\"limitBytes\":0},"
                     "\"volumeCapabilities\":[{\"block\":{},\"accessMode\":{\"mode\":\"UNKNOWN\"}}],"
                     "\"parameters\":{},\"secrets\":{\"empty\":\"\"}}");
        _cleanup_free_ char *json = render(m, NULL);
        _cleanup_message_ ProtobufCMessage *empty = parse_ok(CVR, "{}");
        _cleanup_free_ char *empty_json = render(empty, NULL);

        /* A map value is printed even when empty: the key is the content. */
        CHECK_STR(json, "{\"capacityRange\":{},\"volumeCapabilities\":[{\"block\":{},\"accessMode\":{}}],"
                        "\"secrets\":{\"empty\":\"\"}}");
        CHECK_STR(empty_json, "{}");
}

TEST(test_pbjson_null_means_unset) {
        _cleanup_message_ ProtobufCMessage *m = parse_ok(
                CVR, "{\"name\":null,\"capacityRange\":null,\"volumeCapabilities\":null,\"parameters\":null,"
                     "\"volumeContentSource\":{\"snapshot\":null,\"volume\":{\"volumeId\":\"v1\"}}}");
        const Csi__V1__CreateVolumeRequest *req = (const Csi__V1__CreateVolumeRequest *)m;
        _cleanup_free_ char *json = render(m, NULL);

        if (!req)
                return;
        CHECK(req->name == protobuf_c_empty_string);
        CHECK(req->capacity_range == NULL);
        CHECK_INT(req->n_volume_capabilities, 0);
        CHECK_INT(req->volume_content_source->type_case, CSI__V1__VOLUME_CONTENT_SOURCE__TYPE_VOLUME);
        CHECK_STR(json, "{\"volumeContentSource\":{\"volume\":{\"volumeId\":\"v1\"}}}");
}

TEST(test_pbjson_int64_accepts_string_and_number_and_prints_a_string) {
        static const struct {
                const char *json;
                int64_t want;
                const char *printed;
        } cases[] = {
                {"{\"capacityRange\":{\"requiredBytes\":\"1073741824\"}}", 1073741824, "\"1073741824\""},
                {"{\"capacityRange\":{\"requiredBytes\":1073741824}}", 1073741824, "\"1073741824\""},
                {"{\"capacityRange\":{\"requiredBytes\":\"9223372036854775807\"}}", INT64_MAX, "\"9223372036854775807\""},
                {"{\"capacityRange\":{\"requiredBytes\":9223372036854775807}}", INT64_MAX, "\"9223372036854775807\""},
                {"{\"capacityRange\":{\"requiredBytes\":\"-9223372036854775808\"}}", INT64_MIN,
                 "\"-9223372036854775808\""},
                {"{\"capacityRange\":{\"requiredBytes\":-9223372036854775808}}", INT64_MIN, "\"-9223372036854775808\""},
                {"{\"capacityRange\":{\"requiredBytes\":\"1e3\"}}", 1000, "\"1000\""},
                {"{\"capacityRange\":{\"requiredBytes\":2.0}}", 2, "\"2\""},
                {"{\"capacityRange\":{\"requiredBytes\":\"-0\"}}", 0, NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_message_ ProtobufCMessage *m = parse_ok(CVR, cases[i].json);
                const Csi__V1__CreateVolumeRequest *req = (const Csi__V1__CreateVolumeRequest *)m;
                _cleanup_free_ char *json = render(m, NULL);

                if (!req)
                        continue;
                CHECK_INT(req->capacity_range->required_bytes, cases[i].want);
                if (cases[i].printed)
                        CHECK_CONTAINS(json, cases[i].printed);
                else
                        CHECK_STR(json, "{\"capacityRange\":{}}");
        }
}

TEST(test_pbjson_int64_overflow_is_rejected_naming_the_path) {
        _cleanup_free_ char *as_string =
                parse_err(CVR, "{\"capacity_range\":{\"required_bytes\":\"9223372036854775808\"}}");
        _cleanup_free_ char *negative =
                parse_err(CVR, "{\"capacity_range\":{\"limit_bytes\":\"-9223372036854775809\"}}");
        _cleanup_free_ char *huge = parse_err(CVR, "{\"capacity_range\":{\"required_bytes\":\"99999999999999999999\"}}");
        /* Beyond jansson's integers: still reported at the field. */
        _cleanup_free_ char *as_number =
                parse_err(CVR, "{\"capacity_range\":{\"required_bytes\":9223372036854775808}}");
        _cleanup_free_ char *far_out = parse_err(CVR, "{\"capacity_range\":{\"required_bytes\":1e30}}");

        CHECK_STR(as_string, "capacity_range.required_bytes: \"9223372036854775808\" is out of range for int64 "
                             "(-9223372036854775808..9223372036854775807)");
        CHECK_STARTS(negative, "capacity_range.limit_bytes: \"-9223372036854775809\" is out of range for int64");
        CHECK_STARTS(huge, "capacity_range.required_bytes: \"99999999999999999999\" is out of range for int64");
        CHECK_STR(as_number, "capacity_range.required_bytes: 9223372036854775808 cannot be read exactly from a "
                             "JSON number; write int64 values beyond 2^53 as strings");
        CHECK_STARTS(far_out, "capacity_range.required_bytes: 1e+30 is out of range for int64");
}

TEST(test_pbjson_integers_reject_fractions_and_non_numbers) {
        _cleanup_free_ char *fraction = parse_err(CVR, "{\"capacityRange\":{\"requiredBytes\":1.5}}");
        _cleanup_free_ char *text = parse_err(CVR, "{\"capacityRange\":{\"requiredBytes\":\"12abc\"}}");
        _cleanup_free_ char *spaced = parse_err(CVR, "{\"capacityRange\":{\"requiredBytes\":\" 12\"}}");
        _cleanup_free_ char *boolean = parse_err(CVR, "{\"capacityRange\":{\"requiredBytes\":true}}");
        _cleanup_free_ char *inexact = parse_err(CVR, "{\"capacityRange\":{\"requiredBytes\":9007199254740993.0}}");

        CHECK_STR(fraction, "capacityRange.requiredBytes: 1.5 is not an integer (int64)");
        CHECK_STR(text, "capacityRange.requiredBytes: \"12abc\" is not an integer (int64)");
        CHECK_STR(spaced, "capacityRange.requiredBytes: \" 12\" is not an integer (int64)");
        CHECK_STR(boolean, "capacityRange.requiredBytes: expected int64 as a number or a decimal string, got true");
        CHECK_CONTAINS(inexact, "cannot be read exactly from a JSON number");
}

TEST(test_pbjson_int32_accepts_numeric_strings_and_rejects_out_of_range) {
        const ProtobufCMessageDescriptor *d = &csi__v1__list_volumes_request__descriptor;
        _cleanup_message_ ProtobufCMessage *m = parse_ok(d, "{\"maxEntries\":\"5\",\"startingToken\":\"t\"}");
        _cleanup_message_ ProtobufCMessage *neg = parse_ok(d, "{\"max_entries\":-2147483648}");
        _cleanup_free_ char *json = render(m, NULL);
        _cleanup_free_ char *big = parse_err(d, "{\"max_entries\":2147483648}");
        _cleanup_free_ char *big_string = parse_err(d, "{\"max_entries\":\"2147483648\"}");

        if (m)
                CHECK_INT(((Csi__V1__ListVolumesRequest *)m)->max_entries, 5);
        if (neg)
                CHECK_INT(((Csi__V1__ListVolumesRequest *)neg)->max_entries, INT32_MIN);
        CHECK_STR(json, "{\"maxEntries\":5,\"startingToken\":\"t\"}");
        CHECK_STR(big, "max_entries: 2147483648 is out of range for int32 (-2147483648..2147483647)");
        CHECK_STARTS(big_string, "max_entries: \"2147483648\" is out of range for int32");
}

TEST(test_pbjson_uint64_takes_its_full_range_as_a_string) {
        const ProtobufCMessageDescriptor *d = &google__protobuf__uint64_value__descriptor;
        _cleanup_message_ ProtobufCMessage *m = parse_ok(d, "\"18446744073709551615\"");
        _cleanup_free_ char *json = render(m, NULL);
        _cleanup_free_ char *negative = parse_err(d, "-1");
        _cleanup_free_ char *as_number = parse_err(d, "18446744073709551615");

        if (m)
                CHECK(((Google__Protobuf__UInt64Value *)m)->value == UINT64_MAX);
        CHECK_STR(json, "\"18446744073709551615\"");
        CHECK_STR(negative, "-1 is out of range for uint64 (0..18446744073709551615)");
        CHECK_CONTAINS(as_number, "write uint64 values beyond 2^53 as strings");
}

TEST(test_pbjson_enum_accepts_name_and_number_and_prints_the_name) {
        _cleanup_message_ ProtobufCMessage *by_name =
                parse_ok(CVR, "{\"volumeCapabilities\":[{\"accessMode\":{\"mode\":\"MULTI_NODE_MULTI_WRITER\"}}]}");
        _cleanup_message_ ProtobufCMessage *by_number =
                parse_ok(CVR, "{\"volumeCapabilities\":[{\"accessMode\":{\"mode\":5}}]}");
        _cleanup_message_ ProtobufCMessage *unknown_number =
                parse_ok(CVR, "{\"volumeCapabilities\":[{\"accessMode\":{\"mode\":99}}]}");
        _cleanup_free_ char *json = render(by_number, NULL);
        _cleanup_free_ char *unknown_json = render(unknown_number, NULL);

        CHECK(same_wire(by_name, by_number));
        CHECK_STR(json, "{\"volumeCapabilities\":[{\"accessMode\":{\"mode\":\"MULTI_NODE_MULTI_WRITER\"}}]}");
        /* proto3 enums are open: an unknown number survives as a number. */
        CHECK_STR(unknown_json, "{\"volumeCapabilities\":[{\"accessMode\":{\"mode\":99}}]}");
}

TEST(test_pbjson_unknown_enum_name_is_rejected_naming_the_path) {
        _cleanup_free_ char *err =
                parse_err(CVR, "{\"volume_capabilities\":[{\"access_mode\":{\"mode\":\"FOO\"}}]}");
        _cleanup_free_ char *fraction =
                parse_err(CVR, "{\"volume_capabilities\":[{\"access_mode\":{\"mode\":1.5}}]}");
        _cleanup_free_ char *object = parse_err(CVR, "{\"volume_capabilities\":[{\"access_mode\":{\"mode\":{}}}]}");

        CHECK_STARTS(err, "volume_capabilities[0].access_mode.mode: unknown enum value \"FOO\" for "
                          "csi.v1.VolumeCapability.AccessMode.Mode (expected one of: UNKNOWN, SINGLE_NODE_WRITER,");
        CHECK_STR(fraction, "volume_capabilities[0].access_mode.mode: 1.5 is not an integer (enum)");
        CHECK_STR(object, "volume_capabilities[0].access_mode.mode: expected a value name or number of "
                          "csi.v1.VolumeCapability.AccessMode.Mode, got an object");
}

TEST(test_pbjson_bytes_accept_standard_and_url_safe_base64_with_or_without_padding) {
        const ProtobufCMessageDescriptor *d = &google__protobuf__bytes_value__descriptor;
        static const char *const spellings[] = {"\"+/8=\"", "\"+/8\"", "\"-_8=\"", "\"-_8\""};
        static const uint8_t want[] = {0xfb, 0xff};

        for (size_t i = 0; i < ELEMENTSOF(spellings); i++) {
                _cleanup_message_ ProtobufCMessage *m = parse_ok(d, spellings[i]);
                const Google__Protobuf__BytesValue *b = (const Google__Protobuf__BytesValue *)m;
                _cleanup_free_ char *json = render(m, NULL);

                if (!b)
                        continue;
                CHECK_INT(b->value.len, 2);
                CHECK(b->value.len == 2 && memcmp(b->value.data, want, 2) == 0);
                CHECK_STR(json, "\"+/8=\"");
        }

        _cleanup_message_ ProtobufCMessage *three = parse_ok(d, "\"----\"");
        _cleanup_free_ char *three_json = render(three, NULL);
        _cleanup_message_ ProtobufCMessage *empty = parse_ok(d, "\"\"");
        _cleanup_free_ char *empty_json = render(empty, NULL);

        if (three)
                CHECK(((Google__Protobuf__BytesValue *)three)->value.len == 3 &&
                      memcmp(((Google__Protobuf__BytesValue *)three)->value.data, "\xfb\xef\xbe", 3) == 0);
        CHECK_STR(three_json, "\"++++\"");
        if (empty)
                CHECK_INT(((Google__Protobuf__BytesValue *)empty)->value.len, 0);
        CHECK_STR(empty_json, "\"\""); /* a set wrapper prints even its default */
}

TEST(test_pbjson_proto2_optional_bytes_sets_its_has_flag) {
        const ProtobufCMessageDescriptor *d = &google__protobuf__uninterpreted_option__descriptor;
        _cleanup_message_ ProtobufCMessage *m = parse_ok(d, "{\"stringValue\":\"aGk\",\"identifierValue\":\"x\"}");
        const Google__Protobuf__UninterpretedOption *o = (const Google__Protobuf__UninterpretedOption *)m;
        _cleanup_free_ char *json = render(m, NULL);

        if (!o)
                return;
        CHECK(o->has_string_value);
        CHECK(o->string_value.len == 2 && memcmp(o->string_value.data, "hi", 2) == 0);
        CHECK(!o->has_double_value);
        CHECK_STR(json, "{\"identifierValue\":\"x\",\"stringValue\":\"aGk=\"}");
}

TEST(test_pbjson_invalid_base64_is_rejected_without_echoing_it) {
        const ProtobufCMessageDescriptor *d = &google__protobuf__uninterpreted_option__descriptor;
        static const char *const bad[] = {
                "{\"string_value\":\"a$bc\"}",  "{\"string_value\":\"A\"}",     "{\"string_value\":\"QQ=A\"}",
                "{\"string_value\":\"QQ===\"}", "{\"string_value\":\"QQ=\"}", "{\"string_value\":\"Q Q==\"}",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *err = parse_err(d, bad[i]);
                CHECK_STR(err, "string_value: invalid base64 (standard or URL-safe alphabet, padding optional)");
        }
        _cleanup_free_ char *number = parse_err(d, "{\"stringValue\":5}");
        CHECK_STR(number, "stringValue: expected bytes as a base64 string, got a number");
}

TEST(test_pbjson_timestamp_round_trips_as_rfc3339) {
        const ProtobufCMessageDescriptor *d = &csi__v1__snapshot__descriptor;
        static const char json_in[] = "{\"sizeBytes\":\"10\",\"snapshotId\":\"snap-1\","
                                      "\"creationTime\":\"2026-11-25T16:54:27.123Z\",\"readyToUse\":true}";
        _cleanup_message_ ProtobufCMessage *m = parse_ok(d, json_in);
        const Csi__V1__Snapshot *snap = (const Csi__V1__Snapshot *)m;
        _cleanup_free_ char *json = render(m, NULL);

        if (!snap)
                return;
        CHECK_INT(snap->creation_time->seconds, 1795625667);
        CHECK_INT(snap->creation_time->nanos, 123000000);
        CHECK_STR(json, json_in);
}

TEST(test_pbjson_timestamp_accepts_offsets_and_prints_utc_with_3_6_or_9_digits) {
        const ProtobufCMessageDescriptor *d = &google__protobuf__timestamp__descriptor;
        static const struct {
                const char *in;
                int64_t seconds;
                int32_t nanos;
                const char *out;
        } cases[] = {
                {"\"2026-11-25T17:54:27.123+01:00\"", 1795625667, 123000000, "\"2026-11-25T16:54:27.123Z\""},
                {"\"2026-11-25t16:24:27-00:30\"", 1795625667, 0, "\"2026-11-25T16:54:27Z\""},
                {"\"1970-01-01T00:00:00Z\"", 0, 0, "\"1970-01-01T00:00:00Z\""},
                {"\"1969-12-31T23:59:59.5Z\"", -1, 500000000, "\"1969-12-31T23:59:59.500Z\""},
                {"\"2024-02-29T12:00:00.000001Z\"", 1709208000, 1000, "\"2024-02-29T12:00:00.000001Z\""},
                {"\"0001-01-01T00:00:00Z\"", -62135596800LL, 0, "\"0001-01-01T00:00:00Z\""},
                {"\"9999-12-31T23:59:59.999999999Z\"", 253402300799LL, 999999999,
                 "\"9999-12-31T23:59:59.999999999Z\""},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_message_ ProtobufCMessage *m = parse_ok(d, cases[i].in);
                const Google__Protobuf__Timestamp *ts = (const Google__Protobuf__Timestamp *)m;
                _cleanup_free_ char *json = render(m, NULL);

                if (!ts)
                        continue;
                CHECK_INT(ts->seconds, cases[i].seconds);
                CHECK_INT(ts->nanos, cases[i].nanos);
                CHECK_STR(json, cases[i].out);
        }
}

TEST(test_pbjson_malformed_timestamp_is_rejected_naming_the_path) {
        const ProtobufCMessageDescriptor *d = &csi__v1__snapshot__descriptor;
        static const char *const bad[] = {
                "{\"creation_time\":\"2026-02-29T00:00:00Z\"}",          /* 2026 is no leap year */
                "{\"creation_time\":\"2026-11-25 16:54:27Z\"}",          /* no T */
                "{\"creation_time\":\"2026-11-25T16:54:27\"}",           /* no offset */
                "{\"creation_time\":\"2026-11-25T16:54:27.1234567890Z\"}", /* 10 digits */
                "{\"creation_time\":\"2026-11-25T24:00:00Z\"}",
                "{\"creation_time\":\"0000-12-31T00:00:00Z\"}",
                "{\"creation_time\":\"0001-01-01T00:00:00+00:01\"}", /* before year 1 in UTC */
                "{\"creation_time\":\"yesterday\"}",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *err = parse_err(d, bad[i]);
                CHECK_STARTS(err, "creation_time: \"");
                CHECK_CONTAINS(err, "is not an RFC 3339 timestamp");
        }
        _cleanup_free_ char *number = parse_err(d, "{\"creation_time\":1795625667}");
        CHECK_STR(number, "creation_time: expected an RFC 3339 timestamp string, got a number");
}

TEST(test_pbjson_render_refuses_timestamp_out_of_range) {
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        Csi__V1__Snapshot snap = CSI__V1__SNAPSHOT__INIT;
        char *json = NULL;

        snap.creation_time = &ts;
        ts.nanos = -1;
        CHECK_INT(tv_pbjson_render(&snap.base, NULL, &json), -EINVAL);
        ts.nanos = 0;
        ts.seconds = 253402300800LL;
        CHECK_INT(tv_pbjson_render(&snap.base, NULL, &json), -EINVAL);
        CHECK(json == NULL);
}

TEST(test_pbjson_probe_response_ready_false_is_printed) {
        const ProtobufCMessageDescriptor *d = &csi__v1__probe_response__descriptor;
        _cleanup_message_ ProtobufCMessage *not_ready = parse_ok(d, "{\"ready\":false}");
        _cleanup_message_ ProtobufCMessage *unknown = parse_ok(d, "{\"ready\":null}");
        _cleanup_free_ char *not_ready_json = render(not_ready, NULL);
        _cleanup_free_ char *unknown_json = render(unknown, NULL);
        _cleanup_free_ char *err = parse_err(d, "{\"ready\":\"yes\"}");

        if (not_ready) {
                CHECK(((Csi__V1__ProbeResponse *)not_ready)->ready != NULL);
                CHECK(!((Csi__V1__ProbeResponse *)not_ready)->ready->value);
        }
        if (unknown)
                CHECK(((Csi__V1__ProbeResponse *)unknown)->ready == NULL);
        CHECK_STR(not_ready_json, "{\"ready\":false}");
        CHECK_STR(unknown_json, "{}");
        CHECK_STR(err, "ready: expected true or false, got a string");
}

TEST(test_pbjson_double_and_float_take_numbers_and_special_strings) {
        const ProtobufCMessageDescriptor *dd = &google__protobuf__double_value__descriptor;
        const ProtobufCMessageDescriptor *fd = &google__protobuf__float_value__descriptor;
        _cleanup_message_ ProtobufCMessage *nan = parse_ok(dd, "\"NaN\"");
        _cleanup_message_ ProtobufCMessage *inf = parse_ok(dd, "\"-Infinity\"");
        _cleanup_message_ ProtobufCMessage *half = parse_ok(dd, "\"1.5\"");
        _cleanup_message_ ProtobufCMessage *zero = parse_ok(dd, "0");
        _cleanup_message_ ProtobufCMessage *f = parse_ok(fd, "0.25");
        _cleanup_free_ char *nan_json = render(nan, NULL), *inf_json = render(inf, NULL),
                            *half_json = render(half, NULL), *zero_json = render(zero, NULL),
                            *f_json = render(f, NULL);
        _cleanup_free_ char *too_big = parse_err(fd, "1e39");
        _cleanup_free_ char *word = parse_err(dd, "\"many\"");

        if (nan)
                CHECK(isnan(((Google__Protobuf__DoubleValue *)nan)->value));
        CHECK_STR(nan_json, "\"NaN\"");
        CHECK_STR(inf_json, "\"-Infinity\"");
        CHECK_STR(half_json, "1.5");
        CHECK_STR(zero_json, "0.0");
        CHECK_STR(f_json, "0.25");
        CHECK_STR(too_big, "1e+39 is out of range for float");
        CHECK_STARTS(word, "\"many\" is not a number (double;");
}

TEST(test_pbjson_unknown_field_is_rejected_naming_field_and_type) {
        _cleanup_free_ char *err = parse_err(CVR, "{\"volume_capabilities\":[{\"mount\":{\"fsTyp\":\"xfs\"}}]}");
        _cleanup_free_ char *top = parse_err(CVR, "{\"nmae\":\"pvc-1\"}");
        _cleanup_free_ char *empty = parse_err(&csi__v1__probe_request__descriptor, "{\"verbose\":true}");

        CHECK_STR(err, "volume_capabilities[0].mount.fsTyp: unknown field \"fsTyp\" in "
                       "csi.v1.VolumeCapability.MountVolume (fields: fs_type, mount_flags, volume_mount_group)");
        CHECK_STARTS(top, "nmae: unknown field \"nmae\" in csi.v1.CreateVolumeRequest (fields: name, ");
        CHECK_STR(empty, "verbose: unknown field \"verbose\" in csi.v1.ProbeRequest (it has no fields)");
}

TEST(test_pbjson_wrong_json_type_is_rejected_naming_the_path) {
        _cleanup_free_ char *name = parse_err(CVR, "{\"name\":5}");
        _cleanup_free_ char *array = parse_err(CVR, "{\"volumeCapabilities\":{}}");
        _cleanup_free_ char *element = parse_err(CVR, "{\"volumeCapabilities\":[{}, 7]}");
        _cleanup_free_ char *map = parse_err(CVR, "{\"parameters\":{\"size\":1}}");
        _cleanup_free_ char *map_type = parse_err(CVR, "{\"parameters\":[]}");
        _cleanup_free_ char *top = parse_err(CVR, "[]");
        _cleanup_free_ char *flags = parse_err(CVR, "{\"volumeCapabilities\":[{\"mount\":{\"mountFlags\":\"ro\"}}]}");

        CHECK_STR(name, "name: expected a string, got a number");
        CHECK_STR(array, "volumeCapabilities: expected an array, got an object");
        CHECK_STR(element, "volumeCapabilities[1]: expected an object (csi.v1.VolumeCapability), got a number");
        CHECK_STR(map, "parameters[\"size\"]: expected a string, got a number");
        CHECK_STR(map_type, "parameters: expected an object (a map of string to string), got an array");
        CHECK_STR(top, "expected an object (csi.v1.CreateVolumeRequest), got an array");
        CHECK_STR(flags, "volumeCapabilities[0].mount.mountFlags: expected an array, got a string");
}

TEST(test_pbjson_null_inside_arrays_and_maps_is_rejected) {
        _cleanup_free_ char *element = parse_err(CVR, "{\"volumeCapabilities\":[null]}");
        _cleanup_free_ char *value = parse_err(CVR, "{\"secrets\":{\"key\":null}}");

        CHECK_STR(element, "volumeCapabilities[0]: null is not allowed in a repeated field");
        CHECK_STR(value, "secrets[\"key\"]: a map value cannot be null");
}

TEST(test_pbjson_two_oneof_members_are_rejected) {
        _cleanup_free_ char *err = parse_err(CVR, "{\"volume_capabilities\":[{\"block\":{},\"mount\":{}}]}");
        _cleanup_free_ char *source = parse_err(
                CVR, "{\"volumeContentSource\":{\"volume\":{\"volumeId\":\"v\"},\"snapshot\":{\"snapshotId\":\"s\"}}}");
        _cleanup_message_ ProtobufCMessage *one = parse_ok(CVR, "{\"volume_capabilities\":[{\"block\":null,\"mount\":{}}]}");

        CHECK_STR(err, "volume_capabilities[0].mount: \"block\" and \"mount\" belong to the same oneof of "
                       "csi.v1.VolumeCapability; set only one");
        CHECK_STR(source, "volumeContentSource.snapshot: \"volume\" and \"snapshot\" belong to the same oneof of "
                          "csi.v1.VolumeContentSource; set only one");
        CHECK(one);
}

TEST(test_pbjson_field_given_under_both_names_is_rejected) {
        const ProtobufCMessageDescriptor *d = &csi__v1__delete_volume_request__descriptor;
        _cleanup_free_ char *both = parse_err(d, "{\"volume_id\":\"a\",\"volumeId\":\"b\"}");
        _cleanup_free_ char *dup = parse_err(d, "{\"volumeId\":\"a\",\"volumeId\":\"b\"}");

        CHECK_STR(both, "volumeId: field volume_id given twice, as \"volume_id\" and \"volumeId\"");
        CHECK_STARTS(dup, "invalid JSON at line 1, column ");
        CHECK_CONTAINS(dup, "duplicate object key");
}

TEST(test_pbjson_truncated_or_invalid_json_is_rejected_with_its_position) {
        _cleanup_free_ char *truncated = parse_err(CVR, "{\"name\": \"pvc-1\"");
        _cleanup_free_ char *empty = parse_err(CVR, "");
        _cleanup_free_ char *trailing = parse_err(CVR, "{} {}");
        _cleanup_free_ char *real_overflow = parse_err(CVR, "{\"name\": 1e999}");

        CHECK_STARTS(truncated, "invalid JSON at line 1, column 16: ");
        CHECK_STARTS(empty, "invalid JSON at line 1, column 0: ");
        CHECK_STARTS(trailing, "invalid JSON at line 1, column ");
        CHECK_STARTS(real_overflow, "invalid JSON at line 1, column ");
}

/* {"nestedType":[{"nestedType":[ ... {} ... ]}]}: `depth` messages deep. */
static char *descriptor_nest(unsigned depth) {
        static const char open[] = "{\"nestedType\":[", close[] = "]}";
        size_t len = (depth - 1) * (sizeof(open) - 1 + sizeof(close) - 1) + 3;
        char *s = malloc(len), *p = s;

        if (!s)
                return NULL;
        for (unsigned i = 1; i < depth; i++)
                p = stpcpy(p, open);
        p = stpcpy(p, "{}");
        for (unsigned i = 1; i < depth; i++)
                p = stpcpy(p, close);
        return s;
}

TEST(test_pbjson_depth_bomb_is_rejected) {
        const ProtobufCMessageDescriptor *d = &google__protobuf__descriptor_proto__descriptor;
        _cleanup_free_ char *deepest = descriptor_nest(TV_PBJSON_MAX_DEPTH);
        _cleanup_free_ char *too_deep = descriptor_nest(TV_PBJSON_MAX_DEPTH + 1);
        _cleanup_free_ char *bomb = descriptor_nest(5000);
        _cleanup_free_ char *brackets = malloc(200001);
        _cleanup_message_ ProtobufCMessage *ok = deepest ? parse_ok(d, deepest) : NULL;

        CHECK(ok);
        _cleanup_free_ char *err = too_deep ? parse_err(d, too_deep) : NULL;
        CHECK_STARTS(err, "nestedType[0].nestedType[0].");
        CHECK_CONTAINS(err, ": messages nested more than 64 deep");
        _cleanup_free_ char *bomb_err = bomb ? parse_err(d, bomb) : NULL;
        CHECK(bomb_err);

        if (brackets) {
                memset(brackets, '[', 200000);
                brackets[200000] = '\0';
                _cleanup_free_ char *bracket_err = parse_err(d, brackets);
                CHECK_STARTS(bracket_err, "invalid JSON at line 1, column ");
        }
}

TEST(test_pbjson_render_refuses_messages_nested_too_deep) {
        const ProtobufCMessageDescriptor *d = &google__protobuf__descriptor_proto__descriptor;
        _cleanup_free_ char *deepest = descriptor_nest(TV_PBJSON_MAX_DEPTH);
        _cleanup_message_ ProtobufCMessage *m = deepest ? parse_ok(d, deepest) : NULL;
        Google__Protobuf__DescriptorProto *inner = (Google__Protobuf__DescriptorProto *)m;
        char *json = NULL;

        if (!inner)
                return;
        _cleanup_free_ char *fits = render(m, NULL);
        CHECK_STR(fits, deepest);

        while (inner->n_nested_type > 0)
                inner = inner->nested_type[0];
        inner->nested_type = calloc(1, sizeof(*inner->nested_type));
        if (!inner->nested_type)
                return;
        inner->n_nested_type = 1;
        inner->nested_type[0] = malloc(sizeof(Google__Protobuf__DescriptorProto));
        if (inner->nested_type[0])
                google__protobuf__descriptor_proto__init(inner->nested_type[0]);
        CHECK_INT(tv_pbjson_render(m, NULL, &json), -EINVAL);
        CHECK(json == NULL);
}

TEST(test_pbjson_proto2_required_field_must_be_given) {
        const ProtobufCMessageDescriptor *d = &google__protobuf__uninterpreted_option__descriptor;
        _cleanup_free_ char *err = parse_err(d, "{\"name\":[{\"namePart\":\"x\"}]}");
        _cleanup_message_ ProtobufCMessage *ok = parse_ok(d, "{\"name\":[{\"namePart\":\"x\",\"isExtension\":false}]}");
        _cleanup_free_ char *json = render(ok, NULL);

        CHECK_STR(err, "name[0]: missing required field \"is_extension\" of google.protobuf.UninterpretedOption.NamePart");
        /* Required fields print even at their default. */
        CHECK_STR(json, "{\"name\":[{\"namePart\":\"x\",\"isExtension\":false}]}");
}

TEST(test_pbjson_nested_message_named_entry_is_an_array_not_a_map) {
        const ProtobufCMessageDescriptor *d = &csi__v1__list_volumes_response__descriptor;
        static const char json_in[] = "{\"entries\":[{\"volume\":{\"capacityBytes\":\"5\",\"volumeId\":\"v1\","
                                      "\"volumeContext\":{\"tenant\":\"team-a\"}}}],\"nextToken\":\"t\"}";
        _cleanup_message_ ProtobufCMessage *m = parse_ok(d, json_in);
        _cleanup_free_ char *json = render(m, NULL);

        CHECK_STR(json, json_in);
}

TEST(test_pbjson_render_refuses_strings_that_are_not_utf8) {
        Csi__V1__CreateVolumeRequest req = CSI__V1__CREATE_VOLUME_REQUEST__INIT;
        Csi__V1__CreateVolumeRequest__ParametersEntry p = CSI__V1__CREATE_VOLUME_REQUEST__PARAMETERS_ENTRY__INIT;
        Csi__V1__CreateVolumeRequest__ParametersEntry *params[] = {&p};
        char *json = NULL;

        req.name = "pvc-\xff";
        CHECK_INT(tv_pbjson_render(&req.base, NULL, &json), -EINVAL);
        req.name = "pvc-1";
        p.key = "\xc3";
        p.value = "v";
        req.n_parameters = 1;
        req.parameters = params;
        CHECK_INT(tv_pbjson_render(&req.base, NULL, &json), -EINVAL);
        CHECK(json == NULL);
}

TEST(test_pbjson_parse_without_error_pointer_still_fails_cleanly) {
        ProtobufCMessage *m = NULL;

        CHECK_INT(tv_pbjson_parse(CVR, "{\"name\":5}", &m, NULL), -EINVAL);
        CHECK_INT(tv_pbjson_parse(CVR, "{", &m, NULL), -EINVAL);
        CHECK_INT(tv_pbjson_parse(CVR, NULL, &m, NULL), -EINVAL);
        CHECK(m == NULL);
}
