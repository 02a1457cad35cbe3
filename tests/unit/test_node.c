/* The Node service's pure parts (path rules, mount flags, mountinfo) and
 * its request validation through dispatch, without a pool or a kernel
 * that has device-mapper (that is tests/guest/test_node.sh). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../csi/node.h"
#include "csi.pb-c.h"
#include "thinvault/csi.h"
#include "tv_test.h"

#define K "/var/lib/kubelet"

static int path_check(const char *p) {
        char why[400];
        return node_path_check(K, p, why, sizeof(why));
}

TEST(test_node_path_inside_kubelet_dir_is_accepted) {
        CHECK_INT(path_check(K "/plugins/kubernetes.io/csi/thinvault.csi.io/abc/globalmount"), 0);
        CHECK_INT(path_check(K "/pods/1234/volumes/kubernetes.io~csi/pvc-1/mount"), 0);
        CHECK_INT(path_check(K "/x"), 0);
        CHECK_INT(path_check(K "/a..b/.c/..d"), 0); /* dots inside names are names */
}

TEST(test_node_path_traversal_relative_and_outside_are_invalid) {
        char why[400];

        CHECK_INT(path_check(K "/pods/../../../etc"), -EINVAL);
        CHECK_INT(path_check(K "/.."), -EINVAL);
        CHECK_INT(path_check(K "/pods/./x"), -EINVAL);
        CHECK_INT(path_check(K "//pods"), -EINVAL);
        CHECK_INT(path_check(K "/pods/"), -EINVAL);
        CHECK_INT(path_check("var/lib/kubelet/pods"), -EINVAL);
        CHECK_INT(path_check("pods/x"), -EINVAL);
        CHECK_INT(path_check("/etc/kubernetes"), -EINVAL);
        CHECK_INT(path_check(K), -EINVAL);            /* the directory itself */
        CHECK_INT(path_check(K "x/pods"), -EINVAL);   /* a sibling with the same prefix */
        CHECK_INT(path_check(""), -EINVAL);
        CHECK_INT(node_path_check(K, NULL, why, sizeof(why)), -EINVAL);
        CHECK_INT(node_path_check(K, "/tmp/x", why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "not inside the kubelet directory") != NULL);
        CHECK_INT(node_path_check(K, K "/a/../b", why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "\"..\"") != NULL);
}

TEST(test_node_path_longer_than_path_max_is_invalid) {
        size_t n = 5000;
        char *p = malloc(n + 1);

        memcpy(p, K "/", strlen(K "/"));
        memset(p + strlen(K "/"), 'a', n - strlen(K "/"));
        p[n] = '\0';
        CHECK_INT(path_check(p), -EINVAL);
        free(p);
}

TEST(test_node_path_canonical_keeps_the_part_below_root) {
        char *c = NULL;

        CHECK_INT(node_path_canonical("/", "/tmp/x/y", &c), 0);
        CHECK_STR(c, "/tmp/x/y");
        free(c);
        c = NULL;
        CHECK_INT(node_path_canonical("/tmp", "/tmp", &c), 0);
        CHECK(c && c[0] == '/');
        free(c);
        c = NULL;
        CHECK_INT(node_path_canonical("/nonexistent-kubelet-dir", "/nonexistent-kubelet-dir/x", &c), -ENOENT);
        CHECK(c == NULL);
}

TEST(test_node_path_split_gives_parent_and_name) {
        char *parent = NULL;
        const char *base = NULL;

        CHECK_INT(node_path_split("/a/b/c", &parent, &base), 0);
        CHECK_STR(parent, "/a/b");
        CHECK_STR(base, "c");
        free(parent);
        CHECK_INT(node_path_split("/c", &parent, &base), 0);
        CHECK_STR(parent, "/");
        CHECK_STR(base, "c");
        free(parent);
}

TEST(test_node_mount_flags_known_flags_set_bits_and_discard) {
        char *flags[] = {"ro", "noatime,nodev", "nosuid", "noexec", "discard", "rw", "defaults"};
        node_mount_opts o;
        char why[200];

        CHECK_INT(node_mount_flags_parse(flags, ELEMENTSOF(flags), &o, why, sizeof(why)), 0);
        CHECK_INT(o.flags, MS_RDONLY | MS_NOATIME | MS_NODEV | MS_NOSUID | MS_NOEXEC);
        CHECK(o.discard);
        CHECK_INT(node_mount_flags_parse(NULL, 0, &o, why, sizeof(why)), 0);
        CHECK_INT(o.flags, 0);
        CHECK(!o.discard);
}

TEST(test_node_mount_flags_unknown_or_empty_is_invalid) {
        char *bad1[] = {"noatime", "bind"};
        char *bad2[] = {"ro,,nodev"};
        char *bad3[] = {""};
        char *bad4[] = {"discards"};
        char *bad5[] = {"data=journal"};
        node_mount_opts o;
        char why[200];

        CHECK_INT(node_mount_flags_parse(bad1, 2, &o, why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "\"bind\"") != NULL);
        CHECK_INT(node_mount_flags_parse(bad2, 1, &o, why, sizeof(why)), -EINVAL);
        CHECK_INT(node_mount_flags_parse(bad3, 1, &o, why, sizeof(why)), -EINVAL);
        CHECK_INT(node_mount_flags_parse(bad4, 1, &o, why, sizeof(why)), -EINVAL);
        CHECK_INT(node_mount_flags_parse(bad5, 1, &o, why, sizeof(why)), -EINVAL);
}

/* Captured from the test guest (kernel 6.1), plus a path with a space. */
static const char mountinfo[] =
        "22 1 0:20 / / rw,relatime - overlay overlay rw,lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w\n"
        "25 22 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=1000k,nr_inodes=250,mode=755\n"
        "40 22 0:31 / /tmp rw,relatime - tmpfs tmpfs rw\n"
        "61 40 254:3 / /tmp/k/plugins/tv/globalmount rw,noatime - ext4 /dev/mapper/tvc-tv-a rw,discard\n"
        "62 40 254:3 / /tmp/k/pods/p1/mount ro,noatime shared:7 master:3 - ext4 /dev/mapper/tvc-tv-a ro,discard\n"
        "63 40 0:5 /mapper/tvc-tv-b /tmp/k/pods/p2/dev rw,nosuid,relatime - devtmpfs udev rw,mode=755\n"
        "64 40 254:4 / /tmp/k/with\\040space rw - xfs /dev/mapper/tvc-tv-c rw,attr2\n"
        "65 40 254:5 / /tmp/k/plugins/tv/globalmount rw - ext4 /dev/mapper/tvc-tv-d rw\n";

TEST(test_node_mountinfo_line_fields_are_decoded) {
        node_mount m = {0};
        const char *line = "62 40 254:3 / /tmp/k/pods/p1/mount ro,noatime shared:7 master:3 - ext4 /dev/mapper/tvc-tv-a ro,discard";

        CHECK_INT(node_mountinfo_parse_line(line, strlen(line), &m), 0);
        CHECK_INT(m.major, 254);
        CHECK_INT(m.minor, 3);
        CHECK_STR(m.root, "/");
        CHECK_STR(m.mount_point, "/tmp/k/pods/p1/mount");
        CHECK_STR(m.options, "ro,noatime");
        CHECK_STR(m.fstype, "ext4");
        CHECK_STR(m.source, "/dev/mapper/tvc-tv-a");
        CHECK_STR(m.super_options, "ro,discard");
        node_mount_clear(&m);
}

TEST(test_node_mountinfo_malformed_lines_are_refused) {
        node_mount m = {0};
        const char *no_sep = "61 40 254:3 / /x rw ext4 /dev/x rw";
        const char *no_dev = "61 40 xx / /x rw - ext4 /dev/x rw";
        const char *short_line = "61 40";

        CHECK_INT(node_mountinfo_parse_line(no_sep, strlen(no_sep), &m), -EBADMSG);
        CHECK_INT(node_mountinfo_parse_line(no_dev, strlen(no_dev), &m), -EBADMSG);
        CHECK_INT(node_mountinfo_parse_line(short_line, strlen(short_line), &m), -EBADMSG);
}

TEST(test_node_mountinfo_find_returns_the_topmost_mount) {
        node_mount m = {0};

        CHECK_INT(node_mountinfo_find(mountinfo, "/tmp/k/plugins/tv/globalmount", &m), 1);
        CHECK_INT(m.minor, 5); /* the later line is mounted over the earlier */
        node_mount_clear(&m);
        CHECK_INT(node_mountinfo_find(mountinfo, "/tmp/k/with space", &m), 1);
        CHECK_STR(m.fstype, "xfs");
        node_mount_clear(&m);
        CHECK_INT(node_mountinfo_find(mountinfo, "/tmp/k/pods/p2/dev", &m), 1);
        CHECK_STR(m.root, "/mapper/tvc-tv-b");
        node_mount_clear(&m);
        CHECK_INT(node_mountinfo_find(mountinfo, "/tmp/k/pods", &m), 0);
        CHECK_INT(node_mountinfo_find(mountinfo, "/tmp/k/with\\040space", &m), 0);
}

TEST(test_node_mount_has_option_matches_whole_options) {
        CHECK(node_mount_has_option("rw,noatime,discard", "discard"));
        CHECK(node_mount_has_option("ro", "ro"));
        CHECK(!node_mount_has_option("rw,relatime", "ro"));
        CHECK(!node_mount_has_option("rw,noatime", "atime"));
        CHECK(!node_mount_has_option("", "ro"));
        CHECK(!node_mount_has_option(NULL, "ro"));
}

/* ---- through dispatch: refused before any pool or device is touched ---- */

static uint8_t *pack(const ProtobufCMessage *m, size_t *len) {
        *len = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = malloc(*len + 1);
        protobuf_c_message_pack(m, buf);
        return buf;
}

static int call(const char *path, const ProtobufCMessage *req, char *msg, size_t msg_size) {
        tv_server *s = NULL;
        tv_reply reply = {0};
        size_t len;
        uint8_t *body = pack(req, &len);
        int status;

        CHECK_INT(tv_server_new_for_test("node-a", &s), 0);
        tv_dispatch(s, path, body, len, &reply);
        status = reply.status;
        if (msg)
                snprintf(msg, msg_size, "%s", reply.message);
        tv_reply_clear(&reply);
        tv_server_free(s);
        free(body);
        return status;
}

static int stage(const char *volume_id, const char *path, Csi__V1__VolumeCapability *cap, char *msg) {
        Csi__V1__NodeStageVolumeRequest req = CSI__V1__NODE_STAGE_VOLUME_REQUEST__INIT;

        req.volume_id = (char *)volume_id;
        req.staging_target_path = (char *)path;
        req.volume_capability = cap;
        return call("/csi.v1.Node/NodeStageVolume", &req.base, msg, 1024);
}

TEST(test_node_stage_bad_paths_and_capabilities_are_invalid_argument) {
        Csi__V1__VolumeCapability cap = CSI__V1__VOLUME_CAPABILITY__INIT;
        Csi__V1__VolumeCapability__MountVolume mnt = CSI__V1__VOLUME_CAPABILITY__MOUNT_VOLUME__INIT;
        Csi__V1__VolumeCapability__AccessMode mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__INIT;
        char *flags[] = {"noatime", "sync"};
        const char *id = "tvpool:tv-pvc-1-0123456789abcdef";
        char msg[1024];

        mode.mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_WRITER;
        cap.access_mode = &mode;
        cap.access_type_case = CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT;
        cap.mount = &mnt;

        CHECK_INT(stage("", K "/g", &cap, msg), TV_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(msg, "volume_id") != NULL);
        CHECK_INT(stage(id, "relative/g", &cap, msg), TV_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(msg, "staging_target_path") != NULL);
        CHECK_INT(stage(id, K "/../../etc", &cap, msg), TV_STATUS_INVALID_ARGUMENT);
        CHECK_INT(stage(id, "/etc/g", &cap, msg), TV_STATUS_INVALID_ARGUMENT);
        CHECK_INT(stage(id, "", &cap, msg), TV_STATUS_INVALID_ARGUMENT);
        CHECK_INT(stage(id, K "/g", NULL, msg), TV_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(msg, "volume_capability is required") != NULL);

        mode.mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__MULTI_NODE_MULTI_WRITER;
        CHECK_INT(stage(id, K "/g", &cap, msg), TV_STATUS_INVALID_ARGUMENT);
        mode.mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_WRITER;

        mnt.fs_type = "vfat";
        CHECK_INT(stage(id, K "/g", &cap, msg), TV_STATUS_INVALID_ARGUMENT);
        mnt.fs_type = "ext4";
        mnt.n_mount_flags = 2;
        mnt.mount_flags = flags;
        CHECK_INT(stage(id, K "/g", &cap, msg), TV_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(msg, "\"sync\"") != NULL);
        mnt.n_mount_flags = 0;
        mnt.volume_mount_group = "1000";
        CHECK_INT(stage(id, K "/g", &cap, msg), TV_STATUS_INVALID_ARGUMENT);
}

TEST(test_node_stage_id_of_another_pool_is_not_found) {
        Csi__V1__VolumeCapability cap = CSI__V1__VOLUME_CAPABILITY__INIT;
        Csi__V1__VolumeCapability__BlockVolume blk = CSI__V1__VOLUME_CAPABILITY__BLOCK_VOLUME__INIT;
        Csi__V1__VolumeCapability__AccessMode mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__INIT;
        char msg[1024];

        mode.mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_WRITER;
        cap.access_mode = &mode;
        cap.access_type_case = CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_BLOCK;
        cap.block = &blk;
        /* the test server has no VG: no id can name one of its volumes */
        CHECK_INT(stage("othervg:tv-x-0123456789abcdef", K "/g", &cap, msg), TV_STATUS_NOT_FOUND);
        CHECK_INT(stage("garbage", K "/g", &cap, msg), TV_STATUS_NOT_FOUND);
}

TEST(test_node_publish_unpublish_stats_expand_validate_paths) {
        Csi__V1__NodePublishVolumeRequest pub = CSI__V1__NODE_PUBLISH_VOLUME_REQUEST__INIT;
        Csi__V1__NodeUnpublishVolumeRequest unpub = CSI__V1__NODE_UNPUBLISH_VOLUME_REQUEST__INIT;
        Csi__V1__NodeUnstageVolumeRequest unstage = CSI__V1__NODE_UNSTAGE_VOLUME_REQUEST__INIT;
        Csi__V1__NodeGetVolumeStatsRequest stats = CSI__V1__NODE_GET_VOLUME_STATS_REQUEST__INIT;
        Csi__V1__NodeExpandVolumeRequest expand = CSI__V1__NODE_EXPAND_VOLUME_REQUEST__INIT;
        char msg[1024];

        pub.volume_id = "x";
        pub.staging_target_path = K "/g";
        pub.target_path = K "/pods/../../../root";
        CHECK_INT(call("/csi.v1.Node/NodePublishVolume", &pub.base, msg, sizeof(msg)), TV_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(msg, "target_path") != NULL);
        pub.target_path = K "/g";
        CHECK_INT(call("/csi.v1.Node/NodePublishVolume", &pub.base, msg, sizeof(msg)), TV_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(msg, "is the staging_target_path") != NULL);
        stats.volume_id = "x";
        stats.volume_path = "/proc/self";
        CHECK_INT(call("/csi.v1.Node/NodeGetVolumeStats", &stats.base, msg, sizeof(msg)), TV_STATUS_INVALID_ARGUMENT);
        unpub.volume_id = "";
        unpub.target_path = K "/t";
        CHECK_INT(call("/csi.v1.Node/NodeUnpublishVolume", &unpub.base, msg, sizeof(msg)), TV_STATUS_INVALID_ARGUMENT);
        unstage.volume_id = "";
        CHECK_INT(call("/csi.v1.Node/NodeUnstageVolume", &unstage.base, msg, sizeof(msg)), TV_STATUS_INVALID_ARGUMENT);
        stats.volume_id = "";
        CHECK_INT(call("/csi.v1.Node/NodeGetVolumeStats", &stats.base, msg, sizeof(msg)), TV_STATUS_INVALID_ARGUMENT);
        expand.volume_id = "";
        CHECK_INT(call("/csi.v1.Node/NodeExpandVolume", &expand.base, msg, sizeof(msg)), TV_STATUS_INVALID_ARGUMENT);
}

TEST(test_node_capabilities_are_stage_stats_expand_condition) {
        Csi__V1__NodeGetCapabilitiesRequest req = CSI__V1__NODE_GET_CAPABILITIES_REQUEST__INIT;
        static const int want[] = {
                CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__STAGE_UNSTAGE_VOLUME,
                CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__GET_VOLUME_STATS,
                CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__EXPAND_VOLUME,
                CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__VOLUME_CONDITION,
        };
        tv_server *s = NULL;
        tv_reply reply = {0};
        size_t len;
        uint8_t *body = pack(&req.base, &len);

        CHECK_INT(tv_server_new_for_test("node-a", &s), 0);
        tv_dispatch(s, "/csi.v1.Node/NodeGetCapabilities", body, len, &reply);
        CHECK_INT(reply.status, TV_STATUS_OK);
        Csi__V1__NodeGetCapabilitiesResponse *r =
                csi__v1__node_get_capabilities_response__unpack(NULL, reply.body_len, reply.body);
        CHECK(r != NULL);
        if (r) {
                CHECK_INT(r->n_capabilities, ELEMENTSOF(want));
                for (size_t i = 0; i < r->n_capabilities && i < ELEMENTSOF(want); i++) {
                        CHECK_INT(r->capabilities[i]->type_case, CSI__V1__NODE_SERVICE_CAPABILITY__TYPE_RPC);
                        CHECK_INT(r->capabilities[i]->rpc->type, want[i]);
                }
                csi__v1__node_get_capabilities_response__free_unpacked(r, NULL);
        }
        tv_reply_clear(&reply);
        tv_server_free(s);
        free(body);
}

/* A fake /sys: dev/block/MAJ:MIN links to the device, fs/ext4/<dev>/
 * holds errors_count, as the kernel lays them out. */
static void fake_sysfs(const char *root, const char *count) {
        char p[512];
        FILE *f;

        snprintf(p, sizeof(p), "%s/dev", root);
        CHECK_INT(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/dev/block", root);
        CHECK_INT(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/dev/block/253:5", root);
        CHECK_INT(symlink("../../devices/virtual/block/dm-5", p), 0);
        snprintf(p, sizeof(p), "%s/dev/block/253:6", root);
        CHECK_INT(symlink("../../devices/virtual/block/dm-6", p), 0);
        snprintf(p, sizeof(p), "%s/fs", root);
        CHECK_INT(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/fs/ext4", root);
        CHECK_INT(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/fs/ext4/dm-5", root);
        CHECK_INT(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/fs/ext4/dm-5/errors_count", root);
        f = fopen(p, "w");
        CHECK(f != NULL);
        if (f) {
                fputs(count, f);
                fclose(f);
        }
}

static void rm_fake_sysfs(const char *root) {
        static const char *const rel[] = {"fs/ext4/dm-5/errors_count", "fs/ext4/dm-5", "fs/ext4", "fs",
                                          "dev/block/253:5", "dev/block/253:6", "dev/block", "dev", ""};
        char p[512];
        for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
                snprintf(p, sizeof(p), "%s/%s", root, rel[i]);
                (void)(remove(p) == 0);
        }
}

TEST(test_node_fs_error_count_reads_ext4_errors_count_of_the_device) {
        char root[] = "/tmp/tv-sysfs-XXXXXX";
        uint64_t n = 99;

        CHECK(mkdtemp(root) != NULL);
        fake_sysfs(root, "3\n");
        CHECK_INT(node_fs_error_count(root, "ext4", 253, 5, &n), 0);
        CHECK_INT((int)n, 3);
        /* ext2/ext3 are served by the ext4 driver */
        CHECK_INT(node_fs_error_count(root, "ext3", 253, 5, &n), 0);
        /* another file system: no such count */
        CHECK_INT(node_fs_error_count(root, "xfs", 253, 5, &n), -EOPNOTSUPP);
        /* a device with no ext4 directory, and no device at all */
        CHECK_INT(node_fs_error_count(root, "ext4", 253, 6, &n), -ENOENT);
        CHECK_INT(node_fs_error_count(root, "ext4", 253, 7, &n), -ENOENT);
        rm_fake_sysfs(root);
}

TEST(test_node_fs_error_count_zero_and_malformed) {
        char root[] = "/tmp/tv-sysfs-XXXXXX", p[512];
        uint64_t n = 99;
        FILE *f;

        CHECK(mkdtemp(root) != NULL);
        fake_sysfs(root, "0\n");
        CHECK_INT(node_fs_error_count(root, "ext4", 253, 5, &n), 0);
        CHECK_INT((int)n, 0);
        snprintf(p, sizeof(p), "%s/fs/ext4/dm-5/errors_count", root);
        f = fopen(p, "w");
        CHECK(f != NULL);
        if (f) {
                fputs("x1\n", f);
                fclose(f);
        }
        CHECK_INT(node_fs_error_count(root, "ext4", 253, 5, &n), -EBADMSG);
        f = fopen(p, "w");
        CHECK(f != NULL);
        if (f)
                fclose(f);
        CHECK_INT(node_fs_error_count(root, "ext4", 253, 5, &n), -EBADMSG);
        rm_fake_sysfs(root);
}

/* Unstage, stats and expand match mounts by the path's name: a symlink in
 * it would make them answer for what it leads to (an outside mount). A
 * path that does not exist is fine (unstage is idempotent). */
TEST(test_node_request_no_symlink_refuses_links_at_any_component) {
        char root[] = "/tmp/tv-unit-links.XXXXXX", p[256];
        tv_server *s = NULL;
        tv_reply reply = {0};

        CHECK(mkdtemp(root) != NULL);
        CHECK_INT(tv_server_new_for_test("node-a", &s), 0);
        s->kubelet_dir = strdup(root);
        snprintf(p, sizeof(p), "%s/real", root);
        CHECK_INT(mkdir(p, 0700), 0);
        snprintf(p, sizeof(p), "%s/link", root);
        CHECK_INT(symlink("/tmp", p), 0);
        snprintf(p, sizeof(p), "%s/mid", root);
        CHECK_INT(symlink("real", p), 0);

        snprintf(p, sizeof(p), "%s/real", root);
        CHECK_INT(node_request_no_symlink(s, "f", p, &reply), 0);
        snprintf(p, sizeof(p), "%s/real/missing", root);
        CHECK_INT(node_request_no_symlink(s, "f", p, &reply), 0);
        snprintf(p, sizeof(p), "%s/missing/x", root);
        CHECK_INT(node_request_no_symlink(s, "f", p, &reply), 0);
        snprintf(p, sizeof(p), "%s/link", root);
        CHECK_INT(node_request_no_symlink(s, "f", p, &reply), -EINVAL);
        CHECK_INT(reply.status, TV_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(reply.message, "symlink") != NULL);
        snprintf(p, sizeof(p), "%s/mid/x", root);
        CHECK_INT(node_request_no_symlink(s, "f", p, &reply), -EINVAL);
        snprintf(p, sizeof(p), "%s/link/x", root);
        CHECK_INT(node_request_no_symlink(s, "f", p, &reply), -EINVAL);

        snprintf(p, sizeof(p), "%s/link", root);
        unlink(p);
        snprintf(p, sizeof(p), "%s/mid", root);
        unlink(p);
        snprintf(p, sizeof(p), "%s/real", root);
        rmdir(p);
        rmdir(root);
        tv_reply_clear(&reply);
        tv_server_free(s);
}
