/* Crypto-erase of a volume before DeleteVolume removes its LV: what the
 * node's LUKS layer made readable is destroyed first, then the thin space
 * is handed back. */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "node.h"
#include "thinvault/crypt.h"

/* open(dev, O_EXCL) for writing, waiting out an open of a moment by a
 * scanner as tv_lv_wait_closed() does; -1 with errno set. */
static int open_exclusive(const char *dev) {
        uint64_t t0 = tv_now_ms();

        for (;;) {
                int fd = open(dev, O_WRONLY | O_CLOEXEC | O_EXCL);
                if (fd >= 0 || errno != EBUSY || tv_now_ms() - t0 >= TV_LV_SETTLE_MS)
                        return fd;
                (void)nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
        }
}

int volume_crypto_erase(tv_pool *p, const tv_lv *lv, tv_reply *reply) {
        const char *dev = tv_lv_path(lv), *name = tv_lv_name(lv);
        _cleanup_close_ int fd = -1;
        tv_crypt_error cerr;
        tv_lvm_error err;
        tv_luks_info info;
        int32_t opens = 0;
        uint64_t range[2] = {0, 0};
        int r, slots = 0;

        if (!tv_lv_active(lv) || !dev)
                return reply_errno(reply, -EBUSY,
                                   "volume %s is not active, so its keyslots cannot be destroyed before it goes: "
                                   "activate it (lvchange -ay %s/%s) and delete it again",
                                   name, tv_lv_vg(lv), name);
        /* Nothing is destroyed while anyone holds the LV: the delete would
         * be refused afterwards and the volume left unreadable. A scanner's
         * open of a moment is waited out (tv_lv_wait_closed()). */
        r = tv_lv_wait_closed(p, name, &opens, &err);
        if (r < 0)
                return reply_errno(reply, r, "%s", err.message);
        if (opens > 0)
                return reply_errno(reply, -EBUSY, "volume %s is in use (mounted or mapped on this node): unstage it first",
                                   name);

        /* The keyslots go before the discard and the lvremove: both hand the
         * thin blocks back to the pool, which does not zero them and may
         * give them to another tenant's next volume. Once the header is
         * gone they hold only ciphertext that no key decrypts. */
        r = tv_luks_probe(dev, &info, &cerr);
        if (r == -EIO)
                /* A device that cannot be read (a failed pool, a dead disk)
                 * cannot be erased, so it is not removed either. */
                return reply_errno(reply, -EROFS,
                                   "volume %s cannot be read (%s), so its keyslots cannot be destroyed and it is "
                                   "not deleted: check the pool (thinvaultctl pool), repair it, and delete again",
                                   name, cerr.message);
        if (r < 0)
                return reply_errno(reply, r, "probe volume %s before erasing it: %s", name, cerr.message);
        if (info.kind == TV_LUKS_KIND_OURS || info.kind == TV_LUKS_KIND_FOREIGN) {
                slots = tv_luks_erase(dev, &cerr);
                if (slots == -EBUSY)
                        return reply_errno(reply, slots, "volume %s is in use (mounted or mapped on this node): unstage it first",
                                           name);
                if (slots < 0)
                        return reply_errno(reply, slots, "crypto-erase volume %s: %s", name, cerr.message);
        }

        /* Then the space: unmapped now rather than when the LV goes, and
         * with the pool's discard passdown also on the disk below. O_EXCL:
         * nobody may have mounted or mapped it since the check above. */
        fd = open_exclusive(dev);
        if (fd < 0)
                return reply_errno(reply, errno == EBUSY ? -EBUSY : -errno, "open volume %s to discard it: %s", name,
                                   strerror(errno));
        if (ioctl(fd, BLKGETSIZE64, &range[1]) < 0)
                return reply_errno(reply, -errno, "size of volume %s: %s", name, strerror(errno));
        if (ioctl(fd, BLKDISCARD, range) < 0) {
                /* Not fatal: the erase is what protects the data. */
                log_warn("volume not discarded before removal", "volume=%s err=%d", name, errno);
                range[1] = 0;
        }
        log_info("volume erased", "volume=%s keyslots=%d kind=%s discarded_bytes=%llu", name, slots,
                 tv_luks_kind_to_string(info.kind), (unsigned long long)range[1]);
        return 0;
}
