/* The gRPC core transport of thinvault-csi.
 *
 * One notification completion queue, owned by tv_server_run()'s thread,
 * receives new calls. Every call is requested with a completion queue of
 * its own bound to it and is then served start to finish by a worker
 * thread (decode, dispatch, reply), so a slow LVM call never blocks
 * Probe. Workers are started as calls need them, at most max_concurrent,
 * and wait for the next call rather than exit, so memory levels off at the
 * highest concurrency seen instead of following thread churn; beyond
 * max_concurrent calls in flight new calls wait in gRPC until one
 * finishes. */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "../rpc/grpcbuf.h"
#include "internal.h"

#define REQUEST_SLOTS 8
#define DEFAULT_MAX_CONCURRENT 32
#define MAX_MESSAGE_BYTES (4 << 20)
/* A client that opens a call and never sends its request is cut off. */
#define RECV_TIMEOUT_MS 30000

typedef struct call_slot {
        tv_server *server;
        grpc_call *call;
        grpc_call_details details;
        grpc_metadata_array metadata;
        grpc_completion_queue *cq; /* bound to call; only this call's ops */
        struct call_slot *next;    /* in the server's queue */
} call_slot;

/* ---- endpoint ---------------------------------------------------------- */

static int endpoint_socket_path(const char *endpoint, char **ret) {
        const char *p;

        if (strncmp(endpoint, "unix://", 7) == 0)
                p = endpoint + 7;
        else if (strncmp(endpoint, "unix:", 5) == 0)
                p = endpoint + 5;
        else
                return -EINVAL;
        if (p[0] != '/' || strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path))
                return -EINVAL;
        *ret = strdup(p);
        return *ret ? 0 : -ENOMEM;
}

/* 1 when something accepts connections on path, 0 when nothing does. */
static int socket_is_live(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
        return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 1 : 0;
}

/* Take the endpoint: lock file first (so two instances cannot race), then
 * remove a socket file nobody answers on. Never removes anything that is
 * not a socket, and never steals a live one. */
static int endpoint_claim(tv_server *s) {
        _cleanup_free_ char *dir_copy = strdup(s->socket_path);
        struct stat st;
        const char *dir;
        int r;

        if (!dir_copy)
                return -ENOMEM;
        dir = dirname(dir_copy);
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return tv_log_errno(-ENOENT, "socket directory does not exist", "dir=%s", dir);
        if (access(dir, W_OK | X_OK) < 0)
                return tv_log_errno(-EACCES, "socket directory is not writable", "dir=%s", dir);

        s->lock_path = tv_asprintf("%s.lock", s->socket_path);
        if (!s->lock_path)
                return -ENOMEM;
        s->lock_fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->lock_fd < 0)
                return tv_log_errno(-errno, "cannot open lock file", "path=%s", s->lock_path);
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? -EADDRINUSE : -errno;
                return tv_log_errno(r, "another thinvault-csi serves this endpoint; refusing to take it over",
                                    "socket=%s lock=%s", s->socket_path, s->lock_path);
        }

        if (lstat(s->socket_path, &st) < 0) {
                if (errno == ENOENT)
                        return 0;
                return tv_log_errno(-errno, "cannot stat socket path", "socket=%s", s->socket_path);
        }
        if (!S_ISSOCK(st.st_mode))
                return tv_log_errno(-EEXIST, "endpoint path exists and is not a socket; not removing it",
                                    "socket=%s", s->socket_path);
        r = socket_is_live(s->socket_path);
        if (r < 0)
                return tv_log_errno(r, "cannot probe socket", "socket=%s", s->socket_path);
        if (r > 0)
                return tv_log_errno(-EADDRINUSE, "a live server answers on the endpoint; refusing to take it over",
                                    "socket=%s", s->socket_path);
        if (unlink(s->socket_path) < 0)
                return tv_log_errno(-errno, "cannot remove stale socket", "socket=%s", s->socket_path);
        log_info("removed stale socket", "socket=%s", s->socket_path);
        return 0;
}

/* ---- server object ------------------------------------------------------ */

/* The RPC statistics, labelled with the method table's "Service.Method"
 * names and the gRPC status names. */
static int rpc_stats_init(tv_server *s) {
        s->rpc_method_names = calloc(tv_rpc_n_methods, sizeof(*s->rpc_method_names));
        s->rpc_code_names = calloc(TV_METRICS_N_CODES, sizeof(*s->rpc_code_names));
        if (!s->rpc_method_names || !s->rpc_code_names)
                return -ENOMEM;
        for (size_t i = 0; i < tv_rpc_n_methods; i++)
                s->rpc_method_names[i] = tv_rpc_methods[i].name;
        for (int c = 0; c < TV_METRICS_N_CODES; c++)
                s->rpc_code_names[c] = tv_status_name(c);
        return tv_rpc_stats_new(s->rpc_method_names, tv_rpc_n_methods, s->rpc_code_names, &s->rpc_stats);
}

static void rpc_stats_clear(tv_server *s) {
        tv_rpc_stats_free(s->rpc_stats);
        free(s->rpc_method_names);
        free(s->rpc_code_names);
}

static int server_alloc(tv_server **ret) {
        tv_server *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        if (rpc_stats_init(s) < 0) {
                rpc_stats_clear(s);
                free(s);
                return -ENOMEM;
        }
        s->lock_fd = -1;
        s->max_concurrent = DEFAULT_MAX_CONCURRENT;
        atomic_init(&s->next_request_id, 1);
        quota_config_init(&s->config);
        if (pthread_mutex_init(&s->lock, NULL) != 0)
                goto fail_lock;
        if (pthread_cond_init(&s->cond, NULL) != 0)
                goto fail_cond;
        if (pthread_cond_init(&s->work, NULL) != 0)
                goto fail_work;
        if (pthread_mutex_init(&s->pool_mutex, NULL) != 0)
                goto fail_pool;
        if (pthread_rwlock_init(&s->config_lock, NULL) != 0)
                goto fail_config;
        *ret = s;
        return 0;

        /* The one unwinding ladder in the tree: pthread objects have no
         * "uninitialised" value to let a cleanup function tell. */
fail_config:
        pthread_mutex_destroy(&s->pool_mutex);
fail_pool:
        pthread_cond_destroy(&s->work);
fail_work:
        pthread_cond_destroy(&s->cond);
fail_cond:
        pthread_mutex_destroy(&s->lock);
fail_lock:
        rpc_stats_clear(s);
        free(s);
        return -ENOMEM;
}

void tv_server_free(tv_server *s) {
        if (!s)
                return;
        if (s->lock_fd >= 0)
                (void)close(s->lock_fd);
        tv_pool_free(s->pool);
        quota_config_clear(&s->config);
        free(s->endpoint);
        free(s->socket_path);
        free(s->lock_path);
        free(s->node_id);
        free(s->vg);
        free(s->thin_pool);
        free(s->loop_file);
        free(s->config_path);
        free(s->cgroup_parent);
        free(s->kubelet_dir);
        free(s->master_key);
        free(s->metrics_address);
        free(s->workers);
        rpc_stats_clear(s);
        pthread_rwlock_destroy(&s->config_lock);
        pthread_mutex_destroy(&s->pool_mutex);
        pthread_cond_destroy(&s->work);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s);
}
TV_DEFINE_FREEP(tv_server, tv_server_free)

static int resolve_node_id(const char *given, char **ret) {
        char host[256];

        if (given && *given) {
                *ret = strdup(given);
                return *ret ? 0 : -ENOMEM;
        }
        if (gethostname(host, sizeof(host)) < 0)
                return -errno;
        host[sizeof(host) - 1] = '\0';
        *ret = strdup(host);
        return *ret ? 0 : -ENOMEM;
}

int tv_server_new_for_test(const char *node_id, tv_server **ret) {
        _cleanup_(tv_server_freep) tv_server *s = NULL;
        int r;

        r = server_alloc(&s);
        if (r < 0)
                return r;
        r = resolve_node_id(node_id, &s->node_id);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

/* The Node service's flags: absolute paths (the kubelet directory also
 * clean, since every node path is compared against it letter by letter). */
static int node_config(tv_server *s, const tv_config *cfg) {
        const char *k = cfg->kubelet_dir;
        size_t n = k ? strlen(k) : 0;

        if (k && (k[0] != '/' || strstr(k, "//") || strstr(k, "/./") || strstr(k, "/../") ||
                  (n > 1 && k[n - 1] == '/') || (n >= 2 && strcmp(k + n - 2, "/.") == 0) ||
                  (n >= 3 && strcmp(k + n - 3, "/..") == 0)))
                return tv_log_errno(-EINVAL, "--kubelet-dir must be an absolute path without ., .. or trailing /",
                                    "kubelet_dir=%s", k);
        if (cfg->master_key && cfg->master_key[0] != '/')
                return tv_log_errno(-EINVAL, "--master-key must be an absolute path", "master_key=%s", cfg->master_key);
        if (cfg->cgroup_parent && cfg->cgroup_parent[0] != '/')
                return tv_log_errno(-EINVAL, "--cgroup-parent must be an absolute path", "cgroup_parent=%s",
                                    cfg->cgroup_parent);
        s->kubelet_dir = k ? strdup(k) : NULL;
        s->master_key = cfg->master_key ? strdup(cfg->master_key) : NULL;
        s->cgroup_parent = cfg->cgroup_parent ? strdup(cfg->cgroup_parent) : NULL;
        if ((k && !s->kubelet_dir) || (cfg->master_key && !s->master_key) || (cfg->cgroup_parent && !s->cgroup_parent))
                return -ENOMEM;
        return 0;
}

/* --metrics-address: checked here so a typo fails at start, not at bind. */
static int metrics_config(tv_server *s, const tv_config *cfg) {
        char host[256];
        uint16_t port;

        if (!cfg->metrics_address || !*cfg->metrics_address)
                return 0;
        if (tv_metrics_parse_address(cfg->metrics_address, host, sizeof(host), &port) < 0)
                return tv_log_errno(-EINVAL, "--metrics-address must be HOST:PORT, [IPV6]:PORT or :PORT",
                                    "metrics_address=%s", cfg->metrics_address);
        s->metrics_address = strdup(cfg->metrics_address);
        return s->metrics_address ? 0 : -ENOMEM;
}

int tv_server_new(const tv_config *cfg, tv_server **ret) {
        _cleanup_(tv_server_freep) tv_server *s = NULL;
        int r;

        if (!cfg->endpoint || !*cfg->endpoint)
                return tv_log_errno(-EINVAL, "no endpoint: pass --endpoint unix:///path/csi.sock or set CSI_ENDPOINT", NULL);
        r = server_alloc(&s);
        if (r < 0)
                return r;
        if (cfg->max_concurrent > 0)
                s->max_concurrent = cfg->max_concurrent;
        if (!cfg->vg || !tv_lvm_name_valid(cfg->vg) || !cfg->thin_pool || !tv_lvm_name_valid(cfg->thin_pool))
                return tv_log_errno(-EINVAL, "--vg and --thin-pool must name the volume group and its thin pool",
                                    "vg=%s thin_pool=%s", cfg->vg ? cfg->vg : "", cfg->thin_pool ? cfg->thin_pool : "");
        s->endpoint = strdup(cfg->endpoint);
        s->vg = strdup(cfg->vg);
        s->thin_pool = strdup(cfg->thin_pool);
        s->loop_file = cfg->loop_file ? strdup(cfg->loop_file) : NULL;
        s->loop_size = cfg->loop_size;
        s->lvm_timeout_ms = cfg->lvm_timeout_ms;
        s->config_path = cfg->config ? strdup(cfg->config) : NULL;
        if (!s->endpoint || !s->vg || !s->thin_pool || (cfg->loop_file && !s->loop_file) ||
            (cfg->config && !s->config_path))
                return -ENOMEM;
        r = node_config(s, cfg);
        if (r < 0)
                return r;
        r = metrics_config(s, cfg);
        if (r < 0)
                return r;
        if (s->config_path) {
                r = server_reload_config(s);
                if (r < 0)
                        return r;
        }
        r = endpoint_socket_path(cfg->endpoint, &s->socket_path);
        if (r == -EINVAL)
                return tv_log_errno(r, "endpoint must be unix:///absolute/path (shorter than 108 bytes)",
                                    "endpoint=%s", cfg->endpoint);
        if (r < 0)
                return r;
        r = resolve_node_id(cfg->node_id, &s->node_id);
        if (r < 0)
                return tv_log_errno(r, "cannot determine node id; pass --node-id", NULL);
        r = endpoint_claim(s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

void tv_server_stop(tv_server *s) {
        s->stop = 1;
}

void tv_server_request_reload(tv_server *s) {
        s->reload = 1;
}

/* ---- one call ---------------------------------------------------------- */

static call_slot *slot_new(tv_server *s) {
        call_slot *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->server = s;
        c->cq = grpc_completion_queue_create_for_next(NULL);
        if (!c->cq) {
                free(c);
                return NULL;
        }
        grpc_call_details_init(&c->details);
        grpc_metadata_array_init(&c->metadata);
        return c;
}

static void cq_drain_destroy(grpc_completion_queue *cq) {
        grpc_completion_queue_shutdown(cq);
        while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy(cq);
}

static void slot_free(call_slot *c) {
        if (c->call)
                grpc_call_unref(c->call);
        grpc_call_details_destroy(&c->details);
        grpc_metadata_array_destroy(&c->metadata);
        cq_drain_destroy(c->cq);
        free(c);
}

static bool batch_wait(call_slot *c, grpc_op *ops, size_t n, int timeout_ms) {
        gpr_timespec deadline = timeout_ms < 0 ? gpr_inf_future(GPR_CLOCK_MONOTONIC)
                                               : gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                                              gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
        grpc_event ev;

        if (grpc_call_start_batch(c->call, ops, n, c, NULL) != GRPC_CALL_OK)
                return false;
        ev = grpc_completion_queue_next(c->cq, deadline, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
                /* Cancel, then wait for the batch: its buffers are ours. */
                grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED,
                                             "request message not received in time", NULL);
                ev = grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                return false;
        }
        return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* The client's x-request-id when it sent a sane one, else our counter. */
static void request_id(call_slot *c, char *buf, size_t size) {
        for (size_t i = 0; i < c->metadata.count; i++) {
                grpc_metadata *m = &c->metadata.metadata[i];
                size_t n = GRPC_SLICE_LENGTH(m->value);
                const char *v = (const char *)GRPC_SLICE_START_PTR(m->value);
                bool ok = n > 0 && n < size && n <= 64;

                if (grpc_slice_str_cmp(m->key, "x-request-id") != 0)
                        continue;
                for (size_t k = 0; ok && k < n; k++)
                        ok = (v[k] >= '0' && v[k] <= '9') || (v[k] >= 'a' && v[k] <= 'z') ||
                             (v[k] >= 'A' && v[k] <= 'Z') || v[k] == '-' || v[k] == '_' || v[k] == '.';
                if (ok) {
                        memcpy(buf, v, n);
                        buf[n] = '\0';
                        return;
                }
        }
        (void)snprintf(buf, size, "r%llu",
                       (unsigned long long)atomic_fetch_add(&c->server->next_request_id, 1));
}

static void log_rpc(const char *method, const char *rid, uint64_t ms, const tv_reply *reply) {
        char qmsg[1200];
        tv_log_level level = reply->status == TV_STATUS_OK             ? TV_LOG_INFO
                             : reply->status == TV_STATUS_INTERNAL ||
                                               reply->status == TV_STATUS_UNKNOWN ||
                                               reply->status == TV_STATUS_DATA_LOSS
                                     ? TV_LOG_ERROR
                                     : TV_LOG_WARN;

        if (reply->status == TV_STATUS_OK)
                tv_log(level, "rpc", "method=%s request_id=%s ms=%llu status=OK", method, rid, (unsigned long long)ms);
        else
                tv_log(level, "rpc", "method=%s request_id=%s ms=%llu status=%s error=%s", method, rid,
                       (unsigned long long)ms, tv_status_name(reply->status),
                       tv_log_quote(reply->message, qmsg, sizeof(qmsg)));
}

void server_rpc_record(tv_server *s, const char *path, int code, uint64_t duration_us) {
        const tv_rpc_method *m = path && path[0] == '/' ? tv_rpc_method_find(path) : NULL;

        /* Paths outside the table count as "unknown" (index n). */
        tv_rpc_stats_record(s->rpc_stats, m ? (size_t)(m - tv_rpc_methods) : tv_rpc_n_methods, code, duration_us);
}

/* The end of every call: one log line and the metrics, from the same
 * status and duration. */
static void rpc_done(call_slot *c, const char *method, const char *rid, uint64_t t0_us, const tv_reply *reply) {
        uint64_t us = tv_now_us() - t0_us;
        char qmethod[300];

        server_rpc_record(c->server, method, reply->status, us);
        log_rpc(tv_log_quote(method, qmethod, sizeof(qmethod)), rid, us / 1000, reply);
}

static void serve_call(call_slot *c) {
        grpc_byte_buffer *in = NULL, *out = NULL;
        _cleanup_free_ uint8_t *body = NULL;
        _cleanup_free_ char *method = grpc_slice_to_c_string(c->details.method);
        tv_reply reply = {0};
        uint64_t t0 = tv_now_us();
        char rid[80];
        size_t len = 0;
        int cancelled = 0;
        grpc_op ops[4];
        size_t n = 0;

        request_id(c, rid, sizeof(rid));
        memset(ops, 0, sizeof(ops));
        ops[0].op = GRPC_OP_RECV_MESSAGE;
        ops[0].data.recv_message.recv_message = &in;
        if (!batch_wait(c, ops, 1, RECV_TIMEOUT_MS)) {
                reply.status = TV_STATUS_CANCELLED;
                (void)snprintf(reply.message, sizeof(reply.message), "call cancelled before its request arrived");
                rpc_done(c, method ? method : "", rid, t0, &reply);
                if (in)
                        grpc_byte_buffer_destroy(in);
                return;
        }

        if (!in)
                reply_invalid(&reply, "no request message: a unary CSI call carries exactly one");
        else if (tv_bb_to_bytes(in, &body, &len) < 0)
                reply_status(&reply, TV_STATUS_RESOURCE_EXHAUSTED, "out of memory reading the request");
        else
                tv_dispatch(c->server, method ? method : "", body, len, &reply);
        if (in)
                grpc_byte_buffer_destroy(in);

        memset(ops, 0, sizeof(ops));
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        if (reply.status == TV_STATUS_OK) {
                out = tv_bb_from_bytes(reply.body, reply.body_len);
                ops[n].op = GRPC_OP_SEND_MESSAGE;
                ops[n++].data.send_message.send_message = out;
        }
        grpc_slice details = grpc_slice_from_copied_string(reply.message);
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = (grpc_status_code)reply.status;
        ops[n++].data.send_status_from_server.status_details = &details;
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n++].data.recv_close_on_server.cancelled = &cancelled;
        (void)batch_wait(c, ops, n, -1);
        grpc_slice_unref(details);
        if (out)
                grpc_byte_buffer_destroy(out);

        rpc_done(c, method ? method : "", rid, t0, &reply);
        tv_reply_clear(&reply);
}

/* The queue's first call, or NULL when it is empty. Called with s->lock held. */
static call_slot *queue_pop(tv_server *s) {
        call_slot *c = s->queue_head;

        if (c) {
                s->queue_head = c->next;
                if (!s->queue_head)
                        s->queue_tail = NULL;
                c->next = NULL;
                s->queued--;
        }
        return c;
}

/* Takes the next queued call, waiting for one; NULL once workers_stop is
 * set and the queue is empty. Called with s->lock held. */
static call_slot *queue_take(tv_server *s) {
        while (!s->queue_head && !s->workers_stop) {
                s->idle++;
                pthread_cond_wait(&s->work, &s->lock);
                s->idle--;
        }
        return queue_pop(s);
}

static void call_finished(tv_server *s) {
        pthread_mutex_lock(&s->lock);
        s->active--;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
}

static void *worker_main(void *arg) {
        tv_server *s = arg;

        /* named for top -H, ps -L and gdb; the name is cosmetic */
        (void)pthread_setname_np(pthread_self(), "tv-worker");
        for (;;) {
                call_slot *c;

                pthread_mutex_lock(&s->lock);
                c = queue_take(s);
                pthread_mutex_unlock(&s->lock);
                if (!c)
                        return NULL;
                serve_call(c);
                slot_free(c);
                call_finished(s);
        }
}

/* Blocks while max_concurrent calls are in flight, then hands c to an idle
 * worker, or to a new one while fewer than max_concurrent run. */
static void worker_start(tv_server *s, call_slot *c) {
        int r = 0, nworkers;

        pthread_mutex_lock(&s->lock);
        while (s->active >= s->max_concurrent)
                pthread_cond_wait(&s->cond, &s->lock);
        s->active++;
        if (s->queue_tail)
                s->queue_tail->next = c;
        else
                s->queue_head = c;
        s->queue_tail = c;
        s->queued++;
        pthread_cond_signal(&s->work);
        /* Every call not yet taken needs an idle worker of its own. */
        if (s->idle < s->queued && s->nworkers < s->max_concurrent) {
                r = pthread_create(&s->workers[s->nworkers], NULL, worker_main, s);
                if (r == 0)
                        s->nworkers++;
        }
        nworkers = s->nworkers;
        pthread_mutex_unlock(&s->lock);

        if (r != 0) {
                /* No thread to spare: serve it here rather than drop it. A
                 * worker may have taken it meanwhile; then there is nothing
                 * to serve, and waiting here would stop the loop. */
                log_warn("cannot start worker thread; serving inline", "err=%d workers=%d", r, nworkers);
                pthread_mutex_lock(&s->lock);
                c = queue_pop(s);
                pthread_mutex_unlock(&s->lock);
                if (c) {
                        serve_call(c);
                        slot_free(c);
                        call_finished(s);
                }
        }
}

/* After the last call: every worker wakes, finds the queue empty, and is
 * joined. */
static void workers_stop(tv_server *s) {
        pthread_mutex_lock(&s->lock);
        while (s->active > 0)
                pthread_cond_wait(&s->cond, &s->lock);
        s->workers_stop = true;
        pthread_cond_broadcast(&s->work);
        pthread_mutex_unlock(&s->lock);
        for (int i = 0; i < s->nworkers; i++)
                (void)pthread_join(s->workers[i], NULL);
        s->nworkers = 0;
}

/* ---- the loop ---------------------------------------------------------- */

typedef struct {
        grpc_server *grpc;
        grpc_completion_queue *cq;
        int outstanding; /* requested slots not yet completed */
} transport;

static int request_next(tv_server *s, transport *t) {
        call_slot *c = slot_new(s);

        if (!c)
                return -ENOMEM;
        if (grpc_server_request_call(t->grpc, &c->call, &c->details, &c->metadata, c->cq, t->cq, c) !=
            GRPC_CALL_OK) {
                slot_free(c);
                return -EIO;
        }
        t->outstanding++;
        return 0;
}

static int transport_start(tv_server *s, transport *t) {
        grpc_arg args[] = {
                {.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                 .value.integer = MAX_MESSAGE_BYTES},
                {.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
                 .value.integer = MAX_MESSAGE_BYTES},
        };
        grpc_channel_args cargs = {.num_args = ELEMENTSOF(args), .args = args};
        grpc_server_credentials *creds;
        _cleanup_free_ char *addr = tv_asprintf("unix:%s", s->socket_path);
        int port;

        if (!addr)
                return -ENOMEM;
        t->grpc = grpc_server_create(&cargs, NULL);
        t->cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(t->grpc, t->cq, NULL);
        creds = grpc_insecure_server_credentials_create();
        port = grpc_server_add_http2_port(t->grpc, addr, creds);
        grpc_server_credentials_release(creds);
        if (port == 0)
                return tv_log_errno(-EADDRNOTAVAIL, "cannot listen on endpoint", "socket=%s", s->socket_path);
        grpc_server_start(t->grpc);
        for (int i = 0; i < REQUEST_SLOTS; i++)
                if (request_next(s, t) < 0)
                        return tv_log_errno(-EIO, "cannot request calls from gRPC", NULL);
        return 0;
}

static void transport_stop(tv_server *s, transport *t) {
        if (t->cq) {
                cq_drain_destroy(t->cq);
                t->cq = NULL;
        }
        if (t->grpc) {
                grpc_server_destroy(t->grpc);
                t->grpc = NULL;
        }
}

static gpr_timespec tick(void) {
        return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(200, GPR_TIMESPAN));
}

int tv_server_run(tv_server *s) {
        transport t = {0};
        bool shutting_down = false, shut_down = false;
        static int shutdown_tag;
        int r;

        /* Before the first call: a volume staged before a restart gets its
         * io.max back before anything can be asked of it. */
        (void)node_restore_limits(s);
        s->workers = calloc((size_t)s->max_concurrent, sizeof(*s->workers));
        if (!s->workers)
                return tv_log_errno(-ENOMEM, "cannot allocate the worker table", "max_concurrent=%d", s->max_concurrent);
        r = metrics_http_start(s);
        if (r < 0)
                return r;
        grpc_init();
        r = transport_start(s, &t);
        if (r < 0) {
                metrics_http_stop(s);
                if (t.grpc) {
                        grpc_server_shutdown_and_notify(t.grpc, t.cq, &shutdown_tag);
                        grpc_server_cancel_all_calls(t.grpc);
                        while (!shut_down || t.outstanding > 0) {
                                grpc_event ev = grpc_completion_queue_next(t.cq, tick(), NULL);
                                if (ev.type != GRPC_OP_COMPLETE)
                                        continue;
                                if (ev.tag == &shutdown_tag)
                                        shut_down = true;
                                else {
                                        t.outstanding--;
                                        slot_free(ev.tag);
                                }
                        }
                }
                transport_stop(s, &t);
                grpc_shutdown();
                return r;
        }
        log_info("serving", "endpoint=%s node_id=%s driver=%s version=%s max_concurrent=%d", s->endpoint,
                 s->node_id, TV_DRIVER_NAME, TV_VERSION, s->max_concurrent);

        while (!shut_down || t.outstanding > 0) {
                grpc_event ev = grpc_completion_queue_next(t.cq, tick(), NULL);

                if (s->reload) {
                        s->reload = 0;
                        (void)server_reload_config(s);
                }
                if (s->stop && !shutting_down) {
                        log_info("shutting down: finishing in-flight calls", "endpoint=%s", s->endpoint);
                        grpc_server_shutdown_and_notify(t.grpc, t.cq, &shutdown_tag);
                        shutting_down = true;
                }
                if (ev.type != GRPC_OP_COMPLETE)
                        continue;
                if (ev.tag == &shutdown_tag) {
                        shut_down = true;
                        continue;
                }
                call_slot *c = ev.tag;
                t.outstanding--;
                if (!ev.success || shutting_down) {
                        /* Requests still pending at shutdown come back unsuccessful. */
                        if (ev.success)
                                grpc_call_cancel_with_status(c->call, GRPC_STATUS_UNAVAILABLE,
                                                             "thinvault-csi is shutting down", NULL);
                        slot_free(c);
                        continue;
                }
                worker_start(s, c);
                if (request_next(s, &t) < 0)
                        log_error("cannot request the next call", "outstanding=%d", t.outstanding);
        }

        /* Shutdown notified means gRPC has no call left, but a worker may
         * still be freeing its slot. */
        workers_stop(s);

        transport_stop(s, &t);
        grpc_shutdown();
        metrics_http_stop(s);
        if (unlink(s->socket_path) < 0 && errno != ENOENT)
                log_warn("cannot remove socket", "socket=%s", s->socket_path);
        log_info("stopped", "endpoint=%s", s->endpoint);
        return 0;
}
