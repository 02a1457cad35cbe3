/* thinvault: proto3 JSON <-> protobuf-c messages, driven only by the
 * protobuf-c descriptors, so every CSI message converts without code of its
 * own. Used by `thinvaultctl csi` to build requests and print replies.
 *
 * The mapping is protobuf's canonical proto3 JSON mapping
 * (https://protobuf.dev/programming-guides/json/), with these rules:
 *
 * - Field names: accepted as written in the proto (snake_case) or as
 *   lowerCamelCase; printed as lowerCamelCase. protobuf-c descriptors do not
 *   keep a `[json_name = ...]` option, so the lowerCamelCase name is always
 *   derived from the proto name the way protoc derives it.
 * - Defaults: a singular proto3 field holding its default (0, "", false,
 *   empty bytes, first enum value, no message) is not printed. A message
 *   that is set is printed even when empty (`{}`); a oneof member that is
 *   set is printed even when it holds its default. proto2 `optional`
 *   fields (and proto3 `optional`) are printed when their has_ flag is set.
 * - Integers: 32-bit types are printed as JSON numbers; 64-bit types
 *   (int64, uint64, sint64, fixed64, sfixed64) as JSON strings. Any integer
 *   field accepts a JSON number or a string holding a decimal integer
 *   ("42", "-7", also "1e3" or "2.0" when integral). Values out of the
 *   type's range, fractions, and JSON numbers beyond +-2^53 that cannot be
 *   read exactly (quote those) are errors.
 * - float/double: JSON numbers; "NaN", "Infinity", "-Infinity" as strings.
 * - bool: true/false. string: UTF-8 (input is checked by the JSON parser;
 *   a message string that is not UTF-8 cannot be rendered).
 * - Enums: printed by value name, an unknown number as the number; accepted
 *   by name or by any int32 number (proto3 enums are open).
 * - bytes: printed as standard base64 with padding; accepted in the standard
 *   or URL-safe alphabet, with or without padding.
 * - Repeated fields: JSON arrays (null elements are errors).
 * - Maps: JSON objects. protobuf-c has no map flag: a field is treated as a
 *   map when it is repeated, its type is a message named exactly as protoc
 *   names map entries (`<Parent>.<FieldInCamelCase>Entry`, e.g.
 *   csi.v1.CreateVolumeRequest.ParametersEntry for `parameters`), and that
 *   message has exactly the fields key = 1 and value = 2. protoc refuses
 *   any other message of that name next to a map field, and a hand-written
 *   one with that shape has the same wire format as a map.
 *   Map keys of integer or bool type are written as JSON object keys
 *   ("42", "true"). A null map value is an error.
 * - oneof: at most one member may be set; setting two is an error.
 * - null for a field means "not set".
 * - Well-known types, recognized by full name:
 *   google.protobuf.Timestamp <-> RFC 3339 string ("2026-11-25T16:54:27.123Z";
 *   printed in UTC with 0, 3, 6 or 9 fraction digits; accepted with any
 *   offset and 0..9 fraction digits, years 0001..9999);
 *   google.protobuf.{Double,Float,Int64,UInt64,Int32,UInt32,Bool,String,
 *   Bytes}Value <-> the bare value (printed even when it is the default:
 *   a set BoolValue false prints false).
 *   Any, Duration, FieldMask, Struct, Value and ListValue are not supported:
 *   parsing them is an error, rendering them returns -EOPNOTSUPP.
 * - Unknown JSON field names are errors. Duplicate JSON keys, and one field
 *   given under both of its names, are errors.
 * - Messages may nest at most TV_PBJSON_MAX_DEPTH deep, on input and output.
 */
#ifndef THINVAULT_PBJSON_H
#define THINVAULT_PBJSON_H

#include <stdbool.h>

#include <protobuf-c/protobuf-c.h>

/* Deepest message nesting tv_pbjson_parse() accepts and tv_pbjson_render()
 * prints (the outermost message counts as 1). */
#define TV_PBJSON_MAX_DEPTH 64

/* What tv_pbjson_render() prints as "<redacted>". */
#define TV_PBJSON_REDACTED "<redacted>"

typedef struct {
        /* Called for each field about to be printed, with the descriptor of
         * the message that holds it. When it returns true the field's value
         * is printed as "<redacted>": for a map each value (keys stay
         * visible, so a reader sees which secrets were sent), for a repeated
         * field each element, otherwise the value itself, whatever its type.
         * NULL: nothing is redacted. protobuf-c descriptors do not carry
         * custom options such as (csi_secret), so the callback decides by
         * message and field name. */
        bool (*is_secret)(const ProtobufCMessageDescriptor *msg, const ProtobufCFieldDescriptor *field);
        /* Indent by two spaces, one member per line. false: compact, no
         * whitespace at all. */
        bool pretty;
} tv_pbjson_options;

/* Parse the NUL-terminated proto3 JSON text `json` into a new message of
 * type `desc`. The top level must be a JSON object, except for the
 * well-known types above (a Timestamp is a JSON string, and so on).
 *
 * Returns 0 and sets *ret_msg to the message, which the caller frees with
 * protobuf_c_message_free_unpacked(msg, NULL) (every part of it is
 * allocated with malloc, unset strings point at the descriptor's default).
 * On failure *ret_msg is not written and nothing is leaked:
 *   -EINVAL  the text is not valid JSON or does not fit `desc`; if
 *            ret_error is not NULL, *ret_error is set to a heap string the
 *            caller frees, naming the JSON path and what is wrong, e.g.
 *            `volume_capabilities[0].access_mode.mode: unknown enum value
 *            "FOO" for csi.v1.VolumeCapability.AccessMode.Mode (expected
 *            one of: ...)`. Paths use the field names as written in the
 *            input, [N] for array elements and ["key"] for map keys; string
 *            values from the input are only quoted where they are names or
 *            numbers (enum names, integers, timestamps), never for string or
 *            bytes fields, so a secret does not end up in an error message.
 *   -ENOMEM  out of memory (*ret_error is not written).
 * *ret_error is written only when -EINVAL is returned. */
int tv_pbjson_parse(const ProtobufCMessageDescriptor *desc, const char *json, ProtobufCMessage **ret_msg,
                    char **ret_error);

/* Render `msg` (built by hand, by tv_pbjson_parse() or by
 * protobuf_c_message_unpack()) as proto3 JSON. `opts` may be NULL: compact
 * output, nothing redacted.
 *
 * Returns 0 and sets *ret_json to a NUL-terminated heap string (no trailing
 * newline) the caller frees; on failure *ret_json is not written and
 * nothing is leaked:
 *   -EINVAL      a value cannot be represented: a string that is not UTF-8,
 *                a Timestamp outside 0001..9999 or with nanos outside
 *                0..999999999, messages nested deeper than
 *                TV_PBJSON_MAX_DEPTH, or bytes longer than 1 GiB;
 *   -EOPNOTSUPP  the message holds a well-known type listed as unsupported;
 *   -ENOMEM      out of memory. */
int tv_pbjson_render(const ProtobufCMessage *msg, const tv_pbjson_options *opts, char **ret_json);

#endif
