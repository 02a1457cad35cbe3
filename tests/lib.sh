# Shared helpers for thinvault's shell tests (host and guest).
# A test is a function; `t_run NAME` runs it in a subshell and prints
# `PASS NAME`, `FAIL NAME: reason` or `SKIP NAME: reason`; `t_summary` prints
# `N passed, N failed` and returns non-zero when anything failed.

T_PASSED=0
T_FAILED=0
T_SKIPPED=0

# Fail the current test with a reason (inside a test function).
t_fail() {
        echo "    $*" >&2
        exit 1
}

# Skip the current test, saying why (inside a test function): only for a
# test that cannot run in this build or on this machine, never to hide a
# failure. t_run prints `SKIP NAME: reason`, counted neither passed nor failed.
t_skip() {
        echo "t_skip: $*" >&2
        exit 77
}

t_assert() { # t_assert "description" command...
        local what=$1
        shift
        "$@" || t_fail "$what (command: $*)"
}

# A test file may define t_check, run after every test: when it returns
# non-zero (printing why), the test fails and what it printed ends the
# test's output; e.g. a sanitizer report from a process the test ran. And
# t_after, run after every test (pass or fail) to stop what the test left
# running.
t_run() {
        local name=$1
        local out rc check
        out=$( ("$name") 2>&1 </dev/null)
        rc=$?
        if declare -F t_check >/dev/null && ! check=$(t_check 2>&1 </dev/null); then
                out+=$'\n'$check
                rc=1
        fi
        if declare -F t_after >/dev/null; then t_after; fi
        if [ "$rc" -eq 77 ] && [[ "${out##*$'\n'}" == t_skip:* ]]; then
                echo "SKIP $name: ${out##*t_skip: }"
                T_SKIPPED=$((T_SKIPPED + 1))
        elif [ "$rc" -eq 0 ]; then
                echo "PASS $name"
                T_PASSED=$((T_PASSED + 1))
        else
                echo "FAIL $name"
                printf '%s\n' "$out" | tail -n 30 | sed 's/^/    /'
                T_FAILED=$((T_FAILED + 1))
        fi
}

t_summary() {
        [ "$T_SKIPPED" -eq 0 ] || echo "$T_SKIPPED skipped"
        echo "$T_PASSED passed, $T_FAILED failed"
        [ "$T_FAILED" -eq 0 ]
}

# Wait up to $2 seconds (default 10) for a unix socket to appear.
t_wait_socket() {
        local path=$1 limit=${2:-10} i=0
        while [ ! -S "$path" ]; do
                sleep 0.1
                i=$((i + 1))
                [ "$i" -ge $((limit * 10)) ] && return 1
        done
        return 0
}
