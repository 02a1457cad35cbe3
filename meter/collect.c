/* The collector: one pool listing, then per volume only what the kernel
 * answers without a process (dm status, /dev/mapper, mountinfo, statvfs,
 * sysfs, cgroup files, the LUKS header). */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include "thinvault/meter.h"

/* mountinfo of a busy node and io.stat of a cgroup with many devices stay
 * far below this. */
#define TEXT_MAX (16u << 20)

/* The whole of a (proc, sys, cgroup) file as a NUL-terminated heap string.
 * Such files report a size of 0 or 4096, so it is read until EOF. */
static int read_text(const char *path, char **ret_text) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (;;) {
                if (len + 4096 + 1 > cap) {
                        size_t ncap = cap ? cap * 2 : 8192;
                        if (ncap > TEXT_MAX)
                                return -EFBIG;
                        char *b = realloc(buf, ncap);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        cap = ncap;
                }
                ssize_t n = read(fd, buf + len, cap - len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        *ret_text = TAKE_PTR(buf);
        return 0;
}

static void closedirp(DIR **d) {
        if (*d)
                (void)closedir(*d);
}

/* "dm-7" for block device MAJ:MIN, from the /sys/dev/block symlink. */
static int kernel_name(uint32_t major, uint32_t minor, char *buf, size_t size) {
        char link[64], target[PATH_MAX];
        ssize_t n;

        (void)snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major, minor);
        n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
                return -errno;
        target[n] = '\0';
        const char *base = strrchr(target, '/');
        base = base ? base + 1 : target;
        if (strlen(base) >= size)
                return -ENAMETOOLONG;
        memcpy(buf, base, strlen(base) + 1);
        return 0;
}

/* ---- one volume ------------------------------------------------------------ */

typedef struct {
        const tv_meter_options *opts;
        tv_pool *pool;
        tv_mount_table mounts;
        bool mounts_valid;
        const char *cgroup; /* NULL: none */
        char *io_stat;      /* the cgroup's io.stat text, NULL if unreadable */
} collect_ctx;

static void fill_tags(tv_meter_volume *v) {
        size_t n = 0;
        const char *kind;

        (void)tv_lv_tags(v->lv, &n);
        v->thinvault = n > 0;
        v->tenant = tv_lv_tag(v->lv, TV_TAG_TENANT);
        v->request_name = tv_lv_tag(v->lv, TV_TAG_NAME);
        v->pvc = tv_lv_tag(v->lv, TV_TAG_PVC);
        v->pv = tv_lv_tag(v->lv, TV_TAG_PV);
        v->source = tv_lv_tag(v->lv, TV_TAG_SOURCE);
        /* csi/volspec.h's tag keys: fs, keysrc, limits. */
        v->fs = tv_lv_tag(v->lv, "fs");
        v->key_source = tv_lv_tag(v->lv, "keysrc");
        v->limits_tag = tv_lv_tag(v->lv, "limits");
        kind = tv_lv_tag(v->lv, TV_TAG_KIND);
        v->snapshot = kind && strcmp(kind, "snapshot") == 0;
}

static void resolve_limits(tv_meter_volume *v) {
        tv_limits_error lerr;
        int r;

        v->spec = (tv_limits_spec){0};
        v->resolved = (tv_limits){0};
        if (!v->limits_tag)
                return;
        r = tv_limits_spec_from_string(v->limits_tag, &v->spec, &lerr);
        if (r >= 0)
                r = tv_limits_resolve(&v->spec, v->size_bytes, &v->resolved, &lerr);
        if (r < 0) {
                v->limits_errno = r;
                (void)snprintf(v->limits_error, sizeof(v->limits_error), "%s", lerr.message);
        }
}

static int add_mount(tv_meter_volume *v, const char *path) {
        char **m = realloc(v->mounts, (v->n_mounts + 1) * sizeof(*m));
        if (!m)
                return -ENOMEM;
        v->mounts = m;
        if (!(m[v->n_mounts] = strdup(path)))
                return -ENOMEM;
        v->n_mounts++;
        return 0;
}

/* Mounts, statvfs, sysfs counters and cgroup state of a staged volume. */
static int staged_details(collect_ctx *c, tv_meter_volume *v) {
        char path[128];
        const char *fs_mount = NULL;
        int r;

        if (c->mounts_valid) {
                for (size_t i = tv_mount_table_find(&c->mounts, v->map_major, v->map_minor, 0);
                     i < c->mounts.n;
                     i = tv_mount_table_find(&c->mounts, v->map_major, v->map_minor, i + 1)) {
                        const tv_mount *m = &c->mounts.mounts[i];
                        r = add_mount(v, m->mount_point);
                        if (r < 0)
                                return r;
                        /* statvfs answers for the whole file system from any of its mounts. */
                        if (!fs_mount)
                                fs_mount = m->mount_point;
                }
        }
        if (fs_mount) {
                struct statvfs sv;
                if (statvfs(fs_mount, &sv) == 0) {
                        uint64_t frsize = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
                        v->fs_valid = true;
                        v->fs_size_bytes = (uint64_t)sv.f_blocks * frsize;
                        v->fs_used_bytes = (uint64_t)(sv.f_blocks - sv.f_bfree) * frsize;
                        v->fs_avail_bytes = (uint64_t)sv.f_bavail * frsize;
                        v->fs_inodes = sv.f_files;
                        v->fs_inodes_used = sv.f_files >= sv.f_ffree ? sv.f_files - sv.f_ffree : 0;
                }
        }

        if (kernel_name(v->map_major, v->map_minor, v->dm_kernel_name, sizeof(v->dm_kernel_name)) == 0) {
                _cleanup_free_ char *text = NULL;
                (void)snprintf(path, sizeof(path), "/sys/block/%s/stat", v->dm_kernel_name);
                if (read_text(path, &text) == 0 && tv_meter_parse_blk_stat(text, &v->io) == 0)
                        v->io_valid = true;
        }

        /* Does the mapping sit on this LV? Its only slave must be the thin
         * device (a tvc- mapping over anything else is not this volume's). */
        v->map_on_lv = -1;
        if (v->usage_errno == 0) {
                char lvname[16];
                _cleanup_(closedirp) DIR *d = NULL;
                (void)snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/slaves", v->map_major, v->map_minor);
                if (kernel_name(v->lv_major, v->lv_minor, lvname, sizeof(lvname)) == 0 && (d = opendir(path))) {
                        struct dirent *de;
                        v->map_on_lv = 0;
                        while ((de = readdir(d)))
                                if (strcmp(de->d_name, lvname) == 0)
                                        v->map_on_lv = 1;
                }
        }

        if (!c->cgroup) {
                v->io_max_errno = -ENOENT;
                return 0;
        }
        tv_limits_error lerr;
        v->io_max_errno = tv_limits_read(c->cgroup, v->map_major, v->map_minor, &v->in_force, &lerr);
        if (c->io_stat) {
                if (tv_cgroup_parse_io_stat(c->io_stat, v->map_major, v->map_minor, &v->cgroup_io) == 1)
                        v->cgroup_io_valid = true;
                if (tv_meter_parse_io_stat_wait(c->io_stat, v->map_major, v->map_minor, &v->throttled_us) == 1)
                        v->throttle_valid = true;
        }
        return 0;
}

static void probe_luks(tv_meter_volume *v) {
        tv_crypt_error cerr;
        const char *dev = tv_lv_path(v->lv);

        v->probed = true;
        if (!tv_lv_active(v->lv) || !dev) {
                v->probe_errno = -ENXIO;
                (void)snprintf(v->probe_error, sizeof(v->probe_error),
                               "volume %s is not active: its header cannot be read", v->name);
                return;
        }
        v->probe_errno = tv_luks_probe(dev, &v->luks, &cerr);
        if (v->probe_errno < 0)
                (void)snprintf(v->probe_error, sizeof(v->probe_error), "%s", cerr.message);
}

static int volume_details(collect_ctx *c, tv_meter_volume *v) {
        tv_lv_usage u;
        struct stat st;
        char dev[sizeof(v->mapping) + 16];

        v->usage_errno = tv_lv_get_usage(c->pool, v->name, &u, NULL);
        if (v->usage_errno == 0) {
                v->allocated_bytes = u.mapped_bytes;
                v->lv_major = u.major;
                v->lv_minor = u.minor;
                v->open_count = u.open_count;
                v->thin_failed = u.failed;
        }
        resolve_limits(v);

        (void)snprintf(v->mapping, sizeof(v->mapping), TV_METER_MAPPING_PREFIX "%s", v->name);
        (void)snprintf(dev, sizeof(dev), "/dev/mapper/%s", v->mapping);
        v->map_on_lv = -1;
        if (stat(dev, &st) == 0 && S_ISBLK(st.st_mode)) {
                v->staged = true;
                v->map_major = major(st.st_rdev);
                v->map_minor = minor(st.st_rdev);
                int r = staged_details(c, v);
                if (r < 0)
                        return r;
        }
        if (c->opts->flags & TV_METER_PROBE_LUKS)
                probe_luks(v);
        return 0;
}

/* ---- the report ------------------------------------------------------------ */

static void volume_clear(tv_meter_volume *v) {
        tv_lv_free(v->lv);
        for (size_t i = 0; i < v->n_mounts; i++)
                free(v->mounts[i]);
        free(v->mounts);
        *v = (tv_meter_volume){0};
}

void tv_meter_report_free(tv_meter_report *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_volumes; i++)
                volume_clear(&r->volumes[i]);
        free(r->volumes);
        tv_meter_tenants_free(r->tenants, r->n_tenants);
        free(r->pool.vg);
        free(r->pool.thin_pool);
        free(r->cgroup);
        free(r);
}

static int volume_name_cmp(const void *a, const void *b) {
        return strcmp(((const tv_meter_volume *)a)->name, ((const tv_meter_volume *)b)->name);
}

const tv_meter_volume *tv_meter_report_find(const tv_meter_report *r, const char *name) {
        tv_meter_volume key = {.name = name};

        if (!r || !name || r->n_volumes == 0)
                return NULL;
        return bsearch(&key, r->volumes, r->n_volumes, sizeof(key), volume_name_cmp);
}

static void ctx_done(collect_ctx *c) {
        tv_mount_table_clear(&c->mounts);
        free(c->io_stat);
}

static int set_err(tv_lvm_error *err, int r, const char *fmt, ...) _printf_(3, 4);
static int set_err(tv_lvm_error *err, int r, const char *fmt, ...) {
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                (void)vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
                err->lvm_line[0] = '\0';
        }
        return r;
}

int tv_meter_collect(tv_pool *p, const tv_meter_options *opts, tv_meter_report **ret_report,
                     tv_lvm_error *err) {
        static const tv_meter_options no_opts = {0};
        _cleanup_(tv_meter_report_freep) tv_meter_report *rep = NULL;
        _cleanup_(tv_lv_list_freep) tv_lv_list *list = NULL;
        _cleanup_(ctx_done) collect_ctx c = {.opts = opts ? opts : &no_opts, .pool = p};
        uint64_t t0 = tv_now_ms();
        size_t n;
        int r;

        if (err)
                err->message[0] = err->lvm_line[0] = '\0';
        rep = calloc(1, sizeof(*rep));
        if (!rep)
                return -ENOMEM;
        rep->pool.vg = strdup(tv_pool_vg(p));
        rep->pool.thin_pool = strdup(tv_pool_thin_pool(p));
        if (!rep->pool.vg || !rep->pool.thin_pool)
                return -ENOMEM;

        /* One lvs either way: with the status, its listing is the volumes'. */
        if (c.opts->flags & TV_METER_POOL_STATUS) {
                r = tv_pool_get_status_list(p, &rep->pool.status, &list, err);
                if (r < 0)
                        return r;
                rep->pool.status_valid = true;
                if (rep->pool.status.data_total_bytes > 0)
                        rep->pool.overprovision_ratio = (double)rep->pool.status.thin_virtual_bytes /
                                                        (double)rep->pool.status.data_total_bytes;
        } else {
                r = tv_pool_list_lvs(p, &list, err);
                if (r < 0)
                        return r;
        }
        n = tv_lv_list_size(list);
        if (!rep->pool.status_valid) {
                tv_vg_info vi;
                if (tv_lv_list_vg_info(list, &vi) == 0) {
                        rep->pool.status.extent_bytes = vi.extent_bytes;
                        rep->pool.status.vg_size_bytes = vi.size_bytes;
                        rep->pool.status.vg_free_bytes = vi.free_bytes;
                }
                for (size_t i = 0; i < n; i++) {
                        rep->pool.status.thin_virtual_bytes += tv_lv_size(tv_lv_list_get(list, i));
                        rep->pool.status.n_thin++;
                }
        }
        rep->volumes = calloc(n ? n : 1, sizeof(*rep->volumes));
        if (!rep->volumes)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                tv_meter_volume *v = &rep->volumes[rep->n_volumes];
                if (tv_lv_list_take(list, i, &v->lv) < 0)
                        continue;
                v->name = tv_lv_name(v->lv);
                v->size_bytes = tv_lv_size(v->lv);
                fill_tags(v);
                rep->n_volumes++;
        }
        qsort(rep->volumes, rep->n_volumes, sizeof(*rep->volumes), volume_name_cmp);

        /* Counts over the whole pool, before an only_lv filter. */
        for (size_t i = 0; i < rep->n_volumes; i++) {
                const tv_meter_volume *v = &rep->volumes[i];
                if (!v->thinvault)
                        rep->pool.n_foreign++;
                else if (v->snapshot)
                        rep->pool.n_snapshots++;
                else
                        rep->pool.n_volumes++;
                if (v->snapshot && v->source) {
                        tv_meter_volume *o = (tv_meter_volume *)tv_meter_report_find(rep, v->source);
                        if (o)
                                o->n_snapshots++;
                }
        }
        if (c.opts->only_lv) {
                const tv_meter_volume *keep = tv_meter_report_find(rep, c.opts->only_lv);
                if (!keep)
                        return set_err(err, -ENOENT, "no thin LV %s in the pool", c.opts->only_lv);
                size_t k = (size_t)(keep - rep->volumes);
                for (size_t i = 0; i < rep->n_volumes; i++)
                        if (i != k)
                                volume_clear(&rep->volumes[i]);
                if (k != 0)
                        rep->volumes[0] = rep->volumes[k];
                rep->n_volumes = 1;
        }

        /* Read once for all volumes. */
        {
                _cleanup_free_ char *text = NULL;
                if (read_text("/proc/self/mountinfo", &text) == 0 &&
                    tv_meter_parse_mountinfo(text, &c.mounts) == 0)
                        c.mounts_valid = true;
        }
        {
                tv_limits_error lerr;
                r = tv_cgroup_find_pods_parent(c.opts->cgroup_parent, &rep->cgroup, &lerr);
                if (r < 0) {
                        rep->cgroup = NULL;
                        (void)snprintf(rep->cgroup_error, sizeof(rep->cgroup_error), "%s", lerr.message);
                } else {
                        _cleanup_free_ char *path = tv_asprintf("%s/io.stat", rep->cgroup);
                        if (path && read_text(path, &c.io_stat) < 0)
                                c.io_stat = NULL;
                }
                c.cgroup = rep->cgroup;
        }

        for (size_t i = 0; i < rep->n_volumes; i++) {
                r = volume_details(&c, &rep->volumes[i]);
                if (r < 0)
                        return r;
        }
        r = tv_meter_aggregate(rep->volumes, rep->n_volumes, &rep->tenants, &rep->n_tenants);
        if (r < 0)
                return r;
        rep->collect_ms = tv_now_ms() - t0;
        *ret_report = TAKE_PTR(rep);
        return 0;
}
