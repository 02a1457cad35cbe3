#!/usr/bin/env bash
# Load (issue 8 item 4): TV_LOAD_VOLUMES (default 200) volumes, each
# created, staged, published, written and read back, unpublished,
# unstaged and deleted by TV_LOAD_WORKERS concurrent callers (default 6),
# across two tenants (team-a with a Secret's key, team-b with a key derived
# from the node's master key), every volume with an io.max budget, some
# calls repeated to prove idempotency under load, while a scraper GETs
# /metrics every 3 s (tests/load/tv-load is the callers and the scraper).
# Two plugins take the load at the same time, each on a volume group,
# kubelet dir and socket of its own, each after a warm-up:
# 1. "asan": the ASan+UBSan build tests/run's sanitize stage makes
#    (build-asan beside this checkout, or $TV_ASAN_BUILD): any
#    AddressSanitizer, LeakSanitizer (at the exit after SIGTERM) or UBSan
#    report fails;
# 2. "plain": the plain build, the plugin as it is shipped: its VmRSS
#    after the load may be at most 10% over its VmRSS before it. Not on the ASan
#    build: ASan's own memory (allocation stacks it records, quarantine,
#    per-thread caches) grows with every new call path; on the host, 3600
#    Probe calls took an ASan plugin from 39 to 50 MiB while the plain
#    build stayed within 0.2 MiB, and a 30-volume load in the guest from
#    37 to 48 MiB with LeakSanitizer finding nothing.
# For both, a failed RPC or scrape, anything left behind (LVs, mappings,
# mounts, io.max lines, kubelet dirs, pool space) or an unclean exit on
# SIGTERM fails. At the same time because lvm2 serializes each VG's
# lvcreate and lvremove: one load leaves much of the guest's second vCPU
# idle, two take little longer than one.
# suite-timeout: 2700
set -uo pipefail
BUILD=${1:-$TV_BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/pool.sh"
ROOT=/tmp/tv-load
CG=/sys/fs/cgroup/kubepods # stands in for the kubelet's pods cgroup
LOOP_SIZE=384M
# use INSTANCE: point D (its scratch dir), SOCK, K, VG and CSI at the asan
# or the plain plugin's; every helper below works on the one in use. The
# two name their volumes apart (a... and p...): a volume's LV name comes
# from its CSI name, and its LUKS mapping tvc-<lv> lives in the node's one
# device-mapper namespace, whichever VG the LV is in.
use() {
        I=$1
        D=$ROOT/$1
        case $1 in
        asan) VG=tvload CSI=$ASAN_CSI ;;
        plain) VG=tvloadp CSI=$PLAIN_CSI ;;
        esac
        K=$D/kubelet
        SOCK=$D/csi.sock
        mkdir -p "$D" "$K/plugins" "$K/pods"
}
ASAN_BUILD=${TV_ASAN_BUILD:-$HERE/../../build-asan}
ASAN_CSI=$ASAN_BUILD/csi/thinvault-csi
PLAIN_CSI=$BUILD/csi/thinvault-csi
use asan
. "$HERE/plugin.sh"
use asan # plugin.sh set CSI to $BUILD's
COUNT=${TV_LOAD_VOLUMES:-200}
WORKERS=${TV_LOAD_WORKERS:-6}
SCRAPE_EVERY=${TV_LOAD_SCRAPE_EVERY:-3}
SANREP=$ROOT/sanitizer
rm -rf "$SANREP" $ROOT/asan $ROOT/plain
mkdir -p "$SANREP"
[ -d $CG ] || mkdir $CG
grep -qw io $CG/cgroup.subtree_control || echo +io >$CG/cgroup.subtree_control || true
[ -f $ROOT/key-a ] || head -c 32 /dev/urandom | base64 -w0 >$ROOT/key-a
[ -f $ROOT/master ] || { head -c 32 /dev/urandom >$ROOT/master && chmod 600 $ROOT/master; }
exec 3>&1
# say "    TEXT": one line of the report, marked with the plugin in use
say() {
        local m="$*"
        echo "    [$I] ${m#    }" >&3
}
t_after() {
        local i
        for i in asan plain; do (use $i && { [ -f $D/pid ] || remove_leftovers; }); done
}
# both FUNCTION [ARGS]: FUNCTION for each plugin at once; fails when either
# fails, with what each said
both() {
        local a p ra rp
        (use asan && "$@") >$ROOT/both.asan 2>&1 &
        a=$!
        (use plain && "$@") >$ROOT/both.plain 2>&1 &
        p=$!
        wait $a
        ra=$?
        wait $p
        rp=$?
        [ $ra = 0 ] || echo "    [asan] $(tail -n 5 $ROOT/both.asan)"
        [ $rp = 0 ] || echo "    [plain] $(tail -n 5 $ROOT/both.plain)"
        [ $ra = 0 ] && [ $rp = 0 ]
}

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
        if grep -q 'runtime error:' $ROOT/asan/csi.log 2>/dev/null; then
                found=1
                echo "UBSan report in the plugin's log:"
                grep -m1 -A12 'runtime error:' $ROOT/asan/csi.log
        fi
        return $found
}

# start_load_plugin: the plugin in use with a master key, the metrics
# endpoint on a free port of 127.0.0.1 (in $D/port); its exit status goes
# to $D/rc. The sanitizer options only matter to the ASan build.
start_load_plugin() {
        local i
        [ "$I" != asan ] || { [ -x "$ASAN_CSI" ] && grep -q '^TV_SANITIZE:STRING=.*address' "$ASAN_BUILD/CMakeCache.txt"; } ||
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
                        --master-key $ROOT/master --metrics-address 127.0.0.1:0 --lvm-timeout 240 \
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
# stop_load_plugin: SIGTERM, wait for its exit status (in $D/rc)
stop_load_plugin() {
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
# run_load PREFIX COUNT: tests/load/tv-load's $WORKERS callers take COUNT
# volumes PREFIX-i through their whole life (create, stage, publish, write
# and read back, unpublish, unstage, delete; volume i repeats one of the six
# calls, i mod 6, as a retrying sidecar or kubelet would) while it GETs
# /metrics every $SCRAPE_EVERY s (TV_LOAD_SCRAPE_EVERY, default 3: each
# scrape runs one lvs). One process and not a shell per caller: a shell
# worker spent more of the emulated guest's CPU on starting thinvaultctl
# (~1 s a call) and `date` than the plugin and lvm2 spent on the volume.
# It writes $D/times.W ("METHOD MS" per call), $D/devices.W (each staged
# mapping's MAJ:MIN), $D/failures ("NAME: what") and $D/scrapes ("ok MS" or
# "fail MS why"); see tests/load/load.c.
run_load() {
        "$BUILD/tests/load/tv-load" --endpoint "unix://$SOCK" --dir $D --kubelet-dir "$K" --cgroup $CG \
                --key-a $ROOT/key-a --count "$2" --workers "$WORKERS" --prefix "$1" \
                --metrics-port "$(cat $D/port)" --vg $VG --scrape-every "$SCRAPE_EVERY"
}
# rss_sampler: the plugin's VmRSS (KiB) and thread count every 10 s into $D/rss.samples
# until $D/stop.scraper appears
rss_sampler() {
        while [ ! -e $D/stop.scraper ]; do
                echo "$(rss_kib VmRSS) $(rss_kib Threads)" >>$D/rss.samples
                sleep 10
        done
}
# median: of the numbers on stdin, one a line ("-" for none)
median() { sort -n | awk '{a[NR] = $1} END {print (NR ? a[int((NR + 1) / 2)] : "-")}'; }
# server_p50 METHOD FROM: the median ms= of the plugin's log lines for
# /csi.v1.*/METHOD from line FROM on
server_p50() {
        tail -n +"$2" $D/csi.log | grep 'msg="rpc"' | grep "method=/csi.v1.[A-Za-z]*/$1 " | sed -n 's/.* ms=\([0-9]*\).*/\1/p' | median
}
# p50 OP: the median wall time of OP's calls in ms
p50() { cat $D/times.* | awk -v op="$1" '$1 == op {print $2}' | median; }
# pool_used: the thin pool's used data blocks (whichever dm device is its thin-pool target)
pool_used() { dmsetup status | awk -v p="$VG-pool" '$4 == "thin-pool" && index($1, p) == 1 {split($7, a, "/"); print a[1]}' | grep .; }

# ---- the phases -----------------------------------------------------------------

# The RSS is read with the plugin idle, some seconds after the last call.
IDLE=10

# warm_up: start the plugin in use and run the load in small, every path,
# while scraped: one volume per caller for asan, three for plain, whose
# VmRSS then goes to $D/rss.before. After three per caller every worker
# thread has served every kind of call and glibc's per-thread arenas have
# grown to what the load needs (one per caller left "before" 1.5 MiB under
# the level the load then held from its first minute).
warm_up() {
        local t0 n=$WORKERS
        [ "$I" = plain ] && n=$((3 * WORKERS))
        start_load_plugin
        ctl csi Identity.Probe >/dev/null || t_fail "Probe"
        pool_used >$D/pool.start || t_fail "no thin pool status"
        t0=$(date +%s)
        rm -f $D/scrapes $D/failures
        run_load "${I:0:1}warm" "$n" || [ -s $D/failures ] || t_fail "tv-load failed without saying why"
        [ -s $D/failures ] && t_fail "warm-up: $(head -5 $D/failures)"
        grep -q '^fail ' $D/scrapes && t_fail "warm-up scrape: $(grep -m3 '^fail ' $D/scrapes)"
        grep -q '^ok ' $D/scrapes || t_fail "no scrape in the warm-up"
        sleep $IDLE
        rss_kib VmRSS >$D/rss.before
        say "    warm-up: $n volumes by $WORKERS callers, $(grep -c '^ok ' $D/scrapes) scrapes, in" \
                "$(($(date +%s) - t0)) s; plugin VmRSS $(($(cat $D/rss.before) / 1024)) MiB"
}

# load: $COUNT volumes by $WORKERS callers while scraped; every call and
# scrape must succeed
load() {
        local t0 t1 rpcs ok bad from m
        [ -f $D/pid ] || t_fail "the plugin is not running (the warm-up failed)"
        rm -f $D/times.* $D/devices.* $D/stop.scraper $D/rss.samples $D/scrapes $D/failures
        from=$(($(wc -l <$D/csi.log) + 1))
        rss_sampler &
        local rpid=$!
        t0=$(date +%s)
        run_load "${I:0:1}load" "$COUNT" || [ -s $D/failures ] || t_fail "tv-load failed without saying why"
        t1=$(date +%s)
        touch $D/stop.scraper
        wait $rpid
        rpcs=$(cat $D/times.* | wc -l)
        ok=$(grep -c '^ok ' $D/scrapes)
        bad=$(grep -c '^fail ' $D/scrapes)
        say "    $COUNT volumes by $WORKERS callers in $((t1 - t0)) s: $rpcs RPCs succeeded," \
                "$(cat $D/failures 2>/dev/null | wc -l) failed; $ok scrapes ok (p50 $(awk '$1 == "ok" {print $2}' $D/scrapes | median) ms)," \
                "$bad failed"
        say "    p50 ms: create $(p50 CreateVolume), stage $(p50 NodeStageVolume), publish $(p50 NodePublishVolume)," \
                "unpublish $(p50 NodeUnpublishVolume), unstage $(p50 NodeUnstageVolume), delete $(p50 DeleteVolume)" \
                "(caller wall time)"
        say "    server-side p50 ms: $(for m in CreateVolume NodeStageVolume NodePublishVolume NodeUnpublishVolume \
                NodeUnstageVolume DeleteVolume; do echo -n "$m $(server_p50 $m "$from"), "; done | sed 's/, $//')"
        say "    plugin VmRSS every 10 s (MiB): $(awk '{printf "%d ", $1 / 1024}' $D/rss.samples)"
        say "    plugin threads every 10 s: $(awk '{printf "%d ", $2}' $D/rss.samples)"
        [ -s $D/failures ] && t_fail "$(wc -l <$D/failures) failures, the first: $(head -5 $D/failures);" \
                "libdevmapper said: $(grep -m3 'device-mapper:' $D/csi.log)"
        # the plugin's reason is in its log (metrics_http.c logs why a
        # collection failed; the exposition only says pool_up 0)
        [ "$bad" = 0 ] || t_fail "failed scrapes: $(grep -m3 '^fail ' $D/scrapes | cut -c1-300)"
        [ "$ok" -gt 0 ] || t_fail "no scrape"
        # every volume's six calls and its one repeated call
        [ "$rpcs" = $((COUNT * 7)) ] || t_fail "$rpcs RPCs, expected $((COUNT * 7))"
}

nothing_left() {
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

sigterm_exits_cleanly() {
        [ -f $D/pid ] || t_fail "the plugin is not running"
        stop_load_plugin || t_fail "still running 120 s after SIGTERM"
        [ "$(cat $D/rc)" = 0 ] || t_fail "exit status $(cat $D/rc) after SIGTERM: $(tail -5 $D/csi.log)"
}

# ---- tests ----------------------------------------------------------------------

test_sanitized_plugin_starts_and_exits_cleanly_on_sigterm() {
        use asan
        start_load_plugin
        ctl csi Identity.Probe >/dev/null || t_fail "Probe"
        scrape_once $D/scrape.txt >/dev/null || t_fail "scrape"
        sigterm_exits_cleanly
}
test_both_plugins_warm_up() { both warm_up; }
test_volumes_by_concurrent_callers_while_scraped_all_succeed() { both load; }
test_nothing_left_and_the_pools_back_to_their_start() { both nothing_left; }
test_plain_rss_after_within_10_percent_of_before() {
        local before after hwm
        use plain
        [ -f $D/pid ] || t_fail "the plugin is not running"
        sleep $IDLE
        before=$(cat $D/rss.before)
        after=$(rss_kib VmRSS)
        hwm=$(rss_kib VmHWM)
        say "    plugin VmRSS before $((before / 1024)) MiB ($before KiB), after $((after / 1024)) MiB ($after KiB), VmHWM $((hwm / 1024)) MiB"
        [ "$after" -le $((before * 110 / 100)) ] || t_fail "VmRSS grew from $before to $after KiB (more than 10%)"
}
# asan: LeakSanitizer checks the whole run at this exit
test_sigterm_after_the_load_exits_cleanly_without_a_leak() { both sigterm_exits_cleanly; }

for i in asan plain; do
        use $i
        pool_remove $VG
        remove_leftovers
        rm -rf "$K/plugins" "$K/pods"
        mkdir -p "$K/plugins" "$K/pods"
done
for t in test_sanitized_plugin_starts_and_exits_cleanly_on_sigterm test_both_plugins_warm_up \
        test_volumes_by_concurrent_callers_while_scraped_all_succeed test_nothing_left_and_the_pools_back_to_their_start \
        test_plain_rss_after_within_10_percent_of_before test_sigterm_after_the_load_exits_cleanly_without_a_leak; do
        t0=$(date +%s)
        t_run "$t"
        echo "    ($(($(date +%s) - t0)) s)"
done
for i in asan plain; do
        use $i
        stop_load_plugin
        remove_leftovers
        pool_remove $VG
done
t_summary
