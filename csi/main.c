/* thinvault-csi: flags, signals, and the server's life. */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "thinvault/csi.h"
#include "thinvault/util.h"

static tv_server *the_server;

static void on_stop_signal(int sig) {
        if (the_server)
                tv_server_stop(the_server);
}

static void on_reload_signal(int sig) {
        if (the_server)
                tv_server_request_reload(the_server);
}

/* "512M", "2G", "1073741824" -> bytes. */
static int parse_size(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;
        unsigned shift = 0;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s)
                return -EINVAL;
        if (*end == 'K' || *end == 'k')
                shift = 10;
        else if (*end == 'M' || *end == 'm')
                shift = 20;
        else if (*end == 'G' || *end == 'g')
                shift = 30;
        else if (*end == 'T' || *end == 't')
                shift = 40;
        else if (*end != '\0')
                return -EINVAL;
        if (shift && end[1] != '\0' && strcmp(end + 1, "i") != 0 && strcmp(end + 1, "iB") != 0)
                return -EINVAL;
        if (v > (UINT64_MAX >> shift))
                return -EINVAL;
        *ret = (uint64_t)v << shift;
        return 0;
}

static void usage(FILE *f) {
        fputs("Usage: thinvault-csi [OPTIONS]\n"
              "Serve the CSI Identity, Controller and Node services of " TV_DRIVER_NAME " on a unix socket.\n"
              "\n"
              "  --endpoint unix:///PATH   socket to serve on (default: $CSI_ENDPOINT)\n"
              "  --node-id ID              this node's id (default: the host name)\n"
              "  --vg NAME                 volume group holding the thin pool\n"
              "  --thin-pool NAME          thin pool LV in that volume group\n"
              "  --loop-file PATH          demo/tests: build the volume group and thin pool on this file\n"
              "                            (a loop device) when they do not exist\n"
              "  --loop-size SIZE          size of that file when it is created (default 1G; K/M/G/T)\n"
              "  --config PATH             quotas and pool thresholds (JSON; re-read on SIGHUP)\n"
              "  --max-concurrent N        RPCs served at once (default 32)\n"
              "  --lvm-timeout SECONDS     kill an lvm2 command that runs longer (default 60); the RPC\n"
              "                            fails with DEADLINE_EXCEEDED and may be retried\n"
              "  --kubelet-dir PATH        every staging/target path must be inside it (default /var/lib/kubelet)\n"
              "  --master-key PATH         file that tenant keys are derived from, for keySource \"derived\"\n"
              "                            (mode 0600/0400; without it such volumes are not staged)\n"
              "  --cgroup-parent PATH      cgroup that parents all pods, where io.max goes\n"
              "                            (default: kubepods.slice or kubepods under the cgroup2 mount)\n"
              "  --metrics-address HOST:PORT  serve Prometheus metrics on http://HOST:PORT/metrics\n"
              "                            (\":9808\" for every IPv4 address; default: off)\n"
              "  --log-level LEVEL         error, warn, info (default) or debug\n"
              "  --version                 print the version and exit\n"
              "  --help                    this text\n",
              f);
}

static int install_signals(void) {
        struct sigaction sa = {.sa_handler = on_stop_signal};

        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
                return -errno;
        sa.sa_handler = on_reload_signal;
        if (sigaction(SIGHUP, &sa, NULL) < 0)
                return -errno;
        sa.sa_handler = SIG_IGN;
        if (sigaction(SIGPIPE, &sa, NULL) < 0)
                return -errno;
        return 0;
}

/* glibc gives threads their own malloc arenas (up to 8 a core) and keeps
 * what each arena once held. With up to --max-concurrent workers beside
 * gRPC's and the metrics server's threads, the plugin's resident size then
 * follows which threads happened to serve the largest calls (a whole-VG
 * listing, say) more than what it holds. Two arenas serve its allocations
 * (short-lived JSON and protobuf buffers) and keep its RSS steady under
 * load. An explicit MALLOC_ARENA_MAX in the environment wins. */
static void limit_malloc_arenas(void) {
        if (!getenv("MALLOC_ARENA_MAX"))
                (void)mallopt(M_ARENA_MAX, 2);
}

int main(int argc, char **argv) {
        enum {
                OPT_ENDPOINT = 256,
                OPT_NODE_ID,
                OPT_VG,
                OPT_THIN_POOL,
                OPT_LOOP_FILE,
                OPT_LOOP_SIZE,
                OPT_CONFIG,
                OPT_MAX,
                OPT_LVM_TIMEOUT,
                OPT_KUBELET_DIR,
                OPT_MASTER_KEY,
                OPT_CGROUP_PARENT,
                OPT_METRICS_ADDRESS,
                OPT_LOG,
                OPT_VERSION,
                OPT_HELP
        };
        static const struct option opts[] = {
                {"endpoint", required_argument, NULL, OPT_ENDPOINT},
                {"node-id", required_argument, NULL, OPT_NODE_ID},
                {"vg", required_argument, NULL, OPT_VG},
                {"thin-pool", required_argument, NULL, OPT_THIN_POOL},
                {"loop-file", required_argument, NULL, OPT_LOOP_FILE},
                {"loop-size", required_argument, NULL, OPT_LOOP_SIZE},
                {"config", required_argument, NULL, OPT_CONFIG},
                {"max-concurrent", required_argument, NULL, OPT_MAX},
                {"lvm-timeout", required_argument, NULL, OPT_LVM_TIMEOUT},
                {"kubelet-dir", required_argument, NULL, OPT_KUBELET_DIR},
                {"master-key", required_argument, NULL, OPT_MASTER_KEY},
                {"cgroup-parent", required_argument, NULL, OPT_CGROUP_PARENT},
                {"metrics-address", required_argument, NULL, OPT_METRICS_ADDRESS},
                {"log-level", required_argument, NULL, OPT_LOG},
                {"version", no_argument, NULL, OPT_VERSION},
                {"help", no_argument, NULL, OPT_HELP},
                {0},
        };
        tv_config cfg = {.endpoint = getenv("CSI_ENDPOINT"), .loop_size = 1ULL << 30};
        tv_log_level level;
        char *end;
        int c, r;

        limit_malloc_arenas();
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case OPT_ENDPOINT:
                        cfg.endpoint = optarg;
                        break;
                case OPT_NODE_ID:
                        cfg.node_id = optarg;
                        break;
                case OPT_VG:
                        cfg.vg = optarg;
                        break;
                case OPT_THIN_POOL:
                        cfg.thin_pool = optarg;
                        break;
                case OPT_LOOP_FILE:
                        cfg.loop_file = optarg;
                        break;
                case OPT_LOOP_SIZE:
                        if (parse_size(optarg, &cfg.loop_size) < 0) {
                                fprintf(stderr, "thinvault-csi: --loop-size wants a size like 512M or 2G, got '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case OPT_CONFIG:
                        cfg.config = optarg;
                        break;
                case OPT_MAX:
                        errno = 0;
                        long v = strtol(optarg, &end, 10);
                        if (errno || *end || v < 1 || v > 1024) {
                                fprintf(stderr, "thinvault-csi: --max-concurrent wants 1..1024, got '%s'\n", optarg);
                                return 2;
                        }
                        cfg.max_concurrent = (int)v;
                        break;
                case OPT_LVM_TIMEOUT:
                        errno = 0;
                        long t = strtol(optarg, &end, 10);
                        if (errno || *end || t < 1 || t > 3600) {
                                fprintf(stderr, "thinvault-csi: --lvm-timeout wants 1..3600 seconds, got '%s'\n", optarg);
                                return 2;
                        }
                        cfg.lvm_timeout_ms = (int)t * 1000;
                        break;
                case OPT_KUBELET_DIR:
                        cfg.kubelet_dir = optarg;
                        break;
                case OPT_MASTER_KEY:
                        cfg.master_key = optarg;
                        break;
                case OPT_CGROUP_PARENT:
                        cfg.cgroup_parent = optarg;
                        break;
                case OPT_METRICS_ADDRESS:
                        cfg.metrics_address = optarg;
                        break;
                case OPT_LOG:
                        if (tv_log_level_from_string(optarg, &level) < 0) {
                                fprintf(stderr, "thinvault-csi: --log-level wants error, warn, info or debug, got '%s'\n",
                                        optarg);
                                return 2;
                        }
                        tv_log_set_level(level);
                        break;
                case OPT_VERSION:
                        printf("thinvault-csi %s\n", TV_VERSION);
                        return 0;
                case OPT_HELP:
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "thinvault-csi: unexpected argument '%s'\n", argv[optind]);
                usage(stderr);
                return 2;
        }

        r = tv_server_new(&cfg, &the_server);
        if (r < 0)
                return 1;
        r = install_signals();
        if (r < 0) {
                tv_log_errno(r, "cannot install signal handlers", NULL);
                tv_server_free(the_server);
                return 1;
        }
        r = tv_server_run(the_server);
        tv_server_free(the_server);
        the_server = NULL;
        return r < 0 ? 1 : 0;
}
