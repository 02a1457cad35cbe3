/* lvm2 stderr -> errno. lvm2 exits 5 for nearly every failure and 3 for a
 * bad command line, so the reason is only in its words. The patterns are
 * lvm2 2.03's messages (see tests/unit/test_lvm_errmap.c for the real
 * lines they were taken from). */
#include <string.h>
#include <strings.h>

#include "thinvault/lvm.h"

typedef struct {
        const char *needle; /* case-insensitive substring */
        int err;
} pattern;

/* Order matters within one line: the first match decides. */
static const pattern patterns[] = {
        /* "Logical Volume "x" already exists in volume group "vg"" */
        {"already exists", -EEXIST},
        /* "Volume group "vg" has insufficient free space (12 extents): 25 required."
         * "Insufficient free space: 25 extents needed, but only 12 available"
         * "Cannot create new thin volume, free space in thin pool vg/pool reached threshold." */
        {"insufficient free space", -ENOSPC},
        {"insufficient suitable", -ENOSPC},
        {"reached threshold", -ENOSPC},
        {"out of data space", -ENOSPC},
        {"out of metadata space", -ENOSPC},
        {"no free extents", -ENOSPC},
        /* "Logical volume vg/lv in use." "... contains a filesystem in use."
         * "Can't remove open logical volume" */
        {" in use", -EBUSY},
        {"open logical volume", -EBUSY},
        {"device or resource busy", -EBUSY},
        /* "Volume group "vg" not found", "Failed to find logical volume "vg/lv"",
         * "Logical volume lv not found in volume group vg.",
         * "Snapshot origin LV lv not found in Volume group vg." */
        {"not found", -ENOENT},
        {"failed to find", -ENOENT},
        {"no pv found", -ENOENT},
        {"does not exist", -ENOENT},
        {"permission denied", -EACCES},
        {"must be root", -EACCES},
        {"operation not permitted", -EPERM},
        /* "Global lock failed: error -11", "Failed to lock logical volume" */
        {"lock failed", -EAGAIN},
        {"failed to lock", -EAGAIN},
        {"can't get lock", -EAGAIN},
        /* "Invalid argument for --size: x", "Names starting "snapshot" are reserved." */
        {"invalid argument", -EINVAL},
        {"are reserved", -EINVAL},
        {"not a multiple of", -EINVAL},
        {"not larger than existing size", -EINVAL},
        {"invalid", -EINVAL},
};

/* Lines that never decide: lvm2 warns on success too, complains about the
 * caller's inherited descriptors, and adds generic trailers. */
static bool line_is_noise(const char *s, size_t n) {
        static const char *const starts[] = {
                "WARNING:", "File descriptor ", "Run `", "Error during parsing of command line",
        };
        for (size_t i = 0; i < ELEMENTSOF(starts); i++) {
                size_t k = strlen(starts[i]);
                if (n >= k && strncmp(s, starts[i], k) == 0)
                        return true;
        }
        return false;
}

static bool contains_ci(const char *s, size_t n, const char *needle) {
        size_t k = strlen(needle);
        for (size_t i = 0; i + k <= n; i++)
                if (strncasecmp(s + i, needle, k) == 0)
                        return true;
        return false;
}

static void copy_line(char *dst, size_t size, const char *s, size_t n) {
        if (!dst || size == 0)
                return;
        if (n >= size)
                n = size - 1;
        memcpy(dst, s, n);
        dst[n] = '\0';
}

int tv_lvm_errno_from_stderr(int exit_status, const char *text, char *line, size_t size) {
        const char *last = NULL, *last_any = NULL;
        size_t last_n = 0, last_any_n = 0;

        if (line && size > 0)
                line[0] = '\0';
        for (const char *p = text ? text : ""; *p;) {
                const char *end = strchr(p, '\n');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                const char *s = p;
                size_t n = len;

                /* lvm2 indents its messages by two spaces. */
                while (n > 0 && (*s == ' ' || *s == '\t')) {
                        s++;
                        n--;
                }
                while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
                        n--;
                p = end ? end + 1 : p + len;
                if (n == 0)
                        continue;
                last_any = s;
                last_any_n = n;
                if (line_is_noise(s, n))
                        continue;
                last = s;
                last_n = n;
                for (size_t i = 0; i < ELEMENTSOF(patterns); i++)
                        if (contains_ci(s, n, patterns[i].needle)) {
                                copy_line(line, size, s, n);
                                return patterns[i].err;
                        }
        }
        if (last)
                copy_line(line, size, last, last_n);
        else if (last_any)
                copy_line(line, size, last_any, last_any_n);
        return exit_status == 3 ? -EINVAL : -EIO;
}
