/* thinvault: metering, what the kernel already counts for every volume of
 * a pool, as plain C structs.
 *
 * One collection (tv_meter_collect()) costs one lvm2 process, whatever
 * the number of volumes N: the volume listing (one lvs of the VG,
 * tv_pool_list_lvs(), or, with TV_METER_POOL_STATUS, the same lvs giving
 * the pool status too, tv_pool_get_status_list()). lvm2's own cost of that
 * lvs grows with N (bench/meter.sh measures it). Everything per volume is
 * read from the kernel without a process:
 *   - thin mapped bytes               libdevmapper thin status (tv_lv_get_usage())
 *   - staged or not                   stat /dev/mapper/tvc-<lv>
 *   - where the mapping is mounted    /proc/self/mountinfo (read once), by MAJ:MIN
 *   - file system used bytes/inodes   statvfs(2) on one of those mount points
 *   - I/O counters of the mapping     /sys/dev/block/MAJ:MIN -> /sys/block/dm-N/stat
 *   - io.max in force, io.stat        the pods cgroup (tv_cgroup_find_pods_parent())
 *   - LUKS2 header and token          libblkid + libcryptsetup (tv_luks_probe()),
 *                                     only when asked (TV_METER_PROBE_LUKS): it
 *                                     reads every volume's first sectors
 * The thinvaultctl admin commands and the node's Prometheus endpoint share
 * it, so both report the same numbers. Nothing here needs the plugin to be
 * running, and nothing is sampled by hand: counters are the kernel's.
 *
 * Metering definitions (per tenant, tv_meter_aggregate()):
 *   provisioned  sum of the virtual sizes of the tenant's volumes
 *   allocated    sum of the pool space the tenant's volumes map (thin
 *                mapped bytes): what the pool really gives them
 *   used         sum of file system used bytes of the tenant's mounted
 *                volumes (statvfs f_blocks - f_bfree); volumes that are not
 *                mounted on this node (or staged as raw block) add nothing
 *   snapshots are counted apart (their own provisioned/allocated sums):
 *   a snapshot shares blocks with its origin until either is written, so
 *   its mapped bytes overlap the origin's and must not be added to them.
 *
 * Errors: functions return 0 (or a documented non-negative value) on
 * success and a negative errno on failure; `ret_*` outputs are written only
 * on success. A collection fails only when the pool cannot be listed; a
 * volume whose details cannot be read keeps the errno of that step in its
 * record (`*_errno` fields), so one bad volume does not hide the others.
 *
 * Threads: tv_meter_collect() may run in several threads at once (it keeps
 * no state; the layers it calls lock what they must). libdevmapper is used
 * here only by tv_meter_read_dm_table(), under a mutex of this layer: do not
 * call it while another thread of the process runs libdevmapper through
 * another layer (the CLI is single-threaded).
 *
 * Nothing here knows about gRPC or protobuf. */
#ifndef THINVAULT_METER_H
#define THINVAULT_METER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thinvault/crypt.h"
#include "thinvault/limits.h"
#include "thinvault/lvm.h"
#include "thinvault/util.h"

/* Prefix of the dm-crypt mapping a staged volume is opened as:
 * /dev/mapper/tvc-<lv name> (the node plugin's naming). */
#define TV_METER_MAPPING_PREFIX "tvc-"
/* Room for a mapping name and its NUL. */
#define TV_METER_MAPPING_SIZE (TV_LV_NAME_SIZE + 4)

/* ---- kernel text formats (pure, tested with captured kernel text) ------- */

/* One block device's counters from /sys/block/<dev>/stat
 * (Documentation/block/stat.rst). Ticks are milliseconds; sectors are 512
 * bytes whatever the device's block size. */
typedef struct tv_blk_stat {
        uint64_t reads, read_merges, read_sectors, read_ticks_ms;
        uint64_t writes, write_merges, write_sectors, write_ticks_ms;
        uint64_t in_flight, io_ticks_ms, time_in_queue_ms;
        /* Kernels >= 4.18 (discards) and >= 5.5 (flushes); 0 before. */
        uint64_t discards, discard_merges, discard_sectors, discard_ticks_ms;
        uint64_t flushes, flush_ticks_ms;
} tv_blk_stat;

/* Parse the text of a /sys/block/<dev>/stat file: 11, 15 or 17 unsigned
 * decimal numbers separated by blanks, ending with a newline or not.
 * Returns 0 and *ret_stat; -EBADMSG for fewer than 11 numbers, anything
 * that is not a number, or a value past UINT64_MAX. Pure. */
int tv_meter_parse_blk_stat(const char *text, tv_blk_stat *ret_stat);

/* One line of /proc/self/mountinfo (proc(5)): the fields a meter needs,
 * octal escapes (\040 for a space, \011, \012, \134) decoded. */
typedef struct tv_mount {
        uint32_t major, minor; /* st_dev of the file system */
        char *root;            /* the mounted subtree of the file system, "/" for all */
        char *mount_point;
        char *fstype;
        char *source; /* "/dev/mapper/tvc-...", "none", ... */
} tv_mount;

typedef struct tv_mount_table {
        tv_mount *mounts;
        size_t n;
} tv_mount_table;

/* Parse the text of a mountinfo file into *ret_table (free with
 * tv_mount_table_clear()). Returns 0; -EBADMSG when a line lacks a field
 * (id, parent, MAJ:MIN, root, mount point, options, "-", type, source);
 * -ENOMEM. An empty text is an empty table. Pure. */
int tv_meter_parse_mountinfo(const char *text, tv_mount_table *ret_table);
void tv_mount_table_clear(tv_mount_table *t);

/* The index of the first mount of device MAJ:MIN at index >= `from`, or
 * t->n when there is none (so `for (i = find(t, M, m, 0); i < t->n; i =
 * find(t, M, m, i + 1))` walks every mount of a device). Pure. */
size_t tv_mount_table_find(const tv_mount_table *t, uint32_t major, uint32_t minor, size_t from);

/* Time the cgroup's I/O to MAJ:MIN waited because of an I/O controller,
 * from the text of a v2 io.stat file, if the kernel reports one: iocost's
 * `cost.wait=` (microseconds) or io.latency's `delay_nsec=`. blk-throttle
 * (io.max) reports none: then 0 is returned. Returns 1 and the wait in
 * microseconds (both keys summed when both appear), 0 (no such key on the
 * device's line, or no line), -EBADMSG for a malformed line. Pure. */
int tv_meter_parse_io_stat_wait(const char *text, uint32_t major, uint32_t minor,
                                uint64_t *ret_wait_us);

/* ---- device-mapper tables, without keys ----------------------------------- */

/* The string that stands in for a key in a redacted table. */
#define TV_METER_REDACTED "<redacted>"

/* Redact the params of one device-mapper table line of target type
 * `target` for display:
 *   crypt        "<cipher> <key> <iv_offset> <device> <offset> [opts]": the
 *                key field (hex bytes, or a ":<size>:<type>:<desc>" kernel
 *                keyring reference) becomes TV_METER_REDACTED, the rest is
 *                kept;
 *   linear, striped, thin, thin-pool, error, zero, snapshot-origin, mirror,
 *   raid, cache, writecache, multipath, delay, flakey
 *                hold no secret: kept as they are;
 *   anything else (integrity with a journal key, ... or a target unknown
 *   today) is replaced whole by TV_METER_REDACTED: a target is shown only
 *   once it is known to hold no key.
 * Returns 0 and a heap string in *ret_params (caller frees); -EBADMSG for
 * a crypt line with fewer than 5 fields (redacted entirely would be
 * correct too, but a short crypt table means the parse is wrong); -ENOMEM.
 * Pure. */
int tv_meter_redact_table_params(const char *target, const char *params, char **ret_params);

/* The table of device-mapper device `dm_name` as `dmsetup table` prints it
 * ("<start> <length> <target> <params>\n" per target, sectors), each line
 * redacted by tv_meter_redact_table_params(). The kernel returns a crypt
 * target's key in its table; libdevmapper is told the data is secret (its
 * buffers are wiped) and the key never leaves this function. Returns 0 and
 * a heap string (caller frees); -ENXIO when no such device exists; -EIO,
 * -ENOMEM. */
int tv_meter_read_dm_table(const char *dm_name, char **ret_table);

/* ---- one volume ------------------------------------------------------------ */

/* Everything known about one thin LV of the pool. Strings are owned by the
 * report the record is in (or, for `lv`, by the record). */
typedef struct tv_meter_volume {
        tv_lv *lv; /* the lvs record: name, tags, attributes; NULL only in tests */
        const char *name;

        /* From the tags (NULL when absent). `thinvault` is true when the LV
         * has at least one tv. tag: any other thin LV in the pool was not
         * made by thinvault. */
        bool thinvault;
        bool snapshot; /* tv.kind=snapshot */
        const char *tenant, *pvc, *pv, *request_name, *fs, *key_source, *source,
                *limits_tag;
        uint64_t size_bytes; /* virtual size */
        unsigned n_snapshots; /* snapshots whose tv.source is this LV */

        /* The thin device (libdevmapper). usage_errno: 0, -ENXIO (inactive),
         * or another error; the fields below are valid when it is 0. */
        int usage_errno;
        uint64_t allocated_bytes; /* thin mapped bytes */
        uint32_t lv_major, lv_minor;
        int32_t open_count;
        bool thin_failed;

        /* The I/O budget recorded in the limits tag, resolved for the size.
         * limits_errno: 0; -EINVAL when the tag does not parse or does not
         * resolve (limits_error says why). No tag: empty spec, 0 limits. */
        int limits_errno;
        char limits_error[512];
        tv_limits_spec spec;
        tv_limits resolved;

        /* Staged on this node: the mapping /dev/mapper/tvc-<lv> exists. */
        bool staged;
        char mapping[TV_METER_MAPPING_SIZE];
        uint32_t map_major, map_minor;
        /* 1 when the mapping sits on this LV's thin device (its
         * /sys/dev/block/MAJ:MIN/slaves lists it), 0 when it sits on
         * something else, -1 when that could not be told. */
        int map_on_lv;
        /* Every mount point of the mapping (staging path, bind mounts into
         * pods), in mountinfo order. */
        char **mounts;
        size_t n_mounts;
        /* statvfs of the first mount: fs_valid tells whether it was read. */
        bool fs_valid;
        uint64_t fs_size_bytes, fs_used_bytes, fs_avail_bytes;
        uint64_t fs_inodes, fs_inodes_used;
        /* The mapping's block counters (/sys/block/dm-N/stat). */
        bool io_valid;
        char dm_kernel_name[16]; /* "dm-7" */
        tv_blk_stat io;

        /* Enforcement on the pods cgroup (staged volumes only).
         * io_max_errno: 0 when read (in_force all zero: no io.max line),
         * -ENOENT when there is no pods cgroup (see the report), else the
         * error of tv_limits_read(). */
        int io_max_errno;
        tv_limits in_force;
        bool cgroup_io_valid; /* the cgroup's io.stat line for the mapping */
        tv_io_stat cgroup_io;
        bool throttle_valid; /* io.stat reported a wait time */
        uint64_t throttled_us;

        /* LUKS (TV_METER_PROBE_LUKS only; probed false otherwise).
         * probe_errno: 0 (luks valid), -ENXIO (LV inactive: no device to
         * read), or tv_luks_probe()'s error with probe_error saying why. */
        bool probed;
        int probe_errno;
        char probe_error[512];
        tv_luks_info luks;
} tv_meter_volume;

/* True when the LUKS probe found LUKS2 with a thinvault token. */
bool tv_meter_volume_encrypted(const tv_meter_volume *v);

/* ---- per tenant -------------------------------------------------------------- */

typedef struct tv_meter_tenant {
        char *tenant;
        uint32_t volumes, snapshots;
        uint32_t staged;      /* volumes staged on this node */
        uint64_t provisioned_bytes;
        uint64_t allocated_bytes;
        uint64_t used_bytes;  /* mounted volumes only */
        uint64_t snapshot_provisioned_bytes;
        uint64_t snapshot_allocated_bytes;
} tv_meter_tenant;

/* Sum `n` volume records per tenant (definitions at the top), using only
 * their plain fields (tenant, snapshot, size_bytes, usage_errno,
 * allocated_bytes, staged, fs_valid, fs_used_bytes). Records without a
 * tenant (not thinvault's) are left out. Result sorted by tenant name, in
 * *ret_tenants (free with tv_meter_tenants_free(); NULL when *ret_n is 0).
 * Returns 0 or -ENOMEM. Pure. */
int tv_meter_aggregate(const tv_meter_volume *v, size_t n, tv_meter_tenant **ret_tenants,
                       size_t *ret_n);
void tv_meter_tenants_free(tv_meter_tenant *t, size_t n);

/* ---- a collection ------------------------------------------------------------- */

typedef enum tv_meter_flags {
        /* Probe every active LV's LUKS header and token (tv_luks_probe()). */
        TV_METER_PROBE_LUKS = 1u << 0,
        /* Read the pool's kernel status (data/metadata use, health): two
         * device-mapper ioctls more, from the same lvs as the listing.
         * Without it only the numbers the listing gives are filled (see
         * tv_meter_pool). */
        TV_METER_POOL_STATUS = 1u << 1,
} tv_meter_flags;

typedef struct tv_meter_options {
        uint32_t flags;
        /* Collect only this LV (snapshot counts still come from the whole
         * pool); NULL for all. */
        const char *only_lv;
        /* The pods cgroup as tv_cgroup_find_pods_parent()'s override; NULL
         * to discover it. */
        const char *cgroup_parent;
} tv_meter_options;

typedef struct tv_meter_pool {
        char *vg, *thin_pool;
        /* With TV_METER_POOL_STATUS all of it (status_valid); without, only
         * thin_virtual_bytes, n_thin and the VG numbers, from the listing. */
        bool status_valid;
        tv_pool_status status;
        /* thin_virtual_bytes / data_total_bytes (snapshots included, as the
         * pool guard counts it); 0 when the pool has no data space or the
         * status was not read. */
        double overprovision_ratio;
        uint32_t n_volumes, n_snapshots;
        uint32_t n_foreign; /* thin LVs of the pool without any tv. tag */
} tv_meter_pool;

typedef struct tv_meter_report {
        tv_meter_pool pool;
        tv_meter_volume *volumes; /* sorted by LV name */
        size_t n_volumes;
        tv_meter_tenant *tenants; /* tv_meter_aggregate() of the volumes */
        size_t n_tenants;
        /* The pods cgroup io.max is read from; NULL when there is none,
         * and then cgroup_error says why. */
        char *cgroup;
        char cgroup_error[512];
        uint64_t collect_ms; /* how long the collection took */
} tv_meter_report;

/* Collect the pool and every thin LV of it (or only opts->only_lv), as
 * described at the top. `opts` may be NULL (no probing, discovered
 * cgroup). Returns 0 and *ret_report (free with tv_meter_report_free());
 * -ENOENT when the VG or pool is gone, or opts->only_lv is not a thin LV of
 * the pool (err says which); -ENXIO when the pool is not active; lvm2
 * runner errors (lvm.h); -ENOMEM. */
int tv_meter_collect(tv_pool *p, const tv_meter_options *opts, tv_meter_report **ret_report,
                     tv_lvm_error *err);

void tv_meter_report_free(tv_meter_report *r);
TV_DEFINE_FREEP(tv_meter_report, tv_meter_report_free)

/* The record of LV `name` in the report, or NULL. */
const tv_meter_volume *tv_meter_report_find(const tv_meter_report *r, const char *name);

#endif
