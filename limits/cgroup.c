/* Enforcement: io.max (cgroup v2) or blkio.throttle.* (v1) of the pods'
 * parent cgroup, and finding that cgroup. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define IO_MAX "io.max"
#define IO_STAT "io.stat"
#define V1_PROBE "blkio.throttle.read_bps_device"
#define MOUNTINFO "/proc/self/mountinfo"

/* v1 files, in the order tv_limits_apply() writes them. */
static const char *const v1_files[4] = {
        "blkio.throttle.read_iops_device",
        "blkio.throttle.write_iops_device",
        "blkio.throttle.read_bps_device",
        "blkio.throttle.write_bps_device",
};

static uint64_t *v1_slot(tv_limits *l, size_t i) {
        switch (i) {
        case 0:
                return &l->read_iops;
        case 1:
                return &l->write_iops;
        case 2:
                return &l->read_bps;
        default:
                return &l->write_bps;
        }
}

static bool file_exists(const char *dir, const char *name) {
        _cleanup_free_ char *p = tv_asprintf("%s/%s", dir, name);
        struct stat st;
        return p && stat(p, &st) == 0;
}

static bool is_dir(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int tv_cgroup_io_version(const char *cgroup_dir, tv_limits_error *err) {
        tv_limits_err_clear(err);
        if (!cgroup_dir)
                return tv_limits_errf(err, -EINVAL, "no cgroup directory");
        if (!is_dir(cgroup_dir))
                return tv_limits_errf(err, -ENOENT, "cgroup %s does not exist", cgroup_dir);
        if (file_exists(cgroup_dir, IO_MAX))
                return TV_CGROUP_V2;
        if (file_exists(cgroup_dir, V1_PROBE))
                return TV_CGROUP_V1;
        return tv_limits_errf(err, -EOPNOTSUPP,
                              "cgroup %s has no " IO_MAX " (nor v1 blkio.throttle files): the io "
                              "controller is not enabled for it in its parent's "
                              "cgroup.subtree_control",
                              cgroup_dir);
}

/* Read the limits without clearing err (shared by read, apply, clear). */
static int read_limits(const char *dir, int version, uint32_t major, uint32_t minor,
                       tv_limits *ret, tv_limits_error *err) {
        tv_limits l = {0};
        int r;

        if (version == TV_CGROUP_V2) {
                _cleanup_free_ char *path = tv_asprintf("%s/" IO_MAX, dir), *text = NULL;
                if (!path)
                        return -ENOMEM;
                r = tv_limits_read_file(path, &text);
                if (r < 0)
                        return tv_limits_errf(err, r, "read %s: %s", path, strerror(-r));
                r = tv_limits_parse_io_max(text, major, minor, &l);
                if (r < 0)
                        return tv_limits_errf(err, r, "%s: cannot parse the kernel's text", path);
        } else {
                for (size_t i = 0; i < ELEMENTSOF(v1_files); i++) {
                        _cleanup_free_ char *path = tv_asprintf("%s/%s", dir, v1_files[i]);
                        _cleanup_free_ char *text = NULL;
                        if (!path)
                                return -ENOMEM;
                        r = tv_limits_read_file(path, &text);
                        if (r < 0)
                                return tv_limits_errf(err, r, "read %s: %s", path, strerror(-r));
                        r = tv_limits_parse_blkio_throttle(text, major, minor, v1_slot(&l, i));
                        if (r < 0)
                                return tv_limits_errf(err, r, "%s: cannot parse the kernel's text",
                                                      path);
                }
        }
        *ret = l;
        return 0;
}

int tv_limits_read(const char *cgroup_dir, uint32_t major, uint32_t minor, tv_limits *ret_limits,
                   tv_limits_error *err) {
        int version = tv_cgroup_io_version(cgroup_dir, err);
        if (version < 0)
                return version;
        return read_limits(cgroup_dir, version, major, minor, ret_limits, err);
}

static int write_error(tv_limits_error *err, int r, const char *path, uint32_t major,
                       uint32_t minor) {
        switch (r) {
        case -ENODEV:
                return tv_limits_errf(err, r, "write %s: the kernel has no block device %" PRIu32
                                      ":%" PRIu32, path, major, minor);
        case -EACCES:
        case -EPERM:
                return tv_limits_errf(err, r, "write %s: not allowed (the driver must run as root "
                                      "with the host's cgroup tree writable)", path);
        default:
                return tv_limits_errf(err, r, "write %s for %" PRIu32 ":%" PRIu32 ": %s", path,
                                      major, minor, strerror(-r));
        }
}

/* Write every value; no read-back. */
static int write_limits(const char *dir, int version, uint32_t major, uint32_t minor,
                        const tv_limits *limits, tv_limits_error *err) {
        char line[160];
        int n, r;

        if (version == TV_CGROUP_V2) {
                _cleanup_free_ char *path = tv_asprintf("%s/" IO_MAX, dir);
                if (!path)
                        return -ENOMEM;
                n = tv_limits_format_io_max(major, minor, limits, line, sizeof(line));
                if (n < 0)
                        return tv_limits_errf(err, n, "cannot format io.max line");
                r = tv_limits_write_file(path, line, (size_t)n);
                if (r < 0)
                        return write_error(err, r, path, major, minor);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(v1_files); i++) {
                _cleanup_free_ char *path = tv_asprintf("%s/%s", dir, v1_files[i]);
                tv_limits copy = *limits;
                if (!path)
                        return -ENOMEM;
                /* v1: 0 removes the rule. */
                n = snprintf(line, sizeof(line), "%" PRIu32 ":%" PRIu32 " %" PRIu64 "\n", major,
                             minor, *v1_slot(&copy, i));
                r = tv_limits_write_file(path, line, (size_t)n);
                if (r < 0)
                        return write_error(err, r, path, major, minor);
        }
        return 0;
}

static void log_limits(const char *msg, const char *dir, int version, uint32_t major,
                       uint32_t minor, const tv_limits *l) {
        char q[256], a[21], b[21], c[21], d[21];

        log_info(msg,
                 "cgroup=%s cgroup_version=%d dev=%" PRIu32 ":%" PRIu32
                 " riops=%s wiops=%s rbps=%s wbps=%s",
                 tv_log_quote(dir, q, sizeof(q)), version, major, minor,
                 tv_limits_value_str(l->read_iops, a), tv_limits_value_str(l->write_iops, b),
                 tv_limits_value_str(l->read_bps, c), tv_limits_value_str(l->write_bps, d));
}

/* Read back and compare: the kernel clamps and drops silently in places,
 * and an audit must be able to trust what apply returned. */
static int verify(const char *dir, int version, uint32_t major, uint32_t minor,
                  const tv_limits *want, tv_limits_error *err) {
        tv_limits got;
        char g[128] = "?", w[128] = "?";
        int r;

        r = read_limits(dir, version, major, minor, &got, err);
        if (r < 0)
                return r;
        if (tv_limits_equal(&got, want))
                return 0;
        /* A value out of the kernel's range (a v1 "1") leaves "?". */
        (void)tv_limits_format_io_max(major, minor, &got, g, sizeof(g));
        (void)tv_limits_format_io_max(major, minor, want, w, sizeof(w));
        return tv_limits_errf(err, -EIO, "cgroup %s holds \"%s\" after writing \"%s\"", dir,
                              tv_strstrip_end(g), tv_strstrip_end(w));
}

int tv_limits_apply(const char *cgroup_dir, uint32_t major, uint32_t minor,
                    const tv_limits *limits, tv_limits_error *err) {
        int version, r;

        tv_limits_err_clear(err);
        if (!limits || !tv_limits_valid(limits))
                return tv_limits_errf(err, -EINVAL,
                                      "limits out of the kernel's range (0 or 2..max)");
        version = tv_cgroup_io_version(cgroup_dir, err);
        if (version < 0)
                return version;
        r = write_limits(cgroup_dir, version, major, minor, limits, err);
        if (r < 0)
                return r;
        r = verify(cgroup_dir, version, major, minor, limits, err);
        if (r < 0)
                return r;
        log_limits(tv_limits_is_unlimited(limits) ? "io limits cleared" : "io limits applied",
                   cgroup_dir, version, major, minor, limits);
        return 0;
}

int tv_limits_clear(const char *cgroup_dir, uint32_t major, uint32_t minor, tv_limits_error *err) {
        static const tv_limits none = {0};
        int version, r;

        tv_limits_err_clear(err);
        version = tv_cgroup_io_version(cgroup_dir, err);
        if (version < 0)
                return version;
        r = write_limits(cgroup_dir, version, major, minor, &none, err);
        /* A device that is gone took its rules with it: nothing to clear,
         * which the read-back below confirms. */
        if (r < 0 && r != -ENODEV)
                return r;
        tv_limits_err_clear(err);
        r = verify(cgroup_dir, version, major, minor, &none, err);
        if (r < 0)
                return r;
        log_limits("io limits cleared", cgroup_dir, version, major, minor, &none);
        return 0;
}

int tv_cgroup_read_io_stat(const char *cgroup_dir, uint32_t major, uint32_t minor,
                           tv_io_stat *ret_stat, tv_limits_error *err) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int version, r;

        version = tv_cgroup_io_version(cgroup_dir, err);
        if (version < 0)
                return version;
        if (version != TV_CGROUP_V2)
                return tv_limits_errf(err, -EOPNOTSUPP,
                                      "cgroup %s is cgroup v1: io.stat is v2 only", cgroup_dir);
        path = tv_asprintf("%s/" IO_STAT, cgroup_dir);
        if (!path)
                return -ENOMEM;
        r = tv_limits_read_file(path, &text);
        if (r < 0)
                return tv_limits_errf(err, r, "read %s: %s", path, strerror(-r));
        r = tv_cgroup_parse_io_stat(text, major, minor, ret_stat);
        if (r < 0)
                return tv_limits_errf(err, r, "%s: cannot parse the kernel's text", path);
        return 0;
}

/* ---- discovery ------------------------------------------------------------- */

typedef struct {
        tv_limits_mount *m;
        size_t n;
} mount_list;

static void mount_list_done(mount_list *l) {
        tv_limits_mounts_free(l->m, l->n);
}

static bool v2_has_io(const char *point) {
        _cleanup_free_ char *path = tv_asprintf("%s/cgroup.controllers", point), *text = NULL;
        return path && tv_limits_read_file(path, &text) >= 0 && tv_limits_has_word(text, "io");
}

int tv_cgroup_find_pods_parent_in(const char *mountinfo, const char *override, char **ret_path,
                                  tv_limits_error *err) {
        _cleanup_(mount_list_done) mount_list ml = {0};
        static const char *const names[] = {"kubepods.slice", "kubepods"};
        const tv_limits_mount *pick = NULL;
        int r;

        tv_limits_err_clear(err);
        if (override) {
                char *p;
                if (override[0] != '/')
                        return tv_limits_errf(err, -EINVAL,
                                              "cgroup override \"%s\" is not an absolute path",
                                              override);
                if (!is_dir(override))
                        return tv_limits_errf(err, -ENOENT,
                                              "cgroup override %s is not an existing directory",
                                              override);
                p = strdup(override);
                if (!p)
                        return -ENOMEM;
                *ret_path = p;
                return 0;
        }

        if (!mountinfo)
                return tv_limits_errf(err, -EINVAL, "no mountinfo text");
        r = tv_limits_parse_mounts(mountinfo, &ml.m, &ml.n);
        if (r < 0)
                return tv_limits_errf(err, r, "cannot parse " MOUNTINFO);
        /* v2 with io; else v2 without io, so that tv_cgroup_enable_io() can
         * say why. A host with only v1 blkio (or hybrid, blkio bound to v1)
         * is refused: v1 throttling is flat, a rule on kubepods would not
         * hold for the pods below it (measured: tests/guest/guest_limits_v1.c). */
        for (size_t i = 0; i < ml.n && !pick; i++)
                if (ml.m[i].version == TV_CGROUP_V2 && v2_has_io(ml.m[i].point))
                        pick = &ml.m[i];
        for (size_t i = 0; i < ml.n && !pick; i++)
                if (ml.m[i].version == TV_CGROUP_V1)
                        return tv_limits_errf(err, -EOPNOTSUPP,
                                              "the io controller is on cgroup v1 (blkio at %s), "
                                              "whose throttling does not reach child cgroups: a "
                                              "limit on kubepods would not cap any pod. Boot the "
                                              "node with cgroup v2 (systemd.unified_cgroup_"
                                              "hierarchy=1)",
                                              ml.m[i].point);
        for (size_t i = 0; i < ml.n && !pick; i++)
                if (ml.m[i].version == TV_CGROUP_V2)
                        pick = &ml.m[i];
        if (!pick)
                return tv_limits_errf(err, -ENOENT,
                                      "no cgroup file system is mounted (neither cgroup2 nor v1 "
                                      "blkio in " MOUNTINFO ")");
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *path = tv_asprintf("%s/%s", pick->point, names[i]);
                if (!path)
                        return -ENOMEM;
                if (is_dir(path)) {
                        log_debug("pods parent cgroup found", "path=%s cgroup_version=%d", path,
                                  (int)pick->version);
                        *ret_path = TAKE_PTR(path);
                        return 0;
                }
        }
        return tv_limits_errf(err, -ENOENT,
                              "no kubepods.slice or kubepods cgroup in %s (cgroup v%d): is the "
                              "kubelet running here with --cgroups-per-qos? Else give the pods' "
                              "parent cgroup as the override",
                              pick->point, (int)pick->version);
}

int tv_cgroup_find_pods_parent(const char *override, char **ret_path, tv_limits_error *err) {
        _cleanup_free_ char *text = NULL;
        int r;

        if (override)
                return tv_cgroup_find_pods_parent_in(NULL, override, ret_path, err);
        r = tv_limits_read_file(MOUNTINFO, &text);
        if (r < 0) {
                tv_limits_err_clear(err);
                return tv_limits_errf(err, r, "read " MOUNTINFO ": %s", strerror(-r));
        }
        return tv_cgroup_find_pods_parent_in(text, NULL, ret_path, err);
}

/* Is `path` `point` itself or below it (component-wise)? */
static bool path_under(const char *path, const char *point) {
        size_t n = strlen(point);
        if (n == 1 && point[0] == '/')
                return true;
        return strncmp(path, point, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int enable_io_in(const char *dir, tv_limits_error *err) {
        _cleanup_free_ char *sc_path = tv_asprintf("%s/cgroup.subtree_control", dir);
        _cleanup_free_ char *c_path = tv_asprintf("%s/cgroup.controllers", dir);
        _cleanup_free_ char *sc = NULL, *avail = NULL;
        char q[256];
        int r;

        if (!sc_path || !c_path)
                return -ENOMEM;
        r = tv_limits_read_file(sc_path, &sc);
        if (r < 0)
                return tv_limits_errf(err, r, "read %s: %s", sc_path, strerror(-r));
        if (tv_limits_has_word(sc, "io"))
                return 0;
        r = tv_limits_read_file(c_path, &avail);
        if (r < 0)
                return tv_limits_errf(err, r, "read %s: %s", c_path, strerror(-r));
        if (!tv_limits_has_word(avail, "io"))
                return tv_limits_errf(err, -EOPNOTSUPP,
                                      "the io controller is not available in cgroup %s (it offers: "
                                      "%s); on a hybrid host blkio is bound to cgroup v1",
                                      dir, tv_strstrip_end(avail)[0] ? avail : "nothing");
        r = tv_limits_write_file(sc_path, "+io", 3);
        if (r == -EBUSY)
                return tv_limits_errf(err, r,
                                      "cannot enable io below cgroup %s: it has processes of its "
                                      "own (the kernel's no-internal-processes rule)",
                                      dir);
        if (r < 0)
                return tv_limits_errf(err, r, "write +io to %s: %s", sc_path, strerror(-r));
        log_info("io controller enabled", "cgroup=%s", tv_log_quote(dir, q, sizeof(q)));
        return 0;
}

int tv_cgroup_enable_io_in(const char *mountinfo, const char *path, tv_limits_error *err) {
        _cleanup_(mount_list_done) mount_list ml = {0};
        _cleanup_free_ char *real = NULL, *cur = NULL;
        const tv_limits_mount *best = NULL;
        size_t cur_len;
        int r;

        tv_limits_err_clear(err);
        if (!path || !mountinfo)
                return tv_limits_errf(err, -EINVAL, "no cgroup path");
        real = realpath(path, NULL);
        if (!real) {
                r = -errno;
                return tv_limits_errf(err, r == -ENOMEM ? r : -ENOENT, "cgroup %s does not exist",
                                      path);
        }
        r = tv_limits_parse_mounts(mountinfo, &ml.m, &ml.n);
        if (r < 0)
                return tv_limits_errf(err, r, "cannot parse " MOUNTINFO);
        for (size_t i = 0; i < ml.n; i++)
                if (path_under(real, ml.m[i].point) &&
                    (!best || strlen(ml.m[i].point) > strlen(best->point)))
                        best = &ml.m[i];
        if (!best)
                return tv_limits_errf(err, -EINVAL, "%s is not inside a cgroup mount", path);
        if (best->version == TV_CGROUP_V1)
                return 0; /* a v1 hierarchy has its controllers everywhere */

        /* Ancestors from the mount root down to path's parent. */
        /* cgroup2 mounted on "/" (some containers): start from "" so that
         * appending "/name" makes "/name". */
        cur = strdup(strcmp(best->point, "/") == 0 ? "" : best->point);
        if (!cur)
                return -ENOMEM;
        cur_len = strlen(cur);
        for (const char *p = real + cur_len; *p == '/';) {
                const char *next = strchrnul(p + 1, '/');
                char *grown;

                r = enable_io_in(cur[0] ? cur : "/", err);
                if (r < 0)
                        return r;
                if (*next == '\0')
                        break; /* p..next is path's own name */
                grown = tv_asprintf("%s%.*s", cur, (int)(next - p), p);
                if (!grown)
                        return -ENOMEM;
                free(cur);
                cur = grown;
                p = next;
        }
        return 0;
}

int tv_cgroup_enable_io(const char *path, tv_limits_error *err) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = tv_limits_read_file(MOUNTINFO, &text);
        if (r < 0) {
                tv_limits_err_clear(err);
                return tv_limits_errf(err, r, "read " MOUNTINFO ": %s", strerror(-r));
        }
        return tv_cgroup_enable_io_in(text, path, err);
}
