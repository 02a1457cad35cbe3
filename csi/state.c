/* What the server holds for its handlers: the pool handle and the quota
 * config. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static void apply_guard(tv_server *s) {
        /* Called with pool_mutex held. */
        if (!s->pool)
                return;
        pthread_rwlock_rdlock(&s->config_lock);
        tv_pool_set_guard(s->pool, s->config.max_data_percent, s->config.max_metadata_percent,
                          s->config.max_overprovision_percent);
        pthread_rwlock_unlock(&s->config_lock);
}

tv_pool *server_pool(tv_server *s, tv_reply *reply) {
        tv_lvm_error err;
        tv_pool *p;
        int r;

        if (!s->vg || !s->thin_pool) {
                if (reply)
                        reply_status(reply, TV_STATUS_UNAVAILABLE, "no volume group and thin pool configured");
                return NULL;
        }
        pthread_mutex_lock(&s->pool_mutex);
        if (!s->pool) {
                if (s->loop_file)
                        r = tv_pool_create_loop(s->loop_file, s->loop_size, s->vg, s->thin_pool, &s->pool, &err);
                else
                        r = tv_pool_open(s->vg, s->thin_pool, &s->pool, &err);
                if (r < 0) {
                        if (reply)
                                reply_status(reply, TV_STATUS_UNAVAILABLE, "thin pool %s/%s does not answer: %s", s->vg,
                                             s->thin_pool, err.message);
                        pthread_mutex_unlock(&s->pool_mutex);
                        return NULL;
                }
                if (s->lvm_timeout_ms > 0)
                        tv_pool_set_timeout(s->pool, s->lvm_timeout_ms);
                log_info("pool opened", "vg=%s thin_pool=%s", s->vg, s->thin_pool);
                apply_guard(s);
        }
        p = s->pool;
        pthread_mutex_unlock(&s->pool_mutex);
        return p;
}

bool server_pool_ready(tv_server *s, char *why, size_t why_size) {
        tv_reply reply = {0};
        tv_lvm_error err;
        bool ready = false;
        tv_pool *p;
        int r;

        if (!s->vg) {
                snprintf(why, why_size, "no volume group configured");
                return false;
        }
        p = server_pool(s, &reply);
        if (!p) {
                snprintf(why, why_size, "%s", reply.message);
                return false;
        }
        r = tv_pool_probe(p, &ready, &err);
        if (r < 0 || !ready)
                snprintf(why, why_size, "%s", err.message[0] ? err.message : "thin pool is not healthy");
        return r >= 0 && ready;
}

int server_reload_config(tv_server *s) {
        tv_quota_config fresh, old;
        char err[512];
        int r;

        if (!s->config_path)
                return 0;
        r = quota_config_load(s->config_path, &fresh, err, sizeof(err));
        if (r < 0)
                return tv_log_errno(r, "config not loaded; keeping the previous one", "path=%s error=%s",
                                    s->config_path, tv_log_quote(err, (char[600]){0}, 600));
        pthread_rwlock_wrlock(&s->config_lock);
        old = s->config;
        s->config = fresh;
        pthread_rwlock_unlock(&s->config_lock);
        quota_config_clear(&old);
        pthread_mutex_lock(&s->pool_mutex);
        apply_guard(s);
        pthread_mutex_unlock(&s->pool_mutex);
        log_info("config loaded", "path=%s tenants=%zu max_data_percent=%u max_metadata_percent=%u max_overprovision_percent=%u",
                 s->config_path, fresh.n_tenants, fresh.max_data_percent, fresh.max_metadata_percent,
                 fresh.max_overprovision_percent);
        return 0;
}
