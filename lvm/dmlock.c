/* The one lock for this process's calls into libdevmapper (see lvm.h). */
#include <libdevmapper.h>
#include <pthread.h>

#include "thinvault/lvm.h"

static pthread_mutex_t dm_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t dm_hold_once = PTHREAD_ONCE_INIT;

static void dm_hold(void) {
        dm_hold_control_dev(1);
}

pthread_mutex_t *tv_dm_lock(void) {
        (void)pthread_once(&dm_hold_once, dm_hold);
        (void)pthread_mutex_lock(&dm_lock);
        return &dm_lock;
}

void tv_dm_unlockp(pthread_mutex_t **locked) {
        if (*locked)
                (void)pthread_mutex_unlock(*locked);
        *locked = NULL;
}
