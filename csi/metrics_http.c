/* GET /metrics: the Prometheus endpoint of thinvault-csi, served by
 * libmicrohttpd with a thread per connection, apart from the gRPC workers.
 *
 * What a scrape waits for, and what waits for a scrape:
 *   - it holds no lock of the server while it collects: the pool handle is
 *     taken from server_pool(), which holds pool_mutex only to read the
 *     handle, except while the pool is not open yet: then the scrape, like
 *     Probe or any RPC, opens it under pool_mutex (one lvs, or the demo's
 *     loop pool), and calls that need the pool meanwhile wait for that;
 *   - tv_meter_collect() only reads (lvs, dm status, sysfs), which the
 *     volume layer does without its pool lock, so a CreateVolume that holds
 *     that lock across lvcreate does not stall it;
 *   - lvm2 itself serialises its commands on the VG's file lock: the one or
 *     two lvs a scrape runs wait while an lvcreate/lvremove of that VG runs
 *     (in any process), and an RPC's lvm2 command may wait for a scrape's
 *     lvs the same way, for as long as lvs takes;
 *   - the RPC counters are copied under their own mutex, held for a memcpy.
 * Concurrent scrapes each collect on their own (at most CONNECTION_LIMIT
 * connections). */
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "internal.h"

#define METRICS_PATH "/metrics"
#define CONNECTION_LIMIT 8
#define CONNECTION_TIMEOUT_S 60

static void addrinfo_freep(struct addrinfo **ai) {
        if (*ai)
                freeaddrinfo(*ai);
}

static void rpc_snapshot_freep_(tv_rpc_snapshot **s) {
        tv_rpc_snapshot_free(*s);
}

static void buf_clearp(tv_metrics_buf *b) {
        tv_metrics_buf_clear(b);
}

/* Collect and render the exposition. Returns 0 and a heap text, or
 * -ENOMEM. A pool that does not answer is not an error: the text then
 * says thinvault_pool_up 0. */
static int render(tv_server *s, char **ret_text, size_t *ret_len) {
        _cleanup_(tv_meter_report_freep) tv_meter_report *rep = NULL;
        _cleanup_(rpc_snapshot_freep_) tv_rpc_snapshot *rpc = NULL;
        _cleanup_(buf_clearp) tv_metrics_buf b = {0};
        tv_meter_options opts = {.flags = TV_METER_POOL_STATUS, .cgroup_parent = s->cgroup_parent};
        uint64_t t0 = tv_now_us();
        tv_lvm_error err = {0};
        tv_pool *p;
        int r;

        p = server_pool(s, NULL);
        if (p) {
                r = tv_meter_collect(p, &opts, &rep, &err);
                if (r < 0) {
                        char q[600];
                        log_warn("metrics: cannot collect the pool", "vg=%s thin_pool=%s error=%s", s->vg,
                                 s->thin_pool, tv_log_quote(err.message, q, sizeof(q)));
                        rep = NULL;
                }
        }
        r = tv_rpc_stats_snapshot(s->rpc_stats, &rpc);
        if (r < 0)
                return r;
        tv_metrics_input in = {.report = rep, .vg = s->vg, .thin_pool = s->thin_pool, .rpc = rpc,
                               .scrape_us = tv_now_us() - t0};
        r = tv_metrics_write(&b, &in);
        if (r < 0)
                return r;
        *ret_text = tv_metrics_buf_steal(&b, ret_len);
        return *ret_text ? 0 : -ENOMEM;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, struct MHD_Response *resp) {
        enum MHD_Result ret;

        if (!resp)
                return MHD_NO; /* MHD closes the connection */
        ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *text,
                                    const char *allow) {
        struct MHD_Response *resp =
                MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);

        if (resp && (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8") != MHD_YES ||
                     (allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES))) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        return respond(conn, status, resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        tv_server *s = cls;
        struct MHD_Response *resp;
        char *text = NULL;
        size_t len = 0;
        uint64_t t0 = tv_now_ms();
        int r;

        if (strcmp(url, METRICS_PATH) != 0)
                return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found: thinvault-csi serves " METRICS_PATH "\n",
                                    NULL);
        /* HEAD is GET without the body (MHD drops it). */
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET\n", "GET, HEAD");

        r = render(s, &text, &len);
        if (r < 0) {
                log_error("metrics: cannot render", "err=%d", r);
                return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory rendering metrics\n", NULL);
        }
        resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(text);
                return MHD_NO;
        }
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, TV_METRICS_CONTENT_TYPE) != MHD_YES) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        log_debug("metrics scraped", "bytes=%zu ms=%" PRIu64, len, tv_now_ms() - t0);
        return respond(conn, MHD_HTTP_OK, resp);
}

static _printf_(2, 0) void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        char msg[512], q[600];

        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        (void)tv_strstrip_end(msg);
        log_warn("metrics http", "error=%s", tv_log_quote(msg, q, sizeof(q)));
}

static int resolve(const char *host, uint16_t port, struct addrinfo **ret) {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        char service[8];
        int r;

        (void)snprintf(service, sizeof(service), "%u", port);
        /* ":PORT": every IPv4 address, as Prometheus exporters do. */
        if (!*host)
                hints.ai_family = AF_INET;
        r = getaddrinfo(*host ? host : NULL, service, &hints, ret);
        if (r == EAI_MEMORY)
                return -ENOMEM;
        return r == 0 ? 0 : -EADDRNOTAVAIL;
}

int metrics_http_start(tv_server *s) {
        _cleanup_(addrinfo_freep) struct addrinfo *ai = NULL;
        const union MHD_DaemonInfo *info;
        char host[256];
        uint16_t port;
        unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
        int r;

        if (!s->metrics_address)
                return 0;
        r = tv_metrics_parse_address(s->metrics_address, host, sizeof(host), &port);
        if (r < 0)
                return tv_log_errno(r, "--metrics-address must be HOST:PORT", "metrics_address=%s", s->metrics_address);
        r = resolve(host, port, &ai);
        if (r < 0)
                return tv_log_errno(r, "cannot resolve --metrics-address", "metrics_address=%s", s->metrics_address);
        if (ai->ai_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        s->metrics_daemon = MHD_start_daemon(flags, port, NULL, NULL, on_request, s,
                                             MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                                             MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
                                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
                                             MHD_OPTION_END);
        if (!s->metrics_daemon)
                return tv_log_errno(-EADDRINUSE, "cannot listen on --metrics-address (in use, or not an address of this host)",
                                    "metrics_address=%s", s->metrics_address);
        info = MHD_get_daemon_info(s->metrics_daemon, MHD_DAEMON_INFO_BIND_PORT);
        log_info("serving metrics", "metrics_address=%s port=%u path=" METRICS_PATH, s->metrics_address,
                 info ? (unsigned)info->port : (unsigned)port);
        return 0;
}

void metrics_http_stop(tv_server *s) {
        if (!s->metrics_daemon)
                return;
        MHD_stop_daemon(s->metrics_daemon);
        s->metrics_daemon = NULL;
}
