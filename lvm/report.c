/* lvm2's JSON report -> tv_lv records. lvm2 2.03 prints every value as a
 * string ("lv_size":"12582912" with --units b --nosuffix, "" for a field
 * that does not apply), so numbers are parsed here, strictly. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "thinvault/lvm.h"

struct tv_lv {
        char *name, *vg, *uuid, *segtype, *attr, *pool, *origin, *path, *dm_path;
        uint64_t size;
        double data_percent;
        int64_t created;
        int64_t major, minor;
        tv_vg_info vg_info;
        tv_lvm_tag *tags; /* decoded tv. tags; key/value owned */
        size_t n_tags;
};

struct tv_lv_list {
        tv_lv **items;
        size_t n;
        bool has_vg_info;
        tv_vg_info vg_info;
};

/* ---- records ------------------------------------------------------------ */

void tv_lv_free(tv_lv *lv) {
        if (!lv)
                return;
        free(lv->name);
        free(lv->vg);
        free(lv->uuid);
        free(lv->segtype);
        free(lv->attr);
        free(lv->pool);
        free(lv->origin);
        free(lv->path);
        free(lv->dm_path);
        for (size_t i = 0; i < lv->n_tags; i++) {
                free((char *)lv->tags[i].key);
                free((char *)lv->tags[i].value);
        }
        free(lv->tags);
        free(lv);
}

const char *tv_lv_name(const tv_lv *lv) {
        return lv->name;
}
const char *tv_lv_vg(const tv_lv *lv) {
        return lv->vg;
}
const char *tv_lv_uuid(const tv_lv *lv) {
        return lv->uuid ? lv->uuid : "";
}
const char *tv_lv_segtype(const tv_lv *lv) {
        return lv->segtype;
}
const char *tv_lv_attr(const tv_lv *lv) {
        return lv->attr;
}
const char *tv_lv_pool(const tv_lv *lv) {
        return lv->pool;
}
const char *tv_lv_origin(const tv_lv *lv) {
        return lv->origin;
}
const char *tv_lv_path(const tv_lv *lv) {
        return lv->path;
}
const char *tv_lv_dm_path(const tv_lv *lv) {
        return lv->dm_path;
}
uint64_t tv_lv_size(const tv_lv *lv) {
        return lv->size;
}
/* lv_attr: (1) type, (2) permissions, (3) allocation, (4) fixed minor,
 * (5) state 'a' = active, ... */
bool tv_lv_active(const tv_lv *lv) {
        return strlen(lv->attr) >= 5 && lv->attr[4] == 'a';
}
bool tv_lv_read_only(const tv_lv *lv) {
        return strlen(lv->attr) >= 2 && (lv->attr[1] == 'r' || lv->attr[1] == 'R');
}
double tv_lv_data_percent(const tv_lv *lv) {
        return lv->data_percent;
}
int64_t tv_lv_created(const tv_lv *lv) {
        return lv->created;
}

int tv_lv_devnum(const tv_lv *lv, uint32_t *ret_major, uint32_t *ret_minor) {
        if (lv->major < 0 || lv->minor < 0)
                return -ENXIO;
        *ret_major = (uint32_t)lv->major;
        *ret_minor = (uint32_t)lv->minor;
        return 0;
}

const tv_lvm_tag *tv_lv_tags(const tv_lv *lv, size_t *ret_n) {
        *ret_n = lv->n_tags;
        return lv->tags;
}

const char *tv_lv_tag(const tv_lv *lv, const char *key) {
        for (size_t i = 0; i < lv->n_tags; i++)
                if (strcmp(lv->tags[i].key, key) == 0)
                        return lv->tags[i].value;
        return NULL;
}

/* ---- lists ---------------------------------------------------------------- */

void tv_lv_list_free(tv_lv_list *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                tv_lv_free(l->items[i]);
        free(l->items);
        free(l);
}

size_t tv_lv_list_size(const tv_lv_list *l) {
        return l->n;
}

const tv_lv *tv_lv_list_get(const tv_lv_list *l, size_t i) {
        return i < l->n ? l->items[i] : NULL;
}

int tv_lv_list_take(tv_lv_list *l, size_t i, tv_lv **ret_lv) {
        if (i >= l->n || !l->items[i])
                return -ENOENT;
        *ret_lv = TAKE_PTR(l->items[i]);
        return 0;
}

int tv_lv_list_vg_info(const tv_lv_list *l, tv_vg_info *ret_info) {
        if (!l->has_vg_info)
                return -ENODATA;
        *ret_info = l->vg_info;
        return 0;
}

/* ---- parsing ---------------------------------------------------------------- */

_printf_(2, 3) static int bad_report(tv_lvm_error *err, const char *fmt, ...) {
        if (err) {
                va_list ap;
                int n = snprintf(err->message, sizeof(err->message), "cannot parse lvm2 report: ");
                va_start(ap, fmt);
                if (n > 0 && (size_t)n < sizeof(err->message))
                        (void)vsnprintf(err->message + n, sizeof(err->message) - (size_t)n, fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

/* The string value of `field` in `row`; NULL when absent, -EBADMSG via
 * *ok = false when present but not a string. */
static const char *field_str(json_t *row, const char *field, bool *ok) {
        json_t *v = json_object_get(row, field);
        if (!v)
                return NULL;
        if (!json_is_string(v)) {
                *ok = false;
                return NULL;
        }
        return json_string_value(v);
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        if (!s || !*s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* "-1" for an inactive LV. */
static int parse_i64(const char *s, int64_t *ret) {
        char *end;
        if (!s || !*s)
                return -EINVAL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* "12.34" (or "12,34" under a locale with a decimal comma); "" = -1. */
static int parse_percent(const char *s, double *ret) {
        unsigned long whole = 0, frac = 0, scale = 1;
        const char *p = s;

        if (!s || !*s) {
                *ret = -1;
                return 0;
        }
        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++)
                whole = whole * 10 + (unsigned long)(*p - '0');
        if (*p == '.' || *p == ',')
                for (p++; *p >= '0' && *p <= '9' && scale < 1000000; p++) {
                        frac = frac * 10 + (unsigned long)(*p - '0');
                        scale *= 10;
                }
        if (*p)
                return -EINVAL;
        *ret = (double)whole + (double)frac / (double)scale;
        return 0;
}

/* lvm2's default report/time_format "%Y-%m-%d %T %z". */
static int parse_time(const char *s, int64_t *ret) {
        struct tm tm = {0};
        const char *end;

        if (!s || !*s) {
                *ret = 0;
                return 0;
        }
        end = strptime(s, "%Y-%m-%d %H:%M:%S %z", &tm);
        if (!end || *end)
                return -EINVAL;
        long off = tm.tm_gmtoff; /* timegm() resets it */
        *ret = (int64_t)timegm(&tm) - (int64_t)off;
        return 0;
}

/* *dst = a copy of `s`, or NULL when `s` is NULL or "" (lvm2's "no value"). */
static int dup_or_null(const char *s, char **dst) {
        *dst = NULL;
        if (!s || !*s)
                return 0;
        *dst = strdup(s);
        return *dst ? 0 : -ENOMEM;
}

static int parse_tags(tv_lv *lv, const char *tags) {
        if (!tags || !*tags)
                return 0;
        _cleanup_free_ char *copy = strdup(tags);
        if (!copy)
                return -ENOMEM;
        size_t max = 1;
        for (const char *c = copy; *c; c++)
                if (*c == ',')
                        max++;
        lv->tags = calloc(max, sizeof(tv_lvm_tag));
        if (!lv->tags)
                return -ENOMEM;
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                char *key = NULL, *value = NULL;
                int r = tv_lvm_tag_decode(t, &key, &value);
                if (r == -ENOMEM)
                        return r;
                if (r == -EINVAL) {
                        char q[256];
                        log_debug("skipping malformed tv tag", "lv=%s tag=%s", lv->name,
                                  tv_log_quote(t, q, sizeof(q)));
                }
                if (r < 0)
                        continue;
                lv->tags[lv->n_tags++] = (tv_lvm_tag){key, value};
        }
        return 0;
}

#define NEED_STR(dst, field)                                                                       \
        do {                                                                                       \
                const char *_s = field_str(row, field, &ok);                                       \
                if (!ok || !_s)                                                                    \
                        return bad_report(err, "row %zu: no string \"%s\"", idx, field);          \
                if (!((dst) = strdup(_s)))                                                         \
                        return -ENOMEM;                                                            \
        } while (0)

#define OPT_NUM(parse, field, dst, dflt)                                                           \
        do {                                                                                       \
                const char *_s = field_str(row, field, &ok);                                       \
                if (!ok)                                                                           \
                        return bad_report(err, "row %zu: \"%s\" is not a string", idx, field);    \
                if (!_s || !*_s)                                                                   \
                        (dst) = (dflt);                                                            \
                else if (parse(_s, &(dst)) < 0)                                                    \
                        return bad_report(err, "row %zu: bad %s \"%.40s\"", idx, field, _s);      \
        } while (0)

static int parse_row(json_t *row, size_t idx, tv_lv **ret_lv, tv_lvm_error *err) {
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        bool ok = true;
        const char *s;
        uint64_t dflt_u = 0;
        int64_t dflt_minus1 = -1;

        if (!json_is_object(row))
                return bad_report(err, "row %zu is not an object", idx);
        lv = calloc(1, sizeof(*lv));
        if (!lv)
                return -ENOMEM;

        NEED_STR(lv->name, "lv_name");
        NEED_STR(lv->vg, "vg_name");
        NEED_STR(lv->attr, "lv_attr");
        NEED_STR(lv->segtype, "segtype");
        s = field_str(row, "lv_size", &ok);
        if (!ok || parse_u64(s, &lv->size) < 0)
                return bad_report(err, "row %zu: bad or missing lv_size", idx);

        s = field_str(row, "lv_uuid", &ok);
        if (s && !(lv->uuid = strdup(s)))
                return -ENOMEM;
        if (dup_or_null(field_str(row, "pool_lv", &ok), &lv->pool) < 0 ||
            dup_or_null(field_str(row, "origin", &ok), &lv->origin) < 0 ||
            dup_or_null(field_str(row, "lv_path", &ok), &lv->path) < 0 ||
            dup_or_null(field_str(row, "lv_dm_path", &ok), &lv->dm_path) < 0)
                return -ENOMEM;
        if (!ok)
                return bad_report(err, "row %zu: a name field is not a string", idx);

        OPT_NUM(parse_percent, "data_percent", lv->data_percent, -1.0);
        OPT_NUM(parse_i64, "lv_kernel_major", lv->major, dflt_minus1);
        OPT_NUM(parse_i64, "lv_kernel_minor", lv->minor, dflt_minus1);
        OPT_NUM(parse_time, "lv_time", lv->created, 0);
        OPT_NUM(parse_u64, "vg_extent_size", lv->vg_info.extent_bytes, dflt_u);
        OPT_NUM(parse_u64, "vg_size", lv->vg_info.size_bytes, dflt_u);
        OPT_NUM(parse_u64, "vg_free", lv->vg_info.free_bytes, dflt_u);

        s = field_str(row, "lv_tags", &ok);
        if (!ok)
                return bad_report(err, "row %zu: lv_tags is not a string", idx);
        int r = parse_tags(lv, s);
        if (r < 0)
                return r;

        *ret_lv = TAKE_PTR(lv);
        return 0;
}

static bool keep_row(const tv_lv *lv, const char *only_pool) {
        if (!only_pool)
                return true;
        return strcmp(lv->segtype, "thin") == 0 && lv->pool && strcmp(lv->pool, only_pool) == 0;
}

void tv_lv_list_keep_pool(tv_lv_list *l, const char *pool) {
        size_t k = 0;

        for (size_t i = 0; i < l->n; i++) {
                if (l->items[i] && keep_row(l->items[i], pool))
                        l->items[k++] = l->items[i];
                else
                        tv_lv_free(l->items[i]);
        }
        l->n = k;
}

int tv_lvm_parse_lvs_json(const char *json, const char *only_pool, tv_lv_list **ret_list,
                          tv_lvm_error *err) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = NULL;
        json_error_t jerr;
        json_t *reports, *report;
        size_t ri;

        if (err) {
                err->message[0] = '\0';
                err->lvm_line[0] = '\0';
        }
        if (!json)
                return bad_report(err, "no output");
        root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
                return bad_report(err, "line %d: %s", jerr.line, jerr.text);
        reports = json_object_get(root, "report");
        if (!json_is_array(reports))
                return bad_report(err, "no \"report\" array");

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;

        json_array_foreach(reports, ri, report) {
                json_t *rows = json_object_get(report, "lv"), *row;
                size_t i;

                if (!json_is_array(rows))
                        return bad_report(err, "report %zu has no \"lv\" array", ri);
                json_array_foreach(rows, i, row) {
                        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
                        int r = parse_row(row, i, &lv, err);
                        if (r < 0)
                                return r;
                        if (!l->has_vg_info) {
                                l->vg_info = lv->vg_info;
                                l->has_vg_info = true;
                        }
                        if (!keep_row(lv, only_pool))
                                continue;
                        tv_lv **items = realloc(l->items, (l->n + 1) * sizeof(*items));
                        if (!items)
                                return -ENOMEM;
                        l->items = items;
                        l->items[l->n++] = TAKE_PTR(lv);
                }
        }
        *ret_list = TAKE_PTR(l);
        return 0;
}
