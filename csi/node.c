/* The Node service: NodeGetInfo and NodeGetCapabilities, NodePublishVolume
 * and NodeUnpublishVolume (bind mounts of a staged volume into a pod),
 * NodeExpandVolume and NodeGetVolumeStats. Staging is in node_stage.c.
 * Each handler reads decode -> validate -> layer call -> encode. */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include "arena.h"
#include "node.h"
#include "thinvault/crypt.h"
#include "volspec.h"

#define RESIZE_TIMEOUT_MS (10 * 60 * 1000)

int node_get_info(tv_server *s, const ProtobufCMessage *req, tv_reply *reply) {
        Csi__V1__NodeGetInfoResponse resp = CSI__V1__NODE_GET_INFO_RESPONSE__INIT;
        Csi__V1__Topology topo = CSI__V1__TOPOLOGY__INIT;
        Csi__V1__Topology__SegmentsEntry seg = CSI__V1__TOPOLOGY__SEGMENTS_ENTRY__INIT;
        Csi__V1__Topology__SegmentsEntry *segs[] = {&seg};

        seg.key = (char *)TV_TOPOLOGY_KEY;
        seg.value = s->node_id;
        topo.n_segments = 1;
        topo.segments = segs;
        resp.node_id = s->node_id;
        resp.accessible_topology = &topo;
        /* 0: no limit of our own; the pool's capacity is the limit. */
        resp.max_volumes_per_node = 0;
        return reply_pack(reply, &resp.base);
}

int node_get_capabilities(tv_server *s, const ProtobufCMessage *req, tv_reply *reply) {
        Csi__V1__NodeGetCapabilitiesResponse resp = CSI__V1__NODE_GET_CAPABILITIES_RESPONSE__INIT;
        static const Csi__V1__NodeServiceCapability__RPC__Type types[] = {
                CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__STAGE_UNSTAGE_VOLUME,
                CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__GET_VOLUME_STATS,
                CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__EXPAND_VOLUME,
                CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__VOLUME_CONDITION,
        };
        Csi__V1__NodeServiceCapability__RPC rpc[ELEMENTSOF(types)];
        Csi__V1__NodeServiceCapability cap[ELEMENTSOF(types)];
        Csi__V1__NodeServiceCapability *caps[ELEMENTSOF(types)];

        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                csi__v1__node_service_capability__rpc__init(&rpc[i]);
                rpc[i].type = types[i];
                csi__v1__node_service_capability__init(&cap[i]);
                cap[i].type_case = CSI__V1__NODE_SERVICE_CAPABILITY__TYPE_RPC;
                cap[i].rpc = &rpc[i];
                caps[i] = &cap[i];
        }
        resp.n_capabilities = ELEMENTSOF(types);
        resp.capabilities = caps;
        return reply_pack(reply, &resp.base);
}

/* ---- NodePublishVolume --------------------------------------------------------- */

/* Is the mount at `target` this volume, as read-only as asked? For a file
 * system its st_dev is the mapping's; for a block volume the bind-mounted
 * node is the mapping's device. */
static bool publish_matches(const node_mount *m, const char *target, dev_t mdev, bool block, bool ro) {
        struct stat st;

        if (node_mount_has_option(m->options, "ro") != ro)
                return false;
        if (!block)
                return makedev(m->major, m->minor) == mdev;
        return stat(target, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == mdev;
}

/* What a failed publish must take back. */
typedef struct publish_undo {
        const char *mount_point;
        int parent_fd;
        const char *created; /* name in parent_fd */
        bool created_dir;
} publish_undo;

static void publish_undo_run(publish_undo *u) {
        if (u->mount_point && umount2(u->mount_point, UMOUNT_NOFOLLOW) < 0)
                log_error("publish failed and its mount cannot be undone", "path=%s err=%d", u->mount_point, errno);
        if (u->created && unlinkat(u->parent_fd, u->created, u->created_dir ? AT_REMOVEDIR : 0) < 0)
                log_error("publish failed and its target cannot be removed", "name=%s err=%d", u->created, errno);
        if (u->parent_fd >= 0)
                (void)close(u->parent_fd);
}

/* Make the target (directory for a file system, empty file for a block
 * device) unless it exists, inside the verified parent. Returns an O_PATH
 * descriptor of it. */
static int publish_target(tv_server *s, const char *target, bool block, publish_undo *undo, tv_reply *reply) {
        _cleanup_free_ char *parent = NULL;
        const char *base;
        char why[400];
        struct stat st;
        int fd, r;

        r = node_path_split(target, &parent, &base);
        if (r < 0)
                return reply_errno(reply, r, "target_path");
        undo->parent_fd = node_open_dir_verified(node_kubelet_dir(s), parent, why, sizeof(why));
        if (undo->parent_fd == -EINVAL)
                return reply_invalid(reply, "target_path: %s", why);
        if (undo->parent_fd < 0) {
                r = undo->parent_fd;
                undo->parent_fd = -1;
                return reply_errno(reply, r == -ENOENT ? -EBUSY : r, "target_path: parent %s", why);
        }
        if (block) {
                fd = openat(undo->parent_fd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
                if (fd >= 0) {
                        undo->created = base;
                        (void)close(fd);
                } else if (errno != EEXIST) {
                        return reply_errno(reply, -errno, "target_path: cannot create %s: %s", target, strerror(errno));
                }
        } else {
                if (mkdirat(undo->parent_fd, base, 0750) == 0) {
                        undo->created = base;
                        undo->created_dir = true;
                } else if (errno != EEXIST) {
                        return reply_errno(reply, -errno, "target_path: cannot create %s: %s", target, strerror(errno));
                }
        }
        fd = openat(undo->parent_fd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return reply_errno(reply, -errno, "target_path: cannot open %s: %s", target, strerror(errno));
        if (fstat(fd, &st) < 0 || (block ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode))) {
                (void)close(fd);
                return reply_invalid(reply, "target_path: %s is a symlink or not a %s", target,
                                     block ? "regular file" : "directory");
        }
        return fd;
}

int node_publish_volume(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__NodePublishVolumeRequest *req = (const Csi__V1__NodePublishVolumeRequest *)msg;
        Csi__V1__NodePublishVolumeResponse resp = CSI__V1__NODE_PUBLISH_VOLUME_RESPONSE__INIT;
        _cleanup_(node_mount_clear) node_mount m = {0}, sm = {0};
        _cleanup_(node_unlockp) void *lock = NULL;
        _cleanup_free_ char *staging = NULL, *target = NULL;
        _cleanup_close_ int fd = -1, mfd = -1;
        /* Last, so it runs first: under the lock, while `target` lives. */
        _cleanup_(publish_undo_run) publish_undo undo = {.parent_fd = -1};
        unsigned long flags;
        node_capability cap;
        char at[64];
        node_volume v;
        dev_t mdev;
        bool ro;
        int r;

        r = node_request_path(s, "staging_target_path", req->staging_target_path, reply);
        if (r < 0)
                return r;
        r = node_request_path(s, "target_path", req->target_path, reply);
        if (r < 0)
                return r;
        if (strcmp(req->staging_target_path, req->target_path) == 0)
                return reply_invalid(reply, "target_path is the staging_target_path");
        r = node_capability_check(req->volume_capability, &cap, reply);
        if (r < 0)
                return r;
        r = node_volume_from_id(s, req->volume_id, &v, reply);
        if (r < 0)
                return r;
        r = node_request_canonical(s, req->staging_target_path, &staging, reply);
        if (r < 0)
                return r;
        r = node_request_canonical(s, req->target_path, &target, reply);
        if (r < 0)
                return r;
        ro = req->readonly || (cap.opts.flags & MS_RDONLY);
        /* Per-mount flags of the bind; discard belongs to the file system. */
        flags = (cap.opts.flags & (MS_NOATIME | MS_NODEV | MS_NOSUID | MS_NOEXEC)) | (ro ? MS_RDONLY : 0);

        lock = node_lock(req->volume_id);
        r = node_devnum(v.mapper_path, &mdev);
        if (r == -ENOENT)
                return reply_errno(reply, -EBUSY, "volume %s is not staged on this node: NodeStageVolume first", v.lv_name);
        if (r < 0)
                return reply_errno(reply, r, "volume %s: mapping %s: %s", v.lv_name, v.mapping, strerror(-r));
        r = node_mount_lookup(target, &m);
        if (r < 0)
                return reply_errno(reply, r, "read /proc/self/mountinfo: %s", strerror(-r));
        if (r > 0) {
                if (publish_matches(&m, target, mdev, cap.block, ro))
                        return reply_pack(reply, &resp.base);
                return reply_errno(reply, -EEXIST, "target_path %s is already mounted, but not with volume %s %s",
                                   target, v.lv_name, ro ? "read-only" : "read-write");
        }
        if (!cap.block) {
                r = node_mount_lookup(staging, &sm);
                if (r < 0)
                        return reply_errno(reply, r, "read /proc/self/mountinfo: %s", strerror(-r));
                if (r == 0 || makedev(sm.major, sm.minor) != mdev)
                        return reply_errno(reply, -EBUSY, "volume %s is not staged at %s: NodeStageVolume first",
                                           v.lv_name, staging);
        }

        fd = publish_target(s, target, cap.block, &undo, reply);
        if (fd < 0)
                return fd;
        snprintf(at, sizeof(at), "/proc/self/fd/%d", fd);
        if (mount(cap.block ? v.mapper_path : staging, at, NULL, MS_BIND, NULL) < 0)
                return reply_errno(reply, -errno, "bind volume %s at %s: %s", v.lv_name, target, strerror(errno));
        undo.mount_point = target;
        /* A bind takes the source mount's flags; set exactly ours on it. The
         * new descriptor is the bind's root, not the directory below. */
        mfd = open(target, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (mfd < 0)
                return reply_errno(reply, -errno, "reopen %s: %s", target, strerror(errno));
        snprintf(at, sizeof(at), "/proc/self/fd/%d", mfd);
        if (mount(NULL, at, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0)
                return reply_errno(reply, -errno, "remount %s with the requested flags: %s", target, strerror(errno));
        undo.mount_point = NULL;
        undo.created = NULL;
        log_info("volume published", "volume=%s mode=%s readonly=%d", v.lv_name, cap.block ? "block" : "mount", ro);
        return reply_pack(reply, &resp.base);
}

/* ---- NodeUnpublishVolume --------------------------------------------------------- */

int node_unpublish_volume(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__NodeUnpublishVolumeRequest *req = (const Csi__V1__NodeUnpublishVolumeRequest *)msg;
        Csi__V1__NodeUnpublishVolumeResponse resp = CSI__V1__NODE_UNPUBLISH_VOLUME_RESPONSE__INIT;
        _cleanup_(node_unlockp) void *lock = NULL;
        _cleanup_free_ char *target = NULL, *parent = NULL;
        _cleanup_close_ int pfd = -1;
        const char *base;
        char why[400];
        struct stat st;
        node_volume v;
        int r;

        r = node_request_path(s, "target_path", req->target_path, reply);
        if (r < 0)
                return r;
        r = node_volume_from_id(s, req->volume_id, &v, reply);
        if (r < 0)
                return r;
        r = node_request_canonical(s, req->target_path, &target, reply);
        if (r < 0)
                return r;
        r = node_path_split(target, &parent, &base);
        if (r < 0)
                return reply_errno(reply, r, "target_path");

        lock = node_lock(req->volume_id);
        pfd = node_open_dir_verified(node_kubelet_dir(s), parent, why, sizeof(why));
        if (pfd == -ENOENT)
                return reply_pack(reply, &resp.base); /* nothing published there */
        if (pfd == -EINVAL)
                return reply_invalid(reply, "target_path: %s", why);
        if (pfd < 0)
                return reply_errno(reply, pfd, "target_path: %s", why);
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return reply_pack(reply, &resp.base);
                return reply_errno(reply, -errno, "target_path %s: %s", target, strerror(errno));
        }
        if (S_ISLNK(st.st_mode))
                return reply_invalid(reply, "target_path: %s is a symlink; symlinks are refused in node paths", target);
        r = node_unmount_all(target);
        if (r < 0)
                return reply_errno(reply, r, "unmount %s: %s", target, strerror(-r));
        /* Remove what publish made: the empty directory, or the empty file
         * a block device was bound on. Anything else is not ours. */
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISDIR(st.st_mode) && unlinkat(pfd, base, AT_REMOVEDIR) < 0)
                        log_warn("target directory left in place", "path=%s err=%d", target, errno);
                else if (S_ISREG(st.st_mode) && st.st_size == 0 && unlinkat(pfd, base, 0) < 0)
                        log_warn("target file left in place", "path=%s err=%d", target, errno);
        }
        log_info("volume unpublished", "volume=%s unmounted=%d", v.lv_name, r);
        return reply_pack(reply, &resp.base);
}

/* ---- NodeExpandVolume ---------------------------------------------------------------- */

static int grow_fs(const node_volume *v, const char *fs, const char *mount_point, tv_reply *reply) {
        const char *ext4[] = {"resize2fs", v->mapper_path, NULL};
        const char *xfs[] = {"xfs_growfs", mount_point, NULL};
        _cleanup_free_ char *err = NULL;
        bool is_xfs = strcmp(fs, "xfs") == 0;
        char q[400];
        int r;

        if (strcmp(fs, "ext4") != 0 && !is_xfs)
                return reply_errno(reply, -EMEDIUMTYPE, "volume %s holds %s; only ext4 and xfs are grown", v->lv_name, fs);
        r = tv_exec(is_xfs ? xfs : ext4, RESIZE_TIMEOUT_MS, NULL, &err);
        if (r == -ENOENT)
                return reply_errno(reply, -ENOEXEC, "%s is not installed on this node", is_xfs ? "xfs_growfs" : "resize2fs");
        if (r != 0)
                return reply_errno(reply, r < 0 ? r : -EIO, "%s of volume %s failed (status %d): %s",
                                   is_xfs ? "xfs_growfs" : "resize2fs", v->lv_name, r,
                                   err ? tv_log_quote(tv_strstrip_end(err), q, sizeof(q)) : "");
        return 0;
}

int node_expand_volume(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__NodeExpandVolumeRequest *req = (const Csi__V1__NodeExpandVolumeRequest *)msg;
        Csi__V1__NodeExpandVolumeResponse resp = CSI__V1__NODE_EXPAND_VOLUME_RESPONSE__INIT;
        _cleanup_(node_mount_clear) node_mount m = {0};
        _cleanup_(node_unlockp) void *lock = NULL;
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        _cleanup_free_ char *path = NULL;
        uint64_t mapped_size = 0;
        tv_crypt_error cerr;
        struct stat st;
        node_volume v;
        dev_t mdev;
        bool block;
        tv_pool *p;
        int r;

        r = node_request_path(s, "volume_path", req->volume_path, reply);
        if (r < 0)
                return r;
        r = node_volume_from_id(s, req->volume_id, &v, reply);
        if (r < 0)
                return r;
        r = node_request_canonical(s, req->volume_path, &path, reply);
        if (r < 0)
                return r;
        r = node_request_no_symlink(s, "volume_path", path, reply);
        if (r < 0)
                return r;
        if (req->capacity_range && (req->capacity_range->required_bytes < 0 || req->capacity_range->limit_bytes < 0))
                return reply_invalid(reply, "capacity_range: values must not be negative");

        lock = node_lock(req->volume_id);
        p = server_pool(s, reply);
        if (!p)
                return -EHOSTDOWN;
        r = node_volume_lookup(p, &v, &lv, reply);
        if (r < 0)
                return r;
        if (req->capacity_range && (uint64_t)req->capacity_range->required_bytes > tv_lv_size(lv)) {
                reply_status(reply, TV_STATUS_OUT_OF_RANGE,
                             "volume %s is %llu bytes, less than the %lld asked: ControllerExpandVolume grows it first",
                             v.lv_name, (unsigned long long)tv_lv_size(lv), (long long)req->capacity_range->required_bytes);
                return -ERANGE;
        }
        r = node_devnum(v.mapper_path, &mdev);
        if (r == -ENOENT)
                return reply_errno(reply, -EBUSY, "volume %s is not staged on this node", v.lv_name);
        if (r < 0)
                return reply_errno(reply, r, "volume %s: mapping %s: %s", v.lv_name, v.mapping, strerror(-r));
        if (stat(path, &st) < 0)
                return reply_errno(reply, -errno, "volume_path %s: %s", path, strerror(errno));
        block = req->volume_capability ? req->volume_capability->access_type_case ==
                                                 CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_BLOCK
                                       : S_ISBLK(st.st_mode);
        if (block && (!S_ISBLK(st.st_mode) || st.st_rdev != mdev))
                return reply_errno(reply, -EBUSY, "volume_path %s is not the block device of volume %s", path,
                                   v.lv_name);
        if (!block) {
                r = node_mount_lookup(path, &m);
                if (r < 0)
                        return reply_errno(reply, r, "read /proc/self/mountinfo: %s", strerror(-r));
                if (r == 0 || makedev(m.major, m.minor) != mdev)
                        return reply_errno(reply, -EBUSY, "volume_path %s is not a mount of volume %s", path,
                                           v.lv_name);
        }

        r = tv_luks_resize(v.mapping, &mapped_size, &cerr);
        if (r < 0)
                return reply_errno(reply, r, "grow the encrypted mapping of volume %s: %s", v.lv_name, cerr.message);
        tv_kill_point("expand.after_luks_resize");
        if (!block) {
                r = grow_fs(&v, m.fstype, path, reply);
                if (r < 0)
                        return r;
        }
        /* Per-GiB budgets follow the new size. */
        r = node_reapply_limits(s, v.lv_name, reply);
        if (r < 0)
                return r;
        resp.capacity_bytes = (int64_t)tv_lv_size(lv);
        log_info("volume expanded on node", "volume=%s bytes=%llu mapped_bytes=%llu", v.lv_name,
                 (unsigned long long)tv_lv_size(lv), (unsigned long long)mapped_size);
        return reply_pack(reply, &resp.base);
}

/* ---- NodeGetVolumeStats -------------------------------------------------------------- */

static Csi__V1__VolumeUsage *usage(arena *a, Csi__V1__VolumeUsage__Unit unit, uint64_t total, uint64_t avail,
                                   uint64_t used) {
        Csi__V1__VolumeUsage *u = arena_alloc(a, sizeof(*u));

        if (!u)
                return NULL;
        csi__v1__volume_usage__init(u);
        u->unit = unit;
        u->total = (int64_t)total;
        u->available = (int64_t)avail;
        u->used = (int64_t)used;
        return u;
}

int node_get_volume_stats(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__NodeGetVolumeStatsRequest *req = (const Csi__V1__NodeGetVolumeStatsRequest *)msg;
        Csi__V1__NodeGetVolumeStatsResponse resp = CSI__V1__NODE_GET_VOLUME_STATS_RESPONSE__INIT;
        Csi__V1__VolumeCondition cond = CSI__V1__VOLUME_CONDITION__INIT;
        _cleanup_(node_mount_clear) node_mount m = {0};
        _cleanup_free_ char *path = NULL;
        Csi__V1__VolumeUsage *u[2];
        char why[600] = "";
        tv_lvm_error err;
        node_volume v;
        bool mapped, ready = false;
        arena a = {0};
        struct stat st;
        uint64_t fs_errors = 0;
        dev_t mdev = 0;
        tv_pool *p;
        int r;

        r = node_request_path(s, "volume_path", req->volume_path, reply);
        if (r < 0)
                return r;
        r = node_volume_from_id(s, req->volume_id, &v, reply);
        if (r < 0)
                return r;
        r = node_request_canonical(s, req->volume_path, &path, reply);
        if (r < 0)
                return r;
        r = node_request_no_symlink(s, "volume_path", path, reply);
        if (r < 0)
                return r;
        if (lstat(path, &st) < 0) {
                r = -errno;
                return reply_errno(reply, r, "volume_path %s: %s", path, strerror(-r));
        }
        if (S_ISLNK(st.st_mode))
                return reply_invalid(reply, "volume_path: %s is a symlink; symlinks are refused in node paths", path);
        mapped = node_devnum(v.mapper_path, &mdev) == 0;

        if (S_ISBLK(st.st_mode)) {
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                uint64_t size = 0;

                if (fd >= 0 && ioctl(fd, BLKGETSIZE64, &size) == 0) {
                        u[resp.n_usage++] = usage(&a, CSI__V1__VOLUME_USAGE__UNIT__BYTES, size, 0, 0);
                }
                if (!mapped || st.st_rdev != mdev)
                        snprintf(why, sizeof(why), "the encrypted mapping %s of volume %s is gone: unstage and stage it again",
                                 v.mapping, v.lv_name);
        } else if (S_ISDIR(st.st_mode)) {
                struct statvfs sv;

                if (statvfs(path, &sv) < 0)
                        return reply_errno(reply, -errno, "statvfs %s: %s", path, strerror(errno));
                u[resp.n_usage++] = usage(&a, CSI__V1__VOLUME_USAGE__UNIT__BYTES, (uint64_t)sv.f_blocks * sv.f_frsize,
                                          (uint64_t)sv.f_bavail * sv.f_frsize,
                                          (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize);
                u[resp.n_usage++] = usage(&a, CSI__V1__VOLUME_USAGE__UNIT__INODES, sv.f_files, sv.f_favail,
                                          sv.f_files - sv.f_ffree);
                r = node_mount_lookup(path, &m);
                if (r < 0)
                        return reply_errno(reply, r, "read /proc/self/mountinfo: %s", strerror(-r));
                if (!mapped)
                        snprintf(why, sizeof(why), "the encrypted mapping %s of volume %s is gone", v.mapping, v.lv_name);
                else if (r == 0 || makedev(m.major, m.minor) != mdev)
                        snprintf(why, sizeof(why), "volume %s is not mounted at %s", v.lv_name, path);
                else if (node_mount_has_option(m.super_options, "ro") && !node_mount_has_option(m.options, "ro"))
                        /* ext4 errors=remount-ro and xfs shutdowns turn the
                         * superblock read-only under read-write mounts. */
                        snprintf(why, sizeof(why),
                                 "the %s file system of volume %s was remounted read-only (I/O or file system errors)",
                                 m.fstype, v.lv_name);
                else if (node_fs_error_count("/sys", m.fstype, m.major, m.minor, &fs_errors) == 0 && fs_errors > 0)
                        snprintf(why, sizeof(why),
                                 "the %s file system of volume %s has recorded %" PRIu64
                                 " error(s) (I/O or file system errors; it may have shut down): unstage it and "
                                 "run fsck",
                                 m.fstype, v.lv_name, fs_errors);
        } else {
                return reply_errno(reply, -ENOENT, "volume_path %s is neither a mount nor a block device", path);
        }
        if (!why[0]) {
                p = server_pool(s, NULL);
                if (!p)
                        snprintf(why, sizeof(why), "thin pool %s/%s does not answer", s->vg, s->thin_pool);
                else if ((tv_pool_probe(p, &ready, &err) < 0 || !ready) && err.message[0])
                        snprintf(why, sizeof(why), "%s", err.message); /* names the pool and why */
                else if (!ready)
                        snprintf(why, sizeof(why), "thin pool %s/%s is not healthy", s->vg, s->thin_pool);
        }
        cond.abnormal = why[0] != '\0';
        cond.message = why[0] ? why : (char *)"volume is healthy";
        resp.volume_condition = &cond;
        resp.usage = u;
        if (a.failed) {
                arena_free(&a);
                return reply_errno(reply, -ENOMEM, "encode volume stats");
        }
        r = reply_pack(reply, &resp.base);
        arena_free(&a);
        return r;
}
