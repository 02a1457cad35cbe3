/* tv_pool_metadata_exhausted() and tv_pool_health_text(): which thin-pool
 * states the kernel's status describes, and which remedy each message
 * names (a pool out of metadata space needs its metadata extended, not a
 * repair). */
#include <string.h>

#include "thinvault/lvm.h"
#include "tv_test.h"

#define KiB 1024u

TEST(test_lvm_metadata_exhausted_when_the_status_shows_it_all_used) {
        /* The kernel's status counts its reserve as used: 512/512 when it
         * stopped a 2 MiB pool, 461/512 while it still had room. */
        CHECK(!tv_pool_metadata_exhausted(0, 0));
        CHECK(!tv_pool_metadata_exhausted(100 * 4 * KiB, 512 * 4 * KiB));
        CHECK(!tv_pool_metadata_exhausted(511 * 4 * KiB, 512 * 4 * KiB));
        CHECK(tv_pool_metadata_exhausted(512 * 4 * KiB, 512 * 4 * KiB));
        CHECK(tv_pool_metadata_exhausted(513 * 4 * KiB, 512 * 4 * KiB));
        /* Partial blocks do not count. */
        CHECK(!tv_pool_metadata_exhausted(512 * 4 * KiB - 1, 512 * 4 * KiB));
}

static tv_pool_status full_metadata(void) {
        tv_pool_status s = {0};
        s.metadata_total_bytes = 512 * 4 * KiB;
        s.metadata_used_bytes = 512 * 4 * KiB;
        s.read_only = true;
        s.out_of_metadata_space = true;
        return s;
}

TEST(test_lvm_health_text_out_of_metadata_space_says_extend_not_repair) {
        tv_pool_status s = full_metadata();
        char buf[400];

        CHECK(strcmp(tv_pool_health_text(&s, "vg0", "pool", buf, sizeof(buf)),
                     "out of metadata space (2048 of 2048 KiB used), read-only: extend its metadata "
                     "(lvextend --poolmetadatasize +SIZE vg0/pool)") == 0);
        CHECK(strstr(buf, "lvconvert") == NULL);
}

TEST(test_lvm_health_text_needs_check_repairs_first_then_extends) {
        tv_pool_status s = full_metadata();
        char buf[400];

        s.needs_check = true;
        CHECK(strcmp(tv_pool_health_text(&s, "vg0", "pool", buf, sizeof(buf)),
                     "needs_check, out of metadata space (2048 of 2048 KiB used), read-only: repair it "
                     "(lvconvert --repair vg0/pool), then extend its metadata (lvextend --poolmetadatasize "
                     "+SIZE vg0/pool)") == 0);
}

TEST(test_lvm_health_text_other_states) {
        tv_pool_status s = {0};
        char buf[400];

        s.healthy = true;
        CHECK(strcmp(tv_pool_health_text(&s, "vg0", "pool", buf, sizeof(buf)), "healthy") == 0);
        s.healthy = false;
        s.read_only = true; /* read-only with metadata to spare: an error made it so */
        CHECK(strcmp(tv_pool_health_text(&s, "vg0", "pool", buf, sizeof(buf)),
                     "read-only: repair it (lvconvert --repair vg0/pool)") == 0);
        s.read_only = false;
        s.failed = true;
        CHECK(strcmp(tv_pool_health_text(&s, "vg0", "pool", buf, sizeof(buf)),
                     "failed (all I/O errors): repair it (lvconvert --repair vg0/pool)") == 0);
        s.failed = false;
        s.out_of_data_space = true;
        CHECK(strcmp(tv_pool_health_text(&s, "vg0", "pool", buf, sizeof(buf)),
                     "out of data space: free or extend its data space (lvextend -L +SIZE vg0/pool)") == 0);
        /* Truncates, never overruns. */
        memset(buf, 'x', sizeof(buf));
        CHECK(strlen(tv_pool_health_text(&s, "vg0", "pool", buf, 10)) == 9);
        CHECK(buf[10] == 'x');
}
