/* util/exec.c: the node handlers run mkfs and the file system growers; the
 * fuzzer runs no program and answers for those only. mkfs.TYPE on an open
 * mapping (its last argument) records TYPE for the LUKS stand-in's probe. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "thinvault/util.h"

static const char *const known[] = {"mkfs.ext4", "mkfs.xfs", "resize2fs", "xfs_growfs"};

int tv_exec(const char *const argv[], int timeout_ms, char **ret_out, char **ret_err) {
        bool known_program = false;

        if (ret_out)
                *ret_out = NULL;
        if (ret_err)
                *ret_err = NULL;
        if (!argv || !argv[0] || timeout_ms <= 0)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                known_program = known_program || strcmp(argv[0], known[i]) == 0;
        if (!known_program)
                return -ENOENT;
        if (strncmp(argv[0], "mkfs.", 5) == 0) {
                size_t last = 0;
                fuzz_luks *l;

                while (argv[last + 1])
                        last++;
                l = strncmp(argv[last], "/dev/mapper/", 12) == 0 ? fuzz_luks_by_mapping(argv[last] + 12, NULL) : NULL;
                if (!l)
                        return 1; /* mkfs: no such device */
                snprintf(l->fs, sizeof(l->fs), "%s", argv[0] + 5);
        }
        if (ret_out && !(*ret_out = strdup("")))
                return -ENOMEM;
        if (ret_err && !(*ret_err = strdup(""))) {
                if (ret_out) {
                        free(*ret_out);
                        *ret_out = NULL;
                }
                return -ENOMEM;
        }
        return 0;
}
