/* What the admin commands share: options, collection, output helpers. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"

/* ---- options ---------------------------------------------------------------- */

static void admin_usage(const admin_command *cmd, FILE *f) {
        fprintf(f,
                "Usage: thinvaultctl %s [--vg VG] [--thin-pool POOL] [-o table|json]%s%s\n"
                "%s\n",
                cmd->name, cmd->synopsis && *cmd->synopsis ? " " : "", cmd->synopsis ? cmd->synopsis : "",
                cmd->summary);
        if (cmd->details)
                fprintf(f, "\n%s", cmd->details);
        fputs("\nOptions:\n"
              "  --vg VG               the volume group (default $THINVAULT_VG, else " ADMIN_DEFAULT_VG ")\n"
              "  --thin-pool POOL      the thin pool in it (default $THINVAULT_THIN_POOL, else " ADMIN_DEFAULT_THIN_POOL ")\n"
              "  --cgroup-parent PATH  the pods cgroup whose io.max holds the limits in force\n"
              "                        (default: found as the plugin finds it, kubepods.slice or kubepods)\n"
              "  -o, --output FORMAT   table (for people, the default) or json (for programs)\n",
              f);
        if (cmd->takes_config)
                fputs("  --config PATH         the plugin's config file: show its pool thresholds\n", f);
        if (cmd->takes_set)
                fputs("  --set KEY=VALUE       a new budget parameter (repeat for more); the whole budget is\n"
                      "                        replaced by the ones given, through the plugin (--endpoint)\n"
                      "  --clear               remove the volume's budget, through the plugin\n",
                      f);
        fputs("  --help                this text\n"
              "\n"
              "Reads LVM, device-mapper, sysfs and cgroup files directly (needs root); works while\n"
              "the plugin is down. Sizes in JSON are bytes; a limit of 0 is unlimited.\n",
              f);
        if (!cmd->takes_set)
                fputs("Changes nothing.\n", f);
}

int admin_parse(const admin_command *cmd, int argc, char **argv, admin_opts *o) {
        enum { OPT_VG = 256, OPT_POOL, OPT_CGROUP, OPT_CONFIG, OPT_SET, OPT_CLEAR, OPT_HELP };
        static const struct option opts[] = {
                {"vg", required_argument, NULL, OPT_VG},
                {"thin-pool", required_argument, NULL, OPT_POOL},
                {"cgroup-parent", required_argument, NULL, OPT_CGROUP},
                {"config", required_argument, NULL, OPT_CONFIG},
                {"set", required_argument, NULL, OPT_SET},
                {"clear", no_argument, NULL, OPT_CLEAR},
                {"output", required_argument, NULL, 'o'},
                {"help", no_argument, NULL, OPT_HELP},
                {0},
        };
        const char *env;
        int c;

        *o = (admin_opts){.vg = ADMIN_DEFAULT_VG, .thin_pool = ADMIN_DEFAULT_THIN_POOL};
        env = getenv("THINVAULT_VG");
        if (env && *env)
                o->vg = env;
        env = getenv("THINVAULT_THIN_POOL");
        if (env && *env)
                o->thin_pool = env;

        optind = 0; /* glibc: 0 re-initialises getopt for the sub-command */
        while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
                switch (c) {
                case OPT_VG:
                        o->vg = optarg;
                        break;
                case OPT_POOL:
                        o->thin_pool = optarg;
                        break;
                case OPT_CGROUP:
                        o->cgroup_parent = optarg;
                        break;
                case OPT_CONFIG:
                        if (!cmd->takes_config) {
                                fprintf(stderr, "thinvaultctl %s: --config is an option of thinvaultctl pool only\n",
                                        cmd->name);
                                return CLI_USAGE;
                        }
                        o->config = optarg;
                        break;
                case OPT_SET:
                case OPT_CLEAR:
                        if (!cmd->takes_set) {
                                fprintf(stderr, "thinvaultctl %s: --set and --clear are options of thinvaultctl limits only\n",
                                        cmd->name);
                                return CLI_USAGE;
                        }
                        if (c == OPT_CLEAR) {
                                o->clear = true;
                                break;
                        }
                        if (o->n_sets == ADMIN_MAX_SETS) {
                                fprintf(stderr, "thinvaultctl %s: at most %d --set options\n", cmd->name, ADMIN_MAX_SETS);
                                return CLI_USAGE;
                        }
                        o->sets[o->n_sets++] = optarg;
                        break;
                case 'o':
                        if (strcmp(optarg, "table") == 0)
                                o->output = ADMIN_OUT_TABLE;
                        else if (strcmp(optarg, "json") == 0)
                                o->output = ADMIN_OUT_JSON;
                        else {
                                fprintf(stderr, "thinvaultctl %s: -o wants table or json, got '%s'\n", cmd->name,
                                        optarg);
                                return CLI_USAGE;
                        }
                        break;
                case OPT_HELP:
                        admin_usage(cmd, stdout);
                        return CLI_OK;
                default:
                        admin_usage(cmd, stderr);
                        return CLI_USAGE;
                }
        }
        if (argc - optind != cmd->n_args) {
                if (argc - optind > cmd->n_args)
                        fprintf(stderr, "thinvaultctl %s: unexpected argument '%s'\n", cmd->name,
                                argv[optind + cmd->n_args]);
                admin_usage(cmd, stderr);
                return CLI_USAGE;
        }
        o->args = argv + optind;
        o->n_args = cmd->n_args;
        if (!tv_lvm_name_valid(o->vg) || !tv_lvm_name_valid(o->thin_pool)) {
                fprintf(stderr, "thinvaultctl %s: '%s/%s' is not a valid volume group / thin pool name\n",
                        cmd->name, o->vg, o->thin_pool);
                return CLI_USAGE;
        }
        /* Reads only: the layers' info lines would only clutter the output. */
        if (!tv_log_enabled(TV_LOG_DEBUG))
                tv_log_set_level(TV_LOG_WARN);
        return -1;
}

static int split_volume(const char *arg, const char *dflt_vg, char *vg, size_t vg_size, char *lv, size_t lv_size) {
        const char *colon = strchr(arg, ':');

        if (colon) {
                if ((size_t)(colon - arg) >= vg_size || strlen(colon + 1) >= lv_size)
                        return -EINVAL;
                memcpy(vg, arg, (size_t)(colon - arg));
                vg[colon - arg] = '\0';
                memcpy(lv, colon + 1, strlen(colon + 1) + 1);
        } else {
                if (strlen(dflt_vg) >= vg_size || strlen(arg) >= lv_size)
                        return -EINVAL;
                memcpy(vg, dflt_vg, strlen(dflt_vg) + 1);
                memcpy(lv, arg, strlen(arg) + 1);
        }
        return tv_lvm_name_valid(vg) && tv_lvm_name_valid(lv) ? 0 : -EINVAL;
}

int admin_parse_volume(const admin_command *cmd, int argc, char **argv, admin_opts *o, char vg[ADMIN_NAME_MAX],
                       char lv[ADMIN_NAME_MAX]) {
        int r = admin_parse(cmd, argc, argv, o);

        if (r >= 0)
                return r;
        if (split_volume(o->args[0], o->vg, vg, ADMIN_NAME_MAX, lv, ADMIN_NAME_MAX) < 0) {
                fprintf(stderr, "thinvaultctl %s: '%s' is neither a volume id (VG:LV) nor an LV name\n", cmd->name,
                        o->args[0]);
                return CLI_USAGE;
        }
        return -1;
}

int admin_collect(const admin_opts *o, const char *vg, const char *only_lv, uint32_t flags,
                  tv_meter_report **ret_report) {
        _cleanup_(tv_pool_freep) tv_pool *p = NULL;
        tv_meter_options mo = {.flags = flags, .only_lv = only_lv, .cgroup_parent = o->cgroup_parent};
        tv_lvm_error err;
        int r;

        r = tv_pool_open(vg, o->thin_pool, &p, &err);
        if (r < 0) {
                fprintf(stderr, "thinvaultctl: cannot open thin pool %s/%s: %s\n", vg, o->thin_pool,
                        err.message[0] ? err.message : strerror(-r));
                return CLI_FAILED;
        }
        r = tv_meter_collect(p, &mo, ret_report, &err);
        if (r < 0) {
                fprintf(stderr, "thinvaultctl: cannot read thin pool %s/%s: %s\n", vg, o->thin_pool,
                        err.message[0] ? err.message : strerror(-r));
                return CLI_FAILED;
        }
        return 0;
}

/* ---- output ----------------------------------------------------------------- */

int admin_print_json(json_t *root) {
        char *s;

        if (!root) {
                fprintf(stderr, "thinvaultctl: out of memory building the JSON output\n");
                return CLI_FAILED;
        }
        s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(root);
        if (!s) {
                fprintf(stderr, "thinvaultctl: cannot render the JSON output\n");
                return CLI_FAILED;
        }
        printf("%s\n", s);
        free(s);
        return CLI_OK;
}

const char *admin_bytes(uint64_t v, char *buf, size_t size) {
        static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double d = (double)v;
        size_t u = 0;

        if (v < 1024) {
                snprintf(buf, size, "%" PRIu64 " B", v);
                return buf;
        }
        d /= 1024.0;
        while (d >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                d /= 1024.0;
                u++;
        }
        snprintf(buf, size, "%.1f %s", d, units[u]);
        return buf;
}

static const char *limit_value(uint64_t v, bool bytes, char *buf, size_t size) {
        if (v == 0)
                snprintf(buf, size, "max");
        else if (bytes && v % (1ULL << 20) == 0)
                snprintf(buf, size, "%" PRIu64 "Mi", v >> 20);
        else if (bytes && v % (1ULL << 10) == 0)
                snprintf(buf, size, "%" PRIu64 "Ki", v >> 10);
        else
                snprintf(buf, size, "%" PRIu64, v);
        return buf;
}

const char *admin_limits(const tv_limits *l, char *buf, size_t size) {
        char a[32], b[32], c[32], d[32];

        if (tv_limits_is_unlimited(l)) {
                snprintf(buf, size, "unlimited");
                return buf;
        }
        snprintf(buf, size, "riops=%s wiops=%s rbps=%s wbps=%s", limit_value(l->read_iops, false, a, sizeof(a)),
                 limit_value(l->write_iops, false, b, sizeof(b)), limit_value(l->read_bps, true, c, sizeof(c)),
                 limit_value(l->write_bps, true, d, sizeof(d)));
        return buf;
}

const char *admin_in_force(const tv_meter_report *rep, const tv_meter_volume *v, char *buf, size_t size) {
        char lim[160];

        if (!v->staged)
                snprintf(buf, size, "- (not staged on this node)");
        else if (v->io_max_errno == -ENOENT && !rep->cgroup)
                snprintf(buf, size, "no pods cgroup: %s", rep->cgroup_error);
        else if (v->io_max_errno < 0)
                snprintf(buf, size, "cannot read io.max: %s", strerror(-v->io_max_errno));
        else
                snprintf(buf, size, "%s (%s/io.max)", admin_limits(&v->in_force, lim, sizeof(lim)), rep->cgroup);
        return buf;
}

json_t *admin_json_str(const char *s) {
        return s ? json_string(s) : json_null();
}

json_t *admin_json_limits(const tv_limits *l) {
        return json_pack("{s:I, s:I, s:I, s:I}", "readIOPS", (json_int_t)l->read_iops, "writeIOPS",
                         (json_int_t)l->write_iops, "readBytesPerSecond", (json_int_t)l->read_bps,
                         "writeBytesPerSecond", (json_int_t)l->write_bps);
}

const char *admin_encrypted_word(const tv_meter_volume *v) {
        if (!v->probed || v->probe_errno < 0)
                return "?";
        switch (v->luks.kind) {
        case TV_LUKS_KIND_OURS:
                return "yes";
        case TV_LUKS_KIND_FOREIGN:
                return "foreign";
        default:
                return "no";
        }
}

static json_t *u64(uint64_t v) {
        /* Sizes and counters stay far below 2^63. */
        return json_integer((json_int_t)(v > INT64_MAX ? INT64_MAX : v));
}

json_t *admin_volume_json(const tv_meter_report *rep, const tv_meter_volume *v) {
        json_t *o = json_object(), *lim, *mounts;
        char id[300], dev[32];

        if (!o)
                return NULL;
        snprintf(id, sizeof(id), "%s:%s", rep->pool.vg, v->name);
        json_object_set_new(o, "name", json_string(v->name));
        json_object_set_new(o, "volumeId", json_string(id));
        json_object_set_new(o, "kind", v->thinvault ? json_string(v->snapshot ? "snapshot" : "volume") : json_null());
        json_object_set_new(o, "thinvault", json_boolean(v->thinvault));
        json_object_set_new(o, "tenant", admin_json_str(v->tenant));
        json_object_set_new(o, "pvc", admin_json_str(v->pvc));
        json_object_set_new(o, "pv", admin_json_str(v->pv));
        json_object_set_new(o, "requestName", admin_json_str(v->request_name));
        json_object_set_new(o, "fsType", admin_json_str(v->fs));
        json_object_set_new(o, "keySource", admin_json_str(v->key_source));
        json_object_set_new(o, "source", admin_json_str(v->source));
        json_object_set_new(o, "sizeBytes", u64(v->size_bytes));
        json_object_set_new(o, "active", json_boolean(v->usage_errno == 0));
        json_object_set_new(o, "allocatedBytes", v->usage_errno == 0 ? u64(v->allocated_bytes) : json_null());
        json_object_set_new(o, "snapshots", json_integer(v->n_snapshots));

        lim = json_object();
        json_object_set_new(lim, "spec", admin_json_str(v->limits_tag));
        json_object_set_new(lim, "resolved", v->limits_errno == 0 ? admin_json_limits(&v->resolved) : json_null());
        json_object_set_new(lim, "error", v->limits_errno < 0 ? json_string(v->limits_error) : json_null());
        json_object_set_new(lim, "inForce",
                            v->staged && v->io_max_errno == 0 ? admin_json_limits(&v->in_force) : json_null());
        json_object_set_new(o, "limits", lim);

        json_object_set_new(o, "staged", json_boolean(v->staged));
        json_object_set_new(o, "mapping", v->staged ? json_string(v->mapping) : json_null());
        snprintf(dev, sizeof(dev), "%u:%u", v->map_major, v->map_minor);
        json_object_set_new(o, "device", v->staged ? json_string(dev) : json_null());
        mounts = json_array();
        for (size_t i = 0; i < v->n_mounts; i++)
                json_array_append_new(mounts, json_string(v->mounts[i]));
        json_object_set_new(o, "mounts", mounts);
        json_object_set_new(o, "filesystem",
                            v->fs_valid ? json_pack("{s:o, s:o, s:o, s:o, s:o}", "sizeBytes", u64(v->fs_size_bytes),
                                                    "usedBytes", u64(v->fs_used_bytes), "availableBytes",
                                                    u64(v->fs_avail_bytes), "inodes", u64(v->fs_inodes),
                                                    "inodesUsed", u64(v->fs_inodes_used))
                                        : json_null());
        json_object_set_new(o, "usedBytes", v->fs_valid ? u64(v->fs_used_bytes) : json_null());
        json_object_set_new(
                o, "io",
                v->io_valid ? json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "device",
                                        v->dm_kernel_name, "reads", u64(v->io.reads), "readSectors",
                                        u64(v->io.read_sectors), "readTicksMs", u64(v->io.read_ticks_ms), "writes",
                                        u64(v->io.writes), "writeSectors", u64(v->io.write_sectors), "writeTicksMs",
                                        u64(v->io.write_ticks_ms), "discards", u64(v->io.discards),
                                        "discardSectors", u64(v->io.discard_sectors), "inFlight",
                                        u64(v->io.in_flight), "ioTicksMs", u64(v->io.io_ticks_ms))
                            : json_null());
        json_object_set_new(o, "cgroupIo",
                            v->cgroup_io_valid
                                    ? json_pack("{s:o, s:o, s:o, s:o}", "readBytes", u64(v->cgroup_io.rbytes),
                                                "writeBytes", u64(v->cgroup_io.wbytes), "reads",
                                                u64(v->cgroup_io.rios), "writes", u64(v->cgroup_io.wios))
                                    : json_null());
        json_object_set_new(o, "throttledUs", v->throttle_valid ? u64(v->throttled_us) : json_null());
        if (v->probed) {
                json_object_set_new(o, "encrypted",
                                    v->probe_errno == 0 ? json_boolean(tv_meter_volume_encrypted(v)) : json_null());
                json_object_set_new(
                        o, "luks",
                        v->probe_errno == 0
                                ? json_pack("{s:s, s:o, s:o, s:o, s:o}", "kind", tv_luks_kind_to_string(v->luks.kind),
                                            "type", admin_json_str(v->luks.type[0] ? v->luks.type : NULL),
                                            "version", v->luks.luks_version ? json_integer(v->luks.luks_version) : json_null(),
                                            "tenant", admin_json_str(v->luks.tenant[0] ? v->luks.tenant : NULL),
                                            "keyFingerprint",
                                            admin_json_str(v->luks.fingerprint[0] ? v->luks.fingerprint : NULL))
                                : json_null());
                json_object_set_new(o, "luksError", v->probe_errno < 0 ? json_string(v->probe_error) : json_null());
        }
        return o;
}

/* ---- tables ------------------------------------------------------------------- */

struct admin_table {
        size_t n_cols, n_rows;
        char **cells; /* (n_rows + 1) x n_cols, row 0 the headers */
        bool *right;
};

admin_table *admin_table_new(const char *const *headers, size_t n_cols) {
        admin_table *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        t->n_cols = n_cols;
        t->right = calloc(n_cols, sizeof(*t->right));
        t->cells = calloc(n_cols, sizeof(*t->cells));
        if (!t->right || !t->cells) {
                admin_table_free(t);
                return NULL;
        }
        for (size_t i = 0; i < n_cols; i++) {
                t->right[i] = headers[i][0] == '>';
                t->cells[i] = strdup(headers[i] + (t->right[i] ? 1 : 0));
                if (!t->cells[i]) {
                        admin_table_free(t);
                        return NULL;
                }
        }
        return t;
}

int admin_table_add(admin_table *t, const char *const *cells) {
        char **c = realloc(t->cells, (t->n_rows + 2) * t->n_cols * sizeof(*c));

        if (!c)
                return -ENOMEM;
        t->cells = c;
        for (size_t i = 0; i < t->n_cols; i++)
                c[(t->n_rows + 1) * t->n_cols + i] = NULL;
        t->n_rows++;
        for (size_t i = 0; i < t->n_cols; i++) {
                c[t->n_rows * t->n_cols + i] = strdup(cells[i] ? cells[i] : "-");
                if (!c[t->n_rows * t->n_cols + i])
                        return -ENOMEM;
        }
        return 0;
}

void admin_table_print(const admin_table *t, FILE *f) {
        size_t *w = calloc(t->n_cols, sizeof(*w));

        if (!w)
                return;
        for (size_t r = 0; r <= t->n_rows; r++)
                for (size_t i = 0; i < t->n_cols; i++) {
                        const char *s = t->cells[r * t->n_cols + i];
                        size_t n = s ? strlen(s) : 0;
                        if (n > w[i])
                                w[i] = n;
                }
        for (size_t r = 0; r <= t->n_rows; r++) {
                for (size_t i = 0; i < t->n_cols; i++) {
                        const char *s = t->cells[r * t->n_cols + i];
                        bool last = i + 1 == t->n_cols;
                        if (t->right[i])
                                fprintf(f, "%*s", (int)w[i], s ? s : "");
                        else if (last)
                                fputs(s ? s : "", f);
                        else
                                fprintf(f, "%-*s", (int)w[i], s ? s : "");
                        if (!last)
                                fputs("  ", f);
                }
                fputc('\n', f);
        }
        free(w);
}

void admin_table_free(admin_table *t) {
        if (!t)
                return;
        if (t->cells)
                for (size_t i = 0; i < (t->n_rows + 1) * t->n_cols; i++)
                        free(t->cells[i]);
        free(t->cells);
        free(t->right);
        free(t);
}
