/* What the kernel's thin-pool status says is wrong with a pool, and what an
 * admin must do about it: pure (no lvm2, no device-mapper), shared by the
 * pool guard, Probe, the volume condition and thinvaultctl. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "thinvault/lvm.h"

/* dm-thin keeps min(total / 10, 4096) metadata blocks back
 * (dm-thin-metadata.c, __set_metadata_reserve()) and reports them as used
 * in its status; once no block is free beyond them, it switches the pool
 * to out-of-metadata-space mode ("ro", without needs_check). So a pool it
 * stopped for lack of metadata shows used == total (512/512 for 2 MiB, in
 * tests/guest/test_faults.sh on kernel 6.1). */
#define THIN_METADATA_BLOCK_BYTES 4096u

bool tv_pool_metadata_exhausted(uint64_t used_bytes, uint64_t total_bytes) {
        uint64_t total = total_bytes / THIN_METADATA_BLOCK_BYTES;
        uint64_t used = used_bytes / THIN_METADATA_BLOCK_BYTES;

        return total > 0 && used >= total;
}

_printf_(4, 5) static void append(char *buf, size_t size, size_t *len, const char *fmt, ...) {
        va_list ap;
        int n;

        if (*len >= size)
                return;
        va_start(ap, fmt);
        n = vsnprintf(buf + *len, size - *len, fmt, ap);
        va_end(ap);
        if (n > 0)
                *len += (size_t)n;
}

const char *tv_pool_health_text(const tv_pool_status *s, const char *vg, const char *pool, char *buf, size_t size) {
        size_t len = 0;
        bool repair = s->failed || s->needs_check || (s->read_only && !s->out_of_metadata_space);
        const char *sep = "";

        if (size == 0)
                return buf;
        buf[0] = '\0';
        if (s->healthy && !s->out_of_metadata_space) {
                append(buf, size, &len, "healthy");
                return buf;
        }
        if (s->failed) {
                append(buf, size, &len, "%sfailed (all I/O errors)", sep);
                sep = ", ";
        }
        if (s->needs_check) {
                append(buf, size, &len, "%sneeds_check", sep);
                sep = ", ";
        }
        if (s->out_of_metadata_space) {
                append(buf, size, &len, "%sout of metadata space (%" PRIu64 " of %" PRIu64 " KiB used)", sep,
                       s->metadata_used_bytes / 1024, s->metadata_total_bytes / 1024);
                sep = ", ";
        }
        if (s->read_only) {
                append(buf, size, &len, "%sread-only", sep);
                sep = ", ";
        }
        if (s->out_of_data_space)
                append(buf, size, &len, "%sout of data space", sep);
        /* The remedy: a repair first when the kernel asks for one (it will
         * not grow a needs_check pool's metadata until then). */
        sep = ": ";
        if (repair) {
                append(buf, size, &len, "%srepair it (lvconvert --repair %s/%s)", sep, vg, pool);
                sep = ", then ";
        }
        if (s->out_of_metadata_space) {
                append(buf, size, &len, "%sextend its metadata (lvextend --poolmetadatasize +SIZE %s/%s)", sep, vg,
                       pool);
                sep = ", then ";
        }
        if (s->out_of_data_space)
                append(buf, size, &len, "%sfree or extend its data space (lvextend -L +SIZE %s/%s)", sep, vg, pool);
        return buf;
}
