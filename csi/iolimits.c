/* The I/O budget of a staged volume: its recorded limits spec, resolved
 * for its size, written as io.max for its dm-crypt device on the cgroup
 * that parents every pod. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "volspec.h"

/* The dm-crypt mapping a staged LV is opened as. */
int node_mapping_name(const char *lv_name, char *buf, size_t size) {
        int n = snprintf(buf, size, "tvc-%s", lv_name);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* MAJ:MIN of /dev/mapper/<mapping>; -ENOENT when it is not open. */
static int mapping_devnum(const char *mapping, uint32_t *ret_major, uint32_t *ret_minor) {
        char path[300];
        struct stat st;

        if (snprintf(path, sizeof(path), "/dev/mapper/%s", mapping) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISBLK(st.st_mode))
                return -ENOTBLK;
        *ret_major = major(st.st_rdev);
        *ret_minor = minor(st.st_rdev);
        return 0;
}

int iolimits_for_lv(const tv_lv *lv, uint64_t size, tv_limits *ret, tv_reply *reply) {
        const char *tag = tv_lv_tag(lv, TV_TAG_LIMITS);
        tv_limits_error err;
        tv_limits_spec spec = {0};

        if (tag && tv_limits_spec_from_string(tag, &spec, &err) < 0)
                return reply_errno(reply, -EIO, "volume %s has an unreadable limits tag: %s", tv_lv_name(lv), err.message);
        if (tv_limits_resolve(&spec, size, ret, &err) < 0)
                return reply_errno(reply, -EINVAL, "volume %s: %s", tv_lv_name(lv), err.message);
        return 0;
}

int iolimits_apply(tv_server *s, const char *mapping, const tv_limits *l, tv_reply *reply) {
        _cleanup_free_ char *cg = NULL;
        tv_limits_error err;
        uint32_t maj, min;
        int r;

        r = mapping_devnum(mapping, &maj, &min);
        if (r < 0)
                return reply_errno(reply, r, "device of mapping %s", mapping);
        r = tv_cgroup_find_pods_parent(s->cgroup_parent, &cg, &err);
        if (r < 0) {
                if (tv_limits_is_unlimited(l))
                        return 0; /* nothing to enforce, nowhere to enforce it */
                return reply_errno(reply, -EBUSY, "volume has I/O limits but no pods cgroup to enforce them on: %s",
                                   err.message);
        }
        if (tv_limits_is_unlimited(l)) {
                r = tv_limits_clear(cg, maj, min, &err);
                if (r < 0)
                        return reply_errno(reply, r, "%s", err.message);
                return 0;
        }
        r = tv_cgroup_enable_io(cg, &err);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        r = tv_limits_apply(cg, maj, min, l, &err);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        return 0;
}

int iolimits_clear(tv_server *s, const char *mapping, tv_reply *reply) {
        _cleanup_free_ char *cg = NULL;
        tv_limits_error err;
        uint32_t maj, min;
        int r;

        r = mapping_devnum(mapping, &maj, &min);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return reply_errno(reply, r, "device of mapping %s", mapping);
        if (tv_cgroup_find_pods_parent(s->cgroup_parent, &cg, &err) < 0)
                return 0; /* no pods cgroup: no line can exist */
        r = tv_limits_clear(cg, maj, min, &err);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        return 0;
}

int node_reapply_limits(tv_server *s, const char *lv_name, tv_reply *reply) {
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        char mapping[TV_LV_NAME_SIZE + 8];
        uint32_t maj, min;
        tv_lvm_error err;
        tv_limits l;
        tv_pool *p;
        int r;

        r = node_mapping_name(lv_name, mapping, sizeof(mapping));
        if (r < 0)
                return reply_errno(reply, r, "mapping name for %s", lv_name);
        if (mapping_devnum(mapping, &maj, &min) == -ENOENT)
                return 0; /* not staged on this node */
        p = server_pool(s, reply);
        if (!p)
                return -EHOSTDOWN;
        r = tv_lv_lookup(p, lv_name, &lv, &err);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        r = iolimits_for_lv(lv, tv_lv_size(lv), &l, reply);
        if (r < 0)
                return r;
        return iolimits_apply(s, mapping, &l, reply);
}
