#!/usr/bin/env bash
# Faults below the driver, against the real kernel and lvm2 in the guest:
# - an lvm2 command that hangs (its VG lock held by another process) is
#   killed after --lvm-timeout and reported as DEADLINE_EXCEEDED, while
#   the server keeps answering other calls; the retry then succeeds once;
# - a thin pool filling up: new volumes are refused (RESOURCE_EXHAUSTED)
#   at the --config data threshold, before the pool is full; when it is
#   full, a tenant's writes fail with an I/O error (not a hang: the pool
#   errors when full), and the plugin says so everywhere it reports:
#   Probe, NodeGetVolumeStats' volume condition, `thinvaultctl pool`;
#   unstage and delete still work and give the space back.
set -uo pipefail
BUILD=${1:-$TV_BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/pool.sh"
D=/tmp/tv-faults
VG=tvfault
K=$D/kubelet
LOOP_SIZE=192M
. "$HERE/plugin.sh"
[ -f $D/key ] || head -c 32 /dev/urandom | base64 -w0 >$D/key
exec 3>&1
say() { echo "$@" >&3; }
t_after() { remove_leftovers; }

pool_json() { "$CTL" pool --vg $VG --thin-pool pool -o json; }
pool_field() { pool_json | grep -o "\"$1\": [^,}]*" | sed 's/^[^:]*: //'; }
# elapsed_ms command...: runs it, prints how long it took
elapsed_ms() {
        local t0 t1
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000000))
}

test_hung_lvm2_call_times_out_is_reported_and_does_not_wedge_the_server() {
        local holder out err rc t0 t1 ms_id ms_info id
        PLUGIN_ARGS=(--lvm-timeout 5)
        start_plugin
        ctl csi Identity.Probe >/dev/null || t_fail "Probe"
        # Another process holds the VG's lvm2 lock, as a stuck lvm2 command
        # or an admin's interrupted one would.
        mkdir -p /run/lock/lvm
        flock /run/lock/lvm/V_$VG sleep 120 &
        holder=$!
        sleep 1
        flock -n /run/lock/lvm/V_$VG true && t_fail "the lock is not held: nothing tested"
        t0=$(date +%s)
        ( ctl csi Controller.CreateVolume --json "{\"name\":\"hung\",\"capacityRange\":{\"requiredBytes\":\"$((32 * MiB))\"},
                \"volumeCapabilities\":[$MOUNT_CAP],\"parameters\":{\"csi.storage.k8s.io/pvc/namespace\":\"team-a\"}}" \
                >$D/hung.out 2>$D/hung.err; echo $? >$D/hung.rc ) &
        sleep 1
        # While that call waits for lvm2, the server answers others.
        ms_id=$(elapsed_ms ctl csi Identity.GetPluginInfo)
        ms_info=$(elapsed_ms ctl csi Node.NodeGetInfo)
        say "    during the hung lvm2 call: GetPluginInfo $ms_id ms, NodeGetInfo $ms_info ms"
        [ "$ms_id" -lt 3000 ] && [ "$ms_info" -lt 3000 ] || t_fail "the server stalled behind the hung call"
        wait $!
        t1=$(date +%s)
        rc=$(cat $D/hung.rc)
        err=$(cat $D/hung.err)
        say "    CreateVolume returned after $((t1 - t0)) s: ${err:0:220}"
        [ "$rc" != 0 ] || t_fail "CreateVolume succeeded under a held VG lock"
        [[ "$err" == DEADLINE_EXCEEDED:* ]] || t_fail "expected DEADLINE_EXCEEDED, got: $err"
        [[ "$err" == *"did not finish within 5000 ms"* ]] || t_fail "the message does not say what timed out: $err"
        [ $((t1 - t0)) -lt 60 ] || t_fail "the time-out took $((t1 - t0)) s"
        grep -q 'msg="lvm2 timed out"' $D/csi.log || t_fail "no 'lvm2 timed out' log line"
        # flock's child (sleep) holds the lock too: end both.
        pkill -P $holder 2>/dev/null
        kill $holder 2>/dev/null
        wait $holder 2>/dev/null
        flock -n /run/lock/lvm/V_$VG true || t_fail "the lock is still held"
        # lvm2 commits atomically: the retry finds out and ends with one LV.
        id=$(create hung team-a) || t_fail "retry after the lock is gone"
        [ "$(lv_count "$(lv_of "$id")")" = 1 ] || t_fail "not one LV after the retry"
        delete "$id" >/dev/null || t_fail "delete"
}

test_pool_filling_up_is_refused_early_then_errors_writes_and_is_reported() {
        local id stg total fill pct err out ready
        echo '{"pool": {"maxDataPercent": 60}}' >$D/cfg.json
        PLUGIN_ARGS=(--config $D/cfg.json)
        start_plugin
        ctl csi Identity.Probe | grep -q '"ready": true' || t_fail "pool not ready at the start"
        total=$(pool_field dataTotalBytes)
        [ -n "$total" ] && [ "$total" -gt 0 ] || t_fail "no pool size: $(pool_json)"
        # Thin: a 1 GiB volume on a pool of a few hundred MiB.
        id=$(create big team-a '' $((1024 * MiB))) || t_fail "create"
        stage "$id" big $D/key >/dev/null || t_fail "stage"
        stg=$(staging_of big)
        fill=$((total * 65 / 100 / MiB))
        dd if=/dev/urandom of="$stg/fill" bs=1M count=$fill oflag=direct conv=fsync status=none || t_fail "fill to 65%"
        pct=$(pool_field dataPercent)
        say "    pool $((total / MiB)) MiB, after writing $fill MiB: data ${pct}%"
        awk -v p="$pct" 'BEGIN { exit !(p >= 60) }' || t_fail "pool at ${pct}%, not past the threshold"
        err=$(expect_status RESOURCE_EXHAUSTED "a new volume past the data threshold" create more team-a) || exit 1
        say "    new volume: ${err:0:200}"
        [[ "$err" == *60* ]] || t_fail "the message does not name the threshold: $err"
        [ "$(lv_count "tv-more-.*")" = 0 ] || t_fail "a refused create left an LV"

        # Full: the pool errors instead of queueing writes for a minute.
        if [ "$(pool_field errorWhenFull)" != true ]; then
                lvm_ lvchange -q --errorwhenfull y $VG/pool >/dev/null || t_fail "errorwhenfull"
        fi
        timeout 300 dd if=/dev/urandom of="$stg/fill2" bs=1M count=$((total / MiB)) oflag=direct conv=fsync status=none 2>$D/dd.err &&
                t_fail "writing past a full pool succeeded"
        say "    the tenant's write past the end: $(head -c 160 $D/dd.err)"
        [ "$(pool_field outOfDataSpace)" = true ] || t_fail "thinvaultctl pool does not say out of data space: $(pool_json)"
        [ "$(pool_field healthy)" = false ] || t_fail "thinvaultctl pool says healthy"
        out=$(ctl csi Identity.Probe) || t_fail "Probe"
        ready=$(jval ready <<<"$out")
        [ "$ready" != true ] || t_fail "Probe is ready on a full pool: $out"
        out=$(ctl csi Node.NodeGetVolumeStats --json "{\"volumeId\":\"$id\",\"volumePath\":\"$stg\"}") || t_fail "stats"
        grep -q '"abnormal": true' <<<"$out" || t_fail "volume condition not abnormal: $out"
        say "    volume condition: $(jval message <<<"$out" | head -c 200)"
        expect_status RESOURCE_EXHAUSTED "a new volume on a full pool" create more team-a >/dev/null

        # The way out: unstage, delete (crypto-erase + discard), space back.
        unstage "$id" big >/dev/null || t_fail "unstage on a full pool"
        delete "$id" >/dev/null || t_fail "delete on a full pool"
        [ "$(lv_count "$(lv_of "$id")")" = 0 ] || t_fail "LV left"
        pct=$(pool_field dataPercent)
        say "    after the delete: data ${pct}%, Probe: $(ctl csi Identity.Probe | tr -d '\n ' | head -c 80)"
        awk -v p="$pct" 'BEGIN { exit !(p < 10) }' || t_fail "space not given back: ${pct}%"
}

for t in $(declare -F | awk '{print $3}' | grep '^test_' | grep -E "${TV_FAULTS_ONLY:-.}"); do
        t0=$(date +%s)
        t_run "$t"
        say "    ($(($(date +%s) - t0)) s)"
done
stop_plugin
remove_leftovers
pool_remove $VG
t_summary
