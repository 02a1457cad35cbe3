# Shared helpers for thinvault's shell tests (host and guest).
# A test is a function; `t_run NAME` runs it in a subshell and prints
# `PASS NAME` or `FAIL NAME: reason`; `t_summary` prints `N passed, N failed`
# and returns non-zero when anything failed.

T_PASSED=0
T_FAILED=0

# Fail the current test with a reason (inside a test function).
t_fail() {
        echo "    $*" >&2
        exit 1
}

t_assert() { # t_assert "description" command...
        local what=$1
        shift
        "$@" || t_fail "$what (command: $*)"
}

# A test file may define t_after, run after every test (pass or fail) to
# stop what the test left running.
t_run() {
        local name=$1
        local out rc
        out=$( ("$name") 2>&1 </dev/null)
        rc=$?
        if declare -F t_after >/dev/null; then t_after; fi
        if [ "$rc" -eq 0 ]; then
                echo "PASS $name"
                T_PASSED=$((T_PASSED + 1))
        else
                echo "FAIL $name"
                printf '%s\n' "$out" | tail -n 30 | sed 's/^/    /'
                T_FAILED=$((T_FAILED + 1))
        fi
}

t_summary() {
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
