/* lvm2 stderr -> errno. The texts are real lvm2 2.03.16 stderr (two-space
 * indent and all): captured in the test guest by
 * tests/guest/capture-lvm-reports.sh, the "not root" one on the host with
 * setpriv. Those marked (source) are lvm2 messages taken from its source,
 * not seen here: lvmlockd's lock failure, an allocation failure, a mounted
 * LV. */
#include "thinvault/lvm.h"
#include "tv_test.h"

typedef struct {
        const char *what;
        int status;
        const char *text;
        int err;
        const char *line;
} errcase;

static const errcase cases[] = {
        {"missing vg", 5, "  Volume group \"nope\" not found\n  Cannot process volume group nope\n",
         -ENOENT, "Volume group \"nope\" not found"},
        {"missing lv (lvs, lvremove)", 5, "  Failed to find logical volume \"tvcap/nope\"\n", -ENOENT,
         "Failed to find logical volume \"tvcap/nope\""},
        {"extend missing", 5, "  Logical volume nope not found in volume group tvcap.\n", -ENOENT,
         "Logical volume nope not found in volume group tvcap."},
        {"snapshot of missing origin", 5,
         "  Snapshot origin LV nope not found in Volume group tvcap.\n", -ENOENT,
         "Snapshot origin LV nope not found in Volume group tvcap."},
        {"missing pool", 5, "  Pool pool not found in Volume group tvx.\n", -ENOENT,
         "Pool pool not found in Volume group tvx."},
        {"pvremove without label", 5, "  No PV found on device /dev/loop0.\n", -ENOENT,
         "No PV found on device /dev/loop0."},
        {"create existing", 5,
         "  Logical Volume \"tv-vol-0123456789abcdef\" already exists in volume group \"tvcap\"\n",
         -EEXIST, "Logical Volume \"tv-vol-0123456789abcdef\" already exists in volume group \"tvcap\""},
        {"vg full", 5, "  Volume group \"tvcap\" has insufficient free space (0 extents): 256 required.\n",
         -ENOSPC, "Volume group \"tvcap\" has insufficient free space (0 extents): 256 required."},
        {"thin pool full", 5,
         "  WARNING: Thin pool tvcap/pool is out of data space.\n"
         "  Cannot create new thin volume, free space in thin pool tvcap/pool reached threshold.\n",
         -ENOSPC, "Cannot create new thin volume, free space in thin pool tvcap/pool reached threshold."},
        {"allocation (source)", 5, "  Insufficient suitable allocatable extents for logical volume x: 10 more required\n",
         -ENOSPC, "Insufficient suitable allocatable extents for logical volume x: 10 more required"},
        {"remove open", 5, "  Logical volume tvcap/tv-vol-0123456789abcdef in use.\n", -EBUSY,
         "Logical volume tvcap/tv-vol-0123456789abcdef in use."},
        {"remove mounted (source)", 5, "  Logical volume vg/lv contains a filesystem in use.\n", -EBUSY,
         "Logical volume vg/lv contains a filesystem in use."},
        {"reserved name", 3,
         "  Names starting \"snapshot\" are reserved. Please choose a different LV name.\n"
         "  Run `lvcreate --help' for more information.\n",
         -EINVAL, "Names starting \"snapshot\" are reserved. Please choose a different LV name."},
        {"bad size", 3,
         "  Size is not a multiple of 512. Try using 512 or 1024.\n"
         "  Invalid argument for --virtualsize: 1000b\n  Error during parsing of command line.\n",
         -EINVAL, "Size is not a multiple of 512. Try using 512 or 1024."},
        {"extend smaller", 5, "  New size given (1 extents) not larger than existing size (2 extents)\n",
         -EINVAL, "New size given (1 extents) not larger than existing size (2 extents)"},
        {"bad tag", 3, "  Invalid argument for --addtag: a b\n  Error during parsing of command line.\n",
         -EINVAL, "Invalid argument for --addtag: a b"},
        {"not root", 5,
         "  WARNING: Running as a non-root user. Functionality may be unavailable.\n"
         "  /run/lock/lvm/P_global:aux: open failed: Permission denied\n",
         -EACCES, "/run/lock/lvm/P_global:aux: open failed: Permission denied"},
        {"lock (source)", 5, "  Global lock failed: error -11\n", -EAGAIN, "Global lock failed: error -11"},
        {"device-mapper missing (host)", 5,
         "File descriptor 10 (/dev/null) leaked on lvm invocation. Parent PID 1307: bash\n"
         "  WARNING: Running as a non-root user. Functionality may be unavailable.\n"
         "  /dev/mapper/control: open failed: Permission denied\n"
         "  Failure to communicate with kernel device-mapper driver.\n",
         -EACCES, "/dev/mapper/control: open failed: Permission denied"},
        {"unknown failure after fd noise", 5,
         "File descriptor 10 (/dev/null) leaked on lvm invocation. Parent PID 1: csi\n"
         "  Something odd happened.\n  Also this.\n",
         -EIO, "Also this."},
        {"only warnings", 5, "  WARNING: something.\n  WARNING: last warning.\n", -EIO,
         "WARNING: last warning."},
        {"only warnings, bad command line", 3, "  WARNING: x.\n", -EINVAL, "WARNING: x."},
        {"nothing said", 5, "", -EIO, ""},
        {"no trailing newline, CRLF", 5, "  Failed to find logical volume \"a/b\"\r", -ENOENT,
         "Failed to find logical volume \"a/b\""},
        /* A volume named "...invalid..." must not read as a bad argument. */
        {"name containing a pattern word", 5,
         "  Failed to find logical volume \"vg/tv-invalid-0123456789abcdef\"\n", -ENOENT,
         "Failed to find logical volume \"vg/tv-invalid-0123456789abcdef\""},
        {"exists beats anything later", 5,
         "  Logical Volume \"x\" already exists in volume group \"vg\"\n  Failed to find x\n", -EEXIST,
         "Logical Volume \"x\" already exists in volume group \"vg\""},
};

TEST(test_lvm_errmap_real_lvm2_stderr_maps_to_errno_and_deciding_line) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char line[256] = "garbage";
                int r = tv_lvm_errno_from_stderr(cases[i].status, cases[i].text, line, sizeof(line));
                if (r != cases[i].err)
                        tv_test_fail(__FILE__, __LINE__, "%s: errno %d, expected %d", cases[i].what,
                                     r, cases[i].err);
                if (strcmp(line, cases[i].line) != 0)
                        tv_test_fail(__FILE__, __LINE__, "%s: line \"%s\", expected \"%s\"",
                                     cases[i].what, line, cases[i].line);
        }
}

TEST(test_lvm_errmap_null_text_and_null_line_buffer_are_fine) {
        char line[8] = "x";
        CHECK_INT(tv_lvm_errno_from_stderr(5, NULL, line, sizeof(line)), -EIO);
        CHECK_STR(line, "");
        CHECK_INT(tv_lvm_errno_from_stderr(3, NULL, NULL, 0), -EINVAL);
        CHECK_INT(tv_lvm_errno_from_stderr(5, "  Volume group \"v\" not found\n", NULL, 0), -ENOENT);
}

TEST(test_lvm_errmap_line_is_truncated_to_the_buffer) {
        char line[10];
        CHECK_INT(tv_lvm_errno_from_stderr(5, "  Failed to find logical volume \"a/b\"\n", line,
                                           sizeof(line)),
                  -ENOENT);
        CHECK_STR(line, "Failed to");
}
