/* pbjson: proto3 JSON <-> protobuf-c messages from descriptors alone. The
 * contract and the mapping rules are in include/thinvault/pbjson.h.
 *
 * Parsing builds the message in place: every allocation is stored into the
 * message tree as soon as it is made (a oneof's case before its member), so
 * protobuf_c_message_free_unpacked() on the root frees exactly what was
 * built, whichever step fails. That function frees a string unless it is
 * the descriptor's default_value, frees a oneof member only when the case
 * names it, and walks n elements of a repeated array (NULL ones are fine). */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "thinvault/pbjson.h"
#include "thinvault/util.h"

#define MEMBER(msg, offset) ((void *)((char *)(msg) + (offset)))
#define CMEMBER(msg, offset) ((const void *)((const char *)(msg) + (offset)))

/* The proto3 JSON mapping's Timestamp range:
 * 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z. */
#define TIMESTAMP_MIN_SECONDS INT64_C(-62135596800)
#define TIMESTAMP_MAX_SECONDS INT64_C(253402300799)

/* From 2^53 on, a JSON number may not be the integer that was written. */
#define EXACT_DOUBLE_MAX 9007199254740992.0

/* Larger bytes values are refused: OpenSSL's base64 takes int lengths. */
#define BYTES_MAX (1u << 30)

#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

/* json_decrefp() comes with jansson (its json_auto_t uses it). */
#define _cleanup_json_ _cleanup_(json_decrefp)

static inline void message_freep(ProtobufCMessage **m) {
        protobuf_c_message_free_unpacked(*m, NULL);
}

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static char ascii_upper(char c) {
        return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* ---- descriptors ------------------------------------------------------ */

/* protoc's json_name: each '_' dropped and the character after it
 * upper-cased ("volume_capabilities" -> "volumeCapabilities"). */
static char *json_name_new(const char *proto_name) {
        char *s = malloc(strlen(proto_name) + 1), *p = s;
        bool up = false;

        if (!s)
                return NULL;
        for (const char *c = proto_name; *c; c++) {
                if (*c == '_') {
                        up = true;
                        continue;
                }
                *p++ = up ? ascii_upper(*c) : *c;
                up = false;
        }
        *p = '\0';
        return s;
}

static bool json_name_equal(const char *proto_name, const char *key) {
        bool up = false;

        for (const char *c = proto_name; *c; c++) {
                if (*c == '_') {
                        up = true;
                        continue;
                }
                if (*key++ != (up ? ascii_upper(*c) : *c))
                        return false;
                up = false;
        }
        return *key == '\0';
}

static const ProtobufCFieldDescriptor *field_by_key(const ProtobufCMessageDescriptor *desc, const char *key) {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, key);

        if (f)
                return f;
        for (unsigned i = 0; i < desc->n_fields; i++)
                if (json_name_equal(desc->fields[i].name, key))
                        return &desc->fields[i];
        return NULL;
}

/* protoc names the entry message of map field "volume_context"
 * "VolumeContextEntry": '_' dropped, the first character and each one after
 * a '_' upper-cased, "Entry" appended. */
static bool map_entry_name_equal(const char *field_name, const char *entry_name) {
        bool up = true;

        for (const char *c = field_name; *c; c++) {
                if (*c == '_') {
                        up = true;
                        continue;
                }
                if (*entry_name++ != (up ? ascii_upper(*c) : *c))
                        return false;
                up = false;
        }
        return streq(entry_name, "Entry");
}

/* protobuf-c keeps no map flag; see the header for why this test is exact. */
static bool field_is_map(const ProtobufCMessageDescriptor *parent, const ProtobufCFieldDescriptor *f) {
        const ProtobufCMessageDescriptor *entry;
        size_t n;

        if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
                return false;
        entry = f->descriptor;
        if (entry->n_fields != 2 || entry->fields[0].id != 1 || !streq(entry->fields[0].name, "key") ||
            entry->fields[1].id != 2 || !streq(entry->fields[1].name, "value") ||
            entry->fields[0].label == PROTOBUF_C_LABEL_REPEATED ||
            entry->fields[1].label == PROTOBUF_C_LABEL_REPEATED)
                return false;
        n = strlen(parent->name);
        return strncmp(entry->name, parent->name, n) == 0 && entry->name[n] == '.' &&
               map_entry_name_equal(f->name, entry->name + n + 1);
}

typedef enum {
        WKT_NONE,
        WKT_TIMESTAMP,
        WKT_WRAPPER,
        WKT_UNSUPPORTED,
} wkt_kind;

static bool timestamp_fields(const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor **ret_seconds,
                             const ProtobufCFieldDescriptor **ret_nanos) {
        const ProtobufCFieldDescriptor *s = protobuf_c_message_descriptor_get_field_by_name(desc, "seconds");
        const ProtobufCFieldDescriptor *n = protobuf_c_message_descriptor_get_field_by_name(desc, "nanos");

        if (!s || !n || s->type != PROTOBUF_C_TYPE_INT64 || n->type != PROTOBUF_C_TYPE_INT32 ||
            s->label == PROTOBUF_C_LABEL_REPEATED || n->label == PROTOBUF_C_LABEL_REPEATED)
                return false;
        if (ret_seconds)
                *ret_seconds = s;
        if (ret_nanos)
                *ret_nanos = n;
        return true;
}

static wkt_kind wkt_kind_of(const ProtobufCMessageDescriptor *desc) {
        static const char *const wrappers[] = {
                "DoubleValue", "FloatValue", "Int64Value",  "UInt64Value", "Int32Value",
                "UInt32Value", "BoolValue",  "StringValue", "BytesValue",
        };
        static const char *const unsupported[] = {
                "Any", "Duration", "FieldMask", "Struct", "Value", "ListValue",
        };
        const char *name;

        if (strncmp(desc->name, "google.protobuf.", 16) != 0)
                return WKT_NONE;
        name = desc->name + 16;
        if (streq(name, "Timestamp"))
                return timestamp_fields(desc, NULL, NULL) ? WKT_TIMESTAMP : WKT_NONE;
        for (size_t i = 0; i < ELEMENTSOF(wrappers); i++)
                if (streq(name, wrappers[i]))
                        return desc->n_fields == 1 && desc->fields[0].id == 1 &&
                                               streq(desc->fields[0].name, "value") &&
                                               desc->fields[0].label != PROTOBUF_C_LABEL_REPEATED
                                       ? WKT_WRAPPER
                                       : WKT_NONE;
        for (size_t i = 0; i < ELEMENTSOF(unsupported); i++)
                if (streq(name, unsupported[i]))
                        return WKT_UNSUPPORTED;
        return WKT_NONE;
}

static size_t type_size(ProtobufCType t) {
        switch (t) {
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                return sizeof(uint64_t);
        case PROTOBUF_C_TYPE_FLOAT:
                return sizeof(float);
        case PROTOBUF_C_TYPE_DOUBLE:
                return sizeof(double);
        case PROTOBUF_C_TYPE_BOOL:
                return sizeof(protobuf_c_boolean);
        case PROTOBUF_C_TYPE_STRING:
                return sizeof(char *);
        case PROTOBUF_C_TYPE_BYTES:
                return sizeof(ProtobufCBinaryData);
        case PROTOBUF_C_TYPE_MESSAGE:
                return sizeof(ProtobufCMessage *);
        default: /* 32-bit integers and enums (protobuf-c forces enums to int size) */
                return sizeof(uint32_t);
        }
}

static const char *type_name(ProtobufCType t) {
        switch (t) {
        case PROTOBUF_C_TYPE_INT32:
                return "int32";
        case PROTOBUF_C_TYPE_SINT32:
                return "sint32";
        case PROTOBUF_C_TYPE_SFIXED32:
                return "sfixed32";
        case PROTOBUF_C_TYPE_INT64:
                return "int64";
        case PROTOBUF_C_TYPE_SINT64:
                return "sint64";
        case PROTOBUF_C_TYPE_SFIXED64:
                return "sfixed64";
        case PROTOBUF_C_TYPE_UINT32:
                return "uint32";
        case PROTOBUF_C_TYPE_FIXED32:
                return "fixed32";
        case PROTOBUF_C_TYPE_UINT64:
                return "uint64";
        case PROTOBUF_C_TYPE_FIXED64:
                return "fixed64";
        case PROTOBUF_C_TYPE_FLOAT:
                return "float";
        case PROTOBUF_C_TYPE_DOUBLE:
                return "double";
        case PROTOBUF_C_TYPE_BOOL:
                return "bool";
        case PROTOBUF_C_TYPE_ENUM:
                return "enum";
        case PROTOBUF_C_TYPE_STRING:
                return "string";
        case PROTOBUF_C_TYPE_BYTES:
                return "bytes";
        case PROTOBUF_C_TYPE_MESSAGE:
                return "message";
        }
        return "value";
}

/* Proto2 `optional` and proto3 `optional` scalars and bytes carry a has_
 * flag at quantifier_offset; strings and messages are present when set. */
static void set_has(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f) {
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
                *(protobuf_c_boolean *)MEMBER(msg, f->quantifier_offset) = 1;
}

static int message_new(const ProtobufCMessageDescriptor *desc, ProtobufCMessage **ret) {
        ProtobufCMessage *m = malloc(desc->sizeof_message);

        if (!m)
                return -ENOMEM;
        protobuf_c_message_init(desc, m);
        *ret = m;
        return 0;
}

/* ---- dates (proleptic Gregorian, Howard Hinnant's algorithms) ------------ */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        int64_t era;
        unsigned yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = (unsigned)(y - era * 400);
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *ret_y, unsigned *ret_m, unsigned *ret_d) {
        int64_t era;
        unsigned doe, yoe, doy, mp, m;

        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = (unsigned)(z - era * 146097);
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        m = mp < 10 ? mp + 3 : mp - 9;
        *ret_y = (int)((int64_t)yoe + era * 400 + (m <= 2));
        *ret_m = m;
        *ret_d = doy - (153 * mp + 2) / 5 + 1;
}

static bool is_leap(int y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int read_digits(const char **p, int n, int *ret) {
        int v = 0;

        for (int i = 0; i < n; i++) {
                char c = (*p)[i];
                if (c < '0' || c > '9')
                        return -EINVAL;
                v = v * 10 + (c - '0');
        }
        *p += n;
        *ret = v;
        return 0;
}

static int read_char(const char **p, const char *accepted) {
        if (**p == '\0' || !strchr(accepted, **p))
                return -EINVAL;
        (*p)++;
        return 0;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|+HH:MM|-HH:MM). */
static int rfc3339_parse(const char *s, int64_t *ret_seconds, int32_t *ret_nanos) {
        static const unsigned month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int year, mon, day, hour, min, sec, nanos = 0, offset = 0;
        const char *p = s;
        int64_t seconds;

        if (read_digits(&p, 4, &year) < 0 || read_char(&p, "-") < 0 || read_digits(&p, 2, &mon) < 0 ||
            read_char(&p, "-") < 0 || read_digits(&p, 2, &day) < 0 || read_char(&p, "Tt") < 0 ||
            read_digits(&p, 2, &hour) < 0 || read_char(&p, ":") < 0 || read_digits(&p, 2, &min) < 0 ||
            read_char(&p, ":") < 0 || read_digits(&p, 2, &sec) < 0)
                return -EINVAL;
        if (*p == '.') {
                int n = 0;
                for (p++; *p >= '0' && *p <= '9'; p++, n++) {
                        if (n == 9)
                                return -EINVAL;
                        nanos = nanos * 10 + (*p - '0');
                }
                if (n == 0)
                        return -EINVAL;
                for (; n < 9; n++)
                        nanos *= 10;
        }
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                int sign = *p++ == '-' ? -1 : 1, oh, om;
                if (read_digits(&p, 2, &oh) < 0 || read_char(&p, ":") < 0 || read_digits(&p, 2, &om) < 0 ||
                    oh > 23 || om > 59)
                        return -EINVAL;
                offset = sign * (oh * 3600 + om * 60);
        } else
                return -EINVAL;
        if (*p != '\0')
                return -EINVAL;
        if (year < 1 || mon < 1 || mon > 12 || day < 1 ||
            (unsigned)day > month_days[mon - 1] + (mon == 2 && is_leap(year)) || hour > 23 || min > 59 || sec > 59)
                return -EINVAL;

        seconds = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hour * 3600 + min * 60 + sec - offset;
        if (seconds < TIMESTAMP_MIN_SECONDS || seconds > TIMESTAMP_MAX_SECONDS)
                return -EINVAL;
        *ret_seconds = seconds;
        *ret_nanos = nanos;
        return 0;
}

/* ---- base64 (OpenSSL does the coding; this only normalizes) ------------- */

static bool base64_char(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
               c == '/' || c == '-' || c == '_';
}

/* Standard or URL-safe alphabet, padded or not. EVP_DecodeBlock() wants the
 * standard alphabet in whole padded quanta and counts padding as zero
 * bytes, so translate, pad, and take the padding off the length. */
static int base64_decode(const char *s, ProtobufCBinaryData *ret) {
        size_t len = strlen(s), n = len, padded;
        _cleanup_free_ unsigned char *in = NULL, *out = NULL;
        int r;

        while (n > 0 && s[n - 1] == '=')
                n--;
        if (len - n > 2 || (len != n && len % 4 != 0) || n % 4 == 1 || n > BYTES_MAX / 3 * 4)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!base64_char(s[i]))
                        return -EINVAL;
        if (n == 0) {
                *ret = (ProtobufCBinaryData){0, NULL};
                return 0;
        }

        padded = (n + 3) / 4 * 4;
        in = malloc(padded);
        out = malloc(padded / 4 * 3);
        if (!in || !out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                in[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : (unsigned char)s[i];
        memset(in + n, '=', padded - n);
        r = EVP_DecodeBlock(out, in, (int)padded);
        if (r < 0 || (size_t)r < padded - n)
                return -EINVAL;
        *ret = (ProtobufCBinaryData){(size_t)r - (padded - n), TAKE_PTR(out)};
        return 0;
}

/* ---- parsing ------------------------------------------------------------ */

typedef struct {
        char path[1024];
        size_t path_len;
        unsigned depth; /* messages open, the outermost included */
        char *error;
} parse_ctx;

static void parse_ctx_done(parse_ctx *ctx) {
        free(ctx->error);
}

/* Appends to the path; returns the length to restore with path_pop(). A
 * path too long for the buffer is cut and ends in "...". */
_printf_(2, 3) static size_t path_push(parse_ctx *ctx, const char *fmt, ...) {
        size_t saved = ctx->path_len, room = sizeof(ctx->path) - saved;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(ctx->path + saved, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
                ctx->path[saved] = '\0';
                return saved;
        }
        if ((size_t)n >= room) {
                ctx->path_len = sizeof(ctx->path) - 1;
                memcpy(ctx->path + ctx->path_len - 3, "...", 3);
        } else
                ctx->path_len = saved + (size_t)n;
        return saved;
}

static size_t path_push_field(parse_ctx *ctx, const char *key) {
        return ctx->path_len > 0 ? path_push(ctx, ".%s", key) : path_push(ctx, "%s", key);
}

static void path_pop(parse_ctx *ctx, size_t saved) {
        ctx->path_len = saved;
        ctx->path[saved] = '\0';
}

/* Records "<path>: <what>" as the error; returns -EINVAL, or -ENOMEM when
 * even the message cannot be allocated. */
_printf_(2, 3) static int fail(parse_ctx *ctx, const char *fmt, ...) {
        _cleanup_free_ char *what = NULL;
        char *s;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        what = s;

        free(ctx->error);
        ctx->error = ctx->path_len > 0 ? tv_asprintf("%s: %s", ctx->path, what) : TAKE_PTR(what);
        return ctx->error ? -EINVAL : -ENOMEM;
}

static const char *json_kind(const json_t *v) {
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return "an object";
        case JSON_ARRAY:
                return "an array";
        case JSON_STRING:
                return "a string";
        case JSON_INTEGER:
        case JSON_REAL:
                return "a number";
        case JSON_TRUE:
                return "true";
        case JSON_FALSE:
                return "false";
        case JSON_NULL:
                return "null";
        }
        return "a value";
}

/* An input string quoted for an error message, cut at 64 bytes. */
static void quote_input(const char *s, char *buf, size_t size) {
        (void)snprintf(buf, size, "\"%.64s%s\"", s, strlen(s) > 64 ? "..." : "");
}

/* Shortest %g form that reads back as `d`. */
static void format_double(double d, char *buf, size_t size) {
        for (int precision = 15; precision <= 17; precision++) {
                (void)snprintf(buf, size, "%.*g", precision, d);
                if (strtod(buf, NULL) == d)
                        return;
        }
}

static char *join_field_names(const ProtobufCMessageDescriptor *desc) {
        size_t len = 1;
        char *s, *p;

        for (unsigned i = 0; i < desc->n_fields; i++)
                len += strlen(desc->fields[i].name) + 2;
        s = p = malloc(len);
        if (!s)
                return NULL;
        *p = '\0';
        for (unsigned i = 0; i < desc->n_fields; i++)
                p = stpcpy(stpcpy(p, i > 0 ? ", " : ""), desc->fields[i].name);
        return s;
}

static char *join_enum_names(const ProtobufCEnumDescriptor *desc) {
        size_t len = 1;
        char *s, *p;

        for (unsigned i = 0; i < desc->n_values; i++)
                len += strlen(desc->values[i].name) + 2;
        s = p = malloc(len);
        if (!s)
                return NULL;
        *p = '\0';
        for (unsigned i = 0; i < desc->n_values; i++)
                p = stpcpy(stpcpy(p, i > 0 ? ", " : ""), desc->values[i].name);
        return s;
}

/* An integer as sign and magnitude, so that every 64-bit value of either
 * signedness fits before the range check. */
typedef struct {
        bool neg;
        uint64_t mag;
} wide_int;

/* Strict decimal: optional '-', then digits only. -ERANGE beyond 64 bits. */
static int parse_decimal(const char *s, wide_int *ret) {
        wide_int v = {.neg = *s == '-'};

        if (v.neg)
                s++;
        if (*s == '\0' || strspn(s, "0123456789") != strlen(s))
                return -EINVAL;
        for (; *s; s++) {
                unsigned digit = (unsigned)(*s - '0');
                if (v.mag > (UINT64_MAX - digit) / 10)
                        return -ERANGE;
                v.mag = v.mag * 10 + digit;
        }
        if (v.mag == 0)
                v.neg = false;
        *ret = v;
        return 0;
}

/* A JSON-number-like string ("1.5", "-2e3") read as a double; no hex,
 * "inf", "nan" or surrounding space. */
static bool parse_number_text(const char *s, double *ret) {
        const char *digits = *s == '-' ? s + 1 : s;
        char *end;

        if (*digits < '0' || *digits > '9' || strpbrk(s, "xXnNiI"))
                return false;
        *ret = strtod(s, &end);
        return *end == '\0';
}

static const char *type_range(ProtobufCType t) {
        switch (t) {
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                return "-9223372036854775808..9223372036854775807";
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                return "0..18446744073709551615";
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                return "0..4294967295";
        default:
                return "-2147483648..2147483647";
        }
}

/* Stores `v` into an integer slot of type `t`; -ERANGE when it does not fit. */
static int store_integer(ProtobufCType t, wide_int v, void *slot) {
        switch (t) {
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                if (v.mag > (v.neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
                        return -ERANGE;
                *(int64_t *)slot = v.neg ? -(int64_t)(v.mag - 1) - 1 : (int64_t)v.mag;
                return 0;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                if (v.neg)
                        return -ERANGE;
                *(uint64_t *)slot = v.mag;
                return 0;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                if (v.neg || v.mag > UINT32_MAX)
                        return -ERANGE;
                *(uint32_t *)slot = (uint32_t)v.mag;
                return 0;
        default: /* int32, sint32, sfixed32, enum */
                if (v.mag > (v.neg ? (uint64_t)INT32_MAX + 1 : (uint64_t)INT32_MAX))
                        return -ERANGE;
                *(int32_t *)slot = v.neg ? (int32_t)(-(int64_t)v.mag) : (int32_t)v.mag;
                return 0;
        }
}

static bool type_is_unsigned(ProtobufCType t) {
        return t == PROTOBUF_C_TYPE_UINT32 || t == PROTOBUF_C_TYPE_FIXED32 || t == PROTOBUF_C_TYPE_UINT64 ||
               t == PROTOBUF_C_TYPE_FIXED64;
}

static bool type_is_64bit(ProtobufCType t) {
        return type_size(t) == 8 && t != PROTOBUF_C_TYPE_DOUBLE;
}

/* A JSON number (or number text) for an integer field. Above 2^53 a double
 * no longer tells which integer was written, so such values are refused:
 * as out of range when no integer that rounds to `d` fits the type, else
 * with the advice to quote them. */
static int integer_from_double(parse_ctx *ctx, ProtobufCType t, double d, const char *shown, wide_int *ret) {
        bool out_of_range;

        if (!isfinite(d) || d != floor(d))
                return fail(ctx, "%s is not an integer (%s)", shown, type_name(t));
        if (fabs(d) < EXACT_DOUBLE_MAX) {
                *ret = (wide_int){d < 0, (uint64_t)fabs(d)};
                return 0;
        }
        if (!type_is_64bit(t))
                out_of_range = true;
        else if (type_is_unsigned(t))
                out_of_range = d < 0 || d > 18446744073709551616.0;
        else
                out_of_range = d < -9223372036854775808.0 || d > 9223372036854775808.0;
        if (out_of_range)
                return fail(ctx, "%s is out of range for %s (%s)", shown, type_name(t), type_range(t));
        return fail(ctx, "%s cannot be read exactly from a JSON number; write %s values beyond 2^53 as strings",
                    shown, type_name(t));
}

/* Integers and enum numbers: a JSON number or a decimal string. */
static int parse_integer(parse_ctx *ctx, ProtobufCType t, const json_t *v, void *slot) {
        char shown[80];
        wide_int n;
        int r;

        if (json_is_integer(v)) {
                json_int_t x = json_integer_value(v);
                n = (wide_int){x < 0, x < 0 ? 0 - (uint64_t)x : (uint64_t)x};
                (void)snprintf(shown, sizeof(shown), "%" JSON_INTEGER_FORMAT, x);
        } else if (json_is_real(v)) {
                double d = json_real_value(v);
                /* Integral values as digits, as they were most likely
                 * written; beyond 1e20 in exponent form, to stay short. */
                if (isfinite(d) && d == floor(d) && fabs(d) < 1e20)
                        (void)snprintf(shown, sizeof(shown), "%.0f", d);
                else
                        format_double(d, shown, sizeof(shown));
                r = integer_from_double(ctx, t, d, shown, &n);
                if (r < 0)
                        return r;
        } else if (json_is_string(v)) {
                const char *s = json_string_value(v);
                double d;

                quote_input(s, shown, sizeof(shown));
                r = parse_decimal(s, &n);
                if (r == -ERANGE)
                        return fail(ctx, "%s is out of range for %s (%s)", shown, type_name(t), type_range(t));
                if (r < 0) {
                        if (!parse_number_text(s, &d))
                                return fail(ctx, "%s is not an integer (%s)", shown, type_name(t));
                        r = integer_from_double(ctx, t, d, shown, &n);
                        if (r < 0)
                                return r;
                }
        } else
                return fail(ctx, "expected %s as a number or a decimal string, got %s", type_name(t), json_kind(v));

        if (store_integer(t, n, slot) < 0)
                return fail(ctx, "%s is out of range for %s (%s)", shown, type_name(t), type_range(t));
        return 0;
}

static int parse_floating(parse_ctx *ctx, ProtobufCType t, const json_t *v, void *slot) {
        char shown[80];
        double d;

        if (json_is_number(v))
                d = json_number_value(v);
        else if (json_is_string(v)) {
                const char *s = json_string_value(v);

                quote_input(s, shown, sizeof(shown));
                if (streq(s, "NaN"))
                        d = NAN;
                else if (streq(s, "Infinity"))
                        d = INFINITY;
                else if (streq(s, "-Infinity"))
                        d = -INFINITY;
                else if (!parse_number_text(s, &d))
                        return fail(ctx, "%s is not a number (%s; \"NaN\", \"Infinity\" and \"-Infinity\" "
                                    "are accepted)", shown, type_name(t));
                else if (isinf(d))
                        return fail(ctx, "%s is out of range for %s", shown, type_name(t));
        } else
                return fail(ctx, "expected %s as a number, got %s", type_name(t), json_kind(v));

        if (t == PROTOBUF_C_TYPE_FLOAT) {
                if (isfinite(d) && fabs(d) > FLT_MAX) {
                        format_double(d, shown, sizeof(shown));
                        return fail(ctx, "%s is out of range for float", shown);
                }
                *(float *)slot = (float)d;
        } else
                *(double *)slot = d;
        return 0;
}

static int parse_enum(parse_ctx *ctx, const ProtobufCEnumDescriptor *ed, const json_t *v, void *slot) {
        if (json_is_string(v)) {
                const char *s = json_string_value(v);
                const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, s);
                _cleanup_free_ char *names = NULL;
                char shown[80];

                if (ev) {
                        *(int32_t *)slot = ev->value;
                        return 0;
                }
                names = join_enum_names(ed);
                if (!names)
                        return -ENOMEM;
                quote_input(s, shown, sizeof(shown));
                return fail(ctx, "unknown enum value %s for %s (expected one of: %s)", shown, ed->name, names);
        }
        if (json_is_number(v))
                return parse_integer(ctx, PROTOBUF_C_TYPE_ENUM, v, slot);
        return fail(ctx, "expected a value name or number of %s, got %s", ed->name, json_kind(v));
}

static int parse_message(parse_ctx *ctx, const ProtobufCMessageDescriptor *desc, json_t *v, ProtobufCMessage **slot);

/* One value of field `f` (an element, for a repeated field) into `slot`. */
static int parse_value(parse_ctx *ctx, const ProtobufCFieldDescriptor *f, json_t *v, void *slot) {
        switch (f->type) {
        case PROTOBUF_C_TYPE_MESSAGE:
                return parse_message(ctx, f->descriptor, v, slot);
        case PROTOBUF_C_TYPE_ENUM:
                return parse_enum(ctx, f->descriptor, v, slot);
        case PROTOBUF_C_TYPE_FLOAT:
        case PROTOBUF_C_TYPE_DOUBLE:
                return parse_floating(ctx, f->type, v, slot);
        case PROTOBUF_C_TYPE_BOOL:
                if (!json_is_boolean(v))
                        return fail(ctx, "expected true or false, got %s", json_kind(v));
                *(protobuf_c_boolean *)slot = json_is_true(v);
                return 0;
        case PROTOBUF_C_TYPE_STRING: {
                char *s;
                if (!json_is_string(v))
                        return fail(ctx, "expected a string, got %s", json_kind(v));
                s = strdup(json_string_value(v));
                if (!s)
                        return -ENOMEM;
                *(char **)slot = s;
                return 0;
        }
        case PROTOBUF_C_TYPE_BYTES: {
                int r;
                if (!json_is_string(v))
                        return fail(ctx, "expected bytes as a base64 string, got %s", json_kind(v));
                r = base64_decode(json_string_value(v), slot);
                if (r == -EINVAL)
                        return fail(ctx, "invalid base64 (standard or URL-safe alphabet, padding optional)");
                return r;
        }
        default:
                return parse_integer(ctx, f->type, v, slot);
        }
}

static int parse_map_key(parse_ctx *ctx, const ProtobufCFieldDescriptor *kf, const char *key,
                         ProtobufCMessage *entry) {
        void *slot = MEMBER(entry, kf->offset);
        int r;

        if (kf->type == PROTOBUF_C_TYPE_STRING) {
                char *s = strdup(key);
                if (!s)
                        return -ENOMEM;
                *(char **)slot = s;
        } else if (kf->type == PROTOBUF_C_TYPE_BOOL) {
                if (!streq(key, "true") && !streq(key, "false"))
                        return fail(ctx, "map key must be \"true\" or \"false\"");
                *(protobuf_c_boolean *)slot = streq(key, "true");
        } else {
                _cleanup_json_ json_t *k = json_string(key);
                if (!k)
                        return -ENOMEM;
                r = parse_integer(ctx, kf->type, k, slot);
                if (r < 0)
                        return r;
        }
        set_has(entry, kf);
        return 0;
}

static int parse_map(parse_ctx *ctx, const ProtobufCFieldDescriptor *f, json_t *v, ProtobufCMessage *msg) {
        const ProtobufCMessageDescriptor *ed = f->descriptor;
        const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
        ProtobufCMessage **entries;
        const char *key;
        json_t *value;
        size_t n, i = 0;
        int r;

        if (!json_is_object(v))
                return fail(ctx, "expected an object (a map of %s to %s), got %s", type_name(kf->type),
                            type_name(vf->type), json_kind(v));
        n = json_object_size(v);
        if (n == 0)
                return 0;
        entries = calloc(n, sizeof(*entries));
        if (!entries)
                return -ENOMEM;
        *(ProtobufCMessage ***)MEMBER(msg, f->offset) = entries;
        *(size_t *)MEMBER(msg, f->quantifier_offset) = n;

        json_object_foreach(v, key, value) {
                size_t saved = path_push(ctx, "[\"%s\"]", key);

                if (json_is_null(value))
                        return fail(ctx, "a map value cannot be null");
                r = message_new(ed, &entries[i]);
                if (r < 0)
                        return r;
                r = parse_map_key(ctx, kf, key, entries[i]);
                if (r < 0)
                        return r;
                r = parse_value(ctx, vf, value, MEMBER(entries[i], vf->offset));
                if (r < 0)
                        return r;
                set_has(entries[i], vf);
                i++;
                path_pop(ctx, saved);
        }
        return 0;
}

static int parse_field(parse_ctx *ctx, const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor *f,
                       json_t *v, ProtobufCMessage *msg) {
        void *member = MEMBER(msg, f->offset);
        size_t n, size, i;
        json_t *element;
        char *array;
        int r;

        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
                r = parse_value(ctx, f, v, member);
                if (r < 0)
                        return r;
                set_has(msg, f);
                return 0;
        }
        if (field_is_map(desc, f))
                return parse_map(ctx, f, v, msg);
        if (!json_is_array(v))
                return fail(ctx, "expected an array, got %s", json_kind(v));
        n = json_array_size(v);
        if (n == 0)
                return 0;
        size = type_size(f->type);
        array = calloc(n, size);
        if (!array)
                return -ENOMEM;
        /* The zeroed array goes into the message at once: free_unpacked()
         * frees all n slots, and NULL ones are no-ops. */
        *(void **)member = array;
        *(size_t *)MEMBER(msg, f->quantifier_offset) = n;

        json_array_foreach(v, i, element) {
                size_t saved = path_push(ctx, "[%zu]", i);

                if (json_is_null(element))
                        return fail(ctx, "null is not allowed in a repeated field");
                r = parse_value(ctx, f, element, array + i * size);
                if (r < 0)
                        return r;
                path_pop(ctx, saved);
        }
        return 0;
}

typedef struct {
        const char *key; /* as written in the JSON */
        bool set;
} field_seen;

static int parse_object(parse_ctx *ctx, const ProtobufCMessageDescriptor *desc, json_t *obj, ProtobufCMessage *msg) {
        _cleanup_free_ field_seen *seen = calloc(desc->n_fields > 0 ? desc->n_fields : 1, sizeof(*seen));
        const char *key;
        json_t *v;
        int r;

        if (!seen)
                return -ENOMEM;

        json_object_foreach(obj, key, v) {
                const ProtobufCFieldDescriptor *f = field_by_key(desc, key);
                size_t saved = path_push_field(ctx, key);
                size_t i;

                if (!f) {
                        _cleanup_free_ char *names = join_field_names(desc);
                        if (!names)
                                return -ENOMEM;
                        return fail(ctx, "unknown field \"%s\" in %s (%s%s)", key, desc->name,
                                    desc->n_fields > 0 ? "fields: " : "it has no fields", names);
                }
                i = (size_t)(f - desc->fields);
                if (seen[i].key)
                        return fail(ctx, "field %s given twice, as \"%s\" and \"%s\"", f->name, seen[i].key, key);
                seen[i].key = key;
                if (json_is_null(v)) {
                        path_pop(ctx, saved);
                        continue;
                }
                if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                        uint32_t *which = MEMBER(msg, f->quantifier_offset);
                        if (*which != 0) {
                                const ProtobufCFieldDescriptor *other =
                                        protobuf_c_message_descriptor_get_field(desc, *which);
                                return fail(ctx, "\"%s\" and \"%s\" belong to the same oneof of %s; set only one",
                                            other ? seen[other - desc->fields].key : "another field", key,
                                            desc->name);
                        }
                        /* The case first: free_unpacked() frees only the
                         * member the case names. */
                        *which = f->id;
                }
                r = parse_field(ctx, desc, f, v, msg);
                if (r < 0)
                        return r;
                seen[i].set = true;
                path_pop(ctx, saved);
        }

        for (unsigned i = 0; i < desc->n_fields; i++)
                if (desc->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && !seen[i].set)
                        return fail(ctx, "missing required field \"%s\" of %s", desc->fields[i].name, desc->name);
        return 0;
}

static int parse_timestamp(parse_ctx *ctx, const ProtobufCMessageDescriptor *desc, const json_t *v,
                           ProtobufCMessage *msg) {
        const ProtobufCFieldDescriptor *fs, *fn;
        int64_t seconds;
        int32_t nanos;
        char shown[80];

        if (!json_is_string(v))
                return fail(ctx, "expected an RFC 3339 timestamp string, got %s", json_kind(v));
        if (rfc3339_parse(json_string_value(v), &seconds, &nanos) < 0) {
                quote_input(json_string_value(v), shown, sizeof(shown));
                return fail(ctx, "%s is not an RFC 3339 timestamp in years 0001..9999, e.g. "
                            "\"2026-11-25T16:54:27.123Z\"", shown);
        }
        (void)timestamp_fields(desc, &fs, &fn);
        *(int64_t *)MEMBER(msg, fs->offset) = seconds;
        set_has(msg, fs);
        *(int32_t *)MEMBER(msg, fn->offset) = nanos;
        set_has(msg, fn);
        return 0;
}

/* A message-typed value: a JSON object, or a well-known type's JSON form.
 * The new message is stored into *slot before it is filled. */
static int parse_message(parse_ctx *ctx, const ProtobufCMessageDescriptor *desc, json_t *v, ProtobufCMessage **slot) {
        wkt_kind kind = wkt_kind_of(desc);
        int r;

        if (kind == WKT_UNSUPPORTED)
                return fail(ctx, "%s is not supported", desc->name);
        if (kind == WKT_NONE && !json_is_object(v))
                return fail(ctx, "expected an object (%s), got %s", desc->name, json_kind(v));
        if (ctx->depth >= TV_PBJSON_MAX_DEPTH)
                return fail(ctx, "messages nested more than %d deep", TV_PBJSON_MAX_DEPTH);
        r = message_new(desc, slot);
        if (r < 0)
                return r;

        ctx->depth++;
        switch (kind) {
        case WKT_TIMESTAMP:
                r = parse_timestamp(ctx, desc, v, *slot);
                break;
        case WKT_WRAPPER:
                r = parse_value(ctx, &desc->fields[0], v, MEMBER(*slot, desc->fields[0].offset));
                if (r >= 0)
                        set_has(*slot, &desc->fields[0]);
                break;
        default:
                r = parse_object(ctx, desc, v, *slot);
        }
        ctx->depth--;
        return r;
}

int tv_pbjson_parse(const ProtobufCMessageDescriptor *desc, const char *json, ProtobufCMessage **ret_msg,
                    char **ret_error) {
        _cleanup_(parse_ctx_done) parse_ctx ctx = {};
        _cleanup_(message_freep) ProtobufCMessage *msg = NULL;
        _cleanup_json_ json_t *root = NULL;
        json_error_t jerr;
        int r;

        if (!desc || desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC || !json || !ret_msg)
                return -EINVAL;

        root = json_loads(json, LOAD_FLAGS, &jerr);
        if (!root && json_error_code(&jerr) == json_error_numeric_overflow)
                /* An integer literal beyond int64 (jansson's integer type):
                 * read every number as a double instead, so that the field
                 * it belongs to can be named. Integer fields refuse doubles
                 * they cannot hold exactly, so nothing is silently rounded. */
                root = json_loads(json, LOAD_FLAGS | JSON_DECODE_INT_AS_REAL, &jerr);
        if (!root) {
                /* jansson leaves the text empty when it could not even set
                 * up its lexer (an allocation failed). */
                if (json_error_code(&jerr) == json_error_out_of_memory || jerr.text[0] == '\0')
                        return -ENOMEM;
                r = fail(&ctx, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        } else
                r = parse_message(&ctx, desc, root, &msg);
        if (r < 0) {
                if (r == -EINVAL && ret_error)
                        *ret_error = TAKE_PTR(ctx.error);
                return r;
        }

        *ret_msg = TAKE_PTR(msg);
        return 0;
}

/* ---- rendering ---------------------------------------------------------- */

typedef struct {
        const tv_pbjson_options *opts;
        unsigned depth;
} render_ctx;

static int json_new(json_t *j, json_t **ret) {
        if (!j)
                return -ENOMEM;
        *ret = j;
        return 0;
}

/* Well-formed UTF-8 as RFC 3629 defines it (no overlong forms, surrogates
 * or values above U+10FFFF), the rule jansson applies to strings. Checked
 * here because json_string() returns NULL both for bad text and for a
 * failed allocation, and the two must give different errors. */
static bool utf8_valid(const char *str) {
        const unsigned char *s = (const unsigned char *)str;

        while (*s) {
                unsigned n;
                uint32_t cp;

                if (*s < 0x80) {
                        s++;
                        continue;
                }
                if (*s >= 0xc2 && *s <= 0xdf)
                        n = 1, cp = *s & 0x1f;
                else if (*s >= 0xe0 && *s <= 0xef)
                        n = 2, cp = *s & 0x0f;
                else if (*s >= 0xf0 && *s <= 0xf4)
                        n = 3, cp = *s & 0x07;
                else
                        return false;
                for (unsigned i = 1; i <= n; i++) {
                        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
                                return false;
                        cp = cp << 6 | (s[i] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                s += n + 1;
        }
        return true;
}

/* -EINVAL for text that is not UTF-8, which JSON cannot carry. */
static int json_from_string(const char *s, json_t **ret) {
        if (!s)
                s = "";
        if (!utf8_valid(s))
                return -EINVAL;
        return json_new(json_string_nocheck(s), ret);
}

static int render_floating(double d, json_t **ret) {
        if (isnan(d))
                return json_new(json_string("NaN"), ret);
        if (isinf(d))
                return json_new(json_string(d > 0 ? "Infinity" : "-Infinity"), ret);
        return json_new(json_real(d), ret);
}

static int render_bytes(const ProtobufCBinaryData *b, json_t **ret) {
        _cleanup_free_ unsigned char *out = NULL;

        if (b->len == 0)
                return json_new(json_string(""), ret);
        if (b->len > BYTES_MAX || !b->data)
                return -EINVAL;
        out = malloc((b->len + 2) / 3 * 4 + 1);
        if (!out)
                return -ENOMEM;
        (void)EVP_EncodeBlock(out, b->data, (int)b->len);
        return json_new(json_string((const char *)out), ret);
}

static int render_timestamp(const ProtobufCMessage *msg, json_t **ret) {
        const ProtobufCFieldDescriptor *fs, *fn;
        int64_t seconds, days, rem;
        int32_t nanos;
        unsigned mon, day;
        int year, n;
        char buf[64];

        (void)timestamp_fields(msg->descriptor, &fs, &fn);
        seconds = *(const int64_t *)CMEMBER(msg, fs->offset);
        nanos = *(const int32_t *)CMEMBER(msg, fn->offset);
        if (seconds < TIMESTAMP_MIN_SECONDS || seconds > TIMESTAMP_MAX_SECONDS || nanos < 0 || nanos > 999999999)
                return -EINVAL;

        days = seconds / 86400;
        rem = seconds % 86400;
        if (rem < 0) {
                rem += 86400;
                days--;
        }
        civil_from_days(days, &year, &mon, &day);
        n = snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02d", year, mon, day, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60));
        /* As protobuf prints it: 0, 3, 6 or 9 fraction digits. */
        if (nanos == 0)
                (void)snprintf(buf + n, sizeof(buf) - (size_t)n, "Z");
        else if (nanos % 1000000 == 0)
                (void)snprintf(buf + n, sizeof(buf) - (size_t)n, ".%03dZ", nanos / 1000000);
        else if (nanos % 1000 == 0)
                (void)snprintf(buf + n, sizeof(buf) - (size_t)n, ".%06dZ", nanos / 1000);
        else
                (void)snprintf(buf + n, sizeof(buf) - (size_t)n, ".%09dZ", nanos);
        return json_new(json_string(buf), ret);
}

static int render_message(render_ctx *ctx, const ProtobufCMessageDescriptor *desc, const ProtobufCMessage *msg,
                          json_t **ret);

/* One value of field `f` (an element, for a repeated field) from `slot`. */
static int render_value(render_ctx *ctx, const ProtobufCFieldDescriptor *f, const void *slot, json_t **ret) {
        char buf[32];

        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
                return json_new(json_integer(*(const int32_t *)slot), ret);
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                return json_new(json_integer(*(const uint32_t *)slot), ret);
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                (void)snprintf(buf, sizeof(buf), "%" PRId64, *(const int64_t *)slot);
                return json_new(json_string(buf), ret);
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                (void)snprintf(buf, sizeof(buf), "%" PRIu64, *(const uint64_t *)slot);
                return json_new(json_string(buf), ret);
        case PROTOBUF_C_TYPE_FLOAT:
                return render_floating(*(const float *)slot, ret);
        case PROTOBUF_C_TYPE_DOUBLE:
                return render_floating(*(const double *)slot, ret);
        case PROTOBUF_C_TYPE_BOOL:
                return json_new(json_boolean(*(const protobuf_c_boolean *)slot), ret);
        case PROTOBUF_C_TYPE_ENUM: {
                int32_t value = *(const int32_t *)slot;
                const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, value);
                return json_new(ev ? json_string(ev->name) : json_integer(value), ret);
        }
        case PROTOBUF_C_TYPE_STRING:
                return json_from_string(*(char *const *)slot, ret);
        case PROTOBUF_C_TYPE_BYTES:
                return render_bytes(slot, ret);
        case PROTOBUF_C_TYPE_MESSAGE:
                return render_message(ctx, f->descriptor, *(const ProtobufCMessage *const *)slot, ret);
        }
        return -EINVAL;
}

static int render_redacted(json_t **ret) {
        return json_new(json_string(TV_PBJSON_REDACTED), ret);
}

static int render_map_key(const ProtobufCFieldDescriptor *kf, const ProtobufCMessage *entry, char *buf, size_t size,
                          const char **ret) {
        const void *slot = CMEMBER(entry, kf->offset);

        switch (kf->type) {
        case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(char *const *)slot;

                if (s && !utf8_valid(s)) /* object keys must be UTF-8 too */
                        return -EINVAL;
                *ret = s ? s : "";
                return 0;
        }
        case PROTOBUF_C_TYPE_BOOL:
                *ret = *(const protobuf_c_boolean *)slot ? "true" : "false";
                return 0;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                (void)snprintf(buf, size, "%" PRId64, *(const int64_t *)slot);
                break;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                (void)snprintf(buf, size, "%" PRIu64, *(const uint64_t *)slot);
                break;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                (void)snprintf(buf, size, "%" PRIu32, *(const uint32_t *)slot);
                break;
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
                (void)snprintf(buf, size, "%" PRId32, *(const int32_t *)slot);
                break;
        default: /* protoc allows no other key types */
                return -EINVAL;
        }
        *ret = buf;
        return 0;
}

static int render_map(render_ctx *ctx, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg, bool secret,
                      json_t **ret) {
        const ProtobufCMessageDescriptor *ed = f->descriptor;
        const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
        ProtobufCMessage *const *entries = *(ProtobufCMessage *const *const *)CMEMBER(msg, f->offset);
        size_t n = *(const size_t *)CMEMBER(msg, f->quantifier_offset);
        _cleanup_json_ json_t *obj = json_object();
        int r;

        if (!obj)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                _cleanup_json_ json_t *v = NULL;
                const char *key;
                char buf[32];

                if (!entries[i])
                        continue;
                r = render_map_key(kf, entries[i], buf, sizeof(buf), &key);
                if (r < 0)
                        return r;
                r = secret ? render_redacted(&v) : render_value(ctx, vf, CMEMBER(entries[i], vf->offset), &v);
                if (r < 0)
                        return r;
                if (json_object_set_new_nocheck(obj, key, TAKE_PTR(v)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(obj);
        return 0;
}

static int render_array(render_ctx *ctx, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg, bool secret,
                        json_t **ret) {
        const char *array = *(const char *const *)CMEMBER(msg, f->offset);
        size_t n = *(const size_t *)CMEMBER(msg, f->quantifier_offset), size = type_size(f->type);
        _cleanup_json_ json_t *a = json_array();
        int r;

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *v = NULL;

                r = secret ? render_redacted(&v) : render_value(ctx, f, array + i * size, &v);
                if (r < 0)
                        return r;
                if (json_array_append_new(a, v) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

/* Whether the field would be written on the wire, as protobuf-c decides. */
static bool field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f) {
        const void *member = CMEMBER(msg, f->offset);

        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
                return *(const uint32_t *)CMEMBER(msg, f->quantifier_offset) == f->id;
        switch (f->label) {
        case PROTOBUF_C_LABEL_REPEATED:
                return *(const size_t *)CMEMBER(msg, f->quantifier_offset) > 0 && *(const void *const *)member;
        case PROTOBUF_C_LABEL_REQUIRED:
                return true;
        case PROTOBUF_C_LABEL_OPTIONAL:
                if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
                        const void *p = *(const void *const *)member;
                        return p && p != f->default_value;
                }
                return *(const protobuf_c_boolean *)CMEMBER(msg, f->quantifier_offset);
        case PROTOBUF_C_LABEL_NONE:
                break;
        }

        /* proto3 singular field: written unless it holds the default. */
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(const char *const *)member;
                return s && *s;
        }
        case PROTOBUF_C_TYPE_MESSAGE:
                return *(const void *const *)member != NULL;
        case PROTOBUF_C_TYPE_BYTES:
                return ((const ProtobufCBinaryData *)member)->len > 0;
        case PROTOBUF_C_TYPE_FLOAT:
                return *(const float *)member != 0;
        case PROTOBUF_C_TYPE_DOUBLE:
                return *(const double *)member != 0;
        case PROTOBUF_C_TYPE_BOOL:
                return *(const protobuf_c_boolean *)member != 0;
        default:
                return type_size(f->type) == 8 ? *(const uint64_t *)member != 0 : *(const uint32_t *)member != 0;
        }
}

static int render_object(render_ctx *ctx, const ProtobufCMessage *msg, json_t **ret) {
        const ProtobufCMessageDescriptor *desc = msg->descriptor;
        _cleanup_json_ json_t *obj = json_object();
        int r;

        if (!obj)
                return -ENOMEM;
        for (unsigned i = 0; i < desc->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &desc->fields[i];
                _cleanup_json_ json_t *v = NULL;
                _cleanup_free_ char *name = NULL;
                bool secret;

                if (!field_present(msg, f))
                        continue;
                secret = ctx->opts->is_secret && ctx->opts->is_secret(desc, f);
                if (f->label == PROTOBUF_C_LABEL_REPEATED)
                        r = field_is_map(desc, f) ? render_map(ctx, f, msg, secret, &v)
                                                  : render_array(ctx, f, msg, secret, &v);
                else
                        r = secret ? render_redacted(&v) : render_value(ctx, f, CMEMBER(msg, f->offset), &v);
                if (r < 0)
                        return r;
                name = json_name_new(f->name);
                if (!name)
                        return -ENOMEM;
                if (json_object_set_new_nocheck(obj, name, TAKE_PTR(v)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(obj);
        return 0;
}

/* `msg` may be NULL (an unset map value or a NULL element of a hand-built
 * message): it is printed as the type's default instance. */
static int render_message(render_ctx *ctx, const ProtobufCMessageDescriptor *desc, const ProtobufCMessage *msg,
                          json_t **ret) {
        _cleanup_(message_freep) ProtobufCMessage *empty = NULL;
        wkt_kind kind;
        int r;

        if (!msg) {
                r = message_new(desc, &empty);
                if (r < 0)
                        return r;
                msg = empty;
        }
        kind = wkt_kind_of(msg->descriptor);
        if (kind == WKT_UNSUPPORTED)
                return -EOPNOTSUPP;
        if (ctx->depth >= TV_PBJSON_MAX_DEPTH)
                return -EINVAL;

        ctx->depth++;
        switch (kind) {
        case WKT_TIMESTAMP:
                r = render_timestamp(msg, ret);
                break;
        case WKT_WRAPPER:
                r = render_value(ctx, &msg->descriptor->fields[0], CMEMBER(msg, msg->descriptor->fields[0].offset),
                                 ret);
                break;
        default:
                r = render_object(ctx, msg, ret);
        }
        ctx->depth--;
        return r;
}

int tv_pbjson_render(const ProtobufCMessage *msg, const tv_pbjson_options *opts, char **ret_json) {
        static const tv_pbjson_options no_options = {};
        render_ctx ctx = {.opts = opts ? opts : &no_options};
        _cleanup_json_ json_t *root = NULL;
        char *s;
        int r;

        if (!msg || !msg->descriptor || msg->descriptor->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC || !ret_json)
                return -EINVAL;

        r = render_message(&ctx, msg->descriptor, msg, &root);
        if (r < 0)
                return r;
        s = json_dumps(root, JSON_ENCODE_ANY | (ctx.opts->pretty ? JSON_INDENT(2) : JSON_COMPACT));
        if (!s)
                return -ENOMEM;
        *ret_json = s;
        return 0;
}
