/* One libFuzzer target per CSI service (FUZZ_SERVICE: a tv_service): the
 * first byte of an input picks one of that service's methods from the
 * method table tv_dispatch() looks paths up in, the rest is the protobuf
 * body. The input goes through tv_dispatch(), as the gRPC server calls it:
 * decode, validation, handler, reply. The reply is then checked: a known
 * status, a message on every error, and on OK a body that decodes as the
 * method's response; after an error, the pool and the mounts must be as
 * they were. Before every input the pool is put back as setup left
 * it and the kubelet directory is emptied, so a crash input replays alone. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csi.pb-c.h"
#include "fuzz.h"
#include "seeds.h"
#include "thinvault/csi.h"
#include "thinvault/util.h"

#ifndef FUZZ_SERVICE
#error "FUZZ_SERVICE must name a tv_service"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tv_server *server;
static const tv_rpc_method *methods[32];
static size_t n_methods;
/* FUZZ_VERBOSE=1: print each input's method and answer (to read what a
 * corpus file does: `tv-fuzz-node FILE...` runs each once). */
static bool verbose;

static void die(const char *what, int r) {
        fprintf(stderr, "fuzz setup: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(2);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *f) {
        if (f->level == 0)
                return 0;
        if (remove(path) < 0 && errno != ENOENT)
                die(path, errno);
        return 0;
}

/* Back to what the kubelet had made: its directories, nothing else. */
static void kubelet_reset(void) {
        static const char *const skeleton[] = {FUZZ_KUBELET_SKELETON};
        int dfd;

        if (nftw(FUZZ_KUBELET_DIR, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
                die("empty " FUZZ_KUBELET_DIR, errno);
        dfd = open(FUZZ_KUBELET_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                die(FUZZ_KUBELET_DIR, errno);
        for (size_t i = 0; i < ELEMENTSOF(skeleton); i++)
                if (mkdirat(dfd, skeleton[i], 0750) < 0)
                        die(skeleton[i], errno);
        (void)close(dfd);
}

/* Our directory, not someone's symlink: made 0700 by us, or already ours. */
static void state_dir(const char *path) {
        struct stat st;

        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                die(path, errno);
        if (lstat(path, &st) < 0)
                die(path, errno);
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0077))
                die(path, EPERM);
}

static void write_file(const char *path, const void *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);

        if (fd < 0)
                die(path, errno);
        if (write(fd, data, len) != (ssize_t)len)
                die(path, errno ? errno : EIO);
        if (close(fd) < 0)
                die(path, errno);
}

static void setup_server(void) {
        static const char master[33] = "fuzz-master-key-0123456789abcdef";
        static const char config[] = "{\"pool\": {\"maxOverprovisionPercent\": 400},"
                                     " \"default\": {\"maxBytes\": \"4Gi\", \"maxVolumes\": 8},"
                                     " \"tenants\": {\"team-b\": {\"maxVolumes\": 3}}}";
        tv_config cfg = {
                .endpoint = "unix://" FUZZ_STATE_DIR "/csi.sock",
                .node_id = "fuzz-node",
                .vg = FUZZ_VG,
                .thin_pool = FUZZ_POOL,
                .config = FUZZ_STATE_DIR "/config.json",
                .kubelet_dir = FUZZ_KUBELET_DIR,
                .master_key = FUZZ_STATE_DIR "/master.key",
                .cgroup_parent = FUZZ_STATE_DIR "/cgroup",
        };
        int lock, r;

        state_dir(FUZZ_STATE_DIR);
        /* One fuzzer at a time owns the directory; others wait. */
        lock = open(FUZZ_STATE_DIR "/lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (lock < 0 || flock(lock, LOCK_EX) < 0)
                die(FUZZ_STATE_DIR "/lock", errno);
        state_dir(FUZZ_KUBELET_DIR);
        kubelet_reset();
        write_file(FUZZ_STATE_DIR "/master.key", master, 32);
        write_file(FUZZ_STATE_DIR "/config.json", config, sizeof(config) - 1);
        fuzz_sys_set_root(FUZZ_KUBELET_DIR);
        r = tv_server_new(&cfg, &server);
        if (r < 0)
                die("tv_server_new", r);
}

/* Run the setup seeds; each must answer as expected. */
static void setup_pool(void) {
        fuzz_seed *seeds = NULL;
        int n = fuzz_seeds(&seeds);

        if (n < FUZZ_N_SETUP)
                die("fuzz_seeds", n < 0 ? n : -EINVAL);
        for (int i = 0; i < FUZZ_N_SETUP; i++) {
                tv_reply reply = {0};

                tv_dispatch(server, seeds[i].path, seeds[i].body, seeds[i].len, &reply);
                if (reply.status != TV_STATUS_OK) {
                        fprintf(stderr, "fuzz setup: %s (%s): %s %s\n", seeds[i].path, seeds[i].label,
                                tv_status_name(reply.status), reply.message);
                        exit(2);
                }
                tv_reply_clear(&reply);
        }
        fuzz_seeds_free(seeds, (size_t)n);
        kubelet_reset();
        fuzz_pool_save();
        fuzz_sys_save();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        tv_log_level quiet;

        verbose = getenv("FUZZ_VERBOSE") && strcmp(getenv("FUZZ_VERBOSE"), "1") == 0;
        if (tv_log_level_from_string("error", &quiet) == 0)
                tv_log_set_level(quiet);
        for (size_t i = 0; i < tv_rpc_n_methods && n_methods < ELEMENTSOF(methods); i++)
                if (tv_rpc_methods[i].service == FUZZ_SERVICE)
                        methods[n_methods++] = &tv_rpc_methods[i];
        if (n_methods == 0)
                die("no methods for FUZZ_SERVICE", -EINVAL);
        setup_server();
        setup_pool();
        return 0;
}

static void check_reply(const tv_rpc_method *m, const tv_reply *reply) {
        ProtobufCMessage *resp;

        if (reply->status < TV_STATUS_OK || reply->status > TV_STATUS_UNAUTHENTICATED) {
                fprintf(stderr, "fuzz: %s answered status %d\n", m->path, reply->status);
                abort();
        }
        if (reply->status != TV_STATUS_OK) {
                if (!reply->message[0]) {
                        fprintf(stderr, "fuzz: %s answered %s without a message\n", m->path,
                                tv_status_name(reply->status));
                        abort();
                }
                return;
        }
        resp = protobuf_c_message_unpack(m->response, NULL, reply->body_len, reply->body);
        if (!resp) {
                fprintf(stderr, "fuzz: %s answered OK with a body that is no %s\n", m->path, m->response->name);
                abort();
        }
        protobuf_c_message_free_unpacked(resp, NULL);
}

/* A request that failed changed nothing: no LV, tag, mapping or mount is
 * left behind or taken away. */
static void check_unchanged(const tv_rpc_method *m, const tv_reply *reply) {
        const char *what;

        if (reply->status == TV_STATUS_OK)
                return;
        what = fuzz_pool_changed();
        if (!what)
                what = fuzz_sys_changed();
        if (what) {
                fprintf(stderr, "fuzz: %s failed (%s: %s) but changed %s\n", m->path, tv_status_name(reply->status),
                        reply->message, what);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const tv_rpc_method *m;
        tv_reply reply = {0};

        if (size < 1)
                return 0;
        m = methods[data[0] % n_methods];
        tv_dispatch(server, m->path, data + 1, size - 1, &reply);
        check_reply(m, &reply);
        check_unchanged(m, &reply);
        if (verbose)
                fprintf(stderr, "fuzz: %s -> %s %s\n", m->path, tv_status_name(reply.status), reply.message);
        tv_reply_clear(&reply);
        fuzz_pool_restore();
        /* Only the Node service writes under the kubelet directory. */
        if (FUZZ_SERVICE == TV_SERVICE_NODE) {
                fuzz_sys_restore();
                kubelet_reset();
        }
        return 0;
}
