/* The volume layer's side effects: running lvm2, asking device-mapper,
 * loop devices for the demo pool, and the pool and thin LV verbs built on
 * them. The pure parts (names, tags, report parsing, stderr classification)
 * live in name.c, tag.c, report.c and errmap.c. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/loop.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libdevmapper.h>

#include "thinvault/lvm.h"

/* thin-pool metadata blocks are always 4 KiB (dm-thin-metadata.h). */
#define THIN_METADATA_BLOCK_BYTES 4096u
#define SECTOR_BYTES 512u
#define LOOP_POOL_MIN_BYTES (64u << 20)

struct tv_pool {
        char *vg;
        char *pool;
        uint64_t extent_bytes;
        _Atomic int timeout_ms;
        _Atomic unsigned guard_data_percent;
        _Atomic unsigned guard_overprovision_percent;
        _Atomic unsigned guard_metadata_percent;
        pthread_mutex_t lock; /* recursive; see tv_pool_lock() */
        _Atomic pid_t owner;  /* the thread holding `lock`, 0 if none */
        unsigned depth;       /* its recursion depth; the holder's alone */
        tv_lvs_share *share;  /* the VG listing readers share (lvm.h) */
};

/* ---- errors ---------------------------------------------------------------- */

static void err_clear(tv_lvm_error *err) {
        if (err) {
                err->message[0] = '\0';
                err->lvm_line[0] = '\0';
        }
}

/* Fill err->message and return r, so `return set_err(err, -EINVAL, ...)`. */
_printf_(3, 4) static int set_err(tv_lvm_error *err, int r, const char *fmt, ...) {
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                (void)vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
        }
        return r;
}

static const char *fmt_bytes(uint64_t b, char *buf, size_t size) {
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = (double)b;
        size_t u = 0;
        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        if (u == 0)
                (void)snprintf(buf, size, "%" PRIu64 " B", b);
        else
                (void)snprintf(buf, size, "%.2f %s", v, units[u]);
        return buf;
}

/* ---- argv ------------------------------------------------------------------ */

typedef struct {
        char **v;
        size_t n, cap;
        bool oom;
} strv;

static void strv_add(strv *s, const char *arg) {
        if (s->oom)
                return;
        if (s->n + 2 > s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 16;
                char **v = realloc(s->v, cap * sizeof(*v));
                if (!v) {
                        s->oom = true;
                        return;
                }
                s->v = v;
                s->cap = cap;
        }
        if (!(s->v[s->n] = strdup(arg))) {
                s->oom = true;
                return;
        }
        s->v[++s->n] = NULL;
}

_printf_(2, 3) static void strv_addf(strv *s, const char *fmt, ...) {
        va_list ap;
        char *a = NULL;
        va_start(ap, fmt);
        if (vasprintf(&a, fmt, ap) < 0)
                a = NULL;
        va_end(ap);
        if (!a) {
                s->oom = true;
                return;
        }
        strv_add(s, a);
        free(a);
}

static void strv_done(strv *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
        *s = (strv){0};
}

/* "lvm <cmd> --config TV_LVM_CONFIG": the lvm binary runs every command, so
 * one PATH lookup decides whether lvm2 is installed. */
static void lvm_argv(strv *s, const char *cmd) {
        strv_add(s, "lvm");
        strv_add(s, cmd);
        strv_add(s, "--config");
        strv_add(s, TV_LVM_CONFIG);
}

/* Add `opt` TAG for each tag (checked with check_tags() before). */
static int add_tag_args(strv *s, const char *opt, const tv_lvm_tag *tags, size_t n) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *tag = NULL;
                int r = tv_lvm_tag_encode(tags[i].key, tags[i].value, &tag);
                if (r < 0)
                        return r;
                strv_add(s, opt);
                strv_add(s, tag);
        }
        return 0;
}

/* Every tag encodable and no key twice (lvm2 would keep both values). */
static int check_tags(const tv_lvm_tag *tags, size_t n, const char *what, tv_lvm_error *err) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *tag = NULL;
                int r = tv_lvm_tag_encode(tags[i].key, tags[i].value, &tag);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return set_err(err, r,
                                       "%s: tag \"%.64s\" is not valid: keys are [a-z0-9._-] (up "
                                       "to 64), and the encoded tag must fit in %d bytes",
                                       what, tags[i].key ? tags[i].key : "(null)", TV_LVM_TAG_MAX);
                for (size_t k = 0; k < i; k++)
                        if (strcmp(tags[k].key, tags[i].key) == 0)
                                return set_err(err, -EINVAL, "%s: tag key \"%s\" is given twice",
                                               what, tags[i].key);
        }
        return 0;
}

/* ---- running lvm2 ---------------------------------------------------------- */

static int pool_timeout(const tv_pool *p) {
        return p ? atomic_load(&((tv_pool *)p)->timeout_ms) : TV_LVM_TIMEOUT_MS_DEFAULT;
}

/* Run the lvm2 command in `argv` for `what` (e.g. "create volume vg/lv").
 * On success returns 0 and, if ret_out, its stdout. On failure returns the
 * classified errno, fills err and logs the lvm2 line. */
static int lvm_exec(int timeout_ms, const char *what, strv *argv, char **ret_out,
                    tv_lvm_error *err) {
        _cleanup_free_ char *out = NULL, *errtxt = NULL;
        char qwhat[256], qline[512];
        uint64_t t0 = tv_now_ms();
        int r;

        if (argv->oom || argv->n < 2)
                return -ENOMEM;
        r = tv_exec((const char *const *)argv->v, timeout_ms, &out, &errtxt);
        uint64_t ms = tv_now_ms() - t0;
        (void)tv_log_quote(what, qwhat, sizeof(qwhat));

        if (r == -ETIMEDOUT) {
                log_warn("lvm2 timed out", "cmd=%s what=%s timeout_ms=%d", argv->v[1], qwhat,
                         timeout_ms);
                return set_err(err, r,
                               "%s: lvm2 %s did not finish within %d ms and was killed; "
                               "check for a hung device or a held VG lock (lvm2 commits "
                               "metadata atomically: retry to see whether it happened)",
                               what, argv->v[1], timeout_ms);
        }
        if (r == -ENOENT)
                return set_err(err, -ENOEXEC, "%s: lvm2 is not installed (no \"lvm\" in PATH)",
                               what);
        if (r < 0)
                return set_err(err, r, "%s: cannot run lvm2 %s: %s", what, argv->v[1],
                               strerror(-r));
        if (r > 0) {
                char line[sizeof(err->lvm_line)];
                int e = tv_lvm_errno_from_stderr(r, errtxt, line, sizeof(line));

                if (err)
                        memcpy(err->lvm_line, line, sizeof(line));
                if (e == -ENOENT || e == -EEXIST)
                        log_debug("lvm2 failed", "cmd=%s what=%s status=%d ms=%" PRIu64 " stderr=%s",
                                  argv->v[1], qwhat, r, ms,
                                  tv_log_quote(line, qline, sizeof(qline)));
                else
                        log_warn("lvm2 failed", "cmd=%s what=%s status=%d ms=%" PRIu64 " stderr=%s",
                                 argv->v[1], qwhat, r, ms, tv_log_quote(line, qline, sizeof(qline)));
                if (!*line)
                        return set_err(err, e, "%s: lvm2 %s failed with status %d and said nothing",
                                       what, argv->v[1], r);
                return set_err(err, e, "%s: %s", what, line);
        }
        log_debug("lvm2 done", "cmd=%s what=%s ms=%" PRIu64, argv->v[1], qwhat, ms);
        if (ret_out)
                *ret_out = TAKE_PTR(out);
        return 0;
}

/* Run lvs for one LV (`lv` set) or the whole VG; its JSON in *ret_out. */
static int lvs_exec(int timeout_ms, const char *what, const char *vg, const char *lv, char **ret_out,
                    tv_lvm_error *err) {
        _cleanup_(strv_done) strv argv = {0};

        lvm_argv(&argv, "lvs");
        strv_add(&argv, "--reportformat");
        strv_add(&argv, "json");
        strv_add(&argv, "--units");
        strv_add(&argv, "b");
        strv_add(&argv, "--nosuffix");
        strv_add(&argv, "-o");
        strv_add(&argv, TV_LVM_LVS_FIELDS);
        if (lv)
                strv_addf(&argv, "%s/%s", vg, lv);
        else
                strv_add(&argv, vg);
        return lvm_exec(timeout_ms, what, &argv, ret_out, err);
}

/* Start err's message with "WHAT: "; returns r. */
static int err_prefix(tv_lvm_error *err, int r, const char *what) {
        if (err) {
                char m[sizeof(err->message)];
                memcpy(m, err->message, sizeof(m));
                (void)set_err(err, r, "%s: %s", what, m);
        }
        return r;
}

/* Parse lvs output for `what`; `only_pool` as in tv_lvm_parse_lvs_json(). */
static int lvs_parse(const char *out, const char *what, const char *only_pool, tv_lv_list **ret_list,
                     tv_lvm_error *err) {
        int r = tv_lvm_parse_lvs_json(out, only_pool, ret_list, err);
        return r == -EBADMSG ? err_prefix(err, r, what) : r;
}

/* lvs for one LV (`lv` set) or the whole VG, parsed, without a pool handle
 * (opening or making one). */
static int lvs_query(const char *what, const char *vg, const char *lv, tv_lv_list **ret_list,
                     tv_lvm_error *err) {
        _cleanup_free_ char *out = NULL;
        int r = lvs_exec(TV_LVM_TIMEOUT_MS_DEFAULT, what, vg, lv, &out, err);
        if (r < 0)
                return r;
        return lvs_parse(out, what, NULL, ret_list, err);
}

static bool pool_held(const tv_pool *p);

/* The whole VG, from the listing readers share (tv_lvs_share_get()). */
static int pool_listing(tv_pool *p, const char *what, const char *only_pool, tv_lv_list **ret_list,
                        tv_lvm_error *err) {
        _cleanup_free_ char *out = NULL;
        int r = tv_lvs_share_get(p->share, pool_held(p), &out, err);
        if (r < 0)
                return err_prefix(err, r, what);
        return lvs_parse(out, what, only_pool, ret_list, err);
}

/* tv_lvs_run_fn of a pool's share. */
static int pool_list_run(void *ctx, char **ret_out, tv_lvm_error *err) {
        tv_pool *p = ctx;
        char what[300];

        (void)snprintf(what, sizeof(what), "list volume group %s", p->vg);
        return lvs_exec(pool_timeout(p), what, p->vg, NULL, ret_out, err);
}

/* ---- device-mapper --------------------------------------------------------- */

/* Calls into libdevmapper go one at a time, process-wide, with its control
 * fd held open (tv_dm_lock() in lvm.h says why). They are short ioctls. */
static void dm_task_destroyp(struct dm_task **t) {
        if (*t)
                dm_task_destroy(*t);
}
static void dm_pool_destroyp(struct dm_pool **m) {
        if (*m)
                dm_pool_destroy(*m);
}

typedef struct {
        bool exists;
        struct dm_info info;
        char target[32];
        char *params; /* heap; first target's status or table line */
} dm_state;

static void dm_state_done(dm_state *s) {
        free(s->params);
        s->params = NULL;
}

/* The device-mapper name lvm2 gives vg/lv (and its `layer`): '-' doubled. */
static char *dm_name_of(const char *vg, const char *lv, const char *layer) {
        _cleanup_(dm_pool_destroyp) struct dm_pool *mem = dm_pool_create("tv-dmname", 256);
        if (!mem)
                return NULL;
        const char *n = dm_build_dm_name(mem, vg, lv, layer);
        return n ? strdup(n) : NULL;
}

/* One DM_DEVICE_STATUS or DM_DEVICE_TABLE request for device `name`. A
 * device that does not exist is not an error (exists = false). */
static int dm_query(const char *name, int task, dm_state *ret) {
        _cleanup_(tv_dm_unlockp) pthread_mutex_t *locked = NULL;
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;
        dm_state st = {0};
        uint64_t start, length;
        char *type = NULL, *params = NULL;

        locked = tv_dm_lock();
        dmt = dm_task_create(task);
        if (!dmt)
                return -ENOMEM;
        if (!dm_task_set_name(dmt, name))
                return -EINVAL;
        if (!dm_task_run(dmt)) {
                int e = dm_task_get_errno(dmt);
                return e > 0 ? -e : -EIO;
        }
        if (!dm_task_get_info(dmt, &st.info))
                return -EIO;
        st.exists = st.info.exists;
        if (st.exists) {
                (void)dm_get_next_target(dmt, NULL, &start, &length, &type, &params);
                if (type)
                        (void)snprintf(st.target, sizeof(st.target), "%s", type);
                if (!(st.params = strdup(params ? params : "")))
                        return -ENOMEM;
        }
        *ret = st;
        return 0;
}

/* ---- the pool handle --------------------------------------------------------- */

static int pool_new(const char *vg, const char *pool, uint64_t extent_bytes, tv_pool **ret) {
        pthread_mutexattr_t attr;
        tv_pool *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        p->vg = strdup(vg);
        p->pool = strdup(pool);
        if (!p->vg || !p->pool) {
                free(p->vg);
                free(p->pool);
                free(p);
                return -ENOMEM;
        }
        p->extent_bytes = extent_bytes;
        atomic_init(&p->timeout_ms, TV_LVM_TIMEOUT_MS_DEFAULT);
        atomic_init(&p->guard_data_percent, 0u);
        atomic_init(&p->guard_overprovision_percent, 0u);
        atomic_init(&p->guard_metadata_percent, 0u);
        (void)pthread_mutexattr_init(&attr);
        (void)pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        (void)pthread_mutex_init(&p->lock, &attr);
        (void)pthread_mutexattr_destroy(&attr);
        atomic_init(&p->owner, 0);
        if (tv_lvs_share_new(pool_list_run, p, &p->share) < 0) {
                tv_pool_free(p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

void tv_pool_free(tv_pool *p) {
        if (!p)
                return;
        tv_lvs_share_free(p->share);
        (void)pthread_mutex_destroy(&p->lock);
        free(p->vg);
        free(p->pool);
        free(p);
}

const char *tv_pool_vg(const tv_pool *p) {
        return p->vg;
}
const char *tv_pool_thin_pool(const tv_pool *p) {
        return p->pool;
}
uint64_t tv_pool_extent_bytes(const tv_pool *p) {
        return p->extent_bytes;
}

void tv_pool_set_timeout(tv_pool *p, int timeout_ms) {
        if (timeout_ms > 0)
                atomic_store(&p->timeout_ms, timeout_ms);
}

void tv_pool_set_guard(tv_pool *p, unsigned max_data_percent, unsigned max_metadata_percent,
                       unsigned max_overprovision_percent) {
        atomic_store(&p->guard_data_percent, max_data_percent);
        atomic_store(&p->guard_metadata_percent, max_metadata_percent);
        atomic_store(&p->guard_overprovision_percent, max_overprovision_percent);
}

/* Taking the lock (not re-taking it) starts a section in which a listing
 * started after this point may be reused (tv_lvs_share_get()). */
tv_pool *tv_pool_lock(tv_pool *p) {
        (void)pthread_mutex_lock(&p->lock);
        if (p->depth++ == 0) {
                atomic_store(&p->owner, gettid());
                tv_lvs_share_invalidate(p->share);
        }
        return p;
}

void tv_pool_unlock(tv_pool *p) {
        if (--p->depth == 0)
                atomic_store(&p->owner, 0);
        (void)pthread_mutex_unlock(&p->lock);
}

static bool pool_held(const tv_pool *p) {
        return atomic_load(&((tv_pool *)p)->owner) == gettid();
}

/* Run an lvm2 command that changes metadata. A listing that overlaps it is
 * stale for a lock holder (tv_lvs_share_invalidate() before and after). */
static int lvm_write(tv_pool *p, const char *what, strv *argv, tv_lvm_error *err) {
        tv_lvs_share_invalidate(p->share);
        int r = lvm_exec(pool_timeout(p), what, argv, NULL, err);
        tv_lvs_share_invalidate(p->share);
        return r;
}

static int check_names(const char *vg, const char *lv, tv_lvm_error *err) {
        if (!tv_lvm_name_valid(vg))
                return set_err(err, -EINVAL, "\"%.128s\" is not a valid volume group name",
                               vg ? vg : "(null)");
        if (lv && !tv_lvm_name_valid(lv))
                return set_err(err, -EINVAL, "\"%.128s\" is not a valid logical volume name", lv);
        return 0;
}

int tv_pool_open(const char *vg, const char *thin_pool, tv_pool **ret_pool, tv_lvm_error *err) {
        /* The first tv_dm_lock() holds libdevmapper's control fd open:
         * take it here, before the server's threads start. */
        pthread_mutex_t *dm = tv_dm_lock();
        tv_dm_unlockp(&dm);
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = NULL;
        char what[300];
        tv_vg_info vi;
        int r;

        err_clear(err);
        if (!thin_pool)
                return set_err(err, -EINVAL, "no thin pool name given");
        r = check_names(vg, thin_pool, err);
        if (r < 0)
                return r;
        (void)snprintf(what, sizeof(what), "open thin pool %s/%s", vg, thin_pool);
        r = lvs_query(what, vg, thin_pool, &l, err);
        if (r < 0)
                return r;
        const tv_lv *lv = tv_lv_list_get(l, 0);
        if (!lv)
                return set_err(err, -ENOENT, "%s: lvm2 reported no such LV", what);
        if (strcmp(tv_lv_segtype(lv), "thin-pool") != 0)
                return set_err(err, -EINVAL, "%s: it is a %s LV, not a thin pool", what,
                               tv_lv_segtype(lv));
        if (tv_lv_list_vg_info(l, &vi) < 0 || vi.extent_bytes == 0 ||
            vi.extent_bytes % SECTOR_BYTES != 0)
                return set_err(err, -EBADMSG, "%s: lvm2 reported no usable extent size", what);

        tv_pool *p;
        r = pool_new(vg, thin_pool, vi.extent_bytes, &p);
        if (r < 0)
                return r;
        log_debug("thin pool opened", "vg=%s pool=%s extent=%" PRIu64, vg, thin_pool,
                  vi.extent_bytes);
        *ret_pool = p;
        return 0;
}

/* ---- pool status ------------------------------------------------------------- */

/* The kernel device holding the thin-pool target: "VG-POOL-tpool" once thin
 * LVs exist (lvm2 then puts a linear "VG-POOL" on top), else "VG-POOL". */
static int pool_dm(const tv_pool *p, dm_state *ret_status, char **ret_name) {
        static const char *const layers[] = {"tpool", NULL};

        for (size_t i = 0; i < ELEMENTSOF(layers); i++) {
                _cleanup_free_ char *name = dm_name_of(p->vg, p->pool, layers[i]);
                dm_state st = {0};
                int r;

                if (!name)
                        return -ENOMEM;
                r = dm_query(name, DM_DEVICE_STATUS, &st);
                if (r < 0)
                        return r;
                if (st.exists && strcmp(st.target, "thin-pool") == 0) {
                        *ret_status = st;
                        *ret_name = TAKE_PTR(name);
                        return 0;
                }
                dm_state_done(&st);
        }
        return -ENXIO;
}

/* One read of kernel_status(): -EAGAIN (err untouched) when the device
 * that held the thin-pool target at the STATUS read no longer does at the
 * TABLE read. */
static int kernel_status_once(tv_pool *p, const char *what, tv_pool_status *s, tv_lvm_error *err) {
        _cleanup_(dm_state_done) dm_state st = {0}, table = {0};
        _cleanup_(dm_pool_destroyp) struct dm_pool *mem = NULL;
        _cleanup_free_ char *dmname = NULL;
        struct dm_status_thin_pool *tp = NULL;
        uint64_t block_sectors = 0;
        int r;

        r = pool_dm(p, &st, &dmname);
        if (r == -ENXIO)
                return r;
        if (r < 0)
                return set_err(err, r, "%s: device-mapper status of thin pool %s/%s failed: %s", what, p->vg,
                               p->pool, strerror(-r));
        mem = dm_pool_create("tv-status", 1024);
        if (!mem)
                return set_err(err, -ENOMEM, "%s: out of memory parsing the thin-pool status", what);
        if (!dm_get_status_thin_pool(mem, st.params, &tp))
                return set_err(err, -EIO, "%s: cannot parse thin-pool status \"%.100s\"", what,
                               st.params);
        /* Table: <meta dev> <data dev> <data block size (sectors)> <low water> ... */
        r = dm_query(dmname, DM_DEVICE_TABLE, &table);
        if (r == -ENXIO || (r == 0 && (!table.exists || strcmp(table.target, "thin-pool") != 0)))
                return -EAGAIN;
        if (r < 0)
                return set_err(err, r, "%s: device-mapper table of %s failed: %s", what, dmname, strerror(-r));
        if (sscanf(table.params, "%*s %*s %" SCNu64, &block_sectors) != 1 || block_sectors == 0)
                return set_err(err, -EIO, "%s: cannot read the data block size from \"%.100s\"",
                               what, table.params);

        s->chunk_bytes = block_sectors * SECTOR_BYTES;
        s->data_total_bytes = tp->total_data_blocks * s->chunk_bytes;
        s->data_used_bytes = tp->used_data_blocks * s->chunk_bytes;
        s->metadata_total_bytes = tp->total_metadata_blocks * THIN_METADATA_BLOCK_BYTES;
        s->metadata_used_bytes = tp->used_metadata_blocks * THIN_METADATA_BLOCK_BYTES;
        s->transaction_id = tp->transaction_id;
        s->read_only = tp->read_only;
        s->needs_check = tp->needs_check;
        s->out_of_data_space = tp->out_of_data_space;
        s->failed = tp->fail || tp->error;
        s->error_if_no_space = tp->error_if_no_space;
        s->out_of_metadata_space = (s->read_only || s->needs_check) &&
                                   tv_pool_metadata_exhausted(s->metadata_used_bytes, s->metadata_total_bytes);
        s->healthy = !s->read_only && !s->needs_check && !s->out_of_data_space && !s->failed;
        return 0;
}

/* The kernel's half of tv_pool_status (data and metadata space, chunk size,
 * health flags) from the thin-pool target's status and table: libdevmapper
 * only, no lvm2 process. -ENXIO (err untouched) when the pool is not
 * active. lvm2 moves the target from VG-POOL to VG-POOL-tpool when the
 * pool's first thin LV is made, and back when its last goes; a read that
 * straddles that move is made again. */
#define KERNEL_STATUS_TRIES 3
static int kernel_status(tv_pool *p, const char *what, tv_pool_status *s, tv_lvm_error *err) {
        int r = -EAGAIN;

        for (int i = 0; i < KERNEL_STATUS_TRIES && r == -EAGAIN; i++)
                r = kernel_status_once(p, what, s, err);
        if (r == -EAGAIN)
                return set_err(err, -EAGAIN, "%s: the thin-pool device of %s/%s changed under %d reads in a row", what,
                               p->vg, p->pool, KERNEL_STATUS_TRIES);
        return r;
}

static int set_err_inactive(const tv_pool *p, const char *what, tv_lvm_error *err) {
        return set_err(err, -ENXIO,
                       "%s: the pool is not active (no thin-pool device in the kernel); "
                       "activate it with lvchange -ay %s/%s",
                       what, p->vg, p->pool);
}

/* The pool's status from `l`, a listing of its whole VG, and the kernel. */
static int status_of(tv_pool *p, const tv_lv_list *l, const char *what, tv_pool_status *ret_status,
                     tv_lvm_error *err) {
        tv_pool_status s = {0};
        tv_vg_info vi;
        bool found = false;
        int r;

        for (size_t i = 0; i < tv_lv_list_size(l); i++) {
                const tv_lv *lv = tv_lv_list_get(l, i);
                if (strcmp(tv_lv_name(lv), p->pool) == 0 &&
                    strcmp(tv_lv_segtype(lv), "thin-pool") == 0)
                        found = true;
                else if (strcmp(tv_lv_segtype(lv), "thin") == 0 && tv_lv_pool(lv) &&
                         strcmp(tv_lv_pool(lv), p->pool) == 0) {
                        s.thin_virtual_bytes += tv_lv_size(lv);
                        s.n_thin++;
                }
        }
        if (!found)
                return set_err(err, -ENOENT, "%s: volume group %s has no thin pool %s", what, p->vg,
                               p->pool);
        if (tv_lv_list_vg_info(l, &vi) == 0) {
                s.extent_bytes = vi.extent_bytes;
                s.vg_size_bytes = vi.size_bytes;
                s.vg_free_bytes = vi.free_bytes;
        }
        r = kernel_status(p, what, &s, err);
        if (r == -ENXIO)
                return set_err_inactive(p, what, err);
        if (r < 0)
                return r;
        *ret_status = s;
        return 0;
}

int tv_pool_get_status_list(tv_pool *p, tv_pool_status *ret_status, tv_lv_list **ret_list,
                            tv_lvm_error *err) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = NULL;
        tv_pool_status s;
        char what[300];
        int r;

        err_clear(err);
        (void)snprintf(what, sizeof(what), "status of thin pool %s/%s", p->vg, p->pool);
        r = pool_listing(p, what, NULL, &l, err);
        if (r < 0)
                return r;
        r = status_of(p, l, what, &s, err);
        if (r < 0)
                return r;
        if (ret_list) {
                tv_lv_list_keep_pool(l, p->pool);
                *ret_list = TAKE_PTR(l);
        }
        *ret_status = s;
        return 0;
}

int tv_pool_get_status(tv_pool *p, tv_pool_status *ret_status, tv_lvm_error *err) {
        return tv_pool_get_status_list(p, ret_status, NULL, err);
}

int tv_pool_probe(tv_pool *p, bool *ret_ready, tv_lvm_error *err) {
        tv_pool_status s;
        char why[400];
        int r = tv_pool_get_status(p, &s, err);
        if (r < 0)
                return r;
        if (!s.healthy)
                (void)set_err(err, 0, "thin pool %s/%s is not healthy: %s", p->vg, p->pool,
                              tv_pool_health_text(&s, p->vg, p->pool, why, sizeof(why)));
        *ret_ready = s.healthy;
        return 0;
}

/* The kernel's word on the pool's health, from kernel_status(): 0 when it
 * can take new thin LVs or space; -ENOSPC when it is out of data space;
 * -EROFS when it failed, its metadata went read-only or it needs a check
 * (after an I/O error on its data or metadata device, or metadata running
 * out): lvm2 would fail or hang on it, so refuse first, saying what an
 * admin must do (tv_pool_health_text(): extending the metadata for a pool
 * out of metadata space, a repair for the others). */
static int kernel_health(const tv_pool *p, const tv_pool_status *s, const char *what, tv_lvm_error *err) {
        char why[400];

        if (s->failed || s->read_only || s->needs_check)
                return set_err(err, -EROFS,
                               "%s: thin pool %s/%s is %s; the kernel stopped allocating in it, so new space "
                               "is refused until then",
                               what, p->vg, p->pool, tv_pool_health_text(s, p->vg, p->pool, why, sizeof(why)));
        if (s->out_of_data_space)
                return set_err(err, -ENOSPC, "%s: thin pool %s/%s is out of data space", what, p->vg, p->pool);
        return 0;
}

/* Refuse new space the guard does not allow (tv_pool_set_guard()). Called
 * with the pool lock held. `add_virtual` is the growth of the sum of thin
 * LV sizes; `overprovision` false skips that check (snapshots). Health and
 * the fill thresholds need only the kernel (no lvm2 process); the
 * overprovision limit needs the sum of the LV sizes: one lvs. A pool that
 * is not active is lvm2's to activate when no threshold is set. */
static int guard_check(tv_pool *p, uint64_t add_virtual, bool overprovision, const char *what,
                       tv_lvm_error *err) {
        unsigned max_data = atomic_load(&p->guard_data_percent);
        unsigned max_meta = atomic_load(&p->guard_metadata_percent);
        unsigned max_over = overprovision ? atomic_load(&p->guard_overprovision_percent) : 0;
        char a[32], b[32];
        tv_pool_status s = {0};
        int r;

        r = kernel_status(p, what, &s, err);
        if (r == -ENXIO)
                return max_data || max_meta || max_over ? set_err_inactive(p, what, err) : 0;
        if (r < 0)
                return r;
        r = kernel_health(p, &s, what, err);
        if (r < 0)
                return r;
        if (max_data && s.data_total_bytes &&
            (unsigned __int128)s.data_used_bytes * 100 >=
                    (unsigned __int128)max_data * s.data_total_bytes)
                return set_err(err, -ENOSPC,
                               "%s: thin pool %s/%s is %u%% full (%s of %s); new space is refused "
                               "from %u%%: free or extend the pool",
                               what, p->vg, p->pool,
                               (unsigned)(s.data_used_bytes * 100 / s.data_total_bytes),
                               fmt_bytes(s.data_used_bytes, a, sizeof(a)),
                               fmt_bytes(s.data_total_bytes, b, sizeof(b)), max_data);
        if (max_meta && s.metadata_total_bytes &&
            (unsigned __int128)s.metadata_used_bytes * 100 >=
                    (unsigned __int128)max_meta * s.metadata_total_bytes)
                return set_err(err, -ENOSPC,
                               "%s: thin pool %s/%s metadata is %u%% full (%s of %s); new space is "
                               "refused from %u%%: extend the pool's metadata (lvextend --poolmetadatasize)",
                               what, p->vg, p->pool,
                               (unsigned)(s.metadata_used_bytes * 100 / s.metadata_total_bytes),
                               fmt_bytes(s.metadata_used_bytes, a, sizeof(a)),
                               fmt_bytes(s.metadata_total_bytes, b, sizeof(b)), max_meta);
        if (!max_over)
                return 0;
        r = tv_pool_get_status(p, &s, err);
        if (r < 0)
                return r;
        if ((unsigned __int128)(s.thin_virtual_bytes + add_virtual) * 100 >
            (unsigned __int128)max_over * s.data_total_bytes)
                return set_err(err, -ENOSPC,
                               "%s: thin volumes in pool %s/%s would total %s, over the %u%% "
                               "overprovisioning limit of its %s",
                               what, p->vg, p->pool,
                               fmt_bytes(s.thin_virtual_bytes + add_virtual, a, sizeof(a)), max_over,
                               fmt_bytes(s.data_total_bytes, b, sizeof(b)));
        return 0;
}

/* ---- LV helpers ---------------------------------------------------------------- */

static bool is_pool_thin(const tv_pool *p, const tv_lv *lv) {
        return strcmp(tv_lv_segtype(lv), "thin") == 0 && tv_lv_pool(lv) &&
               strcmp(tv_lv_pool(lv), p->pool) == 0;
}

/* Any LV named `name` in the VG. -ENOENT if there is none. `what` (NULL:
 * "look up volume VG/NAME") starts the error message. */
static int lookup_any(tv_pool *p, const char *name, const char *what, tv_lv **ret_lv,
                      tv_lvm_error *err) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = NULL;
        char dflt[300];
        int r;

        if (!what) {
                (void)snprintf(dflt, sizeof(dflt), "look up volume %s/%s", p->vg, name);
                what = dflt;
        }
        r = pool_listing(p, what, NULL, &l, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < tv_lv_list_size(l); i++)
                if (strcmp(tv_lv_name(tv_lv_list_get(l, i)), name) == 0)
                        return tv_lv_list_take(l, i, ret_lv);
        return set_err(err, -ENOENT, "%s: no such logical volume", what);
}

/* A thin LV of this pool named `name`; anything else is -ENOENT. */
static int lookup_thin(tv_pool *p, const char *name, const char *what, tv_lv **ret_lv,
                       tv_lvm_error *err) {
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        int r = lookup_any(p, name, what, &lv, err);
        if (r < 0)
                return r;
        if (!is_pool_thin(p, lv))
                return set_err(err, -ENOENT,
                               "%s%s%s/%s is not a thin volume of pool %s/%s (it is a %s LV)",
                               what ? what : "", what ? ": " : "", p->vg, name, p->vg, p->pool,
                               tv_lv_segtype(lv));
        *ret_lv = TAKE_PTR(lv);
        return 0;
}

static int round_size(const tv_pool *p, uint64_t size, const char *what, uint64_t *ret,
                      tv_lvm_error *err) {
        uint64_t e = p->extent_bytes;
        if (size == 0)
                return set_err(err, -EINVAL, "%s: size 0 is not valid", what);
        if (size > UINT64_MAX - (e - 1))
                return set_err(err, -EINVAL, "%s: size %" PRIu64 " is too large", what, size);
        *ret = (size + e - 1) / e * e;
        return 0;
}

static const char *find_tag(const tv_lvm_tag *tags, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (tags[i].key && strcmp(tags[i].key, key) == 0)
                        return tags[i].value;
        return NULL;
}

/* After lvm2 said "already exists": is the LV there the one asked for?
 * `size` 0 = any size; `origin` NULL = must have none. Returns 0 (and the
 * LV) or -EEXIST saying how it differs. */
static int match_existing(tv_pool *p, const char *name, uint64_t size, const char *origin,
                          const tv_lvm_tag *tags, size_t n_tags, tv_lv **ret_lv,
                          tv_lvm_error *err) {
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        const char *want_req = find_tag(tags, n_tags, TV_TAG_NAME), *have_req;
        char a[32], b[32];
        int r;

        r = lookup_any(p, name, NULL, &lv, err);
        if (r < 0)
                return r;
        err_clear(err);
        if (!is_pool_thin(p, lv))
                return set_err(err, -EEXIST, "%s/%s already exists and is a %s LV, not a volume",
                               p->vg, name, tv_lv_segtype(lv));
        if (size && tv_lv_size(lv) != size)
                return set_err(err, -EEXIST, "volume %s/%s already exists with size %s, not %s",
                               p->vg, name, fmt_bytes(tv_lv_size(lv), a, sizeof(a)),
                               fmt_bytes(size, b, sizeof(b)));
        have_req = tv_lv_tag(lv, TV_TAG_NAME);
        bool same_req = want_req && have_req && strcmp(want_req, have_req) == 0;
        if (want_req && !same_req)
                return set_err(err, -EEXIST,
                               "volume %s/%s already exists for request name \"%.100s\", "
                               "not \"%.100s\"",
                               p->vg, name, have_req ? have_req : "(none)", want_req);
        /* lvm2 forgets the origin once it is removed; then only the request
         * name can tell a retry of this clone/snapshot. */
        const char *have_origin = tv_lv_origin(lv);
        if (origin ? (have_origin ? strcmp(origin, have_origin) != 0 : !same_req) : !!have_origin)
                return set_err(err, -EEXIST, "volume %s/%s already exists with origin %s, not %s",
                               p->vg, name, have_origin ? have_origin : "(none)",
                               origin ? origin : "(none)");
        log_debug("volume already exists as requested", "vg=%s lv=%s", p->vg, name);
        if (ret_lv)
                *ret_lv = TAKE_PTR(lv);
        return 0;
}

/* The open count of vg/name's dm device; 0 if it is not active. */
static int open_count(const tv_pool *p, const char *name, int32_t *ret) {
        _cleanup_free_ char *dmname = dm_name_of(p->vg, name, NULL);
        _cleanup_(dm_state_done) dm_state st = {0};
        int r;

        if (!dmname)
                return -ENOMEM;
        r = dm_query(dmname, DM_DEVICE_INFO, &st);
        if (r < 0)
                return r;
        *ret = st.exists ? st.info.open_count : 0;
        return 0;
}

int tv_lv_wait_closed(tv_pool *p, const char *name, int32_t *ret_open_count, tv_lvm_error *err) {
        uint64_t t0 = tv_now_ms();
        int32_t opens = 0;
        int r;

        err_clear(err);
        r = check_names(p->vg, name, err);
        if (r < 0)
                return r;
        for (;;) {
                r = open_count(p, name, &opens);
                if (r < 0)
                        return set_err(err, r, "volume %s/%s: cannot read its device-mapper open count: %s", p->vg,
                                       name, strerror(-r));
                if (opens == 0 || tv_now_ms() - t0 >= TV_LV_SETTLE_MS)
                        break;
                (void)nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
        }
        if (opens > 0)
                log_debug("volume stays open", "vg=%s lv=%s open_count=%d ms=%" PRIu64, p->vg, name,
                          (int)opens, tv_now_ms() - t0);
        *ret_open_count = opens;
        return 0;
}

static int remove_lv(tv_pool *p, const char *name, const char *what, tv_lvm_error *err) {
        _cleanup_(strv_done) strv argv = {0};

        lvm_argv(&argv, "lvremove");
        strv_add(&argv, "--yes");
        /* A single -f skips the prompt only; lvm2 still refuses an open LV. */
        strv_add(&argv, "-f");
        strv_addf(&argv, "%s/%s", p->vg, name);
        return lvm_write(p, what, &argv, err);
}

static int extend_lv(tv_pool *p, const char *name, uint64_t size, const char *what,
                     tv_lvm_error *err) {
        _cleanup_(strv_done) strv argv = {0};

        lvm_argv(&argv, "lvextend");
        strv_add(&argv, "-L");
        strv_addf(&argv, "%" PRIu64 "b", size);
        strv_addf(&argv, "%s/%s", p->vg, name);
        return lvm_write(p, what, &argv, err);
}

/* ---- LV verbs ---------------------------------------------------------------------- */

int tv_lv_lookup(tv_pool *p, const char *name, tv_lv **ret_lv, tv_lvm_error *err) {
        err_clear(err);
        int r = check_names(p->vg, name, err);
        if (r < 0)
                return r;
        return lookup_thin(p, name, NULL, ret_lv, err);
}

int tv_pool_list_lvs(tv_pool *p, tv_lv_list **ret_list, tv_lvm_error *err) {
        char what[300];

        err_clear(err);
        (void)snprintf(what, sizeof(what), "list volumes of thin pool %s/%s", p->vg, p->pool);
        return pool_listing(p, what, p->pool, ret_list, err);
}

int tv_lv_create(tv_pool *p, const char *name, uint64_t size, const tv_lvm_tag *tags,
                 size_t n_tags, tv_lv **ret_lv, tv_lvm_error *err) {
        _cleanup_(strv_done) strv argv = {0};
        _cleanup_(tv_pool_unlockp) tv_pool *locked = NULL;
        uint64_t rounded, t0 = tv_now_ms();
        char what[300];
        int r;

        err_clear(err);
        r = check_names(p->vg, name, err);
        if (r < 0)
                return r;
        (void)snprintf(what, sizeof(what), "create volume %s/%s", p->vg, name);
        r = round_size(p, size, what, &rounded, err);
        if (r < 0)
                return r;

        lvm_argv(&argv, "lvcreate");
        strv_add(&argv, "--yes");
        strv_add(&argv, "--type");
        strv_add(&argv, "thin");
        strv_add(&argv, "-V");
        strv_addf(&argv, "%" PRIu64 "b", rounded);
        strv_add(&argv, "--thinpool");
        strv_add(&argv, p->pool);
        strv_add(&argv, "-n");
        strv_add(&argv, name);
        r = check_tags(tags, n_tags, what, err);
        if (r < 0)
                return r;
        r = add_tag_args(&argv, "--addtag", tags, n_tags);
        if (r < 0)
                return r;
        strv_add(&argv, p->vg);

        locked = tv_pool_lock(p);
        r = guard_check(p, rounded, true, what, err);
        if (r == -ENOSPC) {
                /* A retry of a create that already happened is not new space. */
                if (match_existing(p, name, rounded, NULL, tags, n_tags, ret_lv, NULL) == 0) {
                        err_clear(err);
                        return 0;
                }
                return r;
        }
        if (r < 0)
                return r;
        r = lvm_write(p, what, &argv, err);
        if (r == -EEXIST)
                return match_existing(p, name, rounded, NULL, tags, n_tags, ret_lv, err);
        if (r < 0)
                return r;
        log_info("thin volume created", "vg=%s lv=%s size=%" PRIu64 " ms=%" PRIu64, p->vg, name,
                 rounded, tv_now_ms() - t0);
        tv_pool_unlock(TAKE_PTR(locked)); /* the read-back is a read */
        return ret_lv ? lookup_thin(p, name, NULL, ret_lv, err) : 0;
}

/* Is vg/name active in the kernel as a thin device of this pool? 1 if so
 * (its table is "thin MAJ:MIN ID" with MAJ:MIN the pool's thin-pool
 * device), 0 if it is not active or is anything else. libdevmapper only. */
static int kernel_pool_thin(tv_pool *p, const char *name) {
        _cleanup_(dm_state_done) dm_state pool = {0}, thin = {0};
        _cleanup_free_ char *pool_name = NULL, *dmname = dm_name_of(p->vg, name, NULL);
        unsigned maj, min;
        int r;

        if (!dmname)
                return -ENOMEM;
        r = dm_query(dmname, DM_DEVICE_TABLE, &thin);
        if (r == -ENXIO) /* not active: a table query fails rather than saying so */
                return 0;
        if (r < 0)
                return r;
        if (!thin.exists || strcmp(thin.target, "thin") != 0 ||
            sscanf(thin.params, "%u:%u", &maj, &min) != 2)
                return 0;
        r = pool_dm(p, &pool, &pool_name);
        if (r == -ENXIO)
                return 0;
        if (r < 0)
                return r;
        return pool.info.major == maj && pool.info.minor == min;
}

/* Before lvremove, with the pool lock held: vg/name must be a thin LV of
 * this pool, never the pool, its sub-LVs or another LV. The kernel answers
 * for an active LV (no lvm2 process under the lock); an inactive one or
 * anything else is asked of lvm2, which also words the refusal. */
static int check_deletable(tv_pool *p, const char *name, const char *what, tv_lvm_error *err) {
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        int r = kernel_pool_thin(p, name);

        if (r > 0)
                return 0;
        if (r < 0)
                log_debug("device-mapper check of volume failed, asking lvm2", "vg=%s lv=%s errno=%d", p->vg,
                          name, r);
        return lookup_thin(p, name, what, &lv, err);
}

int tv_lv_delete(tv_pool *p, const char *name, tv_lvm_error *err) {
        _cleanup_(tv_pool_unlockp) tv_pool *locked = NULL;
        uint64_t t0 = tv_now_ms();
        int32_t opens = 0;
        char what[300];
        int r;

        err_clear(err);
        r = check_names(p->vg, name, err);
        if (r < 0)
                return r;
        (void)snprintf(what, sizeof(what), "delete volume %s/%s", p->vg, name);

        locked = tv_pool_lock(p);
        r = check_deletable(p, name, what, err);
        if (r < 0)
                return r;
        r = tv_lv_wait_closed(p, name, &opens, err);
        if (r < 0)
                return r;
        if (opens > 0)
                return set_err(err, -EBUSY,
                               "%s: the volume is open (device-mapper open count %d): unmount it "
                               "or close what maps it first",
                               what, (int)opens);
        r = remove_lv(p, name, what, err);
        if (r < 0)
                return r;
        log_info("thin volume deleted", "vg=%s lv=%s ms=%" PRIu64, p->vg, name, tv_now_ms() - t0);
        return 0;
}

int tv_lv_extend(tv_pool *p, const char *name, uint64_t new_size, uint64_t *ret_size,
                 tv_lvm_error *err) {
        _cleanup_(tv_pool_unlockp) tv_pool *locked = NULL;
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        uint64_t rounded, t0 = tv_now_ms();
        char what[300];
        int r;

        err_clear(err);
        r = check_names(p->vg, name, err);
        if (r < 0)
                return r;
        (void)snprintf(what, sizeof(what), "extend volume %s/%s", p->vg, name);
        r = round_size(p, new_size, what, &rounded, err);
        if (r < 0)
                return r;

        locked = tv_pool_lock(p);
        r = lookup_thin(p, name, what, &lv, err);
        if (r < 0)
                return r;
        if (tv_lv_size(lv) >= rounded) {
                if (ret_size)
                        *ret_size = tv_lv_size(lv);
                return 0;
        }
        r = guard_check(p, rounded - tv_lv_size(lv), true, what, err);
        if (r < 0)
                return r;
        r = extend_lv(p, name, rounded, what, err);
        if (r < 0)
                return r;
        log_info("thin volume extended", "vg=%s lv=%s from=%" PRIu64 " size=%" PRIu64 " ms=%" PRIu64,
                 p->vg, name, tv_lv_size(lv), rounded, tv_now_ms() - t0);
        if (ret_size)
                *ret_size = rounded;
        return 0;
}

/* lvcreate --snapshot of thin LV `origin` in this pool, active and not
 * skipped on activation. */
static int snapshot_argv(strv *argv, const tv_pool *p, const char *origin, const char *name,
                         bool read_only, const tv_lvm_tag *tags, size_t n_tags, const char *what,
                         tv_lvm_error *err) {
        int r = check_tags(tags, n_tags, what, err);
        if (r < 0)
                return r;
        lvm_argv(argv, "lvcreate");
        strv_add(argv, "--yes");
        strv_add(argv, "--snapshot");
        /* Thin snapshots are skipped on activation by default; ours must be
         * readable (and clonable) at once and after a reboot. */
        strv_add(argv, "--setactivationskip");
        strv_add(argv, "n");
        strv_add(argv, "--activate");
        strv_add(argv, "y");
        strv_add(argv, "--permission");
        strv_add(argv, read_only ? "r" : "rw");
        strv_add(argv, "-n");
        strv_add(argv, name);
        r = add_tag_args(argv, "--addtag", tags, n_tags);
        if (r < 0)
                return r;
        strv_addf(argv, "%s/%s", p->vg, origin);
        return 0;
}

int tv_lv_snapshot(tv_pool *p, const char *origin, const char *name, const tv_lvm_tag *tags,
                   size_t n_tags, tv_lv **ret_lv, tv_lvm_error *err) {
        _cleanup_(strv_done) strv argv = {0};
        _cleanup_(tv_pool_unlockp) tv_pool *locked = NULL;
        _cleanup_(tv_lv_freep) tv_lv *src = NULL;
        uint64_t t0 = tv_now_ms();
        char what[400];
        int r;

        err_clear(err);
        r = check_names(p->vg, origin, err);
        if (r < 0)
                return r;
        r = check_names(p->vg, name, err);
        if (r < 0)
                return r;
        (void)snprintf(what, sizeof(what), "snapshot volume %s/%s as %s", p->vg, origin, name);
        r = snapshot_argv(&argv, p, origin, name, true, tags, n_tags, what, err);
        if (r < 0)
                return r;

        locked = tv_pool_lock(p);
        r = lookup_thin(p, origin, what, &src, err);
        if (r < 0)
                return r;
        r = guard_check(p, 0, false, what, err);
        if (r == -ENOSPC && match_existing(p, name, 0, origin, tags, n_tags, ret_lv, NULL) == 0) {
                err_clear(err);
                return 0;
        }
        if (r < 0)
                return r;
        r = lvm_write(p, what, &argv, err);
        if (r == -EEXIST)
                return match_existing(p, name, 0, origin, tags, n_tags, ret_lv, err);
        if (r < 0)
                return r;
        log_info("thin snapshot created", "vg=%s lv=%s origin=%s ms=%" PRIu64, p->vg, name, origin,
                 tv_now_ms() - t0);
        tv_pool_unlock(TAKE_PTR(locked)); /* the read-back is a read */
        return ret_lv ? lookup_thin(p, name, NULL, ret_lv, err) : 0;
}

int tv_lv_clone(tv_pool *p, const char *source, const char *name, uint64_t size,
                const tv_lvm_tag *tags, size_t n_tags, tv_lv **ret_lv, tv_lvm_error *err) {
        _cleanup_(strv_done) strv argv = {0};
        _cleanup_(tv_pool_unlockp) tv_pool *locked = NULL;
        _cleanup_(tv_lv_freep) tv_lv *src = NULL;
        uint64_t target, t0 = tv_now_ms();
        char what[400], a[32], b[32];
        int r;

        err_clear(err);
        r = check_names(p->vg, source, err);
        if (r < 0)
                return r;
        r = check_names(p->vg, name, err);
        if (r < 0)
                return r;
        (void)snprintf(what, sizeof(what), "clone volume %s/%s as %s", p->vg, source, name);
        r = snapshot_argv(&argv, p, source, name, false, tags, n_tags, what, err);
        if (r < 0)
                return r;

        locked = tv_pool_lock(p);
        r = lookup_thin(p, source, what, &src, err);
        if (r < 0)
                return r;
        target = tv_lv_size(src);
        if (size) {
                r = round_size(p, size, what, &target, err);
                if (r < 0)
                        return r;
                if (target < tv_lv_size(src))
                        return set_err(err, -EINVAL, "%s: size %s is smaller than the source's %s",
                                       what, fmt_bytes(target, a, sizeof(a)),
                                       fmt_bytes(tv_lv_size(src), b, sizeof(b)));
        }
        r = guard_check(p, target, true, what, err);
        if (r == -ENOSPC &&
            match_existing(p, name, target, source, tags, n_tags, ret_lv, NULL) == 0) {
                err_clear(err);
                return 0;
        }
        if (r < 0)
                return r;
        r = lvm_write(p, what, &argv, err);
        if (r == -EEXIST)
                return match_existing(p, name, target, source, tags, n_tags, ret_lv, err);
        if (r < 0)
                return r;
        if (target > tv_lv_size(src)) {
                r = extend_lv(p, name, target, what, err);
                if (r < 0) {
                        /* Leave nothing half made: a retry starts clean. */
                        char rb[300];
                        (void)snprintf(rb, sizeof(rb), "roll back clone %s/%s", p->vg, name);
                        int k = remove_lv(p, name, rb, NULL);
                        if (k < 0)
                                log_warn("clone rollback failed", "vg=%s lv=%s errno=%d", p->vg,
                                         name, k);
                        return r;
                }
        }
        log_info("thin clone created", "vg=%s lv=%s source=%s size=%" PRIu64 " ms=%" PRIu64, p->vg,
                 name, source, target, tv_now_ms() - t0);
        tv_pool_unlock(TAKE_PTR(locked)); /* the read-back is a read */
        return ret_lv ? lookup_thin(p, name, NULL, ret_lv, err) : 0;
}

int tv_lv_set_tags(tv_pool *p, const char *name, const tv_lvm_tag *set, size_t n_set,
                   const char *const *del_keys, size_t n_del, tv_lvm_error *err) {
        _cleanup_(strv_done) strv argv = {0};
        _cleanup_(tv_pool_unlockp) tv_pool *locked = NULL;
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        const tv_lvm_tag *have;
        size_t n_have, n_changes = 0;
        char what[300];
        int r;

        err_clear(err);
        r = check_names(p->vg, name, err);
        if (r < 0)
                return r;
        (void)snprintf(what, sizeof(what), "change tags of volume %s/%s", p->vg, name);
        r = check_tags(set, n_set, what, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_del; i++) {
                _cleanup_free_ char *probe = NULL;
                if (!del_keys[i] || tv_lvm_tag_encode(del_keys[i], "", &probe) < 0)
                        return set_err(err, -EINVAL, "%s: \"%.64s\" is not a valid tag key", what,
                                       del_keys[i] ? del_keys[i] : "(null)");
                if (find_tag(set, n_set, del_keys[i]))
                        return set_err(err, -EINVAL, "%s: tag key \"%s\" is both set and deleted",
                                       what, del_keys[i]);
        }

        locked = tv_pool_lock(p);
        r = lookup_thin(p, name, what, &lv, err);
        if (r < 0)
                return r;
        have = tv_lv_tags(lv, &n_have);

        lvm_argv(&argv, "lvchange");
        /* Old values of keys being set or deleted go; tags are canonical
         * (tv_lvm_tag_decode() accepts only what _encode() makes), so
         * re-encoding gives lvm2 the exact tag to delete. */
        for (size_t i = 0; i < n_have; i++) {
                const char *newv = find_tag(set, n_set, have[i].key);
                bool del = false;
                for (size_t k = 0; k < n_del; k++)
                        del = del || strcmp(del_keys[k], have[i].key) == 0;
                if (!del && (!newv || strcmp(newv, have[i].value) == 0))
                        continue;
                r = add_tag_args(&argv, "--deltag", &have[i], 1);
                if (r < 0)
                        return r;
                n_changes++;
        }
        for (size_t i = 0; i < n_set; i++) {
                const char *cur = tv_lv_tag(lv, set[i].key);
                if (cur && strcmp(cur, set[i].value) == 0)
                        continue;
                r = add_tag_args(&argv, "--addtag", &set[i], 1);
                if (r < 0)
                        return r;
                n_changes++;
        }
        if (n_changes == 0)
                return 0;
        strv_addf(&argv, "%s/%s", p->vg, name);
        r = lvm_write(p, what, &argv, err);
        if (r < 0)
                return r;
        log_info("volume tags changed", "vg=%s lv=%s changes=%zu", p->vg, name, n_changes);
        return 0;
}

int tv_lv_get_usage(tv_pool *p, const char *name, tv_lv_usage *ret_usage, tv_lvm_error *err) {
        _cleanup_(dm_state_done) dm_state st = {0};
        _cleanup_(dm_pool_destroyp) struct dm_pool *mem = NULL;
        _cleanup_free_ char *dmname = NULL;
        struct dm_status_thin *ts = NULL;
        int r;

        err_clear(err);
        r = check_names(p->vg, name, err);
        if (r < 0)
                return r;
        dmname = dm_name_of(p->vg, name, NULL);
        if (!dmname)
                return -ENOMEM;
        r = dm_query(dmname, DM_DEVICE_STATUS, &st);
        if (r < 0)
                return set_err(err, r, "usage of volume %s/%s: device-mapper status of %s failed",
                               p->vg, name, dmname);
        if (!st.exists)
                return set_err(err, -ENXIO,
                               "usage of volume %s/%s: no active device-mapper device %s (the "
                               "volume is inactive or does not exist)",
                               p->vg, name, dmname);
        if (strcmp(st.target, "thin") != 0)
                return set_err(err, -EINVAL, "usage of volume %s/%s: %s is a %s device, not thin",
                               p->vg, name, dmname, st.target);
        mem = dm_pool_create("tv-usage", 256);
        if (!mem)
                return -ENOMEM;
        if (!dm_get_status_thin(mem, st.params, &ts))
                return set_err(err, -EIO, "usage of volume %s/%s: cannot parse thin status \"%.80s\"",
                               p->vg, name, st.params);
        *ret_usage = (tv_lv_usage){
                .mapped_bytes = ts->mapped_sectors * SECTOR_BYTES,
                /* the kernel reports "-" (parsed as 0) when nothing is mapped */
                .highest_mapped_byte =
                        ts->mapped_sectors ? (ts->highest_mapped_sector + 1) * SECTOR_BYTES : 0,
                .major = st.info.major,
                .minor = st.info.minor,
                .open_count = st.info.open_count,
                .failed = ts->fail,
        };
        return 0;
}

/* ---- loop-backed demo pool ------------------------------------------------------------ */

static void closedirp_(DIR **d) {
        if (*d)
                (void)closedir(*d);
}

/* The /dev/loopN already serving `file` (an absolute, resolved path), read
 * from /sys/block/loopN/loop/backing_file. -ENOENT if none. */
static int loop_find(const char *file, char ret_dev[32]) {
        _cleanup_(closedirp_) DIR *d = NULL;
        struct dirent *de;

        d = opendir("/sys/block");
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                char path[300], backing[PATH_MAX + 16];
                unsigned n;
                char tail;

                if (sscanf(de->d_name, "loop%u%c", &n, &tail) != 1)
                        continue;
                (void)snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", de->d_name);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                ssize_t k = read(fd, backing, sizeof(backing) - 1);
                if (k <= 0)
                        continue;
                backing[k] = '\0';
                tv_strstrip_end(backing);
                if (strcmp(backing, file) == 0) {
                        (void)snprintf(ret_dev, 32, "/dev/loop%u", n);
                        return 0;
                }
        }
        return -ENOENT;
}

static int loop_attach(const char *file, char ret_dev[32]) {
        _cleanup_close_ int fd = -1, ctl = -1;

        fd = open(file, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (ctl < 0)
                return -errno;
        /* Another process may take the free device first: then ask again. */
        for (int attempt = 0; attempt < 20; attempt++) {
                char dev[32];
                int n = ioctl(ctl, LOOP_CTL_GET_FREE);
                if (n < 0)
                        return -errno;
                (void)snprintf(dev, sizeof(dev), "/dev/loop%d", n);
                _cleanup_close_ int lfd = -1;
                for (int w = 0; w < 100 && lfd < 0; w++) {
                        lfd = open(dev, O_RDWR | O_CLOEXEC);
                        if (lfd < 0 && errno != ENOENT)
                                return -errno;
                        if (lfd < 0)
                                (void)nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
                }
                if (lfd < 0)
                        return -ENODEV;

                struct loop_config cfg = {.fd = (uint32_t)fd};
                (void)snprintf((char *)cfg.info.lo_file_name, LO_NAME_SIZE, "%s", file);
                if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0) {
                        memcpy(ret_dev, dev, sizeof(dev));
                        return 0;
                }
                if (errno == EBUSY)
                        continue;
                if (errno != EINVAL && errno != ENOTTY)
                        return -errno;
                /* Kernels before 5.8 have no LOOP_CONFIGURE. */
                if (ioctl(lfd, LOOP_SET_FD, fd) < 0) {
                        if (errno == EBUSY)
                                continue;
                        return -errno;
                }
                (void)ioctl(lfd, LOOP_SET_STATUS64, &cfg.info);
                memcpy(ret_dev, dev, sizeof(dev));
                return 0;
        }
        return -EBUSY;
}

static int loop_detach(const char *dev) {
        _cleanup_close_ int fd = open(dev, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* Right after lvm2 tore the dm devices down the loop may still be
         * held for a moment. */
        for (int attempt = 0; attempt < 50; attempt++) {
                if (ioctl(fd, LOOP_CLR_FD, 0) == 0 || errno == ENXIO)
                        return 0;
                if (errno != EBUSY)
                        return -errno;
                (void)nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
        }
        return -EBUSY;
}

static int ensure_file(const char *path, uint64_t size) {
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        struct stat st;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (st.st_size == 0 && ftruncate(fd, (off_t)size) < 0)
                return -errno;
        return 0;
}

int tv_pool_create_loop(const char *path, uint64_t size_bytes, const char *vg,
                        const char *thin_pool, tv_pool **ret_pool, tv_lvm_error *err) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = NULL;
        _cleanup_free_ char *real = NULL;
        char what[PATH_MAX + 300], dev[32];
        bool vg_exists;
        int r;

        err_clear(err);
        if (!thin_pool)
                return set_err(err, -EINVAL, "no thin pool name given");
        r = check_names(vg, thin_pool, err);
        if (r < 0)
                return r;
        if (!path || path[0] != '/')
                return set_err(err, -EINVAL, "the loop file path must be absolute");
        if (size_bytes < LOOP_POOL_MIN_BYTES)
                return set_err(err, -EINVAL, "a loop pool needs at least 64 MiB, not %" PRIu64
                               " bytes", size_bytes);
        (void)snprintf(what, sizeof(what), "create loop-backed thin pool %s/%s on %s", vg,
                       thin_pool, path);

        r = lvs_query(what, vg, NULL, &l, err);
        if (r < 0 && r != -ENOENT)
                return r;
        vg_exists = r == 0;
        for (size_t i = 0; vg_exists && i < tv_lv_list_size(l); i++) {
                const tv_lv *lv = tv_lv_list_get(l, i);
                if (strcmp(tv_lv_name(lv), thin_pool) != 0)
                        continue;
                if (strcmp(tv_lv_segtype(lv), "thin-pool") != 0)
                        return set_err(err, -EEXIST, "%s: %s/%s exists and is a %s LV", what, vg,
                                       thin_pool, tv_lv_segtype(lv));
                return tv_pool_open(vg, thin_pool, ret_pool, err);
        }
        err_clear(err);

        if (!vg_exists) {
                _cleanup_(strv_done) strv argv = {0};

                r = ensure_file(path, size_bytes);
                if (r < 0)
                        return set_err(err, r, "%s: cannot create the file: %s", what, strerror(-r));
                real = realpath(path, NULL);
                if (!real)
                        return set_err(err, -errno, "%s: cannot resolve the path: %s", what,
                                       strerror(errno));
                r = loop_find(real, dev);
                if (r == -ENOENT)
                        r = loop_attach(real, dev);
                if (r < 0)
                        return set_err(err, r, "%s: cannot attach a loop device: %s", what,
                                       strerror(-r));
                lvm_argv(&argv, "vgcreate");
                strv_add(&argv, "--yes");
                strv_add(&argv, vg);
                strv_add(&argv, dev);
                r = lvm_exec(TV_LVM_TIMEOUT_MS_DEFAULT, what, &argv, NULL, err);
                if (r < 0)
                        return r;
                log_info("volume group created", "vg=%s pv=%s file=%s", vg, dev, real);
        }

        {
                _cleanup_(strv_done) strv argv = {0};
                lvm_argv(&argv, "lvcreate");
                strv_add(&argv, "--yes");
                strv_add(&argv, "--type");
                strv_add(&argv, "thin-pool");
                strv_add(&argv, "-l");
                strv_add(&argv, "100%FREE");
                /* Unprovisioned blocks read as zeros anyway; a partial first
                 * write to a chunk is not zero-filled, which is safe here
                 * because every volume is LUKS (crypto-erase on delete). */
                strv_add(&argv, "--zero");
                strv_add(&argv, "n");
                strv_add(&argv, "-n");
                strv_add(&argv, thin_pool);
                strv_add(&argv, vg);
                r = lvm_exec(TV_LVM_TIMEOUT_MS_DEFAULT, what, &argv, NULL, err);
                if (r < 0)
                        return r;
        }
        {
                /* lvm2 2.03 takes --errorwhenfull only from lvchange. */
                _cleanup_(strv_done) strv argv = {0};
                lvm_argv(&argv, "lvchange");
                strv_add(&argv, "--errorwhenfull");
                strv_add(&argv, "y");
                strv_addf(&argv, "%s/%s", vg, thin_pool);
                r = lvm_exec(TV_LVM_TIMEOUT_MS_DEFAULT, what, &argv, NULL, err);
                if (r < 0)
                        return r;
        }
        log_info("thin pool created", "vg=%s pool=%s", vg, thin_pool);
        return tv_pool_open(vg, thin_pool, ret_pool, err);
}

int tv_pool_remove_loop(const char *path, const char *vg, tv_lvm_error *err) {
        _cleanup_free_ char *real = NULL;
        char what[PATH_MAX + 100], dev[32];
        int r;

        err_clear(err);
        r = check_names(vg, NULL, err);
        if (r < 0)
                return r;
        if (!path)
                return set_err(err, -EINVAL, "no loop file path given");
        (void)snprintf(what, sizeof(what), "remove loop-backed volume group %s on %s", vg, path);
        {
                _cleanup_(strv_done) strv argv = {0};
                lvm_argv(&argv, "vgremove");
                strv_add(&argv, "--yes");
                strv_add(&argv, "-f");
                strv_add(&argv, vg);
                r = lvm_exec(TV_LVM_TIMEOUT_MS_DEFAULT, what, &argv, NULL, err);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        err_clear(err);
        real = realpath(path, NULL);
        if (!real)
                return errno == ENOENT ? 0 : set_err(err, -errno, "%s: %s", what, strerror(errno));
        r = loop_find(real, dev);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return set_err(err, r, "%s: cannot list loop devices: %s", what, strerror(-r));
        {
                _cleanup_(strv_done) strv argv = {0};
                lvm_argv(&argv, "pvremove");
                strv_add(&argv, "--yes");
                strv_add(&argv, dev);
                r = lvm_exec(TV_LVM_TIMEOUT_MS_DEFAULT, what, &argv, NULL, err);
                /* No label left is what we want. */
                if (r < 0 && r != -ENOENT && r != -EIO)
                        return r;
        }
        err_clear(err);
        r = loop_detach(dev);
        if (r < 0)
                return set_err(err, r, "%s: cannot detach %s: %s", what, dev, strerror(-r));
        log_info("loop volume group removed", "vg=%s pv=%s", vg, dev);
        return 0;
}
