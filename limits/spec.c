/* StorageClass / VolumeAttributesClass parameters -> tv_limits_spec ->
 * tv_limits of one volume; and the spec as a short LVM-tag-safe string. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

typedef enum {
        FIELD_ABSOLUTE = 0,
        FIELD_PER_GIB = 1,
        FIELD_FLOOR = 2,
        FIELD_CEILING = 3,
        FIELD_COUNT = 4,
} field;

/* Everything a kind is called: parameter names by field, its code in the
 * serialised string, words for messages. */
typedef struct {
        const char *param[FIELD_COUNT];
        const char *code;
        const char *words;
        bool bytes;
        uint64_t max;
} kind_def;

static const kind_def kinds[TV_LIMIT_KIND_COUNT] = {
        [TV_LIMIT_READ_IOPS] = {{"readIOPS", "readIOPSPerGiB", "minReadIOPS", "maxReadIOPS"},
                                "ri", "read IOPS", false, TV_LIMITS_IOPS_MAX},
        [TV_LIMIT_WRITE_IOPS] = {{"writeIOPS", "writeIOPSPerGiB", "minWriteIOPS", "maxWriteIOPS"},
                                 "wi", "write IOPS", false, TV_LIMITS_IOPS_MAX},
        [TV_LIMIT_READ_BPS] = {{"readBytesPerSecond", "readBytesPerSecondPerGiB",
                                "minReadBytesPerSecond", "maxReadBytesPerSecond"},
                               "rb", "read bytes per second", true, TV_LIMITS_BPS_MAX},
        [TV_LIMIT_WRITE_BPS] = {{"writeBytesPerSecond", "writeBytesPerSecondPerGiB",
                                 "minWriteBytesPerSecond", "maxWriteBytesPerSecond"},
                                "wb", "write bytes per second", true, TV_LIMITS_BPS_MAX},
};

/* Field suffixes in the serialised string, by field. */
static const char *const field_codes[FIELD_COUNT] = {"", "g", "n", "x"};

#define PARAM_IOPS "iops"

/* Table order: what tv_limits_param_names() returns. */
static const char *const param_names[] = {
        PARAM_IOPS,
        "readIOPS",
        "writeIOPS",
        "readBytesPerSecond",
        "writeBytesPerSecond",
        "readIOPSPerGiB",
        "writeIOPSPerGiB",
        "readBytesPerSecondPerGiB",
        "writeBytesPerSecondPerGiB",
        "minReadIOPS",
        "maxReadIOPS",
        "minWriteIOPS",
        "maxWriteIOPS",
        "minReadBytesPerSecond",
        "maxReadBytesPerSecond",
        "minWriteBytesPerSecond",
        "maxWriteBytesPerSecond",
};

static uint64_t *rule_field(tv_limit_rule *r, field f) {
        switch (f) {
        case FIELD_ABSOLUTE:
                return &r->absolute;
        case FIELD_PER_GIB:
                return &r->per_gib;
        case FIELD_FLOOR:
                return &r->floor;
        default:
                return &r->ceiling;
        }
}

static uint64_t rule_get(const tv_limit_rule *r, field f) {
        switch (f) {
        case FIELD_ABSOLUTE:
                return r->absolute;
        case FIELD_PER_GIB:
                return r->per_gib;
        case FIELD_FLOOR:
                return r->floor;
        default:
                return r->ceiling;
        }
}

/* Names used in messages: the parameter that set a slot (so "iops" shows
 * as "iops"), else the canonical name. */
typedef const char *slot_names[TV_LIMIT_KIND_COUNT][FIELD_COUNT];

static const char *slot_name(const slot_names *names, int k, field f) {
        if (names && (*names)[k][f])
                return (*names)[k][f];
        return kinds[k].param[f];
}

bool tv_limits_is_param(const char *key) {
        if (!key)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(param_names); i++)
                if (strcmp(key, param_names[i]) == 0)
                        return true;
        return false;
}

const char *const *tv_limits_param_names(size_t *ret_n) {
        *ret_n = ELEMENTSOF(param_names);
        return param_names;
}

/* ---- values ---------------------------------------------------------- */

static uint64_t field_min(field f) {
        return f == FIELD_PER_GIB ? 1 : TV_LIMITS_VALUE_MIN;
}

/* Parse one value of kind `k`, field `f`. `what` names it for messages
 * ("parameter readIOPS", "stored limits field ri"). */
static int parse_value(const char *what, const char *s, int k, field f, uint64_t *ret,
                       tv_limits_error *err) {
        const kind_def *kd = &kinds[k];
        uint64_t v, mult = 1, min = field_min(f);
        char shown[48];
        size_t n = 0;
        int r;

        if (!s)
                return tv_limits_errf(err, -EINVAL, "%s has no value", what);
        (void)tv_limits_show(s, shown, sizeof(shown));
        if (*s == '\0')
                return tv_limits_errf(err, -EINVAL, "%s is empty: leave it out for no limit", what);
        if (*s == '-')
                return tv_limits_errf(err, -EINVAL, "%s=\"%s\": must not be negative", what, shown);
        while (s[n] >= '0' && s[n] <= '9')
                n++;
        if (n == 0)
                return tv_limits_errf(err, -EINVAL,
                                      "%s=\"%s\": not a number (want a whole number, e.g. %s)",
                                      what, shown, kd->bytes ? "100Mi" : "3000");
        r = tv_limits_parse_u64(s, n, &v);
        if (r < 0)
                return tv_limits_errf(err, -EINVAL, "%s=\"%s\": too large (at most %" PRIu64 ")",
                                      what, shown, kd->max);
        const char *rest = s + n;
        if (*rest == '.' || *rest == ',')
                return tv_limits_errf(err, -EINVAL, "%s=\"%s\": not a whole number", what, shown);
        if (*rest != '\0') {
                bool letter = (*rest >= 'A' && *rest <= 'Z') || (*rest >= 'a' && *rest <= 'z');
                if (!kd->bytes)
                        return tv_limits_errf(err, -EINVAL,
                                              "%s=\"%s\": trailing characters after the number "
                                              "(IOPS take no suffix)",
                                              what, shown);
                if (strcmp(rest, "Ki") == 0)
                        mult = 1ULL << 10;
                else if (strcmp(rest, "Mi") == 0)
                        mult = 1ULL << 20;
                else if (strcmp(rest, "Gi") == 0)
                        mult = 1ULL << 30;
                else if (letter)
                        return tv_limits_errf(err, -EINVAL,
                                              "%s=\"%s\": unknown suffix (use Ki, Mi or Gi, "
                                              "e.g. 100Mi)",
                                              what, shown);
                else
                        return tv_limits_errf(err, -EINVAL,
                                              "%s=\"%s\": trailing characters after the number",
                                              what, shown);
        }
        if (v > kd->max / mult)
                return tv_limits_errf(err, -EINVAL, "%s=\"%s\": too large (at most %" PRIu64 ")",
                                      what, shown, kd->max);
        v *= mult;
        if (v == 0)
                return tv_limits_errf(err, -EINVAL,
                                      "%s=\"%s\": 0 is not a limit; leave the parameter out for "
                                      "no limit",
                                      what, shown);
        if (v < min)
                return tv_limits_errf(err, -EINVAL,
                                      "%s=\"%s\": must be at least %" PRIu64
                                      " (the kernel's smallest limit)",
                                      what, shown, min);
        *ret = v;
        return 0;
}

/* ---- validation ------------------------------------------------------- */

static int validate_named(const tv_limits_spec *spec, const slot_names *names,
                          tv_limits_error *err) {
        for (int k = 0; k < TV_LIMIT_KIND_COUNT; k++) {
                const tv_limit_rule *r = &spec->rule[k];

                for (field f = 0; f < FIELD_COUNT; f++) {
                        uint64_t v = rule_get(r, f);
                        if (v != 0 && (v < field_min(f) || v > kinds[k].max))
                                return tv_limits_errf(err, -EINVAL,
                                                      "parameter %s=%" PRIu64
                                                      " is out of range %" PRIu64 "..%" PRIu64,
                                                      slot_name(names, k, f), v, field_min(f),
                                                      kinds[k].max);
                }
                if (r->absolute && r->per_gib)
                        return tv_limits_errf(err, -EINVAL,
                                              "parameters %s and %s conflict: give an absolute "
                                              "%s limit or a per-GiB one, not both",
                                              slot_name(names, k, FIELD_ABSOLUTE),
                                              slot_name(names, k, FIELD_PER_GIB), kinds[k].words);
                for (field f = FIELD_FLOOR; f <= FIELD_CEILING; f++)
                        if (rule_get(r, f) && !r->per_gib)
                                return tv_limits_errf(err, -EINVAL,
                                                      "parameter %s needs %s: a floor or ceiling "
                                                      "bounds a per-GiB limit",
                                                      slot_name(names, k, f),
                                                      kinds[k].param[FIELD_PER_GIB]);
                if (r->floor && r->ceiling && r->floor > r->ceiling)
                        return tv_limits_errf(err, -EINVAL,
                                              "parameter %s=%" PRIu64 " is above %s=%" PRIu64,
                                              slot_name(names, k, FIELD_FLOOR), r->floor,
                                              slot_name(names, k, FIELD_CEILING), r->ceiling);
        }
        return 0;
}

int tv_limits_spec_validate(const tv_limits_spec *spec, tv_limits_error *err) {
        tv_limits_err_clear(err);
        if (!spec)
                return tv_limits_errf(err, -EINVAL, "no limits spec");
        return validate_named(spec, NULL, err);
}

bool tv_limits_spec_is_empty(const tv_limits_spec *spec) {
        static const tv_limits_spec empty;
        return memcmp(spec, &empty, sizeof(empty)) == 0;
}

/* ---- parameters --------------------------------------------------------- */

/* Which slots a parameter sets: one (kind, field), or both IOPS kinds. */
static int param_lookup(const char *key, int ret_kinds[2], size_t *ret_nk, field *ret_f) {
        if (strcmp(key, PARAM_IOPS) == 0) {
                ret_kinds[0] = TV_LIMIT_READ_IOPS;
                ret_kinds[1] = TV_LIMIT_WRITE_IOPS;
                *ret_nk = 2;
                *ret_f = FIELD_ABSOLUTE;
                return 0;
        }
        for (int k = 0; k < TV_LIMIT_KIND_COUNT; k++)
                for (field f = 0; f < FIELD_COUNT; f++)
                        if (strcmp(key, kinds[k].param[f]) == 0) {
                                ret_kinds[0] = k;
                                *ret_nk = 1;
                                *ret_f = f;
                                return 0;
                        }
        return -ENOENT;
}

int tv_limits_spec_from_params(const char *const *keys, const char *const *values, size_t n,
                               tv_limits_spec *ret_spec, tv_limits_error *err) {
        tv_limits_spec spec = {0};
        slot_names names = {{0}};
        int r;

        tv_limits_err_clear(err);
        if (n > 0 && (!keys || !values))
                return tv_limits_errf(err, -EINVAL, "no parameter arrays");

        for (size_t i = 0; i < n; i++) {
                int ks[2];
                size_t nk;
                field f;
                uint64_t v;
                char what[64];

                if (!keys[i])
                        return tv_limits_errf(err, -EINVAL, "parameter %zu has no name", i);
                if (param_lookup(keys[i], ks, &nk, &f) < 0)
                        continue; /* not ours */
                for (size_t j = 0; j < i; j++)
                        if (keys[j] && strcmp(keys[j], keys[i]) == 0)
                                return tv_limits_errf(err, -EINVAL, "parameter %s given twice",
                                                      keys[i]);
                (void)snprintf(what, sizeof(what), "parameter %s", keys[i]);
                r = parse_value(what, values[i], ks[0], f, &v, err);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < nk; j++) {
                        const char *prev = names[ks[j]][f];
                        if (prev)
                                return tv_limits_errf(err, -EINVAL,
                                                      "parameters %s and %s both set the %s "
                                                      "limit: give one",
                                                      prev, keys[i], kinds[ks[j]].words);
                        names[ks[j]][f] = keys[i];
                        *rule_field(&spec.rule[ks[j]], f) = v;
                }
        }

        r = validate_named(&spec, (const slot_names *)&names, err);
        if (r < 0)
                return r;
        *ret_spec = spec;
        return 0;
}

/* ---- resolve ------------------------------------------------------------ */

int tv_limits_resolve(const tv_limits_spec *spec, uint64_t capacity_bytes, tv_limits *ret_limits,
                      tv_limits_error *err) {
        uint64_t out[TV_LIMIT_KIND_COUNT] = {0};
        uint64_t gib;
        int r;

        tv_limits_err_clear(err);
        if (!spec)
                return tv_limits_errf(err, -EINVAL, "no limits spec");
        r = validate_named(spec, NULL, err);
        if (r < 0)
                return r;

        /* Rounded up, at least 1: the budget never falls below the promised
         * per-GiB rate. No overflow: UINT64_MAX / GiB + 1 fits. */
        gib = capacity_bytes / TV_LIMITS_GIB + (capacity_bytes % TV_LIMITS_GIB != 0);
        if (gib == 0)
                gib = 1;

        for (int k = 0; k < TV_LIMIT_KIND_COUNT; k++) {
                const tv_limit_rule *rl = &spec->rule[k];
                uint64_t v;

                if (rl->absolute) {
                        out[k] = rl->absolute;
                        continue;
                }
                if (!rl->per_gib)
                        continue;
                /* Saturate: a ceiling may still bring an overflow down. */
                v = rl->per_gib > UINT64_MAX / gib ? UINT64_MAX : rl->per_gib * gib;
                if (rl->floor && v < rl->floor)
                        v = rl->floor;
                if (rl->ceiling && v > rl->ceiling)
                        v = rl->ceiling;
                if (v < TV_LIMITS_VALUE_MIN)
                        v = TV_LIMITS_VALUE_MIN;
                if (v > kinds[k].max)
                        return tv_limits_errf(err, -EINVAL,
                                              "parameter %s=%" PRIu64 " for a %" PRIu64
                                              " GiB volume exceeds the kernel's largest %s "
                                              "limit %" PRIu64 "; set %s",
                                              kinds[k].param[FIELD_PER_GIB], rl->per_gib, gib,
                                              kinds[k].words, kinds[k].max,
                                              kinds[k].param[FIELD_CEILING]);
                out[k] = v;
        }

        *ret_limits = (tv_limits){
                .read_iops = out[TV_LIMIT_READ_IOPS],
                .write_iops = out[TV_LIMIT_WRITE_IOPS],
                .read_bps = out[TV_LIMIT_READ_BPS],
                .write_bps = out[TV_LIMIT_WRITE_BPS],
        };
        return 0;
}

/* ---- effective limits ----------------------------------------------------- */

bool tv_limits_is_unlimited(const tv_limits *l) {
        return !l->read_iops && !l->write_iops && !l->read_bps && !l->write_bps;
}

bool tv_limits_equal(const tv_limits *a, const tv_limits *b) {
        return a->read_iops == b->read_iops && a->write_iops == b->write_iops &&
               a->read_bps == b->read_bps && a->write_bps == b->write_bps;
}

static bool value_valid(uint64_t v, uint64_t max) {
        return v == 0 || (v >= TV_LIMITS_VALUE_MIN && v <= max);
}

bool tv_limits_valid(const tv_limits *l) {
        return l && value_valid(l->read_iops, TV_LIMITS_IOPS_MAX) &&
               value_valid(l->write_iops, TV_LIMITS_IOPS_MAX) &&
               value_valid(l->read_bps, TV_LIMITS_BPS_MAX) &&
               value_valid(l->write_bps, TV_LIMITS_BPS_MAX);
}

/* ---- the spec as a string ------------------------------------------------ */

#define SPEC_VERSION "v1"

int tv_limits_spec_to_string(const tv_limits_spec *spec, char ret_buf[TV_LIMITS_SPEC_STRING_MAX]) {
        char buf[TV_LIMITS_SPEC_STRING_MAX];
        size_t o;

        if (!spec || validate_named(spec, NULL, NULL) < 0)
                return -EINVAL;

        o = (size_t)snprintf(buf, sizeof(buf), "%s", SPEC_VERSION);
        for (int k = 0; k < TV_LIMIT_KIND_COUNT; k++)
                for (field f = 0; f < FIELD_COUNT; f++) {
                        uint64_t v = rule_get(&spec->rule[k], f);
                        const char *suffix = "";

                        if (!v)
                                continue;
                        if (kinds[k].bytes) {
                                static const struct {
                                        const char *s;
                                        unsigned shift;
                                } units[] = {{"Gi", 30}, {"Mi", 20}, {"Ki", 10}};
                                for (size_t u = 0; u < ELEMENTSOF(units); u++)
                                        if (v % (1ULL << units[u].shift) == 0) {
                                                v >>= units[u].shift;
                                                suffix = units[u].s;
                                                break;
                                        }
                        }
                        /* At most 12 fields (absolute excludes per-GiB and its
                         * bounds) of at most 25 chars + "v1": never truncated. */
                        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "/%s%s:%" PRIu64 "%s",
                                              kinds[k].code, field_codes[f], v, suffix);
                }
        memcpy(ret_buf, buf, o + 1);
        return (int)o;
}

static int code_lookup(const char *s, size_t n, int *ret_k, field *ret_f) {
        for (int k = 0; k < TV_LIMIT_KIND_COUNT; k++)
                for (field f = 0; f < FIELD_COUNT; f++) {
                        size_t kl = strlen(kinds[k].code), fl = strlen(field_codes[f]);
                        if (n == kl + fl && strncmp(s, kinds[k].code, kl) == 0 &&
                            strncmp(s + kl, field_codes[f], fl) == 0) {
                                *ret_k = k;
                                *ret_f = f;
                                return 0;
                        }
                }
        return -ENOENT;
}

int tv_limits_spec_from_string(const char *s, tv_limits_spec *ret_spec, tv_limits_error *err) {
        tv_limits_spec spec = {0};
        bool seen[TV_LIMIT_KIND_COUNT][FIELD_COUNT] = {{false}};
        char shown[48];
        const char *p;
        int r;

        tv_limits_err_clear(err);
        if (!s)
                return tv_limits_errf(err, -EINVAL, "no stored limits string");
        (void)tv_limits_show(s, shown, sizeof(shown));
        if (strncmp(s, SPEC_VERSION, strlen(SPEC_VERSION)) != 0 ||
            (s[strlen(SPEC_VERSION)] != '\0' && s[strlen(SPEC_VERSION)] != '/'))
                return tv_limits_errf(err, -EINVAL,
                                      "stored limits \"%s\": not a " SPEC_VERSION " limits string",
                                      shown);

        p = s + strlen(SPEC_VERSION);
        while (*p == '/') {
                const char *item = p + 1, *end = strchrnul(item, '/'), *colon;
                char code[8], value[32], what[48];
                size_t cn, vn;
                int k;
                field f;
                uint64_t v;

                colon = memchr(item, ':', (size_t)(end - item));
                if (!colon)
                        return tv_limits_errf(err, -EINVAL,
                                              "stored limits \"%s\": field without ':'", shown);
                cn = (size_t)(colon - item);
                vn = (size_t)(end - colon - 1);
                if (cn >= sizeof(code) || code_lookup(item, cn, &k, &f) < 0)
                        return tv_limits_errf(err, -EINVAL,
                                              "stored limits \"%s\": unknown field \"%.*s\"",
                                              shown, (int)(cn < 8 ? cn : 8), item);
                memcpy(code, item, cn);
                code[cn] = '\0';
                if (seen[k][f])
                        return tv_limits_errf(err, -EINVAL,
                                              "stored limits \"%s\": field %s given twice", shown,
                                              code);
                if (vn >= sizeof(value))
                        return tv_limits_errf(err, -EINVAL,
                                              "stored limits \"%s\": value of %s too long", shown,
                                              code);
                memcpy(value, colon + 1, vn);
                value[vn] = '\0';
                (void)snprintf(what, sizeof(what), "stored limits field %s", code);
                r = parse_value(what, value, k, f, &v, err);
                if (r < 0)
                        return r;
                seen[k][f] = true;
                *rule_field(&spec.rule[k], f) = v;
                p = end;
        }
        if (*p != '\0')
                return tv_limits_errf(err, -EINVAL, "stored limits \"%s\": trailing characters",
                                      shown);

        tv_limits_error inner = {{0}};
        r = validate_named(&spec, NULL, &inner);
        if (r < 0)
                return tv_limits_errf(err, r, "stored limits \"%s\": %s", shown, inner.message);
        *ret_spec = spec;
        return 0;
}
