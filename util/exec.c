/* tv_exec: the one place thinvault runs another program. argv only (no
 * shell), stdin from /dev/null, stdout/stderr captured, bounded by a
 * time-out after which the child is killed. posix_spawn is used rather than
 * fork so it is safe from the server's many threads. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

#include "thinvault/util.h"

extern char **environ;

#define EXEC_CAPTURE_MAX (16u << 20)

typedef struct {
        char *buf;
        size_t len, cap;
} capture;

static int capture_append(capture *c, const char *data, size_t n) {
        if (c->len + n + 1 > c->cap) {
                size_t cap = c->cap ? c->cap : 4096;
                while (cap < c->len + n + 1)
                        cap *= 2;
                char *b = realloc(c->buf, cap);
                if (!b)
                        return -ENOMEM;
                c->buf = b;
                c->cap = cap;
        }
        memcpy(c->buf + c->len, data, n);
        c->len += n;
        c->buf[c->len] = '\0';
        return 0;
}

static int capture_take(capture *c, char **ret) {
        if (!c->buf && capture_append(c, "", 0) < 0)
                return -ENOMEM;
        if (ret)
                *ret = c->buf;
        else
                free(c->buf);
        c->buf = NULL;
        return 0;
}

/* Read from both pipes until both close or the deadline passes. */
static int pump(int fds[2], capture caps[2], uint64_t deadline) {
        int open_fds = 2;

        while (open_fds > 0) {
                struct pollfd p[2];
                nfds_t n = 0;
                int idx[2];
                uint64_t now = tv_now_ms();

                if (now >= deadline)
                        return -ETIMEDOUT;
                for (int i = 0; i < 2; i++)
                        if (fds[i] >= 0) {
                                p[n] = (struct pollfd){.fd = fds[i], .events = POLLIN};
                                idx[n++] = i;
                        }
                int r = poll(p, n, (int)(deadline - now));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (nfds_t k = 0; k < n; k++) {
                        if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        int i = idx[k];
                        char buf[8192];
                        ssize_t got = read(fds[i], buf, sizeof(buf));
                        if (got < 0 && errno == EINTR)
                                continue;
                        if (got <= 0) {
                                (void)close(fds[i]);
                                fds[i] = -1;
                                open_fds--;
                                continue;
                        }
                        if (caps[i].len + (size_t)got <= EXEC_CAPTURE_MAX &&
                            capture_append(&caps[i], buf, (size_t)got) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

static int wait_child(pid_t pid) {
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return -EINTR;
}

int tv_exec(const char *const argv[], int timeout_ms, char **ret_out, char **ret_err) {
        int out[2] = {-1, -1}, err[2] = {-1, -1};
        capture caps[2] = {{0}};
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int r;

        if (ret_out)
                *ret_out = NULL;
        if (ret_err)
                *ret_err = NULL;
        if (!argv || !argv[0])
                return -EINVAL;
        if (pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(err, O_CLOEXEC) < 0) {
                r = -errno;
                (void)close(out[0]);
                (void)close(out[1]);
                return r;
        }

        r = -posix_spawn_file_actions_init(&fa);
        if (r == 0) {
                (void)posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
                (void)posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
                (void)posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
                r = -posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
                posix_spawn_file_actions_destroy(&fa);
        }
        (void)close(out[1]);
        (void)close(err[1]);
        if (r < 0) {
                (void)close(out[0]);
                (void)close(err[0]);
                return r;
        }

        int fds[2] = {out[0], err[0]};
        int pr = pump(fds, caps, tv_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0));
        if (pr < 0)
                (void)kill(pid, SIGKILL);
        for (int i = 0; i < 2; i++)
                if (fds[i] >= 0)
                        (void)close(fds[i]);
        r = wait_child(pid);
        if (pr < 0)
                r = pr;
        if (r >= 0 || r == -ETIMEDOUT || r == -EINTR) {
                if (capture_take(&caps[0], ret_out) < 0 || capture_take(&caps[1], ret_err) < 0) {
                        r = -ENOMEM;
                }
        } else {
                free(caps[0].buf);
                free(caps[1].buf);
        }
        return r;
}
