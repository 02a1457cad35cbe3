/* Mount flags of a volume capability, /proc/self/mountinfo, unmounting.
 * Mounts are made with mount(2) and removed with umount2(2): no mount(8)
 * subprocess, so no shell, no option string parsed twice, every error an
 * errno. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#include "node.h"

/* ---- mount flags ---------------------------------------------------------- */

static const struct {
        const char *name;
        unsigned long flag;
} mount_flags[] = {
        {"ro", MS_RDONLY}, {"noatime", MS_NOATIME}, {"nodev", MS_NODEV},
        {"nosuid", MS_NOSUID}, {"noexec", MS_NOEXEC},
        /* accepted, they ask for what is the default anyway */
        {"rw", 0}, {"defaults", 0},
};

static int mount_flag_one(const char *word, size_t n, node_mount_opts *o, char *why, size_t why_size) {
        if (n == 7 && strncmp(word, "discard", 7) == 0) {
                o->discard = true;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(mount_flags); i++)
                if (strlen(mount_flags[i].name) == n && strncmp(word, mount_flags[i].name, n) == 0) {
                        o->flags |= mount_flags[i].flag;
                        return 0;
                }
        snprintf(why, why_size,
                 "mount flag \"%.*s\" is not supported (ro, noatime, nodev, nosuid, noexec, discard)",
                 (int)(n > 64 ? 64 : n), word);
        return -EINVAL;
}

int node_mount_flags_parse(char *const *flags, size_t n, node_mount_opts *ret, char *why, size_t why_size) {
        node_mount_opts o = {0};
        int r;

        for (size_t i = 0; i < n; i++) {
                const char *f = flags[i];

                if (!f || !*f) {
                        snprintf(why, why_size, "mount flag %zu is empty", i);
                        return -EINVAL;
                }
                for (const char *c = f;;) {
                        const char *end = strchr(c, ',');
                        size_t len = end ? (size_t)(end - c) : strlen(c);

                        r = mount_flag_one(c, len, &o, why, why_size);
                        if (r < 0)
                                return r;
                        if (!end)
                                break;
                        c = end + 1;
                }
        }
        *ret = o;
        return 0;
}

/* ---- mountinfo -------------------------------------------------------------- */

void node_mount_clear(node_mount *m) {
        free(m->root);
        free(m->mount_point);
        free(m->options);
        free(m->fstype);
        free(m->source);
        free(m->super_options);
        *m = (node_mount){0};
}

/* The next space-separated field of [*p, end), octal escapes decoded. */
static char *field(const char **p, const char *end) {
        const char *s = *p, *e;
        char *out, *o;

        while (s < end && *s == ' ')
                s++;
        e = s;
        while (e < end && *e != ' ')
                e++;
        if (e == s)
                return NULL;
        out = malloc((size_t)(e - s) + 1);
        if (!out)
                return NULL;
        o = out;
        for (const char *c = s; c < e; c++) {
                if (*c == '\\' && e - c >= 4 && c[1] >= '0' && c[1] <= '3' && c[2] >= '0' && c[2] <= '7' &&
                    c[3] >= '0' && c[3] <= '7') {
                        *o++ = (char)((c[1] - '0') * 64 + (c[2] - '0') * 8 + (c[3] - '0'));
                        c += 3;
                } else {
                        *o++ = *c;
                }
        }
        *o = '\0';
        *p = e;
        return out;
}

int node_mountinfo_parse_line(const char *line, size_t len, node_mount *ret) {
        const char *p = line, *end = line + len;
        node_mount m = {0};
        char *f[6] = {0};
        unsigned maj, min;
        int r = -EBADMSG;

        /* 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
         * (1)(2)(3)   (4)   (5)      (6)      (7...)  (8) (9)   (10)     (11) */
        for (int i = 0; i < 6; i++) {
                f[i] = field(&p, end);
                if (!f[i])
                        goto out;
        }
        if (sscanf(f[2], "%u:%u", &maj, &min) != 2)
                goto out;
        m.major = maj;
        m.minor = min;
        m.root = TAKE_PTR(f[3]);
        m.mount_point = TAKE_PTR(f[4]);
        m.options = TAKE_PTR(f[5]);
        /* optional fields up to the lone "-" */
        for (;;) {
                _cleanup_free_ char *opt = field(&p, end);
                if (!opt)
                        goto out;
                if (strcmp(opt, "-") == 0)
                        break;
        }
        m.fstype = field(&p, end);
        m.source = field(&p, end);
        m.super_options = field(&p, end);
        if (!m.fstype || !m.source)
                goto out;
        if (!m.super_options) {
                m.super_options = strdup("");
                if (!m.super_options) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        *ret = m;
        m = (node_mount){0};
        r = 0;
out:
        for (int i = 0; i < 6; i++)
                free(f[i]);
        node_mount_clear(&m);
        return r;
}

int node_mountinfo_next(const char **cursor, node_mount *ret) {
        const char *s = *cursor;

        while (*s == '\n')
                s++;
        if (!*s) {
                *cursor = s;
                return 0;
        }
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        int r = node_mountinfo_parse_line(s, len, ret);
        if (r < 0)
                return r;
        *cursor = s + len;
        return 1;
}

int node_mountinfo_find(const char *text, const char *mount_point, node_mount *ret) {
        const char *cur = text;
        node_mount found = {0}, m;
        bool have = false;
        int r;

        while ((r = node_mountinfo_next(&cur, &m)) > 0) {
                if (strcmp(m.mount_point, mount_point) == 0) {
                        node_mount_clear(&found);
                        found = m;
                        have = true;
                } else {
                        node_mount_clear(&m);
                }
        }
        if (r < 0) {
                node_mount_clear(&found);
                return r;
        }
        if (!have)
                return 0;
        *ret = found;
        return 1;
}

bool node_mount_has_option(const char *options, const char *opt) {
        size_t n = strlen(opt);

        for (const char *c = options; c && *c;) {
                const char *end = strchr(c, ',');
                size_t len = end ? (size_t)(end - c) : strlen(c);
                if (len == n && strncmp(c, opt, n) == 0)
                        return true;
                if (!end)
                        break;
                c = end + 1;
        }
        return false;
}

/* Read a small sysfs file at `dirfd`/`name` as one unsigned number. */
static int read_u64_at(int dirfd, const char *name, uint64_t *ret) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
        char buf[32], *end;
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        errno = 0;
        unsigned long long v = strtoull(buf, &end, 10);
        if (end == buf || errno || (*end && *end != '\n'))
                return -EBADMSG;
        *ret = v;
        return 0;
}

int node_fs_error_count(const char *sysfs, const char *fstype, uint32_t major, uint32_t minor, uint64_t *ret) {
        _cleanup_close_ int fsdir = -1;
        char link[PATH_MAX], path[PATH_MAX];
        const char *name;
        ssize_t n;

        if (strcmp(fstype, "ext4") != 0 && strcmp(fstype, "ext3") != 0 && strcmp(fstype, "ext2") != 0)
                return -EOPNOTSUPP;
        /* /sys/dev/block/MAJ:MIN -> ../../devices/virtual/block/dm-5 */
        if (snprintf(path, sizeof(path), "%s/dev/block/%" PRIu32 ":%" PRIu32, sysfs, major, minor) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        n = readlink(path, link, sizeof(link) - 1);
        if (n < 0)
                return -errno;
        link[n] = '\0';
        name = strrchr(link, '/');
        name = name ? name + 1 : link;
        if (!*name || strcmp(name, "..") == 0 || strcmp(name, ".") == 0)
                return -EBADMSG;
        /* The ext4 driver serves ext2 and ext3 too, all under fs/ext4. */
        if (snprintf(path, sizeof(path), "%s/fs/ext4/%s", sysfs, name) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        fsdir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fsdir < 0)
                return -errno;
        return read_u64_at(fsdir, "errors_count", ret);
}

int node_mountinfo_read(char **ret_text) {
        _cleanup_close_ int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;

        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t n;
                if (cap - len < 4096) {
                        char *nb = realloc(buf, cap ? cap * 2 : 16384);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        cap = cap ? cap * 2 : 16384;
                }
                n = read(fd, buf + len, cap - len - 1);
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

int node_mount_lookup(const char *mount_point, node_mount *ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = node_mountinfo_read(&text);
        if (r < 0)
                return r;
        return node_mountinfo_find(text, mount_point, ret);
}

int node_unmount_all(const char *path) {
        int n = 0, r;

        /* Bounded: a mount that keeps coming back is not ours to chase. */
        for (int i = 0; i < 16; i++) {
                node_mount m = {0};

                r = node_mount_lookup(path, &m);
                node_mount_clear(&m);
                if (r < 0)
                        return r;
                if (r == 0)
                        return n;
                if (umount2(path, UMOUNT_NOFOLLOW) < 0) {
                        if (errno == EINVAL) /* gone between the lookup and here */
                                continue;
                        return -errno;
                }
                n++;
        }
        return -EBUSY;
}
