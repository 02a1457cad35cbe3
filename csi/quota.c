/* Tenant quotas and pool thresholds: the config file and the arithmetic. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "quota.h"
#include "thinvault/util.h"

void quota_config_init(tv_quota_config *c) {
        *c = (tv_quota_config){.max_data_percent = 90, .max_metadata_percent = 90};
}

void quota_config_clear(tv_quota_config *c) {
        for (size_t i = 0; i < c->n_tenants; i++)
                free(c->tenants[i].tenant);
        free(c->tenants);
        quota_config_init(c);
}

static int parse_bytes(json_t *v, uint64_t *ret) {
        static const char *const suffixes[] = {"Ki", "Mi", "Gi", "Ti", "Pi"};
        const char *s;
        char *end;
        unsigned long long n;

        if (json_is_integer(v)) {
                if (json_integer_value(v) < 0)
                        return -EINVAL;
                *ret = (uint64_t)json_integer_value(v);
                return 0;
        }
        if (!json_is_string(v))
                return -EINVAL;
        s = json_string_value(v);
        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        n = strtoull(s, &end, 10);
        if (errno)
                return -EINVAL;
        if (*end == '\0') {
                *ret = n;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                if (strcmp(end, suffixes[i]) == 0) {
                        unsigned shift = 10 * (unsigned)(i + 1);
                        if (n > (UINT64_MAX >> shift))
                                return -EINVAL;
                        *ret = (uint64_t)n << shift;
                        return 0;
                }
        return -EINVAL;
}

static int parse_quota(json_t *o, const char *where, tv_tenant_quota *q, char *err, size_t err_size) {
        const char *key;
        json_t *v;

        if (!json_is_object(o)) {
                snprintf(err, err_size, "%s: expected an object", where);
                return -EINVAL;
        }
        json_object_foreach(o, key, v) {
                if (strcmp(key, "maxBytes") == 0) {
                        if (parse_bytes(v, &q->max_bytes) < 0) {
                                snprintf(err, err_size, "%s.maxBytes: expected bytes, e.g. 107374182400 or \"100Gi\"", where);
                                return -EINVAL;
                        }
                } else if (strcmp(key, "maxVolumes") == 0) {
                        if (!json_is_integer(v) || json_integer_value(v) < 0) {
                                snprintf(err, err_size, "%s.maxVolumes: expected a non-negative integer", where);
                                return -EINVAL;
                        }
                        q->max_volumes = (uint64_t)json_integer_value(v);
                } else {
                        snprintf(err, err_size, "%s: unknown key \"%.64s\" (maxBytes, maxVolumes)", where, key);
                        return -EINVAL;
                }
        }
        return 0;
}

static int parse_percent(json_t *v, unsigned max, unsigned *ret) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (json_int_t)max)
                return -EINVAL;
        *ret = (unsigned)json_integer_value(v);
        return 0;
}

static int parse_pool(json_t *o, tv_quota_config *c, char *err, size_t err_size) {
        const char *key;
        json_t *v;

        if (!json_is_object(o)) {
                snprintf(err, err_size, "pool: expected an object");
                return -EINVAL;
        }
        json_object_foreach(o, key, v) {
                int r;
                if (strcmp(key, "maxDataPercent") == 0)
                        r = parse_percent(v, 100, &c->max_data_percent);
                else if (strcmp(key, "maxMetadataPercent") == 0)
                        r = parse_percent(v, 100, &c->max_metadata_percent);
                else if (strcmp(key, "maxOverprovisionPercent") == 0)
                        r = parse_percent(v, 100000, &c->max_overprovision_percent);
                else {
                        snprintf(err, err_size,
                                 "pool: unknown key \"%.64s\" (maxDataPercent, maxMetadataPercent, maxOverprovisionPercent)", key);
                        return -EINVAL;
                }
                if (r < 0) {
                        snprintf(err, err_size, "pool.%s: expected an integer percentage", key);
                        return -EINVAL;
                }
        }
        return 0;
}

static int parse_tenants(json_t *o, tv_quota_config *c, char *err, size_t err_size) {
        const char *key;
        json_t *v;
        char where[128];

        if (!json_is_object(o)) {
                snprintf(err, err_size, "tenants: expected an object of tenant name -> quota");
                return -EINVAL;
        }
        c->tenants = calloc(json_object_size(o) + 1, sizeof(*c->tenants));
        if (!c->tenants)
                return -ENOMEM;
        json_object_foreach(o, key, v) {
                tv_tenant_override *t = &c->tenants[c->n_tenants];
                t->quota = c->dflt;
                snprintf(where, sizeof(where), "tenants.%.64s", key);
                t->tenant = strdup(key);
                if (!t->tenant)
                        return -ENOMEM;
                c->n_tenants++;
                if (parse_quota(v, where, &t->quota, err, err_size) < 0)
                        return -EINVAL;
        }
        return 0;
}

/* Takes a reference-owning root (NULL when the JSON did not load). */
static int parse_root(json_t *root, const json_error_t *jerr, const char *where, tv_quota_config *c, char *err,
                      size_t err_size) {
        const char *key;
        json_t *v;
        int r = 0;

        quota_config_init(c);
        if (!root) {
                snprintf(err, err_size, "%s line %d: %s", where, jerr->line, jerr->text);
                return -EINVAL;
        }
        if (!json_is_object(root)) {
                snprintf(err, err_size, "%s: expected a JSON object with pool, default, tenants", where);
                json_decref(root);
                return -EINVAL;
        }
        /* "default" first: tenant entries start from it. */
        v = json_object_get(root, "default");
        if (v)
                r = parse_quota(v, "default", &c->dflt, err, err_size);
        json_object_foreach(root, key, v) {
                if (r < 0)
                        break;
                if (strcmp(key, "pool") == 0)
                        r = parse_pool(v, c, err, err_size);
                else if (strcmp(key, "tenants") == 0)
                        r = parse_tenants(v, c, err, err_size);
                else if (strcmp(key, "default") != 0) {
                        snprintf(err, err_size, "unknown key \"%.64s\" (pool, default, tenants)", key);
                        r = -EINVAL;
                }
        }
        json_decref(root);
        if (r < 0)
                quota_config_clear(c);
        return r;
}

int quota_config_parse(const char *text, tv_quota_config *c, char *err, size_t err_size) {
        json_error_t jerr;
        return parse_root(json_loads(text, JSON_REJECT_DUPLICATES, &jerr), &jerr, "config", c, err, err_size);
}

int quota_config_load(const char *path, tv_quota_config *c, char *err, size_t err_size) {
        json_error_t jerr;
        return parse_root(json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), &jerr, path, c, err, err_size);
}

tv_tenant_quota quota_for(const tv_quota_config *c, const char *tenant) {
        for (size_t i = 0; i < c->n_tenants; i++)
                if (strcmp(c->tenants[i].tenant, tenant) == 0)
                        return c->tenants[i].quota;
        return c->dflt;
}

const char *format_bytes(uint64_t v, char *buf, size_t size) {
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        size_t u = 0;
        double d = (double)v;

        while (d >= 1024 && u + 1 < ELEMENTSOF(units)) {
                d /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%" PRIu64 " B", v);
        else
                snprintf(buf, size, "%.1f %s", d, units[u]);
        return buf;
}

int quota_check(const tv_tenant_quota *q, const char *tenant, uint64_t used_bytes, uint64_t used_volumes,
                uint64_t add_bytes, uint64_t add_volumes, char *msg, size_t msg_size) {
        char a[32], b[32], c[32];

        if (q->max_volumes && used_volumes + add_volumes > q->max_volumes) {
                snprintf(msg, msg_size, "tenant %s volume quota: %" PRIu64 " volumes of %" PRIu64 " allowed", tenant,
                         used_volumes, q->max_volumes);
                return -EDQUOT;
        }
        if (q->max_bytes && (add_bytes > UINT64_MAX - used_bytes || used_bytes + add_bytes > q->max_bytes)) {
                snprintf(msg, msg_size, "tenant %s capacity quota: %s provisioned of %s allowed, %s more requested",
                         tenant, format_bytes(used_bytes, a, sizeof(a)), format_bytes(q->max_bytes, b, sizeof(b)),
                         format_bytes(add_bytes, c, sizeof(c)));
                return -EDQUOT;
        }
        return 0;
}
