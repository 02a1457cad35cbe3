/* tests/fuzz: the request path (tv_dispatch) under libFuzzer, with the
 * volume layer replaced at its interface (include/thinvault/{lvm,crypt,
 * limits,meter}.h) by the in-memory stand-ins in stub_*.c. They exist so
 * the handlers reach their success paths without a kernel; what the real
 * layers do is tested in the guest. */
#ifndef THINVAULT_FUZZ_H
#define THINVAULT_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The fuzzer's volume group, thin pool and their numbers. */
#define FUZZ_VG "tvfuzz"
#define FUZZ_POOL "pool"
#define FUZZ_EXTENT (4ULL << 20)
#define FUZZ_DATA_BYTES (8ULL << 30)

/* stub_lvm.c: the pool's LVs (with their LUKS state) as they are now, kept
 * aside once the fuzzer's setup requests have run and put back before
 * every input, so that an input's result depends on it alone. */
void fuzz_pool_save(void);
void fuzz_pool_restore(void);
/* NULL when the pool is as saved (LUKS formatting aside), else what
 * changed: a request that failed must leave it so. */
const char *fuzz_pool_changed(void);

/* stub_lvm.c, for stub_crypt.c: the LUKS state of the LV whose device is
 * `path` ("/dev/VG/LV"), or of the LV mapped as `mapping`. NULL: none. */
typedef struct fuzz_luks {
        int kind; /* tv_luks_kind */
        char tenant[64];
        char fingerprint[80];
        char mapping[128]; /* "" when not open */
        char fs[16];       /* file system made in the open mapping, or "" */
} fuzz_luks;
fuzz_luks *fuzz_luks_by_path(const char *path, uint64_t *ret_size);
fuzz_luks *fuzz_luks_by_mapping(const char *mapping, uint64_t *ret_size);
/* The minor number of the open mapping `mapping` (major 253), or -1. */
int fuzz_mapping_minor(const char *mapping);

/* stub_sys.c: mount(2) and umount2(2) do nothing but check their target
 * lies under this directory (the server's kubelet dir); anything else is
 * a finding and aborts. stat(2) shows an open mapping's /dev/mapper node
 * as a block device. */
void fuzz_sys_set_root(const char *dir);
/* The mount table as setup left it, kept and put back like the pool. */
void fuzz_sys_save(void);
void fuzz_sys_restore(void);
/* NULL when the mount table is as saved, else a mount point that differs. */
const char *fuzz_sys_changed(void);

#endif
