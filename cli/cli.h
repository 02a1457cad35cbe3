/* Private to cli/: the command table and shared options of thinvaultctl. */
#ifndef THINVAULT_CLI_H
#define THINVAULT_CLI_H

typedef struct {
        const char *endpoint;
        int timeout_ms;
} cli_globals;

/* Exit statuses: 0 success, 1 the operation failed (an RPC status other
 * than OK, a finding), 2 bad usage or input. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* `thinvaultctl csi ...`; argv[0] is "csi". */
int cli_cmd_csi(const cli_globals *g, int argc, char **argv);

#endif
