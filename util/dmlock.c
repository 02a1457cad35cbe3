/* The one lock for this process's calls into libdevmapper (see util.h). */
#include <pthread.h>

#include "thinvault/util.h"

static pthread_mutex_t dm_lock = PTHREAD_MUTEX_INITIALIZER;

pthread_mutex_t *tv_dm_lock(void) {
        (void)pthread_mutex_lock(&dm_lock);
        return &dm_lock;
}

void tv_dm_unlockp(pthread_mutex_t **locked) {
        if (*locked)
                (void)pthread_mutex_unlock(*locked);
        *locked = NULL;
}
