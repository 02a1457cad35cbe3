/* LUKS2 volumes with libcryptsetup (in-process, no cryptsetup binary) and
 * libblkid (what is on a device before anything is written to it). */
#include <blkid/blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <libcryptsetup.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <time.h>

#include "internal.h"

#define LUKS_CIPHER "aes"
#define LUKS_CIPHER_MODE "xts-plain64"
#define LUKS_VOLUME_KEY_BYTES 64 /* 512-bit: two AES-256 keys for XTS */
#define LUKS_SECTOR_SIZE 512
#define LUKS_PBKDF_ITERATIONS 1000
#define LUKS_WIPE_BLOCK (1024 * 1024)
#define DAMAGED_WIPE_BYTES (16ULL * 1024 * 1024)
#define LUKS_LOCK_TIMEOUT_MS 30000
/* LUKS2 header: two 16 KiB JSON metadata copies and a keyslot area that
 * holds three 512-bit PBKDF2 keyslots (252 KiB each with 4000 AF stripes),
 * enough for a rotation (new slot added before the old one goes). Together
 * 1 MiB, so data starts at 1 MiB instead of libcryptsetup's default 16 MiB:
 * a 64 MiB volume keeps 63 MiB for its tenant. */
#define LUKS_METADATA_BYTES (16 * 1024)
#define LUKS_KEYSLOTS_BYTES (1024 * 1024 - 2 * LUKS_METADATA_BYTES)

#define ACTIVATE_FLAGS                                                                             \
        (CRYPT_ACTIVATE_NO_READ_WORKQUEUE | CRYPT_ACTIVATE_NO_WRITE_WORKQUEUE |                    \
         CRYPT_ACTIVATE_ALLOW_DISCARDS)

/* The tenant key is full-entropy (>= 256 bits), so the keyslot KDF only has
 * to exist: PBKDF2 at libcryptsetup's minimum, never benchmarked. argon2id
 * would cost seconds and tens of MB per format for nothing (VM.md). */
static const struct crypt_pbkdf_type keyslot_pbkdf = {
        .type = CRYPT_KDF_PBKDF2,
        .hash = "sha256",
        .iterations = LUKS_PBKDF_ITERATIONS,
        .flags = CRYPT_PBKDF_NO_BENCHMARK,
};

/* ---- libcryptsetup context and its messages ---------------------------- */

/* One libcryptsetup operation: its handle and the last error message the
 * library logged while it ran, for the caller's one-line error. */
typedef struct luks_op {
        struct crypt_device *cd;
        bool locked; /* holds luks_mutex */
        char last_error[256];
} luks_op;

/* libcryptsetup is thread-safe only as far as libdevmapper is, which it is
 * not (global state behind every dm_task; lvm2 asks its users to stay
 * single-threaded, and udisks and stratisd wrap all libcryptsetup calls in
 * one lock for that reason). So every verb here runs its libcryptsetup and
 * libblkid calls under this one mutex, taken after any wait for a device
 * flock so that a busy device never stalls the other verbs. */
static pthread_mutex_t luks_mutex = PTHREAD_MUTEX_INITIALIZER;

/* libcryptsetup logs through one process-wide callback; it calls it in the
 * calling thread, so the operation running in this thread collects it.
 * (A per-handle callback would miss what crypt_init() itself says.) */
static __thread luks_op *current_op;

static void luks_log(int level, const char *msg, void *usrptr) {
        char line[256], q[300];
        size_t n;

        if (!msg)
                return;
        crypt_strlcpy(line, msg, sizeof(line));
        n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
                line[--n] = '\0';
        if (n == 0)
                return;
        if (level == CRYPT_LOG_ERROR && current_op)
                crypt_strlcpy(current_op->last_error, line, sizeof(current_op->last_error));
        log_debug("libcryptsetup", "level=%d text=%s", level, tv_log_quote(line, q, sizeof(q)));
}

static pthread_once_t luks_once = PTHREAD_ONCE_INIT;

static void luks_global_init(void) {
        /* No token plugins (libcryptsetup-token-*.so) are ever loaded into
         * the driver: thinvault tokens are read by this code only. */
        crypt_token_external_disable();
        /* Volume keys go into the dm table, not the kernel keyring: resize
         * then needs no tenant key, and containers that block keyctl work. */
        (void)crypt_volume_key_keyring(NULL, 0);
        crypt_set_log_callback(NULL, luks_log, NULL);
}

static void luks_op_begin(luks_op *op, tv_crypt_error *err) {
        (void)pthread_once(&luks_once, luks_global_init);
        *op = (luks_op){0};
        current_op = op;
        crypt_error_clear(err);
}

static void luks_op_lock(luks_op *op) {
        (void)pthread_mutex_lock(&luks_mutex);
        op->locked = true;
}

static void luks_op_end(luks_op *op) {
        if (op->cd)
                crypt_free(op->cd);
        op->cd = NULL;
        if (op->locked)
                (void)pthread_mutex_unlock(&luks_mutex);
        op->locked = false;
        if (current_op == op)
                current_op = NULL;
}

/* Fill err with the formatted message plus libcryptsetup's last words. */
_printf_(4, 5) static int op_error(luks_op *op, tv_crypt_error *err, int r, const char *fmt, ...) {
        va_list ap;
        size_t n;

        if (!err)
                return r;
        va_start(ap, fmt);
        (void)vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        n = strlen(err->message);
        if (op && op->last_error[0] && n + 4 < sizeof(err->message))
                (void)snprintf(err->message + n, sizeof(err->message) - n, " (%s)", op->last_error);
        return r;
}

/* libcryptsetup's errno, for steps where nothing more specific applies. */
static int map_errno(int r) {
        switch (r) {
        case -ENOMEM:
        case -EBUSY:
        case -EINVAL:
        case -ENOENT:
        case -EEXIST:
                return r;
        case -EACCES:
        case -EPERM:
                return -EACCES;
        case -ENOTBLK:
        case -ENXIO:
                return -ENOENT;
        default:
                return -EIO;
        }
}

/* ---- devices ------------------------------------------------------------ */

static int device_stat(const char *path, struct stat *ret, tv_crypt_error *err) {
        struct stat st;

        if (!path || !*path)
                return crypt_error(err, -EINVAL, "no device path given");
        if (stat(path, &st) < 0) {
                int r = -errno;
                if (r == -ENOENT || r == -ENOTDIR)
                        return crypt_error(err, -ENOENT, "device %s does not exist", path);
                return crypt_error(err, r == -EPERM ? -EACCES : r, "device %s: cannot stat it: %s", path,
                                   strerror(-r));
        }
        if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))
                return crypt_error(err, -EINVAL, "%s is not a block device", path);
        *ret = st;
        return 0;
}

/* Serialise thinvault's metadata verbs on one device: an exclusive flock
 * on the device node (the protocol systemd-udevd honours too, so it does
 * not probe a half-written header), waited for up to LUKS_LOCK_TIMEOUT_MS.
 * With `unused`, the device must also not be in use: an O_EXCL open fails
 * while it is mounted or held by a dm mapping. That open is closed again at
 * once, because libcryptsetup makes the same check with its own O_EXCL open
 * (and would fail on ours). Regular files (tests, tools) are not locked:
 * libcryptsetup flocks image files itself. */
static int device_lock(const char *path, const struct stat *st, bool unused, int *ret_fd,
                       tv_crypt_error *err) {
        _cleanup_close_ int fd = -1;
        uint64_t deadline;

        if (!S_ISBLK(st->st_mode)) {
                *ret_fd = -1;
                return 0;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
                int r = -errno;
                return crypt_error(err, map_errno(r), "device %s cannot be opened: %s", path,
                                   strerror(-r));
        }
        deadline = tv_now_ms() + LUKS_LOCK_TIMEOUT_MS;
        while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno != EWOULDBLOCK && errno != EINTR)
                        return crypt_error(err, -EIO, "device %s: flock failed: %s", path,
                                           strerror(errno));
                if (tv_now_ms() >= deadline)
                        return crypt_error(err, -EBUSY,
                                           "device %s is locked by another operation for more than %d s",
                                           path, LUKS_LOCK_TIMEOUT_MS / 1000);
                (void)nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
        }
        if (unused) {
                int efd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_EXCL);
                if (efd < 0 && errno == EBUSY)
                        return crypt_error(err, -EBUSY,
                                           "device %s is in use (mounted, or opened by a dm mapping)",
                                           path);
                if (efd >= 0)
                        (void)close(efd);
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int op_init(luks_op *op, const char *path, tv_crypt_error *err) {
        int r;

        r = crypt_init(&op->cd, path);
        if (r < 0)
                return op_error(op, err, map_errno(r), "device %s cannot be opened by libcryptsetup",
                                path);
        return 0;
}

/* Open `path` with libcryptsetup and load its LUKS2 header: what every
 * verb on an existing volume starts with. */
static int op_load_luks2(luks_op *op, const char *path, tv_crypt_error *err) {
        int r;

        r = op_init(op, path, err);
        if (r < 0)
                return r;
        r = crypt_load(op->cd, CRYPT_LUKS2, NULL);
        if (r == -EINVAL || r == -ENOENT)
                return crypt_error(err, -EMEDIUMTYPE, "device %s holds no LUKS2 header", path);
        if (r < 0)
                return op_error(op, err, map_errno(r), "device %s: cannot read its LUKS header", path);
        return 0;
}

/* The thinvault token of a loaded LUKS2 header. Returns its token id, or
 * -ENODATA (none), -EBADMSG (unreadable), -ENOMEM. */
static int find_token(struct crypt_device *cd, char **ret_tenant, char **ret_fp) {
        int max = crypt_token_max(CRYPT_LUKS2);

        for (int id = 0; id < max; id++) {
                const char *type = NULL, *json = NULL;
                crypt_token_info ti = crypt_token_status(cd, id, &type);
                int r;

                if (ti == CRYPT_TOKEN_INVALID || ti == CRYPT_TOKEN_INACTIVE || !type ||
                    strcmp(type, TV_LUKS_TOKEN_TYPE) != 0)
                        continue;
                r = crypt_token_json_get(cd, id, &json);
                if (r < 0)
                        return -EBADMSG;
                r = tv_luks_token_from_json(json, ret_tenant, ret_fp);
                if (r == -ENODATA)
                        return -EBADMSG;
                if (r < 0)
                        return r;
                return id;
        }
        return -ENODATA;
}

static int op_token(luks_op *op, const char *path, char **ret_tenant, char **ret_fp,
                    tv_crypt_error *err) {
        int r = find_token(op->cd, ret_tenant, ret_fp);

        if (r == -ENODATA)
                return crypt_error(err, r, "device %s is LUKS2 but has no thinvault token: not ours",
                                   path);
        if (r == -EBADMSG)
                return crypt_error(err, r,
                                   "device %s has a thinvault token that cannot be read (malformed, "
                                   "or written by a newer version than %d)",
                                   path, TV_LUKS_TOKEN_VERSION);
        if (r < 0)
                return crypt_error(err, r, "device %s: cannot read its token", path);
        return r;
}

/* Overwrite everything before the data offset (both LUKS2 metadata copies
 * and the keyslot area) with random bytes. Returns the bytes wiped. */
static int64_t wipe_header_area(luks_op *op) {
        uint64_t bytes = crypt_get_data_offset(op->cd) * 512;
        int r;

        if (bytes == 0) {
                uint64_t md = 0, ks = 0;
                if (crypt_get_metadata_size(op->cd, &md, &ks) < 0 || md == 0)
                        return -EIO;
                bytes = 2 * md + ks;
        }
        r = crypt_wipe(op->cd, NULL, CRYPT_WIPE_RANDOM, 0, bytes, LUKS_WIPE_BLOCK, 0, NULL, NULL);
        if (r < 0)
                return map_errno(r);
        return (int64_t)bytes;
}

/* Is the key rejected (as opposed to a failure to try it)? */
static bool key_rejected(int r) {
        return r == -EPERM || r == -ENOENT;
}

/* ---- probing ------------------------------------------------------------ */

static void blkid_free_probep(blkid_probe *pr) {
        if (*pr)
                blkid_free_probe(*pr);
}

/* Where libblkid found the magic of what it reports: the values `magic`
 * (the bytes) and `offset` (decimal), SBMAGIC* or PTMAGIC*. Left 0 when
 * it does not say. */
static void blkid_magic(blkid_probe pr, const char *magic, const char *offset, tv_luks_info *info) {
        const char *m = NULL, *o = NULL;
        unsigned long long off;
        size_t len = 0;
        char *end;

        if (blkid_probe_lookup_value(pr, magic, &m, &len) < 0 || !m || len == 0 || len > UINT32_MAX ||
            blkid_probe_lookup_value(pr, offset, &o, NULL) < 0 || !o)
                return;
        errno = 0;
        off = strtoull(o, &end, 10);
        if (errno != 0 || end == o || *end != '\0')
                return;
        info->magic_offset = off;
        info->magic_len = (uint32_t)len;
}

/* libblkid's view: EMPTY, OTHER (with type) or LUKS (kind FOREIGN here,
 * refined by the caller), never writing. */
static int blkid_classify(const char *path, tv_luks_info *info, tv_crypt_error *err) {
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        const char *v = NULL;
        int r;

        pr = blkid_new_probe_from_filename(path);
        if (!pr) {
                r = errno > 0 ? -errno : -EIO;
                return crypt_error(err, map_errno(r), "device %s cannot be probed: %s", path,
                                   strerror(-r));
        }
        (void)blkid_probe_enable_superblocks(pr, 1);
        /* BADCSUM: a superblock with a bad checksum still means data. */
        (void)blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_VERSION |
                                                            BLKID_SUBLKS_BADCSUM | BLKID_SUBLKS_MAGIC);
        (void)blkid_probe_enable_partitions(pr, 1);
        (void)blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);

        r = blkid_do_safeprobe(pr);
        if (r == 1) {
                info->kind = TV_LUKS_KIND_EMPTY;
                return 0;
        }
        if (r == -2) {
                info->kind = TV_LUKS_KIND_OTHER;
                crypt_strlcpy(info->type, "ambivalent", sizeof(info->type));
                return 0;
        }
        if (r < 0)
                return crypt_error(err, -EIO, "device %s: libblkid probe failed", path);

        if (blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0 && v) {
                crypt_strlcpy(info->type, v, sizeof(info->type));
                if (strcmp(v, "crypto_LUKS") == 0) {
                        info->kind = TV_LUKS_KIND_FOREIGN;
                        info->luks_version = 1;
                        if (blkid_probe_lookup_value(pr, "VERSION", &v, NULL) == 0 && v &&
                            strcmp(v, "2") == 0)
                                info->luks_version = 2;
                        return 0;
                }
                blkid_magic(pr, "SBMAGIC", "SBMAGIC_OFFSET", info);
        } else if (blkid_probe_lookup_value(pr, "PTTYPE", &v, NULL) == 0 && v) {
                crypt_strlcpy(info->type, v, sizeof(info->type));
                blkid_magic(pr, "PTMAGIC", "PTMAGIC_OFFSET", info);
        } else
                crypt_strlcpy(info->type, "unknown", sizeof(info->type));
        info->kind = TV_LUKS_KIND_OTHER;
        return 0;
}

/* Probe, with the caller's op (and its lock, if any). */
static int probe_device(luks_op *op, const char *path, tv_luks_info *ret, tv_crypt_error *err) {
        _cleanup_free_ char *tenant = NULL, *fp = NULL;
        tv_luks_info info = {0};
        int r;

        r = blkid_classify(path, &info, err);
        if (r < 0)
                return r;
        if (info.kind == TV_LUKS_KIND_FOREIGN && info.luks_version == 2) {
                r = op_init(op, path, err);
                if (r < 0)
                        return r;
                /* A header libcryptsetup cannot load is not ours either. */
                r = crypt_load(op->cd, CRYPT_LUKS2, NULL);
                if (r == -EIO)
                        return op_error(op, err, -EIO, "device %s: its LUKS2 header cannot be read (I/O error)",
                                        path);
                info.damaged = r < 0;
                if (r >= 0) {
                        r = op_token(op, path, &tenant, &fp, err);
                        if (r >= 0) {
                                info.kind = TV_LUKS_KIND_OURS;
                                crypt_strlcpy(info.tenant, tenant, sizeof(info.tenant));
                                crypt_strlcpy(info.fingerprint, fp, sizeof(info.fingerprint));
                        } else if (r != -ENODATA)
                                return r;
                }
                crypt_free(op->cd);
                op->cd = NULL;
                crypt_error_clear(err);
        }
        *ret = info;
        return 0;
}

int tv_luks_probe(const char *device_path, tv_luks_info *ret_info, tv_crypt_error *err) {
        _cleanup_(luks_op_end) luks_op op = {0};
        tv_luks_info info;
        struct stat st;
        int r;

        luks_op_begin(&op, err);
        if (!ret_info)
                return crypt_error(err, -EINVAL, "no place for the probe result");
        r = device_stat(device_path, &st, err);
        if (r < 0)
                return r;
        luks_op_lock(&op);
        r = probe_device(&op, device_path, &info, err);
        if (r < 0)
                return r;
        log_debug("device probed", "device=%s kind=%s type=%s tenant=%s", device_path,
                  tv_luks_kind_to_string(info.kind), info.type[0] ? info.type : "-",
                  info.tenant[0] ? info.tenant : "-");
        *ret_info = info;
        return 0;
}

/* ---- was it ever written? ----------------------------------------------- */

/* A whole-sector read of the data area is at most this long: enough for
 * any signature's magic. */
#define UNWRITTEN_MAX_BYTES (64 * 1024)

static int fd_size(int fd, uint64_t *ret) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode)) {
                *ret = (uint64_t)st.st_size;
                return 0;
        }
        return ioctl(fd, BLKGETSIZE64, ret) < 0 ? -errno : 0;
}

static bool all_zero(const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

/* Read `len` bytes at `offset` of `fd` (O_DIRECT: offset, length and buffer
 * aligned) in full. */
static int read_full(int fd, uint8_t *buf, size_t len, uint64_t offset) {
        size_t done = 0;

        while (done < len) {
                ssize_t n = pread(fd, buf + done, len - done, (off_t)(offset + done));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                done += (size_t)n;
        }
        return 0;
}

/* The data area's byte offset and encryption sector size, from the
 * LUKS2 header (libcryptsetup, under the caller's lock). */
static int data_layout(luks_op *op, const char *path, uint64_t *ret_offset, uint64_t *ret_sector,
                       tv_crypt_error *err) {
        int r, sector;

        r = op_load_luks2(op, path, err);
        if (r < 0)
                return r;
        sector = crypt_get_sector_size(op->cd);
        *ret_offset = crypt_get_data_offset(op->cd) * 512;
        *ret_sector = sector > 0 ? (uint64_t)sector : 512;
        crypt_free(op->cd);
        op->cd = NULL;
        return 0;
}

int tv_luks_plaintext_unwritten(const char *device_path, uint64_t offset, uint64_t len, tv_crypt_error *err) {
        _cleanup_(luks_op_end) luks_op op = {0};
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t data, sector, size, first, end;
        struct stat st;
        int r;

        luks_op_begin(&op, err);
        if (len == 0 || len > UNWRITTEN_MAX_BYTES || offset > UINT64_MAX / 2)
                return crypt_error(err, -ERANGE, "device %s: %" PRIu64 " bytes at %" PRIu64 " is not a range to check",
                                   device_path ? device_path : "-", len, offset);
        r = device_stat(device_path, &st, err);
        if (r < 0)
                return r;
        luks_op_lock(&op);
        r = data_layout(&op, device_path, &data, &sector, err);
        if (r < 0)
                return r;

        fd = open(device_path, O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (fd < 0)
                return crypt_error(err, map_errno(-errno), "device %s cannot be opened: %s", device_path,
                                   strerror(errno));
        r = fd_size(fd, &size);
        if (r < 0)
                return crypt_error(err, map_errno(r), "device %s: cannot read its size: %s", device_path, strerror(-r));
        first = offset / sector * sector;
        end = (offset + len + sector - 1) / sector * sector;
        if (data > size || end > size - data)
                return crypt_error(err, -ERANGE,
                                   "device %s: bytes %" PRIu64 "-%" PRIu64 " are outside its data area (%" PRIu64
                                   " bytes)",
                                   device_path, offset, offset + len, data > size ? 0 : size - data);
        r = posix_memalign((void **)&buf, 4096, end - first);
        if (r != 0)
                return crypt_error(err, -ENOMEM, "device %s: no memory for a %" PRIu64 "-byte read", device_path,
                                   end - first);
        r = read_full(fd, buf, end - first, data + first);
        if (r < 0)
                return crypt_error(err, map_errno(r), "device %s: read of bytes %" PRIu64 "-%" PRIu64 " failed: %s",
                                   device_path, data + first, data + end, strerror(-r));
        r = all_zero(buf, end - first);
        log_debug("plaintext checked", "device=%s offset=%" PRIu64 " length=%" PRIu64 " written=%s", device_path,
                  offset, len, r ? "no" : "yes");
        return r;
}

/* ---- format ------------------------------------------------------------- */

/* Active keyslots of a LUKS header, or a negative errno. */
static int count_keyslots(luks_op *op, const char *path, tv_crypt_error *err) {
        int r, max, n = 0;

        r = op_load_luks2(op, path, err);
        if (r < 0)
                return r;
        max = crypt_keyslot_max(CRYPT_LUKS2);
        for (int slot = 0; slot < max; slot++) {
                crypt_keyslot_info ki = crypt_keyslot_status(op->cd, slot);
                n += ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST || ki == CRYPT_SLOT_UNBOUND;
        }
        crypt_free(op->cd);
        op->cd = NULL;
        return n;
}

/* A format step after the header was written failed. The device was empty
 * before: wipe what we wrote, so it is empty again and a retry can format. */
static int format_undo(luks_op *op, tv_crypt_error *err, int r, const char *path, const char *what) {
        int k = map_errno(r);

        (void)op_error(op, err, k, "format %s: %s", path, what);
        if (wipe_header_area(op) < 0)
                log_warn("cannot wipe a half-formatted header", "device=%s", path);
        return k;
}

int tv_luks_format(const char *device_path, const tv_key *key, tv_crypt_error *err) {
        _cleanup_(luks_op_end) luks_op op = {0};
        _cleanup_close_ int lock_fd = -1;
        _cleanup_free_ char *json = NULL;
        struct crypt_params_luks2 params = {
                .pbkdf = &keyslot_pbkdf,
                .sector_size = LUKS_SECTOR_SIZE,
        };
        uint64_t t0 = tv_now_ms();
        tv_luks_info info;
        struct stat st;
        int r, slot;

        luks_op_begin(&op, err);
        if (!key)
                return crypt_error(err, -EINVAL, "format: no key given");
        r = device_stat(device_path, &st, err);
        if (r < 0)
                return r;
        r = device_lock(device_path, &st, true, &lock_fd, err);
        if (r < 0)
                return r;
        luks_op_lock(&op);

        r = probe_device(&op, device_path, &info, err);
        if (r < 0)
                return r;
        if (info.kind == TV_LUKS_KIND_OURS) {
                r = count_keyslots(&op, device_path, err);
                if (r < 0)
                        return r;
                if (r > 0)
                        return crypt_error(err, -EEXIST,
                                           "device %s is already a thinvault volume of tenant %s (key "
                                           "%s); refusing to format it again",
                                           device_path, info.tenant, info.fingerprint);
                /* Our header without a keyslot: a format that stopped between
                 * token and keyslot. No key ever opened it, so no data was
                 * written through it: format it again. */
                log_warn("redoing a format that did not finish", "device=%s tenant=%s", device_path,
                         info.tenant);
        } else if (info.kind != TV_LUKS_KIND_EMPTY)
                return crypt_error(err, -EEXIST,
                                   "device %s is not empty: libblkid finds %s (%s); refusing to format "
                                   "over it",
                                   device_path, info.type, tv_luks_kind_to_string(info.kind));

        r = tv_luks_token_to_json(tv_key_tenant(key), tv_key_fingerprint(key), &json);
        if (r < 0)
                return crypt_error(err, r, "format %s: cannot encode the token", device_path);

        r = op_init(&op, device_path, err);
        if (r < 0)
                return r;
        r = crypt_set_pbkdf_type(op.cd, &keyslot_pbkdf);
        if (r < 0)
                return op_error(&op, err, map_errno(r), "format %s: PBKDF2 settings refused",
                                device_path);
        r = crypt_set_metadata_size(op.cd, LUKS_METADATA_BYTES, LUKS_KEYSLOTS_BYTES);
        if (r < 0)
                return op_error(&op, err, map_errno(r), "format %s: LUKS2 header size refused",
                                device_path);
        /* NULL volume key: libcryptsetup generates a random one. */
        r = crypt_format(op.cd, CRYPT_LUKS2, LUKS_CIPHER, LUKS_CIPHER_MODE, NULL, NULL,
                         LUKS_VOLUME_KEY_BYTES, &params);
        if (r < 0)
                return op_error(&op, err, map_errno(r), "format %s as LUKS2 failed", device_path);

        /* The token goes in before the keyslot: a crash in between leaves a
         * volume that says whose it is, that nothing opens, and that the
         * retry formats again (above). */
        r = crypt_token_json_set(op.cd, CRYPT_ANY_TOKEN, json);
        if (r < 0)
                return format_undo(&op, err, r, device_path, "cannot write the thinvault token");
        slot = crypt_keyslot_add_by_volume_key(op.cd, CRYPT_ANY_SLOT, NULL, 0,
                                               (const char *)tv_key_data(key), tv_key_size(key));
        if (slot < 0)
                return format_undo(&op, err, slot, device_path, "cannot add the keyslot");

        log_info("luks volume formatted",
                 "device=%s tenant=%s fingerprint=%s cipher=%s-%s key_bits=%d keyslot=%d ms=%" PRIu64,
                 device_path, tv_key_tenant(key), tv_key_fingerprint(key), LUKS_CIPHER, LUKS_CIPHER_MODE,
                 LUKS_VOLUME_KEY_BYTES * 8, slot, tv_now_ms() - t0);
        return 0;
}

/* ---- open / close / resize ---------------------------------------------- */

static int check_mapping_name(const char *name, tv_crypt_error *err) {
        char q[160];

        if (tv_luks_mapping_name_valid(name))
                return 0;
        return crypt_error(err, -EINVAL,
                           "mapping name %s is not valid (1-127 characters of A-Z a-z 0-9 . _ + -)",
                           tv_log_quote(name ? name : "(null)", q, sizeof(q)));
}

/* Whether `name` is an active mapping: 1 yes, 0 no, or a negative errno. */
static int mapping_exists(luks_op *op, const char *name, tv_crypt_error *err) {
        crypt_status_info s = crypt_status(NULL, name);

        if (s == CRYPT_ACTIVE || s == CRYPT_BUSY)
                return 1;
        if (s == CRYPT_INACTIVE)
                return 0;
        return op_error(op, err, -EIO, "cannot ask device-mapper about %s (is dm-mod loaded?)", name);
}

/* Open the existing mapping `name` into op->cd and check it is LUKS. */
static int op_init_by_name(luks_op *op, const char *name, tv_crypt_error *err) {
        const char *type;
        int r;

        r = crypt_init_by_name(&op->cd, name);
        if (r == -ENODEV || r == -ENOENT)
                return crypt_error(err, -ENODEV, "mapping %s does not exist", name);
        if (r < 0)
                return op_error(op, err, -EMEDIUMTYPE, "mapping %s is not a LUKS mapping", name);
        type = crypt_get_type(op->cd);
        if (!type || (strcmp(type, CRYPT_LUKS2) != 0 && strcmp(type, CRYPT_LUKS1) != 0))
                return crypt_error(err, -EMEDIUMTYPE, "mapping %s is not a LUKS mapping (%s)", name,
                                   type ? type : "no LUKS header readable through its device");
        return 0;
}

/* Is the existing mapping `name` on the block device `rdev`? */
static int mapping_on_device(const char *name, dev_t rdev, tv_crypt_error *err) {
        _cleanup_(luks_op_end) luks_op m = {0};
        const char *backing;
        struct stat st;
        int r;

        r = op_init_by_name(&m, name, err);
        if (r < 0)
                return r;
        backing = crypt_get_device_name(m.cd);
        if (!backing || stat(backing, &st) < 0 || !S_ISBLK(st.st_mode))
                return crypt_error(err, -EIO, "mapping %s: cannot tell its backing device", name);
        return st.st_rdev == rdev;
}

int tv_luks_open(const char *device_path, const char *mapping_name, const tv_key *key,
                 uint32_t flags, tv_crypt_error *err) {
        _cleanup_(luks_op_end) luks_op op = {0};
        _cleanup_free_ char *tenant = NULL, *fp = NULL;
        uint32_t aflags = ACTIVATE_FLAGS;
        uint64_t t0 = tv_now_ms();
        struct stat st;
        int r, slot;

        luks_op_begin(&op, err);
        r = check_mapping_name(mapping_name, err);
        if (r < 0)
                return r;
        if (!key)
                return crypt_error(err, -EINVAL, "open %s: no key given", mapping_name);
        r = device_stat(device_path, &st, err);
        if (r < 0)
                return r;
        if (!S_ISBLK(st.st_mode))
                return crypt_error(err, -EINVAL, "open: %s is not a block device", device_path);
        if (flags & TV_LUKS_OPEN_READONLY)
                aflags |= CRYPT_ACTIVATE_READONLY;

        luks_op_lock(&op);
        r = mapping_exists(&op, mapping_name, err);
        if (r < 0)
                return r;
        bool exists = r > 0;
        if (exists) {
                r = mapping_on_device(mapping_name, st.st_rdev, err);
                if (r < 0)
                        return r;
                if (r == 0)
                        return crypt_error(err, -EEXIST,
                                           "mapping %s already exists on another device than %s",
                                           mapping_name, device_path);
        }

        r = op_load_luks2(&op, device_path, err);
        if (r < 0)
                return r;
        r = op_token(&op, device_path, &tenant, &fp, err);
        if (r < 0)
                return r;
        if (strcmp(tenant, tv_key_tenant(key)) != 0)
                return crypt_error(err, -EKEYREJECTED,
                                   "device %s belongs to tenant %s; a key of tenant %s does not open it",
                                   device_path, tenant, tv_key_tenant(key));

        /* Already open here: check the key all the same (no new mapping),
         * so a retry with a wrong key never reports success. */
        slot = crypt_activate_by_passphrase(op.cd, exists ? NULL : mapping_name, CRYPT_ANY_SLOT,
                                            (const char *)tv_key_data(key), tv_key_size(key),
                                            exists ? 0 : aflags);
        if (key_rejected(slot))
                return crypt_error(err, -EKEYREJECTED,
                                   "device %s: key %s of tenant %s opens no keyslot (the volume "
                                   "expects key %s)",
                                   device_path, tv_key_fingerprint(key), tenant, fp);
        if (slot == -EEXIST)
                return op_error(&op, err, -EEXIST, "open %s: mapping %s appeared meanwhile",
                                device_path, mapping_name);
        if (slot == -EBUSY)
                return op_error(&op, err, -EBUSY,
                                "open %s as %s: the device is in use (mapped under another name?)",
                                device_path, mapping_name);
        if (slot < 0)
                return op_error(&op, err, map_errno(slot), "open %s as %s failed", device_path,
                                mapping_name);

        if (exists)
                log_debug("luks volume already open", "device=%s mapping=%s tenant=%s keyslot=%d",
                          device_path, mapping_name, tenant, slot);
        else
                log_info("luks volume opened",
                         "device=%s mapping=%s tenant=%s fingerprint=%s keyslot=%d readonly=%d ms=%" PRIu64,
                         device_path, mapping_name, tenant, tv_key_fingerprint(key), slot,
                         !!(flags & TV_LUKS_OPEN_READONLY), tv_now_ms() - t0);
        return 0;
}

/* Whether active mapping `name` was made for a LUKS device, from its
 * device-mapper uuid ("CRYPT-LUKS2-<uuid>-<name>", set by libcryptsetup at
 * activation; /sys/dev/block/MAJ:MIN/dm/uuid). For a mapping whose header
 * libcryptsetup can no longer read through the device below. */
static bool mapping_uuid_is_luks(const char *name) {
        char path[PATH_MAX], uuid[160] = "";
        struct stat st;
        ssize_t n;

        (void)snprintf(path, sizeof(path), "/dev/mapper/%s", name);
        if (stat(path, &st) < 0 || !S_ISBLK(st.st_mode))
                return false;
        (void)snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/dm/uuid", major(st.st_rdev), minor(st.st_rdev));
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, uuid, sizeof(uuid) - 1);
        if (n <= 0)
                return false;
        uuid[n] = '\0';
        return strncmp(uuid, "CRYPT-LUKS1-", 12) == 0 || strncmp(uuid, "CRYPT-LUKS2-", 12) == 0;
}

/* op_init_by_name() for a close: a LUKS mapping whose header cannot be
 * read (the device below fails: a failed thin pool, a dead disk) is still
 * ours to close; libcryptsetup then hands back a handle without a type,
 * which deactivates by name. */
static int op_init_for_close(luks_op *op, const char *name, tv_crypt_error *err) {
        int r = op_init_by_name(op, name, err);

        if (r != -EMEDIUMTYPE || !op->cd || crypt_get_type(op->cd) || !mapping_uuid_is_luks(name))
                return r;
        crypt_error_clear(err);
        log_warn("luks header unreadable through its device; closing the mapping by name", "mapping=%s",
                 name);
        return 0;
}

int tv_luks_close(const char *mapping_name, tv_crypt_error *err) {
        _cleanup_(luks_op_end) luks_op op = {0};
        int r;

        luks_op_begin(&op, err);
        r = check_mapping_name(mapping_name, err);
        if (r < 0)
                return r;
        luks_op_lock(&op);
        r = mapping_exists(&op, mapping_name, err);
        if (r <= 0)
                return r;
        r = op_init_for_close(&op, mapping_name, err);
        if (r == -ENODEV) { /* gone meanwhile */
                crypt_error_clear(err);
                return 0;
        }
        if (r < 0)
                return r;
        r = crypt_deactivate(op.cd, mapping_name);
        if (r == -ENODEV)
                return 0;
        if (r == -EBUSY)
                return op_error(&op, err, -EBUSY, "mapping %s is in use (mounted or held open)",
                                mapping_name);
        if (r < 0)
                return op_error(&op, err, map_errno(r), "close %s failed", mapping_name);
        log_info("luks volume closed", "mapping=%s", mapping_name);
        return 0;
}

int tv_luks_resize(const char *mapping_name, uint64_t *ret_size, tv_crypt_error *err) {
        _cleanup_(luks_op_end) luks_op op = {0};
        struct crypt_active_device cad;
        int r;

        luks_op_begin(&op, err);
        r = check_mapping_name(mapping_name, err);
        if (r < 0)
                return r;
        luks_op_lock(&op);
        r = mapping_exists(&op, mapping_name, err);
        if (r < 0)
                return r;
        if (r == 0)
                return crypt_error(err, -ENODEV, "mapping %s does not exist", mapping_name);
        r = op_init_by_name(&op, mapping_name, err);
        if (r < 0)
                return r;
        r = crypt_resize(op.cd, mapping_name, 0);
        if (r == -EPERM)
                return op_error(&op, err, -ENOKEY,
                                "resize %s: its volume key is in the kernel keyring; close and reopen "
                                "it with thinvault",
                                mapping_name);
        if (r < 0)
                return op_error(&op, err, map_errno(r), "resize %s failed", mapping_name);
        r = crypt_get_active_device(op.cd, mapping_name, &cad);
        if (r < 0)
                return op_error(&op, err, map_errno(r), "resize %s: cannot read its new size",
                                mapping_name);
        log_info("luks volume resized", "mapping=%s size=%" PRIu64, mapping_name, cad.size * 512);
        if (ret_size)
                *ret_size = cad.size * 512;
        return 0;
}

/* ---- rotate ------------------------------------------------------------- */

/* Which keyslot `key` opens: >= 0, -ENOKEY when it opens none, or an error. */
static int key_slot(luks_op *op, const tv_key *key) {
        int r = crypt_activate_by_passphrase(op->cd, NULL, CRYPT_ANY_SLOT,
                                             (const char *)tv_key_data(key), tv_key_size(key), 0);
        return key_rejected(r) ? -ENOKEY : r;
}

int tv_luks_rotate(const char *device_path, const tv_key *old_key, const tv_key *new_key,
                   tv_crypt_error *err) {
        _cleanup_(luks_op_end) luks_op op = {0};
        _cleanup_close_ int lock_fd = -1;
        _cleanup_free_ char *tenant = NULL, *fp = NULL, *json = NULL;
        uint64_t t0 = tv_now_ms();
        int r, token, old_slot, new_slot;
        struct stat st;

        luks_op_begin(&op, err);
        if (!old_key || !new_key)
                return crypt_error(err, -EINVAL, "rotate: two keys are needed");
        if (strcmp(tv_key_tenant(old_key), tv_key_tenant(new_key)) != 0)
                return crypt_error(err, -EINVAL, "rotate: the old key is of tenant %s, the new one of %s",
                                   tv_key_tenant(old_key), tv_key_tenant(new_key));
        if (tv_key_equal(old_key, new_key))
                return crypt_error(err, -EINVAL, "rotate: the new key of tenant %s is the old key (%s)",
                                   tv_key_tenant(old_key), tv_key_fingerprint(old_key));
        r = device_stat(device_path, &st, err);
        if (r < 0)
                return r;
        r = device_lock(device_path, &st, false, &lock_fd, err);
        if (r < 0)
                return r;
        luks_op_lock(&op);
        r = op_load_luks2(&op, device_path, err);
        if (r < 0)
                return r;
        r = token = op_token(&op, device_path, &tenant, &fp, err);
        if (r < 0)
                return r;
        if (strcmp(tenant, tv_key_tenant(old_key)) != 0)
                return crypt_error(err, -EKEYREJECTED,
                                   "device %s belongs to tenant %s, not to tenant %s", device_path,
                                   tenant, tv_key_tenant(old_key));
        r = crypt_set_pbkdf_type(op.cd, &keyslot_pbkdf);
        if (r < 0)
                return op_error(&op, err, map_errno(r), "rotate %s: PBKDF2 settings refused",
                                device_path);

        old_slot = key_slot(&op, old_key);
        if (old_slot < 0 && old_slot != -ENOKEY)
                return op_error(&op, err, map_errno(old_slot), "rotate %s: cannot try the old key",
                                device_path);
        new_slot = key_slot(&op, new_key);
        if (new_slot < 0 && new_slot != -ENOKEY)
                return op_error(&op, err, map_errno(new_slot), "rotate %s: cannot try the new key",
                                device_path);
        if (old_slot < 0 && new_slot < 0)
                return crypt_error(err, -EKEYREJECTED,
                                   "rotate %s: neither key %s nor key %s of tenant %s opens it (the "
                                   "volume expects key %s)",
                                   device_path, tv_key_fingerprint(old_key),
                                   tv_key_fingerprint(new_key), tenant, fp);

        if (new_slot < 0) {
                r = new_slot = crypt_keyslot_add_by_passphrase(
                        op.cd, CRYPT_ANY_SLOT, (const char *)tv_key_data(old_key), tv_key_size(old_key),
                        (const char *)tv_key_data(new_key), tv_key_size(new_key));
                if (r < 0)
                        return op_error(&op, err, map_errno(r), "rotate %s: cannot add a keyslot",
                                        device_path);
                r = crypt_activate_by_passphrase(op.cd, NULL, new_slot,
                                                 (const char *)tv_key_data(new_key),
                                                 tv_key_size(new_key), 0);
                if (r != new_slot)
                        return op_error(&op, err, -EIO,
                                        "rotate %s: the new keyslot %d does not open; the old key "
                                        "still does",
                                        device_path, new_slot);
        }
        if (strcmp(fp, tv_key_fingerprint(new_key)) != 0) {
                r = tv_luks_token_to_json(tenant, tv_key_fingerprint(new_key), &json);
                if (r < 0)
                        return crypt_error(err, r, "rotate %s: cannot encode the token", device_path);
                r = crypt_token_json_set(op.cd, token, json);
                if (r < 0)
                        return op_error(&op, err, map_errno(r), "rotate %s: cannot update the token",
                                        device_path);
        }
        if (old_slot >= 0 && old_slot != new_slot) {
                r = crypt_keyslot_destroy(op.cd, old_slot);
                if (r < 0)
                        return op_error(&op, err, map_errno(r),
                                        "rotate %s: cannot destroy the old keyslot %d (the new key "
                                        "opens keyslot %d)",
                                        device_path, old_slot, new_slot);
        }
        log_info("luks key rotated",
                 "device=%s tenant=%s old_fingerprint=%s fingerprint=%s old_keyslot=%d keyslot=%d "
                 "ms=%" PRIu64,
                 device_path, tenant, tv_key_fingerprint(old_key), tv_key_fingerprint(new_key), old_slot,
                 new_slot, tv_now_ms() - t0);
        return 0;
}

/* ---- erase -------------------------------------------------------------- */

/* A LUKS signature libcryptsetup cannot load (both header copies damaged):
 * its keyslots may still hold the volume key, so overwrite where any LUKS2
 * layout keeps them: the first 16 MiB (libcryptsetup's default data
 * offset; ours is 1 MiB), or the whole device if it is smaller. */
static int erase_damaged(luks_op *op, const char *path, tv_crypt_error *err) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        uint64_t size = 0, bytes;
        int r;

        if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0)
                return op_error(op, err, -errno, "erase %s: size of the device: %s", path, strerror(errno));
        bytes = size < DAMAGED_WIPE_BYTES ? size : DAMAGED_WIPE_BYTES;
        r = crypt_wipe(op->cd, NULL, CRYPT_WIPE_RANDOM, 0, bytes, LUKS_WIPE_BLOCK, 0, NULL, NULL);
        if (r < 0)
                return op_error(op, err, map_errno(r),
                                "erase %s: the damaged LUKS header area could not be overwritten", path);
        log_info("damaged luks header erased", "device=%s wiped_bytes=%" PRIu64, path, bytes);
        return 0;
}

int tv_luks_erase(const char *device_path, tv_crypt_error *err) {
        _cleanup_(luks_op_end) luks_op op = {0};
        _cleanup_close_ int lock_fd = -1;
        uint64_t t0 = tv_now_ms();
        int r, max, destroyed = 0;
        const char *type;
        int64_t wiped;
        struct stat st;

        luks_op_begin(&op, err);
        r = device_stat(device_path, &st, err);
        if (r < 0)
                return r;
        /* Unused: an open mapping keeps the volume key in the kernel, so
         * erasing under it would not erase anything yet. */
        r = device_lock(device_path, &st, true, &lock_fd, err);
        if (r < 0)
                return r;
        luks_op_lock(&op);
        r = op_init(&op, device_path, err);
        if (r < 0)
                return r;
        r = crypt_load(op.cd, CRYPT_LUKS, NULL);
        if (r < 0) {
                tv_luks_info info = {0};

                r = blkid_classify(device_path, &info, err);
                if (r < 0)
                        return r;
                if (info.kind == TV_LUKS_KIND_EMPTY) {
                        log_debug("nothing to erase", "device=%s", device_path);
                        return 0;
                }
                if (info.kind == TV_LUKS_KIND_FOREIGN)
                        return erase_damaged(&op, device_path, err);
                return op_error(&op, err, -EMEDIUMTYPE,
                                "device %s holds %s, not a LUKS header; refusing to erase it",
                                device_path, info.type);
        }
        type = crypt_get_type(op.cd);
        max = crypt_keyslot_max(type);
        for (int slot = 0; slot < max; slot++) {
                crypt_keyslot_info ki = crypt_keyslot_status(op.cd, slot);
                if (ki != CRYPT_SLOT_ACTIVE && ki != CRYPT_SLOT_ACTIVE_LAST && ki != CRYPT_SLOT_UNBOUND)
                        continue;
                r = crypt_keyslot_destroy(op.cd, slot);
                if (r < 0)
                        return op_error(&op, err, map_errno(r), "erase %s: cannot destroy keyslot %d",
                                        device_path, slot);
                destroyed++;
        }
        /* Also the metadata copies and the whole keyslot area: nothing of
         * the old header (token, digests, stale keyslot bytes) survives. */
        wiped = wipe_header_area(&op);
        if (wiped < 0)
                return op_error(&op, err, (int)wiped,
                                "erase %s: %d keyslot(s) destroyed, but the header area could not be "
                                "overwritten",
                                device_path, destroyed);
        log_info("luks volume erased", "device=%s keyslots=%d wiped_bytes=%" PRId64 " ms=%" PRIu64,
                 device_path, destroyed, wiped, tv_now_ms() - t0);
        return destroyed;
}

/* ---- token -------------------------------------------------------------- */

int tv_luks_token(const char *device_path, char **ret_tenant, char **ret_fingerprint,
                  tv_crypt_error *err) {
        _cleanup_(luks_op_end) luks_op op = {0};
        _cleanup_free_ char *tenant = NULL, *fp = NULL;
        struct stat st;
        int r;

        luks_op_begin(&op, err);
        r = device_stat(device_path, &st, err);
        if (r < 0)
                return r;
        luks_op_lock(&op);
        r = op_load_luks2(&op, device_path, err);
        if (r < 0)
                return r;
        r = op_token(&op, device_path, &tenant, &fp, err);
        if (r < 0)
                return r;
        if (ret_tenant)
                *ret_tenant = TAKE_PTR(tenant);
        if (ret_fingerprint)
                *ret_fingerprint = TAKE_PTR(fp);
        return 0;
}
