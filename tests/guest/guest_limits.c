/* I/O limits against the real kernel (root, in the QEMU guest): a 64 MiB
 * device-mapper "zero" device stands in for a volume's dm-crypt device; a
 * `kubepods` cgroup with a child `pod1` stands in for the kubelet's tree.
 * Limits are set on kubepods, fio runs inside pod1, and what fio measures
 * must be the limit within 5%.
 *
 * Run: tests/vm/run-in-guest -- tests/guest/run BUILD_DIR limits */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "thinvault/limits.h"
#include "thinvault/util.h"
#include "tv_test.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define PODS CGROUP_ROOT "/kubepods"
#define POD PODS "/pod1"
#define DM_NAME "tvlimits"
#define DM_PATH "/dev/mapper/" DM_NAME
#define DEV_SIZE (64 * 1024 * 1024)
#define TOLERANCE 0.05
#define MiB (1024 * 1024)

static struct {
        double base_read, base_write; /* unthrottled IOPS, 4 jobs */
        bool tried, ready, device_up;
        uint32_t major, minor;
} fx;

/* The accuracy table, printed by the last test. */
static struct {
        char what[48];
        double limit, measured;
} rows[16];
static size_t n_rows;

static int run(const char *const argv[], char **ret_out) {
        _cleanup_free_ char *out = NULL, *err = NULL;
        int r = tv_exec(argv, 120000, &out, &err);
        if (r != 0) {
                printf("    %s: status %d: %s\n", argv[0], r, err ? err : "");
                return r < 0 ? r : -EIO;
        }
        if (ret_out)
                *ret_out = TAKE_PTR(out);
        return 0;
}

static void teardown(void) {
        (void)rmdir(POD);
        (void)rmdir(PODS);
        if (fx.device_up)
                (void)run((const char *const[]){"dmsetup", "remove", DM_NAME, NULL}, NULL);
}

static bool fixture(void) {
        _cleanup_free_ char *out = NULL, *table = NULL;
        int r;

        if (fx.tried)
                return fx.ready;
        fx.tried = true;
        atexit(teardown);

        /* dm "zero": the throttle works on the dm device's own MAJ:MIN, so
         * what is below does not matter -- and with nothing below, no loop
         * worker charges (and pins) the pod's cgroups after the test, and
         * the guest spends its few cycles on the I/O being limited. */
        table = tv_asprintf("0 %d zero", DEV_SIZE / 512);
        r = run((const char *const[]){"dmsetup", "create", DM_NAME, "--table", table, NULL}, NULL);
        if (r < 0)
                return false;
        fx.device_up = true;
        free(out);
        out = NULL;
        r = run((const char *const[]){"dmsetup", "info", "-c", "--noheadings", "-o", "major,minor",
                                      "--separator", ":", DM_NAME, NULL},
                &out);
        if (r < 0 || sscanf(out, " %" SCNu32 ":%" SCNu32, &fx.major, &fx.minor) != 2) {
                printf("    cannot read the device number of %s\n", DM_NAME);
                return false;
        }
        printf("    device %s = %" PRIu32 ":%" PRIu32 " (dm zero, 64 MiB)\n", DM_PATH, fx.major,
               fx.minor);
        fx.ready = true;
        return true;
}

/* Does the io.max of PODS have a line for our device? */
static bool io_max_has_line(void) {
        char want[32], line[256];
        FILE *f = fopen(PODS "/io.max", "re");
        bool found = false;

        snprintf(want, sizeof(want), "%" PRIu32 ":%" PRIu32 " ", fx.major, fx.minor);
        if (!f)
                return false;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, want, strlen(want)) == 0)
                        found = true;
        fclose(f);
        return found;
}

static void apply(const tv_limits *l) {
        tv_limits_error err;
        int r = tv_limits_apply(PODS, fx.major, fx.minor, l, &err);
        if (r < 0)
                tv_test_fail(__FILE__, __LINE__, "apply: %d %s", r, err.message);
}

typedef struct {
        double iops, bw_bytes;
        uint64_t total_ios;
} fio_result;

/* fio in POD: the shell puts itself into the pod's cgroup.procs, then
 * becomes fio, so every I/O is the pod's. `rw` read/randread/write/randwrite. */
static int fio(const char *rw, const char *bs, int runtime_s, const char *iops_log,
               fio_result *ret) {
        char rw_opt[32], bs_opt[32], runtime[32], log_opt[128];
        _cleanup_free_ char *out = NULL;
        json_error_t jerr;
        const char *dir = strstr(rw, "read") ? "read" : "write";
        const char *argv[24];
        size_t n = 0;
        int r;

        snprintf(rw_opt, sizeof(rw_opt), "--rw=%s", rw);
        snprintf(bs_opt, sizeof(bs_opt), "--bs=%s", bs);
        snprintf(runtime, sizeof(runtime), "--runtime=%d", runtime_s);
        argv[n++] = "sh";
        argv[n++] = "-c";
        argv[n++] = "echo $$ > \"$0\" && exec fio \"$@\"";
        argv[n++] = POD "/cgroup.procs";
        argv[n++] = "--name=limits";
        argv[n++] = "--filename=" DM_PATH;
        argv[n++] = rw_opt;
        argv[n++] = bs_opt;
        argv[n++] = "--direct=1";
        argv[n++] = "--ioengine=psync";
        argv[n++] = "--time_based";
        argv[n++] = runtime;
        argv[n++] = "--randrepeat=0";
        argv[n++] = "--norandommap";
        /* Four psync threads keep a bio waiting in the throttle, so a vCPU
         * that the (TCG, shared) host starves for a moment does not turn
         * into lost I/O: the kernel's budget, not fio's pace, sets the rate. */
        argv[n++] = "--numjobs=4";
        argv[n++] = "--group_reporting";
        argv[n++] = "--output-format=json";
        if (iops_log) {
                snprintf(log_opt, sizeof(log_opt), "--write_iops_log=%s", iops_log);
                argv[n++] = log_opt;
                argv[n++] = "--log_avg_msec=1000";
        }
        argv[n] = NULL;
        r = run(argv, &out);
        if (r < 0)
                return r;

        json_t *root = json_loads(out, 0, &jerr);
        json_t *job = root ? json_array_get(json_object_get(root, "jobs"), 0) : NULL;
        json_t *d = job ? json_object_get(job, dir) : NULL;
        if (!d) {
                printf("    fio output not understood: %s\n", root ? "no jobs[0]" : jerr.text);
                json_decref(root);
                return -EBADMSG;
        }
        *ret = (fio_result){
                .iops = json_number_value(json_object_get(d, "iops")),
                .bw_bytes = json_number_value(json_object_get(d, "bw_bytes")),
                .total_ios = (uint64_t)json_integer_value(json_object_get(d, "total_ios")),
        };
        json_decref(root);
        return 0;
}

static double absd(double x) {
        return x < 0 ? -x : x;
}

static double error_pct(double measured, double limit) {
        return (measured - limit) / limit * 100.0;
}

static void record(const char *what, double limit, double measured) {
        if (n_rows < ELEMENTSOF(rows)) {
                snprintf(rows[n_rows].what, sizeof(rows[n_rows].what), "%s", what);
                rows[n_rows].limit = limit;
                rows[n_rows].measured = measured;
                n_rows++;
        }
        printf("    %-28s limit %10.0f  measured %10.1f  error %+6.2f%%\n", what, limit, measured,
               error_pct(measured, limit));
        fflush(stdout);
}

/* `base`: what the device did unthrottled (0: unknown), to tell a limit
 * that did not hold from a guest too starved to reach it. */
static void check_close(const char *what, double limit, double measured, double base) {
        record(what, limit, measured);
        if (absd(measured - limit) > limit * TOLERANCE)
                tv_test_fail(__FILE__, __LINE__,
                             "%s: measured %.1f, limit %.0f (more than %.0f%% off)%s", what,
                             measured, limit, TOLERANCE * 100,
                             base > 0 && base < limit * 1.5
                                     ? "; the device did only a little more unthrottled: is the "
                                       "host too busy for this TCG guest?"
                                     : "");
}

/* ---- tests, in order ------------------------------------------------------ */

TEST(test_guest_limits_find_pods_parent_and_enable_io) {
        _cleanup_free_ char *path = NULL;
        tv_limits_error err;
        struct stat st;

        if (!fixture()) {
                tv_test_fail(__FILE__, __LINE__, "fixture failed");
                return;
        }
        (void)rmdir(POD);
        (void)rmdir(PODS);
        CHECK_INT(tv_cgroup_find_pods_parent(NULL, &path, &err), -ENOENT);
        CHECK(strstr(err.message, "no kubepods.slice or kubepods cgroup in " CGROUP_ROOT) != NULL);
        printf("    without kubepods: %s\n", err.message);

        CHECK_INT(mkdir(PODS, 0755), 0);
        CHECK_INT(mkdir(POD, 0755), 0);
        CHECK_INT(tv_cgroup_find_pods_parent(NULL, &path, &err), 0);
        CHECK_STR(path, PODS);
        /* the pods' parent: io.max needs io in the root's subtree_control
         * (guest-init enabled it); for the pod, in kubepods' too */
        CHECK_INT(tv_cgroup_enable_io(PODS, &err), 0);
        CHECK_INT(tv_cgroup_io_version(PODS, &err), TV_CGROUP_V2);
        CHECK_INT(tv_cgroup_io_version(POD, &err), -EOPNOTSUPP);
        CHECK_INT(tv_cgroup_enable_io(POD, &err), 0);
        CHECK_INT(stat(POD "/io.max", &st), 0);
        CHECK_INT(tv_cgroup_enable_io(POD, &err), 0); /* idempotent */
        /* the root has no io.max: nothing to limit there */
        CHECK_INT(tv_cgroup_io_version(CGROUP_ROOT, &err), -EOPNOTSUPP);
}

TEST(test_guest_limits_apply_reads_back_what_the_kernel_holds) {
        tv_limits l = {.read_iops = 100, .write_iops = 200, .read_bps = 4 * MiB, .write_bps = 8 * MiB};
        tv_limits back;
        tv_limits_error err;
        _cleanup_free_ char *want = NULL;
        char text[1024] = "";
        FILE *f;

        if (!fx.ready) {
                tv_test_fail(__FILE__, __LINE__, "no fixture");
                return;
        }
        apply(&l);
        CHECK_INT(tv_limits_read(PODS, fx.major, fx.minor, &back, &err), 0);
        CHECK(tv_limits_equal(&l, &back));
        f = fopen(PODS "/io.max", "re");
        if (f) {
                text[fread(text, 1, sizeof(text) - 1, f)] = '\0';
                fclose(f);
        }
        want = tv_asprintf("%" PRIu32 ":%" PRIu32 " rbps=4194304 wbps=8388608 riops=100 wiops=200\n",
                           fx.major, fx.minor);
        CHECK(strstr(text, want) != NULL);
        printf("    io.max: %s", text);

        /* the kernel's verdicts, mapped */
        CHECK_INT(tv_limits_apply(PODS, 254, 250, &l, &err), -ENODEV);
        CHECK(strstr(err.message, "no block device 254:250") != NULL);
        CHECK_INT(tv_limits_clear(PODS, 254, 250, &err), 0); /* nothing there: cleared */
}

TEST(test_guest_limits_device_unthrottled_baseline) {
        fio_result fr;
        tv_limits_error err;

        if (!fx.ready) {
                tv_test_fail(__FILE__, __LINE__, "no fixture");
                return;
        }
        CHECK_INT(tv_limits_clear(PODS, fx.major, fx.minor, &err), 0);
        CHECK_INT(fio("randread", "4k", 1, NULL, &fr), 0);
        fx.base_read = fr.iops;
        CHECK_INT(fio("randwrite", "4k", 1, NULL, &fr), 0);
        fx.base_write = fr.iops;
        printf("    unthrottled: randread 4k %.0f IOPS, randwrite 4k %.0f IOPS\n", fx.base_read,
               fx.base_write);
        CHECK(fx.base_read > 0 && fx.base_write > 0);
}

TEST(test_guest_limits_read_iops_hold_within_5_percent) {
        fio_result fr;
        tv_io_stat before = {0}, after = {0};

        if (!fx.ready) {
                tv_test_fail(__FILE__, __LINE__, "no fixture");
                return;
        }
        CHECK_INT(tv_cgroup_read_io_stat(PODS, fx.major, fx.minor, &before, NULL), 0);
        apply(&(tv_limits){.read_iops = 100});
        CHECK_INT(fio("randread", "4k", 4, NULL, &fr), 0);
        check_close("randread 4k riops=100", 100, fr.iops, fx.base_read);
        /* the kernel counted the pod's I/O on its parent */
        CHECK_INT(tv_cgroup_read_io_stat(PODS, fx.major, fx.minor, &after, NULL), 0);
        CHECK(after.rios - before.rios >= fr.total_ios);

        apply(&(tv_limits){.read_iops = 500});
        CHECK_INT(fio("randread", "4k", 4, NULL, &fr), 0);
        check_close("randread 4k riops=500", 500, fr.iops, fx.base_read);
}

TEST(test_guest_limits_write_iops_hold_within_5_percent) {
        fio_result fr;

        if (!fx.ready) {
                tv_test_fail(__FILE__, __LINE__, "no fixture");
                return;
        }
        apply(&(tv_limits){.write_iops = 100});
        CHECK_INT(fio("randwrite", "4k", 4, NULL, &fr), 0);
        check_close("randwrite 4k wiops=100", 100, fr.iops, fx.base_write);
        apply(&(tv_limits){.write_iops = 500});
        CHECK_INT(fio("randwrite", "4k", 4, NULL, &fr), 0);
        check_close("randwrite 4k wiops=500", 500, fr.iops, fx.base_write);
}

TEST(test_guest_limits_bandwidth_holds_within_5_percent) {
        fio_result fr;

        if (!fx.ready) {
                tv_test_fail(__FILE__, __LINE__, "no fixture");
                return;
        }
        apply(&(tv_limits){.read_bps = 4 * MiB});
        CHECK_INT(fio("read", "1M", 4, NULL, &fr), 0);
        check_close("read 1M rbps=4Mi (MiB/s)", 4, fr.bw_bytes / MiB, 0);
        apply(&(tv_limits){.write_bps = 4 * MiB});
        CHECK_INT(fio("write", "1M", 4, NULL, &fr), 0);
        check_close("write 1M wbps=4Mi (MiB/s)", 4, fr.bw_bytes / MiB, 0);
}

typedef struct {
        int r;
        fio_result fr;
} fio_job;

static void *fio_thread(void *userdata) {
        fio_job *j = userdata;
        j->r = fio("randread", "4k", 8, "/tmp/tv-limits-live", &j->fr);
        return NULL;
}

static bool pod_has_procs(void) {
        char buf[64] = "";
        FILE *f = fopen(POD "/cgroup.procs", "re");
        size_t n = 0;
        if (f) {
                n = fread(buf, 1, sizeof(buf) - 1, f);
                fclose(f);
        }
        return n > 0;
}

TEST(test_guest_limits_change_live_is_followed_within_a_second) {
        fio_job job = {0};
        pthread_t t;
        double samples[32];
        uint64_t times[32];
        size_t n = 0, i = 0;
        FILE *f;
        uint64_t t0, t_change;

        if (!fx.ready) {
                tv_test_fail(__FILE__, __LINE__, "no fixture");
                return;
        }
        apply(&(tv_limits){.read_iops = 500});
        CHECK_INT(pthread_create(&t, NULL, fio_thread, &job), 0);
        /* fio is in the pod once the shell wrote itself into cgroup.procs */
        t0 = tv_now_ms();
        while (!pod_has_procs() && tv_now_ms() - t0 < 30000)
                usleep(10000);
        t0 = tv_now_ms();
        usleep(4200 * 1000);
        apply(&(tv_limits){.read_iops = 100});
        t_change = tv_now_ms() - t0;
        pthread_join(t, NULL);
        CHECK_INT(job.r, 0);

        /* one log per fio job: sum them second by second */
        for (int j = 1; j <= 4; j++) {
                char path[64], line[256];
                size_t m = 0;

                snprintf(path, sizeof(path), "/tmp/tv-limits-live_iops.%d.log", j);
                f = fopen(path, "re");
                if (!f) {
                        tv_test_fail(__FILE__, __LINE__, "no fio log %s", path);
                        return;
                }
                while (m < ELEMENTSOF(samples) && fgets(line, sizeof(line), f)) {
                        unsigned long long ms, v;
                        if (sscanf(line, "%llu, %llu,", &ms, &v) != 2)
                                continue;
                        if (j == 1) {
                                times[m] = ms;
                                samples[m] = 0;
                        }
                        samples[m++] += (double)v;
                }
                fclose(f);
                (void)unlink(path);
                n = j == 1 ? m : (m < n ? m : n);
        }
        printf("    changed 500 -> 100 about %" PRIu64 " ms after fio entered the pod; per second:",
               t_change);
        for (size_t k = 0; k < n; k++)
                printf(" %.0f@%" PRIu64 "ms", samples[k], times[k]);
        printf("\n");

        /* 500s, at most one second that straddles the change, then 100s.
         * Not judged: the first second (fio's start, and the throttle lets
         * its first slice through at once) and a last partial second. */
        if (n > 0 && times[n - 1] % 1000 > 50 && times[n - 1] % 1000 < 950)
                n--;
        i = 1;
        while (i < n && absd(samples[i] - 500) <= 500 * TOLERANCE)
                i++;
        CHECK(i >= 3); /* seconds 2 and 3 at 500 */
        if (i < n && absd(samples[i] - 100) > 100 * TOLERANCE)
                i++; /* the second in which the change happened */
        CHECK(n - i >= 2);
        if (i < n)
                record("live 500->100, next second", 100, samples[i]);
        for (size_t k = i; k < n; k++)
                if (absd(samples[k] - 100) > 100 * TOLERANCE)
                        tv_test_fail(__FILE__, __LINE__, "second %zu after the change: %.0f IOPS",
                                     k, samples[k]);
}

TEST(test_guest_limits_clear_leaves_no_line_and_lifts_the_cap) {
        tv_limits back = {.read_iops = 9};
        tv_limits_error err;
        fio_result fr;

        if (!fx.ready) {
                tv_test_fail(__FILE__, __LINE__, "no fixture");
                return;
        }
        CHECK(io_max_has_line());
        CHECK_INT(tv_limits_clear(PODS, fx.major, fx.minor, &err), 0);
        CHECK(!io_max_has_line());
        CHECK_INT(tv_limits_read(PODS, fx.major, fx.minor, &back, &err), 0);
        CHECK(tv_limits_is_unlimited(&back));
        CHECK_INT(tv_limits_clear(PODS, fx.major, fx.minor, &err), 0); /* again: idempotent */

        CHECK_INT(fio("randread", "4k", 2, NULL, &fr), 0);
        printf("    after clear: randread 4k %.0f IOPS (last cap 100; unthrottled at the start %.0f)\n",
               fr.iops, fx.base_read);
        CHECK(fr.iops > 5 * 100);
}

TEST(test_guest_limits_removed_device_takes_its_line_and_clear_is_ok) {
        tv_limits_error err;

        if (!fx.ready) {
                tv_test_fail(__FILE__, __LINE__, "no fixture");
                return;
        }
        apply(&(tv_limits){.read_iops = 100});
        CHECK(io_max_has_line());
        CHECK_INT(run((const char *const[]){"dmsetup", "remove", DM_NAME, NULL}, NULL), 0);
        fx.device_up = false;
        CHECK(!io_max_has_line());
        CHECK_INT(tv_limits_clear(PODS, fx.major, fx.minor, &err), 0);

        printf("    accuracy (fio in pod1, limit on kubepods, %s):\n", DM_PATH);
        printf("    %-28s %10s %10s %8s\n", "run", "limit", "measured", "error");
        for (size_t k = 0; k < n_rows; k++)
                printf("    %-28s %10.0f %10.1f %+7.2f%%\n", rows[k].what, rows[k].limit,
                       rows[k].measured, error_pct(rows[k].measured, rows[k].limit));
}
