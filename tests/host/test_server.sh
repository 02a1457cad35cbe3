#!/usr/bin/env bash
# thinvault-csi's transport on the host (no device-mapper needed): the
# socket's life, every method answering, garbage and oversized input,
# concurrency limits of the endpoint, clean shutdown, and no leaks.
# Usage: tests/host/test_server.sh BUILD_DIR
# On a build made with -DTV_SANITIZE=... (tests/run's sanitize stage), every
# test also fails on a sanitizer report from any process it ran, and the
# leak check runs under LeakSanitizer instead of valgrind. Reports are
# copied to $TV_SANITIZER_REPORTS when that is set.
set -uo pipefail
BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"

CSI=$BUILD/csi/thinvault-csi
CTL=$BUILD/cli/thinvaultctl
WORK=$(mktemp -d /var/tmp/tv-host.XXXXXX)
trap 'pkill -f "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT

# The sanitizers this build was made with (empty for a plain build).
SANITIZE=$(sed -n 's/^TV_SANITIZE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
if [ -n "$SANITIZE" ]; then
        # ASan and LSan write their reports to files here (options later in
        # the string win); UBSan writes to the process's stderr whatever
        # log_path says, so t_check reads the stderr of the servers and CLIs
        # too. The directory is open to all: one test runs the plugin as nobody.
        SANREP=$WORK/sanitizer
        mkdir -p "$SANREP" && chmod 1777 "$SANREP" || exit 2
        export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}:log_path=$SANREP/asan"
        export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
        t_check() {
                local f found=0
                for f in "$SANREP"/asan.* "$SANREP"/*.stderr "$WORK"/*.log; do
                        [ -f "$f" ] || continue
                        case "$f" in
                        "$SANREP"/asan.*) ;;
                        *) grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$f" || continue ;;
                        esac
                        found=1
                        echo "sanitizer report in $(basename "$f"):"
                        grep -m1 -A14 -E 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$f"
                        [ -n "${TV_SANITIZER_REPORTS:-}" ] && mkdir -p "$TV_SANITIZER_REPORTS" &&
                                cp "$f" "$TV_SANITIZER_REPORTS/$(date +%s%N)-$(basename "$f")"
                done
                rm -f "$SANREP"/asan.* "$SANREP"/*.stderr
                return $found
        }
fi

# start_server NAME [ARGS...]: background plugin on $WORK/NAME.sock, log in $WORK/NAME.log
start_server() {
        local name=$1
        shift
        # No volume group on the host: the transport does not need one.
        "$CSI" --endpoint "unix://$WORK/$name.sock" --node-id node-1 --vg tvhost --thin-pool pool "$@" >/dev/null 2>"$WORK/$name.log" &
        echo $! >"$WORK/$name.pid"
        t_wait_socket "$WORK/$name.sock" 10 || t_fail "server $name did not create its socket; log: $(cat "$WORK/$name.log")"
}

# Whatever a failed test left running must not hold the next one up.
t_after() {
        local f
        for f in "$WORK"/*.pid; do
                [ -f "$f" ] || continue
                kill -KILL "$(cat "$f")" 2>/dev/null
                rm -f "$f"
        done
        rm -f "$WORK"/*.sock "$WORK"/*.log
}

stop_server() {
        local name=$1 pid
        pid=$(cat "$WORK/$name.pid")
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && t_fail "server $name still running 10 s after SIGTERM"
        wait "$pid"
        local rc=$?
        [ "$rc" -eq 0 ] || t_fail "server $name exited with status $rc; its log ends: $(tail -n 15 "$WORK/$name.log")"
}

ctl() { # ctl NAME ARGS...
        local name=$1
        shift
        if [ -n "$SANITIZE" ]; then
                # a copy of stderr for t_check (UBSan reports go there)
                timeout "${CTL_TIMEOUT:-20}" "$CTL" --endpoint "unix://$WORK/$name.sock" "$@" 2> >(tee -a "$SANREP/ctl.stderr" >&2)
        else
                timeout "${CTL_TIMEOUT:-20}" "$CTL" --endpoint "unix://$WORK/$name.sock" "$@"
        fi
}

test_get_plugin_info_prints_json_reply() {
        start_server a
        local out
        out=$(ctl a csi Identity.GetPluginInfo) || t_fail "GetPluginInfo failed"
        grep -q '"name": "thinvault.csi.io"' <<<"$out" || t_fail "no driver name in: $out"
        grep -q '"vendorVersion": "' <<<"$out" || t_fail "no version in: $out"
        stop_server a
}

test_node_get_info_uses_node_id_and_topology_key() {
        start_server a
        local out
        out=$(ctl a csi Node.NodeGetInfo) || t_fail "NodeGetInfo failed"
        grep -q '"nodeId": "node-1"' <<<"$out" || t_fail "node id missing: $out"
        grep -q '"topology.thinvault.io/node": "node-1"' <<<"$out" || t_fail "topology missing: $out"
        stop_server a
}

test_probe_without_pool_is_not_ready() {
        start_server a
        local out
        out=$(ctl a csi Identity.Probe) || t_fail "Probe failed"
        grep -q '"ready": false' <<<"$out" || t_fail "expected ready false: $out"
        stop_server a
}

test_every_csi_method_answers_ok_or_a_status() {
        start_server a
        local m rc err
        for m in $("$CTL" csi --list | awk '!/streaming/ {print $1}'); do
                err=$(ctl a csi "$m" --json '{}' 2>&1 >/dev/null)
                rc=$?
                [ "$rc" -eq 124 ] && t_fail "$m hung"
                if [ "$rc" -ne 0 ]; then
                        case "$err" in
                        UNIMPLEMENTED:* | INVALID_ARGUMENT:* | NOT_FOUND:* | UNAVAILABLE:* | FAILED_PRECONDITION:*) ;;
                        *) t_fail "$m: unexpected answer: $err" ;;
                        esac
                fi
        done
        # The streaming RPCs, sent raw, are refused cleanly too.
        : >"$WORK/empty"
        err=$(ctl a csi /csi.v1.SnapshotMetadata/GetMetadataDelta --raw "$WORK/empty" 2>&1)
        [[ "$err" == UNIMPLEMENTED:* ]] || t_fail "streaming method: $err"
        stop_server a
}

test_unknown_method_is_unimplemented() {
        start_server a
        : >"$WORK/empty"
        local err
        err=$(ctl a csi /csi.v1.Identity/NoSuchMethod --raw "$WORK/empty" 2>&1) && t_fail "call succeeded"
        [[ "$err" == UNIMPLEMENTED:* ]] || t_fail "got: $err"
        err=$(ctl a csi /not.csi/Thing --raw "$WORK/empty" 2>&1) && t_fail "call succeeded"
        [[ "$err" == UNIMPLEMENTED:* ]] || t_fail "got: $err"
        stop_server a
}

test_malformed_protobuf_is_invalid_argument() {
        start_server a
        local err
        printf '\x0a\x64abc' >"$WORK/truncated"
        head -c 512 /dev/urandom | tr '\000' '\377' >"$WORK/garbage"
        printf '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01' >"$WORK/badvarint"
        for f in truncated badvarint; do
                err=$(ctl a csi Node.NodeGetInfo --raw "$WORK/$f" 2>&1) && t_fail "$f accepted"
                [[ "$err" == INVALID_ARGUMENT:* ]] || t_fail "$f: got $err"
        done
        # Random bytes may by chance parse; the server must answer either way.
        err=$(ctl a csi Identity.Probe --raw "$WORK/garbage" 2>&1)
        [ $? -eq 124 ] && t_fail "random body hung the call"
        ctl a csi Identity.Probe >/dev/null || t_fail "server gone after garbage bodies"
        stop_server a
}

test_oversized_request_is_refused_and_server_survives() {
        start_server a
        local err
        head -c $((4 * 1024 * 1024 + 16)) /dev/zero >"$WORK/big"
        err=$(ctl a csi Identity.Probe --raw "$WORK/big" 2>&1) && t_fail "4 MiB request accepted"
        [[ "$err" == RESOURCE_EXHAUSTED:* ]] || t_fail "got: $err"
        ctl a csi Identity.Probe >/dev/null || t_fail "server gone after oversized request"
        stop_server a
}

test_garbage_on_the_socket_does_not_kill_the_server() {
        start_server a
        /usr/bin/python3 - "$WORK/a.sock" <<'PY' || t_fail "python client failed"
import os, socket, sys
path = sys.argv[1]
payloads = [b"", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(65536),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + os.urandom(4096),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"\xff" * 9]
for p in payloads:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    try:
        s.sendall(p)
    except OSError:
        pass
    s.close()
# and one that connects and goes silent while we keep working
idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
idle.connect(path)
PY
        ctl a csi Identity.GetPluginInfo >/dev/null || t_fail "server does not answer after garbage"
        kill -0 "$(cat "$WORK/a.pid")" || t_fail "server died"
        stop_server a
}

test_second_instance_on_same_socket_is_refused() {
        start_server a
        local err rc
        err=$(timeout 10 "$CSI" --endpoint "unix://$WORK/a.sock" --vg tvhost --thin-pool pool 2>&1)
        rc=$?
        [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || t_fail "second instance rc=$rc"
        grep -q "another thinvault-csi serves this endpoint" <<<"$err" || t_fail "message: $err"
        ctl a csi Identity.Probe >/dev/null || t_fail "first instance lost its socket"
        stop_server a
}

test_stale_socket_is_removed_on_start() {
        /usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$WORK/a.sock"
        [ -S "$WORK/a.sock" ] || t_fail "could not make a stale socket"
        start_server a
        # The stale file satisfies the socket wait: wait for the log instead.
        for _ in $(seq 100); do grep -q 'msg="serving"' "$WORK/a.log" && break; sleep 0.1; done
        grep -q 'msg="removed stale socket"' "$WORK/a.log" || t_fail "no stale-socket log line"
        ctl a csi Identity.Probe >/dev/null || t_fail "not serving"
        stop_server a
}

test_endpoint_that_is_a_regular_file_is_left_alone() {
        echo precious >"$WORK/file.sock"
        local err
        err=$(timeout 10 "$CSI" --endpoint "unix://$WORK/file.sock" --vg tvhost --thin-pool pool 2>&1) && t_fail "started over a file"
        grep -q "not a socket" <<<"$err" || t_fail "message: $err"
        [ "$(cat "$WORK/file.sock")" = precious ] || t_fail "file changed"
}

test_endpoint_directory_missing_or_not_writable_is_a_clear_error() {
        local err
        err=$(timeout 10 "$CSI" --endpoint "unix://$WORK/nodir/csi.sock" --vg tvhost --thin-pool pool 2>&1) && t_fail "started"
        grep -q "socket directory does not exist" <<<"$err" || t_fail "message: $err"
        mkdir -p "$WORK/ro" && chmod 755 "$WORK/ro" && chmod 711 "$WORK"
        err=$(timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups "$CSI" --endpoint "unix://$WORK/ro/csi.sock" --vg tvhost --thin-pool pool 2>&1) && t_fail "started as nobody"
        grep -q "socket directory is not writable" <<<"$err" || t_fail "message: $err"
        err=$(timeout 10 "$CSI" --endpoint "tcp://127.0.0.1:1" --vg tvhost --thin-pool pool 2>&1) && t_fail "accepted tcp endpoint"
        grep -q "endpoint must be unix:///" <<<"$err" || t_fail "message: $err"
        err=$(CSI_ENDPOINT= timeout 10 "$CSI" --vg tvhost --thin-pool pool 2>&1) && t_fail "started without endpoint"
        grep -q "no endpoint" <<<"$err" || t_fail "message: $err"
}

test_csi_endpoint_env_is_honoured() {
        CSI_ENDPOINT="unix://$WORK/env.sock" "$CSI" --vg tvhost --thin-pool pool >/dev/null 2>"$WORK/env.log" &
        local pid=$!
        echo $pid >"$WORK/env.pid"
        t_wait_socket "$WORK/env.sock" 10 || t_fail "no socket from CSI_ENDPOINT"
        CSI_ENDPOINT="unix://$WORK/env.sock" timeout 10 "$CTL" csi Identity.Probe >/dev/null || t_fail "CLI ignored CSI_ENDPOINT"
        kill -TERM $pid
        wait $pid || t_fail "exit status $?"
}

test_sigterm_stops_cleanly_and_removes_socket() {
        start_server a
        ctl a csi Identity.Probe >/dev/null
        stop_server a || t_fail "exit status non-zero"
        [ ! -e "$WORK/a.sock" ] || t_fail "socket left behind"
        grep -q 'msg="stopped"' "$WORK/a.log" || t_fail "no stopped log line"
}

test_sigint_stops_cleanly() {
        start_server a
        kill -INT "$(cat "$WORK/a.pid")"
        wait "$(cat "$WORK/a.pid")" || t_fail "exit status $?"
        [ ! -e "$WORK/a.sock" ] || t_fail "socket left behind"
}

test_rpc_log_line_has_method_request_id_duration_status() {
        start_server a
        ctl a csi Identity.GetPluginInfo >/dev/null
        ctl a csi Controller.CreateVolume --json '{"name":"x"}' >/dev/null 2>&1
        stop_server a
        grep -E 'msg="rpc" method=/csi.v1.Identity/GetPluginInfo request_id=[^ ]+ ms=[0-9]+ status=OK' "$WORK/a.log" >/dev/null ||
                t_fail "no OK rpc line: $(cat "$WORK/a.log")"
        grep -E 'msg="rpc" method=/csi.v1.Controller/CreateVolume request_id=[^ ]+ ms=[0-9]+ status=[A-Z_]+ error="' "$WORK/a.log" >/dev/null ||
                t_fail "no error rpc line: $(cat "$WORK/a.log")"
}

test_log_level_filters_and_rejects_unknown_levels() {
        start_server a --log-level error
        ctl a csi Identity.Probe >/dev/null
        stop_server a
        grep -q 'level=info' "$WORK/a.log" && t_fail "info line at --log-level error"
        local err
        err=$("$CSI" --log-level chatty 2>&1)
        [ $? -eq 2 ] || t_fail "bad level: exit status not 2"
        grep -q "log-level wants" <<<"$err" || t_fail "message: $err"
}

test_help_on_every_command() {
        "$CSI" --help | grep -q -- "--endpoint" || t_fail "thinvault-csi --help"
        "$CTL" --help | grep -q "csi <Service>.<Method>" || t_fail "thinvaultctl --help"
        "$CTL" csi --help | grep -q -- "--json" || t_fail "thinvaultctl csi --help"
}

test_cli_reports_status_and_bad_json() {
        start_server a
        local err rc
        err=$(ctl a csi Node.NodeGetInfo --json '{"nope": 1}' 2>&1)
        rc=$?
        [ "$rc" -eq 2 ] || t_fail "bad JSON rc=$rc"
        grep -q "nope" <<<"$err" || t_fail "message does not name the field: $err"
        err=$(ctl a csi Identity.NoSuch 2>&1)
        [ $? -eq 2 ] || t_fail "unknown method rc"
        err=$(timeout 20 "$CTL" --endpoint "unix://$WORK/none.sock" --timeout 2 csi Identity.Probe 2>&1)
        rc=$?
        [ "$rc" -eq 1 ] || t_fail "no server rc=$rc"
        grep -qE "UNAVAILABLE|DEADLINE_EXCEEDED" <<<"$err" || t_fail "no server: $err"
        stop_server a
}

# external-snapshotter --extra-create-metadata's keys pass validation (and
# reach the pool, absent here); any other parameter is refused.
test_create_snapshot_takes_only_the_snapshotters_metadata() {
        start_server a
        local err meta='"csi.storage.k8s.io/volumesnapshot/name":"s","csi.storage.k8s.io/volumesnapshot/namespace":"team-a","csi.storage.k8s.io/volumesnapshotcontent/name":"snapcontent-1"'
        err=$(ctl a csi Controller.CreateSnapshot --json "{\"name\":\"snapshot-1\",\"sourceVolumeId\":\"tvhost:tv-x\",\"parameters\":{$meta}}" 2>&1)
        [[ "$err" == UNAVAILABLE:* ]] || t_fail "with the metadata: $err"
        err=$(ctl a csi Controller.CreateSnapshot --json "{\"name\":\"snapshot-1\",\"sourceVolumeId\":\"tvhost:tv-x\",\"parameters\":{$meta,\"compress\":\"y\"}}" 2>&1)
        [[ "$err" == INVALID_ARGUMENT:*compress* ]] || t_fail "unknown key: $err"
        stop_server a
}

test_secrets_never_reach_the_log() {
        start_server a --log-level debug
        ctl a csi Node.NodeStageVolume --json '{"volume_id":"v","secrets":{"key":"c2VjcmV0LXNlY3JldC1TRUNSRVQ="}}' >/dev/null 2>&1
        ctl a csi Controller.CreateVolume --json '{"name":"v","secrets":{"key":"TOPSECRET-VALUE"}}' >/dev/null 2>&1
        stop_server a
        grep -q -e 'c2VjcmV0LXNlY3JldC1TRUNSRVQ=' -e 'TOPSECRET-VALUE' "$WORK/a.log" && t_fail "secret in log"
        return 0
}

test_slow_call_does_not_block_other_calls() {
        # A call whose client never sends its message holds one worker; the
        # others keep answering.
        start_server a
        /usr/bin/python3 - "$WORK/a.sock" >/dev/null <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
time.sleep(8)
PY
        # Blocked behind the silent client, a call would wait out its 8 s.
        # Each call is timed alone: a CLI start-up is no measure of this, and
        # a sanitized CLI on a loaded machine takes ~1 s to start and exit.
        local t0 ms worst=0
        for _ in 1 2 3 4 5; do
                t0=$(date +%s%N)
                ctl a csi Identity.GetPluginInfo >/dev/null || t_fail "GetPluginInfo failed"
                ms=$((($(date +%s%N) - t0) / 1000000))
                [ "$ms" -gt "$worst" ] && worst=$ms
        done
        [ "$worst" -lt 5000 ] || t_fail "a call took $worst ms beside the silent client"
        stop_server a
}

# worker_tids PID: the thread ids of the plugin's workers (named tv-worker)
worker_tids() { grep -lx tv-worker /proc/"$1"/task/*/comm 2>/dev/null | awk -F/ '{print $5}' | sort -n; }

test_worker_threads_are_kept_and_bounded_by_max_concurrent() {
        # Workers wait for the next call instead of exiting: after bursts of
        # 6 calls at once with --max-concurrent 3 there are at most 3, and
        # those of the first burst still serve the last.
        start_server a --max-concurrent 3
        local pid i j first now
        pid=$(cat "$WORK/a.pid")
        for i in 1 2 3; do
                for j in 1 2 3 4 5 6; do ctl a csi Identity.Probe >"$WORK/p.$j" 2>&1 & done
                wait $(jobs -p | grep -vx "$pid")
                for j in 1 2 3 4 5 6; do grep -q '"ready"' "$WORK/p.$j" || t_fail "call $i.$j: $(cat "$WORK/p.$j")"; done
                now=$(worker_tids "$pid")
                [ -n "$now" ] || t_fail "no tv-worker thread after burst $i"
                [ "$(wc -l <<<"$now")" -le 3 ] || t_fail "$(wc -l <<<"$now") workers after burst $i, --max-concurrent 3"
                [ -n "${first:-}" ] || first=$now
        done
        for j in $first; do grep -qx "$j" <<<"$now" || t_fail "worker $j of the first burst is gone: $(tr '\n' ' ' <<<"$now")"; done
        stop_server a
}

# leak_workload NAME LOG ROUNDS: ROUNDS x 3 RPCs (a third of them malformed)
# and metrics scrapes, a 404 and a 405 against the server on $WORK/NAME.sock
# whose stderr is LOG, then SIGTERM; returns the server's exit status.
leak_workload() {
        local sock=$WORK/$1.sock log=$2 rounds=$3 pid i port
        local CTL_TIMEOUT=30 # for ctl: a server under valgrind is slow
        pid=$(cat "$WORK/$1.pid")
        t_wait_socket "$sock" 60 || t_fail "server $1 did not start; log: $(cat "$log")"
        printf '\x0a\x64abc' >"$WORK/truncated"
        for i in $(seq "$rounds"); do
                ctl "$1" csi Identity.GetPluginInfo >/dev/null || t_fail "rpc $i failed"
                ctl "$1" csi Node.NodeGetInfo >/dev/null || t_fail "rpc $i failed"
                ctl "$1" csi Node.NodeGetInfo --raw "$WORK/truncated" >/dev/null 2>&1
        done
        port=$(metrics_port "$log") || t_fail "server $1 serves no metrics"
        for i in $(seq 10); do
                curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" || t_fail "scrape $i failed"
        done
        curl -s -o /dev/null "http://127.0.0.1:$port/x"
        curl -s -o /dev/null -X DELETE "http://127.0.0.1:$port/metrics"
        kill -TERM "$pid"
        wait "$pid"
}

test_valgrind_finds_no_leak_over_300_rpcs() {
        [ -n "$SANITIZE" ] && t_skip "valgrind cannot run a binary built with -fsanitize=$SANITIZE (LeakSanitizer checks this workload instead)"
        command -v valgrind >/dev/null || t_fail "valgrind not installed"
        valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
                --log-file="$WORK/vg.log" "$CSI" --endpoint "unix://$WORK/vg.sock" --node-id n --vg tvhost --thin-pool pool \
                --metrics-address 127.0.0.1:0 >/dev/null 2>"$WORK/vgs.log" &
        echo $! >"$WORK/vg.pid"
        leak_workload vg "$WORK/vgs.log" 100
        local rc=$?
        grep -E "definitely lost|ERROR SUMMARY" "$WORK/vg.log" >&2
        [ "$rc" -eq 0 ] || t_fail "valgrind exit $rc: $(grep -A20 'definitely lost in' "$WORK/vg.log" | head -40)"
}

# LeakSanitizer reports any unfreed block, however few times it leaked, so
# fewer rounds than valgrind's do: each sanitized CLI call costs ~0.5 s.
test_leak_sanitizer_finds_no_leak_over_60_rpcs() {
        [[ ",$SANITIZE," == *,address,* ]] || t_skip "needs a build with -DTV_SANITIZE=address,... (valgrind checks this workload in a plain build)"
        start_server ls --metrics-address 127.0.0.1:0
        leak_workload ls "$WORK/ls.log" 20
        local rc=$?
        # LeakSanitizer runs at exit: a leak makes the status non-zero and
        # leaves a report that t_check prints.
        [ "$rc" -eq 0 ] || t_fail "server exit status $rc; log ends: $(tail -n 15 "$WORK/ls.log")"
        grep -q 'msg="stopped"' "$WORK/ls.log" || t_fail "server did not stop cleanly: $(tail -n 15 "$WORK/ls.log")"
}

# ---- the Prometheus endpoint (--metrics-address) --------------------------------

# metrics_port LOGFILE: the port the plugin logged it serves metrics on
# (started with port 0, so tests never collide on a fixed port)
metrics_port() {
        local i p
        for i in $(seq 100); do
                p=$(grep -o 'msg="serving metrics" .* port=[0-9]*' "$1" | sed 's/.*port=//')
                [ -n "$p" ] && echo "$p" && return 0
                sleep 0.1
        done
        return 1
}
# value TEXT SAMPLE: the value of the sample line that starts with SAMPLE
value() { awk -v s="$2" 'index($0, s " ") == 1 {print $NF}' <<<"$1"; }

test_metrics_endpoint_serves_the_text_format_and_counts_rpcs() {
        start_server a --metrics-address 127.0.0.1:0
        local port out code
        port=$(metrics_port "$WORK/a.log") || t_fail "no 'serving metrics' line: $(cat "$WORK/a.log")"
        out=$(curl -sS -D "$WORK/h" "http://127.0.0.1:$port/metrics") || t_fail "curl failed"
        grep -q '^HTTP/1.1 200 OK' "$WORK/h" || t_fail "status: $(head -1 "$WORK/h")"
        grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' "$WORK/h" || t_fail "content type: $(cat "$WORK/h")"
        # no volume group on the host: the pool is down, the plugin still reports
        [ "$(value "$out" 'thinvault_pool_up{vg="tvhost",thin_pool="pool"}')" = 0 ] || t_fail "pool_up: $out"
        grep -q '^# TYPE thinvault_rpc_duration_seconds histogram$' <<<"$out" || t_fail "no histogram family"
        grep -qE '^thinvault_scrape_duration_seconds [0-9]+\.[0-9]{6}$' <<<"$out" || t_fail "no scrape duration"
        local before
        before=$(value "$out" 'thinvault_rpc_requests_total{method="Identity.GetPluginInfo",code="OK"}')
        for _ in 1 2 3; do ctl a csi Identity.GetPluginInfo >/dev/null || t_fail "GetPluginInfo"; done
        ctl a csi Controller.CreateVolume --json '{}' >/dev/null 2>&1
        out=$(curl -sS "http://127.0.0.1:$port/metrics") || t_fail "second scrape"
        [ "$(value "$out" 'thinvault_rpc_requests_total{method="Identity.GetPluginInfo",code="OK"}')" = $((${before:-0} + 3)) ] ||
                t_fail "GetPluginInfo count did not move by 3 from '${before}': $(grep rpc_requests <<<"$out")"
        [ "$(value "$out" 'thinvault_rpc_requests_total{method="Controller.CreateVolume",code="INVALID_ARGUMENT"}')" = 1 ] ||
                t_fail "CreateVolume error not counted: $(grep rpc_requests <<<"$out")"
        [ "$(value "$out" 'thinvault_rpc_duration_seconds_bucket{method="Identity.GetPluginInfo",le="+Inf"}')" = \
                "$(value "$out" 'thinvault_rpc_duration_seconds_count{method="Identity.GetPluginInfo"}')" ] || t_fail "+Inf != count"
        # every sample line: a valid name, labels, a number
        grep -v '^#' <<<"$out" | grep -vE '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$' |
                grep . && t_fail "malformed sample lines above"
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/other")
        [ "$code" = 404 ] || t_fail "/other: $code"
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")
        [ "$code" = 404 ] || t_fail "/: $code"
        code=$(curl -s -o /dev/null -D "$WORK/h" -w '%{http_code}' -X POST --data x "http://127.0.0.1:$port/metrics")
        [ "$code" = 405 ] || t_fail "POST: $code"
        grep -qi '^Allow: GET, HEAD' "$WORK/h" || t_fail "405 without Allow: $(cat "$WORK/h")"
        code=$(curl -s -o /dev/null -w '%{http_code}' -I "http://127.0.0.1:$port/metrics")
        [ "$code" = 200 ] || t_fail "HEAD: $code"
        stop_server a
}

test_metrics_scrapes_and_stalled_http_clients_do_not_block_rpcs() {
        start_server a --metrics-address 127.0.0.1:0
        local port i t0 ms
        port=$(metrics_port "$WORK/a.log") || t_fail "no 'serving metrics' line"
        # HTTP clients that send half a request and stall, each holding a
        # connection thread of the metrics server
        /usr/bin/python3 - "$port" <<'PY' &
import socket, sys, time
socks = []
for _ in range(3):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET /metr")
    socks.append(s)
time.sleep(10)
PY
        echo $! >"$WORK/stall.pid"
        # and scrapes in a loop, four at a time
        local loops=()
        for i in 1 2 3 4; do
                (for _ in $(seq 15); do curl -s -o /dev/null "http://127.0.0.1:$port/metrics"; done) &
                loops+=($!)
        done
        sleep 0.3
        for i in $(seq 10); do
                ctl a csi Node.NodeGetInfo >/dev/null || t_fail "NodeGetInfo $i failed during scrapes"
        done
        # the plugin's own time for each call (its log line), not the CLI's
        # start-up, which a loaded machine makes slow
        grep -o 'method=/csi.v1.Node/NodeGetInfo .* ms=[0-9]*' "$WORK/a.log" | sed 's/.*ms=//' >"$WORK/ms"
        [ "$(wc -l <"$WORK/ms")" = 10 ] || t_fail "expected 10 NodeGetInfo log lines"
        ms=$(sort -n "$WORK/ms" | tail -1)
        [ "$ms" -lt 1000 ] || t_fail "NodeGetInfo took $ms ms in the plugin during scrapes"
        # a scrape still answers while the stalled clients hold their connections
        t0=$(date +%s%N)
        curl -sS -m 20 -o /dev/null "http://127.0.0.1:$port/metrics" || t_fail "scrape beside stalled clients"
        wait "${loops[@]}"
        kill "$(cat "$WORK/stall.pid")" 2>/dev/null
        stop_server a
}

test_metrics_are_off_without_the_flag_and_bad_addresses_are_refused() {
        start_server a
        ctl a csi Identity.Probe >/dev/null
        grep -q 'serving metrics' "$WORK/a.log" && t_fail "metrics served without --metrics-address"
        local err busy
        err=$(timeout 10 "$CSI" --endpoint "unix://$WORK/b.sock" --vg tvhost --thin-pool pool --metrics-address 9808 2>&1) &&
                t_fail "started with a port-only address"
        grep -q -- "--metrics-address must be HOST:PORT" <<<"$err" || t_fail "message: $err"
        # a port already taken: the plugin says so and does not start
        /usr/bin/python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(15)' >"$WORK/busy" &
        echo $! >"$WORK/busy.pid"
        for _ in $(seq 50); do [ -s "$WORK/busy" ] && break; sleep 0.1; done
        busy=$(cat "$WORK/busy")
        err=$(timeout 10 "$CSI" --endpoint "unix://$WORK/b.sock" --vg tvhost --thin-pool pool --metrics-address "127.0.0.1:$busy" 2>&1) &&
                t_fail "started on a port in use"
        grep -q "cannot listen on --metrics-address" <<<"$err" || t_fail "message: $err"
        [ -e "$WORK/b.sock" ] && t_fail "socket left by a plugin that did not start"
        stop_server a
}

for t in $(declare -F | awk '{print $3}' | grep '^test_'); do
        t_run "$t"
done
t_summary
