/* One VG listing shared by the readers that ask at about the same time
 * (lvm.h, "Sharing one listing"). Each lvm2 process costs about half a
 * second of CPU in the test guest whatever it reports, and under load most
 * of a node's lvm2 calls were single-LV lookups racing each other. */
#include <stdlib.h>
#include <string.h>

#include "thinvault/lvm.h"

struct tv_lvs_share {
        pthread_mutex_t mu;
        pthread_cond_t done;
        tv_lvs_run_fn run;
        void *ctx;
        bool running;
        uint64_t started;   /* listings started; the running one's number */
        uint64_t finished;  /* number of the last finished listing */
        uint64_t epoch;     /* tv_lvs_share_invalidate() count */
        uint64_t run_epoch; /* epoch when the running listing started */
        uint64_t last_epoch; /* epoch when the last finished one started */
        uint64_t runs;
        /* the last finished listing's outcome */
        int r;
        char *out;
        tv_lvm_error err;
};

int tv_lvs_share_new(tv_lvs_run_fn run, void *ctx, tv_lvs_share **ret) {
        tv_lvs_share *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        if (pthread_mutex_init(&s->mu, NULL) != 0) {
                free(s);
                return -ENOMEM;
        }
        if (pthread_cond_init(&s->done, NULL) != 0) {
                (void)pthread_mutex_destroy(&s->mu);
                free(s);
                return -ENOMEM;
        }
        s->run = run;
        s->ctx = ctx;
        *ret = s;
        return 0;
}

void tv_lvs_share_free(tv_lvs_share *s) {
        if (!s)
                return;
        (void)pthread_cond_destroy(&s->done);
        (void)pthread_mutex_destroy(&s->mu);
        free(s->out);
        free(s);
}

void tv_lvs_share_invalidate(tv_lvs_share *s) {
        (void)pthread_mutex_lock(&s->mu);
        s->epoch++;
        (void)pthread_mutex_unlock(&s->mu);
}

uint64_t tv_lvs_share_runs(tv_lvs_share *s) {
        (void)pthread_mutex_lock(&s->mu);
        uint64_t n = s->runs;
        (void)pthread_mutex_unlock(&s->mu);
        return n;
}

/* Run listing number ++started with s->mu held on entry and on return; the
 * lock is dropped while lvm2 runs. */
static void run_one(tv_lvs_share *s) {
        char *out = NULL;
        tv_lvm_error err;
        int r;

        s->running = true;
        s->started++;
        s->run_epoch = s->epoch;
        (void)pthread_mutex_unlock(&s->mu);
        err.message[0] = err.lvm_line[0] = '\0';
        r = s->run(s->ctx, &out, &err);
        (void)pthread_mutex_lock(&s->mu);
        free(s->out);
        s->out = r < 0 ? NULL : out;
        if (r < 0)
                free(out);
        s->r = r < 0 ? r : 0;
        s->err = err;
        s->finished = s->started;
        s->last_epoch = s->run_epoch;
        s->runs++;
        s->running = false;
        (void)pthread_cond_broadcast(&s->done);
}

int tv_lvs_share_get(tv_lvs_share *s, bool holder, char **ret_out, tv_lvm_error *err) {
        uint64_t need;
        int r;

        (void)pthread_mutex_lock(&s->mu);
        /* The first listing to start after this call: one already running
         * may have read the metadata before the caller's last change. */
        need = s->started + 1;
        if (holder && s->finished > 0 && s->last_epoch == s->epoch)
                need = s->finished;
        else if (holder && s->running && s->run_epoch == s->epoch)
                need = s->started;
        while (s->finished < need) {
                if (s->running)
                        (void)pthread_cond_wait(&s->done, &s->mu);
                else
                        run_one(s);
        }
        r = s->r;
        if (r < 0) {
                if (err)
                        *err = s->err;
        } else if (!(*ret_out = strdup(s->out ? s->out : ""))) {
                r = -ENOMEM;
        }
        (void)pthread_mutex_unlock(&s->mu);
        return r;
}
