/* tv_kill_point(): inert without TV_KILL_POINT or for another name; dies by
 * SIGKILL, after its log line, for its own name. Each case runs in a child
 * so the runner survives the kill. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "thinvault/util.h"
#include "tv_test.h"

/* Fork; in the child set TV_KILL_POINT to `env` (unset when NULL), call
 * tv_kill_point(name), exit 0. Returns the child's wait status, -1 on a
 * failed fork/wait. */
static int child_status(const char *env, const char *name) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return -1;
        if (pid == 0) {
                if (env)
                        setenv(TV_KILL_POINT_ENV, env, 1);
                else
                        unsetenv(TV_KILL_POINT_ENV);
                tv_log_set_level(TV_LOG_ERROR); /* keep the runner's output clean */
                tv_kill_point(name);
                _exit(0);
        }
        if (waitpid(pid, &status, 0) != pid)
                return -1;
        return status;
}

TEST(test_kill_point_is_inert_without_the_variable_or_for_another_name) {
        int st;

        st = child_status(NULL, "stage.after_open");
        CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        st = child_status("", "stage.after_open");
        CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        st = child_status("stage.after_mkfs", "stage.after_open");
        CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        /* no prefix matching */
        st = child_status("stage.after", "stage.after_open");
        CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(test_kill_point_named_by_the_variable_dies_by_sigkill) {
        int st = child_status("delete.after_erase", "delete.after_erase");

        CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}
