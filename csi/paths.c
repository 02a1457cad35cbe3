/* Paths a CO hands the Node service: checked by their letters first (pure),
 * then opened so that no symlink can carry a mount outside the kubelet
 * directory. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "node.h"

const char *node_kubelet_dir(const tv_server *s) {
        return s->kubelet_dir ? s->kubelet_dir : TV_KUBELET_DIR_DEFAULT;
}

/* Absolute, no empty/"."/".." component, no trailing '/' ("/" itself is
 * clean). */
static bool path_clean(const char *p, const char **ret_bad) {
        if (p[0] != '/')
                return false;
        if (p[1] == '\0')
                return true;
        for (const char *c = p + 1;;) {
                const char *end = strchr(c, '/');
                size_t n = end ? (size_t)(end - c) : strlen(c);

                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) {
                        *ret_bad = n == 0 ? "an empty component (\"//\" or a trailing '/')"
                                           : n == 1 ? "a \".\" component" : "a \"..\" component";
                        return false;
                }
                if (!end)
                        return true;
                c = end + 1;
        }
}

int node_path_check(const char *root, const char *path, char *why, size_t why_size) {
        const char *bad = NULL;
        size_t rn = strlen(root), pn = path ? strlen(path) : 0;

        if (pn == 0) {
                snprintf(why, why_size, "is required");
                return -EINVAL;
        }
        if (pn >= PATH_MAX) {
                snprintf(why, why_size, "is %zu bytes long; paths are shorter than %d", pn, PATH_MAX);
                return -EINVAL;
        }
        if (path[0] != '/') {
                snprintf(why, why_size, "\"%.200s\" is not an absolute path", path);
                return -EINVAL;
        }
        if (!path_clean(path, &bad)) {
                snprintf(why, why_size, "\"%.200s\" has %s", path, bad ? bad : "a bad component");
                return -EINVAL;
        }
        /* Strictly below root, at a component boundary ("/var/lib/kubeletx"
         * is not inside "/var/lib/kubelet"). */
        if (strcmp(root, "/") == 0)
                rn = 0;
        if (pn <= rn + 1 || strncmp(path, root, rn) != 0 || path[rn] != '/') {
                snprintf(why, why_size, "\"%.200s\" is not inside the kubelet directory %s", path, root);
                return -EINVAL;
        }
        return 0;
}

int node_path_canonical(const char *root, const char *path, char **ret) {
        _cleanup_free_ char *real = realpath(root, NULL);
        size_t rn = strcmp(root, "/") == 0 ? 0 : strlen(root);
        char *s;

        if (!real)
                return -errno;
        if (strcmp(real, "/") == 0)
                real[0] = '\0';
        if (path[rn] == '\0')
                s = tv_asprintf("%s", real[0] ? real : "/");
        else
                s = tv_asprintf("%s%s", real, path + rn);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int node_path_split(const char *path, char **ret_parent, const char **ret_base) {
        const char *slash = strrchr(path, '/');
        char *parent;

        if (!slash)
                return -EINVAL;
        parent = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
        if (!parent)
                return -ENOMEM;
        *ret_parent = parent;
        *ret_base = slash + 1;
        return 0;
}

int node_open_dir_verified(const char *root, const char *dir, char *why, size_t why_size) {
        _cleanup_free_ char *want = NULL;
        _cleanup_close_ int fd = -1;
        char link[64], got[PATH_MAX];
        struct stat st;
        ssize_t n;
        int r;

        r = node_path_canonical(root, dir, &want);
        if (r < 0) {
                snprintf(why, why_size, "the kubelet directory %s cannot be resolved: %s", root, strerror(-r));
                return r;
        }
        /* Symlinks above the last component are followed here and caught by
         * the comparison below; the last one is not followed at all. */
        fd = open(dir, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                snprintf(why, why_size, "\"%.200s\" cannot be opened: %s", dir, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                snprintf(why, why_size, "\"%.200s\" cannot be examined: %s", dir, strerror(-r));
                return r;
        }
        if (S_ISLNK(st.st_mode)) {
                snprintf(why, why_size, "\"%.200s\" is a symlink; symlinks are refused in node paths", dir);
                return -EINVAL;
        }
        if (!S_ISDIR(st.st_mode)) {
                snprintf(why, why_size, "\"%.200s\" is not a directory", dir);
                return -ENOTDIR;
        }
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, got, sizeof(got) - 1);
        if (n < 0) {
                r = -errno;
                snprintf(why, why_size, "cannot tell where \"%.200s\" leads: %s", dir, strerror(-r));
                return r;
        }
        got[n] = '\0';
        if (strcmp(got, want) != 0) {
                snprintf(why, why_size, "\"%.200s\" goes through a symlink; symlinks are refused in node paths", dir);
                return -EINVAL;
        }
        return TAKE_FD(fd);
}
