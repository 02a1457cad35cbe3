/* The pure half of metering: kernel text formats, table redaction and the
 * per-tenant sums. No I/O here, so all of it is tested on the host. */
#include <stdio.h>
#include <string.h>

#include "thinvault/meter.h"

/* ---- numbers ------------------------------------------------------------ */

/* An unsigned decimal of exactly `n` chars, no sign. */
static int parse_u64(const char *s, size_t n, uint64_t *ret) {
        uint64_t v = 0;

        if (n == 0)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                unsigned d;
                if (s[i] < '0' || s[i] > '9')
                        return -EBADMSG;
                d = (unsigned)(s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -EBADMSG;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ---- /sys/block/<dev>/stat ------------------------------------------------ */

int tv_meter_parse_blk_stat(const char *text, tv_blk_stat *ret_stat) {
        uint64_t v[17] = {0};
        size_t n = 0;
        const char *p = text;

        if (!text)
                return -EBADMSG;
        for (;;) {
                while (is_blank(*p))
                        p++;
                if (!*p)
                        break;
                const char *start = p;
                while (*p && !is_blank(*p))
                        p++;
                if (n == ELEMENTSOF(v))
                        return -EBADMSG; /* more fields than any kernel prints */
                if (parse_u64(start, (size_t)(p - start), &v[n]) < 0)
                        return -EBADMSG;
                n++;
        }
        if (n < 11)
                return -EBADMSG;
        *ret_stat = (tv_blk_stat){
                .reads = v[0],
                .read_merges = v[1],
                .read_sectors = v[2],
                .read_ticks_ms = v[3],
                .writes = v[4],
                .write_merges = v[5],
                .write_sectors = v[6],
                .write_ticks_ms = v[7],
                .in_flight = v[8],
                .io_ticks_ms = v[9],
                .time_in_queue_ms = v[10],
                .discards = v[11],
                .discard_merges = v[12],
                .discard_sectors = v[13],
                .discard_ticks_ms = v[14],
                .flushes = v[15],
                .flush_ticks_ms = v[16],
        };
        return 0;
}

/* ---- /proc/self/mountinfo ---------------------------------------------------- */

/* The kernel escapes space, tab, newline and backslash as \ooo. */
static char *unescape(const char *s, size_t n) {
        char *out = malloc(n + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
                    s[i + 3] >= '0' && s[i + 3] <= '7') {
                        *o++ = (char)(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
                        i += 3;
                } else
                        *o++ = s[i];
        }
        *o = '\0';
        return out;
}

static void mount_clear(tv_mount *m) {
        free(m->root);
        free(m->mount_point);
        free(m->fstype);
        free(m->source);
        *m = (tv_mount){0};
}

void tv_mount_table_clear(tv_mount_table *t) {
        if (!t)
                return;
        for (size_t i = 0; i < t->n; i++)
                mount_clear(&t->mounts[i]);
        free(t->mounts);
        *t = (tv_mount_table){0};
}

/* Split one line (no newline) into blank-separated fields. */
#define MOUNTINFO_MAX_FIELDS 64
static size_t split_fields(const char *line, size_t len, const char *f[], size_t flen[],
                           size_t max) {
        size_t n = 0, i = 0;

        while (i < len) {
                while (i < len && (line[i] == ' ' || line[i] == '\t'))
                        i++;
                if (i >= len)
                        break;
                size_t start = i;
                while (i < len && line[i] != ' ' && line[i] != '\t')
                        i++;
                if (n == max)
                        return n + 1; /* too many: the caller refuses */
                f[n] = line + start;
                flen[n] = i - start;
                n++;
        }
        return n;
}

static int parse_mount_line(const char *line, size_t len, tv_mount *ret) {
        const char *f[MOUNTINFO_MAX_FIELDS];
        size_t flen[MOUNTINFO_MAX_FIELDS], n, sep;
        uint64_t maj, min;
        const char *colon;
        tv_mount m = {0};

        n = split_fields(line, len, f, flen, MOUNTINFO_MAX_FIELDS);
        if (n > MOUNTINFO_MAX_FIELDS || n < 9)
                return -EBADMSG;
        /* 0 id, 1 parent, 2 MAJ:MIN, 3 root, 4 mount point, 5 options,
         * 6.. optional fields, "-", type, source, super options. */
        for (sep = 6; sep < n; sep++)
                if (flen[sep] == 1 && f[sep][0] == '-')
                        break;
        if (sep + 2 >= n)
                return -EBADMSG;
        colon = memchr(f[2], ':', flen[2]);
        if (!colon || parse_u64(f[2], (size_t)(colon - f[2]), &maj) < 0 ||
            parse_u64(colon + 1, flen[2] - (size_t)(colon - f[2]) - 1, &min) < 0 || maj > UINT32_MAX ||
            min > UINT32_MAX)
                return -EBADMSG;
        m.major = (uint32_t)maj;
        m.minor = (uint32_t)min;
        m.root = unescape(f[3], flen[3]);
        m.mount_point = unescape(f[4], flen[4]);
        m.fstype = unescape(f[sep + 1], flen[sep + 1]);
        m.source = unescape(f[sep + 2], flen[sep + 2]);
        if (!m.root || !m.mount_point || !m.fstype || !m.source) {
                mount_clear(&m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

int tv_meter_parse_mountinfo(const char *text, tv_mount_table *ret_table) {
        tv_mount_table t = {0};
        size_t cap = 0;
        const char *p = text ? text : "";

        while (*p) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                bool blank = true;

                for (size_t i = 0; i < len; i++)
                        if (!is_blank(p[i]))
                                blank = false;
                if (!blank) {
                        if (t.n == cap) {
                                size_t ncap = cap ? cap * 2 : 32;
                                tv_mount *nm = realloc(t.mounts, ncap * sizeof(*nm));
                                if (!nm) {
                                        tv_mount_table_clear(&t);
                                        return -ENOMEM;
                                }
                                t.mounts = nm;
                                cap = ncap;
                        }
                        int r = parse_mount_line(p, len, &t.mounts[t.n]);
                        if (r < 0) {
                                tv_mount_table_clear(&t);
                                return r;
                        }
                        t.n++;
                }
                p += len;
                if (*p == '\n')
                        p++;
        }
        *ret_table = t;
        return 0;
}

size_t tv_mount_table_find(const tv_mount_table *t, uint32_t major, uint32_t minor, size_t from) {
        for (size_t i = from; i < t->n; i++)
                if (t->mounts[i].major == major && t->mounts[i].minor == minor)
                        return i;
        return t->n;
}

/* ---- io.stat wait ------------------------------------------------------------ */

int tv_meter_parse_io_stat_wait(const char *text, uint32_t major, uint32_t minor,
                                uint64_t *ret_wait_us) {
        char dev[32];
        size_t dlen;
        const char *p = text ? text : "";

        dlen = (size_t)snprintf(dev, sizeof(dev), "%u:%u", major, minor);
        while (*p) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);

                if (len > dlen && memcmp(p, dev, dlen) == 0 && (p[dlen] == ' ' || p[dlen] == '\t')) {
                        uint64_t total = 0;
                        bool found = false;
                        size_t i = dlen;

                        while (i < len) {
                                while (i < len && (p[i] == ' ' || p[i] == '\t'))
                                        i++;
                                if (i >= len)
                                        break;
                                size_t start = i;
                                while (i < len && p[i] != ' ' && p[i] != '\t')
                                        i++;
                                const char *eq = memchr(p + start, '=', i - start);
                                if (!eq)
                                        return -EBADMSG;
                                size_t klen = (size_t)(eq - (p + start));
                                const char *val = eq + 1;
                                size_t vlen = i - start - klen - 1;
                                uint64_t v;
                                if (klen == 9 && memcmp(p + start, "cost.wait", 9) == 0) {
                                        if (parse_u64(val, vlen, &v) < 0)
                                                return -EBADMSG;
                                        total += v;
                                        found = true;
                                } else if (klen == 10 && memcmp(p + start, "delay_nsec", 10) == 0) {
                                        if (parse_u64(val, vlen, &v) < 0)
                                                return -EBADMSG;
                                        total += v / 1000;
                                        found = true;
                                }
                        }
                        if (!found)
                                return 0;
                        *ret_wait_us = total;
                        return 1;
                }
                p += len;
                if (*p == '\n')
                        p++;
        }
        return 0;
}

/* ---- table redaction ------------------------------------------------------------ */

/* Targets whose table line holds nothing secret. */
static const char *const plain_targets[] = {
        "linear", "striped", "thin", "thin-pool", "error", "zero", "snapshot-origin", "snapshot",
        "snapshot-merge", "mirror", "raid", "cache", "writecache", "multipath", "delay", "flakey",
};

int tv_meter_redact_table_params(const char *target, const char *params, char **ret_params) {
        char *out;

        if (!target || !params || !ret_params)
                return -EINVAL;
        if (strcmp(target, "crypt") == 0) {
                /* <cipher> <key> <iv_offset> <device path> <offset> [<#opt> <opt>...] */
                const char *f[5];
                size_t flen[5], n = 0, i = 0, len = strlen(params);

                while (i < len && n < 5) {
                        while (i < len && params[i] == ' ')
                                i++;
                        if (i >= len)
                                break;
                        f[n] = params + i;
                        while (i < len && params[i] != ' ')
                                i++;
                        flen[n] = (size_t)(params + i - f[n]);
                        n++;
                }
                if (n < 5)
                        return -EBADMSG;
                /* The key's bytes are skipped, never copied. */
                out = tv_asprintf("%.*s %s %s", (int)flen[0], f[0], TV_METER_REDACTED, f[2]);
        } else {
                bool plain = false;
                for (size_t i = 0; i < ELEMENTSOF(plain_targets); i++)
                        if (strcmp(target, plain_targets[i]) == 0)
                                plain = true;
                out = strdup(plain ? params : TV_METER_REDACTED);
        }
        if (!out)
                return -ENOMEM;
        *ret_params = out;
        return 0;
}

/* ---- records ---------------------------------------------------------------------- */

bool tv_meter_volume_encrypted(const tv_meter_volume *v) {
        return v->probed && v->probe_errno == 0 && v->luks.kind == TV_LUKS_KIND_OURS;
}

/* ---- per tenant -------------------------------------------------------------------- */

void tv_meter_tenants_free(tv_meter_tenant *t, size_t n) {
        if (!t)
                return;
        for (size_t i = 0; i < n; i++)
                free(t[i].tenant);
        free(t);
}

static int tenant_cmp(const void *a, const void *b) {
        return strcmp(((const tv_meter_tenant *)a)->tenant, ((const tv_meter_tenant *)b)->tenant);
}

static uint64_t add_sat(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

int tv_meter_aggregate(const tv_meter_volume *v, size_t n, tv_meter_tenant **ret_tenants,
                       size_t *ret_n) {
        tv_meter_tenant *t = NULL;
        size_t nt = 0;

        /* Tenants per node are few: a linear search per volume stays cheap
         * and keeps the result independent of the input order once sorted. */
        for (size_t i = 0; i < n; i++) {
                tv_meter_tenant *e = NULL;

                if (!v[i].tenant)
                        continue;
                for (size_t k = 0; k < nt; k++)
                        if (strcmp(t[k].tenant, v[i].tenant) == 0)
                                e = &t[k];
                if (!e) {
                        tv_meter_tenant *nt_ = realloc(t, (nt + 1) * sizeof(*t));
                        if (!nt_) {
                                tv_meter_tenants_free(t, nt);
                                return -ENOMEM;
                        }
                        t = nt_;
                        e = &t[nt];
                        *e = (tv_meter_tenant){.tenant = strdup(v[i].tenant)};
                        if (!e->tenant) {
                                tv_meter_tenants_free(t, nt);
                                return -ENOMEM;
                        }
                        nt++;
                }
                uint64_t alloc = v[i].usage_errno == 0 ? v[i].allocated_bytes : 0;
                if (v[i].snapshot) {
                        e->snapshots++;
                        e->snapshot_provisioned_bytes = add_sat(e->snapshot_provisioned_bytes, v[i].size_bytes);
                        e->snapshot_allocated_bytes = add_sat(e->snapshot_allocated_bytes, alloc);
                        continue;
                }
                e->volumes++;
                e->provisioned_bytes = add_sat(e->provisioned_bytes, v[i].size_bytes);
                e->allocated_bytes = add_sat(e->allocated_bytes, alloc);
                if (v[i].staged)
                        e->staged++;
                if (v[i].staged && v[i].fs_valid)
                        e->used_bytes = add_sat(e->used_bytes, v[i].fs_used_bytes);
        }
        if (nt > 1)
                qsort(t, nt, sizeof(*t), tenant_cmp);
        *ret_tenants = t;
        *ret_n = nt;
        return 0;
}
