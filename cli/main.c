/* thinvaultctl: the storage admin's tool. Global options, then a command. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "cli.h"
#include "thinvault/util.h"

#define DEFAULT_ENDPOINT "unix:///run/thinvault/csi.sock"

static void usage(FILE *f) {
        fputs("Usage: thinvaultctl [--endpoint unix:///PATH] [--timeout SECONDS] COMMAND [ARGS]\n"
              "The thinvault admin and debug tool.\n"
              "\n"
              "Commands:\n"
              "  csi <Service>.<Method> [--json REQUEST]   send any CSI request, print the reply as JSON\n"
              "  pool [--config PATH]                      thin pool use, overprovisioning, volumes per tenant\n"
              "  volumes                                   every thin LV: tenant, size, allocated, used, IOPS, staging\n"
              "  usage                                     per-tenant totals (the metering view)\n"
              "  inspect VOLUME                            one volume: LV, tags, token, limits, mounts, dm tables\n"
              "  audit                                     check every volume's promises; exit status 1 on findings\n"
              "  limits VOLUME [--set KEY=VALUE]... [--clear]  show a volume's I/O budget; change it via the plugin\n"
              "  (these six read LVM, dm and sysfs directly; they take --vg VG --thin-pool POOL -o table|json)\n"
              "\n"
              "Options:\n"
              "  --endpoint unix:///PATH   the plugin's socket (default $CSI_ENDPOINT, else " DEFAULT_ENDPOINT ")\n"
              "  --timeout SECONDS         give up on an RPC after this long (default 60)\n"
              "  --help                    this text; COMMAND --help for a command's\n",
              f);
}

int main(int argc, char **argv) {
        enum { OPT_ENDPOINT = 256, OPT_TIMEOUT, OPT_HELP };
        static const struct option opts[] = {
                {"endpoint", required_argument, NULL, OPT_ENDPOINT},
                {"timeout", required_argument, NULL, OPT_TIMEOUT},
                {"help", no_argument, NULL, OPT_HELP},
                {0},
        };
        cli_globals g = {.endpoint = getenv("CSI_ENDPOINT"), .timeout_ms = 60000};
        char *end;
        int c;

        if (!g.endpoint || !*g.endpoint)
                g.endpoint = DEFAULT_ENDPOINT;
        /* "+": stop at the command, its options are its own. */
        while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
                switch (c) {
                case OPT_ENDPOINT:
                        g.endpoint = optarg;
                        break;
                case OPT_TIMEOUT: {
                        errno = 0;
                        long v = strtol(optarg, &end, 10);
                        if (errno || *end || v < 1 || v > 86400) {
                                fprintf(stderr, "thinvaultctl: --timeout wants 1..86400 seconds, got '%s'\n", optarg);
                                return CLI_USAGE;
                        }
                        g.timeout_ms = (int)v * 1000;
                        break;
                }
                case OPT_HELP:
                        usage(stdout);
                        return CLI_OK;
                default:
                        usage(stderr);
                        return CLI_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return CLI_USAGE;
        }
        if (strcmp(argv[optind], "csi") == 0)
                return cli_cmd_csi(&g, argc - optind, argv + optind);
        if (strcmp(argv[optind], "pool") == 0)
                return cli_cmd_pool(&g, argc - optind, argv + optind);
        if (strcmp(argv[optind], "volumes") == 0)
                return cli_cmd_volumes(&g, argc - optind, argv + optind);
        if (strcmp(argv[optind], "usage") == 0)
                return cli_cmd_usage(&g, argc - optind, argv + optind);
        if (strcmp(argv[optind], "inspect") == 0)
                return cli_cmd_inspect(&g, argc - optind, argv + optind);
        if (strcmp(argv[optind], "audit") == 0)
                return cli_cmd_audit(&g, argc - optind, argv + optind);
        if (strcmp(argv[optind], "limits") == 0)
                return cli_cmd_limits(&g, argc - optind, argv + optind);
        fprintf(stderr, "thinvaultctl: unknown command '%s'\n", argv[optind]);
        usage(stderr);
        return CLI_USAGE;
}
