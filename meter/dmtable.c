/* Device-mapper tables for display, without keys. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <libdevmapper.h>

#include "thinvault/lvm.h"
#include "thinvault/meter.h"

/* Calls into libdevmapper go one at a time, process-wide, with its control
 * fd held open (tv_dm_lock() in lvm.h says why). */

static void dm_task_destroyp(struct dm_task **t) {
        if (*t)
                dm_task_destroy(*t);
}

/* Does the device exist? DM_DEVICE_INFO answers "no" without an error,
 * where DM_DEVICE_TABLE would make libdevmapper log one. */
static int dm_exists(const char *name) {
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;
        struct dm_info info;

        dmt = dm_task_create(DM_DEVICE_INFO);
        if (!dmt)
                return -ENOMEM;
        if (!dm_task_set_name(dmt, name) || !dm_task_run(dmt) || !dm_task_get_info(dmt, &info))
                return -EIO;
        return info.exists ? 1 : 0;
}

int tv_meter_read_dm_table(const char *dm_name, char **ret_table) {
        _cleanup_(tv_dm_unlockp) pthread_mutex_t *locked = NULL;
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        void *next = NULL;
        int r;

        if (!dm_name || !*dm_name || strlen(dm_name) > TV_LUKS_MAPPING_NAME_MAX || !ret_table)
                return -EINVAL;
        locked = tv_dm_lock();
        r = dm_exists(dm_name);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENXIO;
        dmt = dm_task_create(DM_DEVICE_TABLE);
        if (!dmt)
                return -ENOMEM;
        /* The reply holds a crypt target's key: libdevmapper wipes its
         * ioctl buffers when the task is destroyed. */
        if (!dm_task_secure_data(dmt) || !dm_task_set_name(dmt, dm_name))
                return -EIO;
        if (!dm_task_run(dmt))
                return -EIO;
        out = strdup("");
        if (!out)
                return -ENOMEM;
        do {
                uint64_t start = 0, length = 0;
                char *type = NULL, *params = NULL;
                _cleanup_free_ char *shown = NULL;

                next = dm_get_next_target(dmt, next, &start, &length, &type, &params);
                if (!type)
                        break;
                r = tv_meter_redact_table_params(type, params ? params : "", &shown);
                if (r == -EBADMSG)
                        shown = strdup(TV_METER_REDACTED);
                else if (r < 0)
                        return r;
                if (!shown)
                        return -ENOMEM;
                char *line = tv_asprintf("%" PRIu64 " %" PRIu64 " %s %s\n", start, length, type, shown);
                if (!line)
                        return -ENOMEM;
                size_t ll = strlen(line);
                char *grown = realloc(out, len + ll + 1);
                if (!grown) {
                        free(line);
                        return -ENOMEM;
                }
                out = grown;
                memcpy(out + len, line, ll + 1);
                len += ll;
                free(line);
        } while (next);
        *ret_table = TAKE_PTR(out);
        return 0;
}
