/* Kernel text formats: io.max, io.stat, blkio.throttle.*_device and
 * /proc/self/mountinfo. Pure; tests/unit/test_limits_cgroup.c feeds them
 * text captured from a 6.1 kernel. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

int tv_limits_format_io_max(uint32_t major, uint32_t minor, const tv_limits *limits, char *buf,
                            size_t size) {
        char a[21], b[21], c[21], d[21];
        int n;

        if (!tv_limits_valid(limits))
                return -EINVAL;
        n = snprintf(buf, size, "%" PRIu32 ":%" PRIu32 " riops=%s wiops=%s rbps=%s wbps=%s\n",
                     major, minor, tv_limits_value_str(limits->read_iops, a),
                     tv_limits_value_str(limits->write_iops, b),
                     tv_limits_value_str(limits->read_bps, c),
                     tv_limits_value_str(limits->write_bps, d));
        if (n < 0 || (size_t)n >= size)
                return -ENOBUFS;
        return n;
}

/* One line of the "MAJ:MIN ..." files. `line` is [s, s+n). */
static int parse_devnum(const char *s, size_t n, uint32_t *ret_major, uint32_t *ret_minor) {
        const char *colon = memchr(s, ':', n);
        uint64_t ma, mi;

        if (!colon)
                return -EBADMSG;
        if (tv_limits_parse_u64(s, (size_t)(colon - s), &ma) < 0 ||
            tv_limits_parse_u64(colon + 1, n - (size_t)(colon - s) - 1, &mi) < 0 ||
            ma > UINT32_MAX || mi > UINT32_MAX)
                return -EBADMSG;
        *ret_major = (uint32_t)ma;
        *ret_minor = (uint32_t)mi;
        return 0;
}

/* Walk whitespace-separated tokens of [p, end). */
static bool next_token(const char **p, const char *end, const char **ret_tok, size_t *ret_n) {
        while (*p < end && (**p == ' ' || **p == '\t'))
                (*p)++;
        if (*p >= end)
                return false;
        *ret_tok = *p;
        while (*p < end && **p != ' ' && **p != '\t')
                (*p)++;
        *ret_n = (size_t)(*p - *ret_tok);
        return true;
}

/* Calls `on_pair(key, klen, value, vlen, userdata)` for every key=value of
 * the line of MAJ:MIN in `text`. Returns 1 when the device has a line, 0
 * when not, -EBADMSG for a malformed line (or what on_pair returns < 0). */
typedef int (*pair_fn)(const char *k, size_t kn, const char *v, size_t vn, void *userdata);

static int find_device_line(const char *text, uint32_t major, uint32_t minor, pair_fn on_pair,
                            void *userdata) {
        int found = 0;

        for (const char *line = text; *line;) {
                const char *end = strchrnul(line, '\n'), *p = line, *tok;
                size_t tn;
                uint32_t ma, mi;

                if (next_token(&p, end, &tok, &tn)) {
                        if (parse_devnum(tok, tn, &ma, &mi) < 0)
                                return -EBADMSG;
                        bool ours = ma == major && mi == minor;
                        if (ours && found)
                                return -EBADMSG; /* the kernel lists a device once */
                        while (next_token(&p, end, &tok, &tn)) {
                                const char *eq = memchr(tok, '=', tn);
                                if (!eq || eq == tok)
                                        return -EBADMSG;
                                if (ours) {
                                        int r = on_pair(tok, (size_t)(eq - tok), eq + 1,
                                                        tn - (size_t)(eq - tok) - 1, userdata);
                                        if (r < 0)
                                                return r;
                                }
                        }
                        if (ours)
                                found = 1;
                }
                line = *end ? end + 1 : end;
        }
        return found;
}

static bool key_is(const char *k, size_t kn, const char *want) {
        return kn == strlen(want) && strncmp(k, want, kn) == 0;
}

static int io_max_pair(const char *k, size_t kn, const char *v, size_t vn, void *userdata) {
        tv_limits *l = userdata;
        uint64_t *slot, val;

        if (key_is(k, kn, "riops"))
                slot = &l->read_iops;
        else if (key_is(k, kn, "wiops"))
                slot = &l->write_iops;
        else if (key_is(k, kn, "rbps"))
                slot = &l->read_bps;
        else if (key_is(k, kn, "wbps"))
                slot = &l->write_bps;
        else
                return 0; /* a key of a newer kernel */
        if (vn == 3 && strncmp(v, "max", 3) == 0)
                val = 0;
        else if (tv_limits_parse_u64(v, vn, &val) < 0 || val == 0)
                return -EBADMSG;
        *slot = val;
        return 0;
}

int tv_limits_parse_io_max(const char *text, uint32_t major, uint32_t minor,
                           tv_limits *ret_limits) {
        tv_limits l = {0};
        int r;

        if (!text)
                return -EINVAL;
        r = find_device_line(text, major, minor, io_max_pair, &l);
        if (r < 0)
                return r;
        *ret_limits = l;
        return r;
}

static int io_stat_pair(const char *k, size_t kn, const char *v, size_t vn, void *userdata) {
        tv_io_stat *s = userdata;
        static const struct {
                const char *key;
                size_t off;
        } keys[] = {
                {"rbytes", offsetof(tv_io_stat, rbytes)}, {"wbytes", offsetof(tv_io_stat, wbytes)},
                {"rios", offsetof(tv_io_stat, rios)},     {"wios", offsetof(tv_io_stat, wios)},
                {"dbytes", offsetof(tv_io_stat, dbytes)}, {"dios", offsetof(tv_io_stat, dios)},
        };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (key_is(k, kn, keys[i].key)) {
                        uint64_t val;
                        if (tv_limits_parse_u64(v, vn, &val) < 0)
                                return -EBADMSG;
                        memcpy((char *)s + keys[i].off, &val, sizeof(val));
                        return 0;
                }
        return 0; /* cost.*, rlat, ... */
}

int tv_cgroup_parse_io_stat(const char *text, uint32_t major, uint32_t minor,
                            tv_io_stat *ret_stat) {
        tv_io_stat s = {0};
        int r;

        if (!text)
                return -EINVAL;
        r = find_device_line(text, major, minor, io_stat_pair, &s);
        if (r < 0)
                return r;
        *ret_stat = s;
        return r;
}

int tv_limits_parse_blkio_throttle(const char *text, uint32_t major, uint32_t minor,
                                   uint64_t *ret_value) {
        uint64_t value = 0;
        int found = 0;

        if (!text)
                return -EINVAL;
        for (const char *line = text; *line;) {
                const char *end = strchrnul(line, '\n'), *p = line, *tok, *vtok;
                size_t tn, vtn;
                uint32_t ma, mi;

                if (next_token(&p, end, &tok, &tn)) {
                        if (parse_devnum(tok, tn, &ma, &mi) < 0 ||
                            !next_token(&p, end, &vtok, &vtn))
                                return -EBADMSG;
                        uint64_t v;
                        if (tv_limits_parse_u64(vtok, vtn, &v) < 0 ||
                            next_token(&p, end, &tok, &tn))
                                return -EBADMSG;
                        if (ma == major && mi == minor) {
                                if (found)
                                        return -EBADMSG;
                                found = 1;
                                value = v;
                        }
                }
                line = *end ? end + 1 : end;
        }
        *ret_value = value;
        return found;
}

/* ---- mountinfo ----------------------------------------------------------- */

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape_octal(const char *s, size_t n) {
        char *out = malloc(n + 1);
        size_t o = 0;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' &&
                    s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' &&
                    s[i + 3] <= '7') {
                        out[o++] = (char)((s[i + 1] - '0') << 6 | (s[i + 2] - '0') << 3 |
                                          (s[i + 3] - '0'));
                        i += 3;
                } else
                        out[o++] = s[i];
        }
        out[o] = '\0';
        return out;
}

void tv_limits_mounts_free(tv_limits_mount *m, size_t n) {
        if (!m)
                return;
        for (size_t i = 0; i < n; i++)
                free(m[i].point);
        free(m);
}

/* Does the comma-separated option list [s, s+n) have `opt`? */
static bool has_option(const char *s, size_t n, const char *opt) {
        size_t k = strlen(opt);
        for (size_t i = 0; i < n;) {
                size_t j = i;
                while (j < n && s[j] != ',')
                        j++;
                if (j - i == k && strncmp(s + i, opt, k) == 0)
                        return true;
                i = j + 1;
        }
        return false;
}

int tv_limits_parse_mounts(const char *text, tv_limits_mount **ret_mounts, size_t *ret_n) {
        tv_limits_mount *m = NULL;
        size_t n = 0;
        int r = 0;

        for (const char *line = text; *line;) {
                const char *end = strchrnul(line, '\n'), *p = line;
                const char *tok[6], *fstype = NULL, *super = NULL, *t;
                size_t tl[6], fsl = 0, superl = 0, tn;
                size_t i = 0;
                bool dash = false;

                /* ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER */
                while (i < 6 && next_token(&p, end, &tok[i], &tl[i]))
                        i++;
                if (i == 0) {
                        line = *end ? end + 1 : end;
                        continue;
                }
                if (i < 6) {
                        r = -EBADMSG;
                        break;
                }
                while (next_token(&p, end, &t, &tn))
                        if (tn == 1 && *t == '-') {
                                dash = true;
                                break;
                        }
                if (!dash || !next_token(&p, end, &fstype, &fsl) || !next_token(&p, end, &t, &tn) ||
                    !next_token(&p, end, &super, &superl)) {
                        r = -EBADMSG;
                        break;
                }

                tv_cgroup_version v = 0;
                if (fsl == 7 && strncmp(fstype, "cgroup2", 7) == 0)
                        v = TV_CGROUP_V2;
                else if (fsl == 6 && strncmp(fstype, "cgroup", 6) == 0 &&
                         has_option(super, superl, "blkio"))
                        v = TV_CGROUP_V1;
                if (v) {
                        tv_limits_mount *nm = realloc(m, (n + 1) * sizeof(*m));
                        if (!nm) {
                                r = -ENOMEM;
                                break;
                        }
                        m = nm;
                        m[n].version = v;
                        m[n].point = unescape_octal(tok[4], tl[4]);
                        if (!m[n].point) {
                                r = -ENOMEM;
                                break;
                        }
                        n++;
                }
                line = *end ? end + 1 : end;
        }
        if (r < 0) {
                tv_limits_mounts_free(m, n);
                return r;
        }
        *ret_mounts = m;
        *ret_n = n;
        return 0;
}

int tv_cgroup_parse_mountinfo(const char *text, tv_cgroup_version version,
                              char **ret_mount_point) {
        tv_limits_mount *m = NULL;
        size_t n = 0;
        int r;

        if (!text)
                return -EINVAL;
        r = tv_limits_parse_mounts(text, &m, &n);
        if (r < 0)
                return r;
        r = -ENOENT;
        for (size_t i = 0; i < n; i++)
                if (m[i].version == version) {
                        *ret_mount_point = TAKE_PTR(m[i].point);
                        r = 0;
                        break;
                }
        tv_limits_mounts_free(m, n);
        return r;
}
