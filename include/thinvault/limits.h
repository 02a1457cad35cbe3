/* thinvault: I/O limits of a volume.
 *
 * Two halves, one header:
 *
 * 1. What a cluster admin asks for (pure, no I/O). StorageClass and
 *    VolumeAttributesClass parameters (the table below) are parsed into a
 *    tv_limits_spec, which tv_limits_resolve() turns into the tv_limits of a
 *    volume of a given size. A spec travels in an LVM tag as a short string
 *    (tv_limits_spec_to_string()), so a restart or a resize can re-resolve it.
 *
 * 2. What the kernel enforces. The limits of a volume are written for the
 *    MAJ:MIN of its dm-crypt device on the cgroup that parents every pod
 *    (kubepods.slice or kubepods), so the cap holds for the volume whichever
 *    pod does the I/O, and for all of them together:
 *      cgroup v2:  `<cgroup>/io.max`, one line `MAJ:MIN rbps= wbps= riops= wiops=`
 *      cgroup v1 (the fallback, for hosts without a usable v2 `io`):
 *                  `<cgroup>/blkio.throttle.{read,write}_{bps,iops}_device`,
 *                  one `MAJ:MIN VALUE` line in each, 0 = no rule.
 *    Which one a directory speaks is found from its files
 *    (tv_cgroup_io_version()); every enforcement call works on both.
 *
 *    BUT v1 blk-throttle is not hierarchical (only under the never-released
 *    "sane_behavior"): a v1 rule caps the tasks in that very cgroup, not
 *    those in its children. Measured in the test guest: riops=100 on v1
 *    kubepods held a process in kubepods itself to 100 IOPS and let one in
 *    kubepods/pod1 do 6000+. So on v1 the "one rule on the pods' parent"
 *    design cannot hold; tv_cgroup_find_pods_parent() refuses such a host
 *    (-EOPNOTSUPP) instead of returning a cgroup whose limits would be
 *    silently ignored. Applying v1 rules to each pod's own (container)
 *    cgroups would work but is not implemented here.
 *
 * Parameters (keys are case-sensitive; every value a whole number):
 *
 *   absolute, per volume
 *     readIOPS, writeIOPS                   I/O operations per second
 *     iops                                  readIOPS and writeIOPS, same value
 *     readBytesPerSecond,                   bytes per second; a suffix Ki, Mi
 *     writeBytesPerSecond                   or Gi multiplies by 2^10/2^20/2^30
 *                                           ("100Mi" = 104857600)
 *   scaled by the volume's capacity (see tv_limits_resolve())
 *     readIOPSPerGiB, writeIOPSPerGiB
 *     readBytesPerSecondPerGiB,
 *     writeBytesPerSecondPerGiB             (suffixes as above: "2Mi")
 *   floor and ceiling of a scaled limit (only next to its ...PerGiB)
 *     minReadIOPS, maxReadIOPS, minWriteIOPS, maxWriteIOPS
 *     minReadBytesPerSecond, maxReadBytesPerSecond,
 *     minWriteBytesPerSecond, maxWriteBytesPerSecond
 *
 *   A direction and kind (read IOPS, write IOPS, read bytes/s, write bytes/s)
 *   that no parameter names is unlimited. Rules, each an -EINVAL naming the
 *   parameter when broken:
 *     - absolute, floor and ceiling values are 2..TV_LIMITS_IOPS_MAX
 *       (IOPS) or 2..TV_LIMITS_BPS_MAX (bytes/s): the kernel refuses 0 and 1
 *       and reads UINT32_MAX IOPS back as "max". Per-GiB values are >= 1.
 *       There is no "0 = unlimited" parameter value: leave the key out.
 *     - no sign, no spaces, no fraction, no trailing characters; IOPS take
 *       no suffix; bytes take only Ki, Mi, Gi (not K/M/G: in Kubernetes
 *       quantities those are powers of 10, a classic off-by-5% trap).
 *     - an absolute and a per-GiB limit for the same direction and kind
 *       (readIOPS with readIOPSPerGiB; iops with writeIOPSPerGiB) conflict;
 *       so do iops and readIOPS/writeIOPS.
 *     - min.../max... without the matching ...PerGiB; min above max.
 *
 * Errors: functions return 0 (or a documented non-negative value) on
 * success and a negative errno on failure. Those that can fail for a reason
 * a person must act on take a `tv_limits_error *err` last: when not NULL it
 * is cleared on entry and, on failure, holds a one-line message naming the
 * parameter, file or device concerned, fit for a gRPC status message.
 * Outputs (`ret_*`) are written only on success.
 *
 * Threads: nothing here keeps state; every function may be called from
 * many threads. The kernel serialises writes to one cgroup file.
 *
 * Nothing here knows about gRPC, protobuf or LVM. */
#ifndef THINVAULT_LIMITS_H
#define THINVAULT_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thinvault/util.h"

/* Kernel bounds of one limit value (block/blk-throttle.c): 0 is -ERANGE,
 * 1 is -EINVAL; IOPS are clamped to UINT32_MAX, which means "max", and
 * bytes/s UINT64_MAX means "max". */
#define TV_LIMITS_VALUE_MIN 2ULL
#define TV_LIMITS_IOPS_MAX 4294967294ULL
#define TV_LIMITS_BPS_MAX 18446744073709551614ULL

#define TV_LIMITS_GIB (1024ULL * 1024ULL * 1024ULL)

/* ---- errors ----------------------------------------------------------- */

typedef struct tv_limits_error {
        /* e.g. `parameter readBytesPerSecond="100M": unknown suffix "M"
         * (use Ki, Mi or Gi, e.g. 100Mi)`. Empty when there is no error. */
        char message[512];
} tv_limits_error;

/* ---- effective limits --------------------------------------------------- */

/* The limits of one volume as the kernel enforces them; 0 = unlimited.
 * Non-zero values are TV_LIMITS_VALUE_MIN..TV_LIMITS_IOPS_MAX (iops) or
 * ..TV_LIMITS_BPS_MAX (bps). */
typedef struct tv_limits {
        uint64_t read_iops;
        uint64_t write_iops;
        uint64_t read_bps;  /* bytes per second */
        uint64_t write_bps; /* bytes per second */
} tv_limits;

bool tv_limits_is_unlimited(const tv_limits *l);
bool tv_limits_equal(const tv_limits *a, const tv_limits *b);

/* True when every value is 0 or within the kernel bounds above. */
bool tv_limits_valid(const tv_limits *l);

/* ---- the spec: what the parameters asked for ---------------------------- */

typedef enum tv_limit_kind {
        TV_LIMIT_READ_IOPS = 0,
        TV_LIMIT_WRITE_IOPS = 1,
        TV_LIMIT_READ_BPS = 2,
        TV_LIMIT_WRITE_BPS = 3,
        TV_LIMIT_KIND_COUNT = 4,
} tv_limit_kind;

/* One direction and kind. Every field 0 = not set. */
typedef struct tv_limit_rule {
        uint64_t absolute; /* readIOPS, iops, readBytesPerSecond, ... */
        uint64_t per_gib;  /* readIOPSPerGiB, ... */
        uint64_t floor;    /* minReadIOPS, ... (only with per_gib) */
        uint64_t ceiling;  /* maxReadIOPS, ... (only with per_gib) */
} tv_limit_rule;

/* A plain value: copy it, compare it with memcmp(), no free. A zeroed spec
 * is valid and means "no limits". */
typedef struct tv_limits_spec {
        tv_limit_rule rule[TV_LIMIT_KIND_COUNT]; /* indexed by tv_limit_kind */
} tv_limits_spec;

/* True when `key` is one of the parameters in the table at the top (exact,
 * case-sensitive match), so the CSI layer can tell limit keys from its own
 * and reject the rest. False for NULL. Pure. */
bool tv_limits_is_param(const char *key);

/* All parameter names of the table, in a stable order, for help texts and
 * "unknown parameter" messages. Static storage; *ret_n is set. */
const char *const *tv_limits_param_names(size_t *ret_n);

/* Parse the limit parameters out of a string map given as parallel arrays
 * (`keys[i]` = `values[i]`, i < n; n may be 0 and the arrays then NULL).
 * Keys that are not limit keys (tv_limits_is_param()) are ignored: the
 * caller owns the rest of the map. Returns 0 and *ret_spec (zeroed when no
 * limit key is present); -EINVAL when a value or the combination breaks a
 * rule at the top (also a NULL value or a limit key given twice); err names
 * the parameter. Pure. */
int tv_limits_spec_from_params(const char *const *keys, const char *const *values, size_t n,
                               tv_limits_spec *ret_spec, tv_limits_error *err);

/* True when the spec sets nothing (every volume unlimited). */
bool tv_limits_spec_is_empty(const tv_limits_spec *spec);

/* Check the rules at the top on a spec built by hand (the parsers already
 * do). Returns 0 or -EINVAL (err names the parameter). Pure. */
int tv_limits_spec_validate(const tv_limits_spec *spec, tv_limits_error *err);

/* The limits of a volume of `capacity_bytes` under `spec`, per direction
 * and kind:
 *   absolute set   -> that value;
 *   per_gib set    -> per_gib x GiB, where GiB is the capacity in GiB
 *                     ROUNDED UP, at least 1 (a 1.5 GiB volume is budgeted
 *                     as 2 GiB, a 0-byte request as 1 GiB: the budget never
 *                     falls below what the admin promised per GiB), then
 *                     raised to the floor and lowered to the ceiling when
 *                     set, then raised to TV_LIMITS_VALUE_MIN (the kernel's
 *                     smallest limit: 1 IOPS/GiB x 1 GiB gives 2);
 *   nothing set    -> 0 (unlimited).
 * A product above the kernel's largest value (TV_LIMITS_IOPS_MAX or
 * TV_LIMITS_BPS_MAX, including a uint64 overflow) that no ceiling brings
 * down is -EINVAL; err names the ...PerGiB parameter and suggests the max...
 * ceiling. Also -EINVAL for a spec that fails tv_limits_spec_validate().
 * Returns 0 and *ret_limits (tv_limits_valid()). Pure. */
int tv_limits_resolve(const tv_limits_spec *spec, uint64_t capacity_bytes, tv_limits *ret_limits,
                      tv_limits_error *err);

/* ---- the spec as a string (for an LVM tag) ----------------------------- */

/* Buffer size that always holds tv_limits_spec_to_string()'s output. */
#define TV_LIMITS_SPEC_STRING_MAX 256

/* Serialise `spec` as "v1" followed by one "/<code>:<value>" per set field,
 * in tv_limit_kind order, e.g. "v1/ri:3000/wig:10/win:100/wix:5000/rb:100Mi".
 * Codes: ri wi rb wb (read/write IOPS, read/write bytes/s), followed by
 * nothing (absolute), g (per GiB), n (floor, miN), x (ceiling, maX). Byte
 * values use the largest exact suffix of Gi, Mi, Ki. A spec with nothing
 * set is "v1". The string uses only [A-Za-z0-9/:] (inside both lvm2's tag
 * alphabet and the set tv_lvm_tag_encode() keeps unescaped) and is at most
 * 242 chars (every kind per-GiB with floor and ceiling, 20-digit values).
 * Returns its length, or -EINVAL when `spec` fails
 * tv_limits_spec_validate(). Pure. */
int tv_limits_spec_to_string(const tv_limits_spec *spec, char ret_buf[TV_LIMITS_SPEC_STRING_MAX]);

/* Parse a string made by tv_limits_spec_to_string(). Strict: unknown
 * version or code, a code twice, a bad value or a spec that breaks the
 * rules is -EINVAL (err says which part). Returns 0 and *ret_spec. Pure. */
int tv_limits_spec_from_string(const char *s, tv_limits_spec *ret_spec, tv_limits_error *err);

/* ---- kernel file formats (pure, tested with captured kernel text) ------- */

/* Format the io.max line that sets `limits` for MAJ:MIN, every direction
 * and kind given (0 as "max", so one write replaces the whole rule):
 *   "254:3 riops=100 wiops=max rbps=104857600 wbps=max\n"
 * Writes into buf (NUL-terminated); returns the length, -ENOBUFS when
 * `size` is too small, -EINVAL when !tv_limits_valid(limits). */
int tv_limits_format_io_max(uint32_t major, uint32_t minor, const tv_limits *limits, char *buf,
                            size_t size);

/* Find MAJ:MIN in the text of a v2 io.max file (lines like
 * "254:0 rbps=max wbps=max riops=100 wiops=max"; unknown keys are skipped).
 * Returns 1 and the limits when the device has a line, 0 and all-zero
 * limits when it has none (the kernel prints no line for a device without
 * limits), -EBADMSG when a line is malformed. */
int tv_limits_parse_io_max(const char *text, uint32_t major, uint32_t minor, tv_limits *ret_limits);

/* Find MAJ:MIN in the text of a v1 blkio.throttle.*_device file (lines
 * "254:0 100"). Returns 1 and the value, 0 and value 0 (no rule), or
 * -EBADMSG. */
int tv_limits_parse_blkio_throttle(const char *text, uint32_t major, uint32_t minor,
                                   uint64_t *ret_value);

/* Counters of one device in a v2 io.stat file. */
typedef struct tv_io_stat {
        uint64_t rbytes, wbytes, rios, wios, dbytes, dios;
} tv_io_stat;

/* Find MAJ:MIN in the text of a v2 io.stat file (lines like
 * "254:0 rbytes=40960 wbytes=0 rios=10 wios=0 dbytes=0 dios=0"; the kernel
 * also prints "254:0 " with no counters, and extra keys such as
 * "cost.vrate=" with iocost: skipped). Returns 1 and the counters, 0 and
 * zeroes when the device has no line, -EBADMSG. */
int tv_cgroup_parse_io_stat(const char *text, uint32_t major, uint32_t minor,
                            tv_io_stat *ret_stat);

/* ---- enforcement (reads and writes cgroup files) ------------------------ */

typedef enum tv_cgroup_version {
        TV_CGROUP_V1 = 1,
        TV_CGROUP_V2 = 2,
} tv_cgroup_version;

/* Which interface `cgroup_dir` offers: TV_CGROUP_V2 when it has io.max,
 * TV_CGROUP_V1 when it has blkio.throttle.read_bps_device. -ENOENT when the
 * directory does not exist; -EOPNOTSUPP when it has neither (on v2: io is
 * not enabled in its parent's cgroup.subtree_control, see
 * tv_cgroup_enable_io(); also the root cgroup, which has no io.max). */
int tv_cgroup_io_version(const char *cgroup_dir, tv_limits_error *err);

/* Set the limits of block device MAJ:MIN in `cgroup_dir` to `limits`,
 * replacing every previous value for it (all four are written; 0 as "max"
 * on v2, as 0 on v1). All-zero limits remove the rule (tv_limits_clear()).
 * v2 is one write(2) and so atomic; v1 is four files, in the order
 * read_iops, write_iops, read_bps, write_bps: a failure midway can leave
 * some written. The file is read back afterwards and must say the same.
 * On v1 the rule holds for the tasks of `cgroup_dir` itself only, not for
 * its children (see the top). Logs one info line. Returns 0; -EINVAL when !tv_limits_valid(limits);
 * -ENOENT/-EOPNOTSUPP as tv_cgroup_io_version(); -ENODEV when the kernel
 * knows no such block device; -EIO when the read-back differs; another
 * negative errno from open/write. */
int tv_limits_apply(const char *cgroup_dir, uint32_t major, uint32_t minor,
                    const tv_limits *limits, tv_limits_error *err);

/* Remove every limit of MAJ:MIN in `cgroup_dir`: on v2 writes
 * "MAJ:MIN rbps=max wbps=max riops=max wiops=max", after which the kernel
 * lists no line for it; on v1 writes "MAJ:MIN 0" to the four files. Reads
 * back to check. Idempotent: a device with no limits, or one that no longer
 * exists (its rules went with it), returns 0. Errors as tv_limits_apply(). */
int tv_limits_clear(const char *cgroup_dir, uint32_t major, uint32_t minor, tv_limits_error *err);

/* Read the limits of MAJ:MIN from `cgroup_dir` (all zero when it has no
 * rule), for audits and restart checks. Returns 0 and *ret_limits;
 * -ENOENT/-EOPNOTSUPP as tv_cgroup_io_version(); -EBADMSG when the file
 * cannot be parsed; another negative errno from reading. */
int tv_limits_read(const char *cgroup_dir, uint32_t major, uint32_t minor, tv_limits *ret_limits,
                   tv_limits_error *err);

/* Read the io.stat counters of MAJ:MIN in a v2 `cgroup_dir` (zeroes when
 * the device has done no I/O there). Returns 0 and *ret_stat; -EOPNOTSUPP
 * on v1 (blkio.throttle.io_service* is not parsed); as tv_limits_read(). */
int tv_cgroup_read_io_stat(const char *cgroup_dir, uint32_t major, uint32_t minor,
                           tv_io_stat *ret_stat, tv_limits_error *err);

/* ---- cgroup discovery ----------------------------------------------------- */

/* Find the cgroup that parents all pods, where volume limits go.
 *   - `override` not NULL (the driver's flag, e.g. when the host's cgroup
 *     tree is mounted into the driver's container at another path): that
 *     directory, which must be an absolute path and exist. Nothing else is
 *     looked at.
 *   - else the cgroup mount is taken from /proc/self/mountinfo: a cgroup2
 *     mount whose root's cgroup.controllers lists `io`; if there is none
 *     but a cgroup v1 mount has blkio (a v1 host, or a "hybrid" one whose
 *     v2 mount at /sys/fs/cgroup/unified has no controllers), -EOPNOTSUPP:
 *     v1 rules on kubepods would not reach the pods (see the top); if there
 *     is neither, a cgroup2 mount without io (tv_cgroup_enable_io() then
 *     says why it cannot work). In it, `kubepods.slice` (kubelet with the
 *     systemd cgroup driver), else `kubepods` (cgroupfs driver).
 * Returns 0 and a heap path in *ret_path (caller frees); -EINVAL for a
 * relative override; -ENOENT when the override does not exist, no cgroup
 * file system is mounted, or neither kubepods cgroup exists (err names
 * where it looked and suggests the override); -EOPNOTSUPP for a v1 io
 * controller (err says why and what to change); -ENOMEM. */
int tv_cgroup_find_pods_parent(const char *override, char **ret_path, tv_limits_error *err);

/* The same, reading the given mountinfo text instead of
 * /proc/self/mountinfo (for tests; the directories are real). */
int tv_cgroup_find_pods_parent_in(const char *mountinfo, const char *override, char **ret_path,
                                  tv_limits_error *err);

/* Make io.max exist in `path`: write "+io" into cgroup.subtree_control of
 * every cgroup from the root of the v2 mount that holds `path` down to
 * path's parent, skipping those that already list io (idempotent; logs one
 * info line per cgroup changed). On a v1 blkio mount there is nothing to
 * enable: returns 0. Returns 0; -ENOENT when `path` does not exist;
 * -EINVAL when it is not inside a cgroup mount; -EOPNOTSUPP when the io
 * controller is not available in a cgroup on the way (err names it and what
 * its cgroup.controllers offers; typically a hybrid host with blkio bound
 * to v1); -EBUSY when the kernel refuses because that cgroup has processes
 * of its own (the "no internal processes" rule); another negative errno. */
int tv_cgroup_enable_io(const char *path, tv_limits_error *err);

/* The same, with the given mountinfo text (for tests). */
int tv_cgroup_enable_io_in(const char *mountinfo, const char *path, tv_limits_error *err);

/* Find the mount point of the first mount in mountinfo `text` of `version`
 * (v2: file system type cgroup2; v1: type cgroup with blkio among its super
 * options), octal escapes (\040 ...) decoded. Returns 0 and a heap string
 * in *ret_mount_point; -ENOENT when there is none; -EBADMSG for a malformed
 * line; -ENOMEM. Pure. */
int tv_cgroup_parse_mountinfo(const char *text, tv_cgroup_version version,
                              char **ret_mount_point);

#endif
