#!/usr/bin/env bash
# Load (issue 8 item 4): TV_LOAD_VOLUMES (default 200) volumes, each
# created, staged, published, written and read back, unpublished,
# unstaged and deleted by TV_LOAD_WORKERS concurrent callers (default 6),
# across two tenants (team-a with a Secret's key, team-b with a key derived
# from the node's master key), every volume with an io.max budget, some
# calls repeated to prove idempotency under load, while a scraper GETs
# /metrics every 3 s. The plugin is the ASan+UBSan build tests/run's
# sanitize stage makes (build-asan beside this checkout, or
# $TV_ASAN_BUILD): any AddressSanitizer, LeakSanitizer or UBSan report, a
# failed RPC or scrape, anything left behind (LVs, mappings, mounts,
# io.max lines, kubelet dirs, pool space), an unclean exit on SIGTERM or
# the plugin's RSS growing by more than 10% over the run fails.
# tests/run sets TV_LOAD_VOLUMES=30 for CI's time (see there).
set -uo pipefail
BUILD=${1:-$TV_BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/pool.sh"
D=/tmp/tv-load
VG=tvload
K=$D/kubelet
CG=/sys/fs/cgroup/kubepods # stands in for the kubelet's pods cgroup
LOOP_SIZE=384M
. "$HERE/plugin.sh"
ASAN_BUILD=${TV_ASAN_BUILD:-$HERE/../../build-asan}
CSI=$ASAN_BUILD/csi/thinvault-csi # the callers use $BUILD's thinvaultctl
COUNT=${TV_LOAD_VOLUMES:-200}
WORKERS=${TV_LOAD_WORKERS:-6}
SCRAPE_EVERY=${TV_LOAD_SCRAPE_EVERY:-3}
SANREP=$D/sanitizer
rm -rf "$SANREP" $D/times.* $D/failures $D/scrapes
mkdir -p "$SANREP"
[ -d $CG ] || mkdir $CG
grep -qw io $CG/cgroup.subtree_control || echo +io >$CG/cgroup.subtree_control || true
[ -f $D/key-a ] || head -c 32 /dev/urandom | base64 -w0 >$D/key-a
[ -f $D/master ] || { head -c 32 /dev/urandom >$D/master && chmod 600 $D/master; }
exec 3>&1
say() { echo "$@" >&3; }
t_after() { [ -f $D/pid ] || remove_leftovers; }

# Sanitizer options for the plugin:
# - detect_leaks=1: LeakSanitizer runs at exit (after SIGTERM);
# - quarantine_size_mb=1, thread_local_quarantine_size_kb=16: ASan keeps
#   freed memory out of reuse in a quarantine (256 MiB by default) to catch
#   use-after-free. The quarantine fills with the first megabytes freed and
#   is RSS from then on, so a quarantine larger than what the warm-up frees
#   is still filling when "before" is read and shows as growth (4 MiB plus
#   64 KiB per thread did: "before" 44.8 MiB after a warm-up, 51.5 MiB
#   after 24 volumes, while LeakSanitizer found nothing). 1 MiB (plus 16 KiB
#   per thread; ASan takes 0 there only with no quarantine at all) fills
#   within the warm-up and still holds the memory freed by the last few
#   RPCs, where a use-after-free in a race would land;
# - log_path: ASan and LSan reports go to files t_check finds; UBSan's go
#   to the plugin's stderr ($D/csi.log), halting it.
ASAN_OPTS="detect_leaks=1:quarantine_size_mb=1:thread_local_quarantine_size_kb=16:log_path=$SANREP/asan"
UBSAN_OPTS="print_stacktrace=1:halt_on_error=1"

# A sanitizer report from the plugin fails the test that was running.
t_check() {
        local f found=0
        for f in "$SANREP"/asan.*; do
                [ -f "$f" ] || continue
                found=1
                echo "sanitizer report $(basename "$f"):"
                grep -m1 -A20 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"
                mv "$f" "$f.seen"
        done
        if grep -q 'runtime error:' $D/csi.log 2>/dev/null; then
                found=1
                echo "UBSan report in the plugin's log:"
                grep -m1 -A12 'runtime error:' $D/csi.log
        fi
        return $found
}

# start_asan_plugin: the sanitized plugin with a master key, the metrics
# endpoint on a free port of 127.0.0.1; its exit status goes to $D/rc.
start_asan_plugin() {
        local i
        [ -x "$CSI" ] && grep -q '^TV_SANITIZE:STRING=.*address' "$ASAN_BUILD/CMakeCache.txt" ||
                t_fail "no ASan build of the plugin at $ASAN_BUILD: build it with" \
                        "TV_BUILD_TARGETS=\"tv-unit thinvault-csi thinvaultctl\" scripts/build build-asan" \
                        "-DTV_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug (tests/run's sanitize stage does)," \
                        "or point TV_ASAN_BUILD at one"
        ip link set lo up || t_fail "loopback up"
        rm -f $D/rc $D/pid
        : >$D/csi.log
        # The lvm2 time-out is raised from 60 s: with every caller and the
        # scraper queueing on the VG's lock in an emulated guest, a command
        # may wait that long for its turn; the load tests correctness, not
        # the guest's speed (test_faults.sh tests the time-out).
        (
                ASAN_OPTIONS=$ASAN_OPTS UBSAN_OPTIONS=$UBSAN_OPTS \
                        "$CSI" --endpoint "unix://$SOCK" --node-id node-a --vg $VG --thin-pool pool \
                        --loop-file "/tmp/$VG.img" --loop-size $LOOP_SIZE --kubelet-dir "$K" \
                        --master-key $D/master --metrics-address 127.0.0.1:0 --lvm-timeout 240 \
                        >/dev/null 2>>$D/csi.log &
                echo $! >$D/pid
                wait $!
                echo $? >$D/rc
        ) >/dev/null 2>&1 3>&- &
        for i in $(seq 240); do
                [ -s $D/pid ] && ctl csi Identity.GetPluginInfo >/dev/null 2>&1 && break
                [ -f $D/rc ] && t_fail "plugin exited with $(cat $D/rc): $(tail -5 $D/csi.log)"
                sleep 0.5
        done
        PORT=$(grep -o 'msg="serving metrics" .* port=[0-9]*' $D/csi.log | sed 's/.*port=//')
        [ -n "$PORT" ] || t_fail "no metrics port in the log: $(tail -5 $D/csi.log)"
        echo "$PORT" >$D/port
}
# stop_asan_plugin: SIGTERM, wait for its exit status (in $D/rc)
stop_asan_plugin() {
        local pid i
        pid=$(cat $D/pid 2>/dev/null) || return 0
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 1200); do
                [ -f $D/rc ] && break
                sleep 0.1
        done
        rm -f $D/pid
        [ -f $D/rc ] || { kill -KILL "$pid" 2>/dev/null; return 1; }
}
rss_kib() { awk -v k="$1:" '$1 == k {print $2}' /proc/"$(cat $D/pid)"/status; }

# scrape_once FILE: GET /metrics; 200 and every line well formed, the pool up
scrape_once() {
        local code
        code=$(curl -sS -m 120 -o "$1" -w '%{http_code}' "http://127.0.0.1:$(cat $D/port)/metrics" 2>&1) ||
                { echo "curl: $code"; return 1; }
        [ "$code" = 200 ] || { echo "status $code"; return 1; }
        grep -q "^thinvault_pool_up{vg=\"$VG\",thin_pool=\"pool\"} 1$" "$1" || { echo "pool not up: $(head -c 300 "$1")"; return 1; }
        if grep -v '^#' "$1" | grep -vE '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$' | grep -m3 .; then
                echo "malformed lines above"
                return 1
        fi
}
# scraper: every $SCRAPE_EVERY s (TV_LOAD_SCRAPE_EVERY, default 3: each
# scrape runs one lvs, and at 1 s the scraper alone kept one emulated vCPU
# busy) until $D/stop.scraper appears; one line per scrape
# ("ok MS" or "fail MS reason") in $D/scrapes
scraper() {
        local t0 t1 why
        while [ ! -e $D/stop.scraper ]; do
                t0=$(date +%s%N)
                if why=$(scrape_once $D/scrape.txt); then
                        t1=$(date +%s%N)
                        echo "ok $(((t1 - t0) / 1000000))" >>$D/scrapes
                else
                        t1=$(date +%s%N)
                        why="$why; the plugin: $(grep 'cannot collect\|device-mapper:' $D/csi.log | tail -n2)"
                        echo "fail $(((t1 - t0) / 1000000)) $why" | tr '\n' ' ' | head -c 600 >>$D/scrapes
                        echo >>$D/scrapes
                fi
                sleep "$SCRAPE_EVERY"
        done
}

# ---- one volume's life, as a worker drives it ----------------------------------
# call OP command...: one RPC, timed into the worker's $TIMES as "OP MS";
# a failure goes to $D/failures with the volume's name. Prints its output.
call() {
        local op=$1 t0 t1 out
        shift
        t0=$(date +%s%N)
        if ! out=$("$@" 2>&1); then
                echo "$NAME $op: $(head -c 300 <<<"$out")" >>$D/failures
                return 1
        fi
        t1=$(date +%s%N)
        echo "$op $(((t1 - t0) / 1000000))" >>"$TIMES"
        printf '%s\n' "$out"
}
# the request files of a worker ($W), 0600: they may hold a key
req() { (umask 077 && printf '%s' "$1" >$D/req.$W.json); }
create_req() {
        ctl csi Controller.CreateVolume --json "{\"name\":\"$NAME\",\"capacityRange\":{\"requiredBytes\":\"$((32 * MiB))\"},
                \"volumeCapabilities\":[$MOUNT_CAP],\"parameters\":{\"csi.storage.k8s.io/pvc/namespace\":\"$TENANT\",
                \"csi.storage.k8s.io/pvc/name\":\"claim-$NAME\",\"iops\":\"5000\"$KEYSRC}}"
}
stage_req() {
        req "{\"volumeId\":\"$ID\",\"stagingTargetPath\":\"$STG\",\"volumeCapability\":$MOUNT_CAP$SECRETS}"
        ctl csi Node.NodeStageVolume --json @$D/req.$W.json
}
publish_req() {
        ctl csi Node.NodePublishVolume --json "{\"volumeId\":\"$ID\",\"stagingTargetPath\":\"$STG\",\"targetPath\":\"$TGT\",
                \"volumeCapability\":$MOUNT_CAP,\"readonly\":false}"
}
unpublish_req() { ctl csi Node.NodeUnpublishVolume --json "{\"volumeId\":\"$ID\",\"targetPath\":\"$TGT\"}"; }
unstage_req() { ctl csi Node.NodeUnstageVolume --json "{\"volumeId\":\"$ID\",\"stagingTargetPath\":\"$STG\"}"; }
delete_req() { ctl csi Controller.DeleteVolume --json "{\"volumeId\":\"$ID\"}"; }
fail_vol() { echo "$NAME: $*" >>$D/failures; return 1; }

# cycle NAME INDEX: the volume's whole life. Volume INDEX repeats one call
# (INDEX mod 6: create, stage, publish, unpublish, unstage, delete), as a
# retrying sidecar or kubelet would, and that call must succeed again.
cycle() {
        local NAME=$1 rep=$(($2 % 6)) ID id2 STG TGT TENANT KEYSRC SECRETS map dev
        if [ $(($2 % 2)) = 0 ]; then
                TENANT=team-a KEYSRC="" SECRETS=",\"secrets\":{\"key\":\"$(cat $D/key-a)\"}"
        else
                TENANT=team-b KEYSRC=',"keySource":"derived"' SECRETS=""
        fi
        STG=$(staging_of "$NAME")
        TGT=$K/pods/pod-$NAME/volumes/kubernetes.io~csi/pv-$NAME/mount
        mkdir -p "$STG" "$(dirname "$TGT")"
        ID=$(call CreateVolume create_req | jval volumeId)
        [ -n "$ID" ] || return 1
        if [ $rep = 0 ]; then
                id2=$(call CreateVolume create_req | jval volumeId)
                [ "$id2" = "$ID" ] || fail_vol "CreateVolume again gave '$id2', not $ID" || return 1
        fi
        call NodeStageVolume stage_req >/dev/null || return 1
        [ $rep = 1 ] && { call NodeStageVolume stage_req >/dev/null || return 1; }
        map=$(map_of "$ID")
        dev=$(devnum "$map") || fail_vol "no mapping $map" || return 1
        grep -q "^$dev .*riops=5000 wiops=5000" $CG/io.max || fail_vol "no io.max line for $dev" || return 1
        echo "$dev" >>$D/devices.$W
        call NodePublishVolume publish_req >/dev/null || return 1
        [ $rep = 2 ] && { call NodePublishVolume publish_req >/dev/null || return 1; }
        head -c 16384 /dev/urandom >$D/data.$W
        dd if=$D/data.$W of="$TGT/data" bs=4k oflag=direct conv=fsync status=none || fail_vol "write" || return 1
        dd if="$TGT/data" of=$D/read.$W bs=4k iflag=direct status=none || fail_vol "read back" || return 1
        cmp -s $D/data.$W $D/read.$W || fail_vol "read back other data than written" || return 1
        call NodeUnpublishVolume unpublish_req >/dev/null || return 1
        [ $rep = 3 ] && { call NodeUnpublishVolume unpublish_req >/dev/null || return 1; }
        [ ! -e "$TGT" ] || fail_vol "target left after unpublish" || return 1
        # what kubelet removes after the unpublish and the unstage
        rmdir "$(dirname "$TGT")" "$K/pods/pod-$NAME/volumes/kubernetes.io~csi" "$K/pods/pod-$NAME/volumes" "$K/pods/pod-$NAME" ||
                fail_vol "pod dirs not empty after unpublish" || return 1
        call NodeUnstageVolume unstage_req >/dev/null || return 1
        [ $rep = 4 ] && { call NodeUnstageVolume unstage_req >/dev/null || return 1; }
        [ ! -e /dev/mapper/$map ] || fail_vol "mapping left after unstage" || return 1
        rmdir "$STG" "$(dirname "$STG")" || fail_vol "staging dir not empty after unstage" || return 1
        call DeleteVolume delete_req >/dev/null || return 1
        [ $rep = 5 ] && { call DeleteVolume delete_req >/dev/null || return 1; }
        return 0
}
# worker W PREFIX FIRST COUNT STEP: volumes PREFIX-i for i = FIRST, FIRST+STEP, ... < COUNT
worker() {
        local W=$1 prefix=$2 i TIMES=$D/times.$1
        for ((i = $3; i < $4; i += $5)); do cycle "$prefix-$i" "$i"; done
}
# run_workers PREFIX COUNT N: N workers share the COUNT volumes
run_workers() {
        local w pids=()
        for ((w = 0; w < $3; w++)); do
                worker "$1$w" "$1" "$w" "$2" "$3" &
                pids+=($!)
        done
        wait "${pids[@]}"
}
# rss_sampler: the plugin's VmRSS (KiB) and thread count every 10 s into $D/rss.samples
# until $D/stop.scraper appears
rss_sampler() {
        while [ ! -e $D/stop.scraper ]; do
                echo "$(rss_kib VmRSS) $(rss_kib Threads)" >>$D/rss.samples
                sleep 10
        done
}
# server_p50 METHOD FROM: the median ms= of the plugin's log lines for
# /csi.v1.*/METHOD from line FROM on
server_p50() {
        tail -n +"$2" $D/csi.log | grep 'msg="rpc"' | grep "method=/csi.v1.[A-Za-z]*/$1 " | sed -n 's/.* ms=\([0-9]*\).*/\1/p' |
                sort -n | awk '{a[NR] = $1} END {print (NR ? a[int((NR + 1) / 2)] : "-")}'
}
# p50 OP: the median wall time of OP's calls in ms
p50() { cat $D/times.* | awk -v op="$1" '$1 == op {print $2}' | sort -n | awk '{a[NR] = $1} END {print (NR ? a[int((NR + 1) / 2)] : "-")}'; }
# pool_used: the thin pool's used data blocks (whichever dm device is its thin-pool target)
pool_used() { dmsetup status | awk -v p="$VG-pool" '$4 == "thin-pool" && index($1, p) == 1 {split($7, a, "/"); print a[1]}' | grep .; }

# ---- tests ----------------------------------------------------------------------

test_sanitized_plugin_starts_and_exits_cleanly_on_sigterm() {
        start_asan_plugin
        ctl csi Identity.Probe >/dev/null || t_fail "Probe"
        scrape_once $D/scrape.txt >/dev/null || t_fail "scrape"
        stop_asan_plugin || t_fail "still running 120 s after SIGTERM"
        [ "$(cat $D/rc)" = 0 ] || t_fail "exit status $(cat $D/rc) after SIGTERM: $(tail -5 $D/csi.log)"
}

# The RSS is read with the plugin idle, some seconds after the last call:
# ASan's allocator gives free memory back to the kernel every 5 s
# (allocator_release_to_os_interval_ms) while it is called.
IDLE=10
test_warm_up_then_rss_before() {
        local t0 spid
        pool_used >$D/pool.start || t_fail "no thin pool status"
        start_asan_plugin
        t0=$(date +%s)
        # The warm-up is the load in small: as many callers, one volume
        # each, every path, while scraped; so the threads, gRPC's and the
        # allocator's per-thread caches and the largest replies have been
        # seen once before "before" (a first run with 5 callers and no
        # concurrent scrape put "before" 8 MiB under the plateau the load
        # then held from its first minute on).
        rm -f $D/stop.scraper
        : >$D/scrapes
        scraper &
        spid=$!
        run_workers warm "$WORKERS" "$WORKERS"
        touch $D/stop.scraper
        wait $spid
        [ -s $D/failures ] && t_fail "warm-up: $(head -5 $D/failures)"
        grep -q '^fail ' $D/scrapes && t_fail "warm-up scrape: $(grep -m3 '^fail ' $D/scrapes)"
        grep -q '^ok ' $D/scrapes || t_fail "no scrape in the warm-up"
        sleep $IDLE
        rss_kib VmRSS >$D/rss.before
        say "    warm-up: $WORKERS volumes by $WORKERS callers, $(grep -c '^ok ' $D/scrapes) scrapes, in" \
                "$(($(date +%s) - t0)) s; plugin VmRSS $(($(cat $D/rss.before) / 1024)) MiB"
}

test_volumes_by_concurrent_callers_while_scraped_all_succeed() {
        local t0 t1 rpcs ok bad from m
        [ -f $D/pid ] || t_fail "the plugin is not running (the warm-up failed)"
        rm -f $D/times.* $D/devices.* $D/stop.scraper $D/rss.samples
        : >$D/scrapes
        from=$(($(wc -l <$D/csi.log) + 1))
        scraper &
        local spid=$!
        rss_sampler &
        local rpid=$!
        t0=$(date +%s)
        run_workers load "$COUNT" "$WORKERS"
        t1=$(date +%s)
        touch $D/stop.scraper
        wait $spid $rpid
        rpcs=$(cat $D/times.* | wc -l)
        ok=$(grep -c '^ok ' $D/scrapes)
        bad=$(grep -c '^fail ' $D/scrapes)
        echo $((t1 - t0)) >$D/wall
        say "    $COUNT volumes by $WORKERS callers in $((t1 - t0)) s: $rpcs RPCs succeeded," \
                "$(cat $D/failures 2>/dev/null | wc -l) failed; $ok scrapes ok (p50 $(awk '$1 == "ok" {print $2}' $D/scrapes |
                        sort -n | awk '{a[NR] = $1} END {print (NR ? a[int((NR + 1) / 2)] : "-")}') ms), $bad failed"
        say "    p50 ms: create $(p50 CreateVolume), stage $(p50 NodeStageVolume), publish $(p50 NodePublishVolume)," \
                "unpublish $(p50 NodeUnpublishVolume), unstage $(p50 NodeUnstageVolume), delete $(p50 DeleteVolume)" \
                "(thinvaultctl wall time)"
        for m in CreateVolume NodeStageVolume NodePublishVolume NodeUnpublishVolume NodeUnstageVolume DeleteVolume; do
                echo -n "$m $(server_p50 $m "$from"), "
        done | sed 's/, $//; s/^/    server-side p50 ms: /' >&3
        echo >&3
        say "    plugin VmRSS every 10 s (MiB): $(awk '{printf "%d ", $1 / 1024}' $D/rss.samples)"
        say "    plugin threads every 10 s: $(awk '{printf "%d ", $2}' $D/rss.samples)"
        [ -s $D/failures ] && t_fail "$(wc -l <$D/failures) failures, the first: $(head -5 $D/failures);" \
                "libdevmapper said: $(grep -m3 'device-mapper:' $D/csi.log)"
        # the plugin's reason is in its log (metrics_http.c logs why a
        # collection failed; the exposition only says pool_up 0)
        [ "$bad" = 0 ] || t_fail "failed scrapes: $(grep -m3 '^fail ' $D/scrapes | cut -c1-120);" \
                "$(grep -m3 -o 'the plugin: .*' $D/scrapes)"
        [ "$ok" -gt 0 ] || t_fail "no scrape"
        # every volume's six calls and its one repeated call
        [ "$rpcs" = $((COUNT * 7)) ] || t_fail "$rpcs RPCs, expected $((COUNT * 7))"
}

test_nothing_left_and_the_pool_back_to_its_start() {
        local lvs dev
        lvs=$(lvm_ lvs --noheadings -o lv_name $VG | tr -d ' ' | grep -v '^pool$' | grep -v '^\[')
        [ -z "$lvs" ] || t_fail "$(wc -l <<<"$lvs") LVs left: $(head -5 <<<"$lvs")"
        [ -z "$(dmsetup ls | grep '^tvc-')" ] || t_fail "mappings left: $(dmsetup ls | grep '^tvc-' | head -5)"
        grep -q " $K/" /proc/self/mountinfo && t_fail "mounts left: $(grep " $K/" /proc/self/mountinfo | head -5)"
        cat $D/devices.* >/dev/null 2>&1 || t_fail "no device was recorded"
        for dev in $(sort -u $D/devices.*); do
                grep -q "^$dev " $CG/io.max && t_fail "io.max line left: $(grep "^$dev " $CG/io.max)"
        done
        [ -z "$(find $K/pods -mindepth 1)" ] || t_fail "pods' dirs left: $(find $K/pods -mindepth 1 | head -5)"
        [ -z "$(find $K/plugins -mindepth 1 -path '*/thinvault.csi.io/*')" ] ||
                t_fail "plugin dirs left: $(find $K/plugins -mindepth 1 -path '*/thinvault.csi.io/*' | head -5)"
        say "    pool data blocks used: $(cat $D/pool.start) at the start, $(pool_used) now"
        [ "$(pool_used)" = "$(cat $D/pool.start)" ] || t_fail "pool data not back: $(pool_used) blocks, $(cat $D/pool.start) at the start"
}

test_rss_after_within_10_percent_of_before() {
        local before after hwm
        [ -f $D/pid ] || t_fail "the plugin is not running"
        sleep $IDLE
        before=$(cat $D/rss.before)
        after=$(rss_kib VmRSS)
        hwm=$(rss_kib VmHWM)
        say "    plugin VmRSS before $((before / 1024)) MiB ($before KiB), after $((after / 1024)) MiB ($after KiB), VmHWM $((hwm / 1024)) MiB"
        [ "$after" -le $((before * 110 / 100)) ] || t_fail "VmRSS grew from $before to $after KiB (more than 10%)"
}

test_sigterm_after_the_load_exits_cleanly_without_a_leak() {
        [ -f $D/pid ] || t_fail "the plugin is not running"
        stop_asan_plugin || t_fail "still running 120 s after SIGTERM"
        [ "$(cat $D/rc)" = 0 ] || t_fail "exit status $(cat $D/rc) after SIGTERM: $(tail -5 $D/csi.log)"
}

pool_remove $VG
remove_leftovers
rm -rf "$K/plugins" "$K/pods"
mkdir -p "$K/plugins" "$K/pods"
for t in test_sanitized_plugin_starts_and_exits_cleanly_on_sigterm test_warm_up_then_rss_before \
        test_volumes_by_concurrent_callers_while_scraped_all_succeed test_nothing_left_and_the_pool_back_to_its_start \
        test_rss_after_within_10_percent_of_before test_sigterm_after_the_load_exits_cleanly_without_a_leak; do
        t0=$(date +%s)
        t_run "$t"
        say "    ($(($(date +%s) - t0)) s)"
done
stop_asan_plugin
remove_leftovers
pool_remove $VG
t_summary
