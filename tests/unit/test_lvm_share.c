/* tv_lvs_share: which listing each reader is given. The listing here is a
 * counter behind a gate the test opens, so a test can hold one "running"
 * while other readers arrive. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "thinvault/lvm.h"
#include "tv_test.h"

typedef struct {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        int entered; /* listings that have started */
        int allowed; /* listings allowed to finish */
        int fail;    /* errno to fail with, 0 = succeed */
} gate;

static void gate_init(gate *g) {
        pthread_mutex_init(&g->mu, NULL);
        pthread_cond_init(&g->cv, NULL);
        g->entered = g->allowed = g->fail = 0;
}

static void gate_done(gate *g) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
}

/* The n-th listing's output is "n"; it waits until n listings are allowed. */
static int gated_run(void *ctx, char **ret_out, tv_lvm_error *err) {
        gate *g = ctx;
        int n;

        pthread_mutex_lock(&g->mu);
        n = ++g->entered;
        pthread_cond_broadcast(&g->cv);
        while (g->allowed < n)
                pthread_cond_wait(&g->cv, &g->mu);
        int fail = g->fail;
        pthread_mutex_unlock(&g->mu);
        if (fail) {
                snprintf(err->message, sizeof(err->message), "listing %d failed", n);
                return -fail;
        }
        return asprintf(ret_out, "%d", n) < 0 ? -ENOMEM : 0;
}

static void gate_allow(gate *g, int n) {
        pthread_mutex_lock(&g->mu);
        g->allowed = n;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
}

static void gate_wait_entered(gate *g, int n) {
        pthread_mutex_lock(&g->mu);
        while (g->entered < n)
                pthread_cond_wait(&g->cv, &g->mu);
        pthread_mutex_unlock(&g->mu);
}

typedef struct {
        tv_lvs_share *s;
        bool holder;
        int r;
        char *out;
        tv_lvm_error err;
        pthread_t t;
} reader;

static void *reader_main(void *arg) {
        reader *rd = arg;
        rd->r = tv_lvs_share_get(rd->s, rd->holder, &rd->out, &rd->err);
        return NULL;
}

static void reader_start(reader *rd, tv_lvs_share *s, bool holder) {
        *rd = (reader){.s = s, .holder = holder};
        pthread_create(&rd->t, NULL, reader_main, rd);
}

static void reader_join(reader *rd) {
        pthread_join(rd->t, NULL);
}

/* Readers that block in tv_lvs_share_get() cannot be observed directly;
 * give them time to get there (a late one only weakens the test). */
static void settle(void) {
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
}

/* A first reader starts listing 1 and is held in it; then `n` readers
 * arrive. Returns with all of them waiting and no listing allowed yet. */
static void late_readers(gate *g, tv_lvs_share *s, reader *first, reader *late, int n) {
        reader_start(first, s, false);
        gate_wait_entered(g, 1);
        for (int i = 0; i < n; i++)
                reader_start(&late[i], s, false);
        settle();
}

TEST(test_lvs_share_one_reader_runs_one_listing) {
        gate g;
        tv_lvs_share *s = NULL;
        char *out = NULL;

        gate_init(&g);
        gate_allow(&g, 100);
        CHECK_INT(tv_lvs_share_new(gated_run, &g, &s), 0);
        CHECK_INT(tv_lvs_share_get(s, false, &out, NULL), 0);
        CHECK_STR(out, "1");
        free(out);
        CHECK_INT(tv_lvs_share_get(s, false, &out, NULL), 0);
        CHECK_STR(out, "2");
        free(out);
        CHECK_INT(tv_lvs_share_runs(s), 2);
        tv_lvs_share_free(s);
        gate_done(&g);
}

TEST(test_lvs_share_readers_arriving_during_a_listing_share_the_next_one) {
        gate g;
        tv_lvs_share *s = NULL;
        reader first, late[4];

        gate_init(&g);
        CHECK_INT(tv_lvs_share_new(gated_run, &g, &s), 0);
        late_readers(&g, s, &first, late, 4);
        gate_allow(&g, 2);
        reader_join(&first);
        CHECK_INT(first.r, 0);
        CHECK_STR(first.out, "1");
        for (int i = 0; i < 4; i++) {
                reader_join(&late[i]);
                CHECK_INT(late[i].r, 0);
                /* never the listing that was running when it asked */
                CHECK_STR(late[i].out, "2");
                free(late[i].out);
        }
        CHECK_INT(tv_lvs_share_runs(s), 2);
        free(first.out);
        tv_lvs_share_free(s);
        gate_done(&g);
}

TEST(test_lvs_share_a_lock_holder_reuses_a_listing_until_invalidated) {
        gate g;
        tv_lvs_share *s = NULL;
        char *out = NULL;

        gate_init(&g);
        gate_allow(&g, 100);
        CHECK_INT(tv_lvs_share_new(gated_run, &g, &s), 0);
        tv_lvs_share_invalidate(s); /* tv_pool_lock() */
        CHECK_INT(tv_lvs_share_get(s, true, &out, NULL), 0);
        CHECK_STR(out, "1");
        free(out);
        CHECK_INT(tv_lvs_share_get(s, true, &out, NULL), 0);
        CHECK_STR(out, "1");
        free(out);
        CHECK_INT(tv_lvs_share_runs(s), 1);
        /* a reader without the lock still gets a fresh one */
        CHECK_INT(tv_lvs_share_get(s, false, &out, NULL), 0);
        CHECK_STR(out, "2");
        free(out);
        tv_lvs_share_invalidate(s); /* a metadata change */
        CHECK_INT(tv_lvs_share_get(s, true, &out, NULL), 0);
        CHECK_STR(out, "3");
        free(out);
        CHECK_INT(tv_lvs_share_runs(s), 3);
        tv_lvs_share_free(s);
        gate_done(&g);
}

TEST(test_lvs_share_a_lock_holder_joins_a_listing_started_since_the_lock) {
        gate g;
        tv_lvs_share *s = NULL;
        reader other, holder, stale;

        gate_init(&g);
        CHECK_INT(tv_lvs_share_new(gated_run, &g, &s), 0);
        tv_lvs_share_invalidate(s);
        reader_start(&other, s, false);
        gate_wait_entered(&g, 1);
        reader_start(&holder, s, true);
        settle();
        gate_allow(&g, 1);
        reader_join(&other);
        reader_join(&holder);
        CHECK_STR(other.out, "1");
        CHECK_STR(holder.out, "1");
        CHECK_INT(tv_lvs_share_runs(s), 1);
        free(other.out);
        free(holder.out);

        /* started before the holder's lock (or its last change): not reused */
        reader_start(&other, s, false);
        gate_wait_entered(&g, 2);
        tv_lvs_share_invalidate(s);
        reader_start(&stale, s, true);
        settle();
        gate_allow(&g, 3);
        reader_join(&other);
        reader_join(&stale);
        CHECK_STR(other.out, "2");
        CHECK_STR(stale.out, "3");
        free(other.out);
        free(stale.out);
        tv_lvs_share_free(s);
        gate_done(&g);
}

TEST(test_lvs_share_a_failed_listing_fails_every_reader_it_serves) {
        gate g;
        tv_lvs_share *s = NULL;
        reader first, late[3];

        gate_init(&g);
        CHECK_INT(tv_lvs_share_new(gated_run, &g, &s), 0);
        late_readers(&g, s, &first, late, 3);
        pthread_mutex_lock(&g.mu);
        g.fail = ETIMEDOUT;
        pthread_mutex_unlock(&g.mu);
        gate_allow(&g, 2);
        reader_join(&first);
        CHECK_INT(first.r, -ETIMEDOUT);
        CHECK_STR(first.err.message, "listing 1 failed");
        CHECK(first.out == NULL);
        for (int i = 0; i < 3; i++) {
                reader_join(&late[i]);
                CHECK_INT(late[i].r, -ETIMEDOUT);
                CHECK_STR(late[i].err.message, "listing 2 failed");
        }
        CHECK_INT(tv_lvs_share_runs(s), 2);
        tv_lvs_share_free(s);
        gate_done(&g);
}
