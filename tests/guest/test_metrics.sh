#!/usr/bin/env bash
# The plugin's Prometheus endpoint against the real kernel in the guest:
# volumes created and staged through the plugin on a loop-file pool, a
# known amount written, and the scrape (curl) checked against what was
# written and what the kernel counts: write bytes, thin allocated bytes,
# limits in force, per-tenant sums, pool numbers, RPC counters. Prints how
# long a scrape takes.
set -uo pipefail
BUILD=${1:-$TV_BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/pool.sh"
CSI=$BUILD/csi/thinvault-csi
CTL=$BUILD/cli/thinvaultctl
D=/tmp/tv-metrics
VG=tvmet
SOCK=$D/csi.sock
K=$D/kubelet
CG=/sys/fs/cgroup/kubepods # stands in for the kubelet's pods cgroup
MiB=1048576
JQ=/usr/bin/jq
mkdir -p $D $K/plugins
[ -d $CG ] || mkdir $CG
: >$D/csi.log
: >$D/figures
[ -f $D/key ] || head -c 32 /dev/urandom | base64 -w0 >$D/key
KEY=$(cat $D/key)

ctl() { timeout 300 "$CTL" --endpoint "unix://$SOCK" --timeout 290 "$@"; }
dm_of() { echo "$VG-$(sed 's/-/--/g' <<<"$1")"; }
mapped_of() { echo $(($(dmsetup status "$(dm_of "$1")" | awk '{print $4}') * 512)); }

MOUNT_CAP='{"mount":{"fsType":"ext4"},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}'
BLOCK_CAP='{"block":{},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}'
# create NAME TENANT BYTES CAPABILITY [extra parameters]: prints the volume id
create() {
        ctl csi Controller.CreateVolume --json "{\"name\":\"$1\",\"capacityRange\":{\"requiredBytes\":\"$3\"},
                \"volumeCapabilities\":[$4],
                \"parameters\":{\"csi.storage.k8s.io/pvc/namespace\":\"$2\",\"csi.storage.k8s.io/pvc/name\":\"claim-$1\"${5:-}}}" |
                $JQ -r .volume.volumeId
}
# stage ID PATH CAPABILITY (the key goes through a 0600 file, not argv)
stage() {
        (umask 077 && printf '{"volumeId":"%s","stagingTargetPath":"%s","volumeCapability":%s,"secrets":{"key":"%s"}}' \
                "$1" "$2" "$3" "$KEY" >$D/req.json)
        ctl csi Node.NodeStageVolume --json @$D/req.json >/dev/null
}
unstage() { ctl csi Node.NodeUnstageVolume --json "{\"volumeId\":\"$1\",\"stagingTargetPath\":\"$2\"}" >/dev/null; }

# scrape FILE: GET /metrics into FILE, headers into FILE.h
scrape() { curl -sS -m 120 -D "$1.h" -o "$1" "http://127.0.0.1:$PORT/metrics"; }
# val FILE SAMPLE: the value of the sample line that starts with SAMPLE
val() { awk -v s="$2" 'index($0, s " ") == 1 {print $NF}' "$1"; }
# sum FILE FAMILY MATCH: sum of FAMILY's samples whose labels contain MATCH
sum() { awk -v f="$2{" -v m="$3" 'index($0, f) == 1 && index($0, m) {s += $NF} END {printf "%.0f\n", s}' "$1"; }
# count FILE FAMILY MATCH: how many such samples
count() { awk -v f="$2{" -v m="$3" 'index($0, f) == 1 && index($0, m) {n++} END {print n + 0}' "$1"; }
# labels LV: the label set of a volume's samples
labels() { echo "{volume=\"$1\",tenant=\"$2\",pvc_namespace=\"$2\",pvc_name=\"claim-$3\"}"; }

stop_plugin() {
        local pid i
        pid=$(cat $D/pid 2>/dev/null) || return 0
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null
        rm -f $D/pid
}

# ---- the fixture: the plugin on a loop-file pool, three volumes -----------------
STG1=$K/plugins/kubernetes.io/csi/thinvault.csi.io/m1/globalmount
STG2=$K/plugins/kubernetes.io/csi/thinvault.csi.io/m2/globalmount
fixture() {
        # The guest boots with -net none and its loopback down: the scrape
        # goes over 127.0.0.1.
        ip link set lo up || return 1
        pool_remove $VG
        "$CSI" --endpoint "unix://$SOCK" --node-id node-m --vg $VG --thin-pool pool --loop-file /tmp/$VG.img \
                --loop-size 256M --kubelet-dir $K --metrics-address 127.0.0.1:0 >/dev/null 2>>$D/csi.log &
        echo $! >$D/pid
        local i
        for i in $(seq 240); do
                ctl csi Identity.GetPluginInfo >/dev/null 2>&1 && break
                kill -0 "$(cat $D/pid)" 2>/dev/null || return 1
                sleep 0.5
        done
        PORT=$(grep -o 'msg="serving metrics" .* port=[0-9]*' $D/csi.log | sed 's/.*port=//')
        [ -n "$PORT" ] || return 1
        echo "$PORT" >$D/port
        # team-m: M1 mounted with limits, M2 raw block; team-n: N1 not staged
        M1=$(create m1 team-m $((32 * MiB)) "$MOUNT_CAP" ',"readIOPS":"300","writeIOPS":"200","writeBytesPerSecond":"8388608"') &&
                M2=$(create m2 team-m $((32 * MiB)) "$BLOCK_CAP") &&
                N1=$(create n1 team-n $((16 * MiB)) "$MOUNT_CAP") || return 1
        printf '%s\n' "$M1" "$M2" "$N1" >$D/ids
        mkdir -p "$(dirname $STG1)" "$(dirname $STG2)"
        stage "$M1" $STG1 "$MOUNT_CAP" && stage "$M2" $STG2 "$BLOCK_CAP"
}
if ! fixture >$D/fixture.log 2>&1; then
        echo "FAIL fixture"
        sed 's/^/    /' $D/fixture.log | tail -20
        tail -5 $D/csi.log | sed 's/^/    /'
        stop_plugin
        echo "0 passed, 1 failed"
        exit 1
fi
{ read -r M1; read -r M2; read -r N1; } <$D/ids
LV1=${M1#*:} LV2=${M2#*:} LVN=${N1#*:}
L1=$(labels "$LV1" team-m m1)
L2=$(labels "$LV2" team-m m2)
LN=$(labels "$LVN" team-n n1)

# ---- tests --------------------------------------------------------------------------

test_scrape_is_the_text_format_with_every_volume() {
        scrape $D/s0 || t_fail "curl"
        grep -q '^HTTP/1.1 200' $D/s0.h || t_fail "status: $(head -1 $D/s0.h)"
        grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' $D/s0.h || t_fail "content type"
        [ "$(val $D/s0 "thinvault_pool_up{vg=\"$VG\",thin_pool=\"pool\"}")" = 1 ] || t_fail "pool not up: $(head -c 600 $D/s0)"
        [ "$(val $D/s0 "thinvault_volume_provisioned_bytes$L1")" = $((32 * MiB)) ] || t_fail "M1 provisioned"
        [ "$(val $D/s0 "thinvault_volume_provisioned_bytes$LN")" = $((16 * MiB)) ] || t_fail "N1 provisioned"
        [ "$(val $D/s0 "thinvault_volume_staged$L1")/$(val $D/s0 "thinvault_volume_staged$L2")/$(val $D/s0 "thinvault_volume_staged$LN")" = 1/1/0 ] ||
                t_fail "staged: $(grep volume_staged $D/s0)"
        # every family announced once, every sample line well formed
        [ "$(grep -c '^# TYPE ' $D/s0)" = "$(grep '^# TYPE ' $D/s0 | sort -u | wc -l)" ] || t_fail "a family twice"
        grep -v '^#' $D/s0 | grep -vE '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$' |
                grep . && t_fail "malformed sample lines above"
        return 0
}

test_limits_in_force_match_the_storage_class_parameters() {
        scrape $D/s1 || t_fail "curl"
        [ "$(val $D/s1 "thinvault_volume_limit_read_iops$L1")" = 300 ] || t_fail "riops: $(grep volume_limit $D/s1)"
        [ "$(val $D/s1 "thinvault_volume_limit_write_iops$L1")" = 200 ] || t_fail "wiops"
        [ "$(val $D/s1 "thinvault_volume_limit_write_bytes_per_second$L1")" = 8388608 ] || t_fail "wbps"
        grep -q "^thinvault_volume_limit_read_bytes_per_second$L1" $D/s1 && t_fail "rbps is max but reported"
        [ "$(count $D/s1 thinvault_volume_limit_read_iops "volume=\"$LV2\"")" = 0 ] || t_fail "M2 has no limits"
        return 0
}

test_write_bytes_and_allocated_move_by_what_was_written() {
        local chunk w0 w1 o0 o1 a0 a1 p0 p1
        scrape $D/b || t_fail "curl before"
        w0=$(val $D/b "thinvault_volume_write_bytes_total$L2")
        o0=$(val $D/b "thinvault_volume_write_ops_total$L2")
        a0=$(val $D/b "thinvault_volume_allocated_bytes$L2")
        p0=$(val $D/b "thinvault_pool_data_used_bytes{vg=\"$VG\",thin_pool=\"pool\"}")
        [ -n "$w0" ] && [ -n "$a0" ] || t_fail "no counters for M2: $(grep "volume=\"$LV2\"" $D/b)"
        [ "$a0" = "$(mapped_of $LV2)" ] || t_fail "allocated $a0 != kernel $(mapped_of $LV2)"
        chunk=$(($(dmsetup table $VG-pool-tpool | awk '{print $6}') * 512))
        # 4 MiB, 4 MiB into the plaintext device: whole chunks, direct I/O
        dd if=/dev/urandom of=/dev/mapper/tvc-$LV2 bs=1M seek=4 count=4 oflag=direct status=none || t_fail "dd"
        scrape $D/a || t_fail "curl after"
        w1=$(val $D/a "thinvault_volume_write_bytes_total$L2")
        o1=$(val $D/a "thinvault_volume_write_ops_total$L2")
        a1=$(val $D/a "thinvault_volume_allocated_bytes$L2")
        p1=$(val $D/a "thinvault_pool_data_used_bytes{vg=\"$VG\",thin_pool=\"pool\"}")
        echo "wrote 4 MiB: write bytes +$((w1 - w0)), write ops +$((o1 - o0)), allocated +$((a1 - a0)), pool data +$((p1 - p0)) (chunk $chunk)" >>$D/figures
        [ $((w1 - w0)) = $((4 * MiB)) ] || t_fail "write bytes moved by $((w1 - w0)), wrote $((4 * MiB))"
        [ $((o1 - o0)) -ge 4 ] || t_fail "write ops moved by $((o1 - o0))"
        [ $((a1 - a0)) -ge $((4 * MiB)) ] && [ $((a1 - a0)) -le $((4 * MiB + 2 * chunk)) ] ||
                t_fail "allocated moved by $((a1 - a0)) for 4 MiB (chunk $chunk)"
        [ "$a1" = "$(mapped_of $LV2)" ] || t_fail "allocated $a1 != kernel $(mapped_of $LV2)"
        [ $((p1 - p0)) -ge $((4 * MiB)) ] || t_fail "pool data used moved by $((p1 - p0))"
        # and the mounted volume: fs used is df's, and grows with a file
        dd if=/dev/urandom of=$STG1/f bs=1M count=4 oflag=direct status=none && sync || t_fail "dd to the file system"
        scrape $D/f || t_fail "curl fs"
        [ "$(val $D/f "thinvault_volume_fs_used_bytes$L1")" = "$(df -B1 --output=used $STG1 | tail -1 | tr -d ' ')" ] ||
                t_fail "fs used $(val $D/f "thinvault_volume_fs_used_bytes$L1") != df"
        [ "$(val $D/f "thinvault_volume_fs_used_bytes$L1")" -ge $((4 * MiB)) ] || t_fail "fs used below 4 MiB"
        [ "$(val $D/f "thinvault_volume_fs_used_inodes$L1")" -gt 0 ] || t_fail "inodes used"
}

test_tenant_sums_equal_the_sums_of_their_volumes() {
        local t f
        scrape $D/t || t_fail "curl"
        for t in team-m team-n; do
                for f in provisioned_bytes:provisioned_bytes allocated_bytes:allocated_bytes used_bytes:fs_used_bytes; do
                        local tf=${f%%:*} vf=${f#*:} tv sv
                        tv=$(val $D/t "thinvault_tenant_$tf{tenant=\"$t\"}")
                        sv=$(sum $D/t "thinvault_volume_$vf" "tenant=\"$t\"")
                        [ "$tv" = "$sv" ] || t_fail "$t $tf: tenant $tv, sum of volumes $sv"
                done
                [ "$(val $D/t "thinvault_tenant_volumes{tenant=\"$t\"}")" = "$(count $D/t thinvault_volume_provisioned_bytes "tenant=\"$t\"")" ] ||
                        t_fail "$t volumes"
        done
        [ "$(val $D/t 'thinvault_tenant_volumes{tenant="team-m"}')" = 2 ] || t_fail "team-m has 2 volumes"
        [ "$(val $D/t 'thinvault_tenant_provisioned_bytes{tenant="team-m"}')" = $((64 * MiB)) ] || t_fail "team-m provisioned"
        local virt total ratio
        virt=$(val $D/t "thinvault_pool_virtual_bytes{vg=\"$VG\",thin_pool=\"pool\"}")
        total=$(val $D/t "thinvault_pool_data_total_bytes{vg=\"$VG\",thin_pool=\"pool\"}")
        ratio=$(val $D/t "thinvault_pool_overprovision_ratio{vg=\"$VG\",thin_pool=\"pool\"}")
        [ "$virt" = $((80 * MiB)) ] || t_fail "virtual $virt"
        awk -v r="$ratio" -v e="$(awk -v v="$virt" -v t="$total" 'BEGIN {print v / t}')" 'BEGIN {exit !(r - e < 1e-6 && e - r < 1e-6)}' ||
                t_fail "ratio $ratio != $virt / $total"
}

test_rpc_counters_count_what_the_plugin_served() {
        scrape $D/r || t_fail "curl"
        [ "$(val $D/r 'thinvault_rpc_requests_total{method="Controller.CreateVolume",code="OK"}')" = 3 ] ||
                t_fail "CreateVolume: $(grep rpc_requests $D/r)"
        [ "$(val $D/r 'thinvault_rpc_requests_total{method="Node.NodeStageVolume",code="OK"}')" = 2 ] || t_fail "NodeStageVolume"
        [ "$(val $D/r 'thinvault_rpc_duration_seconds_count{method="Node.NodeStageVolume"}')" = 2 ] || t_fail "histogram count"
        [ "$(val $D/r 'thinvault_rpc_duration_seconds_bucket{method="Node.NodeStageVolume",le="0.001"}')" = 0 ] ||
                t_fail "a stage under 1 ms?"
}

test_scrape_runs_beside_a_create_and_rpcs_answer_during_scrapes() {
        local t0 ms pid i
        ( create m4 team-n $((16 * MiB)) "$MOUNT_CAP" >$D/m4 ) &
        pid=$!
        t0=$(date +%s%N)
        scrape $D/c || t_fail "scrape beside a CreateVolume"
        ms=$((($(date +%s%N) - t0) / 1000000))
        echo "scrape beside a CreateVolume: $ms ms" >>$D/figures
        wait $pid || t_fail "CreateVolume beside a scrape failed"
        [ -s $D/m4 ] || t_fail "no volume id"
        # NodeGetInfo while two scrapes run: the plugin's own time for each
        # call (its log line's ms, without the CLI's start-up, which the
        # loaded guest makes slow) stays far below a scrape's
        local n0 slow
        n0=$(grep -c 'method=/csi.v1.Node/NodeGetInfo ' $D/csi.log)
        local s1 s2 calls=0 during=0
        (scrape $D/c1) &
        s1=$!
        (scrape $D/c2) &
        s2=$!
        sleep 0.5
        # calls for as long as a scrape runs (at least one, at most 5);
        # `during` counts those that ended with a scrape still running
        while [ $calls -lt 5 ]; do
                ctl csi Node.NodeGetInfo >/dev/null || t_fail "NodeGetInfo during scrapes"
                calls=$((calls + 1))
                kill -0 $s1 2>/dev/null || kill -0 $s2 2>/dev/null || break
                during=$((during + 1))
        done
        wait $s1 $s2 || t_fail "a scrape failed"
        grep 'method=/csi.v1.Node/NodeGetInfo ' $D/csi.log | tail -n +$((n0 + 1)) | grep -o ' ms=[0-9]*' >$D/nodeinfo.ms
        [ "$(wc -l <$D/nodeinfo.ms)" = $calls ] || t_fail "expected $calls NodeGetInfo log lines: $(cat $D/nodeinfo.ms)"
        slow=$(awk -F= '$2 >= 1000' $D/nodeinfo.ms)
        [ -z "$slow" ] || t_fail "NodeGetInfo took$slow in the plugin during scrapes"
        echo "NodeGetInfo x$calls during two scrapes ($during ended with a scrape still running), plugin side:$(tr '\n' ' ' <$D/nodeinfo.ms)" >>$D/figures
        ctl csi Controller.DeleteVolume --json "{\"volumeId\":\"$(cat $D/m4)\"}" >/dev/null || t_fail "delete m4"
}

t_run test_scrape_is_the_text_format_with_every_volume
t_run test_limits_in_force_match_the_storage_class_parameters
t_run test_write_bytes_and_allocated_move_by_what_was_written
t_run test_tenant_sums_equal_the_sums_of_their_volumes
t_run test_rpc_counters_count_what_the_plugin_served
t_run test_scrape_runs_beside_a_create_and_rpcs_answer_during_scrapes
# what the tests measured, and the cost of a scrape, shown in a passing run too
cat $D/figures 2>/dev/null
for i in 1 2 3; do
        t0=$(date +%s%N)
        scrape $D/p >/dev/null 2>&1
        echo "scrape of $(grep -c '^thinvault_volume_provisioned_bytes{' $D/p) volumes: $((($(date +%s%N) - t0) / 1000000)) ms wall, collection $(val $D/p thinvault_scrape_duration_seconds) s"
done

unstage "$M1" $STG1 || echo "warning: unstage M1 failed"
unstage "$M2" $STG2 || echo "warning: unstage M2 failed"
stop_plugin
for m in /dev/mapper/tvc-*; do [ -e "$m" ] && dmsetup remove "${m##*/}" 2>/dev/null; done
pool_remove $VG
t_summary
