/* thinvault: the volume layer.
 *
 * A tenant's volume is a thin LV carved from one LVM thin pool; who owns it
 * and what it is for are recorded as LV tags (`tv.tenant=...`), so `lvs`
 * alone tells whose every volume is and no second database exists.
 *
 * - lvm2 makes every metadata change; it is run only through tv_exec() with
 *   an argv array, a time-out and TV_LVM_CONFIG (no udev: safe in a
 *   container and in the test guest). One `lvs --reportformat json` call
 *   answers a whole-VG listing.
 * - libdevmapper answers what the kernel knows: thin-pool and thin status
 *   (used blocks, mapped sectors, health flags), device numbers, open counts.
 *
 * Errors: every function returns 0 (or a documented non-negative value) on
 * success and a negative errno on failure. Functions that can fail for a
 * reason a person must act on take a `tv_lvm_error *err` last: when it is
 * not NULL it is cleared on entry and, on failure, holds a one-line message
 * (what was being done, to which volume, and lvm2's own words) fit for a
 * gRPC status. lvm2's stderr is classified into errno by
 * tv_lvm_errno_from_stderr():
 *   -ENOENT     VG, pool or LV not found
 *   -EEXIST     an LV of that name exists (and is not the one asked for)
 *   -ENOSPC     VG or thin pool out of space, or the pool guard refused
 *   -EROFS      the thin pool failed, is read-only or needs_check (new
 *               space is refused until it is repaired)
 *   -EBUSY      the LV is open (mounted, mapped by dm-crypt, ...)
 *   -EINVAL     a bad name, size or tag, or lvm2 rejected its arguments
 *   -EACCES     not allowed (not root; -EPERM when lvm2 says so)
 *   -EAGAIN     an lvm2 lock could not be taken
 *   -ETIMEDOUT  lvm2 ran past the time-out and was killed
 *   -ENOEXEC    lvm2 is not installed
 *   -EBADMSG    lvm2's report could not be parsed
 *   -EIO        any other lvm2 or device-mapper failure
 *
 * Threads: every function may be called from many threads at once on one
 * tv_pool. Verbs that change metadata (create, delete, extend, snapshot,
 * clone, set_tags) take the pool's lock for their whole read-check-write
 * sequence, so two CreateVolume retries of one name cannot both create.
 * The lock is recursive and exposed (tv_pool_lock()): a caller that needs a
 * larger atomic section (a tenant quota: list, sum, then create) holds it
 * around the verbs it calls. Reads (lookup, list, usage, status) do not
 * lock. lvm2 itself serialises against other processes.
 *
 * Nothing here knows about gRPC or protobuf. */
#ifndef THINVAULT_LVM_H
#define THINVAULT_LVM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thinvault/util.h"

/* lvm2 settings for every invocation: no udev (containers and the test
 * guest have none, and lvcreate would wait for it and fail with "device not
 * cleared"). lvm2 then creates /dev/VG/LV and /dev/mapper nodes itself. */
#define TV_LVM_CONFIG                                                                              \
        "activation{udev_sync=0 udev_rules=0 verify_udev_operations=1} "                           \
        "devices{obtain_device_list_from_udev=0}"

/* The `lvs -o` field list that tv_lvm_parse_lvs_json() reads; every
 * listing and lookup asks for exactly these, with `--units b --nosuffix`. */
#define TV_LVM_LVS_FIELDS                                                                          \
        "lv_name,vg_name,lv_uuid,lv_attr,lv_size,segtype,pool_lv,origin,data_percent,"             \
        "lv_tags,lv_kernel_major,lv_kernel_minor,lv_time,lv_path,lv_dm_path,"                      \
        "vg_extent_size,vg_size,vg_free"

/* Default time-out for one lvm2 command (tv_pool_set_timeout()). */
#define TV_LVM_TIMEOUT_MS_DEFAULT 60000

/* ---- libdevmapper ----------------------------------------------------- */

/* libdevmapper keeps process-wide state without locks: the control fd
 * (/dev/mapper/control), version checks, ioctl buffer sizes. Every layer
 * that calls it directly (lvm/, meter/) takes this one lock around each
 * call; the first tv_dm_lock() holds the control fd open for the
 * process's life (dm_hold_control_dev(1)): libcryptsetup, in the
 * same process under crypt/'s own lock, calls dm_lib_release() after each
 * operation, which otherwise closes the fd under another thread's ioctl
 * (seen as EBADF from a thin-pool status under load). Usage:
 *     _cleanup_(tv_dm_unlockp) pthread_mutex_t *locked = tv_dm_lock(); */
pthread_mutex_t *tv_dm_lock(void);
void tv_dm_unlockp(pthread_mutex_t **locked);

/* ---- errors ----------------------------------------------------------- */

typedef struct tv_lvm_error {
        /* One line for a person: `create volume tvpool/tv-pvc-1-ab12...:
         * Volume group "tvpool" has insufficient free space (12 extents):
         * 25 required.` Empty when there is no error. */
        char message[512];
        /* The lvm2 stderr line the errno was taken from (or its last
         * meaningful line), trimmed; empty when lvm2 was not at fault. */
        char lvm_line[256];
} tv_lvm_error;

/* Classify lvm2's stderr (`text`, may be NULL) from a command that exited
 * with `exit_status` (> 0) into a negative errno (table above). Lines that
 * are only noise (WARNING:, "File descriptor N leaked", usage hints) do not
 * decide. When `line` is not NULL, the deciding line (or else the last
 * meaningful one), trimmed, is copied into it (truncated to `size`). Pure. */
int tv_lvm_errno_from_stderr(int exit_status, const char *text, char *line, size_t size);

/* ---- names ------------------------------------------------------------ */

/* What an LV name is for; volumes and snapshots come from different CSI
 * name spaces (CreateVolume vs CreateSnapshot), so they map apart. */
typedef enum {
        TV_LV_KIND_VOLUME = 0,   /* "tv-" prefix */
        TV_LV_KIND_SNAPSHOT = 1, /* "tvs-" prefix */
} tv_lv_kind;

/* Room for any name tv_lv_name_from_request() makes (61 chars + NUL). */
#define TV_LV_NAME_SIZE 64

/* Map a CSI request name (any bytes but NUL, any length >= 1: UTF-8,
 * spaces, '/', "..", leading '-', lvm2-reserved words...) to an LV name:
 *
 *   <prefix> <sanitised> "-" <hash>      e.g. "tv-pvc-3f1c2a-9b2e7c1d0a4f5e63"
 *
 * prefix is "tv-" or "tvs-" (`kind`); sanitised is the request name
 * lowercased, every run of bytes outside [a-z0-9] turned into one '-',
 * leading/trailing '-' dropped, cut to 40 chars (omitted with its '-' when
 * empty); hash is the first 16 hex digits of SHA-256(request name), i.e.
 * `printf %s NAME | sha256sum | cut -c1-16`.
 *
 * The result is always a valid LVM LV name (tv_lvm_name_valid()): it has
 * no '_' (so no reserved "_tmeta"-like part), no '.', starts with a letter,
 * and is at most 61 chars (its device-mapper name, with '-' doubled, stays
 * under 84 + the VG part). Distinct request names collide only if 64 bits
 * of SHA-256 do; the request name is kept in the `tv.name` tag so a caller
 * can tell. Deterministic: a retry maps to the same LV.
 * Writes ret_name and returns 0; -EINVAL for NULL or "" request names. */
int tv_lv_name_from_request(tv_lv_kind kind, const char *request_name,
                            char ret_name[TV_LV_NAME_SIZE]);

/* True when `name` is a name lvm2 accepts for a VG or LV: 1..127 chars of
 * [A-Za-z0-9+_.-], not starting with '-', not "." or "..", no reserved
 * prefix ("snapshot", "pvmove") or part ("_tmeta", "_tdata", "_pmspare",
 * ...). Every verb checks its names with it, so no name can be read by
 * lvm2 as an option. Pure. */
bool tv_lvm_name_valid(const char *name);

/* ---- tags --------------------------------------------------------------- */

/* One key/value pair recorded on an LV as the LVM tag `tv.<key>=<value>`. */
typedef struct tv_lvm_tag {
        const char *key;
        const char *value;
} tv_lvm_tag;

/* Keys the driver uses (any key matching [a-z0-9][a-z0-9._-]{0,63} works). */
#define TV_TAG_TENANT "tenant"       /* the PVC's namespace */
#define TV_TAG_NAME "name"           /* the CSI request name the LV name came from */
#define TV_TAG_PVC "pvc"             /* PVC name */
#define TV_TAG_PV "pv"               /* PV name */
#define TV_TAG_KIND "kind"           /* "volume" or "snapshot" */
#define TV_TAG_SOURCE "source"       /* LV a snapshot or clone was made from */

/* Longest tag tv_lvm_tag_encode() makes (lvm2 itself has no fixed limit;
 * this keeps VG metadata small). */
#define TV_LVM_TAG_MAX 1024

/* Encode `key`=`value` as an LVM tag. LVM allows only [A-Za-z0-9_+.-/=!:&#]
 * in tags, so the value keeps letters, digits and `. _ + - / :` and every
 * other byte b (space, '=', '#', '%', '!', '&', any non-ASCII, ...) becomes
 * "#XX" (XX = b in uppercase hex): "team a/ü" -> "tv.tenant=team#20a/#C3#BC".
 * Reversible by tv_lvm_tag_decode(); an empty value is allowed.
 * Returns 0 and a heap string in *ret_tag (caller frees), or -EINVAL for a
 * bad key or a tag longer than TV_LVM_TAG_MAX, -ENOMEM. Pure. */
int tv_lvm_tag_encode(const char *key, const char *value, char **ret_tag);

/* Decode an LVM tag made by tv_lvm_tag_encode(). Returns 0 with heap
 * strings in *ret_key and *ret_value (caller frees both); -ENOMSG for a tag
 * that is not ours (no "tv." prefix: an admin's own tag); -EINVAL for a
 * malformed "tv." tag (bad key, no '=', bad or NUL escape); -ENOMEM. Pure. */
int tv_lvm_tag_decode(const char *tag, char **ret_key, char **ret_value);

/* ---- logical volumes (records) ---------------------------------------- */

/* What lvs said about one LV at one moment: an immutable snapshot, owned by
 * whoever got it, freed with tv_lv_free(). */
typedef struct tv_lv tv_lv;

void tv_lv_free(tv_lv *lv);
TV_DEFINE_FREEP(tv_lv, tv_lv_free)

const char *tv_lv_name(const tv_lv *lv);
const char *tv_lv_vg(const tv_lv *lv);
const char *tv_lv_uuid(const tv_lv *lv);          /* "" if not reported */
const char *tv_lv_segtype(const tv_lv *lv);       /* "thin", "thin-pool", "linear", ... */
const char *tv_lv_attr(const tv_lv *lv);          /* lvs lv_attr, e.g. "Vwi-a-t---" */
const char *tv_lv_pool(const tv_lv *lv);          /* thin pool name; NULL if none */
const char *tv_lv_origin(const tv_lv *lv);        /* snapshot/clone origin; NULL if none (or gone) */
const char *tv_lv_path(const tv_lv *lv);          /* "/dev/VG/LV"; NULL for hidden LVs */
const char *tv_lv_dm_path(const tv_lv *lv);       /* "/dev/mapper/VG-LV" */
uint64_t tv_lv_size(const tv_lv *lv);             /* virtual size, bytes */
bool tv_lv_active(const tv_lv *lv);
bool tv_lv_read_only(const tv_lv *lv);
/* The lvs data_percent (thin: share of the virtual size mapped), or -1. */
double tv_lv_data_percent(const tv_lv *lv);
/* Creation time (unix seconds), 0 if lvm2 did not report it. */
int64_t tv_lv_created(const tv_lv *lv);
/* Kernel device number. Returns 0 and writes both, or -ENXIO if the LV
 * was not active. */
int tv_lv_devnum(const tv_lv *lv, uint32_t *ret_major, uint32_t *ret_minor);
/* The decoded `tv.` tags, in lvm2's order; owned by `lv`. Tags that are not
 * ours are left out. *ret_n may be 0 (then the return may be NULL). */
const tv_lvm_tag *tv_lv_tags(const tv_lv *lv, size_t *ret_n);
/* The value of tag `key`, or NULL if `lv` has none. Owned by `lv`. */
const char *tv_lv_tag(const tv_lv *lv, const char *key);

/* Several LVs, from one lvs report. */
typedef struct tv_lv_list tv_lv_list;

void tv_lv_list_free(tv_lv_list *l);
TV_DEFINE_FREEP(tv_lv_list, tv_lv_list_free)
size_t tv_lv_list_size(const tv_lv_list *l);
/* Borrowed: valid until the list is freed or the item is taken. */
const tv_lv *tv_lv_list_get(const tv_lv_list *l, size_t i);
/* Move item `i` out of the list (the list keeps a hole that _get() reports
 * as NULL). Returns 0, or -ENOENT if `i` is out of range or already taken. */
int tv_lv_list_take(tv_lv_list *l, size_t i, tv_lv **ret_lv);

/* The volume group the report rows were in (from the first row). */
typedef struct tv_vg_info {
        uint64_t extent_bytes;
        uint64_t size_bytes;
        uint64_t free_bytes;
} tv_vg_info;

/* Returns 0 and the VG numbers, or -ENODATA if the report had no rows. */
int tv_lv_list_vg_info(const tv_lv_list *l, tv_vg_info *ret_info);

/* Keep only the thin LVs of pool `pool` in the list (as `only_pool` of
 * tv_lvm_parse_lvs_json() does; taken items go too), freeing the others;
 * the VG info stays. Pure. */
void tv_lv_list_keep_pool(tv_lv_list *l, const char *pool);

/* Parse the stdout of `lvs --reportformat json --units b --nosuffix -o
 * TV_LVM_LVS_FIELDS` (lvm2 2.03's shape: {"report":[{"lv":[{...}]}]}, every
 * value a string). When `only_pool` is not NULL, only thin LVs of that pool
 * are kept (the pool itself, other pools' volumes and plain LVs are not);
 * the VG info is still taken from the first row. Unknown fields are ignored;
 * a row without lv_name, vg_name, lv_attr, lv_size or segtype, or a value
 * that is not a number where one is due, fails. Returns 0 and a list (maybe
 * empty); -EBADMSG (err says where), -ENOMEM. Used by every listing and
 * lookup; public so the CLI and the tests can feed it captured output. */
int tv_lvm_parse_lvs_json(const char *json, const char *only_pool, tv_lv_list **ret_list,
                          tv_lvm_error *err);

/* ---- sharing one listing ------------------------------------------------- */

/* Lookups, listings and pool status all read one whole-VG `lvs`, and the
 * readers that ask while one runs share the next one: a node busy with many
 * volumes runs one lvm2 process where it ran one per caller. A reader is
 * given a listing that started after it asked, never one already running
 * (that one may have read the metadata before the reader's own change). A
 * reader that holds the pool lock (`holder`) may also take one that started
 * since the last tv_lvs_share_invalidate(): tv_pool_lock() invalidates on
 * taking the lock and every metadata change invalidates before and after,
 * so inside one locked section a quota check and the pool guard read the
 * same listing. Changes made by other processes are seen by the next
 * listing, as before. Exposed for the unit tests; tv_pool uses it. */
typedef struct tv_lvs_share tv_lvs_share;

/* Runs one listing: 0 and its output (heap) in *ret_out, or a negative
 * errno with err filled. */
typedef int (*tv_lvs_run_fn)(void *ctx, char **ret_out, tv_lvm_error *err);

int tv_lvs_share_new(tv_lvs_run_fn run, void *ctx, tv_lvs_share **ret);
void tv_lvs_share_free(tv_lvs_share *s);
/* 0 and a copy of a listing's output (free() it), or that listing's error. */
int tv_lvs_share_get(tv_lvs_share *s, bool holder, char **ret_out, tv_lvm_error *err);
void tv_lvs_share_invalidate(tv_lvs_share *s);
/* How many listings ran (for the tests and the debug log). */
uint64_t tv_lvs_share_runs(tv_lvs_share *s);

/* ---- the pool ------------------------------------------------------------ */

/* An open VG + thin pool. Thread-safe (see the top of this file). */
typedef struct tv_pool tv_pool;

/* Open the existing thin pool `thin_pool` in volume group `vg` (one lvs
 * call). Does not activate anything. Returns 0 and a handle in *ret_pool
 * (free with tv_pool_free()); -EINVAL for invalid names or when
 * vg/thin_pool is not a thin pool; -ENOENT when the VG or the LV does not
 * exist; or a runner error (see top). */
int tv_pool_open(const char *vg, const char *thin_pool, tv_pool **ret_pool, tv_lvm_error *err);

/* For demos and tests: make sure a thin pool exists on a loop-backed file
 * and open it. Each step is skipped when already done, so this is
 * idempotent: the file `path` is created sparse with `size_bytes` if
 * missing (an existing file is used as it is), attached to a loop device
 * unless one already serves it, made the PV of a new VG `vg` unless `vg`
 * exists, and `thin_pool` is created with all the VG's free space, chunk
 * size lvm2's default, zeroing off and error-when-full on (I/O to a full
 * pool fails at once instead of queueing). Needs root, /dev/loop-control
 * and a kernel with dm-thin-pool. Returns 0 and *ret_pool, -EINVAL for bad
 * names or a size under 64 MiB, or the errno of the step that failed (err
 * names the step). */
int tv_pool_create_loop(const char *path, uint64_t size_bytes, const char *vg,
                        const char *thin_pool, tv_pool **ret_pool, tv_lvm_error *err);

/* Undo tv_pool_create_loop() for tests: remove VG `vg` with every LV in it
 * (lvm2 refuses if one is open), wipe the PV label and detach the loop
 * device serving `path`. The file itself is left. Steps already undone are
 * skipped: returns 0 when nothing is left, or a negative errno. */
int tv_pool_remove_loop(const char *path, const char *vg, tv_lvm_error *err);

/* Frees the handle (not the pool). The lock must not be held. NULL is ok. */
void tv_pool_free(tv_pool *p);
TV_DEFINE_FREEP(tv_pool, tv_pool_free)

const char *tv_pool_vg(const tv_pool *p);
const char *tv_pool_thin_pool(const tv_pool *p);
/* The VG's extent size: sizes are rounded up to a multiple of it. */
uint64_t tv_pool_extent_bytes(const tv_pool *p);

/* Time-out for each lvm2 command, in ms (> 0; default
 * TV_LVM_TIMEOUT_MS_DEFAULT). A command that runs longer is killed and the
 * verb fails with -ETIMEDOUT; lvm2 commits metadata atomically, so the
 * change happened entirely or not at all, and a retry finds out which. */
void tv_pool_set_timeout(tv_pool *p, int timeout_ms);

/* The guard that refuses new space before the pool is in trouble (0 turns
 * a check off; both are off by default):
 * - max_data_percent: create, clone, snapshot and extend fail with -ENOSPC
 *   while the pool's data use is at or above this share;
 * - max_metadata_percent: the same for the pool's metadata use;
 * - max_overprovision_percent: create, clone and extend fail with -ENOSPC
 *   when the sum of all thin LV sizes in the pool (snapshots included)
 *   would exceed this share of the pool's data size (400 = 4x).
 * Checked under the pool lock, before lvm2 is asked. Whatever the guard,
 * those verbs also refuse a pool the kernel reports failed, read-only or
 * needs_check (-EROFS: after an I/O error on its data or metadata device,
 * or full metadata; an admin must repair it) or out of data space
 * (-ENOSPC), asking libdevmapper only. */
void tv_pool_set_guard(tv_pool *p, unsigned max_data_percent, unsigned max_metadata_percent,
                       unsigned max_overprovision_percent);

/* Take / release the pool's recursive lock: metadata changes by this
 * process are serialised while it is held (verbs take it themselves; hold
 * it only to make a longer read-check-write atomic). tv_pool_lock()
 * returns `p`, so `_cleanup_(tv_pool_unlockp) tv_pool *l = tv_pool_lock(p);`
 * holds it to the end of the scope (clang wants `_unused_` on `l`). */
tv_pool *tv_pool_lock(tv_pool *p);
void tv_pool_unlock(tv_pool *p);
static inline void tv_pool_unlockp(tv_pool **p) {
        if (*p)
                tv_pool_unlock(*p);
}

typedef struct tv_pool_status {
        /* From the kernel's thin-pool status (libdevmapper). */
        uint64_t data_total_bytes;
        uint64_t data_used_bytes;
        uint64_t metadata_total_bytes;
        uint64_t metadata_used_bytes;
        uint64_t chunk_bytes;          /* thin pool data block size */
        uint64_t transaction_id;
        bool read_only;                /* metadata cannot change (e.g. after an error) */
        bool needs_check;              /* thin_check must run before rw use */
        bool out_of_data_space;        /* writes to unmapped blocks fail or queue */
        bool failed;                   /* all I/O fails */
        bool error_if_no_space;        /* full pool errors rather than queues */
        /* read_only or needs_check with no metadata block free beyond the
         * kernel's reserve (tv_pool_metadata_exhausted()): the kernel's
         * out-of-metadata-space mode. Writes to unprovisioned blocks fail
         * (EIO); growing the metadata LV takes the pool back to read-write
         * unless needs_check is set (then lvconvert --repair first). */
        bool out_of_metadata_space;
        /* !read_only && !needs_check && !out_of_data_space && !failed */
        bool healthy;
        /* From lvm2 (one lvs call for the VG). */
        uint64_t extent_bytes;
        uint64_t vg_size_bytes;
        uint64_t vg_free_bytes;        /* room to extend the pool */
        uint64_t thin_virtual_bytes;   /* sum of the pool's thin LV sizes */
        uint32_t n_thin;               /* number of thin LVs (snapshots included) */
} tv_pool_status;

/* Status of the pool. Returns 0 and fills *ret_status; -ENOENT if the VG or
 * pool is gone; -ENXIO if the pool is not active (no thin-pool device in the
 * kernel); a runner error or -EIO. */
int tv_pool_get_status(tv_pool *p, tv_pool_status *ret_status, tv_lvm_error *err);

/* The status and, from the same lvs call, every thin LV of the pool (as
 * tv_pool_list_lvs() gives them): one lvm2 process instead of two, for a
 * caller that needs both (the metrics scrape). `ret_list` may be NULL.
 * Returns as tv_pool_get_status(); *ret_list is written only on success. */
int tv_pool_get_status_list(tv_pool *p, tv_pool_status *ret_status, tv_lv_list **ret_list,
                            tv_lvm_error *err);

/* Has a pool no metadata block left beyond the kernel's reserve, from
 * its status (metadata bytes used and total)? dm-thin keeps
 * min(total / 10, 4096) blocks of 4 KiB back, counts them as used in its
 * status, and switches the pool to out-of-metadata-space mode (read-only)
 * once only those are left: the status then shows used == total. Pure. */
bool tv_pool_metadata_exhausted(uint64_t used_bytes, uint64_t total_bytes);

/* What is wrong with a pool of status `s` (VG `vg`, pool `pool`) and what
 * an admin must do, for messages: "healthy"; or the states ("failed (all
 * I/O errors)", "needs_check", "out of metadata space", "read-only", "out
 * of data space", comma-separated) then the remedy: lvconvert --repair
 * for a failed, needs_check or otherwise read-only pool; lvextend
 * --poolmetadatasize for one out of metadata space (after the repair when
 * needs_check is set too); lvextend -L for one out of data space. Writes
 * at most `size` bytes (truncating), returns `buf`. Pure. */
const char *tv_pool_health_text(const tv_pool_status *s, const char *vg, const char *pool, char *buf, size_t size);

/* For the CSI Probe: do the VG and the thin pool answer, and is the pool
 * healthy? Returns 0 with *ret_ready = healthy (when false, err says why:
 * needs_check, read-only, out of data space, failed); or a negative errno
 * when they cannot be asked at all (as tv_pool_get_status()). */
int tv_pool_probe(tv_pool *p, bool *ret_ready, tv_lvm_error *err);

/* ---- thin LV verbs ------------------------------------------------------- */

/* Every `name` below is an LV name (see tv_lv_name_from_request()) that
 * must pass tv_lvm_name_valid(), else -EINVAL. Only thin LVs of this pool
 * are volumes: any other LV in the VG (the pool itself, its hidden parts,
 * an admin's LV) is reported as -ENOENT by every verb and never changed. */

/* Create thin LV `name` of `size` bytes (rounded up to the extent size),
 * active, tagged with `tags` (n_tags may be 0). Idempotent: if `name`
 * already is a thin LV of this pool with that rounded size, no origin, and
 * the same TV_TAG_NAME value as `tags` (when `tags` has one), returns 0 and
 * that LV. *ret_lv (may be NULL) gets the LV as lvs reports it.
 * Returns 0; -EEXIST (that name with another size, origin or request
 * name, or another kind of LV); -ENOSPC (VG/pool/guard); -EINVAL (bad
 * name, size 0, bad tag); or a runner error. */
int tv_lv_create(tv_pool *p, const char *name, uint64_t size, const tv_lvm_tag *tags,
                 size_t n_tags, tv_lv **ret_lv, tv_lvm_error *err);

/* Remove thin LV `name`. Refuses an LV that is open (its device-mapper
 * open count, e.g. mounted or held by dm-crypt) with -EBUSY, so data in use
 * is never pulled away. Returns 0 (removed); -ENOENT (no such volume, so a
 * retry can treat it as done); -EBUSY; or a runner error. Thin snapshots
 * and clones of `name` are independent and stay. */
int tv_lv_delete(tv_pool *p, const char *name, tv_lvm_error *err);

/* Grow thin LV `name` to `new_size` bytes (rounded up to the extent size).
 * Only the block device grows; a file system on it is not touched. A
 * volume already at least that big is left alone (success: CSI expansion
 * retries). *ret_size (may be NULL) gets the size afterwards.
 * Returns 0; -ENOENT; -ENOSPC (guard); -EINVAL (size 0); runner errors. */
int tv_lv_extend(tv_pool *p, const char *name, uint64_t new_size, uint64_t *ret_size,
                 tv_lvm_error *err);

/* Make `name` a thin snapshot of thin LV `origin`: same size, read-only,
 * active and not skipped on activation (so it can be read and cloned at
 * once), tagged with `tags` only (lvm2 copies no tags from the origin).
 * Idempotent like tv_lv_create() (same origin and TV_TAG_NAME value).
 * Returns 0; -ENOENT (no origin); -EEXIST; -ENOSPC (guard); runner errors. */
int tv_lv_snapshot(tv_pool *p, const char *origin, const char *name, const tv_lvm_tag *tags,
                   size_t n_tags, tv_lv **ret_lv, tv_lvm_error *err);

/* Make `name` a new writable volume holding the data of thin LV `source`
 * (a volume or a snapshot): a thin snapshot of it, made writable and
 * active, then grown to `size` if that is larger than the source (0 = the
 * source's size). A size below the source's is -EINVAL. If growing fails
 * the new LV is removed again. Idempotent like tv_lv_create() (same origin,
 * size and TV_TAG_NAME value). Returns 0; -ENOENT (no source); -EEXIST;
 * -ENOSPC; -EINVAL; runner errors. */
int tv_lv_clone(tv_pool *p, const char *source, const char *name, uint64_t size,
                const tv_lvm_tag *tags, size_t n_tags, tv_lv **ret_lv, tv_lvm_error *err);

/* Look up thin LV `name` (one lvs call). Returns 0 and *ret_lv; -ENOENT;
 * runner errors. */
int tv_lv_lookup(tv_pool *p, const char *name, tv_lv **ret_lv, tv_lvm_error *err);

/* Every thin LV of the pool, with tags, from one lvs call for the VG.
 * Returns 0 and *ret_list (maybe empty); -ENOENT if the VG is gone; runner
 * errors. */
int tv_pool_list_lvs(tv_pool *p, tv_lv_list **ret_list, tv_lvm_error *err);

typedef struct tv_lv_usage {
        uint64_t mapped_bytes;        /* pool space the LV holds (thin mapped sectors x 512) */
        uint64_t highest_mapped_byte; /* end of the highest mapped sector, 0 if none */
        uint32_t major, minor;        /* its device-mapper device */
        int32_t open_count;           /* openers: mounts, dm-crypt, processes */
        bool failed;                  /* the thin device fails I/O */
} tv_lv_usage;

/* What the kernel says about thin LV `name` (libdevmapper only, no lvm2
 * process: cheap enough for a metrics scrape). Returns 0 and *ret_usage;
 * -ENXIO if no such device is active (inactive or missing LV); -EINVAL
 * (bad name, or the device is not a thin device); -EIO. */
int tv_lv_get_usage(tv_pool *p, const char *name, tv_lv_usage *ret_usage, tv_lvm_error *err);

/* How long a volume may stay open before it counts as in use: a scanner
 * (udev's blkid after the mapping above it goes, another process's lvm2
 * label scan) holds a device open for a moment, and lvm2 itself retries a
 * deactivation for a few seconds for that reason (retry_deactivation). */
#define TV_LV_SETTLE_MS 3000

/* Wait up to TV_LV_SETTLE_MS for thin LV `name`'s device-mapper open count
 * to be 0 (libdevmapper only). Returns 0 with *ret_open_count the last
 * count seen (0: closed, or not active); a dm error. */
int tv_lv_wait_closed(tv_pool *p, const char *name, int32_t *ret_open_count, tv_lvm_error *err);

/* Change the tags of thin LV `name` in one lvchange: each key in `set` gets
 * that value (replacing any value it had); each key in `del_keys` loses
 * its tag (absent keys are fine). Other tags stay. Returns 0; -ENOENT;
 * -EINVAL (bad key/value, or a key both set and deleted); runner errors. */
int tv_lv_set_tags(tv_pool *p, const char *name, const tv_lvm_tag *set, size_t n_set,
                   const char *const *del_keys, size_t n_del, tv_lvm_error *err);

#endif
