/* Private to csi/: what the Node service's files share. The pure parts
 * (path rules, mount flags, /proc/self/mountinfo lines) are unit-tested on
 * the host; the rest touches mounts and devices and is tested in the guest
 * (tests/guest/test_node.sh). */
#ifndef THINVAULT_CSI_NODE_H
#define THINVAULT_CSI_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"

#define TV_KUBELET_DIR_DEFAULT "/var/lib/kubelet"
/* Mapping of a staged volume: "tvc-" + LV name (node_mapping_name()). */
#define TV_MAPPING_PREFIX "tvc-"
#define TV_MAPPING_SIZE (TV_LV_NAME_SIZE + 8)

/* ---- paths (paths.c) ---------------------------------------------------- */

/* The kubelet directory the server was given (default above). */
const char *node_kubelet_dir(const tv_server *s);

/* Lexical rules for a path a CO hands us (staging, target, volume path):
 * absolute, clean (no empty, "." or ".." component, no trailing '/'),
 * shorter than PATH_MAX, and strictly inside `root` (itself absolute and
 * clean). Returns 0, or -EINVAL with a reason in `why` that quotes no more
 * of the path than the request holds. Pure. */
int node_path_check(const char *root, const char *path, char *why, size_t why_size);

/* The path as the kernel names it in /proc/self/mountinfo: realpath(root)
 * followed by the part of `path` below `root` (`path` must have passed
 * node_path_check()). Only `root` must exist. Returns 0 and a heap string,
 * or a negative errno from realpath(). */
int node_path_canonical(const char *root, const char *path, char **ret);

/* Open directory `dir` (checked with node_path_check(), or `root` itself)
 * as an O_PATH descriptor and prove that it is where the name says: no
 * component below `root` is a symlink (the descriptor's /proc/self/fd link
 * must read node_path_canonical()). Returns the descriptor, or -EINVAL
 * (a symlink on the way; `why` says so), -ENOENT, -ENOTDIR, or -errno. */
int node_open_dir_verified(const char *root, const char *dir, char *why, size_t why_size);

/* Split a checked path into its parent directory (heap) and last component
 * (a pointer into `path`). Returns 0 or -ENOMEM. */
int node_path_split(const char *path, char **ret_parent, const char **ret_base);

/* ---- mount flags (mount.c) ---------------------------------------------- */

typedef struct node_mount_opts {
        unsigned long flags; /* MS_RDONLY, MS_NOATIME, MS_NODEV, MS_NOSUID, MS_NOEXEC */
        bool discard;        /* file system option "discard" */
} node_mount_opts;

/* Parse a capability's mount_flags: each entry one flag or several joined
 * by ',': ro, noatime, nodev, nosuid, noexec, discard (and "rw", "defaults"
 * which change nothing). Anything else is -EINVAL with `why` naming it.
 * Pure. */
int node_mount_flags_parse(char *const *flags, size_t n, node_mount_opts *ret, char *why, size_t why_size);

/* ---- /proc/self/mountinfo (mount.c) ------------------------------------- */

/* One line of mountinfo, fields decoded (octal escapes such as \040). */
typedef struct node_mount {
        uint32_t major, minor;  /* st_dev of the mounted file system */
        char *root;             /* the part of that file system mounted */
        char *mount_point;
        char *options;          /* per-mount: "rw,nosuid,relatime" */
        char *fstype;
        char *source;
        char *super_options;    /* per-superblock: "rw,discard" */
} node_mount;

void node_mount_clear(node_mount *m);

/* Parse one mountinfo line (without its newline). Returns 0 and *ret (free
 * with node_mount_clear()), -EBADMSG, -ENOMEM. Pure. */
int node_mountinfo_parse_line(const char *line, size_t len, node_mount *ret);

/* Step through mountinfo `text`: *cursor starts at text; each call parses
 * the next line. Returns 1 and *ret, 0 at the end, -EBADMSG, -ENOMEM. */
int node_mountinfo_next(const char **cursor, node_mount *ret);

/* The topmost mount at `mount_point` in `text` (the last line that names
 * it). Returns 1 and *ret, 0 when nothing is mounted there, or < 0. Pure. */
int node_mountinfo_find(const char *text, const char *mount_point, node_mount *ret);

/* True when the comma-separated `options` hold `opt` exactly. Pure. */
bool node_mount_has_option(const char *options, const char *opt);

/* How many errors the ext2/3/4 file system on device MAJ:MIN has recorded
 * (its superblock's s_error_count, as <sysfs>/fs/ext4/<dev>/errors_count
 * shows it; <dev> is the name /sys/dev/block/MAJ:MIN links to). On
 * current kernels (the test guest's Debian 6.1.0-56 among them) an ext4
 * error no longer turns the superblock read-only in mountinfo (the file
 * system is shut down instead, though dmesg still says "Remounting
 * filesystem read-only"), so this count is how a caller learns of a
 * journal aborted by I/O errors. `sysfs` is "/sys"
 * but for tests. Returns 0 and *ret; -EOPNOTSUPP for other file systems;
 * -ENOENT, -EBADMSG or -errno. */
int node_fs_error_count(const char *sysfs, const char *fstype, uint32_t major, uint32_t minor, uint64_t *ret);

/* Read /proc/self/mountinfo into a heap string. Returns 0 or -errno. */
int node_mountinfo_read(char **ret_text);

/* node_mountinfo_find() on the live table. */
int node_mount_lookup(const char *mount_point, node_mount *ret);

/* Unmount everything stacked at `path` (UMOUNT_NOFOLLOW; no lazy detach:
 * a busy mount stays and is -EBUSY). Returns how many were unmounted, or a
 * negative errno. */
int node_unmount_all(const char *path);

/* ---- devices (node_dev.c) ----------------------------------------------- */

/* A volume as the Node service handles it. */
typedef struct node_volume {
        const char *id;                   /* the request's volume_id */
        char lv_name[TV_LV_NAME_SIZE];
        char mapping[TV_MAPPING_SIZE];    /* "tvc-<lv>" */
        char mapper_path[TV_MAPPING_SIZE + 16]; /* "/dev/mapper/tvc-<lv>" */
} node_volume;

/* Fill *v from a volume id of this server's VG. -EINVAL (reply: empty id),
 * -ENOENT (reply: NOT_FOUND for an id that names none of our volumes). */
int node_volume_from_id(tv_server *s, const char *id, node_volume *v, tv_reply *reply);

/* The thin LV of *v in `p`. A thin LV with our name shape but not our
 * kind tag ("volume") is an admin's, not a volume: NOT_FOUND, as for one
 * that is missing; other lvm2 errors as tv_lv_lookup() says. */
int node_volume_lookup(tv_pool *p, const node_volume *v, tv_lv **ret, tv_reply *reply);

/* MAJ:MIN of a block device node. -ENOENT when absent, -ENOTBLK. */
int node_devnum(const char *path, dev_t *ret);

/* True when the dm device `mapping` sits directly on block device `lower`
 * (sysfs slaves/). */
bool node_mapping_on(dev_t mapping, dev_t lower);

/* What a volume capability asks of the node. */
typedef struct node_capability {
        bool block;
        const char *fs;      /* mount: fs_type asked for, "" when none */
        node_mount_opts opts; /* mount flags; MS_RDONLY also for SINGLE_NODE_READER_ONLY */
} node_capability;

/* Check a NodeStage/NodePublish capability: present, a SINGLE_NODE_* mode,
 * block or mount with ext4/xfs, known mount flags, no volume_mount_group.
 * -EINVAL with the reply filled. */
int node_capability_check(const Csi__V1__VolumeCapability *cap, node_capability *ret, tv_reply *reply);

/* node_path_check() under the kubelet directory: -EINVAL (INVALID_ARGUMENT
 * naming `field`). */
int node_request_path(tv_server *s, const char *field, const char *path, tv_reply *reply);

/* `path` (canonical) names no symlink and goes through none, or does not
 * exist: else -EINVAL (INVALID_ARGUMENT naming `field`). For the RPCs that
 * only look at or unmount a path, which match mounts by name and would
 * otherwise answer for what a link leads to. */
int node_request_no_symlink(tv_server *s, const char *field, const char *path, tv_reply *reply);

/* node_path_canonical() under the kubelet directory: *ret (heap) is the
 * name to use with mountinfo and mount(2). A kubelet directory that cannot
 * be resolved is FAILED_PRECONDITION. */
int node_request_canonical(tv_server *s, const char *path, char **ret, tv_reply *reply);

/* One lock per volume id (hashed into a small fixed set): stage, unstage,
 * publish, unpublish and expand of one volume never interleave. */
void *node_lock(const char *volume_id);
void node_unlockp(void **lock);

#endif
