/* The Prometheus exposition of a collection and of the RPC statistics,
 * from hand-built reports: exact lines, escaping, histograms, and the
 * format's rules checked over a whole output. */
#include <math.h>
#include <stdlib.h>

#include "thinvault/metrics.h"
#include "tv_test.h"

#define MiB (1024ull * 1024)

static bool has_line(const char *text, const char *line) {
        size_t n = strlen(line);

        for (const char *p = text; (p = strstr(p, line)); p++)
                if ((p == text || p[-1] == '\n') && p[n] == '\n')
                        return true;
        return false;
}
#define CHECK_LINE(text, line)                                                                     \
        do {                                                                                       \
                if (!has_line(text, line))                                                         \
                        tv_test_fail(__FILE__, __LINE__, "no line \"%s\" in:\n%s", line, text);    \
        } while (0)
#define CHECK_NO_PREFIX(text, prefix)                                                              \
        do {                                                                                       \
                char _p[256];                                                                      \
                snprintf(_p, sizeof(_p), "\n%s", prefix);                                          \
                if (strstr(text, _p))                                                              \
                        tv_test_fail(__FILE__, __LINE__, "unexpected \"%s\" in:\n%s", prefix, text); \
        } while (0)

/* Two team-a volumes (one staged, mounted, limited), one team-b volume
 * with a snapshot, and a foreign LV. */
static tv_meter_volume vols[5];
static tv_meter_report report;

static void build_report(void) {
        memset(vols, 0, sizeof(vols));
        vols[0] = (tv_meter_volume){.name = "tv-a1", .thinvault = true, .tenant = "team-a", .pvc = "team-a/data",
                                    .size_bytes = 64 * MiB, .allocated_bytes = 12 * MiB, .staged = true,
                                    .fs_valid = true, .fs_size_bytes = 60 * MiB, .fs_used_bytes = 5 * MiB,
                                    .fs_inodes = 16384, .fs_inodes_used = 12, .io_valid = true,
                                    .in_force = {.read_iops = 300, .write_iops = 200, .write_bps = 10 * MiB},
                                    .throttle_valid = true, .throttled_us = 2500000};
        vols[0].io = (tv_blk_stat){.reads = 10, .read_sectors = 80, .read_ticks_ms = 1234, .writes = 1024,
                                   .write_sectors = 8192, .write_ticks_ms = 56};
        vols[1] = (tv_meter_volume){.name = "tv-a2", .thinvault = true, .tenant = "team-a",
                                    .size_bytes = 32 * MiB, .allocated_bytes = 1 * MiB};
        vols[2] = (tv_meter_volume){.name = "tv-b1", .thinvault = true, .tenant = "team-b", .pvc = "team-b/logs",
                                    .size_bytes = 16 * MiB, .usage_errno = -ENXIO, .n_snapshots = 1};
        vols[3] = (tv_meter_volume){.name = "tvs-b1", .thinvault = true, .snapshot = true, .tenant = "team-b",
                                    .source = "tv-b1", .size_bytes = 16 * MiB, .allocated_bytes = 3 * MiB};
        vols[4] = (tv_meter_volume){.name = "plain", .size_bytes = 8 * MiB, .allocated_bytes = 8 * MiB};
        report = (tv_meter_report){.volumes = vols, .n_volumes = 5};
        report.pool = (tv_meter_pool){.vg = "vg0", .thin_pool = "pool", .status_valid = true,
                                      .overprovision_ratio = 0.25, .n_volumes = 3, .n_snapshots = 1, .n_foreign = 1};
        report.pool.status = (tv_pool_status){.data_total_bytes = 512 * MiB, .data_used_bytes = 24 * MiB,
                                              .metadata_total_bytes = 4 * MiB, .metadata_used_bytes = 123456,
                                              .thin_virtual_bytes = 136 * MiB, .healthy = true};
        CHECK_INT(tv_meter_aggregate(vols, 5, &report.tenants, &report.n_tenants), 0);
}

static char *render(const tv_metrics_input *in) {
        tv_metrics_buf b = {0};
        char *text;

        CHECK_INT(tv_metrics_write(&b, in), 0);
        text = tv_metrics_buf_steal(&b, NULL);
        CHECK(text != NULL);
        tv_metrics_buf_clear(&b);
        return text ? text : strdup("");
}

static bool name_valid(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
                if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
                        return false;
        }
        return true;
}

/* The format's rules over a whole text: every line a comment or a sample;
 * names valid; one HELP then TYPE per family, before its samples, which
 * come together; values numbers and never NaN; histogram suffixes only on
 * histograms. Returns the number of samples. */
static size_t check_format(const char *text) {
        char families[128][128];
        size_t n_fam = 0, samples = 0;
        char current[128] = "", type[32] = "";
        const char *p = text;

        CHECK(*text && text[strlen(text) - 1] == '\n');
        while (*p) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                char line[2048];

                CHECK(len < sizeof(line));
                snprintf(line, sizeof(line), "%.*s", (int)len, p);
                p += len + (nl ? 1 : 0);
                if (strncmp(line, "# HELP ", 7) == 0) {
                        size_t n = strcspn(line + 7, " ");
                        CHECK(name_valid(line + 7, n));
                        for (size_t i = 0; i < n_fam; i++)
                                if (strlen(families[i]) == n && strncmp(families[i], line + 7, n) == 0)
                                        tv_test_fail(__FILE__, __LINE__, "family %.*s announced twice", (int)n, line + 7);
                        CHECK(n_fam < 128 && n < 128);
                        snprintf(families[n_fam++], 128, "%.*s", (int)n, line + 7);
                        snprintf(current, sizeof(current), "%.*s", (int)n, line + 7);
                        type[0] = '\0';
                        continue;
                }
                if (strncmp(line, "# TYPE ", 7) == 0) {
                        size_t n = strcspn(line + 7, " ");
                        CHECK(strlen(current) == n && strncmp(current, line + 7, n) == 0);
                        CHECK(type[0] == '\0');
                        snprintf(type, sizeof(type), "%s", line + 8 + n);
                        CHECK(strcmp(type, "gauge") == 0 || strcmp(type, "counter") == 0 ||
                              strcmp(type, "histogram") == 0);
                        if (strcmp(type, "counter") == 0)
                                CHECK(n > 6 && strncmp(current + n - 6, "_total", 6) == 0);
                        continue;
                }
                CHECK(line[0] != '#');
                size_t n = strcspn(line, "{ ");
                CHECK(name_valid(line, n));
                char name[128];
                snprintf(name, sizeof(name), "%.*s", (int)n, line);
                if (strcmp(type, "histogram") == 0) {
                        size_t cl = strlen(current);
                        CHECK(strncmp(name, current, cl) == 0 &&
                              (strcmp(name + cl, "_bucket") == 0 || strcmp(name + cl, "_sum") == 0 ||
                               strcmp(name + cl, "_count") == 0));
                } else if (strcmp(name, current) != 0) {
                        tv_test_fail(__FILE__, __LINE__, "sample %s outside its family (in %s)", name, current);
                }
                CHECK(type[0] != '\0');
                const char *v = strrchr(line, ' ');
                char *end;
                CHECK(v != NULL);
                double d = strtod(v + 1, &end);
                CHECK(*end == '\0' && end != v + 1 && !isnan(d));
                CHECK(strstr(line, "NaN") == NULL);
                samples++;
        }
        return samples;
}

TEST(test_metrics_volume_tenant_and_pool_lines_are_exact_for_a_hand_built_report) {
        build_report();
        tv_metrics_input in = {.report = &report, .scrape_us = 1234567};
        _cleanup_free_ char *t = render(&in);
        const char *l = "{volume=\"tv-a1\",tenant=\"team-a\",pvc_namespace=\"team-a\",pvc_name=\"data\"}";
        char line[512];

#define VOL(name, value)                                                                           \
        snprintf(line, sizeof(line), "thinvault_volume_" name "%s " value, l);                     \
        CHECK_LINE(t, line)
        VOL("provisioned_bytes", "67108864");
        VOL("allocated_bytes", "12582912");
        VOL("staged", "1");
        VOL("snapshots", "0");
        VOL("fs_size_bytes", "62914560");
        VOL("fs_used_bytes", "5242880");
        VOL("fs_inodes", "16384");
        VOL("fs_used_inodes", "12");
        VOL("read_ops_total", "10");
        VOL("write_ops_total", "1024");
        VOL("read_bytes_total", "40960");
        VOL("write_bytes_total", "4194304");
        VOL("read_time_seconds_total", "1.234");
        VOL("write_time_seconds_total", "0.056");
        VOL("throttled_seconds_total", "2.500000");
        VOL("limit_read_iops", "300");
        VOL("limit_write_iops", "200");
        VOL("limit_write_bytes_per_second", "10485760");
#undef VOL
        /* rbps is "max": no sample at all */
        CHECK_NO_PREFIX(t, "thinvault_volume_limit_read_bytes_per_second{");
        /* a volume without a pvc tag, not staged */
        CHECK_LINE(t, "thinvault_volume_staged{volume=\"tv-a2\",tenant=\"team-a\",pvc_namespace=\"\",pvc_name=\"\"} 0");
        CHECK(strstr(t, "thinvault_volume_fs_used_bytes{volume=\"tv-a2\"") == NULL);
        CHECK(strstr(t, "thinvault_volume_write_ops_total{volume=\"tv-a2\"") == NULL);
        /* inactive: provisioned, but no allocated sample rather than a 0 */
        CHECK_LINE(t, "thinvault_volume_snapshots{volume=\"tv-b1\",tenant=\"team-b\",pvc_namespace=\"team-b\",pvc_name=\"logs\"} 1");
        CHECK(strstr(t, "thinvault_volume_allocated_bytes{volume=\"tv-b1\"") == NULL);
        /* snapshots and foreign LVs are not volumes */
        CHECK(strstr(t, "volume=\"tvs-b1\"") == NULL);
        CHECK(strstr(t, "volume=\"plain\"") == NULL);

        CHECK_LINE(t, "thinvault_tenant_provisioned_bytes{tenant=\"team-a\"} 100663296");
        CHECK_LINE(t, "thinvault_tenant_allocated_bytes{tenant=\"team-a\"} 13631488");
        CHECK_LINE(t, "thinvault_tenant_used_bytes{tenant=\"team-a\"} 5242880");
        CHECK_LINE(t, "thinvault_tenant_volumes{tenant=\"team-a\"} 2");
        CHECK_LINE(t, "thinvault_tenant_volumes{tenant=\"team-b\"} 1");
        CHECK_LINE(t, "thinvault_tenant_snapshots{tenant=\"team-b\"} 1");
        CHECK_LINE(t, "thinvault_tenant_provisioned_bytes{tenant=\"team-b\"} 16777216");

        CHECK_LINE(t, "thinvault_pool_up{vg=\"vg0\",thin_pool=\"pool\"} 1");
        CHECK_LINE(t, "thinvault_pool_data_used_bytes{vg=\"vg0\",thin_pool=\"pool\"} 25165824");
        CHECK_LINE(t, "thinvault_pool_data_total_bytes{vg=\"vg0\",thin_pool=\"pool\"} 536870912");
        CHECK_LINE(t, "thinvault_pool_metadata_used_bytes{vg=\"vg0\",thin_pool=\"pool\"} 123456");
        CHECK_LINE(t, "thinvault_pool_metadata_total_bytes{vg=\"vg0\",thin_pool=\"pool\"} 4194304");
        CHECK_LINE(t, "thinvault_pool_virtual_bytes{vg=\"vg0\",thin_pool=\"pool\"} 142606336");
        CHECK_LINE(t, "thinvault_pool_overprovision_ratio{vg=\"vg0\",thin_pool=\"pool\"} 0.25");
        CHECK_LINE(t, "thinvault_pool_healthy{vg=\"vg0\",thin_pool=\"pool\"} 1");
        CHECK_LINE(t, "thinvault_pool_out_of_metadata_space{vg=\"vg0\",thin_pool=\"pool\"} 0");
        CHECK_LINE(t, "thinvault_pool_volumes{vg=\"vg0\",thin_pool=\"pool\"} 3");
        CHECK_LINE(t, "thinvault_scrape_duration_seconds 1.234567");
        CHECK_LINE(t, "# HELP thinvault_volume_write_bytes_total Bytes written to the staged volume's device.");
        CHECK_LINE(t, "# TYPE thinvault_volume_write_bytes_total counter");
        CHECK(strstr(t, "thinvault_rpc_") == NULL); /* no RPC snapshot given */
        CHECK(check_format(t) > 40);
        tv_meter_tenants_free(report.tenants, report.n_tenants);
}

/* The sum of the values of family `name`'s samples whose line contains `match`. */
static unsigned long long sum_of(const char *text, const char *name, const char *match) {
        unsigned long long sum = 0;
        size_t n = strlen(name);

        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                char line[512];

                snprintf(line, sizeof(line), "%.*s", (int)len, p);
                if (strncmp(line, name, n) == 0 && line[n] == '{' && strstr(line, match))
                        sum += strtoull(strrchr(line, ' ') + 1, NULL, 10);
                p += len + (nl ? 1 : 0);
        }
        return sum;
}

TEST(test_metrics_tenant_sums_equal_the_sums_of_the_volume_lines) {
        build_report();
        tv_metrics_input in = {.report = &report};
        _cleanup_free_ char *t = render(&in);

        CHECK_INT(sum_of(t, "thinvault_volume_provisioned_bytes", "tenant=\"team-a\""),
                  sum_of(t, "thinvault_tenant_provisioned_bytes", "tenant=\"team-a\""));
        CHECK_INT(sum_of(t, "thinvault_volume_provisioned_bytes", "tenant=\"team-a\""), 96 * MiB);
        CHECK_INT(sum_of(t, "thinvault_volume_allocated_bytes", "tenant=\"team-a\""),
                  sum_of(t, "thinvault_tenant_allocated_bytes", "tenant=\"team-a\""));
        CHECK_INT(sum_of(t, "thinvault_volume_fs_used_bytes", "tenant=\"team-a\""),
                  sum_of(t, "thinvault_tenant_used_bytes", "tenant=\"team-a\""));
        CHECK_INT(sum_of(t, "thinvault_volume_provisioned_bytes", "tenant=\"team-b\""),
                  sum_of(t, "thinvault_tenant_provisioned_bytes", "tenant=\"team-b\""));
        tv_meter_tenants_free(report.tenants, report.n_tenants);
}

TEST(test_metrics_label_values_escape_backslash_quote_and_newline) {
        tv_metrics_buf b = {0};

        CHECK_INT(tv_metrics_buf_label_value(&b, "a\\b\"c\nd"), 0);
        CHECK_STR(b.data, "a\\\\b\\\"c\\nd");
        tv_metrics_buf_clear(&b);
        CHECK_INT(tv_metrics_buf_label_value(&b, ""), 0);
        CHECK_STR(b.data, "");
        tv_metrics_buf_clear(&b);
        CHECK_INT(tv_metrics_buf_label_value(&b, "\n\n\\"), 0);
        CHECK_STR(b.data, "\\n\\n\\\\");
        tv_metrics_buf_clear(&b);

        build_report();
        vols[1].tenant = "we\"ird\\ten\nant";
        vols[1].pvc = "ns/na\"me";
        tv_meter_tenants_free(report.tenants, report.n_tenants);
        CHECK_INT(tv_meter_aggregate(vols, 5, &report.tenants, &report.n_tenants), 0);
        tv_metrics_input in = {.report = &report};
        _cleanup_free_ char *t = render(&in);
        CHECK_LINE(t, "thinvault_volume_staged{volume=\"tv-a2\",tenant=\"we\\\"ird\\\\ten\\nant\",pvc_namespace=\"ns\",pvc_name=\"na\\\"me\"} 0");
        CHECK_LINE(t, "thinvault_tenant_volumes{tenant=\"we\\\"ird\\\\ten\\nant\"} 1");
        CHECK(check_format(t) > 0);
        tv_meter_tenants_free(report.tenants, report.n_tenants);
}

static const char *const method_names[] = {"Identity.Probe", "Controller.CreateVolume"};
static const char *const code_names[TV_METRICS_N_CODES] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

TEST(test_metrics_rpc_histogram_is_cumulative_with_inf_equal_to_count) {
        _cleanup_(tv_rpc_stats_freep) tv_rpc_stats *s = NULL;
        _cleanup_(tv_rpc_snapshot_freep) tv_rpc_snapshot *snap = NULL;

        CHECK_INT(tv_rpc_stats_new(method_names, 2, code_names, &s), 0);
        /* CreateVolume: 0.5 ms, exactly 1 ms (le is inclusive), 3 ms, 2 s, 90 s */
        tv_rpc_stats_record(s, 1, 0, 500);
        tv_rpc_stats_record(s, 1, 0, 1000);
        tv_rpc_stats_record(s, 1, 6, 3000);
        tv_rpc_stats_record(s, 1, 8, 2000000);
        tv_rpc_stats_record(s, 1, 0, 90000000);
        tv_rpc_stats_record(s, 0, 0, 200);
        tv_rpc_stats_record(s, 7, 12, 100);  /* not in the table */
        tv_rpc_stats_record(s, 0, 99, 100);  /* not a status */
        CHECK_INT(tv_rpc_stats_snapshot(s, &snap), 0);
        tv_metrics_input in = {.rpc = snap, .vg = "vg0", .thin_pool = "pool"};
        _cleanup_free_ char *t = render(&in);

        CHECK_LINE(t, "thinvault_rpc_requests_total{method=\"Controller.CreateVolume\",code=\"OK\"} 3");
        CHECK_LINE(t, "thinvault_rpc_requests_total{method=\"Controller.CreateVolume\",code=\"ALREADY_EXISTS\"} 1");
        CHECK_LINE(t, "thinvault_rpc_requests_total{method=\"Controller.CreateVolume\",code=\"RESOURCE_EXHAUSTED\"} 1");
        CHECK_LINE(t, "thinvault_rpc_requests_total{method=\"unknown\",code=\"UNIMPLEMENTED\"} 1");
        CHECK_LINE(t, "thinvault_rpc_requests_total{method=\"Identity.Probe\",code=\"UNKNOWN\"} 1");
        CHECK_LINE(t, "thinvault_rpc_requests_total{method=\"Identity.Probe\",code=\"OK\"} 1");
        CHECK(strstr(t, "code=\"CANCELLED\"") == NULL);
        const char *h = "thinvault_rpc_duration_seconds";
        char line[256];
        static const struct {
                const char *le;
                int n;
        } want[] = {{"0.001", 2}, {"0.0025", 2}, {"0.005", 3}, {"1", 3}, {"2.5", 4}, {"60", 4}, {"+Inf", 5}};
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                snprintf(line, sizeof(line), "%s_bucket{method=\"Controller.CreateVolume\",le=\"%s\"} %d", h, want[i].le,
                         want[i].n);
                CHECK_LINE(t, line);
        }
        CHECK_LINE(t, "thinvault_rpc_duration_seconds_count{method=\"Controller.CreateVolume\"} 5");
        CHECK_LINE(t, "thinvault_rpc_duration_seconds_sum{method=\"Controller.CreateVolume\"} 92.004500");
        /* every method's buckets never decrease, and +Inf is its count */
        for (const char *m = t; (m = strstr(m, "_bucket{method=\"")); ) {
                char meth[64];
                unsigned long long prev = 0, v = 0;
                sscanf(m + 16, "%63[^\"]", meth);
                snprintf(line, sizeof(line), "_bucket{method=\"%s\",le=\"", meth);
                for (; m && strncmp(m, line, strlen(line)) == 0; m = strstr(m + 1, "_bucket{method=\"")) {
                        v = strtoull(strchr(m, ' ') + 1, NULL, 10);
                        CHECK(v >= prev);
                        prev = v;
                        if (strncmp(m + strlen(line), "+Inf", 4) == 0) {
                                char count[128];
                                snprintf(count, sizeof(count), "%s_count{method=\"%s\"} %llu", h, meth, v);
                                CHECK_LINE(t, count);
                        }
                }
                if (!m)
                        break;
        }
        /* no collection: the pool is said to be down, no volume family */
        CHECK_LINE(t, "thinvault_pool_up{vg=\"vg0\",thin_pool=\"pool\"} 0");
        CHECK(strstr(t, "thinvault_volume_") == NULL);
        CHECK(check_format(t) > 20);
}

TEST(test_metrics_non_finite_ratio_is_written_as_zero) {
        build_report();
        report.pool.overprovision_ratio = NAN;
        tv_metrics_input in = {.report = &report};
        _cleanup_free_ char *t = render(&in);
        CHECK_LINE(t, "thinvault_pool_overprovision_ratio{vg=\"vg0\",thin_pool=\"pool\"} 0");
        CHECK(check_format(t) > 0);
        tv_meter_tenants_free(report.tenants, report.n_tenants);
}

TEST(test_metrics_parse_address_takes_host_port_ipv6_and_bare_port) {
        char host[64];
        uint16_t port = 1;

        CHECK_INT(tv_metrics_parse_address("127.0.0.1:9808", host, sizeof(host), &port), 0);
        CHECK_STR(host, "127.0.0.1");
        CHECK_INT(port, 9808);
        CHECK_INT(tv_metrics_parse_address("[::1]:80", host, sizeof(host), &port), 0);
        CHECK_STR(host, "::1");
        CHECK_INT(port, 80);
        CHECK_INT(tv_metrics_parse_address(":0", host, sizeof(host), &port), 0);
        CHECK_STR(host, "");
        CHECK_INT(port, 0);
        CHECK_INT(tv_metrics_parse_address("node-a:65535", host, sizeof(host), &port), 0);
        CHECK_STR(host, "node-a");
        static const char *const bad[] = {"", "9808", "host:", "host:65536", "host:-1", "host:80x", "::1:80",
                                          "[::1]80", "[]:80", "host: 80"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (tv_metrics_parse_address(bad[i], host, sizeof(host), &port) != -EINVAL)
                        tv_test_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
        CHECK_INT(tv_metrics_parse_address("a-very-long-host-name:80", host, 8, &port), -EINVAL);
}
