/* I/O limits, kernel half on the host: the io.max / io.stat / blkio /
 * mountinfo text formats (captured from Debian's 6.1 kernel in the test
 * guest and from a cgroup v1 "hybrid" host), and the file logic of
 * apply/clear/read, discovery and enable_io against a temporary directory
 * standing in for the cgroup tree. The real kernel is tested by
 * tests/guest/guest_limits.c. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "thinvault/limits.h"
#include "tv_test.h"

/* ---- captured kernel text ------------------------------------------------ */

/* io.max of a cgroup after `echo "7:0 riops=100"` and
 * `echo "254:0 riops=100"` (6.1.0-56-amd64). */
static const char io_max_text[] = "7:0 rbps=max wbps=max riops=100 wiops=max\n"
                                  "254:0 rbps=max wbps=max riops=100 wiops=max\n";
/* After `echo "254:0 riops=4294967294 rbps=18446744073709551614"`. */
static const char io_max_extremes[] =
        "254:0 rbps=18446744073709551614 wbps=max riops=4294967294 wiops=max\n";

/* io.stat of the root cgroup after a dd of 10 x 4k from loop0: devices
 * without I/O are listed with nothing after them. */
static const char io_stat_text[] = "7:7 \n7:6 \n7:5 \n7:4 \n7:3 \n7:2 \n7:1 \n"
                                   "7:0 rbytes=40960 wbytes=0 rios=10 wios=0 dbytes=0 dios=0\n";

/* /proc/self/mountinfo of the test guest (pure cgroup v2). */
static const char mountinfo_v2[] =
        "22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/lower,upperdir=/rw/upper\n"
        "37 31 0:32 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n";

/* ... of a hybrid host (systemd "unified" v2 mount without controllers,
 * blkio on v1), cut to the cgroup lines. */
static const char mountinfo_hybrid[] =
        "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
        "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
        "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

/* ---- formats ---------------------------------------------------------------- */

TEST(test_limits_io_max_line_names_all_four_with_max_for_unlimited) {
        char buf[128];
        tv_limits l = {.read_iops = 100, .read_bps = 100 * 1024 * 1024};

        CHECK_INT(tv_limits_format_io_max(254, 3, &l, buf, sizeof(buf)), 50);
        CHECK_STR(buf, "254:3 riops=100 wiops=max rbps=104857600 wbps=max\n");
        l = (tv_limits){0};
        CHECK(tv_limits_format_io_max(254, 3, &l, buf, sizeof(buf)) > 0);
        CHECK_STR(buf, "254:3 riops=max wiops=max rbps=max wbps=max\n");
}

TEST(test_limits_io_max_line_refuses_values_the_kernel_refuses) {
        char buf[128];
        tv_limits l = {.write_iops = 1};
        CHECK_INT(tv_limits_format_io_max(254, 3, &l, buf, sizeof(buf)), -EINVAL);
        l = (tv_limits){.write_iops = TV_LIMITS_IOPS_MAX + 1};
        CHECK_INT(tv_limits_format_io_max(254, 3, &l, buf, sizeof(buf)), -EINVAL);
        l = (tv_limits){.write_iops = 5};
        CHECK_INT(tv_limits_format_io_max(254, 3, &l, buf, 10), -ENOBUFS);
}

TEST(test_limits_parse_io_max_finds_the_device_line) {
        tv_limits l;
        CHECK_INT(tv_limits_parse_io_max(io_max_text, 254, 0, &l), 1);
        CHECK_INT(l.read_iops, 100);
        CHECK_INT(l.write_iops, 0);
        CHECK_INT(l.read_bps, 0);
        CHECK_INT(l.write_bps, 0);
        CHECK_INT(tv_limits_parse_io_max(io_max_extremes, 254, 0, &l), 1);
        CHECK_INT(l.read_iops, TV_LIMITS_IOPS_MAX);
        CHECK(l.read_bps == TV_LIMITS_BPS_MAX);
}

TEST(test_limits_parse_io_max_without_line_is_unlimited) {
        tv_limits l = {.read_iops = 9};
        CHECK_INT(tv_limits_parse_io_max(io_max_text, 254, 1, &l), 0);
        CHECK(tv_limits_is_unlimited(&l));
        l.read_iops = 9;
        CHECK_INT(tv_limits_parse_io_max("", 254, 0, &l), 0);
        CHECK(tv_limits_is_unlimited(&l));
}

TEST(test_limits_parse_io_max_round_trips_the_formatted_line) {
        char buf[128];
        tv_limits l = {3, 4, 5, TV_LIMITS_BPS_MAX}, back;
        CHECK(tv_limits_format_io_max(8, 16, &l, buf, sizeof(buf)) > 0);
        CHECK_INT(tv_limits_parse_io_max(buf, 8, 16, &back), 1);
        CHECK(tv_limits_equal(&l, &back));
}

TEST(test_limits_parse_io_max_rejects_malformed_text) {
        tv_limits l = {.read_iops = 9};
        CHECK_INT(tv_limits_parse_io_max("254:0 riops\n", 254, 0, &l), -EBADMSG);
        CHECK_INT(tv_limits_parse_io_max("254:0 riops=abc\n", 254, 0, &l), -EBADMSG);
        CHECK_INT(tv_limits_parse_io_max("254:0 riops=0\n", 254, 0, &l), -EBADMSG);
        CHECK_INT(tv_limits_parse_io_max("garbage\n", 254, 0, &l), -EBADMSG);
        CHECK_INT(tv_limits_parse_io_max("254 riops=5\n", 254, 0, &l), -EBADMSG);
        CHECK_INT(tv_limits_parse_io_max("254:0 riops=5\n254:0 riops=6\n", 254, 0, &l), -EBADMSG);
        CHECK_INT(l.read_iops, 9);
        /* keys of a newer kernel are skipped */
        CHECK_INT(tv_limits_parse_io_max("254:0 rbps=max wbps=max riops=7 wiops=max zz=1\n", 254,
                                         0, &l),
                  1);
        CHECK_INT(l.read_iops, 7);
}

TEST(test_limits_parse_io_stat_reads_counters_and_empty_lines) {
        tv_io_stat s;
        CHECK_INT(tv_cgroup_parse_io_stat(io_stat_text, 7, 0, &s), 1);
        CHECK_INT(s.rbytes, 40960);
        CHECK_INT(s.rios, 10);
        CHECK_INT(s.wbytes, 0);
        CHECK_INT(tv_cgroup_parse_io_stat(io_stat_text, 7, 3, &s), 1);
        CHECK_INT(s.rios, 0);
        CHECK_INT(tv_cgroup_parse_io_stat(io_stat_text, 254, 0, &s), 0);
        CHECK_INT(s.rbytes, 0);
        /* iocost adds keys with fractions */
        CHECK_INT(tv_cgroup_parse_io_stat("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6 "
                                          "cost.vrate=100.00 cost.usage=5\n",
                                          8, 0, &s),
                  1);
        CHECK_INT(s.wios, 4);
        CHECK_INT(s.dios, 6);
        CHECK_INT(tv_cgroup_parse_io_stat("8:0 rbytes=x\n", 8, 0, &s), -EBADMSG);
}

TEST(test_limits_parse_blkio_throttle_v1_lines) {
        uint64_t v = 9;
        const char *text = "8:0 100\n254:3 2097152\n";
        CHECK_INT(tv_limits_parse_blkio_throttle(text, 254, 3, &v), 1);
        CHECK_INT(v, 2097152);
        CHECK_INT(tv_limits_parse_blkio_throttle(text, 254, 4, &v), 0);
        CHECK_INT(v, 0);
        CHECK_INT(tv_limits_parse_blkio_throttle("", 254, 4, &v), 0);
        v = 9;
        CHECK_INT(tv_limits_parse_blkio_throttle("8:0\n", 8, 0, &v), -EBADMSG);
        CHECK_INT(tv_limits_parse_blkio_throttle("8:0 1 2\n", 8, 0, &v), -EBADMSG);
        CHECK_INT(tv_limits_parse_blkio_throttle("8:0 x\n", 8, 0, &v), -EBADMSG);
        CHECK_INT(v, 9);
}

TEST(test_limits_parse_mountinfo_finds_cgroup2_and_v1_blkio) {
        char *p = NULL;
        CHECK_INT(tv_cgroup_parse_mountinfo(mountinfo_v2, TV_CGROUP_V2, &p), 0);
        CHECK_STR(p, "/sys/fs/cgroup");
        free(p);
        p = NULL;
        CHECK_INT(tv_cgroup_parse_mountinfo(mountinfo_v2, TV_CGROUP_V1, &p), -ENOENT);
        CHECK(p == NULL);
        CHECK_INT(tv_cgroup_parse_mountinfo(mountinfo_hybrid, TV_CGROUP_V1, &p), 0);
        CHECK_STR(p, "/sys/fs/cgroup/blkio");
        free(p);
        CHECK_INT(tv_cgroup_parse_mountinfo(mountinfo_hybrid, TV_CGROUP_V2, &p), 0);
        CHECK_STR(p, "/sys/fs/cgroup/unified");
        free(p);
}

TEST(test_limits_parse_mountinfo_decodes_escapes_and_optional_fields) {
        char *p = NULL;
        CHECK_INT(tv_cgroup_parse_mountinfo("40 30 0:37 / /host\\040root/cg rw shared:9 master:2 - "
                                            "cgroup2 cgroup2 rw\n",
                                            TV_CGROUP_V2, &p),
                  0);
        CHECK_STR(p, "/host root/cg");
        free(p);
        CHECK_INT(tv_cgroup_parse_mountinfo("40 30 0:37 / /x rw\n", TV_CGROUP_V2, &p), -EBADMSG);
        CHECK_INT(tv_cgroup_parse_mountinfo("", TV_CGROUP_V2, &p), -ENOENT);
}

/* ---- a fake cgroup tree ------------------------------------------------------ */

typedef struct {
        char *root;
} tmp_tree;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void tmp_tree_done(tmp_tree *t) {
        if (t->root)
                (void)nftw(t->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(t->root);
}

static tmp_tree tmp_tree_new(void) {
        char tmpl[] = "/tmp/tv-limits-XXXXXX";
        tmp_tree t = {0};
        if (!mkdtemp(tmpl)) {
                tv_test_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
                return t;
        }
        t.root = realpath(tmpl, NULL);
        return t;
}

static void put(const tmp_tree *t, const char *rel, const char *content) {
        char path[512];
        FILE *f;
        snprintf(path, sizeof(path), "%s/%s", t->root, rel);
        f = fopen(path, "w");
        if (!f) {
                tv_test_fail(__FILE__, __LINE__, "create %s: %s", path, strerror(errno));
                return;
        }
        fputs(content, f);
        fclose(f);
}

static void mkd(const tmp_tree *t, const char *rel) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", t->root, rel);
        if (mkdir(path, 0755) < 0)
                tv_test_fail(__FILE__, __LINE__, "mkdir %s: %s", path, strerror(errno));
}

/* Content of a file of the tree (static buffer; "" when missing). */
static const char *get(const tmp_tree *t, const char *rel) {
        static char buf[4096];
        char path[512];
        FILE *f;
        size_t n;
        snprintf(path, sizeof(path), "%s/%s", t->root, rel);
        buf[0] = '\0';
        f = fopen(path, "r");
        if (!f)
                return buf;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static char *sub(const tmp_tree *t, const char *rel) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", t->root, rel) < 0)
                return NULL;
        return p;
}

static char *mountinfo_for(const char *point, const char *fstype, const char *super) {
        char *p = NULL;
        if (asprintf(&p, "22 1 0:21 / / rw - ext4 /dev/vda1 rw\n41 22 0:40 / %s rw - %s %s %s\n",
                     point, fstype, fstype, super) < 0)
                return NULL;
        return p;
}

static const char *const v1_names[] = {
        "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device",
        "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"};

/* ---- enforcement on the fake tree ---------------------------------------------- */

TEST(test_limits_apply_v2_writes_one_io_max_line_and_reads_it_back) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        tv_limits_error err;
        tv_limits l = {.read_iops = 100, .write_iops = 500, .write_bps = 4 << 20}, back;

        put(&t, "io.max", "");
        CHECK_INT(tv_cgroup_io_version(t.root, &err), TV_CGROUP_V2);
        CHECK_INT(tv_limits_apply(t.root, 254, 3, &l, &err), 0);
        CHECK_STR(err.message, "");
        CHECK_STR(get(&t, "io.max"), "254:3 riops=100 wiops=500 rbps=max wbps=4194304\n");
        CHECK_INT(tv_limits_read(t.root, 254, 3, &back, &err), 0);
        CHECK(tv_limits_equal(&l, &back));
}

TEST(test_limits_clear_v2_writes_max_for_all_four) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        tv_limits_error err;
        tv_limits back = {.read_iops = 9};

        put(&t, "io.max", "254:3 rbps=max wbps=max riops=100 wiops=max\n");
        CHECK_INT(tv_limits_clear(t.root, 254, 3, &err), 0);
        CHECK_STR(get(&t, "io.max"), "254:3 riops=max wiops=max rbps=max wbps=max\n");
        CHECK_INT(tv_limits_read(t.root, 254, 3, &back, &err), 0);
        CHECK(tv_limits_is_unlimited(&back));
}

TEST(test_limits_apply_refuses_out_of_range_limits_without_writing) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        tv_limits_error err;
        tv_limits l = {.read_iops = 1};

        put(&t, "io.max", "untouched");
        CHECK_INT(tv_limits_apply(t.root, 254, 3, &l, &err), -EINVAL);
        CHECK(err.message[0] != '\0');
        CHECK_STR(get(&t, "io.max"), "untouched");
}

TEST(test_limits_read_reports_unparseable_io_max) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        tv_limits_error err;
        tv_limits l;

        put(&t, "io.max", "254:3 riops=lots\n");
        CHECK_INT(tv_limits_read(t.root, 254, 3, &l, &err), -EBADMSG);
        CHECK(strstr(err.message, "io.max") != NULL);
}

TEST(test_limits_v1_fallback_writes_the_four_throttle_files) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        tv_limits_error err;
        tv_limits l = {.read_iops = 100, .read_bps = 2 << 20}, back;

        for (size_t i = 0; i < ELEMENTSOF(v1_names); i++)
                put(&t, v1_names[i], "");
        CHECK_INT(tv_cgroup_io_version(t.root, &err), TV_CGROUP_V1);
        CHECK_INT(tv_limits_apply(t.root, 254, 3, &l, &err), 0);
        CHECK_STR(get(&t, "blkio.throttle.read_iops_device"), "254:3 100\n");
        CHECK_STR(get(&t, "blkio.throttle.write_iops_device"), "254:3 0\n");
        CHECK_STR(get(&t, "blkio.throttle.read_bps_device"), "254:3 2097152\n");
        CHECK_STR(get(&t, "blkio.throttle.write_bps_device"), "254:3 0\n");
        CHECK_INT(tv_limits_read(t.root, 254, 3, &back, &err), 0);
        CHECK(tv_limits_equal(&l, &back));

        CHECK_INT(tv_limits_clear(t.root, 254, 3, &err), 0);
        for (size_t i = 0; i < ELEMENTSOF(v1_names); i++)
                CHECK_STR(get(&t, v1_names[i]), "254:3 0\n");
        CHECK_INT(tv_limits_read(t.root, 254, 3, &back, &err), 0);
        CHECK(tv_limits_is_unlimited(&back));
}

TEST(test_limits_v1_read_parses_kernel_lists) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        tv_limits back;

        put(&t, "blkio.throttle.read_iops_device", "8:0 50\n254:3 300\n");
        put(&t, "blkio.throttle.write_iops_device", "");
        put(&t, "blkio.throttle.read_bps_device", "");
        put(&t, "blkio.throttle.write_bps_device", "254:3 1048576\n");
        CHECK_INT(tv_limits_read(t.root, 254, 3, &back, NULL), 0);
        CHECK_INT(back.read_iops, 300);
        CHECK_INT(back.write_iops, 0);
        CHECK_INT(back.write_bps, 1048576);
}

TEST(test_limits_cgroup_without_io_files_is_eopnotsupp) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        _cleanup_free_ char *missing = sub(&t, "nope");
        tv_limits_error err;
        tv_limits l = {0};

        CHECK_INT(tv_cgroup_io_version(t.root, &err), -EOPNOTSUPP);
        CHECK(strstr(err.message, "subtree_control") != NULL);
        CHECK_INT(tv_limits_apply(t.root, 254, 3, &l, &err), -EOPNOTSUPP);
        CHECK_INT(tv_limits_read(t.root, 254, 3, &l, &err), -EOPNOTSUPP);
        CHECK_INT(tv_cgroup_io_version(missing, &err), -ENOENT);
        CHECK_INT(tv_limits_clear(missing, 254, 3, &err), -ENOENT);
        CHECK(strstr(err.message, "does not exist") != NULL);
}

TEST(test_limits_read_io_stat_from_a_v2_cgroup) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        tv_io_stat s;

        put(&t, "io.max", "");
        put(&t, "io.stat", io_stat_text);
        CHECK_INT(tv_cgroup_read_io_stat(t.root, 7, 0, &s, NULL), 0);
        CHECK_INT(s.rbytes, 40960);
}

/* ---- discovery on the fake tree ------------------------------------------------- */

TEST(test_limits_find_pods_parent_prefers_kubepods_slice) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        _cleanup_free_ char *mi = mountinfo_for(t.root, "cgroup2", "rw,nsdelegate");
        _cleanup_free_ char *want = sub(&t, "kubepods.slice");
        _cleanup_free_ char *path = NULL;
        tv_limits_error err;

        put(&t, "cgroup.controllers", "cpuset cpu io memory pids\n");
        mkd(&t, "kubepods");
        mkd(&t, "kubepods.slice");
        CHECK_INT(tv_cgroup_find_pods_parent_in(mi, NULL, &path, &err), 0);
        CHECK_STR(path, want);
}

TEST(test_limits_find_pods_parent_takes_kubepods_of_cgroupfs_driver) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        _cleanup_free_ char *mi = mountinfo_for(t.root, "cgroup2", "rw");
        _cleanup_free_ char *want = sub(&t, "kubepods");
        _cleanup_free_ char *path = NULL;

        put(&t, "cgroup.controllers", "io\n");
        mkd(&t, "kubepods");
        CHECK_INT(tv_cgroup_find_pods_parent_in(mi, NULL, &path, NULL), 0);
        CHECK_STR(path, want);
}

TEST(test_limits_find_pods_parent_without_kubepods_is_enoent_with_hint) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        _cleanup_free_ char *mi = mountinfo_for(t.root, "cgroup2", "rw");
        char *path = (char *)"untouched";
        tv_limits_error err;

        put(&t, "cgroup.controllers", "io\n");
        CHECK_INT(tv_cgroup_find_pods_parent_in(mi, NULL, &path, &err), -ENOENT);
        CHECK(strstr(err.message, "no kubepods.slice or kubepods cgroup in") != NULL);
        CHECK(strstr(err.message, t.root) != NULL);
        CHECK(strstr(err.message, "override") != NULL);
        CHECK_STR(path, "untouched");

        CHECK_INT(tv_cgroup_find_pods_parent_in("22 1 0:21 / / rw - ext4 /dev/vda1 rw\n", NULL,
                                                &path, &err),
                  -ENOENT);
        CHECK(strstr(err.message, "no cgroup file system") != NULL);
}

TEST(test_limits_find_pods_parent_override_wins) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        _cleanup_free_ char *mi = mountinfo_for(t.root, "cgroup2", "rw");
        _cleanup_free_ char *custom = sub(&t, "k8s/pods");
        _cleanup_free_ char *missing = sub(&t, "k8s/none");
        _cleanup_free_ char *path = NULL;
        tv_limits_error err;

        put(&t, "cgroup.controllers", "io\n");
        mkd(&t, "kubepods.slice");
        mkd(&t, "k8s");
        mkd(&t, "k8s/pods");
        CHECK_INT(tv_cgroup_find_pods_parent_in(mi, custom, &path, &err), 0);
        CHECK_STR(path, custom);
        free(path);
        path = NULL;
        /* the real entry point does not even read mountinfo */
        CHECK_INT(tv_cgroup_find_pods_parent(custom, &path, &err), 0);
        CHECK_STR(path, custom);
        char *p2 = NULL;
        CHECK_INT(tv_cgroup_find_pods_parent_in(mi, missing, &p2, &err), -ENOENT);
        CHECK(strstr(err.message, "k8s/none") != NULL);
        CHECK_INT(tv_cgroup_find_pods_parent_in(mi, "kubepods.slice", &p2, &err), -EINVAL);
        CHECK(strstr(err.message, "absolute") != NULL);
        CHECK(p2 == NULL);
}

TEST(test_limits_find_pods_parent_refuses_a_v1_or_hybrid_host) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        _cleanup_free_ char *unified = sub(&t, "unified"), *blkio = sub(&t, "blkio");
        _cleanup_free_ char *mi = NULL, *path = NULL;
        tv_limits_error err;

        mkd(&t, "unified");
        mkd(&t, "unified/kubepods.slice");
        put(&t, "unified/cgroup.controllers", "\n"); /* hybrid: no controllers on v2 */
        mkd(&t, "blkio");
        mkd(&t, "blkio/kubepods.slice");
        CHECK(asprintf(&mi,
                       "40 30 0:37 / %s rw,relatime - cgroup2 cgroup2 rw\n"
                       "37 30 0:34 / %s rw,relatime - cgroup cgroup rw,blkio\n",
                       unified, blkio) > 0);
        /* v1 throttling is flat: a rule on kubepods would cap no pod */
        CHECK_INT(tv_cgroup_find_pods_parent_in(mi, NULL, &path, &err), -EOPNOTSUPP);
        CHECK(strstr(err.message, "cgroup v1") != NULL);
        CHECK(strstr(err.message, blkio) != NULL);
        CHECK(path == NULL);
        /* v2 with io wins over v1 when both are there */
        put(&t, "unified/cgroup.controllers", "io\n");
        CHECK_INT(tv_cgroup_find_pods_parent_in(mi, NULL, &path, &err), 0);
        CHECK(path && strstr(path, "unified/kubepods.slice") != NULL);
}

TEST(test_limits_find_pods_parent_v2_without_io_is_returned_for_enable_io_to_explain) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        _cleanup_free_ char *mi = mountinfo_for(t.root, "cgroup2", "rw");
        _cleanup_free_ char *want = sub(&t, "kubepods"), *path = NULL;
        tv_limits_error err;

        put(&t, "cgroup.controllers", "cpu memory\n");
        put(&t, "cgroup.subtree_control", "");
        mkd(&t, "kubepods");
        CHECK_INT(tv_cgroup_find_pods_parent_in(mi, NULL, &path, &err), 0);
        CHECK_STR(path, want);
        CHECK_INT(tv_cgroup_enable_io_in(mi, path, &err), -EOPNOTSUPP);
        CHECK(strstr(err.message, "(it offers: cpu memory)") != NULL);
}

/* ---- enable_io on the fake tree --------------------------------------------------- */

static void make_v2_tree(const tmp_tree *t) {
        put(t, "cgroup.controllers", "cpuset cpu io memory pids\n");
        put(t, "cgroup.subtree_control", "");
        mkd(t, "kubepods");
        put(t, "kubepods/cgroup.controllers", "cpu io memory pids\n");
        put(t, "kubepods/cgroup.subtree_control", "");
        mkd(t, "kubepods/besteffort");
        put(t, "kubepods/besteffort/cgroup.controllers", "cpu io memory pids\n");
        put(t, "kubepods/besteffort/cgroup.subtree_control", "");
}

TEST(test_limits_enable_io_writes_plus_io_from_root_to_parent) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        _cleanup_free_ char *mi = mountinfo_for(t.root, "cgroup2", "rw");
        _cleanup_free_ char *target = sub(&t, "kubepods/besteffort");
        tv_limits_error err;

        make_v2_tree(&t);
        CHECK_INT(tv_cgroup_enable_io_in(mi, target, &err), 0);
        CHECK_STR(err.message, "");
        CHECK_STR(get(&t, "cgroup.subtree_control"), "+io");
        CHECK_STR(get(&t, "kubepods/cgroup.subtree_control"), "+io");
        CHECK_STR(get(&t, "kubepods/besteffort/cgroup.subtree_control"), ""); /* not its own */
}

TEST(test_limits_enable_io_is_idempotent) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        _cleanup_free_ char *mi = mountinfo_for(t.root, "cgroup2", "rw");
        _cleanup_free_ char *target = sub(&t, "kubepods");

        make_v2_tree(&t);
        /* what the kernel shows once io is on: left alone */
        put(&t, "cgroup.subtree_control", "cpu io memory\n");
        CHECK_INT(tv_cgroup_enable_io_in(mi, target, NULL), 0);
        CHECK_STR(get(&t, "cgroup.subtree_control"), "cpu io memory\n");
        /* the mount root itself: nothing above it to enable */
        CHECK_INT(tv_cgroup_enable_io_in(mi, t.root, NULL), 0);
}

TEST(test_limits_enable_io_without_io_controller_is_eopnotsupp) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        _cleanup_free_ char *mi = mountinfo_for(t.root, "cgroup2", "rw");
        _cleanup_free_ char *target = sub(&t, "kubepods/besteffort");
        tv_limits_error err;

        make_v2_tree(&t);
        put(&t, "cgroup.subtree_control", "cpu io\n");
        put(&t, "kubepods/cgroup.controllers", "cpu memory\n");
        CHECK_INT(tv_cgroup_enable_io_in(mi, target, &err), -EOPNOTSUPP);
        CHECK(strstr(err.message, "io controller is not available in cgroup") != NULL);
        CHECK(strstr(err.message, "kubepods (it offers: cpu memory)") != NULL);
        CHECK_STR(get(&t, "kubepods/cgroup.subtree_control"), "");
}

TEST(test_limits_enable_io_outside_a_cgroup_mount_is_einval) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        _cleanup_free_ char *mi = mountinfo_for("/sys/fs/cgroup", "cgroup2", "rw");
        _cleanup_free_ char *missing = sub(&t, "nope");
        tv_limits_error err;

        CHECK_INT(tv_cgroup_enable_io_in(mi, t.root, &err), -EINVAL);
        CHECK(strstr(err.message, "not inside a cgroup mount") != NULL);
        CHECK_INT(tv_cgroup_enable_io_in(mi, missing, &err), -ENOENT);
}

TEST(test_limits_enable_io_on_v1_has_nothing_to_do) {
        _cleanup_(tmp_tree_done) tmp_tree t = tmp_tree_new();
        _cleanup_free_ char *mi = mountinfo_for(t.root, "cgroup", "rw,blkio");
        _cleanup_free_ char *target = sub(&t, "kubepods");

        mkd(&t, "kubepods");
        CHECK_INT(tv_cgroup_enable_io_in(mi, target, NULL), 0);
        CHECK_STR(get(&t, "cgroup.subtree_control"), "");
}
