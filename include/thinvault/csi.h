/* thinvault: the CSI plugin (Identity, Controller, Node) over gRPC core.
 *
 * main.c fills a tv_config from flags, tv_server_new() takes the endpoint
 * and opens the pool, tv_server_run() serves until SIGTERM/SIGINT.
 * tv_dispatch() is the request path without the transport, for tests. */
#ifndef THINVAULT_CSI_H
#define THINVAULT_CSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thinvault/rpc.h"

#define TV_DRIVER_NAME "thinvault.csi.io"
#define TV_TOPOLOGY_KEY "topology.thinvault.io/node"

typedef struct {
        const char *endpoint;  /* "unix:///run/csi/csi.sock" */
        const char *node_id;   /* NULL: the host name */
        const char *vg;        /* volume group */
        const char *thin_pool; /* thin pool LV in vg */
        const char *loop_file; /* demo/tests: build vg + pool on this file */
        uint64_t loop_size;    /* its size when it must be created */
        const char *config;    /* quota/threshold JSON file (NULL: defaults) */
        int max_concurrent;    /* RPCs served at once (0: default 32) */
        int lvm_timeout_ms;    /* lvm2 command time-out (0: the lvm layer's 60 s) */
        const char *kubelet_dir;   /* node paths must be inside (NULL: /var/lib/kubelet) */
        const char *master_key;    /* file tenant keys are derived from (NULL: none) */
        const char *cgroup_parent; /* cgroup for io.max (NULL: found, kubepods[.slice]) */
        const char *metrics_address; /* "HOST:PORT" of GET /metrics (NULL or "": off) */
} tv_config;

typedef struct tv_server tv_server;

/* Validate the config, resolve the node id, claim the endpoint (refusing
 * one that another live instance serves) and open the pool (a pool that
 * does not answer is not an error: Probe says not ready). Returns 0,
 * -EINVAL (bad flag; logged), -EADDRINUSE (another instance), -ENOENT /
 * -EACCES (socket directory missing / not writable), -ENOMEM. */
int tv_server_new(const tv_config *cfg, tv_server **ret);

/* Serve until tv_server_stop() (or SIGTERM/SIGINT when the caller routes
 * them there). In-flight calls finish before this returns; the socket file
 * is removed. Returns 0 or a negative errno when listening failed. */
int tv_server_run(tv_server *s);

/* Async-signal-safe: ask tv_server_run() to stop. */
void tv_server_stop(tv_server *s);

/* Async-signal-safe: ask tv_server_run() to re-read the config file. */
void tv_server_request_reload(tv_server *s);

void tv_server_free(tv_server *s);

/* A server without transport or pool, for unit tests of dispatch. */
int tv_server_new_for_test(const char *node_id, tv_server **ret);

/* What a handler produced: a status, a message a person can act on, and
 * on OK the serialized response. */
typedef struct {
        int status;        /* tv_status */
        char message[1024];
        uint8_t *body;     /* heap, serialized response, when OK */
        size_t body_len;
} tv_reply;

void tv_reply_clear(tv_reply *r);

/* Decode `body` as the request of `path`, validate, run the handler and
 * fill `reply`. Unknown paths and unbuilt methods: UNIMPLEMENTED; bodies
 * that are not the method's protobuf: INVALID_ARGUMENT. Never fails
 * otherwise: every outcome is a status in reply. */
void tv_dispatch(tv_server *s, const char *path, const uint8_t *body, size_t len, tv_reply *reply);

/* The gRPC status for a negative errno from a layer below (STYLE.md). */
int tv_status_from_errno(int r);

#endif
