/* The system calls through which the node handlers reach mounts and
 * device nodes, for the fuzzer:
 *
 * - stat(2): /dev/mapper/NAME of a mapping the LUKS stand-in has open is a
 *   block device (253:minor), as udev would have made it.
 * - mount(2), umount2(2): nothing is mounted; the fuzzer keeps a mount
 *   table. A target outside the kubelet directory (after resolving
 *   /proc/self/fd/N, which is how the handlers name a target they opened)
 *   means a path check let something through, and aborts: a finding.
 * - open("/proc/self/mountinfo"): the kernel's table, then the fuzzer's
 *   mounts in the same format (escapes included).
 * - open("/dev/VG/LV") of an LV the LVM stand-in has: a sparse memfd of
 *   the LV's size (EBUSY with O_EXCL while the LV is mapped, as the
 *   kernel's bdev claim), on which ioctl(2) answers BLKGETSIZE64 and
 *   BLKDISCARD: DeleteVolume's erase step discards the LV before lvremove.
 *
 * Any other path goes to the kernel. Everything the handlers write to
 * files happens inside the fuzzer's kubelet directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fuzz.h"

#define MAX_MOUNTS 16
/* The memfd name of an LV's stand-in device: how ioctl(2) knows one. */
#define LV_MEMFD_NAME "tvfuzz-lv"

typedef struct {
        char path[PATH_MAX];
        char root[PATH_MAX];
        char fstype[32];
        char source[PATH_MAX];
        char data[256]; /* file system options, e.g. "noinit_itable,discard" */
        unsigned long flags;
        dev_t dev;
} fake_mount;

static char kubelet[PATH_MAX];
static fake_mount mounts[MAX_MOUNTS], saved_mounts[MAX_MOUNTS];

void fuzz_sys_set_root(const char *dir) {
        snprintf(kubelet, sizeof(kubelet), "%s", dir);
        memset(mounts, 0, sizeof(mounts));
}

void fuzz_sys_save(void) {
        memcpy(saved_mounts, mounts, sizeof(mounts));
}

const char *fuzz_sys_changed(void) {
        for (size_t i = 0; i < MAX_MOUNTS; i++) {
                const fake_mount *a = &mounts[i], *b = &saved_mounts[i];
                if (strcmp(a->path, b->path) != 0)
                        return a->path[0] ? a->path : b->path;
                if (a->path[0] && (a->dev != b->dev || a->flags != b->flags || strcmp(a->root, b->root) != 0 ||
                                   strcmp(a->data, b->data) != 0))
                        return a->path;
        }
        return NULL;
}

void fuzz_sys_restore(void) {
        memcpy(mounts, saved_mounts, sizeof(mounts));
}

static void check_target(const char *call, const char *target, char resolved[PATH_MAX]) {
        size_t n = strlen(kubelet);
        ssize_t len;

        if (target && strncmp(target, "/proc/self/fd/", 14) == 0) {
                len = readlink(target, resolved, PATH_MAX - 1);
                if (len < 0) {
                        fprintf(stderr, "fuzz: %s on %s, which does not resolve\n", call, target);
                        abort();
                }
                resolved[len] = '\0';
        } else
                snprintf(resolved, PATH_MAX, "%s", target ? target : "(null)");
        if (strncmp(resolved, kubelet, n) != 0 || resolved[n] != '/' || strstr(resolved, "/../") ||
            strstr(resolved, "/./")) {
                fprintf(stderr, "fuzz: %s on %s, outside the kubelet directory %s\n", call, resolved, kubelet);
                abort();
        }
}

static fake_mount *mount_at(const char *path) {
        for (size_t i = MAX_MOUNTS; i-- > 0;)
                if (mounts[i].path[0] && strcmp(mounts[i].path, path) == 0)
                        return &mounts[i];
        return NULL;
}

int stat(const char *restrict path, struct stat *restrict st) {
        int minor = strncmp(path, "/dev/mapper/", 12) == 0 ? fuzz_mapping_minor(path + 12) : -1;

        if (minor < 0)
                return fstatat(AT_FDCWD, path, st, 0);
        *st = (struct stat){.st_mode = S_IFBLK | 0600, .st_rdev = makedev(253, (unsigned)minor)};
        return 0;
}

/* What a new mount of `source` shows: its device and root. */
static int mount_source(const char *source, unsigned long flags, fake_mount *m) {
        struct stat st;
        fake_mount *from;

        if (!(flags & MS_BIND)) {
                if (stat(source, &st) < 0 || !S_ISBLK(st.st_mode))
                        return -ENOTBLK;
                m->dev = st.st_rdev;
                snprintf(m->root, sizeof(m->root), "/");
                return 0;
        }
        if (strncmp(source, "/dev/", 5) == 0 && stat(source, &st) == 0 && S_ISBLK(st.st_mode)) {
                /* A device node, bind-mounted from devtmpfs. */
                m->dev = makedev(0, 5);
                snprintf(m->root, sizeof(m->root), "%s", source + 4);
                snprintf(m->fstype, sizeof(m->fstype), "devtmpfs");
                return 0;
        }
        from = mount_at(source);
        if (!from)
                return -EINVAL; /* the fuzzer binds only what it mounted */
        m->dev = from->dev;
        snprintf(m->data, sizeof(m->data), "%s", from->data);
        snprintf(m->root, sizeof(m->root), "%s", from->root);
        snprintf(m->fstype, sizeof(m->fstype), "%s", from->fstype);
        return 0;
}

int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data) {
        fake_mount m = {.flags = flags};
        fake_mount *at;
        int r;

        check_target("mount", target, m.path);
        if (flags & MS_REMOUNT) {
                at = mount_at(m.path);
                if (!at) {
                        errno = EINVAL;
                        return -1;
                }
                at->flags = flags;
                return 0;
        }
        if (!source) {
                errno = EINVAL;
                return -1;
        }
        snprintf(m.fstype, sizeof(m.fstype), "%s", fstype ? fstype : "");
        snprintf(m.source, sizeof(m.source), "%s", source);
        snprintf(m.data, sizeof(m.data), "%s", data ? (const char *)data : "");
        r = mount_source(source, flags, &m);
        if (r < 0) {
                errno = -r;
                return -1;
        }
        for (size_t i = 0; i < MAX_MOUNTS; i++)
                if (!mounts[i].path[0]) {
                        mounts[i] = m;
                        return 0;
                }
        errno = ENOMEM;
        return -1;
}

int umount2(const char *target, int flags) {
        char path[PATH_MAX];
        fake_mount *m;

        check_target("umount2", target, path);
        m = mount_at(path);
        if (!m) {
                errno = EINVAL;
                return -1;
        }
        m->path[0] = '\0';
        return 0;
}

/* Octal escapes of space, tab, newline and backslash, as the kernel's
 * show_mountinfo does. */
static void put_escaped(FILE *f, const char *s) {
        for (; *s; s++)
                if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\\')
                        fprintf(f, "\\%03o", (unsigned char)*s);
                else
                        fputc(*s, f);
}

static int mountinfo_open(int flags) {
        int fd = memfd_create("mountinfo", MFD_CLOEXEC), real;
        char buf[8192];
        ssize_t n;
        FILE *f;

        if (fd < 0)
                return -1;
        real = openat(AT_FDCWD, "/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
        if (real < 0)
                goto fail;
        while ((n = read(real, buf, sizeof(buf))) > 0)
                if (write(fd, buf, (size_t)n) != n)
                        break;
        (void)close(real);
        f = fdopen(dup(fd), "w");
        if (!f)
                goto fail;
        for (size_t i = 0; i < MAX_MOUNTS; i++) {
                const fake_mount *m = &mounts[i];
                if (!m->path[0])
                        continue;
                fprintf(f, "%zu 1 %u:%u ", 9000 + i, major(m->dev), minor(m->dev));
                put_escaped(f, m->root);
                fputc(' ', f);
                put_escaped(f, m->path);
                /* Per-mount options in the kernel's order, then the
                 * file system's. */
                fprintf(f, " %s%s%s%s%s - %s ", m->flags & MS_RDONLY ? "ro" : "rw", m->flags & MS_NOSUID ? ",nosuid" : "",
                        m->flags & MS_NODEV ? ",nodev" : "", m->flags & MS_NOEXEC ? ",noexec" : "",
                        m->flags & MS_NOATIME ? ",noatime" : ",relatime", m->fstype[0] ? m->fstype : "none");
                put_escaped(f, m->source);
                fprintf(f, " rw%s%s\n", m->data[0] ? "," : "", m->data);
        }
        if (fclose(f) != 0 || lseek(fd, 0, SEEK_SET) < 0)
                goto fail;
        return fd;
fail:
        (void)close(fd);
        return -1;
}

static int lv_open(const fuzz_luks *l, uint64_t size, int flags) {
        int fd;

        if ((flags & O_EXCL) && l->mapping[0]) {
                errno = EBUSY;
                return -1;
        }
        fd = memfd_create(LV_MEMFD_NAME, (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
        if (fd < 0)
                return -1;
        if (ftruncate(fd, (off_t)size) < 0) {
                int e = errno;
                (void)close(fd);
                errno = e;
                return -1;
        }
        return fd;
}

static bool is_lv_fd(int fd) {
        char link[64], target[PATH_MAX];
        ssize_t n;

        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
                return false;
        target[n] = '\0';
        return strncmp(target, "/memfd:" LV_MEMFD_NAME " ", strlen("/memfd:" LV_MEMFD_NAME " ")) == 0;
}

int ioctl(int fd, unsigned long request, ...) {
        struct stat st;
        va_list ap;
        void *arg;

        va_start(ap, request);
        arg = va_arg(ap, void *);
        va_end(ap);
        if ((request == BLKGETSIZE64 || request == BLKDISCARD) && is_lv_fd(fd)) {
                if (fstat(fd, &st) < 0)
                        return -1;
                if (request == BLKGETSIZE64) {
                        *(uint64_t *)arg = (uint64_t)st.st_size;
                        return 0;
                }
                const uint64_t *range = arg;
                if (range[0] > (uint64_t)st.st_size || range[1] > (uint64_t)st.st_size - range[0]) {
                        errno = EINVAL;
                        return -1;
                }
                return 0;
        }
        return (int)syscall(SYS_ioctl, fd, request, arg);
}

int open(const char *path, int flags, ...) {
        mode_t mode = 0;
        va_list ap;

        if (flags & (O_CREAT | O_TMPFILE)) {
                va_start(ap, flags);
                mode = va_arg(ap, mode_t);
                va_end(ap);
        }
        if (strcmp(path, "/proc/self/mountinfo") == 0 && (flags & O_ACCMODE) == O_RDONLY)
                return mountinfo_open(flags);
        uint64_t size = 0;
        const fuzz_luks *l = fuzz_luks_by_path(path, &size);
        if (l)
                return lv_open(l, size, flags);
        return openat(AT_FDCWD, path, flags, mode);
}
