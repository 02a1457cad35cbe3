/* Volume ids, device numbers and per-volume locks of the Node service. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "node.h"
#include "thinvault/crypt.h"
#include "volspec.h"

int node_volume_from_id(tv_server *s, const char *id, node_volume *v, tv_reply *reply) {
        int r;

        *v = (node_volume){.id = id};
        if (!id || !*id)
                return reply_invalid(reply, "volume_id is required");
        r = s->vg ? volume_id_parse(id, s->vg, TV_LV_KIND_VOLUME, v->lv_name) : -ENOENT;
        if (r < 0)
                return reply_errno(reply, -ENOENT, "volume %.200s not found: not a volume id of this node's pool %s", id,
                                   s->vg ? s->vg : "(none)");
        r = node_mapping_name(v->lv_name, v->mapping, sizeof(v->mapping));
        if (r < 0 || !tv_luks_mapping_name_valid(v->mapping))
                return reply_errno(reply, -ENOENT, "volume %.200s not found: no mapping name for it", id);
        snprintf(v->mapper_path, sizeof(v->mapper_path), "/dev/mapper/%s", v->mapping);
        return 0;
}

int node_volume_lookup(tv_pool *p, const node_volume *v, tv_lv **ret, tv_reply *reply) {
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        tv_lvm_error err;
        const char *kind;
        int r;

        r = tv_lv_lookup(p, v->lv_name, &lv, &err);
        if (r == -ENOENT)
                return reply_errno(reply, -ENOENT, "volume %.200s not found", v->id);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        kind = tv_lv_tag(lv, TV_TAG_KIND);
        if (!kind || strcmp(kind, "volume") != 0)
                return reply_errno(reply, -ENOENT, "volume %.200s not found", v->id);
        *ret = TAKE_PTR(lv);
        return 0;
}

int node_devnum(const char *path, dev_t *ret) {
        struct stat st;

        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISBLK(st.st_mode))
                return -ENOTBLK;
        *ret = st.st_rdev;
        return 0;
}

static void closedirp(DIR **d) {
        if (*d)
                (void)closedir(*d);
}

static void fclosep(FILE **f) {
        if (*f)
                (void)fclose(*f);
}

bool node_mapping_on(dev_t mapping, dev_t lower) {
        char dir[96], path[400], buf[32];
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *e;

        snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u/slaves", major(mapping), minor(mapping));
        d = opendir(dir);
        if (!d)
                return false;
        while ((e = readdir(d))) {
                _cleanup_(fclosep) FILE *f = NULL;
                unsigned maj, min;

                if (e->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "%s/%s/dev", dir, e->d_name);
                f = fopen(path, "re");
                if (!f || !fgets(buf, sizeof(buf), f))
                        continue;
                if (sscanf(buf, "%u:%u", &maj, &min) == 2 && makedev(maj, min) == lower)
                        return true;
        }
        return false;
}

/* Kubelet serialises operations on one volume; a retry racing its own
 * earlier call, or a second CO, must not. A few striped locks are enough:
 * a collision only serialises two volumes' node calls. */
#define NODE_LOCKS 64
static pthread_mutex_t node_locks[NODE_LOCKS] = {[0 ... NODE_LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER};

void *node_lock(const char *volume_id) {
        uint32_t h = 2166136261u; /* FNV-1a */

        for (const char *c = volume_id ? volume_id : ""; *c; c++)
                h = (h ^ (uint8_t)*c) * 16777619u;
        pthread_mutex_lock(&node_locks[h % NODE_LOCKS]);
        return &node_locks[h % NODE_LOCKS];
}

void node_unlockp(void **lock) {
        if (*lock)
                pthread_mutex_unlock(*lock);
}

int node_capability_check(const Csi__V1__VolumeCapability *cap, node_capability *ret, tv_reply *reply) {
        Csi__V1__VolumeCapability *const caps[] = {(Csi__V1__VolumeCapability *)cap};
        node_capability c = {0};
        char why[200];
        int r;

        if (!cap)
                return reply_invalid(reply, "volume_capability is required");
        r = capabilities_check(caps, 1, true, &c.fs, &c.block, reply);
        if (r < 0)
                return r;
        if (cap->access_type_case == CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT) {
                if (cap->mount->volume_mount_group && *cap->mount->volume_mount_group)
                        return reply_invalid(reply, "volume_capability.mount.volume_mount_group is not supported by %s",
                                             TV_DRIVER_NAME);
                r = node_mount_flags_parse(cap->mount->mount_flags, cap->mount->n_mount_flags, &c.opts, why,
                                           sizeof(why));
                if (r < 0)
                        return reply_invalid(reply, "volume_capability.mount.mount_flags: %s", why);
        }
        if (cap->access_mode->mode == CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_READER_ONLY)
                c.opts.flags |= MS_RDONLY;
        if (!c.fs)
                c.fs = "";
        *ret = c;
        return 0;
}

int node_request_path(tv_server *s, const char *field, const char *path, tv_reply *reply) {
        char why[400];
        int r;

        r = node_path_check(node_kubelet_dir(s), path, why, sizeof(why));
        if (r < 0)
                return reply_invalid(reply, "%s: %s", field, why);
        return 0;
}

int node_request_no_symlink(tv_server *s, const char *field, const char *path, tv_reply *reply) {
        _cleanup_free_ char *parent = NULL;
        _cleanup_close_ int pfd = -1;
        const char *base;
        char why[400];
        struct stat st;
        int r;

        r = node_path_split(path, &parent, &base);
        if (r < 0)
                return reply_errno(reply, r, "%s", field);
        pfd = node_open_dir_verified(node_kubelet_dir(s), parent, why, sizeof(why));
        if (pfd == -ENOENT || pfd == -ENOTDIR)
                return 0; /* nothing there: nothing to be led astray by */
        if (pfd == -EINVAL)
                return reply_invalid(reply, "%s: %s", field, why);
        if (pfd < 0)
                return reply_errno(reply, pfd, "%s: %s", field, why);
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                return reply_invalid(reply, "%s: %s is a symlink; symlinks are refused in node paths", field, path);
        return 0;
}

int node_request_canonical(tv_server *s, const char *path, char **ret, tv_reply *reply) {
        const char *root = node_kubelet_dir(s);
        int r;

        r = node_path_canonical(root, path, ret);
        if (r < 0) {
                reply_status(reply, TV_STATUS_FAILED_PRECONDITION, "the kubelet directory %s cannot be resolved: %s", root,
                             strerror(-r));
                return r;
        }
        return 0;
}
