/* The volume layer against the real kernel, lvm2 and device-mapper.
 *
 * Runs as root inside the QEMU guest (tests/vm/run-in-guest): makes a
 * 384 MiB loop-backed thin pool in /tmp, then drives every verb of
 * include/thinvault/lvm.h and checks what a user would observe: sizes,
 * tags read back through lvm2, bytes written to a volume read back from its
 * snapshot's clone, mapped bytes growing by what was written, an open
 * volume refused deletion. Each TEST stands alone on the shared pool (made
 * on first use, removed at exit), so the order they run in does not matter.
 *
 * Usage: tests/vm/run-in-guest -- build/tests/guest/guest_lvm [NAME-SUBSTRING] */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "thinvault/lvm.h"
#include "tv_test.h"

#define POOL_FILE "/tmp/tv-guest-lvm.img"
#define POOL_BYTES (384ull << 20)
#define VG "tvguest"
#define THIN_POOL "pool"
#define MiB (1ull << 20)

static tv_pool *shared_pool;
static bool pool_failed;

static void remove_pool(void) {
        tv_lvm_error err;
        tv_pool_free(shared_pool);
        shared_pool = NULL;
        int r = tv_pool_remove_loop(POOL_FILE, VG, &err);
        if (r < 0)
                printf("    cleanup: tv_pool_remove_loop: %d %s\n", r, err.message);
        (void)unlink(POOL_FILE);
}

/* The shared pool, made on first use. NULL (and a failed test) if it
 * cannot be made: the guest is not set up. */
static tv_pool *pool(void) {
        tv_lvm_error err;
        uint64_t t0 = tv_now_ms();

        if (shared_pool || pool_failed)
                return shared_pool;
        FILE *f = fopen("/proc/cmdline", "re");
        char cmdline[1024] = "";
        if (f) {
                if (!fgets(cmdline, sizeof(cmdline), f))
                        cmdline[0] = '\0';
                fclose(f);
        }
        if (!strstr(cmdline, "tv_run=") || geteuid() != 0) {
                pool_failed = true;
                tv_test_fail(__FILE__, __LINE__,
                             "not root in the test guest; run: tests/vm/run-in-guest -- %s",
                             "build/tests/guest/guest_lvm");
                return NULL;
        }
        int r = tv_pool_create_loop(POOL_FILE, POOL_BYTES, VG, THIN_POOL, &shared_pool, &err);
        if (r < 0) {
                pool_failed = true;
                tv_test_fail(__FILE__, __LINE__, "tv_pool_create_loop: %d %s", r, err.message);
                return NULL;
        }
        atexit(remove_pool);
        printf("    pool %s/%s on %s made in %" PRIu64 " ms\n", VG, THIN_POOL, POOL_FILE,
               tv_now_ms() - t0);
        return shared_pool;
}

/* CHECK that r == want, printing the layer's message when not. */
#define CHECK_R(call, want, err)                                                                   \
        do {                                                                                       \
                int _r = (call);                                                                   \
                if (_r != (want))                                                                  \
                        tv_test_fail(__FILE__, __LINE__, "%s = %d, expected %d (%s)", #call, _r,   \
                                     (want), (err).message);                                       \
        } while (0)

static void *aligned_buf(size_t n, unsigned char fill) {
        void *b = NULL;
        if (posix_memalign(&b, 4096, n) != 0)
                return NULL;
        memset(b, fill, n);
        return b;
}

/* Write/read `n` bytes at `off` of a device, bypassing the page cache. */
static int dev_io(const char *path, bool write, void *buf, size_t n, off_t off) {
        int fd = open(path, (write ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t k = write ? pwrite(fd, buf, n, off) : pread(fd, buf, n, off);
        int r = k == (ssize_t)n ? 0 : (k < 0 ? -errno : -EIO);
        if (r == 0 && write && fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

static void delete_quietly(tv_pool *p, const char *name) {
        (void)tv_lv_delete(p, name, NULL);
}

/* ------------------------------------------------------------------------------------ */

TEST(test_guest_pool_status_reports_kernel_numbers_and_is_healthy) {
        tv_pool *p = pool();
        tv_pool_status s;
        tv_lvm_error err;
        bool ready = false;
        if (!p)
                return;
        CHECK_R(tv_pool_get_status(p, &s, &err), 0, err);
        CHECK_INT(s.extent_bytes, 4 * MiB);
        CHECK_INT(tv_pool_extent_bytes(p), 4 * MiB);
        CHECK_INT(s.chunk_bytes, 64 * 1024); /* lvm2's default for a pool this small */
        /* 384 MiB file: the pool takes what is left after the metadata LV
         * and its spare. */
        CHECK(s.data_total_bytes > 300 * MiB && s.data_total_bytes < POOL_BYTES);
        CHECK(s.data_used_bytes <= s.data_total_bytes);
        CHECK(s.metadata_total_bytes >= 2 * MiB);
        CHECK(s.metadata_used_bytes > 0 && s.metadata_used_bytes < s.metadata_total_bytes);
        CHECK(s.vg_size_bytes >= s.data_total_bytes);
        CHECK(s.error_if_no_space);
        CHECK(s.healthy && !s.read_only && !s.needs_check && !s.out_of_data_space && !s.failed);
        CHECK_R(tv_pool_probe(p, &ready, &err), 0, err);
        CHECK(ready);
        printf("    data %" PRIu64 "/%" PRIu64 " metadata %" PRIu64 "/%" PRIu64 " chunk %" PRIu64
               " vg_free %" PRIu64 "\n",
               s.data_used_bytes, s.data_total_bytes, s.metadata_used_bytes,
               s.metadata_total_bytes, s.chunk_bytes, s.vg_free_bytes);
}

TEST(test_guest_create_loop_again_opens_the_existing_pool) {
        tv_pool *p = pool();
        tv_pool *again = NULL;
        tv_lvm_error err;
        if (!p)
                return;
        CHECK_R(tv_pool_create_loop(POOL_FILE, POOL_BYTES, VG, THIN_POOL, &again, &err), 0, err);
        if (again)
                CHECK_STR(tv_pool_thin_pool(again), THIN_POOL);
        tv_pool_free(again);
        again = NULL;
        CHECK_R(tv_pool_open(VG, "nope", &again, &err), -ENOENT, err);
        CHECK(again == NULL);
        CHECK(strstr(err.message, "nope") != NULL);
        CHECK_R(tv_pool_open("tvnovg", THIN_POOL, &again, &err), -ENOENT, err);
        CHECK_STR(err.lvm_line, "Volume group \"tvnovg\" not found");
        CHECK_R(tv_pool_open(VG, "-x", &again, &err), -EINVAL, err);
}

TEST(test_guest_create_rounds_up_tags_round_trip_and_retry_is_idempotent) {
        tv_pool *p = pool();
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL, *again = NULL, *found = NULL;
        _cleanup_(tv_lv_list_freep) tv_lv_list *list = NULL;
        tv_lvm_error err;
        char name[TV_LV_NAME_SIZE];
        const char *req = "pvc one/ünïcode";
        const char *tenant = "team a/ü#%=!&,x";
        const tv_lvm_tag tags[] = {
                {TV_TAG_TENANT, tenant}, {TV_TAG_NAME, req}, {TV_TAG_PVC, "data-0"}, {"iops", "200"}};
        if (!p)
                return;
        CHECK_INT(tv_lv_name_from_request(TV_LV_KIND_VOLUME, req, name), 0);

        CHECK_R(tv_lv_create(p, name, 20 * MiB + 1, tags, ELEMENTSOF(tags), &lv, &err), 0, err);
        if (!lv)
                return;
        CHECK_STR(tv_lv_name(lv), name);
        CHECK_INT(tv_lv_size(lv), 24 * MiB);
        CHECK(tv_lv_active(lv));
        CHECK(!tv_lv_read_only(lv));
        CHECK(tv_lv_origin(lv) == NULL);
        CHECK_STR(tv_lv_tag(lv, TV_TAG_TENANT), tenant);
        CHECK_STR(tv_lv_tag(lv, TV_TAG_NAME), req);
        CHECK_STR(tv_lv_tag(lv, TV_TAG_PVC), "data-0");
        CHECK_STR(tv_lv_tag(lv, "iops"), "200");
        CHECK(tv_lv_created(lv) > 0);
        uint32_t maj = 0, min = 0;
        CHECK_INT(tv_lv_devnum(lv, &maj, &min), 0);
        struct stat st;
        CHECK(tv_lv_dm_path(lv) && stat(tv_lv_dm_path(lv), &st) == 0 && S_ISBLK(st.st_mode));
        CHECK(tv_lv_path(lv) && stat(tv_lv_path(lv), &st) == 0 && S_ISBLK(st.st_mode));

        /* A CSI retry: same name and size is the same volume. */
        CHECK_R(tv_lv_create(p, name, 24 * MiB, tags, ELEMENTSOF(tags), &again, &err), 0, err);
        if (again)
                CHECK_STR(tv_lv_uuid(again), tv_lv_uuid(lv));
        /* Another size, or another request name mapped here: ALREADY_EXISTS. */
        CHECK_R(tv_lv_create(p, name, 48 * MiB, tags, ELEMENTSOF(tags), NULL, &err), -EEXIST, err);
        CHECK(strstr(err.message, "already exists with size 24.00 MiB") != NULL);
        const tv_lvm_tag other[] = {{TV_TAG_NAME, "someone else"}};
        CHECK_R(tv_lv_create(p, name, 24 * MiB, other, 1, NULL, &err), -EEXIST, err);

        CHECK_R(tv_lv_lookup(p, name, &found, &err), 0, err);
        if (found)
                CHECK_STR(tv_lv_tag(found, TV_TAG_TENANT), tenant);
        CHECK_R(tv_pool_list_lvs(p, &list, &err), 0, err);
        bool listed = false;
        for (size_t i = 0; list && i < tv_lv_list_size(list); i++) {
                const tv_lv *x = tv_lv_list_get(list, i);
                CHECK_STR(tv_lv_segtype(x), "thin");
                if (strcmp(tv_lv_name(x), name) == 0) {
                        listed = true;
                        CHECK_STR(tv_lv_tag(x, TV_TAG_NAME), req);
                }
        }
        CHECK(listed);

        /* Change tags: replace one, delete one, keep the rest. */
        const tv_lvm_tag set[] = {{TV_TAG_TENANT, "team-b"}, {"new", "v=1"}};
        const char *const del[] = {TV_TAG_PVC, "absent"};
        CHECK_R(tv_lv_set_tags(p, name, set, ELEMENTSOF(set), del, ELEMENTSOF(del), &err), 0, err);
        tv_lv_free(found);
        found = NULL;
        CHECK_R(tv_lv_lookup(p, name, &found, &err), 0, err);
        if (found) {
                size_t n = 0;
                (void)tv_lv_tags(found, &n);
                CHECK_INT(n, 4);
                CHECK_STR(tv_lv_tag(found, TV_TAG_TENANT), "team-b");
                CHECK_STR(tv_lv_tag(found, "new"), "v=1");
                CHECK(tv_lv_tag(found, TV_TAG_PVC) == NULL);
                CHECK_STR(tv_lv_tag(found, TV_TAG_NAME), req);
                CHECK_STR(tv_lv_tag(found, "iops"), "200");
        }
        const char *const bad_del[] = {TV_TAG_TENANT};
        CHECK_R(tv_lv_set_tags(p, name, set, 1, bad_del, 1, &err), -EINVAL, err);

        CHECK_R(tv_lv_delete(p, name, &err), 0, err);
}

TEST(test_guest_names_that_are_not_volumes_are_enoent_or_einval) {
        tv_pool *p = pool();
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        tv_lvm_error err;
        tv_lv_usage u;
        if (!p)
                return;
        CHECK_R(tv_lv_lookup(p, "tv-missing-0000000000000000", &lv, &err), -ENOENT, err);
        CHECK_STR(err.lvm_line, "Failed to find logical volume \"" VG "/tv-missing-0000000000000000\"");
        CHECK(strstr(err.message, "look up volume " VG "/tv-missing") != NULL);
        /* The pool itself is no volume: not found, and never deleted. */
        CHECK_R(tv_lv_lookup(p, THIN_POOL, &lv, &err), -ENOENT, err);
        CHECK_R(tv_lv_delete(p, THIN_POOL, &err), -ENOENT, err);
        CHECK_R(tv_lv_lookup(p, "-rf", &lv, &err), -EINVAL, err);
        CHECK_R(tv_lv_create(p, "snapshot1", MiB, NULL, 0, NULL, &err), -EINVAL, err);
        CHECK_R(tv_lv_create(p, "tv-x", 0, NULL, 0, NULL, &err), -EINVAL, err);
        CHECK_R(tv_lv_get_usage(p, "tv-missing-0000000000000000", &u, &err), -ENXIO, err);
        CHECK(lv == NULL);
        /* An lvm2 that does not answer in time is killed: -ETIMEDOUT. */
        tv_pool_set_timeout(p, 1);
        CHECK_R(tv_lv_lookup(p, "tv-missing-0000000000000000", &lv, &err), -ETIMEDOUT, err);
        CHECK(strstr(err.message, "did not finish within 1 ms") != NULL);
        tv_pool_set_timeout(p, TV_LVM_TIMEOUT_MS_DEFAULT);
        tv_pool_status s;
        CHECK_R(tv_pool_get_status(p, &s, &err), 0, err);
        CHECK(s.healthy);
}

TEST(test_guest_written_data_shows_in_mapped_bytes_snapshot_and_clones) {
        tv_pool *p = pool();
        _cleanup_(tv_lv_freep) tv_lv *vol = NULL, *snap = NULL, *clone = NULL, *clone2 = NULL;
        _cleanup_free_ unsigned char *a = aligned_buf(MiB, 0xA5), *b = aligned_buf(MiB, 0x5A),
                                     *rd = aligned_buf(MiB, 0);
        tv_lvm_error err;
        tv_lv_usage u0, u1, us;
        tv_pool_status s0, s1;
        uint64_t size = 0;
        const off_t off = 4 * MiB;
        if (!p || !a || !b || !rd)
                return;

        const tv_lvm_tag vtags[] = {{TV_TAG_TENANT, "t1"}, {TV_TAG_KIND, "volume"}};
        CHECK_R(tv_lv_create(p, "tv-data-1", 64 * MiB, vtags, 2, &vol, &err), 0, err);
        if (!vol)
                return;
        CHECK_R(tv_lv_get_usage(p, "tv-data-1", &u0, &err), 0, err);
        CHECK_INT(u0.mapped_bytes, 0);
        CHECK_INT(u0.open_count, 0);
        uint32_t maj = 0, min = 0;
        CHECK_INT(tv_lv_devnum(vol, &maj, &min), 0);
        CHECK_INT(u0.major, maj);
        CHECK_INT(u0.minor, min);
        CHECK_R(tv_pool_get_status(p, &s0, &err), 0, err);

        /* 1 MiB of pattern A at 4 MiB, through the raw thin device. */
        CHECK_INT(dev_io(tv_lv_dm_path(vol), true, a, MiB, off), 0);
        CHECK_R(tv_lv_get_usage(p, "tv-data-1", &u1, &err), 0, err);
        CHECK_R(tv_pool_get_status(p, &s1, &err), 0, err);
        printf("    mapped %" PRIu64 " -> %" PRIu64 " bytes after a 1 MiB write (chunk %" PRIu64
               "); pool used %" PRIu64 " -> %" PRIu64 "\n",
               u0.mapped_bytes, u1.mapped_bytes, s1.chunk_bytes, s0.data_used_bytes,
               s1.data_used_bytes);
        CHECK(u1.mapped_bytes - u0.mapped_bytes >= MiB);
        CHECK(u1.mapped_bytes - u0.mapped_bytes <= MiB + 2 * s1.chunk_bytes);
        CHECK(u1.highest_mapped_byte >= (uint64_t)off + MiB);
        CHECK(u1.highest_mapped_byte <= (uint64_t)off + MiB + s1.chunk_bytes);
        CHECK(s1.data_used_bytes - s0.data_used_bytes >= MiB);

        /* Snapshot: read-only, tagged with its own tags only. */
        const tv_lvm_tag stags[] = {{TV_TAG_KIND, "snapshot"}, {TV_TAG_SOURCE, "tv-data-1"}};
        CHECK_R(tv_lv_snapshot(p, "tv-data-1", "tvs-data-1", stags, 2, &snap, &err), 0, err);
        if (!snap)
                return;
        CHECK(tv_lv_read_only(snap));
        CHECK(tv_lv_active(snap));
        CHECK_STR(tv_lv_origin(snap), "tv-data-1");
        CHECK_INT(tv_lv_size(snap), 64 * MiB);
        CHECK_STR(tv_lv_tag(snap, TV_TAG_KIND), "snapshot");
        CHECK(tv_lv_tag(snap, TV_TAG_TENANT) == NULL);
        CHECK_R(tv_lv_snapshot(p, "tv-data-1", "tvs-data-1", stags, 2, NULL, &err), 0, err);
        CHECK_R(tv_lv_snapshot(p, "tv-nope", "tvs-nope", NULL, 0, NULL, &err), -ENOENT, err);
        CHECK_R(tv_lv_get_usage(p, "tvs-data-1", &us, &err), 0, err);
        CHECK_INT(us.mapped_bytes, u1.mapped_bytes); /* shares the origin's blocks */

        /* The origin moves on: pattern B over the same range. */
        CHECK_INT(dev_io(tv_lv_dm_path(vol), true, b, MiB, off), 0);

        /* A clone of the snapshot, bigger: has A, is writable. */
        CHECK_R(tv_lv_clone(p, "tvs-data-1", "tv-clone-1", 96 * MiB, vtags, 2, &clone, &err), 0, err);
        if (!clone)
                return;
        CHECK_INT(tv_lv_size(clone), 96 * MiB);
        CHECK(!tv_lv_read_only(clone));
        CHECK_STR(tv_lv_origin(clone), "tvs-data-1");
        CHECK_STR(tv_lv_tag(clone, TV_TAG_TENANT), "t1");
        CHECK(tv_lv_tag(clone, TV_TAG_SOURCE) == NULL);
        CHECK_INT(dev_io(tv_lv_dm_path(clone), false, rd, MiB, off), 0);
        CHECK(memcmp(rd, a, MiB) == 0);
        CHECK_INT(dev_io(tv_lv_dm_path(clone), true, b, MiB, 90 * MiB), 0);
        /* Retry of the same clone: the same volume. */
        CHECK_R(tv_lv_clone(p, "tvs-data-1", "tv-clone-1", 96 * MiB, vtags, 2, NULL, &err), 0, err);
        CHECK_R(tv_lv_clone(p, "tvs-data-1", "tv-clone-x", 32 * MiB, NULL, 0, NULL, &err), -EINVAL,
                err);

        /* A clone of the volume itself (size 0 = the source's): has B. */
        CHECK_R(tv_lv_clone(p, "tv-data-1", "tv-clone-2", 0, NULL, 0, &clone2, &err), 0, err);
        if (clone2) {
                CHECK_INT(tv_lv_size(clone2), 64 * MiB);
                CHECK_INT(dev_io(tv_lv_dm_path(clone2), false, rd, MiB, off), 0);
                CHECK(memcmp(rd, b, MiB) == 0);
        }
        /* And the snapshot still has A. */
        CHECK_INT(dev_io(tv_lv_dm_path(snap), false, rd, MiB, off), 0);
        CHECK(memcmp(rd, a, MiB) == 0);

        /* Grow the volume; growing to less is a no-op. */
        CHECK_R(tv_lv_extend(p, "tv-data-1", 100 * MiB, &size, &err), 0, err);
        CHECK_INT(size, 100 * MiB);
        CHECK_R(tv_lv_extend(p, "tv-data-1", 10 * MiB, &size, &err), 0, err);
        CHECK_INT(size, 100 * MiB);
        CHECK_R(tv_lv_extend(p, "tv-nope", 10 * MiB, &size, &err), -ENOENT, err);

        /* Deleting the origin leaves snapshot and clones whole. */
        CHECK_R(tv_lv_delete(p, "tv-data-1", &err), 0, err);
        CHECK_INT(dev_io(tv_lv_dm_path(clone), false, rd, MiB, off), 0);
        CHECK(memcmp(rd, a, MiB) == 0);
        CHECK_R(tv_lv_delete(p, "tv-clone-2", &err), 0, err);
        CHECK_R(tv_lv_delete(p, "tv-clone-1", &err), 0, err);
        CHECK_R(tv_lv_delete(p, "tvs-data-1", &err), 0, err);
}

TEST(test_guest_open_volume_is_not_deleted_and_delete_is_idempotent) {
        tv_pool *p = pool();
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL, *still = NULL;
        tv_lvm_error err;
        tv_lv_usage u;
        if (!p)
                return;
        CHECK_R(tv_lv_create(p, "tv-busy-1", 8 * MiB, NULL, 0, &lv, &err), 0, err);
        if (!lv)
                return;
        int fd = open(tv_lv_dm_path(lv), O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_R(tv_lv_get_usage(p, "tv-busy-1", &u, &err), 0, err);
        CHECK_INT(u.open_count, 1);
        CHECK_R(tv_lv_delete(p, "tv-busy-1", &err), -EBUSY, err);
        CHECK(strstr(err.message, "open count 1") != NULL);
        CHECK_R(tv_lv_lookup(p, "tv-busy-1", &still, &err), 0, err);
        if (fd >= 0)
                close(fd);
        CHECK_R(tv_lv_delete(p, "tv-busy-1", &err), 0, err);
        CHECK_R(tv_lv_delete(p, "tv-busy-1", &err), -ENOENT, err);
        CHECK_R(tv_lv_get_usage(p, "tv-busy-1", &u, &err), -ENXIO, err);
}

TEST(test_guest_guard_refuses_overprovisioning_only_when_set) {
        tv_pool *p = pool();
        tv_lvm_error err;
        if (!p)
                return;
        tv_pool_set_guard(p, 0, 0, 100);
        CHECK_R(tv_lv_create(p, "tv-huge-1", 2048 * MiB, NULL, 0, NULL, &err), -ENOSPC, err);
        CHECK(strstr(err.message, "overprovisioning limit") != NULL);
        tv_pool_set_guard(p, 100, 0, 0); /* a healthy pool is below 100% */
        CHECK_R(tv_lv_create(p, "tv-small-1", 4 * MiB, NULL, 0, NULL, &err), 0, err);
        tv_pool_set_guard(p, 0, 0, 0);
        delete_quietly(p, "tv-small-1");
        /* Without a guard lvm2 allows overprovisioning (error_if_no_space
         * protects the data path). */
        CHECK_R(tv_lv_create(p, "tv-huge-1", 2048 * MiB, NULL, 0, NULL, &err), 0, err);
        CHECK_R(tv_lv_delete(p, "tv-huge-1", &err), 0, err);
}

typedef struct {
        tv_pool *p;
        int r;
        tv_lvm_error err;
} racer;

static void *race_create(void *arg) {
        racer *x = arg;
        const tv_lvm_tag tags[] = {{TV_TAG_NAME, "raced"}};
        x->r = tv_lv_create(x->p, "tv-raced-1", 12 * MiB, tags, 1, NULL, &x->err);
        return NULL;
}

TEST(test_guest_concurrent_retries_of_one_create_all_succeed_once) {
        tv_pool *p = pool();
        _cleanup_(tv_lv_list_freep) tv_lv_list *list = NULL;
        racer r[3];
        pthread_t t[3];
        tv_lvm_error err;
        if (!p)
                return;
        for (int i = 0; i < 3; i++) {
                r[i] = (racer){.p = p};
                CHECK_INT(pthread_create(&t[i], NULL, race_create, &r[i]), 0);
        }
        for (int i = 0; i < 3; i++) {
                pthread_join(t[i], NULL);
                CHECK_R(r[i].r, 0, r[i].err);
        }
        CHECK_R(tv_pool_list_lvs(p, &list, &err), 0, err);
        size_t n = 0;
        for (size_t i = 0; list && i < tv_lv_list_size(list); i++)
                n += strcmp(tv_lv_name(tv_lv_list_get(list, i)), "tv-raced-1") == 0;
        CHECK_INT(n, 1);
        CHECK_R(tv_lv_delete(p, "tv-raced-1", &err), 0, err);
}

/* A pool of its own, filled to the last block. */
TEST(test_guest_full_pool_is_enospc_and_probe_says_why) {
        _cleanup_(tv_pool_freep) tv_pool *fp = NULL;
        _cleanup_(tv_lv_freep) tv_lv *lv = NULL;
        _cleanup_free_ unsigned char *buf = aligned_buf(MiB, 0x77);
        const char *file = "/tmp/tv-guest-full.img";
        tv_lvm_error err;
        tv_pool_status s;
        bool ready = true;
        int fd, w = 0;
        if (!pool() || !buf)
                return;
        CHECK_R(tv_pool_create_loop(file, 96 * MiB, "tvfull", THIN_POOL, &fp, &err), 0, err);
        if (!fp)
                return;
        CHECK_R(tv_lv_create(fp, "tv-fill-1", 256 * MiB, NULL, 0, &lv, &err), 0, err);
        if (!lv)
                goto out;
        /* error_if_no_space: the write that finds no block fails at once
         * instead of hanging. */
        fd = open(tv_lv_dm_path(lv), O_RDWR | O_DIRECT | O_CLOEXEC);
        CHECK(fd >= 0);
        for (off_t off = 0; fd >= 0 && off < (off_t)(256 * MiB); off += MiB) {
                if (pwrite(fd, buf, MiB, off) != (ssize_t)MiB) {
                        w = errno;
                        break;
                }
        }
        if (fd >= 0)
                close(fd);
        CHECK_INT(w, ENOSPC);

        CHECK_R(tv_pool_get_status(fp, &s, &err), 0, err);
        CHECK(s.out_of_data_space);
        CHECK(!s.healthy);
        CHECK_INT(s.data_used_bytes, s.data_total_bytes);
        CHECK_R(tv_pool_probe(fp, &ready, &err), 0, err);
        CHECK(!ready);
        CHECK(strstr(err.message, "out of data space") != NULL);

        tv_pool_set_guard(fp, 90, 0, 0);
        CHECK_R(tv_lv_create(fp, "tv-more-1", 4 * MiB, NULL, 0, NULL, &err), -ENOSPC, err);
        CHECK(strstr(err.message, "out of data space") != NULL);
        /* Without a guard too: the kernel's out_of_data_space refuses it
         * before lvm2 is asked (lvm2 itself would say "reached threshold"). */
        tv_pool_set_guard(fp, 0, 0, 0);
        CHECK_R(tv_lv_create(fp, "tv-more-1", 4 * MiB, NULL, 0, NULL, &err), -ENOSPC, err);
        CHECK(strstr(err.message, "out of data space") != NULL);
        printf("    full pool: %s\n", err.message);

        /* Deleting the filler gives the space back. */
        CHECK_R(tv_lv_delete(fp, "tv-fill-1", &err), 0, err);
        CHECK_R(tv_pool_get_status(fp, &s, &err), 0, err);
        CHECK_INT(s.data_used_bytes, 0);
out:
        CHECK_R(tv_pool_remove_loop(file, "tvfull", &err), 0, err);
        CHECK_R(tv_pool_remove_loop(file, "tvfull", &err), 0, err);
        (void)unlink(file);
}
