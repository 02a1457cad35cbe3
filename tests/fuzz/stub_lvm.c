/* The lvm layer's verbs (lvm/volume.c) over an in-memory pool. Records
 * are made by the real report parser (tv_lvm_parse_lvs_json) from the
 * JSON lvs would print, and tags go through the real tv_lvm_tag_encode. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "thinvault/crypt.h"
#include "thinvault/lvm.h"

#define MAX_LVS 32
#define MAX_TAGS 16

typedef struct {
        char key[80];
        char value[TV_LVM_TAG_MAX];
} fake_tag;

typedef struct {
        char name[TV_LV_NAME_SIZE];
        char origin[TV_LV_NAME_SIZE];
        uint64_t size;
        bool read_only;
        fake_tag tags[MAX_TAGS];
        size_t n_tags;
        fuzz_luks luks;
} fake_lv;

static fake_lv lvs[MAX_LVS], saved_lvs[MAX_LVS];
static size_t n_lvs, saved_n_lvs;

struct tv_pool {
        pthread_mutex_t lock;
        unsigned max_data, max_meta, max_overprovision;
        int timeout_ms;
};

void fuzz_pool_save(void) {
        memcpy(saved_lvs, lvs, sizeof(lvs));
        saved_n_lvs = n_lvs;
}

void fuzz_pool_restore(void) {
        memcpy(lvs, saved_lvs, sizeof(lvs));
        n_lvs = saved_n_lvs;
}

static _printf_(3, 4) int fail(tv_lvm_error *err, int r, const char *fmt, ...) {
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                (void)vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
                err->lvm_line[0] = '\0';
        }
        return r;
}

static void err_clear(tv_lvm_error *err) {
        if (err) {
                err->message[0] = '\0';
                err->lvm_line[0] = '\0';
        }
}

static fake_lv *find(const char *name) {
        for (size_t i = 0; i < n_lvs; i++)
                if (strcmp(lvs[i].name, name) == 0)
                        return &lvs[i];
        return NULL;
}

fuzz_luks *fuzz_luks_by_path(const char *path, uint64_t *ret_size) {
        const char *prefix = "/dev/" FUZZ_VG "/";
        fake_lv *lv;

        if (!path || strncmp(path, prefix, strlen(prefix)) != 0)
                return NULL;
        lv = find(path + strlen(prefix));
        if (lv && ret_size)
                *ret_size = lv->size;
        return lv ? &lv->luks : NULL;
}

fuzz_luks *fuzz_luks_by_mapping(const char *mapping, uint64_t *ret_size) {
        for (size_t i = 0; i < n_lvs; i++)
                if (lvs[i].luks.mapping[0] && strcmp(lvs[i].luks.mapping, mapping) == 0) {
                        if (ret_size)
                                *ret_size = lvs[i].size;
                        return &lvs[i].luks;
                }
        return NULL;
}

static bool same_lv(const fake_lv *a, const fake_lv *b) {
        if (strcmp(a->name, b->name) != 0 || strcmp(a->origin, b->origin) != 0 || a->size != b->size ||
            a->read_only != b->read_only || a->n_tags != b->n_tags || strcmp(a->luks.mapping, b->luks.mapping) != 0)
                return false;
        for (size_t i = 0; i < a->n_tags; i++)
                if (strcmp(a->tags[i].key, b->tags[i].key) != 0 || strcmp(a->tags[i].value, b->tags[i].value) != 0)
                        return false;
        /* Formatting is the one change a failed request may leave: the
         * retry takes the volume as it is (node_stage.c). */
        return a->luks.kind == b->luks.kind || b->luks.kind == TV_LUKS_KIND_EMPTY;
}

const char *fuzz_pool_changed(void) {
        if (n_lvs != saved_n_lvs)
                return saved_n_lvs < n_lvs ? "an LV was added" : "an LV was removed";
        for (size_t i = 0; i < n_lvs; i++)
                if (!same_lv(&lvs[i], &saved_lvs[i]))
                        return saved_lvs[i].name;
        return NULL;
}

int fuzz_mapping_minor(const char *mapping) {
        for (size_t i = 0; i < n_lvs; i++)
                if (lvs[i].luks.mapping[0] && strcmp(lvs[i].luks.mapping, mapping) == 0)
                        return (int)i + 100;
        return -1;
}

static uint64_t round_up(uint64_t size) {
        if (size > UINT64_MAX - FUZZ_EXTENT)
                return 0;
        return (size + FUZZ_EXTENT - 1) / FUZZ_EXTENT * FUZZ_EXTENT;
}

static uint64_t virtual_bytes(void) {
        uint64_t sum = 0;

        for (size_t i = 0; i < n_lvs; i++)
                sum += lvs[i].size;
        return sum;
}

/* The pool guard: overprovisioning past max_overprovision percent. */
static int guard(tv_pool *p, uint64_t more, tv_lvm_error *err, const char *name) {
        unsigned pct = p->max_overprovision;

        if (pct && (virtual_bytes() + more) / (FUZZ_DATA_BYTES / 100) > pct)
                return fail(err, -ENOSPC, "pool guard: %s would overprovision the pool", name);
        return 0;
}

/* ---- records, as lvs reports them --------------------------------------- */

static int tags_string(const fake_lv *lv, char **ret) {
        size_t len = 0;
        char *all = calloc(1, 1);

        if (!all)
                return -ENOMEM;
        for (size_t i = 0; i < lv->n_tags; i++) {
                char *tag = NULL, *grown;
                int r = tv_lvm_tag_encode(lv->tags[i].key, lv->tags[i].value, &tag);
                if (r < 0) {
                        free(all);
                        return r;
                }
                grown = realloc(all, len + strlen(tag) + 2);
                if (!grown) {
                        free(tag);
                        free(all);
                        return -ENOMEM;
                }
                all = grown;
                len += (size_t)sprintf(all + len, "%s%s", len ? "," : "", tag);
                free(tag);
        }
        *ret = all;
        return 0;
}

static json_t *row(const fake_lv *lv, size_t idx) {
        char size[24], minor[24], path[200], dm_path[200], attr[16], vg_free[24];
        char *tags = NULL;
        json_t *j;

        if (tags_string(lv, &tags) < 0)
                return NULL;
        snprintf(size, sizeof(size), "%" PRIu64, lv->size);
        snprintf(minor, sizeof(minor), "%zu", idx + 10);
        snprintf(path, sizeof(path), "/dev/%s/%s", FUZZ_VG, lv->name);
        snprintf(dm_path, sizeof(dm_path), "/dev/mapper/%s-%s", FUZZ_VG, lv->name);
        snprintf(attr, sizeof(attr), "V%ci-a-tz--", lv->read_only ? 'r' : 'w');
        snprintf(vg_free, sizeof(vg_free), "%" PRIu64, (uint64_t)(FUZZ_DATA_BYTES - virtual_bytes() % FUZZ_DATA_BYTES));
        j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                      "lv_name", lv->name, "vg_name", FUZZ_VG, "lv_uuid", "fuzz", "lv_attr", attr, "lv_size", size,
                      "segtype", "thin", "pool_lv", FUZZ_POOL, "origin", lv->origin, "data_percent", "12.50",
                      "lv_tags", tags, "lv_kernel_major", "253", "lv_kernel_minor", minor, "lv_path", path,
                      "lv_dm_path", dm_path, "vg_extent_size", "4194304", "vg_size", "17179869184", "vg_free",
                      vg_free);
        free(tags);
        return j;
}

/* One lvs report of the LVs for which `want` says yes. */
static int report(bool (*want)(const fake_lv *, const void *), const void *arg, tv_lv_list **ret,
                  tv_lvm_error *err) {
        json_t *rows = json_array();
        json_t *root;
        char *text;
        int r;

        if (!rows)
                return -ENOMEM;
        for (size_t i = 0; i < n_lvs; i++) {
                json_t *j;

                if (!want(&lvs[i], arg))
                        continue;
                j = row(&lvs[i], i);
                if (!j || json_array_append_new(rows, j) < 0) {
                        json_decref(rows);
                        return -ENOMEM;
                }
        }
        root = json_pack("{s:[{s:o}]}", "report", "lv", rows);
        text = root ? json_dumps(root, JSON_COMPACT) : NULL;
        json_decref(root);
        if (!text)
                return -ENOMEM;
        r = tv_lvm_parse_lvs_json(text, FUZZ_POOL, ret, err);
        free(text);
        return r;
}

static bool want_name(const fake_lv *lv, const void *name) {
        return strcmp(lv->name, name) == 0;
}

static bool want_all(const fake_lv *lv, const void *unused) {
        return true;
}

static int record(const char *name, tv_lv **ret_lv, tv_lvm_error *err) {
        tv_lv_list *l = NULL;
        int r;

        if (!ret_lv)
                return 0;
        r = report(want_name, name, &l, err);
        if (r < 0)
                return r;
        r = tv_lv_list_take(l, 0, ret_lv);
        tv_lv_list_free(l);
        return r;
}

/* ---- the pool ------------------------------------------------------------ */

int tv_pool_open(const char *vg, const char *thin_pool, tv_pool **ret_pool, tv_lvm_error *err) {
        tv_pool *p;

        err_clear(err);
        if (!tv_lvm_name_valid(vg) || !tv_lvm_name_valid(thin_pool))
                return fail(err, -EINVAL, "invalid names %s", vg ? vg : "(null)");
        if (strcmp(vg, FUZZ_VG) != 0 || strcmp(thin_pool, FUZZ_POOL) != 0)
                return fail(err, -ENOENT, "no such pool %s", vg);
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        pthread_mutex_init(&p->lock, NULL);
        *ret_pool = p;
        return 0;
}

int tv_pool_create_loop(const char *path, uint64_t size_bytes, const char *vg, const char *thin_pool,
                        tv_pool **ret_pool, tv_lvm_error *err) {
        return fail(err, -ENOTSUP, "the fuzzer has no loop devices (%s)", path);
}

void tv_pool_free(tv_pool *p) {
        if (!p)
                return;
        pthread_mutex_destroy(&p->lock);
        free(p);
}

uint64_t tv_pool_extent_bytes(const tv_pool *p) {
        return FUZZ_EXTENT;
}

void tv_pool_set_guard(tv_pool *p, unsigned max_data_percent, unsigned max_metadata_percent,
                       unsigned max_overprovision_percent) {
        p->max_data = max_data_percent;
        p->max_meta = max_metadata_percent;
        p->max_overprovision = max_overprovision_percent;
}

void tv_pool_set_timeout(tv_pool *p, int timeout_ms) {
        p->timeout_ms = timeout_ms;
}

tv_pool *tv_pool_lock(tv_pool *p) {
        pthread_mutex_lock(&p->lock);
        return p;
}

void tv_pool_unlock(tv_pool *p) {
        if (p)
                pthread_mutex_unlock(&p->lock);
}

int tv_pool_get_status(tv_pool *p, tv_pool_status *ret_status, tv_lvm_error *err) {
        err_clear(err);
        *ret_status = (tv_pool_status){
                .data_total_bytes = FUZZ_DATA_BYTES,
                .data_used_bytes = virtual_bytes() / 8,
                .metadata_total_bytes = 64ULL << 20,
                .metadata_used_bytes = 1ULL << 20,
                .chunk_bytes = 64 << 10,
                .healthy = true,
                .extent_bytes = FUZZ_EXTENT,
                .vg_size_bytes = 2 * FUZZ_DATA_BYTES,
                .vg_free_bytes = FUZZ_DATA_BYTES - (64ULL << 20),
                .thin_virtual_bytes = virtual_bytes(),
                .n_thin = (uint32_t)n_lvs,
        };
        return 0;
}

int tv_pool_probe(tv_pool *p, bool *ret_ready, tv_lvm_error *err) {
        err_clear(err);
        *ret_ready = true;
        return 0;
}

/* ---- thin LV verbs ------------------------------------------------------- */

static int set_tag(fake_lv *lv, const char *key, const char *value) {
        char *tag = NULL;
        int r;

        /* What lvchange --addtag would refuse, refused the same way. */
        r = tv_lvm_tag_encode(key, value, &tag);
        if (r < 0)
                return r;
        free(tag);
        for (size_t i = 0; i < lv->n_tags; i++)
                if (strcmp(lv->tags[i].key, key) == 0) {
                        snprintf(lv->tags[i].value, sizeof(lv->tags[i].value), "%s", value);
                        return 0;
                }
        if (lv->n_tags == MAX_TAGS || strlen(key) >= sizeof(lv->tags[0].key))
                return -E2BIG;
        snprintf(lv->tags[lv->n_tags].key, sizeof(lv->tags[0].key), "%s", key);
        snprintf(lv->tags[lv->n_tags].value, sizeof(lv->tags[0].value), "%s", value);
        lv->n_tags++;
        return 0;
}

static const char *tag_value(const tv_lvm_tag *tags, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(tags[i].key, key) == 0)
                        return tags[i].value;
        return NULL;
}

static const char *fake_tag_value(const fake_lv *lv, const char *key) {
        for (size_t i = 0; i < lv->n_tags; i++)
                if (strcmp(lv->tags[i].key, key) == 0)
                        return lv->tags[i].value;
        return NULL;
}

/* Create `name` (origin "" for a new volume); idempotent as lvm.h says. */
static int make_lv(tv_pool *p, const char *name, const char *origin, uint64_t size, bool read_only,
                   const tv_lvm_tag *tags, size_t n_tags, tv_lv **ret_lv, tv_lvm_error *err) {
        const char *want = tag_value(tags, n_tags, TV_TAG_NAME);
        fake_lv lv = {.size = round_up(size), .read_only = read_only};
        fake_lv *old;
        int r;

        err_clear(err);
        if (!tv_lvm_name_valid(name))
                return fail(err, -EINVAL, "invalid LV name %s", name);
        if (size == 0 || lv.size == 0)
                return fail(err, -EINVAL, "size of %s is 0 or too large", name);
        old = find(name);
        if (old) {
                const char *had = fake_tag_value(old, TV_TAG_NAME);
                if (old->size != lv.size || strcmp(old->origin, origin) != 0 ||
                    (want && (!had || strcmp(had, want) != 0)))
                        return fail(err, -EEXIST, "%s exists with another size, origin or name", name);
                return record(name, ret_lv, err);
        }
        if (n_lvs == MAX_LVS)
                return fail(err, -ENOSPC, "the fuzzer's pool is full (%s)", name);
        r = guard(p, lv.size, err, name);
        if (r < 0)
                return r;
        snprintf(lv.name, sizeof(lv.name), "%s", name);
        snprintf(lv.origin, sizeof(lv.origin), "%s", origin);
        for (size_t i = 0; i < n_tags; i++) {
                r = set_tag(&lv, tags[i].key, tags[i].value);
                if (r < 0)
                        return fail(err, r == -E2BIG ? -EINVAL : r, "bad tag on %s", name);
        }
        lvs[n_lvs++] = lv;
        return record(name, ret_lv, err);
}

int tv_lv_create(tv_pool *p, const char *name, uint64_t size, const tv_lvm_tag *tags, size_t n_tags,
                 tv_lv **ret_lv, tv_lvm_error *err) {
        return make_lv(p, name, "", size, false, tags, n_tags, ret_lv, err);
}

int tv_lv_snapshot(tv_pool *p, const char *origin, const char *name, const tv_lvm_tag *tags, size_t n_tags,
                   tv_lv **ret_lv, tv_lvm_error *err) {
        fake_lv *o;

        if (!tv_lvm_name_valid(origin) || !(o = find(origin)))
                return fail(err, -ENOENT, "no origin %s", origin);
        return make_lv(p, name, origin, o->size, true, tags, n_tags, ret_lv, err);
}

int tv_lv_clone(tv_pool *p, const char *source, const char *name, uint64_t size, const tv_lvm_tag *tags,
                size_t n_tags, tv_lv **ret_lv, tv_lvm_error *err) {
        fake_lv *o;
        int r;

        if (!tv_lvm_name_valid(source) || !(o = find(source)))
                return fail(err, -ENOENT, "no source %s", source);
        if (size && round_up(size) < o->size)
                return fail(err, -EINVAL, "clone of %s smaller than its source", source);
        r = make_lv(p, name, source, size ? size : o->size, false, tags, n_tags, ret_lv, err);
        if (r == 0 && (o = find(name)) && !o->luks.kind)
                o->luks = find(source)->luks, o->luks.mapping[0] = '\0';
        return r;
}

int tv_lv_delete(tv_pool *p, const char *name, tv_lvm_error *err) {
        fake_lv *lv;

        err_clear(err);
        if (!tv_lvm_name_valid(name) || !(lv = find(name)))
                return fail(err, -ENOENT, "no volume %s", name);
        if (lv->luks.mapping[0])
                return fail(err, -EBUSY, "%s is open", name);
        *lv = lvs[--n_lvs];
        return 0;
}

int tv_lv_extend(tv_pool *p, const char *name, uint64_t new_size, uint64_t *ret_size, tv_lvm_error *err) {
        uint64_t size = round_up(new_size);
        fake_lv *lv;
        int r;

        err_clear(err);
        if (!tv_lvm_name_valid(name) || !(lv = find(name)))
                return fail(err, -ENOENT, "no volume %s", name);
        if (new_size == 0 || size == 0)
                return fail(err, -EINVAL, "bad size for %s", name);
        if (size > lv->size) {
                r = guard(p, size - lv->size, err, name);
                if (r < 0)
                        return r;
                lv->size = size;
        }
        if (ret_size)
                *ret_size = lv->size;
        return 0;
}

int tv_lv_lookup(tv_pool *p, const char *name, tv_lv **ret_lv, tv_lvm_error *err) {
        err_clear(err);
        if (!tv_lvm_name_valid(name) || !find(name))
                return fail(err, -ENOENT, "no volume %s", name ? name : "(null)");
        return record(name, ret_lv, err);
}

int tv_pool_list_lvs(tv_pool *p, tv_lv_list **ret_list, tv_lvm_error *err) {
        return report(want_all, NULL, ret_list, err);
}

int tv_lv_get_usage(tv_pool *p, const char *name, tv_lv_usage *ret_usage, tv_lvm_error *err) {
        fake_lv *lv;

        err_clear(err);
        if (!tv_lvm_name_valid(name))
                return fail(err, -EINVAL, "invalid name %s", name);
        if (!(lv = find(name)))
                return fail(err, -ENXIO, "%s is not active", name);
        *ret_usage = (tv_lv_usage){.mapped_bytes = lv->size / 8,
                                   .highest_mapped_byte = lv->size / 4,
                                   .major = 253,
                                   .minor = (uint32_t)(lv - lvs) + 10,
                                   .open_count = lv->luks.mapping[0] ? 1 : 0};
        return 0;
}

/* No waiting here: a stand-in mapping does not go away by itself. */
int tv_lv_wait_closed(tv_pool *p, const char *name, int32_t *ret_open_count, tv_lvm_error *err) {
        fake_lv *lv;

        err_clear(err);
        if (!tv_lvm_name_valid(name))
                return fail(err, -EINVAL, "invalid name %s", name);
        lv = find(name);
        *ret_open_count = lv && lv->luks.mapping[0] ? 1 : 0;
        return 0;
}

int tv_lv_set_tags(tv_pool *p, const char *name, const tv_lvm_tag *set, size_t n_set, const char *const *del_keys,
                   size_t n_del, tv_lvm_error *err) {
        fake_lv *lv, copy;
        int r;

        err_clear(err);
        if (!tv_lvm_name_valid(name) || !(lv = find(name)))
                return fail(err, -ENOENT, "no volume %s", name);
        copy = *lv;
        for (size_t i = 0; i < n_set; i++) {
                for (size_t d = 0; d < n_del; d++)
                        if (strcmp(set[i].key, del_keys[d]) == 0)
                                return fail(err, -EINVAL, "tag set and deleted on %s", name);
                r = set_tag(&copy, set[i].key, set[i].value);
                if (r < 0)
                        return fail(err, -EINVAL, "bad tag on %s", name);
        }
        for (size_t d = 0; d < n_del; d++)
                for (size_t i = 0; i < copy.n_tags; i++)
                        if (strcmp(copy.tags[i].key, del_keys[d]) == 0) {
                                copy.tags[i] = copy.tags[--copy.n_tags];
                                break;
                        }
        *lv = copy;
        return 0;
}
