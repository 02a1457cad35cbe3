/* Private to cli/: the admin commands of thinvaultctl (pool, volumes,
 * usage, inspect, audit). They read LVM, device-mapper, sysfs and cgroup
 * files directly through the meter layer, so they answer while the plugin
 * is down; nothing here talks to the plugin or changes anything. */
#ifndef THINVAULT_CLI_ADMIN_H
#define THINVAULT_CLI_ADMIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli.h"
#include "thinvault/meter.h"

/* `thinvaultctl <command> ...`; argv[0] is the command. */
int cli_cmd_pool(const cli_globals *g, int argc, char **argv);
int cli_cmd_volumes(const cli_globals *g, int argc, char **argv);
int cli_cmd_usage(const cli_globals *g, int argc, char **argv);
int cli_cmd_inspect(const cli_globals *g, int argc, char **argv);
int cli_cmd_audit(const cli_globals *g, int argc, char **argv);
/* `thinvaultctl limits VOLUME [--set KEY=VALUE]... [--clear]`: shows a
 * volume's budget from LVM and the cgroup; --set/--clear change it through
 * the plugin's ControllerModifyVolume (the one writer of limits). */
int cli_cmd_limits(const cli_globals *g, int argc, char **argv);

/* ---- shared by the admin commands (admin_common.c) ---------------------- */

#define ADMIN_DEFAULT_VG "thinvault"
#define ADMIN_DEFAULT_THIN_POOL "pool"

#define ADMIN_MAX_SETS 16

typedef enum { ADMIN_OUT_TABLE = 0, ADMIN_OUT_JSON = 1 } admin_output;

/* What a command accepts besides the common options. */
typedef struct {
        const char *name;     /* "pool" */
        const char *synopsis; /* "[--config PATH]" or "VOLUME" */
        const char *summary;  /* one line */
        const char *details;  /* more help text, may be NULL */
        bool takes_config;    /* --config PATH */
        bool takes_set;       /* --set KEY=VALUE (repeatable) and --clear */
        int n_args;           /* positional arguments: exactly this many */
} admin_command;

typedef struct {
        const char *vg, *thin_pool;
        const char *cgroup_parent; /* NULL: discover */
        const char *config;        /* NULL: none */
        admin_output output;
        char **args; /* the positional arguments */
        int n_args;
        const char *sets[ADMIN_MAX_SETS]; /* --set KEY=VALUE, as given */
        size_t n_sets;
        bool clear; /* --clear */
} admin_opts;

/* Parse argv (argv[0] is the command) into *o: --vg, --thin-pool (defaults
 * $THINVAULT_VG / $THINVAULT_THIN_POOL, else "thinvault" / "pool"),
 * --cgroup-parent, -o/--output table|json, --help, and --config when the
 * command takes it. Returns -1 when the command should go on, else the
 * exit status to return (CLI_OK after --help, CLI_USAGE on bad usage,
 * with the message printed). */
int admin_parse(const admin_command *cmd, int argc, char **argv, admin_opts *o);

/* admin_parse() for a command whose one argument is VOLUME: a volume id
 * "VG:LV" (as CreateVolume returns it) or an LV name in --vg. Fills vg and
 * lv (ADMIN_NAME_MAX bytes each). Returns like admin_parse(). */
#define ADMIN_NAME_MAX 128
int admin_parse_volume(const admin_command *cmd, int argc, char **argv, admin_opts *o, char vg[ADMIN_NAME_MAX],
                       char lv[ADMIN_NAME_MAX]);

/* Open the pool and collect (meter). Prints the error and returns
 * CLI_FAILED on failure, else 0 with *ret_report. `only_lv` and `flags`
 * as in tv_meter_options. */
int admin_collect(const admin_opts *o, const char *vg, const char *only_lv, uint32_t flags,
                  tv_meter_report **ret_report);

/* Print `root` as indented JSON followed by a newline, and drop the
 * reference. Returns CLI_OK, or CLI_FAILED when it cannot be rendered. */
int admin_print_json(json_t *root);

/* "1.5 GiB", "512.0 MiB", "17 B". Returns buf. */
const char *admin_bytes(uint64_t v, char *buf, size_t size);

/* "riops=300 wiops=300 rbps=max wbps=100Mi/s"-like, "unlimited" for all 0. */
const char *admin_limits(const tv_limits *l, char *buf, size_t size);

/* What io.max holds for a volume, for people: "riops=... (CGROUP/io.max)",
 * "- (not staged on this node)" or why it cannot be read. Returns buf. */
const char *admin_in_force(const tv_meter_report *rep, const tv_meter_volume *v, char *buf, size_t size);

/* JSON helpers: a string or null; limits as an object (0 = unlimited). */
json_t *admin_json_str(const char *s);
json_t *admin_json_limits(const tv_limits *l);

/* The JSON of one volume record (shared by volumes and inspect). */
json_t *admin_volume_json(const tv_meter_report *rep, const tv_meter_volume *v);

/* "yes", "no", "foreign" or "?" for a volume's encryption. */
const char *admin_encrypted_word(const tv_meter_volume *v);

/* ---- tables for people ---------------------------------------------------- */

typedef struct admin_table admin_table;

/* A table with `n_cols` columns named by `headers`; a header that starts
 * with '>' is right-aligned (the '>' is not printed). */
admin_table *admin_table_new(const char *const *headers, size_t n_cols);
/* Add a row of n_cols strings (copied; NULL prints as "-"). */
int admin_table_add(admin_table *t, const char *const *cells);
/* Print with columns padded to their widest cell, two spaces apart. */
void admin_table_print(const admin_table *t, FILE *f);
void admin_table_free(admin_table *t);
TV_DEFINE_FREEP(admin_table, admin_table_free)

#endif
