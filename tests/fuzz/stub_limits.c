/* The cgroup side of limits/ (limits/cgroup.c): no cgroup is written; an
 * io.max line is formatted and checked as the real writer does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinvault/limits.h"

static int fail(tv_limits_error *err, int r, const char *msg) {
        if (err)
                snprintf(err->message, sizeof(err->message), "%s", msg);
        return r;
}

int tv_cgroup_find_pods_parent(const char *override, char **ret_path, tv_limits_error *err) {
        if (!override)
                return fail(err, -ENOENT, "no pods cgroup in the fuzzer");
        if (override[0] != '/')
                return fail(err, -EINVAL, "cgroup parent must be absolute");
        *ret_path = strdup(override);
        return *ret_path ? 0 : -ENOMEM;
}

int tv_cgroup_enable_io(const char *path, tv_limits_error *err) {
        return path && path[0] == '/' ? 0 : fail(err, -EINVAL, "bad cgroup path");
}

int tv_limits_apply(const char *cgroup_dir, uint32_t major, uint32_t minor, const tv_limits *limits,
                    tv_limits_error *err) {
        char line[256];
        int r;

        if (!limits || !tv_limits_valid(limits))
                return fail(err, -EINVAL, "invalid limits");
        r = tv_limits_format_io_max(major, minor, limits, line, sizeof(line));
        return r < 0 ? fail(err, r, "io.max line does not format") : 0;
}

int tv_limits_clear(const char *cgroup_dir, uint32_t major, uint32_t minor, tv_limits_error *err) {
        return cgroup_dir && cgroup_dir[0] == '/' ? 0 : fail(err, -EINVAL, "bad cgroup path");
}
