/* tv-load: the callers of tests/guest/test_load.sh (issue 8 item 4).
 *
 * WORKERS threads take COUNT volumes through their whole life against one
 * thinvault-csi, the way the sidecars and the kubelet would: CreateVolume,
 * NodeStageVolume, NodePublishVolume, a 16 KiB O_DIRECT write and read
 * back through the mount, NodeUnpublishVolume, NodeUnstageVolume,
 * DeleteVolume; volume i repeats one of the six calls (i mod 6), as a
 * retrying caller would, and the repeat must succeed too. Between the calls
 * it checks what the kernel shows: the LUKS mapping and its io.max line
 * after the stage, no target after the unpublish, no mapping after the
 * unstage. A scraper thread GETs /metrics every --scrape-every seconds
 * meanwhile and checks every sample line and that the pool is up.
 *
 * It is one process so that the load measures the plugin: a shell worker
 * spends ~1 s of the emulated guest's CPU per thinvaultctl call and 0.1 s per
 * `date`, more than the plugin spends on the call.
 *
 * Output, in --dir (the files test_load.sh reads):
 *   times.W     "METHOD MS" per successful call of worker W
 *   devices.W   "MAJ:MIN" of every mapping worker W saw staged
 *   failures    "NAME: what failed" per failed volume (absent: none)
 *   scrapes     "ok MS" or "fail MS why" per scrape
 * Exit status 0 when every volume and every scrape succeeded, 1 when one
 * failed, 2 on bad usage. The tenant key (--key-a) is sent as the
 * NodeStageVolume secret and never printed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "csi.pb-c.h"
#include "thinvault/pbjson.h"
#include "thinvault/rpc.h"
#include "thinvault/util.h"

#define MiB (1024 * 1024)
#define VOLUME_BYTES (32 * MiB)
#define IOPS 5000
#define DATA_BYTES 16384
#define RPC_TIMEOUT_MS 290000
#define SCRAPE_TIMEOUT_S 120
#define SCRAPE_MAX_BYTES (16 * MiB)
#define MOUNT_CAP "{\"mount\":{\"fsType\":\"ext4\"},\"accessMode\":{\"mode\":\"SINGLE_NODE_WRITER\"}}"

typedef struct {
        const char *endpoint, *dir, *kubelet, *cgroup, *prefix, *vg;
        char *key_a; /* base64 text of team-a's key: a secret */
        int count, workers, metrics_port, scrape_every;
} load_opts;

typedef struct {
        const load_opts *o;
        pthread_mutex_t lock; /* failures file */
        FILE *failures;
        volatile int done; /* the workers finished: the scraper stops */
        int failed_volumes;
} load_run;

typedef struct {
        load_run *run;
        int w;
        FILE *times, *devices;
} worker;

/* One volume as a worker drives it. */
typedef struct {
        worker *wk;
        int index;
        char name[64], tenant[16];
        char stg[PATH_MAX], tgt[PATH_MAX];
        char *id; /* from CreateVolume */
} volume;

static double ms_since(const struct timespec *t0) {
        struct timespec t1;

        (void)clock_gettime(CLOCK_MONOTONIC, &t1);
        return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* fail(v, fmt...): one line in the failures file; returns -1 */
static int fail(volume *v, const char *fmt, ...) _printf_(2, 3);
static int fail(volume *v, const char *fmt, ...) {
        load_run *run = v->wk->run;
        va_list ap;

        pthread_mutex_lock(&run->lock);
        fprintf(run->failures, "%s: ", v->name);
        va_start(ap, fmt);
        vfprintf(run->failures, fmt, ap);
        va_end(ap);
        fputc('\n', run->failures);
        fflush(run->failures);
        run->failed_volumes++;
        pthread_mutex_unlock(&run->lock);
        return -1;
}

/* ---- one RPC ---------------------------------------------------------------- */

/* call(v, method, json, ret_resp): METHOD ("Controller.CreateVolume") with
 * the request in JSON; its time goes to the worker's times file. Returns 0
 * on status OK (*ret_resp, when not NULL, gets the unpacked reply), or -1
 * after a failure line naming the status and the plugin's message. */
static int call(volume *v, const char *method, const char *json, ProtobufCMessage **ret_resp) {
        const tv_rpc_method *m = tv_rpc_method_find(method);
        _cleanup_free_ char *err = NULL;
        _cleanup_free_ uint8_t *body = NULL;
        ProtobufCMessage *req = NULL, *resp;
        tv_rpc_result res = {0};
        struct timespec t0;
        size_t len;
        int r;

        if (!m)
                return fail(v, "%s: no such method", method);
        r = tv_pbjson_parse(m->request, json, &req, &err);
        if (r < 0)
                return fail(v, "%s: bad request: %s", method, err ? err : strerror(-r));
        len = protobuf_c_message_get_packed_size(req);
        body = malloc(len ? len : 1);
        if (!body) {
                protobuf_c_message_free_unpacked(req, NULL);
                return fail(v, "%s: out of memory", method);
        }
        protobuf_c_message_pack(req, body);
        protobuf_c_message_free_unpacked(req, NULL);

        (void)clock_gettime(CLOCK_MONOTONIC, &t0);
        r = tv_rpc_call(v->wk->run->o->endpoint, m->path, body, len, RPC_TIMEOUT_MS, &res);
        if (r < 0)
                return fail(v, "%s: cannot call: %s", method, strerror(-r));
        if (res.status != TV_STATUS_OK) {
                fail(v, "%s: %s: %s", method, tv_status_name(res.status), res.message ? res.message : "");
                tv_rpc_result_clear(&res);
                return -1;
        }
        fprintf(v->wk->times, "%s %.0f\n", strrchr(m->path, '/') + 1, ms_since(&t0));
        resp = protobuf_c_message_unpack(m->response, NULL, res.body_len, res.body);
        tv_rpc_result_clear(&res);
        if (!resp)
                return fail(v, "%s: the reply does not decode as %s", method, m->response->name);
        if (ret_resp)
                *ret_resp = resp;
        else
                protobuf_c_message_free_unpacked(resp, NULL);
        return 0;
}

/* ---- the requests ------------------------------------------------------------ */

static int create_volume(volume *v, char **ret_id) {
        _cleanup_free_ char *json = tv_asprintf(
                "{\"name\":\"%s\",\"capacityRange\":{\"requiredBytes\":\"%d\"},\"volumeCapabilities\":[" MOUNT_CAP "],"
                "\"parameters\":{\"csi.storage.k8s.io/pvc/namespace\":\"%s\",\"csi.storage.k8s.io/pvc/name\":\"claim-%s\","
                "\"iops\":\"%d\"%s}}",
                v->name, VOLUME_BYTES, v->tenant, v->name, IOPS, v->index % 2 ? ",\"keySource\":\"derived\"" : "");
        ProtobufCMessage *resp = NULL;
        Csi__V1__CreateVolumeResponse *cr;

        if (!json)
                return fail(v, "out of memory");
        if (call(v, "Controller.CreateVolume", json, &resp) < 0)
                return -1;
        cr = (Csi__V1__CreateVolumeResponse *)resp;
        *ret_id = cr->volume && cr->volume->volume_id && *cr->volume->volume_id ? strdup(cr->volume->volume_id) : NULL;
        protobuf_c_message_free_unpacked(resp, NULL);
        if (!*ret_id)
                return fail(v, "CreateVolume answered OK without a volume id");
        return 0;
}

static int stage_volume(volume *v) {
        const load_opts *o = v->wk->run->o;
        _cleanup_free_ char *secrets = v->index % 2 ? strdup("") : tv_asprintf(",\"secrets\":{\"key\":\"%s\"}", o->key_a);
        _cleanup_free_ char *json = NULL;
        int r;

        if (!secrets)
                return fail(v, "out of memory");
        json = tv_asprintf("{\"volumeId\":\"%s\",\"stagingTargetPath\":\"%s\",\"volumeCapability\":" MOUNT_CAP "%s}",
                           v->id, v->stg, secrets);
        if (!json)
                return fail(v, "out of memory");
        r = call(v, "Node.NodeStageVolume", json, NULL);
        explicit_bzero(secrets, strlen(secrets));
        explicit_bzero(json, strlen(json));
        return r;
}

static int simple_call(volume *v, const char *method, const char *fmt, ...) _printf_(3, 4);
static int simple_call(volume *v, const char *method, const char *fmt, ...) {
        _cleanup_free_ char *json = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&json, fmt, ap);
        va_end(ap);
        if (r < 0) {
                json = NULL;
                return fail(v, "out of memory");
        }
        return call(v, method, json, NULL);
}

static int publish_volume(volume *v) {
        return simple_call(v, "Node.NodePublishVolume",
                           "{\"volumeId\":\"%s\",\"stagingTargetPath\":\"%s\",\"targetPath\":\"%s\","
                           "\"volumeCapability\":" MOUNT_CAP ",\"readonly\":false}",
                           v->id, v->stg, v->tgt);
}

static int unpublish_volume(volume *v) {
        return simple_call(v, "Node.NodeUnpublishVolume", "{\"volumeId\":\"%s\",\"targetPath\":\"%s\"}", v->id, v->tgt);
}

static int unstage_volume(volume *v) {
        return simple_call(v, "Node.NodeUnstageVolume", "{\"volumeId\":\"%s\",\"stagingTargetPath\":\"%s\"}", v->id,
                           v->stg);
}

static int delete_volume(volume *v) {
        return simple_call(v, "Controller.DeleteVolume", "{\"volumeId\":\"%s\"}", v->id);
}

/* ---- what the kernel shows ----------------------------------------------------- */

static int mkdir_p(const char *path) {
        char buf[PATH_MAX];
        size_t n = strlen(path);

        if (n >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, path, n + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, 0750) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, 0750) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static void mapping_path(const volume *v, char *buf, size_t len) {
        const char *lv = strchr(v->id, ':');

        (void)snprintf(buf, len, "/dev/mapper/tvc-%s", lv ? lv + 1 : v->id);
}

/* The staged volume's mapping exists and its io.max line carries the budget. */
static int check_staged(volume *v) {
        char map[PATH_MAX], line[512], dev[32];
        _cleanup_free_ char *iomax = tv_asprintf("%s/io.max", v->wk->run->o->cgroup);
        bool found = false;
        struct stat st;
        FILE *f;

        mapping_path(v, map, sizeof(map));
        if (stat(map, &st) < 0 || !S_ISBLK(st.st_mode))
                return fail(v, "no mapping %s after NodeStageVolume", map);
        (void)snprintf(dev, sizeof(dev), "%u:%u", major(st.st_rdev), minor(st.st_rdev));
        if (!iomax || !(f = fopen(iomax, "re")))
                return fail(v, "cannot read %s", iomax ? iomax : "io.max");
        while (!found && fgets(line, sizeof(line), f))
                found = strncmp(line, dev, strlen(dev)) == 0 && line[strlen(dev)] == ' ' &&
                        strstr(line, " riops=5000 wiops=5000");
        fclose(f);
        if (!found)
                return fail(v, "no io.max line riops=5000 wiops=5000 for %s (%s)", dev, map);
        fprintf(v->wk->devices, "%s\n", dev);
        return 0;
}

/* 16 KiB of random data written through the mount with O_DIRECT, synced,
 * read back with O_DIRECT: the same bytes. */
static int write_read_back(volume *v) {
        _cleanup_free_ char *path = tv_asprintf("%s/data", v->tgt);
        void *out = NULL, *in = NULL;
        int fd = -1, r = -1;

        if (!path || posix_memalign(&out, 4096, DATA_BYTES) != 0 || posix_memalign(&in, 4096, DATA_BYTES) != 0) {
                fail(v, "out of memory");
                goto out;
        }
        if (getrandom(out, DATA_BYTES, 0) != DATA_BYTES) {
                fail(v, "getrandom: %s", strerror(errno));
                goto out;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, out, DATA_BYTES) != DATA_BYTES || fsync(fd) < 0) {
                fail(v, "write %s: %s", path, strerror(errno));
                goto out;
        }
        (void)close(fd);
        fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (fd < 0 || read(fd, in, DATA_BYTES) != DATA_BYTES) {
                fail(v, "read back %s: %s", path, strerror(errno));
                goto out;
        }
        if (memcmp(in, out, DATA_BYTES) != 0) {
                fail(v, "read back other data than written");
                goto out;
        }
        r = 0;
out:
        if (fd >= 0)
                (void)close(fd);
        free(out);
        free(in);
        return r;
}

/* What the kubelet removes after the unpublish: the pod's volume dirs. */
static int remove_pod_dirs(volume *v) {
        const char *kub = v->wk->run->o->kubelet;
        char *dirs[4];
        int r = 0;

        if (access(v->tgt, F_OK) == 0)
                return fail(v, "target %s left after NodeUnpublishVolume", v->tgt);
        dirs[0] = tv_asprintf("%s/pods/pod-%s/volumes/kubernetes.io~csi/pv-%s", kub, v->name, v->name);
        dirs[1] = tv_asprintf("%s/pods/pod-%s/volumes/kubernetes.io~csi", kub, v->name);
        dirs[2] = tv_asprintf("%s/pods/pod-%s/volumes", kub, v->name);
        dirs[3] = tv_asprintf("%s/pods/pod-%s", kub, v->name);
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                if (r == 0 && (!dirs[i] || rmdir(dirs[i]) < 0))
                        r = fail(v, "pod dir %s not removable after NodeUnpublishVolume: %s", dirs[i] ? dirs[i] : "?",
                                 strerror(dirs[i] ? errno : ENOMEM));
                free(dirs[i]);
        }
        return r;
}

/* After the unstage: no mapping, and the staging dirs empty. */
static int check_unstaged(volume *v) {
        char map[PATH_MAX], parent[PATH_MAX];
        char *slash;

        mapping_path(v, map, sizeof(map));
        if (access(map, F_OK) == 0)
                return fail(v, "mapping %s left after NodeUnstageVolume", map);
        (void)snprintf(parent, sizeof(parent), "%s", v->stg);
        slash = strrchr(parent, '/');
        if (slash)
                *slash = '\0';
        if (rmdir(v->stg) < 0 || rmdir(parent) < 0)
                return fail(v, "staging dir %s not empty after NodeUnstageVolume: %s", v->stg, strerror(errno));
        return 0;
}

/* ---- a volume's life ------------------------------------------------------------- */

enum { REPEAT_CREATE, REPEAT_STAGE, REPEAT_PUBLISH, REPEAT_UNPUBLISH, REPEAT_UNSTAGE, REPEAT_DELETE };

/* step(v, fn, which): fn once, and again when this volume repeats `which` */
static int step(volume *v, int (*fn)(volume *), int which) {
        if (fn(v) < 0)
                return -1;
        if (v->index % 6 == which && fn(v) < 0)
                return -1;
        return 0;
}

static int create_step(volume *v) {
        _cleanup_free_ char *id = NULL;

        if (create_volume(v, &id) < 0)
                return -1;
        if (!v->id) {
                v->id = TAKE_PTR(id);
                return 0;
        }
        if (strcmp(id, v->id) != 0)
                return fail(v, "CreateVolume again gave %s, not %s", id, v->id);
        return 0;
}

static int cycle(volume *v) {
        const load_opts *o = v->wk->run->o;
        char tgt_parent[PATH_MAX];

        (void)snprintf(v->stg, sizeof(v->stg), "%s/plugins/kubernetes.io/csi/thinvault.csi.io/%s/globalmount", o->kubelet,
                       v->name);
        (void)snprintf(tgt_parent, sizeof(tgt_parent), "%s/pods/pod-%s/volumes/kubernetes.io~csi/pv-%s", o->kubelet,
                       v->name, v->name);
        if (strlen(tgt_parent) + strlen("/mount") >= sizeof(v->tgt))
                return fail(v, "kubelet dir too long");
        memcpy(v->tgt, tgt_parent, strlen(tgt_parent));
        strcpy(v->tgt + strlen(tgt_parent), "/mount");
        if (mkdir_p(v->stg) < 0 || mkdir_p(tgt_parent) < 0)
                return fail(v, "cannot make the kubelet dirs: %s", strerror(errno));

        if (step(v, create_step, REPEAT_CREATE) < 0 || step(v, stage_volume, REPEAT_STAGE) < 0 || check_staged(v) < 0 ||
            step(v, publish_volume, REPEAT_PUBLISH) < 0 || write_read_back(v) < 0 ||
            step(v, unpublish_volume, REPEAT_UNPUBLISH) < 0 || remove_pod_dirs(v) < 0 ||
            step(v, unstage_volume, REPEAT_UNSTAGE) < 0 || check_unstaged(v) < 0 ||
            step(v, delete_volume, REPEAT_DELETE) < 0)
                return -1;
        return 0;
}

static FILE *open_out(const char *dir, const char *name, int w) {
        _cleanup_free_ char *path = w >= 0 ? tv_asprintf("%s/%s.%d", dir, name, w) : tv_asprintf("%s/%s", dir, name);

        return path ? fopen(path, "ae") : NULL;
}

static void *worker_main(void *arg) {
        worker *wk = arg;
        const load_opts *o = wk->run->o;

        for (int i = wk->w; i < o->count; i += o->workers) {
                volume v = {.wk = wk, .index = i};

                (void)snprintf(v.name, sizeof(v.name), "%s-%d", o->prefix, i);
                (void)snprintf(v.tenant, sizeof(v.tenant), "%s", i % 2 ? "team-b" : "team-a");
                (void)cycle(&v);
                fflush(wk->times);
                fflush(wk->devices);
                free(v.id);
        }
        return NULL;
}

/* ---- the scraper --------------------------------------------------------------- */

/* GET /metrics from 127.0.0.1:port into *ret (heap, NUL-terminated). */
static int http_get(int port, char **ret, char *why, size_t whylen) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        struct timeval tv = {.tv_sec = SCRAPE_TIMEOUT_S};
        static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        size_t len = 0, cap = 65536;
        char *buf;
        ssize_t n;

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || write(fd, req, sizeof(req) - 1) != sizeof(req) - 1) {
                (void)snprintf(why, whylen, "connect/send: %s", strerror(errno));
                return -1;
        }
        buf = malloc(cap);
        if (!buf)
                return snprintf(why, whylen, "out of memory"), -1;
        while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
                len += (size_t)n;
                if (len + 1 == cap) {
                        char *nb = cap < SCRAPE_MAX_BYTES ? realloc(buf, cap * 2) : NULL;
                        if (!nb) {
                                free(buf);
                                return snprintf(why, whylen, "reply larger than %d bytes", SCRAPE_MAX_BYTES), -1;
                        }
                        buf = nb;
                        cap *= 2;
                }
        }
        if (n < 0) {
                free(buf);
                return snprintf(why, whylen, "read: %s", strerror(errno)), -1;
        }
        buf[len] = '\0';
        *ret = buf;
        return 0;
}

/* Status 200, every sample line well formed, the pool up. */
static int check_exposition(const char *reply, const char *vg, const regex_t *sample, char *why, size_t whylen) {
        const char *body = strstr(reply, "\r\n\r\n");
        char up[256];
        bool pool_up = false;

        if (strncmp(reply, "HTTP/1.", 7) != 0 || strncmp(reply + 8, " 200 ", 5) != 0 || !body)
                return snprintf(why, whylen, "status line: %.60s", reply), -1;
        (void)snprintf(up, sizeof(up), "thinvault_pool_up{vg=\"%s\",thin_pool=\"pool\"} 1", vg);
        for (const char *l = body + 4; *l;) {
                const char *e = strchrnul(l, '\n');
                char line[4096];
                size_t n = (size_t)(e - l);

                if (n >= sizeof(line))
                        return snprintf(why, whylen, "line of %zu bytes", n), -1;
                memcpy(line, l, n);
                line[n] = '\0';
                if (n && line[0] != '#') {
                        if (regexec(sample, line, 0, NULL, 0) != 0)
                                return snprintf(why, whylen, "malformed line: %.200s", line), -1;
                        pool_up = pool_up || strcmp(line, up) == 0;
                }
                l = *e ? e + 1 : e;
        }
        if (!pool_up)
                return snprintf(why, whylen, "no '%s' line", up), -1;
        return 0;
}

static void *scraper_main(void *arg) {
        load_run *run = arg;
        const load_opts *o = run->o;
        regex_t sample;
        FILE *out = open_out(o->dir, "scrapes", -1);

        if (!out || regcomp(&sample,
                            "^[a-zA-Z_:][a-zA-Z0-9_:]*(\\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\\})? [0-9.e+-]+$",
                            REG_EXTENDED | REG_NOSUB) != 0) {
                fprintf(stderr, "tv-load: cannot start the scraper\n");
                if (out)
                        fclose(out);
                return NULL;
        }
        while (!__atomic_load_n(&run->done, __ATOMIC_ACQUIRE)) {
                struct timespec t0;
                char why[512] = "";
                char *reply = NULL;
                int r;

                (void)clock_gettime(CLOCK_MONOTONIC, &t0);
                r = http_get(o->metrics_port, &reply, why, sizeof(why));
                if (r == 0)
                        r = check_exposition(reply, o->vg, &sample, why, sizeof(why));
                free(reply);
                if (r == 0)
                        fprintf(out, "ok %.0f\n", ms_since(&t0));
                else
                        fprintf(out, "fail %.0f %s\n", ms_since(&t0), why);
                fflush(out);
                for (int s = 0; s < o->scrape_every * 10 && !__atomic_load_n(&run->done, __ATOMIC_ACQUIRE); s++)
                        (void)usleep(100000);
        }
        regfree(&sample);
        fclose(out);
        return NULL;
}

/* ---- main ---------------------------------------------------------------------- */

static void usage(FILE *f) {
        fprintf(f, "Usage: tv-load --endpoint unix:///SOCK --dir DIR --kubelet-dir DIR --cgroup DIR --key-a FILE\n"
                   "               [--count N] [--workers N] [--prefix NAME] [--metrics-port PORT --vg VG]\n"
                   "               [--scrape-every SECONDS]\n"
                   "Takes N volumes (default 6) through create, stage, publish, write and read back, unpublish,\n"
                   "unstage and delete with WORKERS (default 6) concurrent callers; see tests/guest/test_load.sh.\n");
}

static char *read_key(const char *path) {
        char buf[512];
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return NULL;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                n--;
        buf[n] = '\0';
        char *key = n ? strdup(buf) : NULL;
        explicit_bzero(buf, sizeof(buf));
        return key;
}

static int parse_opts(int argc, char **argv, load_opts *o) {
        static const struct option longopts[] = {
                {"endpoint", required_argument, NULL, 'e'},     {"dir", required_argument, NULL, 'd'},
                {"kubelet-dir", required_argument, NULL, 'k'},  {"cgroup", required_argument, NULL, 'c'},
                {"key-a", required_argument, NULL, 'a'},        {"count", required_argument, NULL, 'n'},
                {"workers", required_argument, NULL, 'w'},      {"prefix", required_argument, NULL, 'p'},
                {"metrics-port", required_argument, NULL, 'm'}, {"vg", required_argument, NULL, 'g'},
                {"scrape-every", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *key_file = NULL;
        int c;

        *o = (load_opts){.count = 6, .workers = 6, .prefix = "load", .scrape_every = 3};
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                switch (c) {
                case 'e': o->endpoint = optarg; break;
                case 'd': o->dir = optarg; break;
                case 'k': o->kubelet = optarg; break;
                case 'c': o->cgroup = optarg; break;
                case 'a': key_file = optarg; break;
                case 'n': o->count = atoi(optarg); break;
                case 'w': o->workers = atoi(optarg); break;
                case 'p': o->prefix = optarg; break;
                case 'm': o->metrics_port = atoi(optarg); break;
                case 'g': o->vg = optarg; break;
                case 's': o->scrape_every = atoi(optarg); break;
                case 'h': usage(stdout); exit(0);
                default: return -1;
                }
        }
        if (!o->endpoint || !o->dir || !o->kubelet || !o->cgroup || !key_file || o->count < 1 || o->workers < 1 ||
            o->workers > 256 || o->scrape_every < 1 || (o->metrics_port && !o->vg) || optind != argc)
                return -1;
        o->key_a = read_key(key_file);
        if (!o->key_a) {
                fprintf(stderr, "tv-load: cannot read a key from %s\n", key_file);
                return -1;
        }
        return 0;
}

int main(int argc, char **argv) {
        load_opts o;
        load_run run = {.o = &o};
        worker *wk;
        pthread_t *threads, scraper;
        int started = 0, failed;

        if (parse_opts(argc, argv, &o) < 0) {
                usage(stderr);
                return 2;
        }
        run.failures = open_out(o.dir, "failures", -1);
        wk = calloc((size_t)o.workers, sizeof(*wk));
        threads = calloc((size_t)o.workers, sizeof(*threads));
        if (!run.failures || !wk || !threads || pthread_mutex_init(&run.lock, NULL) != 0) {
                fprintf(stderr, "tv-load: cannot set up in %s: %s\n", o.dir, strerror(errno));
                return 2;
        }
        if (o.metrics_port && pthread_create(&scraper, NULL, scraper_main, &run) != 0) {
                fprintf(stderr, "tv-load: cannot start the scraper\n");
                return 2;
        }
        for (int w = 0; w < o.workers; w++) {
                wk[w] = (worker){.run = &run, .w = w, .times = open_out(o.dir, "times", w),
                                 .devices = open_out(o.dir, "devices", w)};
                if (!wk[w].times || !wk[w].devices || pthread_create(&threads[w], NULL, worker_main, &wk[w]) != 0) {
                        fprintf(stderr, "tv-load: cannot start worker %d\n", w);
                        break;
                }
                started++;
        }
        for (int w = 0; w < started; w++)
                (void)pthread_join(threads[w], NULL);
        __atomic_store_n(&run.done, 1, __ATOMIC_RELEASE);
        if (o.metrics_port)
                (void)pthread_join(scraper, NULL);
        for (int w = 0; w < o.workers; w++) {
                if (wk[w].times)
                        fclose(wk[w].times);
                if (wk[w].devices)
                        fclose(wk[w].devices);
        }
        failed = run.failed_volumes || started < o.workers;
        fclose(run.failures);
        pthread_mutex_destroy(&run.lock);
        explicit_bzero(o.key_a, strlen(o.key_a));
        free(o.key_a);
        free(wk);
        free(threads);
        return failed ? 1 : 0;
}
