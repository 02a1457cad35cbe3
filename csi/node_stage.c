/* NodeStageVolume and NodeUnstageVolume: a tenant's thin LV becomes an
 * open dm-crypt mapping under the tenant's key (LUKS2-formatted on first
 * use), a file system on it is mounted at the staging path, and its I/O
 * budget is written as io.max on the pods' cgroup. Unstaging undoes it in
 * reverse. Also the start-up pass that re-applies io.max to every volume
 * still staged. Each handler reads decode -> validate -> layer calls ->
 * encode; a failed stage leaves no mapping and no mount behind. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "node.h"
#include "thinvault/crypt.h"
#include "volspec.h"

#define MKFS_TIMEOUT_MS (5 * 60 * 1000)

/* What a failed stage must take back, newest first. */
typedef struct stage_undo {
        const char *mount_point; /* unmount it */
        const char *mapping;     /* close it */
} stage_undo;

static void stage_undo_run(stage_undo *u) {
        tv_crypt_error cerr;

        if (u->mount_point && umount2(u->mount_point, UMOUNT_NOFOLLOW) < 0)
                log_error("stage failed and its mount cannot be undone", "path=%s err=%d", u->mount_point, errno);
        if (u->mapping && tv_luks_close(u->mapping, &cerr) < 0)
                log_error("stage failed and its mapping cannot be closed", "mapping=%s error=%s", u->mapping,
                          tv_log_quote(cerr.message, (char[600]){0}, 600));
}

/* Secret values are the caller's to erase (crypt.h): the request is
 * freed by dispatch right after the handler, unwiped. */
static void secrets_erase(const Csi__V1__NodeStageVolumeRequest **reqp) {
        const Csi__V1__NodeStageVolumeRequest *req = *reqp;

        for (size_t i = 0; req && i < req->n_secrets; i++)
                if (req->secrets[i]->value)
                        explicit_bzero(req->secrets[i]->value, strlen(req->secrets[i]->value));
}

/* ---- key ------------------------------------------------------------------ */

static int stage_key(tv_server *s, const Csi__V1__NodeStageVolumeRequest *req, const tv_lv *lv, const char *tenant,
                     tv_key **ret_key, const char **ret_source, tv_reply *reply) {
        const char *src = tv_lv_tag(lv, TV_TAG_KEY_SOURCE);
        _cleanup_free_ const char **keys = NULL, **values = NULL;
        tv_crypt_error cerr;
        int r;

        if (!src || !*src)
                src = "secret";
        *ret_source = src;
        if (strcmp(src, "derived") == 0) {
                if (!s->master_key)
                        return reply_status(reply, TV_STATUS_FAILED_PRECONDITION,
                                            "volume %s of tenant %s uses a key derived on the node, but thinvault-csi "
                                            "runs without --master-key",
                                            tv_lv_name(lv), tenant);
                r = tv_key_derive(s->master_key, tenant, ret_key, &cerr);
                if (r == -ENOMEM)
                        return reply_errno(reply, r, "tenant %s: derive key: %s", tenant, cerr.message);
                if (r < 0)
                        return reply_status(reply, TV_STATUS_FAILED_PRECONDITION,
                                            "tenant %s: no key can be derived from the node's master key: %s", tenant,
                                            cerr.message);
                return 0;
        }
        if (strcmp(src, "secret") != 0)
                return reply_status(reply, TV_STATUS_FAILED_PRECONDITION,
                                    "volume %s has key source \"%.32s\"; this plugin knows \"secret\" and \"derived\"",
                                    tv_lv_name(lv), src);
        keys = calloc(req->n_secrets + 1, sizeof(*keys));
        values = calloc(req->n_secrets + 1, sizeof(*values));
        if (!keys || !values)
                return reply_errno(reply, -ENOMEM, "tenant %s: read node-stage secret", tenant);
        for (size_t i = 0; i < req->n_secrets; i++) {
                keys[i] = req->secrets[i]->key;
                values[i] = req->secrets[i]->value;
        }
        r = tv_key_from_secret(keys, values, req->n_secrets, tenant, ret_key, &cerr);
        if (r < 0)
                return reply_errno(reply, r, "tenant %s: no usable key in the node-stage secret: %s", tenant,
                                   cerr.message);
        return 0;
}

/* The node-stage secret's "previousKey", present while a tenant rotates its
 * key: the key its volumes may still be locked with. *ret_key stays NULL
 * when the secret has none. */
static int stage_previous_key(const Csi__V1__NodeStageVolumeRequest *req, const char *tenant, tv_key **ret_key,
                              tv_reply *reply) {
        static const char *const key_name[] = {"key"};
        const char *value = NULL;
        tv_crypt_error cerr;
        int r;

        for (size_t i = 0; i < req->n_secrets; i++)
                if (req->secrets[i]->key && strcmp(req->secrets[i]->key, "previousKey") == 0)
                        value = req->secrets[i]->value;
        if (!value)
                return 0;
        /* The same rules as "key": base64 of 32 to 1024 random bytes. */
        r = tv_key_from_secret(key_name, &value, 1, tenant, ret_key, &cerr);
        if (r < 0)
                return reply_errno(reply, r, "tenant %s: the node-stage secret's previousKey is not usable: %s", tenant,
                                   cerr.message);
        return 0;
}

/* Rotation, one volume at a time as each is staged: the tenant's Secret
 * holds the new "key" and the old "previousKey"; a volume still locked with
 * the old one gets a keyslot for the new one and loses the old (crypt.h:
 * safe to retry after a crash at any step). A volume already on the new key
 * is left as it is. `info` is what stage_luks_prepare() found (or made). */
static int stage_rotate(const tv_lv *lv, const char *dev, const tv_luks_info *info, const tv_key *previous,
                        const tv_key *key, const char *tenant, tv_reply *reply) {
        tv_crypt_error cerr;
        int r;

        if (!previous || tv_key_equal(previous, key))
                return 0;
        if (info->kind == TV_LUKS_KIND_OURS && strcmp(info->fingerprint, tv_key_fingerprint(key)) == 0)
                return 0; /* on the new key already */
        r = tv_luks_rotate(dev, previous, key, &cerr);
        if (r == -EKEYREJECTED)
                return reply_errno(reply, r, "tenant %s: neither the node-stage secret's key nor its previousKey opens "
                                             "volume %s",
                                   tenant, tv_lv_name(lv));
        if (r < 0)
                return reply_errno(reply, r, "volume %s: rotate to the new key: %s", tv_lv_name(lv), cerr.message);
        log_info("volume key rotated", "volume=%s tenant=%s from=%s to=%s", tv_lv_name(lv), tenant, info->fingerprint,
                 tv_key_fingerprint(key));
        return 0;
}

/* ---- LUKS ------------------------------------------------------------------ */

/* Format an empty LV; accept ours of the same tenant; refuse anything else
 * without writing a byte. *info: what is on the LV now (after a format:
 * ours, locked with `key`); *ret_formatted: whether this call formatted it. */
static int stage_luks_prepare(const tv_lv *lv, const char *dev, const tv_key *key, const char *tenant,
                              tv_luks_info *info, bool *ret_formatted, tv_reply *reply) {
        tv_crypt_error cerr;
        int r;

        *ret_formatted = false;
        r = tv_luks_probe(dev, info, &cerr);
        if (r < 0)
                return reply_errno(reply, r, "probe volume %s: %s", tv_lv_name(lv), cerr.message);
        switch (info->kind) {
        case TV_LUKS_KIND_EMPTY:
                r = tv_luks_format(dev, key, &cerr);
                if (r < 0)
                        return reply_errno(reply, r == -EEXIST ? -EMEDIUMTYPE : r, "format volume %s: %s",
                                           tv_lv_name(lv), cerr.message);
                log_info("volume formatted", "volume=%s tenant=%s fingerprint=%s", tv_lv_name(lv), tenant,
                         tv_key_fingerprint(key));
                tv_kill_point("stage.after_format");
                *ret_formatted = true;
                info->kind = TV_LUKS_KIND_OURS;
                snprintf(info->tenant, sizeof(info->tenant), "%s", tenant);
                snprintf(info->fingerprint, sizeof(info->fingerprint), "%s", tv_key_fingerprint(key));
                return 0;
        case TV_LUKS_KIND_OURS:
                if (strcmp(info->tenant, tenant) == 0)
                        return 0;
                /* The other tenant is not named: the message goes to this one. */
                return reply_errno(reply, -EMEDIUMTYPE,
                                   "volume %s is tagged for tenant %s but holds another tenant's encrypted volume: "
                                   "refusing to open or format it",
                                   tv_lv_name(lv), tenant);
        case TV_LUKS_KIND_FOREIGN:
                if (info->damaged)
                        return reply_errno(reply, -EMEDIUMTYPE,
                                           "volume %s holds a LUKS2 header that cannot be loaded (both copies "
                                           "damaged): refusing to open or format it; restore the header from a "
                                           "backup (cryptsetup luksHeaderRestore) or delete the volume",
                                           tv_lv_name(lv));
                return reply_errno(reply, -EMEDIUMTYPE,
                                   "volume %s holds a LUKS%d volume that thinvault did not make: refusing to open or "
                                   "format it",
                                   tv_lv_name(lv), info->luks_version);
        default:
                return reply_errno(reply, -EMEDIUMTYPE,
                                   "volume %s holds %s, written outside thinvault: refusing to format over it",
                                   tv_lv_name(lv), info->type[0] ? info->type : "an unknown signature");
        }
}

/* ---- file system -------------------------------------------------------------- */

static int make_fs(const node_volume *v, const char *fs, tv_reply *reply) {
        const char *ext4[] = {"mkfs.ext4", "-q", "-b", "4096", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
                              v->mapper_path, NULL};
        const char *xfs[] = {"mkfs.xfs", "-q", "-K", v->mapper_path, NULL};
        _cleanup_free_ char *err = NULL;
        char q[400];
        int r;

        r = tv_exec(strcmp(fs, "xfs") == 0 ? xfs : ext4, MKFS_TIMEOUT_MS, NULL, &err);
        if (r == -ENOENT)
                return reply_errno(reply, -ENOEXEC, "mkfs.%s is not installed on this node", fs);
        if (r != 0)
                return reply_errno(reply, r < 0 ? r : -EIO, "mkfs.%s on volume %s failed (status %d): %s", fs,
                                   v->lv_name, r, err ? tv_log_quote(tv_strstrip_end(err), q, sizeof(q)) : "");
        log_info("file system made", "volume=%s fs=%s", v->lv_name, fs);
        tv_kill_point("stage.after_mkfs");
        return 0;
}

/* The file system's mount options. ext4 gets noinit_itable: mkfs left
 * the inode tables uninitialised (lazy_itable_init) and the kernel would
 * zero them in the background after mount. Through dm-crypt those zeros
 * are ciphertext, so every block of them is allocated in the thin pool:
 * ~1.6 GiB for an empty 100 GiB volume (measured, bench/node.sh). ext4's
 * group descriptor checksums and itable_unused already tell the kernel and
 * e2fsck which inodes were never used, so the tables need no zeroing. */
static const char *mount_data(const char *fs, bool discard) {
        if (strcmp(fs, "ext4") == 0)
                return discard ? "noinit_itable,discard" : "noinit_itable";
        return discard ? "discard" : NULL;
}

/* Is `m` this mapping, mounted with this file system and these flags? */
static bool mount_matches(const node_mount *m, dev_t dev, const char *fs, const node_mount_opts *o) {
        static const struct {
                const char *opt;
                unsigned long flag;
        } flags[] = {{"ro", MS_RDONLY}, {"noatime", MS_NOATIME}, {"nodev", MS_NODEV}, {"nosuid", MS_NOSUID},
                     {"noexec", MS_NOEXEC}};

        if (makedev(m->major, m->minor) != dev || strcmp(m->fstype, fs) != 0)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(flags); i++)
                if (node_mount_has_option(m->options, flags[i].opt) != !!(o->flags & flags[i].flag))
                        return false;
        return node_mount_has_option(m->super_options, "discard") == o->discard;
}

/* Open (creating it if missing) the staging directory so that no symlink
 * can move the mount elsewhere. Returns an O_PATH descriptor. */
static int open_staging_dir(tv_server *s, const char *path, tv_reply *reply) {
        _cleanup_free_ char *parent = NULL;
        _cleanup_close_ int pfd = -1;
        const char *base;
        char why[400];
        struct stat st;
        int fd, r;

        r = node_path_split(path, &parent, &base);
        if (r < 0)
                return reply_errno(reply, r, "staging_target_path");
        pfd = node_open_dir_verified(node_kubelet_dir(s), parent, why, sizeof(why));
        if (pfd == -EINVAL)
                return reply_invalid(reply, "staging_target_path: %s", why);
        if (pfd < 0)
                return reply_errno(reply, pfd == -ENOENT ? -EBUSY : pfd, "staging_target_path: parent %s", why);
        if (mkdirat(pfd, base, 0750) < 0 && errno != EEXIST)
                return reply_errno(reply, -errno, "staging_target_path: cannot create %s: %s", path, strerror(errno));
        fd = openat(pfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return reply_errno(reply, -errno, "staging_target_path: cannot open %s: %s", path, strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
                (void)close(fd);
                return reply_invalid(reply, "staging_target_path: %s is a symlink or not a directory", path);
        }
        return fd;
}

/* A signature libblkid found on the mapping of a volume that may be
 * formatted, in bytes never written through any mapping (their ciphertext
 * on `dev` is still the thin LV's zeros): noise, not data. A retry after a
 * crash between the LUKS format and mkfs meets the same random bytes as
 * the first try, which did not probe them. Returns 1 (noise), 0 (maybe
 * data), or a negative errno with the reply set. */
static int stage_fs_noise(const node_volume *v, const char *dev, const tv_luks_info *info, tv_reply *reply) {
        tv_crypt_error cerr;
        int r;

        if (info->kind != TV_LUKS_KIND_OTHER || info->magic_len == 0)
                return 0;
        r = tv_luks_plaintext_unwritten(dev, info->magic_offset, info->magic_len, &cerr);
        if (r < 0)
                return reply_errno(reply, r, "volume %s: check where its %s signature lies: %s", v->lv_name,
                                   info->type, cerr.message);
        if (r > 0)
                log_info("signature in never-written bytes ignored", "volume=%s type=%s offset=%" PRIu64, v->lv_name,
                         info->type, info->magic_offset);
        return r;
}

/* Make the file system, or check the one there. `may_format`: the volume
 * was created for a file system (it has an fs tag). One created as a raw
 * block volume holds the tenant's bytes, which blkid cannot tell from an
 * empty device: no file system is made on it. `fresh`: this call formatted
 * the LUKS volume, so nothing was ever written through the mapping. Its
 * data area then reads as the decryption of the thin LV's zeros, random
 * bytes in which blkid finds a short magic now and then (hfsplus has two
 * bytes; the load test's 400 fresh volumes met one): it is not probed.
 * A signature found later is checked the same way (stage_fs_noise()). */
static int stage_fs(const node_volume *v, const char *dev, const char *fs, bool may_format, bool fresh,
                    tv_reply *reply) {
        tv_crypt_error cerr;
        tv_luks_info info;
        int r;

        if (fresh && may_format)
                return make_fs(v, fs, reply);
        r = tv_luks_probe(v->mapper_path, &info, &cerr);
        if (r < 0)
                return reply_errno(reply, r, "probe the file system of volume %s: %s", v->lv_name, cerr.message);
        if (info.kind == TV_LUKS_KIND_EMPTY && !may_format)
                return reply_errno(reply, -EMEDIUMTYPE,
                                   "volume %s was created as a raw block volume and holds no file system: refusing "
                                   "to make one over its data",
                                   v->lv_name);
        if (info.kind == TV_LUKS_KIND_EMPTY)
                return make_fs(v, fs, reply);
        if (may_format) {
                r = stage_fs_noise(v, dev, &info, reply);
                if (r < 0)
                        return r;
                if (r > 0)
                        return make_fs(v, fs, reply);
        }
        if (info.kind != TV_LUKS_KIND_OTHER || strcmp(info.type, fs) != 0)
                return reply_errno(reply, -EMEDIUMTYPE, "volume %s holds %s, not %s: refusing to format over it",
                                   v->lv_name, info.type[0] ? info.type : "an unknown signature", fs);
        return 0;
}

static int stage_mount(const node_volume *v, const char *dev, const node_capability *cap, const char *fs,
                       bool may_format, bool fresh, const char *staging, int staging_fd, dev_t mdev, stage_undo *undo,
                       tv_reply *reply) {
        _cleanup_(node_mount_clear) node_mount m = {0};
        char target[64];
        int r;

        r = node_mount_lookup(staging, &m);
        if (r < 0)
                return reply_errno(reply, r, "read /proc/self/mountinfo: %s", strerror(-r));
        if (r > 0) {
                if (mount_matches(&m, mdev, fs, &cap->opts))
                        return 0; /* staged already, the same way */
                return reply_errno(reply, -EEXIST,
                                   "staging_target_path %s is already mounted, but not with volume %s as %s with these "
                                   "mount flags: it was staged differently",
                                   staging, v->lv_name, fs);
        }
        r = stage_fs(v, dev, fs, may_format, fresh, reply);
        if (r < 0)
                return r;

        /* Mount on the descriptor: the kernel follows the magic link to
         * the very directory checked above, whatever happens to the names. */
        snprintf(target, sizeof(target), "/proc/self/fd/%d", staging_fd);
        if (mount(v->mapper_path, target, fs, cap->opts.flags, mount_data(fs, cap->opts.discard)) < 0)
                return reply_errno(reply, -errno, "mount volume %s (%s) at %s: %s", v->lv_name, fs, staging,
                                   strerror(errno));
        undo->mount_point = staging;
        return 0;
}

/* ---- NodeStageVolume ------------------------------------------------------------ */

int node_stage_volume(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        _cleanup_(secrets_erase) const Csi__V1__NodeStageVolumeRequest *req =
                (const Csi__V1__NodeStageVolumeRequest *)msg;
        Csi__V1__NodeStageVolumeResponse resp = CSI__V1__NODE_STAGE_VOLUME_RESPONSE__INIT;
        _cleanup_(node_unlockp) void *lock = NULL;
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        _cleanup_(tv_key_freep) tv_key *key = NULL, *previous = NULL;
        _cleanup_free_ char *staging = NULL;
        _cleanup_close_ int staging_fd = -1;
        /* Before `undo`, whose undo.mapping points into it. */
        node_volume v;
        /* Last, so it runs first: under the lock, while `staging` lives. */
        _cleanup_(stage_undo_run) stage_undo undo = {0};
        const char *tenant, *lv_fs = NULL, *fs = NULL, *key_source = NULL, *dev;
        uint64_t t0 = tv_now_ms();
        node_capability cap;
        tv_crypt_error cerr;
        tv_luks_info luks;
        tv_limits limits;
        dev_t mdev;
        bool mapped, formatted;
        tv_pool *p;
        int r;

        r = node_request_path(s, "staging_target_path", req->staging_target_path, reply);
        if (r < 0)
                return r;
        r = node_capability_check(req->volume_capability, &cap, reply);
        if (r < 0)
                return r;
        r = node_volume_from_id(s, req->volume_id, &v, reply);
        if (r < 0)
                return r;
        r = node_request_canonical(s, req->staging_target_path, &staging, reply);
        if (r < 0)
                return r;

        lock = node_lock(req->volume_id);
        p = server_pool(s, reply);
        if (!p)
                return -EHOSTDOWN;
        r = node_volume_lookup(p, &v, &lv, reply);
        if (r < 0)
                return r;
        tenant = tv_lv_tag(lv, TV_TAG_TENANT);
        if (!tenant || !tv_tenant_valid(tenant))
                return reply_errno(reply, -EMEDIUMTYPE, "volume %s has no valid tenant tag: refusing to stage it",
                                   v.lv_name);
        if (!cap.block) {
                lv_fs = tv_lv_tag(lv, TV_TAG_FS);
                if (*cap.fs && lv_fs && *lv_fs && strcmp(cap.fs, lv_fs) != 0)
                        return reply_invalid(reply, "volume_capability: fs_type %s, but volume %s was created for %s",
                                             cap.fs, v.lv_name, lv_fs);
                fs = *cap.fs ? cap.fs : lv_fs && *lv_fs ? lv_fs : "ext4";
        }
        dev = tv_lv_path(lv);
        if (!tv_lv_active(lv) || !dev)
                return reply_errno(reply, -EBUSY, "volume %s is not active on this node: activate it (lvchange -ay %s/%s)",
                                   v.lv_name, s->vg, v.lv_name);

        /* The staging directory is checked (and made) before anything is
         * opened or written: a bad path must leave nothing behind. */
        if (!cap.block) {
                staging_fd = open_staging_dir(s, staging, reply);
                if (staging_fd < 0)
                        return staging_fd;
        }

        r = stage_key(s, req, lv, tenant, &key, &key_source, reply);
        if (r < 0)
                return r;
        if (strcmp(key_source, "secret") == 0) {
                r = stage_previous_key(req, tenant, &previous, reply);
                if (r < 0)
                        return r;
        }
        r = stage_luks_prepare(lv, dev, key, tenant, &luks, &formatted, reply);
        if (r < 0)
                return r;
        r = stage_rotate(lv, dev, &luks, previous, key, tenant, reply);
        if (r < 0)
                return r;
        mapped = node_devnum(v.mapper_path, &mdev) == 0;
        r = tv_luks_open(dev, v.mapping, key, 0, &cerr);
        if (r == -EKEYREJECTED)
                return reply_errno(reply, r, "tenant %s: the %s key does not open volume %s", tenant,
                                   strcmp(key_source, "derived") == 0 ? "derived" : "node-stage secret's", v.lv_name);
        if (r < 0)
                return reply_errno(reply, r, "open volume %s: %s", v.lv_name, cerr.message);
        if (!mapped)
                undo.mapping = v.mapping;
        tv_kill_point("stage.after_open");
        r = node_devnum(v.mapper_path, &mdev);
        if (r < 0)
                return reply_errno(reply, r, "volume %s: mapping %s has no device node: %s", v.lv_name, v.mapping,
                                   strerror(-r));

        if (cap.block) {
                /* The mapping is the volume; only refuse one staged as a
                 * file system at this path. */
                _cleanup_(node_mount_clear) node_mount m = {0};
                r = node_mount_lookup(staging, &m);
                if (r < 0)
                        return reply_errno(reply, r, "read /proc/self/mountinfo: %s", strerror(-r));
                if (r > 0 && makedev(m.major, m.minor) == mdev)
                        return reply_errno(reply, -EEXIST, "volume %s is staged at %s as a file system, not as a block device",
                                           v.lv_name, staging);
        } else {
                r = stage_mount(&v, dev, &cap, fs, lv_fs && *lv_fs, formatted, staging, staging_fd, mdev, &undo, reply);
                if (r < 0)
                        return r;
                tv_kill_point("stage.after_mount");
        }

        r = iolimits_for_lv(lv, tv_lv_size(lv), &limits, reply);
        if (r < 0)
                return r;
        r = iolimits_apply(s, v.mapping, &limits, reply);
        if (r < 0)
                return r;

        undo = (stage_undo){0};
        log_info("volume staged", "volume=%s tenant=%s mode=%s%s%s dev=%u:%u ms=%llu", v.lv_name, tenant,
                 cap.block ? "block" : "mount", fs ? " fs=" : "", fs ? fs : "", major(mdev), minor(mdev),
                 (unsigned long long)(tv_now_ms() - t0));
        return reply_pack(reply, &resp.base);
}

/* ---- NodeUnstageVolume ----------------------------------------------------------- */

/* Is device `dev` mounted anywhere but `staging`: a published file system
 * (same st_dev), or a block device node bind-mounted under the kubelet
 * directory? Unstaging under either would leave a pod holding a device
 * that goes away, or, for a node, a dev_t a later mapping may reuse. */
static int in_use_elsewhere(const char *root, const char *staging, dev_t dev, char *where, size_t where_size) {
        _cleanup_free_ char *text = NULL, *croot = NULL;
        node_mount m;
        const char *cur;
        size_t rn;
        int r;

        r = node_path_canonical(root, root, &croot);
        if (r < 0)
                return r;
        rn = strlen(croot);
        r = node_mountinfo_read(&text);
        if (r < 0)
                return r;
        cur = text;
        while ((r = node_mountinfo_next(&cur, &m)) > 0) {
                bool hit = false;
                struct stat st;

                if (strcmp(m.mount_point, staging) != 0) {
                        if (makedev(m.major, m.minor) == dev)
                                hit = true;
                        else if (strcmp(m.root, "/") != 0 && strncmp(m.mount_point, croot, rn) == 0 &&
                                 m.mount_point[rn] == '/' && stat(m.mount_point, &st) == 0 && S_ISBLK(st.st_mode) &&
                                 st.st_rdev == dev)
                                hit = true;
                }
                if (hit)
                        snprintf(where, where_size, "%s", m.mount_point);
                node_mount_clear(&m);
                if (hit)
                        return 1;
        }
        return r;
}

int node_unstage_volume(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__NodeUnstageVolumeRequest *req = (const Csi__V1__NodeUnstageVolumeRequest *)msg;
        Csi__V1__NodeUnstageVolumeResponse resp = CSI__V1__NODE_UNSTAGE_VOLUME_RESPONSE__INIT;
        _cleanup_(node_mount_clear) node_mount m = {0};
        _cleanup_(node_unlockp) void *lock = NULL;
        _cleanup_free_ char *staging = NULL;
        char where[PATH_MAX];
        tv_crypt_error cerr;
        tv_reply again = {0};
        node_volume v;
        dev_t mdev = 0;
        bool mapped;
        int r;

        r = node_request_path(s, "staging_target_path", req->staging_target_path, reply);
        if (r < 0)
                return r;
        r = node_volume_from_id(s, req->volume_id, &v, reply);
        if (r < 0)
                return r;
        r = node_request_canonical(s, req->staging_target_path, &staging, reply);
        if (r < 0)
                return r;
        r = node_request_no_symlink(s, "staging_target_path", staging, reply);
        if (r < 0)
                return r;

        lock = node_lock(req->volume_id);
        r = node_devnum(v.mapper_path, &mdev);
        if (r < 0 && r != -ENOENT)
                return reply_errno(reply, r, "volume %s: mapping %s: %s", v.lv_name, v.mapping, strerror(-r));
        mapped = r == 0;
        r = node_mount_lookup(staging, &m);
        if (r < 0)
                return reply_errno(reply, r, "read /proc/self/mountinfo: %s", strerror(-r));
        if (r > 0 && (!mapped || makedev(m.major, m.minor) != mdev))
                return reply_errno(reply, -EBUSY, "staging_target_path %s holds a mount that is not volume %s: left alone",
                                   staging, v.lv_name);
        if (!mapped)
                return reply_pack(reply, &resp.base); /* nothing staged */

        r = in_use_elsewhere(node_kubelet_dir(s), staging, mdev, where, sizeof(where));
        if (r < 0)
                return reply_errno(reply, r, "read /proc/self/mountinfo: %s", strerror(-r));
        if (r > 0)
                return reply_errno(reply, -EBUSY, "volume %s is still published at %s: unpublish it first", v.lv_name,
                                   where);
        r = node_unmount_all(staging);
        if (r < 0)
                return reply_errno(reply, r, "unmount volume %s from %s: %s", v.lv_name, staging, strerror(-r));

        /* io.max first: once the mapping is closed its MAJ:MIN can be handed
         * to the next volume staged, whose fresh line a late clear would
         * remove. (The kernel drops a removed device's rules itself.) */
        r = iolimits_clear(s, v.mapping, reply);
        if (r < 0)
                return r;
        r = tv_luks_close(v.mapping, &cerr);
        if (r < 0) {
                /* Still open: it keeps its budget. */
                if (node_reapply_limits(s, v.lv_name, &again) < 0)
                        log_error("volume stays open and its io limits could not be restored", "volume=%s error=%s",
                                  v.lv_name, tv_log_quote(again.message, (char[1200]){0}, 1200));
                tv_reply_clear(&again);
                return reply_errno(reply, r, "close volume %s: %s", v.lv_name, cerr.message);
        }
        log_info("volume unstaged", "volume=%s dev=%u:%u", v.lv_name, major(mdev), minor(mdev));
        return reply_pack(reply, &resp.base);
}

/* ---- start-up ------------------------------------------------------------------------ */

static void closedirp(DIR **d) {
        if (*d)
                (void)closedir(*d);
}

int node_restore_limits(tv_server *s) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = NULL;
        _cleanup_(closedirp) DIR *d = opendir("/dev/mapper");
        struct dirent *e;
        tv_lvm_error err;
        tv_pool *p = NULL;
        int applied = 0, failed = 0, r;

        if (!d)
                return 0; /* no device-mapper here: nothing can be staged */
        while ((e = readdir(d))) {
                const char *lv_name = e->d_name + strlen(TV_MAPPING_PREFIX);
                char mapping[TV_MAPPING_SIZE], path[TV_MAPPING_SIZE + 16];
                const tv_lv *lv = NULL;
                tv_reply reply = {0};
                uint32_t maj, min;
                tv_limits limits;
                dev_t mdev;

                if (strncmp(e->d_name, TV_MAPPING_PREFIX, strlen(TV_MAPPING_PREFIX)) != 0 ||
                    strncmp(lv_name, "tv-", 3) != 0 || !tv_lvm_name_valid(lv_name) ||
                    node_mapping_name(lv_name, mapping, sizeof(mapping)) < 0 || strcmp(mapping, e->d_name) != 0)
                        continue;
                snprintf(path, sizeof(path), "/dev/mapper/%s", mapping);
                if (node_devnum(path, &mdev) < 0)
                        continue;
                if (!l) {
                        p = server_pool(s, NULL);
                        if (!p) {
                                log_error("volumes are staged but the pool does not answer: their io limits are not "
                                          "re-applied",
                                          "vg=%s thin_pool=%s", s->vg, s->thin_pool);
                                return -EHOSTDOWN;
                        }
                        r = tv_pool_list_lvs(p, &l, &err);
                        if (r < 0)
                                return tv_log_errno(r, "cannot list volumes to re-apply io limits", "error=%s",
                                                    tv_log_quote(err.message, (char[600]){0}, 600));
                }
                for (size_t i = 0; i < tv_lv_list_size(l) && !lv; i++) {
                        const tv_lv *c = tv_lv_list_get(l, i);
                        if (c && strcmp(tv_lv_name(c), lv_name) == 0)
                                lv = c;
                }
                /* Another pool's volume, or a mapping on something else. */
                if (!lv || tv_lv_devnum(lv, &maj, &min) < 0 || !node_mapping_on(mdev, makedev(maj, min)))
                        continue;
                r = iolimits_for_lv(lv, tv_lv_size(lv), &limits, &reply);
                if (r >= 0)
                        r = iolimits_apply(s, mapping, &limits, &reply);
                if (r < 0) {
                        log_error("io limits of a staged volume cannot be re-applied", "volume=%s error=%s", lv_name,
                                  tv_log_quote(reply.message, (char[1200]){0}, 1200));
                        failed++;
                } else {
                        applied++;
                }
                tv_reply_clear(&reply);
        }
        if (applied || failed)
                log_info("io limits of staged volumes re-applied", "volumes=%d failed=%d", applied, failed);
        return failed ? -EIO : applied;
}
