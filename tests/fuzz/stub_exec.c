/* util/exec.c: the node handlers run mkfs and the file system growers; the
 * fuzzer runs no program and answers for those only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
