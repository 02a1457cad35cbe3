/* Crash-consistency kill points (util.h): the plugin dies by SIGKILL at a
 * named step when the test-only environment variable says so. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thinvault/util.h"

void tv_kill_point(const char *name) {
        const char *want = getenv(TV_KILL_POINT_ENV);

        if (!want || !*want || strcmp(want, name) != 0)
                return;
        tv_log(TV_LOG_WARN, "kill point reached, dying by SIGKILL", "point=%s env=" TV_KILL_POINT_ENV, name);
        kill(getpid(), SIGKILL);
        /* SIGKILL cannot be caught; should it still be blocked somehow,
         * die anyway without running atexit handlers or cleanups. */
        _exit(137);
}
