/* The Controller service: tenant volumes and snapshots as thin LVs.
 * Every handler reads decode -> validate -> layer call -> encode; statuses
 * come from reply_errno()'s errno mapping. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "volspec.h"

#define ID_SIZE 256
#define LIST_PAGE_DEFAULT 100

/* ---- encoding ---------------------------------------------------------- */

static Csi__V1__Topology *node_topology(tv_server *s, arena *a) {
        Csi__V1__Topology *t = arena_alloc(a, sizeof(*t));
        Csi__V1__Topology__SegmentsEntry *seg = arena_alloc(a, sizeof(*seg));
        Csi__V1__Topology__SegmentsEntry **segs = arena_alloc(a, sizeof(*segs));

        if (!t || !seg || !segs)
                return NULL;
        csi__v1__topology__init(t);
        csi__v1__topology__segments_entry__init(seg);
        seg->key = (char *)TV_TOPOLOGY_KEY;
        seg->value = s->node_id;
        segs[0] = seg;
        t->n_segments = 1;
        t->segments = segs;
        return t;
}

static const char *lv_kind(const tv_lv *lv) {
        const char *k = tv_lv_tag(lv, TV_TAG_KIND);
        return k ? k : "";
}

static bool is_volume(const tv_lv *lv) {
        return strcmp(lv_kind(lv), "volume") == 0 && strncmp(tv_lv_name(lv), "tv-", 3) == 0;
}

static bool is_snapshot(const tv_lv *lv) {
        return strcmp(lv_kind(lv), "snapshot") == 0 && strncmp(tv_lv_name(lv), "tvs-", 4) == 0;
}

/* The content source a volume was made from, from its `source` tag. */
static Csi__V1__VolumeContentSource *content_source(tv_server *s, arena *a, const tv_lv *lv) {
        const char *src = tv_lv_tag(lv, TV_TAG_SOURCE);
        Csi__V1__VolumeContentSource *cs;
        char *id;

        if (!src || !*src)
                return NULL;
        cs = arena_alloc(a, sizeof(*cs));
        id = arena_printf(a, "%s:%s", s->vg, src);
        if (!cs || !id)
                return NULL;
        csi__v1__volume_content_source__init(cs);
        if (strncmp(src, "tvs-", 4) == 0) {
                Csi__V1__VolumeContentSource__SnapshotSource *ss = arena_alloc(a, sizeof(*ss));
                if (!ss)
                        return NULL;
                csi__v1__volume_content_source__snapshot_source__init(ss);
                ss->snapshot_id = id;
                cs->type_case = CSI__V1__VOLUME_CONTENT_SOURCE__TYPE_SNAPSHOT;
                cs->snapshot = ss;
        } else {
                Csi__V1__VolumeContentSource__VolumeSource *vs = arena_alloc(a, sizeof(*vs));
                if (!vs)
                        return NULL;
                csi__v1__volume_content_source__volume_source__init(vs);
                vs->volume_id = id;
                cs->type_case = CSI__V1__VOLUME_CONTENT_SOURCE__TYPE_VOLUME;
                cs->volume = vs;
        }
        return cs;
}

/* volume_context carries what NodeStageVolume needs without a lookup. */
static int volume_context(arena *a, const tv_lv *lv, Csi__V1__Volume *v) {
        static const struct {
                const char *tag, *key;
        } map[] = {
                {TV_TAG_TENANT, "tenant"},
                {TV_TAG_FS, "fsType"},
                {TV_TAG_KEY_SOURCE, "keySource"},
        };
        Csi__V1__Volume__VolumeContextEntry **ctx = arena_alloc(a, sizeof(*ctx) * ELEMENTSOF(map));

        if (!ctx)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(map); i++) {
                const char *val = tv_lv_tag(lv, map[i].tag);
                Csi__V1__Volume__VolumeContextEntry *e;

                if (!val || !*val)
                        continue;
                e = arena_alloc(a, sizeof(*e));
                if (!e)
                        return -ENOMEM;
                csi__v1__volume__volume_context_entry__init(e);
                e->key = (char *)map[i].key;
                e->value = arena_strdup(a, val);
                ctx[v->n_volume_context++] = e;
        }
        v->volume_context = ctx;
        return a->failed ? -ENOMEM : 0;
}

static Csi__V1__Volume *encode_volume(tv_server *s, arena *a, const tv_lv *lv) {
        Csi__V1__Volume *v = arena_alloc(a, sizeof(*v));
        Csi__V1__Topology **topo = arena_alloc(a, sizeof(*topo));

        if (!v || !topo)
                return NULL;
        csi__v1__volume__init(v);
        v->volume_id = arena_printf(a, "%s:%s", s->vg, tv_lv_name(lv));
        v->capacity_bytes = (int64_t)tv_lv_size(lv);
        if (volume_context(a, lv, v) < 0)
                return NULL;
        v->content_source = content_source(s, a, lv);
        topo[0] = node_topology(s, a);
        v->n_accessible_topology = 1;
        v->accessible_topology = topo;
        return a->failed ? NULL : v;
}

static Csi__V1__Snapshot *encode_snapshot(tv_server *s, arena *a, const tv_lv *lv) {
        Csi__V1__Snapshot *snap = arena_alloc(a, sizeof(*snap));
        Google__Protobuf__Timestamp *ts = arena_alloc(a, sizeof(*ts));
        const char *src = tv_lv_tag(lv, TV_TAG_SOURCE);

        if (!snap || !ts)
                return NULL;
        csi__v1__snapshot__init(snap);
        google__protobuf__timestamp__init(ts);
        snap->snapshot_id = arena_printf(a, "%s:%s", s->vg, tv_lv_name(lv));
        snap->source_volume_id = src ? arena_printf(a, "%s:%s", s->vg, src) : (char *)"";
        snap->size_bytes = (int64_t)tv_lv_size(lv);
        ts->seconds = tv_lv_created(lv);
        snap->creation_time = ts;
        /* A thin snapshot is complete the moment lvcreate returns. */
        snap->ready_to_use = true;
        return a->failed ? NULL : snap;
}

static int pack_and_free(tv_reply *reply, arena *a, const ProtobufCMessage *resp) {
        int r = a->failed ? reply_errno(reply, -ENOMEM, "encode response") : reply_pack(reply, resp);
        arena_free(a);
        return r;
}

/* ---- shared steps --------------------------------------------------------- */

/* Sum of what `tenant` holds in the pool: bytes of every LV tagged for it
 * (snapshots hold space too) and its number of volumes. */
static void tenant_usage(const tv_lv_list *l, const char *tenant, uint64_t *ret_bytes, uint64_t *ret_volumes) {
        uint64_t bytes = 0, volumes = 0;

        for (size_t i = 0; i < tv_lv_list_size(l); i++) {
                const tv_lv *lv = tv_lv_list_get(l, i);
                const char *t = lv ? tv_lv_tag(lv, TV_TAG_TENANT) : NULL;
                if (!t || strcmp(t, tenant) != 0)
                        continue;
                bytes += tv_lv_size(lv);
                if (is_volume(lv))
                        volumes++;
        }
        *ret_bytes = bytes;
        *ret_volumes = volumes;
}

/* Refuse new space for `tenant` past its quota. Call with the pool lock
 * held, so concurrent creates cannot both pass; the pool's own thresholds
 * (fill, metadata, overprovision) are the volume layer's guard. When
 * `name` (may be NULL) already exists, *ret_exists is set and nothing is
 * counted: a retry is answered by the verb's idempotency, not counted
 * twice. One lvs call either way. */
static int admit(tv_server *s, tv_pool *p, const char *tenant, const char *name, uint64_t add_bytes,
                 uint64_t add_volumes, bool *ret_exists, tv_reply *reply) {
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = NULL;
        tv_tenant_quota q;
        tv_lvm_error err;
        uint64_t bytes, volumes;
        char msg[400];
        int r;

        *ret_exists = false;
        r = tv_pool_list_lvs(p, &l, &err);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        for (size_t i = 0; name && i < tv_lv_list_size(l); i++)
                if (strcmp(tv_lv_name(tv_lv_list_get(l, i)), name) == 0) {
                        *ret_exists = true;
                        return 0;
                }
        if (!tenant)
                return 0;
        tenant_usage(l, tenant, &bytes, &volumes);

        pthread_rwlock_rdlock(&s->config_lock);
        q = quota_for(&s->config, tenant);
        pthread_rwlock_unlock(&s->config_lock);

        r = quota_check(&q, tenant, bytes, volumes, add_bytes, add_volumes, msg, sizeof(msg));
        if (r < 0)
                return reply_errno(reply, r, "%s", msg);
        return 0;
}

/* Find the source of a clone: the same tenant's snapshot or volume. Another
 * tenant's looks exactly like a missing one, so ids cannot be probed. */
static int find_source(tv_server *s, tv_pool *p, const Csi__V1__VolumeContentSource *cs, const char *tenant,
                       tv_lv **ret_lv, tv_reply *reply) {
        bool snapshot = cs->type_case == CSI__V1__VOLUME_CONTENT_SOURCE__TYPE_SNAPSHOT;
        const char *id = snapshot ? (cs->snapshot ? cs->snapshot->snapshot_id : NULL)
                                  : (cs->type_case == CSI__V1__VOLUME_CONTENT_SOURCE__TYPE_VOLUME && cs->volume
                                             ? cs->volume->volume_id
                                             : NULL);
        const char *what = snapshot ? "snapshot" : "volume";
        char lv_name[TV_LV_NAME_SIZE];
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        tv_lvm_error err;
        const char *t;
        int r;

        if (!id || !*id)
                return reply_invalid(reply, "volume_content_source: a snapshot_id or volume_id is required");
        r = volume_id_parse(id, s->vg, snapshot ? TV_LV_KIND_SNAPSHOT : TV_LV_KIND_VOLUME, lv_name);
        if (r < 0)
                return reply_errno(reply, -ENOENT, "source %s %.200s not found", what, id);
        r = tv_lv_lookup(p, lv_name, &lv, &err);
        if (r == -ENOENT)
                return reply_errno(reply, -ENOENT, "source %s %.200s not found", what, id);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        t = tv_lv_tag(lv, TV_TAG_TENANT);
        if (!t || strcmp(t, tenant) != 0 || !(snapshot ? is_snapshot(lv) : is_volume(lv)))
                return reply_errno(reply, -ENOENT, "source %s %.200s not found", what, id);
        *ret_lv = TAKE_PTR(lv);
        return 0;
}

/* ---- CreateVolume ------------------------------------------------------- */

typedef struct {
        tv_lvm_tag tags[12];
        size_t n;
        char pvc[2 * TV_PARAM_VALUE_MAX + 2]; /* "namespace/name" */
        char limits[TV_LIMITS_SPEC_STRING_MAX];
} tag_set;

static void tag_add(tag_set *t, const char *key, const char *value) {
        if (value && *value && t->n < ELEMENTSOF(t->tags))
                t->tags[t->n++] = (tv_lvm_tag){key, value};
}

static void volume_tags(const volume_spec *spec, const tv_lv *source, tag_set *t) {
        t->n = 0;
        tag_add(t, TV_TAG_KIND, "volume");
        tag_add(t, TV_TAG_TENANT, spec->tenant);
        tag_add(t, TV_TAG_NAME, spec->name);
        if (spec->pvc_name && *spec->pvc_name) {
                snprintf(t->pvc, sizeof(t->pvc), "%s/%s", spec->pvc_namespace ? spec->pvc_namespace : spec->tenant,
                         spec->pvc_name);
                tag_add(t, TV_TAG_PVC, t->pvc);
        }
        tag_add(t, TV_TAG_PV, spec->pv_name);
        tag_add(t, TV_TAG_FS, spec->fs_type);
        tag_add(t, TV_TAG_KEY_SOURCE, spec->key_source);
        if (!tv_limits_spec_is_empty(&spec->limits) && tv_limits_spec_to_string(&spec->limits, t->limits) > 0)
                tag_add(t, TV_TAG_LIMITS, t->limits);
        if (source)
                tag_add(t, TV_TAG_SOURCE, tv_lv_name(source));
}

/* The requisite topology, when given, must include this node. */
static int topology_check(tv_server *s, const Csi__V1__TopologyRequirement *req, tv_reply *reply) {
        if (!req || req->n_requisite == 0)
                return 0;
        for (size_t i = 0; i < req->n_requisite; i++) {
                const Csi__V1__Topology *t = req->requisite[i];
                bool ok = true;
                for (size_t k = 0; k < t->n_segments; k++) {
                        if (strcmp(t->segments[k]->key, TV_TOPOLOGY_KEY) == 0 &&
                            strcmp(t->segments[k]->value, s->node_id) != 0)
                                ok = false;
                }
                if (ok)
                        return 0;
        }
        return reply_errno(reply, -ENOSPC,
                           "accessibility_requirements: no requisite topology includes this node (%s=%s); "
                           "thinvault volumes live on the node that creates them",
                           TV_TOPOLOGY_KEY, s->node_id);
}

/* Size of a clone: the range's, but never below the source's. */
static int clone_size(const Csi__V1__CapacityRange *cr, uint64_t asked, const tv_lv *source, uint64_t *ret,
                      tv_reply *reply) {
        uint64_t src = tv_lv_size(source);

        if (!cr || (cr->required_bytes == 0 && cr->limit_bytes == 0)) {
                *ret = src;
                return 0;
        }
        if (asked >= src) {
                *ret = asked;
                return 0;
        }
        if (cr->limit_bytes > 0 && (uint64_t)cr->limit_bytes < src) {
                reply_status(reply, TV_STATUS_OUT_OF_RANGE,
                             "capacity_range: limit_bytes %lld is below the source's size %" PRIu64,
                             (long long)cr->limit_bytes, src);
                return -ERANGE;
        }
        *ret = src;
        return 0;
}

/* A retried CreateVolume finds the LV its name maps to; lvm2's answer only
 * says it has the same size, name tag and origin. Another tenant's (or one
 * made with another key source or file system) is not this request's
 * volume: answering with it would hand one tenant another's volume id. The
 * owner is not named: the message goes to this caller. */
static int same_owner(const tv_lv *lv, const volume_spec *spec, tv_reply *reply) {
        static const char *const keys[] = {TV_TAG_TENANT, TV_TAG_KEY_SOURCE, TV_TAG_FS};
        const char *want[] = {spec->tenant, spec->key_source, spec->fs_type};

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const char *have = tv_lv_tag(lv, keys[i]);
                if (strcmp(have ? have : "", want[i] ? want[i] : "") != 0)
                        return reply_errno(reply, -EEXIST,
                                           "volume %.128s exists with other parameters (%s); delete it or use another name",
                                           spec->name, keys[i]);
        }
        return 0;
}

int controller_create_volume(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__CreateVolumeRequest *req = (const Csi__V1__CreateVolumeRequest *)msg;
        Csi__V1__CreateVolumeResponse resp = CSI__V1__CREATE_VOLUME_RESPONSE__INIT;
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL, *source = NULL;
        volume_spec spec;
        arena a = {0};
        tag_set tags;
        tv_lvm_error err;
        tv_pool *p;
        int r;

        r = volume_spec_from_request(req, &spec, reply);
        if (r < 0)
                return r;
        r = topology_check(s, req->accessibility_requirements, reply);
        if (r < 0)
                return r;
        p = server_pool(s, reply);
        if (!p)
                return -EHOSTDOWN;
        r = capacity_resolve(req->capacity_range, tv_pool_extent_bytes(p), &spec.size, reply);
        if (r < 0)
                return r;
        if (req->volume_content_source) {
                r = find_source(s, p, req->volume_content_source, spec.tenant, &source, reply);
                if (r < 0)
                        return r;
                r = clone_size(req->capacity_range, spec.size, source, &spec.size, reply);
                if (r < 0)
                        return r;
        }
        r = limits_check_size(&spec.limits, spec.size, reply);
        if (r < 0)
                return r;
        volume_tags(&spec, source, &tags);

        {
                _cleanup_(tv_pool_unlockp) _unused_ tv_pool *locked = tv_pool_lock(p);
                bool exists;

                r = admit(s, p, spec.tenant, spec.lv_name, spec.size, 1, &exists, reply);
                if (r < 0)
                        return r;
                if (source)
                        r = tv_lv_clone(p, tv_lv_name(source), spec.lv_name, spec.size, tags.tags, tags.n, NULL, &err);
                else
                        r = tv_lv_create(p, spec.lv_name, spec.size, tags.tags, tags.n, NULL, &err);
        }
        if (r == -EEXIST)
                return reply_errno(reply, r, "volume %.128s exists with another size or source; delete it or use another name",
                                   spec.name);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        /* Read back after the pool lock: other creates and deletes need not
         * wait for this lvs. */
        r = tv_lv_lookup(p, spec.lv_name, &lv, &err);
        if (r == -ENOENT)
                return reply_errno(reply, -EAGAIN, "volume %.128s was created but was gone when read back (deleted "
                                   "meanwhile?): retry", spec.name);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        r = same_owner(lv, &spec, reply);
        if (r < 0)
                return r;

        log_info("volume created", "volume=%s tenant=%s bytes=%" PRIu64 "%s%s", tv_lv_name(lv), spec.tenant,
                 tv_lv_size(lv), source ? " source=" : "", source ? tv_lv_name(source) : "");
        tv_kill_point("create.after_lvcreate");
        resp.volume = encode_volume(s, &a, lv);
        return pack_and_free(reply, &a, &resp.base);
}

/* ---- DeleteVolume / ControllerExpandVolume ----------------------------- */

int controller_delete_volume(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__DeleteVolumeRequest *req = (const Csi__V1__DeleteVolumeRequest *)msg;
        Csi__V1__DeleteVolumeResponse resp = CSI__V1__DELETE_VOLUME_RESPONSE__INIT;
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        char lv_name[TV_LV_NAME_SIZE];
        tv_lvm_error err;
        tv_pool *p;
        int r;

        if (!req->volume_id || !*req->volume_id)
                return reply_invalid(reply, "volume_id is required");
        p = server_pool(s, reply);
        if (!p)
                return -EHOSTDOWN;
        /* An id that cannot name one of our volumes names none: deleting
         * what does not exist succeeds (the spec's idempotency). */
        if (volume_id_parse(req->volume_id, s->vg, TV_LV_KIND_VOLUME, lv_name) < 0)
                return reply_pack(reply, &resp.base);
        r = tv_lv_lookup(p, lv_name, &lv, &err);
        if (r == -ENOENT || (r == 0 && !is_volume(lv)))
                return reply_pack(reply, &resp.base);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        /* Crypto-erase before lvremove, never after: lvremove (like the
         * discard inside the erase step) returns the thin blocks to a pool
         * that does not zero them, and the next volume carved from it may
         * be another tenant's. With the keyslots gone first, those blocks
         * hold ciphertext nobody can decrypt. A retry after a failure here
         * finds an erased (empty) volume and goes on to remove it. */
        r = volume_crypto_erase(p, lv, reply);
        if (r < 0)
                return r;
        tv_kill_point("delete.after_erase");
        r = tv_lv_delete(p, lv_name, &err);
        if (r == -EBUSY)
                return reply_errno(reply, r, "volume %s is in use (mounted or mapped on this node): unstage it first",
                                   req->volume_id);
        if (r < 0 && r != -ENOENT)
                return reply_errno(reply, r, "%s", err.message);
        log_info("volume deleted", "volume=%s tenant=%s", lv_name, tv_lv_tag(lv, TV_TAG_TENANT));
        return reply_pack(reply, &resp.base);
}

/* Look up a volume by id for handlers that need it to exist. */
static int lookup_volume(tv_server *s, tv_pool *p, const char *id, tv_lv **ret_lv, tv_reply *reply) {
        char lv_name[TV_LV_NAME_SIZE];
        tv_lvm_error err;
        tv_lv *lv = NULL;
        int r;

        if (!id || !*id)
                return reply_invalid(reply, "volume_id is required");
        r = volume_id_parse(id, s->vg, TV_LV_KIND_VOLUME, lv_name);
        if (r < 0)
                return reply_errno(reply, -ENOENT, "volume %.200s not found", id);
        r = tv_lv_lookup(p, lv_name, &lv, &err);
        if (r == 0 && !is_volume(lv)) {
                tv_lv_free(lv);
                r = -ENOENT;
        }
        if (r == -ENOENT)
                return reply_errno(reply, r, "volume %.200s not found", id);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        *ret_lv = lv;
        return 0;
}

/* Per-GiB limits scale with the size: refuse a size they cannot be
 * resolved for (the product would pass the kernel's largest value). */
static int recorded_limits_check(const tv_lv *lv, uint64_t size, tv_reply *reply) {
        const char *tag = tv_lv_tag(lv, TV_TAG_LIMITS);
        tv_limits_error err;
        tv_limits_spec spec;

        if (!tag)
                return 0;
        if (tv_limits_spec_from_string(tag, &spec, &err) < 0)
                return reply_errno(reply, -EIO, "volume %s has an unreadable limits tag: %s", tv_lv_name(lv), err.message);
        return limits_check_size(&spec, size, reply);
}

int controller_expand_volume(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__ControllerExpandVolumeRequest *req = (const Csi__V1__ControllerExpandVolumeRequest *)msg;
        Csi__V1__ControllerExpandVolumeResponse resp = CSI__V1__CONTROLLER_EXPAND_VOLUME_RESPONSE__INIT;
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        uint64_t size, new_size = 0;
        tv_lvm_error err;
        tv_pool *p;
        int r;

        if (!req->capacity_range || req->capacity_range->required_bytes <= 0)
                return reply_invalid(reply, "capacity_range.required_bytes is required to expand a volume");
        p = server_pool(s, reply);
        if (!p)
                return -EHOSTDOWN;
        r = lookup_volume(s, p, req->volume_id, &lv, reply);
        if (r < 0)
                return r;
        r = capacity_resolve(req->capacity_range, tv_pool_extent_bytes(p), &size, reply);
        if (r < 0)
                return r;
        r = recorded_limits_check(lv, size, reply);
        if (r < 0)
                return r;
        {
                _cleanup_(tv_pool_unlockp) _unused_ tv_pool *locked = tv_pool_lock(p);
                const char *tenant = tv_lv_tag(lv, TV_TAG_TENANT);

                bool exists;

                if (size > tv_lv_size(lv)) {
                        r = admit(s, p, tenant, NULL, size - tv_lv_size(lv), 0, &exists, reply);
                        if (r < 0)
                                return r;
                }
                r = tv_lv_extend(p, tv_lv_name(lv), size, &new_size, &err);
        }
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        resp.capacity_bytes = (int64_t)new_size;
        /* The LUKS mapping and the file system grow on the node. */
        resp.node_expansion_required = true;
        log_info("volume expanded", "volume=%s bytes=%" PRIu64, tv_lv_name(lv), new_size);
        return reply_pack(reply, &resp.base);
}

/* ---- ControllerModifyVolume ----------------------------------------------- */

int controller_modify_volume(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__ControllerModifyVolumeRequest *req = (const Csi__V1__ControllerModifyVolumeRequest *)msg;
        Csi__V1__ControllerModifyVolumeResponse resp = CSI__V1__CONTROLLER_MODIFY_VOLUME_RESPONSE__INIT;
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        char text[TV_LIMITS_SPEC_STRING_MAX];
        tv_limits_spec spec;
        tv_lvm_error err;
        tv_pool *p;
        int r;

        if (!req->volume_id || !*req->volume_id)
                return reply_invalid(reply, "volume_id is required");
        r = limits_from_map((Csi__V1__CreateVolumeRequest__ParametersEntry *const *)req->mutable_parameters,
                            req->n_mutable_parameters, true, "mutable_parameters", &spec, reply);
        if (r < 0)
                return r;
        p = server_pool(s, reply);
        if (!p)
                return -EHOSTDOWN;
        r = lookup_volume(s, p, req->volume_id, &lv, reply);
        if (r < 0)
                return r;
        r = limits_check_size(&spec, tv_lv_size(lv), reply);
        if (r < 0)
                return r;
        if (tv_limits_spec_is_empty(&spec)) {
                static const char *const del[] = {TV_TAG_LIMITS};
                r = tv_lv_set_tags(p, tv_lv_name(lv), NULL, 0, del, 1, &err);
        } else {
                tv_lvm_tag set = {TV_TAG_LIMITS, text};
                if (tv_limits_spec_to_string(&spec, text) < 0)
                        return reply_errno(reply, -EINVAL, "limits cannot be recorded");
                r = tv_lv_set_tags(p, tv_lv_name(lv), &set, 1, NULL, 0, &err);
        }
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        /* Staged here: the new budget takes effect now, not at next stage. */
        r = node_reapply_limits(s, tv_lv_name(lv), reply);
        if (r < 0)
                return r;
        log_info("volume limits changed", "volume=%s limits=%s", tv_lv_name(lv),
                 tv_limits_spec_is_empty(&spec) ? "none" : text);
        return reply_pack(reply, &resp.base);
}

/* ---- ValidateVolumeCapabilities ---------------------------------------- */

int controller_validate_volume_capabilities(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__ValidateVolumeCapabilitiesRequest *req = (const Csi__V1__ValidateVolumeCapabilitiesRequest *)msg;
        Csi__V1__ValidateVolumeCapabilitiesResponse resp = CSI__V1__VALIDATE_VOLUME_CAPABILITIES_RESPONSE__INIT;
        Csi__V1__ValidateVolumeCapabilitiesResponse__Confirmed confirmed =
                CSI__V1__VALIDATE_VOLUME_CAPABILITIES_RESPONSE__CONFIRMED__INIT;
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        tv_reply why = {0};
        const char *fs = NULL, *lv_fs;
        bool block = false;
        tv_pool *p;
        int r;

        if (req->n_volume_capabilities == 0)
                return reply_invalid(reply, "volume_capabilities: at least one capability is required");
        p = server_pool(s, reply);
        if (!p)
                return -EHOSTDOWN;
        r = lookup_volume(s, p, req->volume_id, &lv, reply);
        if (r < 0)
                return r;
        r = capabilities_check(req->volume_capabilities, req->n_volume_capabilities, true, &fs, &block, &why);
        lv_fs = tv_lv_tag(lv, TV_TAG_FS);
        if (r == 0 && fs && *fs && lv_fs && strcmp(fs, lv_fs) != 0) {
                snprintf(why.message, sizeof(why.message), "volume was created for %s, not %s", lv_fs, fs);
                r = -EINVAL;
        }
        if (r < 0) {
                resp.message = why.message;
        } else {
                confirmed.n_volume_capabilities = req->n_volume_capabilities;
                confirmed.volume_capabilities = req->volume_capabilities;
                confirmed.n_volume_context = req->n_volume_context;
                confirmed.volume_context = (Csi__V1__ValidateVolumeCapabilitiesResponse__Confirmed__VolumeContextEntry **)
                                                   req->volume_context;
                confirmed.n_parameters = req->n_parameters;
                confirmed.parameters =
                        (Csi__V1__ValidateVolumeCapabilitiesResponse__Confirmed__ParametersEntry **)req->parameters;
                resp.confirmed = &confirmed;
        }
        return reply_pack(reply, &resp.base);
}

/* ---- listings ------------------------------------------------------------ */

static int cmp_lv_name(const void *a, const void *b) {
        return strcmp(tv_lv_name(*(const tv_lv *const *)a), tv_lv_name(*(const tv_lv *const *)b));
}

/* The LVs of `l` for which keep() holds, sorted by name (stable pages). */
static const tv_lv **select_sorted(const tv_lv_list *l, bool (*keep)(const tv_lv *), size_t *ret_n) {
        size_t n = 0, total = tv_lv_list_size(l);
        const tv_lv **v = calloc(total + 1, sizeof(*v));

        if (!v)
                return NULL;
        for (size_t i = 0; i < total; i++) {
                const tv_lv *lv = tv_lv_list_get(l, i);
                if (lv && keep(lv))
                        v[n++] = lv;
        }
        qsort(v, n, sizeof(*v), cmp_lv_name);
        *ret_n = n;
        return v;
}

/* Pagination of a sorted selection: [*first, *first + *count). */
static int page(const char *token, int32_t max_entries, size_t n, size_t *first, size_t *count, tv_reply *reply) {
        size_t off;

        if (max_entries < 0)
                return reply_invalid(reply, "max_entries must not be negative");
        if (page_token_parse(token, &off) < 0 || off > n) {
                reply_status(reply, TV_STATUS_ABORTED, "starting_token \"%.64s\" is not one this plugin gave out", token);
                return -EINVAL;
        }
        *first = off;
        *count = n - off;
        if (max_entries > 0 && (size_t)max_entries < *count)
                *count = (size_t)max_entries;
        return 0;
}

int controller_list_volumes(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__ListVolumesRequest *req = (const Csi__V1__ListVolumesRequest *)msg;
        Csi__V1__ListVolumesResponse resp = CSI__V1__LIST_VOLUMES_RESPONSE__INIT;
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = NULL;
        _cleanup_free_ const tv_lv **v = NULL;
        size_t n = 0, first, count;
        tv_lvm_error err;
        arena a = {0};
        tv_pool *p;
        int r;

        p = server_pool(s, reply);
        if (!p)
                return -EHOSTDOWN;
        r = tv_pool_list_lvs(p, &l, &err);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        v = select_sorted(l, is_volume, &n);
        if (!v)
                return reply_errno(reply, -ENOMEM, "list volumes");
        r = page(req->starting_token, req->max_entries, n, &first, &count, reply);
        if (r < 0)
                return r;
        resp.entries = arena_alloc(&a, sizeof(*resp.entries) * (count + 1));
        for (size_t i = 0; resp.entries && i < count; i++) {
                Csi__V1__ListVolumesResponse__Entry *e = arena_alloc(&a, sizeof(*e));
                if (!e)
                        break;
                csi__v1__list_volumes_response__entry__init(e);
                e->volume = encode_volume(s, &a, v[first + i]);
                resp.entries[resp.n_entries++] = e;
        }
        if (first + count < n)
                resp.next_token = arena_printf(&a, "%zu", first + count);
        return pack_and_free(reply, &a, &resp.base);
}

int controller_get_capacity(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__GetCapacityRequest *req = (const Csi__V1__GetCapacityRequest *)msg;
        Csi__V1__GetCapacityResponse resp = CSI__V1__GET_CAPACITY_RESPONSE__INIT;
        Google__Protobuf__Int64Value max_size = GOOGLE__PROTOBUF__INT64_VALUE__INIT;
        const char *fs = NULL;
        bool block = false;
        tv_pool_status st;
        tv_lvm_error err;
        unsigned data_pct, meta_pct, over_pct;
        uint64_t avail = 0;
        tv_pool *p;
        int r;

        if (req->n_volume_capabilities > 0) {
                r = capabilities_check(req->volume_capabilities, req->n_volume_capabilities, false, &fs, &block, reply);
                if (r < 0)
                        return r;
        }
        /* Another node's topology: nothing can be provisioned there from here. */
        if (req->accessible_topology)
                for (size_t k = 0; k < req->accessible_topology->n_segments; k++)
                        if (strcmp(req->accessible_topology->segments[k]->key, TV_TOPOLOGY_KEY) == 0 &&
                            strcmp(req->accessible_topology->segments[k]->value, s->node_id) != 0)
                                return reply_pack(reply, &resp.base);
        p = server_pool(s, reply);
        if (!p)
                return -EHOSTDOWN;
        r = tv_pool_get_status(p, &st, &err);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);

        pthread_rwlock_rdlock(&s->config_lock);
        data_pct = s->config.max_data_percent;
        meta_pct = s->config.max_metadata_percent;
        over_pct = s->config.max_overprovision_percent;
        pthread_rwlock_unlock(&s->config_lock);

        /* What a new volume could really get given the guard: nothing once
         * a fill threshold is reached; else the overprovision headroom when
         * that cap is on, or the pool's free data space when it is off. */
        bool data_full = data_pct && st.data_used_bytes * 100 >= (uint64_t)data_pct * st.data_total_bytes;
        bool meta_full = meta_pct && st.metadata_total_bytes &&
                         st.metadata_used_bytes * 100 >= (uint64_t)meta_pct * st.metadata_total_bytes;
        if (st.healthy && !data_full && !meta_full) {
                if (over_pct) {
                        uint64_t cap = st.data_total_bytes / 100 * over_pct;
                        avail = cap > st.thin_virtual_bytes ? cap - st.thin_virtual_bytes : 0;
                } else {
                        avail = st.data_total_bytes - st.data_used_bytes;
                }
        }
        avail -= avail % (st.extent_bytes ? st.extent_bytes : 1);
        resp.available_capacity = (int64_t)avail;
        max_size.value = (int64_t)avail;
        resp.maximum_volume_size = &max_size;
        return reply_pack(reply, &resp.base);
}

/* ---- snapshots ----------------------------------------------------------- */

int controller_create_snapshot(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__CreateSnapshotRequest *req = (const Csi__V1__CreateSnapshotRequest *)msg;
        Csi__V1__CreateSnapshotResponse resp = CSI__V1__CREATE_SNAPSHOT_RESPONSE__INIT;
        _cleanup_(tv_lv_freep) tv_lv *source = NULL, *snap = NULL;
        char lv_name[TV_LV_NAME_SIZE];
        size_t len = req->name ? strlen(req->name) : 0;
        snapshot_meta meta;
        const char *tenant;
        tag_set tags = {0};
        tv_lvm_error err;
        arena a = {0};
        tv_pool *p;
        int r;

        if (len == 0)
                return reply_invalid(reply, "name is required");
        if (len > TV_NAME_MAX)
                return reply_invalid(reply, "name is %zu bytes long; at most %d are accepted", len, TV_NAME_MAX);
        if (!req->source_volume_id || !*req->source_volume_id)
                return reply_invalid(reply, "source_volume_id is required");
        r = snapshot_meta_from_request(req, &meta, reply);
        if (r < 0)
                return r;
        if (tv_lv_name_from_request(TV_LV_KIND_SNAPSHOT, req->name, lv_name) < 0)
                return reply_invalid(reply, "name cannot be mapped to a snapshot name");
        p = server_pool(s, reply);
        if (!p)
                return -EHOSTDOWN;
        r = lookup_volume(s, p, req->source_volume_id, &source, reply);
        if (r < 0)
                return r;
        tenant = tv_lv_tag(source, TV_TAG_TENANT);
        tag_add(&tags, TV_TAG_KIND, "snapshot");
        tag_add(&tags, TV_TAG_TENANT, tenant);
        tag_add(&tags, TV_TAG_NAME, req->name);
        tag_add(&tags, TV_TAG_SOURCE, tv_lv_name(source));
        if (meta.vs_name && *meta.vs_name) {
                snprintf(tags.pvc, sizeof(tags.pvc), "%s/%s", meta.vs_namespace ? meta.vs_namespace : tenant ? tenant : "",
                         meta.vs_name);
                tag_add(&tags, TV_TAG_VOLUMESNAPSHOT, tags.pvc);
        }
        tag_add(&tags, TV_TAG_VOLUMESNAPSHOTCONTENT, meta.vsc_name);
        {
                _cleanup_(tv_pool_unlockp) _unused_ tv_pool *locked = tv_pool_lock(p);
                bool exists;

                r = admit(s, p, tenant, lv_name, tv_lv_size(source), 0, &exists, reply);
                if (r < 0)
                        return r;
                r = tv_lv_snapshot(p, tv_lv_name(source), lv_name, tags.tags, tags.n, &snap, &err);
        }
        if (r == -EEXIST)
                return reply_errno(reply, r, "snapshot %.128s exists for another source volume", req->name);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        log_info("snapshot created", "snapshot=%s source=%s tenant=%s", lv_name, tv_lv_name(source), tenant ? tenant : "");
        resp.snapshot = encode_snapshot(s, &a, snap);
        return pack_and_free(reply, &a, &resp.base);
}

int controller_delete_snapshot(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__DeleteSnapshotRequest *req = (const Csi__V1__DeleteSnapshotRequest *)msg;
        Csi__V1__DeleteSnapshotResponse resp = CSI__V1__DELETE_SNAPSHOT_RESPONSE__INIT;
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        char lv_name[TV_LV_NAME_SIZE];
        tv_lvm_error err;
        tv_pool *p;
        int r;

        if (!req->snapshot_id || !*req->snapshot_id)
                return reply_invalid(reply, "snapshot_id is required");
        p = server_pool(s, reply);
        if (!p)
                return -EHOSTDOWN;
        if (volume_id_parse(req->snapshot_id, s->vg, TV_LV_KIND_SNAPSHOT, lv_name) < 0)
                return reply_pack(reply, &resp.base);
        r = tv_lv_lookup(p, lv_name, &lv, &err);
        if (r == -ENOENT || (r == 0 && !is_snapshot(lv)))
                return reply_pack(reply, &resp.base);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        r = tv_lv_delete(p, lv_name, &err);
        if (r < 0 && r != -ENOENT)
                return reply_errno(reply, r, "%s", err.message);
        log_info("snapshot deleted", "snapshot=%s", lv_name);
        return reply_pack(reply, &resp.base);
}

int controller_list_snapshots(tv_server *s, const ProtobufCMessage *msg, tv_reply *reply) {
        const Csi__V1__ListSnapshotsRequest *req = (const Csi__V1__ListSnapshotsRequest *)msg;
        Csi__V1__ListSnapshotsResponse resp = CSI__V1__LIST_SNAPSHOTS_RESPONSE__INIT;
        _cleanup_(tv_lv_list_freep) tv_lv_list *l = NULL;
        _cleanup_free_ const tv_lv **v = NULL;
        char want_snap[TV_LV_NAME_SIZE] = "", want_src[TV_LV_NAME_SIZE] = "";
        size_t n = 0, kept = 0, first, count;
        tv_lvm_error err;
        arena a = {0};
        tv_pool *p;
        int r;

        p = server_pool(s, reply);
        if (!p)
                return -EHOSTDOWN;
        /* Filters naming nothing of ours match nothing (an empty list). */
        if (req->snapshot_id && *req->snapshot_id &&
            volume_id_parse(req->snapshot_id, s->vg, TV_LV_KIND_SNAPSHOT, want_snap) < 0)
                return reply_pack(reply, &resp.base);
        if (req->source_volume_id && *req->source_volume_id &&
            volume_id_parse(req->source_volume_id, s->vg, TV_LV_KIND_VOLUME, want_src) < 0)
                return reply_pack(reply, &resp.base);
        r = tv_pool_list_lvs(p, &l, &err);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        v = select_sorted(l, is_snapshot, &n);
        if (!v)
                return reply_errno(reply, -ENOMEM, "list snapshots");
        for (size_t i = 0; i < n; i++) {
                const char *src = tv_lv_tag(v[i], TV_TAG_SOURCE);
                if (*want_snap && strcmp(tv_lv_name(v[i]), want_snap) != 0)
                        continue;
                if (*want_src && (!src || strcmp(src, want_src) != 0))
                        continue;
                v[kept++] = v[i];
        }
        r = page(req->starting_token, req->max_entries, kept, &first, &count, reply);
        if (r < 0)
                return r;
        resp.entries = arena_alloc(&a, sizeof(*resp.entries) * (count + 1));
        for (size_t i = 0; resp.entries && i < count; i++) {
                Csi__V1__ListSnapshotsResponse__Entry *e = arena_alloc(&a, sizeof(*e));
                if (!e)
                        break;
                csi__v1__list_snapshots_response__entry__init(e);
                e->snapshot = encode_snapshot(s, &a, v[first + i]);
                resp.entries[resp.n_entries++] = e;
        }
        if (first + count < kept)
                resp.next_token = arena_printf(&a, "%zu", first + count);
        return pack_and_free(reply, &a, &resp.base);
}

/* ---- capabilities -------------------------------------------------------- */

int controller_get_capabilities(tv_server *s, const ProtobufCMessage *req, tv_reply *reply) {
        Csi__V1__ControllerGetCapabilitiesResponse resp = CSI__V1__CONTROLLER_GET_CAPABILITIES_RESPONSE__INIT;
        static const Csi__V1__ControllerServiceCapability__RPC__Type types[] = {
                CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__CREATE_DELETE_VOLUME,
                CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__LIST_VOLUMES,
                CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__GET_CAPACITY,
                CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__CREATE_DELETE_SNAPSHOT,
                CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__LIST_SNAPSHOTS,
                CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__CLONE_VOLUME,
                CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__EXPAND_VOLUME,
                CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__MODIFY_VOLUME,
        };
        Csi__V1__ControllerServiceCapability__RPC rpc[ELEMENTSOF(types)];
        Csi__V1__ControllerServiceCapability cap[ELEMENTSOF(types)];
        Csi__V1__ControllerServiceCapability *caps[ELEMENTSOF(types)];

        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                csi__v1__controller_service_capability__rpc__init(&rpc[i]);
                rpc[i].type = types[i];
                csi__v1__controller_service_capability__init(&cap[i]);
                cap[i].type_case = CSI__V1__CONTROLLER_SERVICE_CAPABILITY__TYPE_RPC;
                cap[i].rpc = &rpc[i];
                caps[i] = &cap[i];
        }
        resp.n_capabilities = ELEMENTSOF(types);
        resp.capabilities = caps;
        return reply_pack(reply, &resp.base);
}
