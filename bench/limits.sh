#!/usr/bin/env bash
# bench/limits.sh: how exactly the kernel holds a volume to the I/O budget
# the driver sets, and how long a live change takes to show (issue 5, item
# 5). Runs INSIDE the QEMU guest; `bench/run limits` starts it through
# tests/vm/run-in-guest and keeps what it prints. Nothing outlives the
# guest: everything is on stdout.
#
# Usage (guest only): bench/limits.sh BUILD_DIR
# Environment (all optional; run-in-guest passes TV_* through):
#   TV_BENCH_IOPS          IOPS limits measured (default "100 500 2000")
#   TV_BENCH_BW            bandwidth limits in MiB/s (default "2 8")
#   TV_BENCH_FIO_RUNTIME   seconds per IOPS run (default 5, after 1 s ramp)
#   TV_BENCH_BW_RUNTIME    seconds per bandwidth run (default 8, after 1 s ramp)
#   TV_BENCH_NUMJOBS       fio jobs (default: 4, or 8 when 8 do more
#                          unlimited IOPS in this guest)
#   TV_BENCH_MODIFY_REPS   ControllerModifyVolume changes timed (default 4)
#   TV_BENCH_LOCAL_LVM     0: leave lvm2 on 9p
#
# Accuracy: for each limit, a 128 MiB block-mode volume is made the
# driver's way (CreateVolume with readIOPS/writeIOPS or readBytesPerSecond/
# writeBytesPerSecond parameters, then NodeStageVolume, which writes io.max
# on the kubepods cgroup) and fio runs from a process in kubepods/pod-bench
# (as a pod's would): 4k random direct I/O for IOPS, 1 MiB sequential
# for bandwidth, on the first 64 MiB (written beforehand from outside the
# pods cgroup, unthrottled). Baseline: a volume without limits, same fio.
#
# Change: fio randread runs in the pod against a volume staged with
# readIOPS=LO while a loop samples /sys/block/dm-N/stat every 100 ms; 3 s
# after fio's reads start, ControllerModifyVolume (mutable_parameters readIOPS=HI, then back to
# LO, alternating) is called; time-to-effect is from the RPC's start to the
# first moment after which the read rate over the next 1 s, and the 1 s
# after that, are both within 10% of the new limit.
set -uo pipefail

BUILD=${1:-${TV_BUILD:-}}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
NAME=limits
. "$HERE/lib.sh"
IOPS_LIMITS=${TV_BENCH_IOPS:-100 500 2000}
BW_LIMITS=${TV_BENCH_BW:-2 8}
RT=${TV_BENCH_FIO_RUNTIME:-5}
BW_RT=${TV_BENCH_BW_RUNTIME:-8}
NJ=${TV_BENCH_NUMJOBS:-}
MOD_REPS=${TV_BENCH_MODIFY_REPS:-4}
LOCAL=${TV_BENCH_LOCAL_LVM:-1}

guest_only
[ -n "$BUILD" ] || die "usage: bench/limits.sh BUILD_DIR"
BUILD=$(cd "$BUILD" && pwd) || die "no build directory $BUILD"
CSI=$BUILD/csi/thinvault-csi
CTL=$BUILD/cli/thinvaultctl
[ -x "$CSI" ] && [ -x "$CTL" ] || die "$CSI or $CTL is missing; build first (scripts/build)"
for v in RT BW_RT MOD_REPS; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v} is not a positive number"; done
[ -z "$NJ" ] || [[ $NJ =~ ^[1-9][0-9]*$ ]] || die "TV_BENCH_NUMJOBS=$NJ is not a positive number"
for l in $IOPS_LIMITS $BW_LIMITS; do [[ $l =~ ^[1-9][0-9]*$ ]] || die "limit '$l' is not a positive number"; done
command -v fio >/dev/null || die "fio is not installed"

LVM_CONFIG=$(read_define "$ROOT/include/thinvault/lvm.h" TV_LVM_CONFIG)
[[ $LVM_CONFIG == *udev_sync=0* ]] || die "could not read TV_LVM_CONFIG from include/thinvault/lvm.h (got '$LVM_CONFIG')"

D=/tmp/tv-bench-limits
VG=tvbench
POOL=pool
SOCK=$D/csi.sock
LOG=$D/csi.log
K=$D/kubelet
CG=/sys/fs/cgroup/kubepods
POD=$CG/pod-bench
MiB=1048576
REGION=64m
rm -rf $D
mkdir -p $D $K/plugins
: >$D/seq
[ -d $CG ] || mkdir $CG || die "cannot make $CG"
[ -d $POD ] || mkdir $POD || die "cannot make $POD"
grep -q '^0::/$' /proc/self/cgroup || die "this script must run in the root cgroup (its fill writes must not be throttled): $(cat /proc/self/cgroup)"
mkfifo $D/tick || die "mkfifo"
(umask 077 && head -c 32 /dev/urandom | base64 -w0 >$D/key) || die "cannot make a key"

SAMPLER=
FIO=
cleanup() {
        local m
        [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
        [ -n "$FIO" ] && kill "$FIO" 2>/dev/null
        stop_plugin
        for m in /dev/mapper/tvc-*; do [ -e "$m" ] && dmsetup remove "${m##*/}" 2>/dev/null; done
        lvm_ vgremove -q -f $VG >/dev/null 2>&1
        for m in $(losetup -j /tmp/$VG.img -O NAME -n 2>/dev/null); do losetup -d "$m" 2>/dev/null; done
        rm -f /tmp/$VG.img
}
trap cleanup EXIT

T_START=$SECONDS
echo "== limits benchmark (in the guest)"
echo "guest: kernel $(uname -r), $(nproc) vCPUs, $(awk '/MemTotal/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo)," \
        "$(lvm version | awk '/LVM version/ { print "lvm2 " $3 }'), $(fio --version)"
if [ "$LOCAL" = 1 ]; then
        localize "$(command -v lvm)" # exec'd by the driver in every RPC (fio times itself)
else
        echo "binaries left on 9p (TV_BENCH_LOCAL_LVM=0): every exec re-reads them from the host"
fi
start_plugin --node-id bench-node --vg $VG --thin-pool $POOL --loop-file /tmp/$VG.img --loop-size 1G \
        --kubelet-dir $K --cgroup-parent $CG --log-level debug
echo "plugin up after $((SECONDS - T_START)) s; io.max goes on $CG, fio runs in $POD"

BLOCK_CAP='{"block":{},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}'
# vol_up NAME PARAMS_JSON_MEMBERS: create + stage (block) a 128 MiB volume
# with those parameters, fill its first 64 MiB; sets VID, VDEV (dm-N), VMAP.
vol_up() {
        local stg=$K/plugins/kubernetes.io/csi/volumeDevices/staging/pv-$1
        untimed CreateVolume ctl Controller.CreateVolume --json "{\"name\":\"$1\",\"capacityRange\":{\"requiredBytes\":\"$((128 * MiB))\"},
                \"volumeCapabilities\":[$BLOCK_CAP],\"parameters\":{\"csi.storage.k8s.io/pvc/namespace\":\"bench\"$2}}" >$D/reply
        VID=$(volume_id $D/reply)
        [ -n "$VID" ] || die "no volumeId in the CreateVolume reply: $(head -c 300 $D/reply)"
        mkdir -p $stg
        req $D/stage.json "{\"volumeId\":\"$VID\",\"stagingTargetPath\":\"$stg\",\"volumeCapability\":$BLOCK_CAP,\"secrets\":{\"key\":\"$(cat $D/key)\"}}"
        untimed NodeStageVolume ctl Node.NodeStageVolume --json @$D/stage.json >/dev/null
        VMAP=/dev/mapper/tvc-${VID#*:}
        [ -b "$VMAP" ] || die "no mapping $VMAP"
        # /dev/mapper nodes are made by libdevmapper (no udev): not links to dm-N.
        VDEV=$(basename "$(readlink -f "/sys/dev/block/$(printf '%d:%d' "0x$(stat -L -c %t $VMAP)" "0x$(stat -L -c %T $VMAP)")")")
        [ -r /sys/block/$VDEV/stat ] || die "no /sys/block/$VDEV/stat for $VMAP"
        VSTG=$stg
        # From this (root) cgroup: not under kubepods, so not throttled.
        fio_terse --name=fill --filename=$VMAP --size=$REGION --rw=write --bs=1m --direct=1 --ioengine=psync >/dev/null
}
vol_down() {
        untimed NodeUnstageVolume ctl Node.NodeUnstageVolume --json "{\"volumeId\":\"$VID\",\"stagingTargetPath\":\"$VSTG\"}" >/dev/null
        untimed DeleteVolume ctl Controller.DeleteVolume --json "{\"volumeId\":\"$VID\"}" >/dev/null
}
# io.max line of the current volume ("-" when none)
iomax() {
        local n
        n=$(printf '%d:%d' "0x$(stat -L -c %t $VMAP)" "0x$(stat -L -c %T $VMAP)")
        grep "^$n " $CG/io.max 2>/dev/null | cut -d' ' -f2- | grep . || echo -
}

# sampler DEV OUT: every ~100 ms, "time_us reads_completed writes_completed
# sectors_read sectors_written" of /sys/block/DEV/stat (no fork per sample:
# the delay is a read time-out on a FIFO no one writes to).
sampler() {
        local s fd
        exec {fd}<>$D/tick
        while :; do
                read -r -a s </sys/block/$1/stat
                echo "${EPOCHREALTIME//[.,]/} ${s[0]} ${s[4]} ${s[2]} ${s[6]}"
                read -r -t 0.1 -u $fd
        done >"$2"
}
# stalled FILE: ms the sampler overslept (gaps beyond 150 ms), i.e. the
# guest did not run; blk-throttle cannot hand out budget it was not given
# the CPU to use, so a starved run measures under its limit.
stalled() { awk 'NR > 1 && $1 - p > 150000 { s += $1 - p - 100000 } { p = $1 } END { printf "%d", s / 1000 }' "$1"; }
# kernel_rate FILE COLUMN [SCALE]: what the device did, from the samples:
# the counter in COLUMN (2 reads, 3 writes, 4/5 sectors read/written)
# from its first to its last change, per second, times SCALE. This is the
# figure the table reports: fio's own bandwidth is wrong when I/O queued
# during --ramp_time completes inside the measured window (with 4 jobs x 8
# x 1 MiB in flight at 2 MiB/s, fio said 3.02 MiB/s while the device did
# 2.06; ramp_time=0 gave 2.00 for both).
kernel_rate() {
        awk -v c="$2" -v k="${3:-1}" 'NR == 1 { v0 = $c } $c != v0 && !f { f = p; fv = pv } $c != pv { l = $1; lv = $c }
                { p = $1; pv = $c } END { if (f && l > f) printf "%.2f", (lv - fv) * k * 1e6 / (l - f); else print 0 }' "$1"
}

# pod_fio ARGS...: fio from a process in the pod cgroup; sets R_IOPS,
# R_KIBS, W_IOPS, W_KIBS (fio's figures) and K_RIOPS, K_WIOPS, K_RMIBS,
# K_WMIBS (the device's, kernel_rate). The sampler runs meanwhile; its
# stall figure goes to $D/last.stall. (Not to be called in a subshell: it dies.)
# libaio with 8 in flight per job, as tests/guest/test_iolimits.sh: in the
# emulated guest, psync jobs cannot keep enough I/O queued at the throttle
# to reach 500 IOPS through dm-crypt, and would measure the guest.
ENGINE="--ioengine=libaio --iodepth=8"
pod_fio() {
        local out rc
        sampler $VDEV $D/samples.acc &
        SAMPLER=$!
        out=$(
                echo $BASHPID >$POD/cgroup.procs || exit 99
                exec fio --minimal --group_reporting --name=pod --filename=$VMAP --size=$REGION --direct=1 \
                        $ENGINE --time_based --ramp_time=1 --randrepeat=0 --norandommap "$@" 2>>$D/cmd.err
        )
        rc=$?
        kill $SAMPLER 2>/dev/null
        wait $SAMPLER 2>/dev/null
        SAMPLER=
        [ $rc -eq 0 ] || die "fio in $POD failed (status $rc): $(tail -3 $D/cmd.err)"
        stalled $D/samples.acc >$D/last.stall
        K_RIOPS=$(kernel_rate $D/samples.acc 2)
        K_WIOPS=$(kernel_rate $D/samples.acc 3)
        K_RMIBS=$(kernel_rate $D/samples.acc 4 0.00048828125)
        K_WMIBS=$(kernel_rate $D/samples.acc 5 0.00048828125)
        read -r R_IOPS R_KIBS W_IOPS W_KIBS <<<"$(awk -F';' 'END { if (NF >= 49) print $8, $7, $49, $48 }' <<<"$out")"
        [ -n "$W_KIBS" ] || die "fio output not understood: $(head -c 300 <<<"$out")"
}
# mibs KIB_PER_S: in MiB/s
mibs() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1024 }'; }
# record WHAT PARAM LIMIT MEASURED IO_MAX FIO: one accuracy row (MEASURED:
# the device's figure; FIO: what fio reported for the same run)
record() {
        printf '%s|%s|%s|%s|%s|%s|%s\n' "$1" "$2" "$3" "$4" "$5" "$(cat $D/last.stall)" "$6" >>$D/rows
}

# ------------------------------------------------------------- baseline
echo
echo "-- baseline: a volume without limits, fio from the pod"
vol_up unlimited ""
[ "$(iomax)" = - ] || die "a volume without limits has an io.max line: $(iomax)"
best=0
for nj in ${NJ:-4 8}; do
        pod_fio --rw=randread --bs=4k --numjobs=$nj --runtime=$RT
        ri=$R_IOPS kri=$K_RIOPS
        st_r=$(cat $D/last.stall)
        pod_fio --rw=randwrite --bs=4k --numjobs=$nj --runtime=$RT
        wi=$W_IOPS kwi=$K_WIOPS
        st_w=$(cat $D/last.stall)
        echo "   numjobs $nj: 4k randread $ri IOPS (guest stalled ${st_r} ms), 4k randwrite $wi IOPS (stalled ${st_w} ms)"
        echo "$nj $ri $wi $st_r $st_w $kri $kwi" >>$D/base.iops
        m=$(awk -v a="$ri" -v b="$wi" 'BEGIN { printf "%d", a < b ? a : b }')
        if [ "$m" -gt "$best" ]; then best=$m; NJ_USED=$nj; fi
done
NJ=$NJ_USED
read -r _ BASE_R BASE_W ST_R ST_W K_R K_W <<<"$(awk -v nj=$NJ '$1 == nj' $D/base.iops)"
echo "unlimited 4k randread (baseline)|-|-|$K_R|-|$ST_R|$BASE_R" >>$D/rows
echo "unlimited 4k randwrite (baseline)|-|-|$K_W|-|$ST_W|$BASE_W" >>$D/rows
pod_fio --rw=read --bs=1m --numjobs=$NJ --runtime=$BW_RT
BASE_RB=$(mibs $R_KIBS)
record "unlimited 1M read MiB/s (baseline)" - - "$K_RMIBS" - "$BASE_RB"
pod_fio --rw=write --bs=1m --numjobs=$NJ --runtime=$BW_RT
BASE_WB=$(mibs $W_KIBS)
record "unlimited 1M write MiB/s (baseline)" - - "$K_WMIBS" - "$BASE_WB"
vol_down
echo "   using numjobs $NJ; 1M read $BASE_RB MiB/s, 1M write $BASE_WB MiB/s"

# ------------------------------------------------------------- accuracy
echo "-- accuracy: IOPS limits ${IOPS_LIMITS// /, }; bandwidth limits ${BW_LIMITS// /, } MiB/s"
for l in $IOPS_LIMITS; do
        vol_up iops-$l ",\"readIOPS\":\"$l\",\"writeIOPS\":\"$l\""
        line=$(iomax)
        pod_fio --rw=randread --bs=4k --numjobs=$NJ --runtime=$RT
        record "4k randread IOPS" "readIOPS=$l" $l "$K_RIOPS" "$line" "$R_IOPS"
        pod_fio --rw=randwrite --bs=4k --numjobs=$NJ --runtime=$RT
        record "4k randwrite IOPS" "writeIOPS=$l" $l "$K_WIOPS" "$line" "$W_IOPS"
        vol_down
        echo "   $l IOPS done ($line)"
done
for b in $BW_LIMITS; do
        vol_up bw-$b ",\"readBytesPerSecond\":\"${b}Mi\",\"writeBytesPerSecond\":\"${b}Mi\""
        line=$(iomax)
        pod_fio --rw=read --bs=1m --numjobs=$NJ --runtime=$BW_RT
        record "1M read MiB/s" "readBytesPerSecond=${b}Mi" $b "$K_RMIBS" "$line" "$(mibs $R_KIBS)"
        pod_fio --rw=write --bs=1m --numjobs=$NJ --runtime=$BW_RT
        record "1M write MiB/s" "writeBytesPerSecond=${b}Mi" $b "$K_WMIBS" "$line" "$(mibs $W_KIBS)"
        vol_down
        echo "   $b MiB/s done ($line)"
done

# --------------------------------------------------------------- change
LO=200
HI=800
BR=${BASE_R%.*}
if [ "$BR" -lt 1000 ]; then # HI must be reachable, with room to spare
        HI=$((BR * 6 / 10 / 100 * 100))
        [ "$HI" -gt $((LO * 2)) ] || { LO=$((HI / 4)); }
fi
echo "-- change: $MOD_REPS x ControllerModifyVolume readIOPS $LO <-> $HI while fio reads (numjobs $NJ)"
vol_up modify ",\"readIOPS\":\"$LO\""
for rep in $(seq "$MOD_REPS"); do
        if [ $((rep % 2)) -eq 1 ]; then new=$HI old=$LO; else new=$LO old=$HI; fi
        sampler $VDEV $D/samples.mod.$rep &
        SAMPLER=$!
        (
                echo $BASHPID >$POD/cgroup.procs || exit 99
                exec fio --name=mod --filename=$VMAP --size=$REGION --rw=randread --bs=4k --direct=1 $ENGINE \
                        --numjobs=$NJ --group_reporting --time_based --runtime=300 --randrepeat=0 --norandommap \
                        >/dev/null 2>>$D/cmd.err
        ) &
        FIO=$!
        # fio can take seconds to start in a loaded guest: wait for its
        # reads to flow, then give the old limit 3 s to show.
        read -r -a st0 </sys/block/$VDEV/stat
        for i in $(seq 150); do
                read -r -a st </sys/block/$VDEV/stat
                [ "${st[0]}" -gt "${st0[0]}" ] && break
                sleep 0.2
        done
        [ "${st[0]}" -gt "${st0[0]}" ] || die "fio in the pod did not read within 30 s"
        sleep 3
        t0=$(now_us)
        ctl Controller.ControllerModifyVolume --json "{\"volumeId\":\"$VID\",\"mutableParameters\":{\"readIOPS\":\"$new\"}}" \
                >/dev/null 2>>$D/cmd.err || die "ControllerModifyVolume failed: $(tail -3 $D/cmd.err); plugin log: $(tail -3 $LOG)"
        t1=$(now_us)
        echo ModifyVolume >>$D/seq
        line=$(iomax)
        [[ $line == *riops=$new* ]] || die "io.max after the change: $line"
        sleep 6 # room for the two 1 s windows even when the guest stalls
        kill -INT $FIO 2>/dev/null
        wait $FIO 2>/dev/null
        FIO=
        kill $SAMPLER 2>/dev/null
        wait $SAMPLER 2>/dev/null
        SAMPLER=
        echo "$rep $t0 $t1 $new $old $(stalled $D/samples.mod.$rep)" >>$D/mods
done
vol_down
stop_plugin

# ---------------------------------------------------------------- report
echo
echo "== accuracy: limits set by CreateVolume parameters + NodeStageVolume (io.max on kubepods), fio in kubepods/pod-bench"
echo "   (4k random / 1M sequential, $ENGINE, direct, numjobs $NJ, ${RT} s IOPS / ${BW_RT} s bandwidth runs after 1 s ramp)"
printf '%-36s | %-28s | %6s | %9s | %8s | %9s | %-28s | %s\n' "what" "parameter" "limit" "measured" "error" "fio said" "io.max line" "guest stalled ms"
printf '%s\n' "-------------------------------------+------------------------------+--------+-----------+----------+-----------+------------------------------+-----------------"
while IFS='|' read -r what param limit measured line stall fio; do
        err=$(awk -v l="$limit" -v m="$measured" 'BEGIN { if (l == "-") print "-"; else printf "%+.2f%%", (m - l) * 100 / l }')
        note=
        if [ "$limit" != - ]; then
                if [[ $what == *randread* ]] && awk -v l=$limit -v b=$BASE_R 'BEGIN { exit !(l > b * 0.95) }'; then note=" (baseline only $BASE_R)"; fi
                if [[ $what == *randwrite* ]] && awk -v l=$limit -v b=$BASE_W 'BEGIN { exit !(l > b * 0.95) }'; then note=" (baseline only $BASE_W)"; fi
        fi
        printf '%-36s | %-28s | %6s | %9s | %8s | %9s | %-28s | %s\n' "$what" "$param" "$limit" "$measured" "$err$note" "$fio" "$line" "$stall"
done <$D/rows
echo "measured = what the device completed (/sys/block/dm-N/stat, from the first to the last change during the run,"
echo "  ramp and drain included); fio said = fio's own figure for the same run, which counts I/O queued during its"
echo "  ramp as done inside its window (so it overstates bandwidth when many large I/Os are queued at a low limit)."
echo "the baseline rows are what the device does without a limit from the same pod with the same fio; a limit"
echo "  at or above them cannot be measured here (the guest is the bottleneck, not the throttle)."
echo "guest stalled = time the 100 ms sampler overslept (the vCPU was descheduled by the busy host); blk-throttle"
echo "  drops budget a stalled guest could not use, so a run with large stalls measures under its limit."

# Server side of each ControllerModifyVolume (ms) and its lvm2 time.
awk '/msg="lvm2 done"/ { if (match($0, / ms=[0-9]+/)) l += substr($0, RSTART + 4, RLENGTH - 4); next }
        /msg="rpc"/ { if ($0 ~ /ControllerModifyVolume/ && match($0, / ms=[0-9]+/)) print substr($0, RSTART + 4, RLENGTH - 4), l; l = 0 }' \
        $LOG >$D/mod.srv
echo
echo "== cost of a change: ControllerModifyVolume(mutable_parameters readIOPS) while fio reads at the old limit"
printf '%-4s | %-12s | %10s | %10s | %9s | %14s | %15s | %10s | %10s | %s\n' rep change "rpc wall" "rpc server" "in lvm2" \
        "effect after" "effect after" "rate" "rate" "guest"
printf '%-4s | %-12s | %10s | %10s | %9s | %14s | %15s | %10s | %10s | %s\n' "" "" "ms" "ms" "ms" "rpc start, ms" "rpc return, ms" "before" "after" "stalled ms"
printf '%s\n' "-----+--------------+------------+------------+-----------+----------------+-----------------+------------+------------+-----------"
: >$D/eff.start
: >$D/eff.end
: >$D/rpc.wall
k=0
while read -r rep t0 t1 new old stall; do
        k=$((k + 1))
        read -r srv lvm <<<"$(sed -n ${k}p $D/mod.srv)"
        read -r e0 e1 before after <<<"$(awk -v t0=$t0 -v t1=$t1 -v L=$new '
                function idx(x,   j) { for (j = 1; j <= n; j++) if (t[j] >= x) return j; return 0 }
                function rate(i, j) { return (r[j] - r[i]) * 1e6 / (t[j] - t[i]) }
                function off(v) { return v - L < 0 ? L - v : v - L }
                { t[NR] = $1; r[NR] = $2 } END {
                        n = NR
                        b0 = idx(t0 - 2e6); b1 = idx(t0) - 1
                        before = (b0 && b1 > b0) ? sprintf("%.0f", rate(b0, b1)) : "-"
                        for (i = 1; i <= n; i++) {
                                if (t[i] < t0) continue
                                j = idx(t[i] + 1e6); if (!j) break
                                k = idx(t[j] + 1e6); if (!k) break
                                if (off(rate(i, j)) <= 0.1 * L && off(rate(j, k)) <= 0.1 * L) {
                                        printf "%.0f %.0f %s %.0f\n", (t[i] - t0) / 1000, (t[i] - t1) / 1000, before, rate(j, k); exit
                                }
                        }
                        printf "- - %s -\n", before }' $D/samples.mod.$rep)"
        printf '%-4s | %-12s | %10.1f | %10s | %9s | %14s | %15s | %10s | %10s | %s\n' "$rep" "$old -> $new" \
                "$(awk -v a=$t0 -v b=$t1 'BEGIN { print (b - a) / 1000 }')" "${srv:--}" "${lvm:--}" "$e0" "$e1" "$before" "$after" "$stall"
        echo $((t1 - t0)) >>$D/rpc.wall
        [ "$e0" != - ] && echo "$e0" >>$D/eff.start && echo "$e1" >>$D/eff.end
done <$D/mods
read -r w50 w95 _ <<<"$(stats $D/rpc.wall)"
read -r s50 s95 sn <<<"$(stats $D/eff.start 1)"
read -r r50 r95 _ <<<"$(stats $D/eff.end 1)"
echo "p50 / p95: rpc wall $w50 / $w95 ms; effect after rpc start $s50 / $s95 ms; after rpc return $r50 / $r95 ms ($sn of $MOD_REPS changes settled)"
echo "effect = first sample (every ~100 ms) from which the read rate over the next 1 s and the 1 s after both"
echo "  lie within 10% of the new limit (so it can come a little before the io.max write: resolution ~0.1-0.2 s)."
echo "  The RPC records the limits as an LV tag (one lvchange) and then rewrites io.max; thinvaultctl's wall"
echo "  time includes its own start (see bench/controller.sh's CLI floor); rate before = the 2 s before the RPC."
echo
echo "guest time for the benchmark: $((SECONDS - T_START)) s"
