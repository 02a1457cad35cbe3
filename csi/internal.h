/* Private to csi/: the server object and the handler contract. */
#ifndef THINVAULT_CSI_INTERNAL_H
#define THINVAULT_CSI_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "csi.pb-c.h"
#include "quota.h"
#include "thinvault/csi.h"
#include "thinvault/limits.h"
#include "thinvault/lvm.h"
#include "thinvault/metrics.h"
#include "thinvault/util.h"

struct MHD_Daemon;

struct tv_server {
        char *endpoint;    /* as given */
        char *socket_path; /* the unix socket file */
        char *lock_path;   /* <socket>.lock, flock()ed while we serve */
        int lock_fd;
        char *node_id;
        char *vg, *thin_pool;
        char *loop_file;      /* embedded default: pool on this file */
        uint64_t loop_size;
        int max_concurrent;
        int lvm_timeout_ms; /* 0: the lvm layer's default */
        volatile sig_atomic_t stop;
        volatile sig_atomic_t reload; /* SIGHUP: re-read the config file */

        /* The pool, opened on first use (a VG that appears later is
         * picked up), guarded by pool_mutex. */
        pthread_mutex_t pool_mutex;
        tv_pool *pool;

        /* cgroup that parents every pod (io.max goes there); NULL:
         * found under the cgroup v2 mount (kubepods.slice, kubepods). */
        char *cgroup_parent;

        /* The Node service: the kubelet directory every node path must be
         * inside (NULL: /var/lib/kubelet), and the master key file tenant
         * keys are derived from (NULL: derived keys are refused). */
        char *kubelet_dir;
        char *master_key;

        /* Quotas and thresholds; readers take config_lock shared. */
        char *config_path;
        pthread_rwlock_t config_lock;
        tv_quota_config config;
        atomic_uint_fast64_t next_request_id;

        /* The Prometheus endpoint (metrics_http.c): off when
         * metrics_address is NULL. rpc_stats counts every call served;
         * its label tables are the two arrays below. */
        char *metrics_address;
        struct MHD_Daemon *metrics_daemon;
        tv_rpc_stats *rpc_stats;
        const char **rpc_method_names;
        const char **rpc_code_names;

        /* The worker threads (server.c), guarded by lock: started as calls
         * need them, at most max_concurrent, and kept until shutdown, so a
         * call does not cost a thread's creation and exit. */
        pthread_mutex_t lock;
        pthread_cond_t cond; /* a worker finished a call or exited */
        pthread_cond_t work; /* a call was queued, or workers_stop set */
        struct call_slot *queue_head, *queue_tail; /* handed over, not yet taken */
        pthread_t *workers; /* max_concurrent entries, nworkers started */
        int nworkers, idle;
        int queued; /* calls in the queue */
        int active; /* calls queued or being served */
        bool workers_stop;
};

/* A handler gets the decoded request and fills reply through the reply_*
 * helpers below; it returns 0 or the negative errno it reported. */
typedef int (*tv_handler)(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);

/* Serialize resp into reply with status OK. Returns 0 or -ENOMEM. */
int reply_pack(tv_reply *reply, const ProtobufCMessage *resp);

/* Set status `status` and a message; returns -EINVAL for convenience in
 * validation code (`return reply_invalid(...)`). */
int reply_status(tv_reply *reply, int status, const char *fmt, ...) _printf_(3, 4);
#define reply_invalid(reply, ...) reply_status(reply, TV_STATUS_INVALID_ARGUMENT, __VA_ARGS__)

/* Map the layer's negative errno `r` to a status (tv_status_from_errno),
 * message "<what>: <reason>"; returns r. */
int reply_errno(tv_reply *reply, int r, const char *fmt, ...) _printf_(3, 4);

/* Handlers, by service. */
int identity_get_plugin_info(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int identity_get_plugin_capabilities(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int identity_probe(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int node_get_info(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int node_get_capabilities(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int node_stage_volume(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int node_unstage_volume(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int node_publish_volume(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int node_unpublish_volume(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int node_expand_volume(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int node_get_volume_stats(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);

/* At start-up, before serving: rewrite io.max for every volume this node
 * still has staged (its tvc-* mapping is open), so budgets survive a
 * plugin restart and a recreated pods cgroup. Logs what it could not do.
 * Returns the number of volumes handled, or a negative errno. */
int node_restore_limits(tv_server *s);

/* DeleteVolume's first step (node_erase.c): refuse an LV in use, destroy
 * its LUKS keyslots and header (crypto-erase), then discard its blocks.
 * 0, or the errno it reported in `reply` (-EBUSY: in use or inactive). */
int volume_crypto_erase(tv_pool *p, const tv_lv *lv, tv_reply *reply);
int controller_get_capabilities(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);

/* True when the volume group and thin pool answer and the pool is
 * healthy; why not goes to `why` (may be NULL). */
bool server_pool_ready(tv_server *s, char *why, size_t why_size);

/* The pool, opened on first use. NULL when the VG or pool does not answer:
 * then reply holds UNAVAILABLE and a message naming them. */
tv_pool *server_pool(tv_server *s, tv_reply *reply);

/* The /metrics endpoint on s->metrics_address (nothing when NULL): an
 * HTTP server (libmicrohttpd) with a thread per connection, apart from the
 * gRPC workers. Returns 0, or -EADDRINUSE / -EADDRNOTAVAIL / -EINVAL
 * (logged) when it cannot listen. metrics_http_stop() waits for scrapes in
 * progress and is a no-op when nothing was started. */
int metrics_http_start(tv_server *s);
void metrics_http_stop(tv_server *s);

/* Record one finished call in s->rpc_stats: `path` its gRPC path, `code`
 * its status, `duration_us` from receipt to status. */
void server_rpc_record(tv_server *s, const char *path, int code, uint64_t duration_us);

/* Re-read the config file (SIGHUP); keeps the old one on error. */
int server_reload_config(tv_server *s);

/* Controller handlers. */
int controller_create_volume(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int controller_delete_volume(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int controller_expand_volume(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int controller_validate_volume_capabilities(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int controller_list_volumes(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int controller_get_capacity(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int controller_create_snapshot(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int controller_delete_snapshot(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int controller_list_snapshots(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);
int controller_modify_volume(tv_server *s, const ProtobufCMessage *req, tv_reply *reply);

/* I/O budgets (iolimits.c). The mapping of a staged LV is
 * "tvc-<lv name>". */
int node_mapping_name(const char *lv_name, char *buf, size_t size);
/* Resolve the LV's recorded limits spec for a volume of `size` bytes. */
int iolimits_for_lv(const tv_lv *lv, uint64_t size, tv_limits *ret, tv_reply *reply);
/* Write (or, for unlimited, clear) io.max for the mapping's device on the
 * pods cgroup, enabling the io controller down to it. Limits without a
 * pods cgroup to hold them: -EBUSY (FAILED_PRECONDITION). */
int iolimits_apply(tv_server *s, const char *mapping, const tv_limits *l, tv_reply *reply);
/* Remove the mapping's io.max line; nothing staged is success. */
int iolimits_clear(tv_server *s, const char *mapping, tv_reply *reply);

/* Where LV `lv_name` is staged on this node, re-read its recorded limits
 * and rewrite io.max for its dm-crypt device at once (ControllerModifyVolume,
 * expansion). Not staged: nothing to do, 0. */
int node_reapply_limits(tv_server *s, const char *lv_name, tv_reply *reply);

#endif
