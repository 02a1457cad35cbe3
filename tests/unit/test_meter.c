/* The pure parts of metering: kernel text formats, dm table redaction,
 * per-tenant sums. */
#include <stdlib.h>

#include "thinvault/meter.h"
#include "tv_test.h"

/* ---- /sys/block/<dev>/stat ---------------------------------------------------- */

TEST(test_meter_blk_stat_reads_a_17_field_line_of_a_current_kernel) {
        /* As a 6.x kernel prints it for a dm-crypt mapping. */
        const char *text = "    1203       14    98765      412     5561        0   409600    12040        2     9000    12452"
                           "       31        0    65536        7       12        3\n";
        tv_blk_stat s;

        CHECK_INT(tv_meter_parse_blk_stat(text, &s), 0);
        CHECK_INT(s.reads, 1203);
        CHECK_INT(s.read_merges, 14);
        CHECK_INT(s.read_sectors, 98765);
        CHECK_INT(s.read_ticks_ms, 412);
        CHECK_INT(s.writes, 5561);
        CHECK_INT(s.write_sectors, 409600);
        CHECK_INT(s.write_ticks_ms, 12040);
        CHECK_INT(s.in_flight, 2);
        CHECK_INT(s.io_ticks_ms, 9000);
        CHECK_INT(s.time_in_queue_ms, 12452);
        CHECK_INT(s.discards, 31);
        CHECK_INT(s.discard_sectors, 65536);
        CHECK_INT(s.discard_ticks_ms, 7);
        CHECK_INT(s.flushes, 12);
        CHECK_INT(s.flush_ticks_ms, 3);
}

TEST(test_meter_blk_stat_reads_an_11_field_line_of_an_old_kernel_with_zero_discards) {
        tv_blk_stat s;

        CHECK_INT(tv_meter_parse_blk_stat("1 2 3 4 5 6 7 8 9 10 11", &s), 0);
        CHECK_INT(s.reads, 1);
        CHECK_INT(s.time_in_queue_ms, 11);
        CHECK_INT(s.discards, 0);
        CHECK_INT(s.flushes, 0);
        /* 15 fields (4.18 .. 5.4): discards, no flushes */
        CHECK_INT(tv_meter_parse_blk_stat("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n", &s), 0);
        CHECK_INT(s.discard_ticks_ms, 15);
        CHECK_INT(s.flushes, 0);
}

TEST(test_meter_blk_stat_refuses_short_garbage_and_overflowing_lines) {
        tv_blk_stat s = {.reads = 77};

        CHECK_INT(tv_meter_parse_blk_stat("", &s), -EBADMSG);
        CHECK_INT(tv_meter_parse_blk_stat("1 2 3 4 5 6 7 8 9 10\n", &s), -EBADMSG);
        CHECK_INT(tv_meter_parse_blk_stat("1 2 3 4 5 6 7 8 9 10 x", &s), -EBADMSG);
        CHECK_INT(tv_meter_parse_blk_stat("1 2 3 4 5 6 7 8 9 10 -11", &s), -EBADMSG);
        CHECK_INT(tv_meter_parse_blk_stat("18446744073709551616 2 3 4 5 6 7 8 9 10 11", &s), -EBADMSG);
        CHECK_INT(tv_meter_parse_blk_stat("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18", &s), -EBADMSG);
        CHECK_INT(tv_meter_parse_blk_stat(NULL, &s), -EBADMSG);
        CHECK_INT(s.reads, 77); /* untouched on failure */
        CHECK_INT(tv_meter_parse_blk_stat("18446744073709551615 0 0 0 0 0 0 0 0 0 0", &s), 0);
        CHECK(s.reads == UINT64_MAX);
}

/* ---- mountinfo --------------------------------------------------------------------- */

/* A node with a staged volume (254:7) mounted at its staging path (with a
 * space, escaped) and bind-mounted into a pod, a second volume (254:9), and
 * a mount with optional fields. */
static const char mountinfo[] =
        "21 26 0:20 / /proc rw,relatime - proc proc rw\n"
        "26 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
        "40 26 254:7 / /var/lib/kubelet/plugins/kubernetes.io/csi/thinvault.csi.io/a\\040b/globalmount "
        "rw,relatime shared:20 - ext4 /dev/mapper/tvc-tv-pvc-a-0123456789abcdef rw\n"
        "41 26 254:9 / /stage/other rw,relatime - xfs /dev/mapper/tvc-tv-other rw,attr2\n"
        "42 26 254:7 /data /var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/pv-a/mount "
        "rw,relatime shared:20 master:3 propagate_from:2 - ext4 /dev/mapper/tvc-tv-pvc-a-0123456789abcdef rw\n"
        "\n";

TEST(test_meter_mountinfo_finds_every_mount_of_a_device_and_decodes_escapes) {
        tv_mount_table t = {0};
        size_t i;

        CHECK_INT(tv_meter_parse_mountinfo(mountinfo, &t), 0);
        CHECK_INT(t.n, 5);
        i = tv_mount_table_find(&t, 254, 7, 0);
        CHECK_INT(i, 2);
        if (i < t.n) {
                CHECK_STR(t.mounts[i].mount_point,
                          "/var/lib/kubelet/plugins/kubernetes.io/csi/thinvault.csi.io/a b/globalmount");
                CHECK_STR(t.mounts[i].root, "/");
                CHECK_STR(t.mounts[i].fstype, "ext4");
                CHECK_STR(t.mounts[i].source, "/dev/mapper/tvc-tv-pvc-a-0123456789abcdef");
        }
        i = tv_mount_table_find(&t, 254, 7, i + 1);
        CHECK_INT(i, 4);
        if (i < t.n) {
                CHECK_STR(t.mounts[i].root, "/data");
                CHECK_STR(t.mounts[i].mount_point, "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/pv-a/mount");
                CHECK_STR(t.mounts[i].fstype, "ext4");
        }
        CHECK_INT(tv_mount_table_find(&t, 254, 7, i + 1), t.n);
        /* Same minor, other major; same major, other minor: no match. */
        CHECK_INT(tv_mount_table_find(&t, 253, 7, 0), t.n);
        CHECK_INT(tv_mount_table_find(&t, 254, 70, 0), t.n);
        i = tv_mount_table_find(&t, 254, 9, 0);
        CHECK_INT(i, 3);
        if (i < t.n)
                CHECK_STR(t.mounts[i].fstype, "xfs");
        tv_mount_table_clear(&t);
        CHECK_INT(t.n, 0);
}

TEST(test_meter_mountinfo_decodes_tab_newline_and_backslash_escapes) {
        tv_mount_table t = {0};

        CHECK_INT(tv_meter_parse_mountinfo("50 26 254:3 / /m\\011t\\012n\\134b\\04x rw - ext4 /dev/x rw", &t), 0);
        CHECK_INT(t.n, 1);
        if (t.n == 1)
                CHECK_STR(t.mounts[0].mount_point, "/m\tt\nn\\b\\04x"); /* a short escape stays as it is */
        tv_mount_table_clear(&t);
}

TEST(test_meter_mountinfo_refuses_lines_without_separator_or_device) {
        tv_mount_table t = {.n = 99};

        CHECK_INT(tv_meter_parse_mountinfo("40 26 254:7 / /a rw shared:1 ext4 /dev/x rw\n", &t), -EBADMSG);
        CHECK_INT(tv_meter_parse_mountinfo("40 26 2547 / /a rw - ext4 /dev/x rw\n", &t), -EBADMSG);
        CHECK_INT(tv_meter_parse_mountinfo("40 26 254:x / /a rw - ext4 /dev/x rw\n", &t), -EBADMSG);
        CHECK_INT(tv_meter_parse_mountinfo("40 26 254:7 / /a rw -\n", &t), -EBADMSG);
        CHECK_INT(t.n, 99); /* untouched on failure */
        CHECK_INT(tv_meter_parse_mountinfo("", &t), 0);
        CHECK_INT(t.n, 0);
        tv_mount_table_clear(&t);
}

/* ---- io.stat wait --------------------------------------------------------------------- */

TEST(test_meter_io_stat_wait_reads_iocost_and_iolatency_delays_of_the_device_only) {
        const char *text = "254:3 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0 cost.vrate=100.00 cost.usage=5 "
                           "cost.wait=1500 cost.indebt=0 cost.indelay=0\n"
                           "254:7 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0 depth=max avg_lat=10 win=100 "
                           "use_delay=1 delay_nsec=2500000\n"
                           "254:70 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0 cost.wait=9\n";
        uint64_t w = 0;

        CHECK_INT(tv_meter_parse_io_stat_wait(text, 254, 3, &w), 1);
        CHECK_INT(w, 1500);
        CHECK_INT(tv_meter_parse_io_stat_wait(text, 254, 7, &w), 1);
        CHECK_INT(w, 2500);
        CHECK_INT(tv_meter_parse_io_stat_wait(text, 254, 70, &w), 1);
        CHECK_INT(w, 9);
}

TEST(test_meter_io_stat_wait_is_not_reported_under_blk_throttle) {
        /* io.max alone (blk-throttle) adds no wait key; the kernel also
         * prints a bare "MAJ:MIN " line for a device without counters. */
        const char *text = "254:7 rbytes=40960 wbytes=0 rios=10 wios=0 dbytes=0 dios=0\n254:9 \n";
        uint64_t w = 42;

        CHECK_INT(tv_meter_parse_io_stat_wait(text, 254, 7, &w), 0);
        CHECK_INT(tv_meter_parse_io_stat_wait(text, 254, 9, &w), 0);
        CHECK_INT(tv_meter_parse_io_stat_wait(text, 254, 1, &w), 0);
        CHECK_INT(tv_meter_parse_io_stat_wait("", 254, 1, &w), 0);
        CHECK_INT(w, 42);
        CHECK_INT(tv_meter_parse_io_stat_wait("254:7 rbytes\n", 254, 7, &w), -EBADMSG);
        CHECK_INT(tv_meter_parse_io_stat_wait("254:7 cost.wait=x\n", 254, 7, &w), -EBADMSG);
}

/* ---- table redaction --------------------------------------------------------------------- */

TEST(test_meter_redact_crypt_table_hides_the_key_and_keeps_the_rest) {
        /* As the kernel returns a table opened by tv_luks_open(): a 512-bit key in hex. */
        const char *key = "3f1c2a9b2e7c1d0a4f5e63aa00112233445566778899aabbccddeeff00112233"
                          "445566778899aabbccddeeff00112233445566778899aabbccddeeff0011ab";
        char params[512];
        char *out = NULL;

        snprintf(params, sizeof(params), "aes-xts-plain64 %s 0 254:5 32768 3 allow_discards no_read_workqueue "
                                         "no_write_workqueue", key);
        CHECK_INT(tv_meter_redact_table_params("crypt", params, &out), 0);
        CHECK_STR(out, "aes-xts-plain64 " TV_METER_REDACTED
                       " 0 254:5 32768 3 allow_discards no_read_workqueue no_write_workqueue");
        CHECK(out && !strstr(out, key));
        CHECK(out && !strstr(out, "3f1c2a9b"));
        free(out);

        /* A key in the kernel keyring is redacted as well. */
        CHECK_INT(tv_meter_redact_table_params("crypt",
                                               "capi:xts(aes)-plain64 :64:logon:cryptsetup:0b5e-d0 0 254:5 32768", &out),
                  0);
        CHECK_STR(out, "capi:xts(aes)-plain64 " TV_METER_REDACTED " 0 254:5 32768");
        free(out);
}

TEST(test_meter_redact_short_crypt_table_is_an_error_not_a_leak) {
        char *out = (char *)"untouched";

        CHECK_INT(tv_meter_redact_table_params("crypt", "aes-xts-plain64 00112233445566778899", &out), -EBADMSG);
        CHECK_STR(out, "untouched");
        CHECK_INT(tv_meter_redact_table_params("crypt", "", &out), -EBADMSG);
}

TEST(test_meter_redact_keeps_thin_tables_and_hides_unknown_targets_whole) {
        char *out = NULL;

        CHECK_INT(tv_meter_redact_table_params("thin", "254:2 5", &out), 0);
        CHECK_STR(out, "254:2 5");
        free(out);
        CHECK_INT(tv_meter_redact_table_params("thin-pool", "254:0 254:1 128 0 1 skip_block_zeroing", &out), 0);
        CHECK_STR(out, "254:0 254:1 128 0 1 skip_block_zeroing");
        free(out);
        CHECK_INT(tv_meter_redact_table_params("linear", "7:0 2048", &out), 0);
        CHECK_STR(out, "7:0 2048");
        free(out);
        /* integrity can carry journal_crypt:ALG:KEY */
        CHECK_INT(tv_meter_redact_table_params("integrity", "254:5 0 32 J 1 journal_crypt:ctr(aes):00ff00ff", &out), 0);
        CHECK_STR(out, TV_METER_REDACTED);
        free(out);
        CHECK_INT(tv_meter_redact_table_params("some-new-target", "secret", &out), 0);
        CHECK_STR(out, TV_METER_REDACTED);
        free(out);
}

/* ---- per tenant -------------------------------------------------------------------------- */

TEST(test_meter_aggregate_sums_per_tenant_sorted_with_snapshots_apart_and_foreign_lvs_left_out) {
        const uint64_t MiB = 1 << 20;
        tv_meter_volume v[] = {
                {.name = "tv-b1", .tenant = "team-b", .size_bytes = 64 * MiB, .allocated_bytes = 10 * MiB,
                 .staged = true, .fs_valid = true, .fs_used_bytes = 3 * MiB},
                {.name = "tv-a1", .tenant = "team-a", .size_bytes = 32 * MiB, .allocated_bytes = 4 * MiB},
                {.name = "plain", .tenant = NULL, .size_bytes = 1024 * MiB, .allocated_bytes = 512 * MiB},
                {.name = "tv-a2", .tenant = "team-a", .size_bytes = 16 * MiB, .allocated_bytes = 2 * MiB,
                 .staged = true, .fs_valid = true, .fs_used_bytes = 1 * MiB},
                {.name = "tvs-a1", .tenant = "team-a", .snapshot = true, .size_bytes = 32 * MiB,
                 .allocated_bytes = 4 * MiB},
                /* staged as a raw block device: no file system numbers */
                {.name = "tv-b2", .tenant = "team-b", .size_bytes = 8 * MiB, .allocated_bytes = 8 * MiB,
                 .staged = true},
                /* inactive: no allocation known */
                {.name = "tv-b3", .tenant = "team-b", .size_bytes = 8 * MiB, .allocated_bytes = 999 * MiB,
                 .usage_errno = -ENXIO},
        };
        tv_meter_tenant *t = NULL;
        size_t n = 0;

        CHECK_INT(tv_meter_aggregate(v, ELEMENTSOF(v), &t, &n), 0);
        CHECK_INT(n, 2);
        if (n != 2)
                return;
        CHECK_STR(t[0].tenant, "team-a");
        CHECK_INT(t[0].volumes, 2);
        CHECK_INT(t[0].staged, 1);
        CHECK_INT(t[0].provisioned_bytes, 48 * MiB);
        CHECK_INT(t[0].allocated_bytes, 6 * MiB);
        CHECK_INT(t[0].used_bytes, 1 * MiB);
        CHECK_INT(t[0].snapshots, 1);
        CHECK_INT(t[0].snapshot_provisioned_bytes, 32 * MiB);
        CHECK_INT(t[0].snapshot_allocated_bytes, 4 * MiB);

        CHECK_STR(t[1].tenant, "team-b");
        CHECK_INT(t[1].volumes, 3);
        CHECK_INT(t[1].staged, 2);
        CHECK_INT(t[1].provisioned_bytes, 80 * MiB);
        CHECK_INT(t[1].allocated_bytes, 18 * MiB);
        CHECK_INT(t[1].used_bytes, 3 * MiB);
        CHECK_INT(t[1].snapshots, 0);
        tv_meter_tenants_free(t, n);
}

TEST(test_meter_aggregate_of_nothing_is_empty) {
        tv_meter_volume foreign = {.name = "plain", .size_bytes = 1};
        tv_meter_tenant *t = (tv_meter_tenant *)&foreign;
        size_t n = 5;

        CHECK_INT(tv_meter_aggregate(NULL, 0, &t, &n), 0);
        CHECK_INT(n, 0);
        CHECK(t == NULL);
        CHECK_INT(tv_meter_aggregate(&foreign, 1, &t, &n), 0);
        CHECK_INT(n, 0);
        tv_meter_tenants_free(t, n);
}

TEST(test_meter_volume_is_encrypted_only_when_probed_as_ours) {
        tv_meter_volume v = {.probed = true, .luks = {.kind = TV_LUKS_KIND_OURS}};

        CHECK(tv_meter_volume_encrypted(&v));
        v.luks.kind = TV_LUKS_KIND_FOREIGN;
        CHECK(!tv_meter_volume_encrypted(&v));
        v.luks.kind = TV_LUKS_KIND_OURS;
        v.probe_errno = -EIO;
        CHECK(!tv_meter_volume_encrypted(&v));
        v.probe_errno = 0;
        v.probed = false;
        CHECK(!tv_meter_volume_encrypted(&v));
}
