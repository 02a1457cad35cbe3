#!/usr/bin/env bash
# I/O budgets through the real plugin, measured in the kernel: volumes
# created with limit parameters, staged (their dm-crypt mapping's io.max on
# a kubepods cgroup), and fio 4k direct random I/O run from a process in a
# pod-like child cgroup. The IOPS fio gets, and the reads the mapping's
# /sys/block/dm-N/stat counts, must be the budget: at 100 and 500 IOPS
# (2000 is guest_limits' on a dm-zero device), for two volumes at once, and
# across a live ControllerModifyVolume; per-GiB budgets follow expansion;
# bad values change nothing; unstage leaves no io.max line.
#
# The guest is TCG-emulated on a shared host: a starved guest does LESS
# I/O than allowed, never more. A measurement below its tolerance is
# therefore run once more before it fails; one above fails at once.
set -uo pipefail
BUILD=${1:-$TV_BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/pool.sh"
CSI=$BUILD/csi/thinvault-csi
CTL=$BUILD/cli/thinvaultctl
D=/tmp/tv-iol
VG=tviol
SOCK=$D/csi.sock
K=$D/kubelet                 # the plugin's --kubelet-dir
CG=/sys/fs/cgroup/kubepods   # stands in for the kubelet's pods cgroup
MiB=1048576
GiB=1073741824
PY=/usr/bin/python3
mkdir -p $D $K/plugins $K/pods
[ -d $CG ] || mkdir $CG
[ -f $D/key ] || head -c 32 /dev/urandom | base64 -w0 >$D/key
[ -f $D/master ] || { head -c 32 /dev/urandom >$D/master && chmod 600 $D/master; }
KEY=$(cat $D/key)
# As a kubelet does: io on for the pods below kubepods (guest-init enabled
# it on the root). The budget on kubepods holds for them either way.
grep -qw io $CG/cgroup.subtree_control || echo +io >$CG/cgroup.subtree_control || echo "    (io not enabled below $CG)"
# t_run shows a passing test's output nowhere: the figures go to fd 3.
exec 3>&1
say() { echo "$@" >&3; }

ctl() { timeout 300 "$CTL" --endpoint "unix://$SOCK" --timeout 290 "$@"; }
jval() { grep -o "\"$1\": [^,}]*" | sed 's/^[^:]*: //; s/^"//; s/"$//' | head -1; }

start_plugin() {
        [ -f $D/pid ] && kill -0 "$(cat $D/pid)" 2>/dev/null && return 0
        "$CSI" --endpoint "unix://$SOCK" --node-id node-a --vg $VG --thin-pool pool \
                --loop-file /tmp/$VG.img --loop-size 320M --kubelet-dir $K \
                --master-key $D/master >/dev/null 2>>$D/csi.log &
        echo $! >$D/pid
        local i
        for i in $(seq 240); do
                ctl csi Identity.GetPluginInfo >/dev/null 2>&1 && return 0
                kill -0 "$(cat $D/pid)" 2>/dev/null || break
                sleep 0.5
        done
        t_fail "plugin did not start: $(tail -5 $D/csi.log)"
}
stop_plugin() {
        local pid i
        pid=$(cat $D/pid 2>/dev/null) || return 0
        kill -"${1:-TERM}" "$pid" 2>/dev/null
        for i in $(seq 600); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        rm -f $D/pid
}

BLOCK_CAP='{"block":{},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}'

# create NAME BYTES [extra parameters JSON members]: a block volume; prints its id
create() {
        local out
        out=$(ctl csi Controller.CreateVolume --json "{\"name\":\"$1\",\"capacityRange\":{\"requiredBytes\":\"$2\"},
                \"volumeCapabilities\":[$BLOCK_CAP],
                \"parameters\":{\"csi.storage.k8s.io/pvc/namespace\":\"team-a\"${3:-}}}") || return 1
        jval volumeId <<<"$out"
}
delete() { ctl csi Controller.DeleteVolume --json "{\"volumeId\":\"$1\"}"; }
staging_of() { echo "$K/plugins/kubernetes.io/csi/volumeDevices/staging/pv-$1"; }
target_of() { echo "$K/plugins/kubernetes.io/csi/volumeDevices/publish/pv-$1/pod-$1"; }
# stage ID NAME: the secret goes through a 0600 file, never argv
stage() {
        mkdir -p "$(staging_of "$2")" "$(dirname "$(target_of "$2")")"
        (umask 077 && printf '%s' "{\"volumeId\":\"$1\",\"stagingTargetPath\":\"$(staging_of "$2")\",
                \"volumeCapability\":$BLOCK_CAP,\"secrets\":{\"key\":\"$KEY\"}}" >$D/req.json)
        ctl csi Node.NodeStageVolume --json @$D/req.json
}
unstage() { ctl csi Node.NodeUnstageVolume --json "{\"volumeId\":\"$1\",\"stagingTargetPath\":\"$(staging_of "$2")\"}"; }
publish() {
        ctl csi Node.NodePublishVolume --json "{\"volumeId\":\"$1\",\"stagingTargetPath\":\"$(staging_of "$2")\",
                \"targetPath\":\"$(target_of "$2")\",\"volumeCapability\":$BLOCK_CAP}"
}
unpublish() { ctl csi Node.NodeUnpublishVolume --json "{\"volumeId\":\"$1\",\"targetPath\":\"$(target_of "$2")\"}"; }
# modify ID 'JSON members of mutable_parameters'
modify() {
        ctl csi Controller.ControllerModifyVolume --json "{\"volumeId\":\"$1\",\"mutableParameters\":{$2}}"
}
expect_status() { # expect_status STATUS what command...
        local want=$1 what=$2 err
        shift 2
        err=$("$@" 2>&1 >/dev/null) && t_fail "$what: succeeded, expected $want"
        [[ "$err" == "$want:"* ]] || t_fail "$what: expected $want, got: $err"
        echo "$err"
}

map_of() { echo "/dev/mapper/tvc-${1#*:}"; }
devnum() { printf '%d:%d' "0x$(stat -L -c %t "$1")" "0x$(stat -L -c %T "$1")"; }
io_max_line() { grep "^$1 " $CG/io.max; }
# io_max_is DEV 'riops=.. wiops=..' (the kernel's order: rbps wbps riops wiops)
io_max_is() {
        local got
        got=$(io_max_line "$1") || t_fail "no io.max line for $1: $(cat $CG/io.max)"
        [ "$got" = "$1 $2" ] || t_fail "io.max for $1: '$got', expected '$1 $2'"
}
limits_tag() { lvm_ lvs --noheadings -o lv_tags "$VG/${1#*:}" | tr ',' '\n' | sed -n 's/^ *tv\.limits=//p'; }

# A pod-like child of the pods cgroup per fio run: the budget on kubepods
# must hold for its children together, as for the kubelet's pods.
pod_cgroup() {
        local p=$CG/pod-$1
        [ -d $p ] || mkdir $p || t_fail "mkdir $p"
        echo $p
}
# fio_in_pod POD DEV RW SECONDS JSON_OUT: runs in the foreground
# libaio with 8 in flight per job: in the TCG guest dm-crypt's AES is
# emulated, and 4 psync jobs could not keep even a few hundred IOPS queued
# at the throttle.
FIO_ENGINE=(--ioengine=libaio --iodepth=8 --numjobs=4)
FIO_SIZE=() # e.g. (--size=32M): keep fio on a prefilled region of a big volume
fio_in_pod() {
        local pod
        pod=$(pod_cgroup "$1")
        sh -c 'echo $$ >"$0" && exec fio "$@"' "$pod/cgroup.procs" --name=iol --filename="$2" --rw="$3" \
                --bs=4k --direct=1 "${FIO_ENGINE[@]}" "${FIO_SIZE[@]}" --time_based --runtime="$4" --group_reporting \
                --randrepeat=0 --norandommap --output-format=json --output="$5" >/dev/null
}
# fio_watched POD DEV RW SECONDS JSON_OUT: fio_in_pod with a watcher that
# samples every 0.5 s; afterwards $D/gap.POD holds the longest time between
# two samples (over 1 s: the host did not run the guest for a while)
fio_watched() {
        local w rc
        sample /proc/uptime $D/watch.$1 &
        w=$!
        fio_in_pod "$@"
        rc=$?
        kill $w
        wait $w 2>/dev/null
        longest_gap $D/watch.$1 0 9e99 >$D/gap.$1
        return $rc
}
starved() { awk -v g="$(cat $D/gap.$1)" 'BEGIN { exit !(g > 1.0) }'; }
# judge WHAT MEASURED LIMIT ATTEMPT POD: 0 within 5%, 1 to measure once
# more (below the limit, first attempt); fails the test otherwise, saying
# whether the guest was starved (inconclusive) or ran freely
judge() {
        within "$2" "$3" 5 && return 0
        below "$2" "$3" || t_fail "$1: measured $2, ABOVE the limit $3 by more than 5%"
        if [ "$4" = 1 ]; then
                say "    below: once more (a starved guest does less)"
                return 1
        fi
        starved "$5" && t_fail "$1: inconclusive: measured $2 for a limit of $3 and the guest was starved (samples up to $(cat $D/gap.$5) s apart); rerun on a quieter host"
        t_fail "$1: measured $2 for a limit of $3 with the guest running freely (samples at most $(cat $D/gap.$5) s apart)"
}
# fio_iops JSON read|write: the IOPS fio measured
fio_iops() {
        $PY -c 'import json,sys; print("%.1f" % json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]["iops"])' "$1" "$2"
}
# within MEASURED LIMIT PCT: is |measured - limit| <= PCT% of limit?
within() { awk -v m="$1" -v l="$2" -v p="$3" 'BEGIN { d = m - l; if (d < 0) d = -d; exit !(d <= l * p / 100) }'; }
below() { awk -v m="$1" -v l="$2" 'BEGIN { exit !(m < l) }'; }
err_pct() { awk -v m="$1" -v l="$2" 'BEGIN { printf "%+.2f", (m - l) / l * 100 }'; }
# Prefill a volume (thin provisioning must not be what fio measures).
prefill() {
        local size
        size=$(blockdev --getsize64 "$1") || t_fail "size of $1"
        dd if=/dev/zero of="$1" bs=1M count=$((size / MiB)) oflag=direct status=none || t_fail "prefill $1"
}

cleanup() {
        local m
        for m in $(grep -o " $K/[^ ]*" /proc/self/mountinfo | sort -r); do umount "$m" 2>/dev/null; done
        for m in /dev/mapper/tvc-*; do [ -e "$m" ] && dmsetup remove "${m##*/}" 2>/dev/null; done
        for m in $CG/pod-*; do [ -d "$m" ] && rmdir "$m" 2>/dev/null; done
        return 0
}
t_after() { cleanup; }

# Stage a volume and report its mapping device, numbers and stat file.
# Sets MAP DEV STAT for the caller.
stage_and_find() { # ID NAME
        stage "$1" "$2" >/dev/null || t_fail "stage $2"
        MAP=$(map_of "$1")
        [ -b "$MAP" ] || t_fail "no mapping $MAP"
        DEV=$(devnum "$MAP")
        STAT=/sys/dev/block/$DEV/stat # (no udev: /dev/mapper holds nodes, not links)
        [ -r "$STAT" ] || t_fail "no $STAT"
}

# 100 and 500 IOPS through the whole stack (thin LV, dm-crypt, the
# plugin's io.max). 2000 is guest_limits' on a dm-zero device: through
# dm-crypt on a loop file the emulated guest does only ~1100-1900 IOPS
# unthrottled, so a 2000 cap there would measure the guest, not the kernel.
test_100_and_500_iops_read_and_write_through_the_driver_within_5_percent() {
        start_plugin
        local id base_r base_w rw dir got attempt limit
        id=$(create iops100 $((32 * MiB)) ',"iops":"100"') || t_fail "create"
        stage_and_find "$id" iops100
        io_max_is "$DEV" "rbps=max wbps=max riops=100 wiops=100"
        prefill "$MAP"
        # What the device does without a budget: lifted by hand, put back
        # through the driver (ControllerModifyVolume) below.
        echo "$DEV rbps=max wbps=max riops=max wiops=max" >$CG/io.max || t_fail "lift"
        fio_in_pod p1 "$MAP" randread 2 $D/base-r.json || t_fail "fio baseline read"
        fio_in_pod p1 "$MAP" randwrite 2 $D/base-w.json || t_fail "fio baseline write"
        base_r=$(fio_iops $D/base-r.json read)
        base_w=$(fio_iops $D/base-w.json write)
        say "    unlimited (${FIO_ENGINE[*]}): randread $base_r IOPS, randwrite $base_w IOPS"
        below "$base_r" 750 && t_fail "the device does only $base_r read IOPS unlimited: cannot test 500"
        below "$base_w" 750 && t_fail "the device does only $base_w write IOPS unlimited: cannot test 500"
        for limit in 100 500; do
                modify "$id" "\"iops\":\"$limit\"" >/dev/null || t_fail "modify to $limit"
                io_max_is "$DEV" "rbps=max wbps=max riops=$limit wiops=$limit"
                for rw in randread randwrite; do
                        dir=${rw#rand}
                        for attempt in 1 2; do
                                fio_watched p1 "$MAP" $rw 4 $D/run.json || t_fail "fio $rw"
                                got=$(fio_iops $D/run.json $dir)
                                say "    $rw 4k limit $limit: measured $got IOPS ($(err_pct "$got" $limit)%) [${FIO_ENGINE[*]}], longest guest pause $(cat $D/gap.p1) s"
                                judge "$rw at $limit" "$got" $limit $attempt p1 && break
                        done
                done
        done
        unstage "$id" iops100 >/dev/null || t_fail "unstage"
        io_max_line "$DEV" && t_fail "io.max line left"
        delete "$id" >/dev/null || t_fail "delete"
}

test_two_volumes_written_at_once_each_hold_their_own_budget() {
        start_plugin
        local ida idb mapa mapb deva devb ga gb attempt pa pb
        ida=$(create two-a $((32 * MiB)) ',"writeIOPS":"150"') || t_fail "create a"
        idb=$(create two-b $((32 * MiB)) ',"writeIOPS":"400"') || t_fail "create b"
        stage_and_find "$ida" two-a
        mapa=$MAP deva=$DEV
        stage_and_find "$idb" two-b
        mapb=$MAP devb=$DEV
        io_max_is "$deva" "rbps=max wbps=max riops=max wiops=150"
        io_max_is "$devb" "rbps=max wbps=max riops=max wiops=400"
        prefill "$mapa"
        prefill "$mapb"
        for attempt in 1 2; do
                fio_watched pa "$mapa" randwrite 4 $D/a.json &
                pa=$!
                fio_watched pb "$mapb" randwrite 4 $D/b.json &
                pb=$!
                wait $pa || t_fail "fio a"
                wait $pb || t_fail "fio b"
                ga=$(fio_iops $D/a.json write)
                gb=$(fio_iops $D/b.json write)
                say "    at once: volume a limit 150 measured $ga ($(err_pct "$ga" 150)%), volume b limit 400 measured $gb ($(err_pct "$gb" 400)%), longest guest pause $(cat $D/gap.pa) s"
                # both judged; one to retry retries both
                judge "volume a (150) next to b" "$ga" 150 $attempt pa && judge "volume b (400) next to a" "$gb" 400 $attempt pb && break
        done
        unstage "$ida" two-a >/dev/null || t_fail "unstage a"
        unstage "$idb" two-b >/dev/null || t_fail "unstage b"
        delete "$ida" >/dev/null && delete "$idb" >/dev/null || t_fail "delete"
}

# sample STAT OUT [INTERVAL]: every INTERVAL s (0.5) "EPOCHREALTIME
# reads-completed", until killed; waits with read -t on a fifo nobody
# writes (no fork per sample).
sample() {
        local a fd
        rm -f $D/never.$BASHPID && mkfifo $D/never.$BASHPID && exec {fd}<>$D/never.$BASHPID || return 1
        while :; do
                read -r a _ <"$1" && echo "$EPOCHREALTIME $a"
                read -r -t "${3:-0.5}" -u $fd
        done >"$2"
}
# longest_gap SAMPLES FROM TO: the longest time between two samples that
# touch [FROM, TO] (a starved guest samples late)
longest_gap() {
        awk -v from="$2" -v to="$3" 'NR > 1 && $1 >= from && pt <= to { g = $1 - pt; if (g > m) m = g } { pt = $1 } END { printf "%.2f\n", m }' "$1"
}
# rate SAMPLES FROM TO: reads per second between two times, the counter
# interpolated linearly between the samples around each end
rate() {
        awk -v from="$2" -v to="$3" '
                { t[NR] = $1; c[NR] = $2 }
                function at(x,   i) {
                        for (i = 2; i <= NR; i++)
                                if (t[i] >= x)
                                        return c[i-1] + (c[i] - c[i-1]) * (x - t[i-1]) / (t[i] - t[i-1])
                        return -1
                }
                END {
                        a = at(from); b = at(to)
                        if (a < 0 || b < 0 || from < t[1]) { print "nan"; exit }
                        printf "%.1f\n", (b - a) / (to - from)
                }' "$1"
}

# stop_fio SAMPLER_PID FIO_PID: the sampler, and fio (every process in
# pod-mod); not a bare wait: the plugin may be this subshell's child too
stop_fio() {
        kill "$1"
        kill -INT $(cat $CG/pod-mod/cgroup.procs) 2>/dev/null # (one pid a word)
        wait "$1" "$2" 2>/dev/null
}

# One live change 500 -> 150 under fio; prints the figures, returns 0 when
# they hold, 2 when one fell short (starved guest), 1 when one was above.
modify_under_fio() { # ID STAT
        local id=$1 stat=$2 spid fpid t0 r0 r1 s1 resume before first after f gap
        fio_in_pod mod "$MAP" randread 40 $D/mod.json &
        fpid=$!
        # every 0.1 s: the window after the change starts at the first
        # sample after the RPC's reply, not interpolated across it (a 0.5-s
        # sample straddling the change blends the old rate into the new)
        sample "$stat" $D/samples 0.1 &
        spid=$!
        t0=$EPOCHREALTIME
        # fio is slow to start in the guest: the 2 s window before the
        # change begins once the mapping has served its first reads
        local i n0 n
        read -r n0 _ <"$stat"
        for i in $(seq 200); do
                read -r n _ <"$stat"
                [ "$n" -gt $((n0 + 20)) ] && break
                sleep 0.1
        done
        sleep 3
        r0=$EPOCHREALTIME
        modify "$id" '"readIOPS":"150"' >/dev/null || { stop_fio $spid $fpid; t_fail "ControllerModifyVolume"; }
        r1=$EPOCHREALTIME
        sleep 10
        stop_fio $spid $fpid
        before=$(rate $D/samples "$(awk -v x="$r0" 'BEGIN { printf "%.6f", x - 2 }')" "$r0")
        s1=$(awk -v x="$r1" '$1 >= x { printf "%.6f", $1; exit }' $D/samples)
        [ -n "$s1" ] || s1=$r1
        first=$(rate $D/samples "$s1" "$(awk -v x="$s1" 'BEGIN { printf "%.6f", x + 1 }')")
        # The guest's 6.1 kernel, after io.max is lowered under load, can
        # let nothing through for a while (seen: 0.5 to over 3 s, in about
        # half the runs; the line read back is the new one): the new rate
        # is measured from 1 s after reads resume. `resume`: the first
        # sample after the reply by which a read completed.
        resume=$(awk -v x="$s1" '$1 >= x && !n { c = $2; n = 1; next } n && $2 > c { printf "%.6f", $1; exit }' $D/samples)
        [ -n "$resume" ] || { say "    no read completed in the 10 s after the change"; return 1; }
        after=$(rate $D/samples "$(awk -v x="$resume" 'BEGIN { printf "%.6f", x + 1 }')" "$(awk -v x="$resume" 'BEGIN { printf "%.6f", x + 3 }')")
        say "    fio started, RPC at +$(awk -v a="$t0" -v b="$r0" 'BEGIN { printf "%.2f", b - a }') s, took $(awk -v a="$r0" -v b="$r1" 'BEGIN { printf "%.2f", b - a }') s"
        say "    reads/s of the mapping: 2 s before the RPC $before (limit 500, $(err_pct "$before" 500)%)," \
                "first second after it (from the first sample after the reply, +$(awk -v a="$r1" -v b="$s1" 'BEGIN { printf "%.2f", b - a }') s) $first (limit 150, $(err_pct "$first" 150)%)," \
                "reads resumed +$(awk -v a="$s1" -v b="$resume" 'BEGIN { printf "%.2f", b - a }') s after it," \
                "2 s from 1 s after that $after (limit 150, $(err_pct "$after" 150)%)"
        # per 0.5 s, for the record
        awk -v r0="$r0" 'NR % 5 != 1 { next } NR > 1 { printf "%s%+.1f:%d", (NR > 6 ? " " : "    per 0.5 s (t from the RPC, reads/s): "), $1 - r0, ($2 - p) / ($1 - pt) } { p = $2; pt = $1 } END { print "" }' $D/samples >&3
        gap=$(longest_gap $D/samples "$(awk -v x="$r0" 'BEGIN { printf "%.6f", x - 2 }')" "$(awk -v x="$resume" 'BEGIN { printf "%.6f", x + 3 }')")
        say "    longest time between two samples in the windows: $gap s"
        # A sample 1 s late means the guest did not run: the figures say
        # nothing about the kernel's budget.
        awk -v g="$gap" 'BEGIN { exit !(g > 1.0) }' && { say "    guest starved: inconclusive"; return 2; }
        # The first second is held to the new limit from above only: the
        # guest's 6.1 kernel, after the one write of the new io.max line,
        # let almost nothing through for about half a second (measured:
        # 57 and 79 reads/s in that second, the guest running freely),
        # then held 150 within 1%. A shortfall the plugin cannot cause (it
        # writes the whole line once, limits/cgroup.c) is printed, not failed.
        [ "$first" != nan ] && ! awk -v m="$first" 'BEGIN { exit !(m > 150 * 1.10) }' ||
                { say "    first second ABOVE 150 + 10%: the old budget still held"; return 1; }
        within "$first" 150 10 || say "    (first second below 150 - 10%: the kernel's pause after io.max is rewritten)"
        for f in "$before 500 5" "$after 150 5"; do
                set -- $f
                [ "$1" = nan ] && { say "    no samples around a window"; return 1; }
                within "$1" "$2" "$3" && continue
                below "$1" "$2" && return 2
                return 1
        done
        return 0
}

test_modify_volume_under_fio_shows_in_the_next_second_is_recorded_and_survives_a_restart() {
        start_plugin
        local id attempt r tag
        id=$(create live $((32 * MiB)) ',"readIOPS":"500"') || t_fail "create"
        stage_and_find "$id" live
        io_max_is "$DEV" "rbps=max wbps=max riops=500 wiops=max"
        [ "$(limits_tag "$id")" = "v1/ri:500" ] || t_fail "tag at create: '$(limits_tag "$id")'"
        for attempt in 1 2; do
                if [ $attempt = 2 ]; then
                        modify "$id" '"readIOPS":"500"' >/dev/null || t_fail "back to 500"
                        io_max_is "$DEV" "rbps=max wbps=max riops=500 wiops=max"
                fi
                modify_under_fio "$id" "$STAT"
                r=$?
                [ $r = 0 ] && break
                [ $r = 2 ] && [ $attempt = 1 ] && say "    below or starved: once more (a starved guest does less)" && continue
                [ $r = 2 ] && t_fail "inconclusive: below the limits above or guest starved in both runs; rerun on a quieter host"
                t_fail "the change did not hold to the limits above"
        done
        io_max_is "$DEV" "rbps=max wbps=max riops=150 wiops=max"
        tag=$(limits_tag "$id")
        [ "$tag" = "v1/ri:150" ] || t_fail "tag after modify: '$tag'"
        # A restart re-applies the modified budget from the tag (the line
        # is dropped by hand while the plugin is down, so the one seen
        # after the start is the plugin's).
        stop_plugin KILL
        echo "$DEV rbps=max wbps=max riops=max wiops=max" >$CG/io.max
        io_max_line "$DEV" && t_fail "line not dropped by hand"
        start_plugin
        io_max_is "$DEV" "rbps=max wbps=max riops=150 wiops=max"
        unstage "$id" live >/dev/null || t_fail "unstage"
        io_max_line "$DEV" && t_fail "io.max line left after unstage: $(cat $CG/io.max)"
        delete "$id" >/dev/null || t_fail "delete"
}

test_per_gib_limits_resolve_for_the_capacity_and_rescale_on_expansion() {
        start_plugin
        local id out got attempt small
        # 10 write IOPS per GiB with a floor of 100: a 32 MiB volume (one
        # GiB, rounded up) gets the floor.
        small=$(create pergib-small $((32 * MiB)) ',"writeIOPSPerGiB":"10","minWriteIOPS":"100"') || t_fail "create small"
        stage_and_find "$small" pergib-small
        io_max_is "$DEV" "rbps=max wbps=max riops=max wiops=100"
        unstage "$small" pergib-small >/dev/null || t_fail "unstage small"
        io_max_line "$DEV" && t_fail "io.max line left"
        delete "$small" >/dev/null || t_fail "delete small"

        # Thin: a 1 GiB volume costs only what is written.
        id=$(create pergib $GiB ',"readIOPSPerGiB":"300","writeIOPSPerGiB":"100","maxWriteIOPS":"150","readBytesPerSecondPerGiB":"4Mi"') ||
                t_fail "create"
        stage_and_find "$id" pergib
        io_max_is "$DEV" "rbps=4194304 wbps=max riops=300 wiops=100"
        publish "$id" pergib >/dev/null || t_fail "publish"
        ctl csi Controller.ControllerExpandVolume --json "{\"volumeId\":\"$id\",\"capacityRange\":{\"requiredBytes\":\"$((GiB + 4 * MiB))\"}}" >/dev/null ||
                t_fail "ControllerExpandVolume"
        out=$(ctl csi Node.NodeExpandVolume --json "{\"volumeId\":\"$id\",\"volumePath\":\"$(target_of pergib)\",
                \"stagingTargetPath\":\"$(staging_of pergib)\",\"capacityRange\":{\"requiredBytes\":\"$((GiB + 4 * MiB))\"},
                \"volumeCapability\":$BLOCK_CAP}") || t_fail "NodeExpandVolume"
        [ "$(jval capacityBytes <<<"$out")" = $((GiB + 4 * MiB)) ] || t_fail "capacity: $out"
        # 1 GiB + 4 MiB is budgeted as 2 GiB; the write ceiling holds.
        io_max_is "$DEV" "rbps=8388608 wbps=max riops=600 wiops=150"
        [ "$(limits_tag "$id")" = "v1/rig:300/wig:100/wix:150/rbg:4Mi" ] || t_fail "tag: '$(limits_tag "$id")'"
        # And the kernel holds the rescaled read budget (8 MiB/s is 2048
        # reads of 4 KiB: the IOPS budget binds, not the bytes), on the
        # first 32 MiB, written first, as the other tests read written
        # blocks.
        dd if=/dev/zero of="$MAP" bs=1M count=32 oflag=direct status=none || t_fail "prefill"
        FIO_SIZE=(--size=32M)
        for attempt in 1 2; do
                fio_watched g "$MAP" randread 3 $D/g.json || t_fail "fio"
                got=$(fio_iops $D/g.json read)
                say "    after expansion to 2 GiB (budget): randread limit 600 measured $got IOPS ($(err_pct "$got" 600)%), longest guest pause $(cat $D/gap.g) s"
                judge "randread after expansion (600)" "$got" 600 $attempt g && break
        done
        FIO_SIZE=()
        unpublish "$id" pergib >/dev/null || t_fail "unpublish"
        unstage "$id" pergib >/dev/null || t_fail "unstage"
        io_max_line "$DEV" && t_fail "io.max line left"
        delete "$id" >/dev/null || t_fail "delete"
}

test_bad_values_are_invalid_argument_and_change_nothing() {
        start_plugin
        local id lvs_before p err tag line
        lvs_before=$(lvm_ lvs --noheadings -o lv_name $VG | sort)
        # (every parser rule is in tests/unit; here one of each kind, through the RPC)
        for p in '"iops":"-5"' '"readIOPS":"0"' '"writeIOPS":"1"' '"readIOPS":"abc"' '"readIOPS":"1.5"' \
                '"writeBytesPerSecond":"10M"' '"readIOPSPerGiB":"0"' '"writeBytesPerSecondPerGiB":"17179869184Gi"' \
                '"minReadIOPS":"100"'; do
                err=$(expect_status INVALID_ARGUMENT "CreateVolume with $p" create bad $((32 * MiB)) ",$p") || exit 1
                say "    create $p: ${err:0:150}"
        done
        # the per-GiB product: 2 x 3000000000 passes the kernel's largest IOPS
        err=$(expect_status INVALID_ARGUMENT "per-GiB product overflow" create bad $((2 * GiB)) ',"readIOPSPerGiB":"3000000000"') || exit 1
        say "    create 2 GiB readIOPSPerGiB=3000000000: ${err:0:150}"
        [ "$(lvm_ lvs --noheadings -o lv_name $VG | sort)" = "$lvs_before" ] || t_fail "a refused CreateVolume left an LV"

        id=$(create good $((32 * MiB)) ',"readIOPS":"300"') || t_fail "create"
        stage_and_find "$id" good
        io_max_is "$DEV" "rbps=max wbps=max riops=300 wiops=max"
        tag=$(limits_tag "$id")
        for p in '"readIOPS":"-1"' '"readIOPS":"0"' '"readIOPS":"ten"' '"fooIOPS":"100"' \
                '"readIOPS":"100","keySource":"derived"' '"readIOPSPerGiB":"4294967295"' \
                '"readIOPS":"100","readIOPSPerGiB":"10"'; do
                err=$(expect_status INVALID_ARGUMENT "ControllerModifyVolume with $p" modify "$id" "$p") || exit 1
                say "    modify $p: ${err:0:150}"
                line=$(io_max_line "$DEV")
                [ "$line" = "$DEV rbps=max wbps=max riops=300 wiops=max" ] || t_fail "modify $p changed io.max: $line"
        done
        [ "$(limits_tag "$id")" = "$tag" ] || t_fail "a refused modify changed the tag: $tag -> $(limits_tag "$id")"
        unstage "$id" good >/dev/null || t_fail "unstage"
        delete "$id" >/dev/null || t_fail "delete"
}

test_cli_shows_and_changes_a_volumes_limits() {
        start_plugin
        local id out err
        id=$(create cli $((32 * MiB)) ',"iops":"200"') || t_fail "create"
        out=$(timeout 120 "$CTL" --endpoint "unix://$SOCK" limits --vg $VG "$id") || t_fail "limits (unstaged): $out"
        grep -q "^Spec      v1/ri:200/wi:200$" <<<"$out" || t_fail "spec not shown: $out"
        grep -q "^In force  - (not staged" <<<"$out" || t_fail "unstaged not said: $out"
        stage_and_find "$id" cli
        out=$(timeout 120 "$CTL" --endpoint "unix://$SOCK" limits --vg $VG -o json "$id") || t_fail "limits -o json: $out"
        [ "$($PY -c 'import json,sys; d=json.load(sys.stdin); print(d["inForce"]["readIOPS"], d["inForce"]["writeIOPS"], d["staged"])' <<<"$out")" = "200 200 True" ] ||
                t_fail "in force (json): $out"
        # --set goes through ControllerModifyVolume: tag and io.max at once.
        out=$(timeout 120 "$CTL" --endpoint "unix://$SOCK" limits --vg $VG "$id" --set readIOPS=300 --set writeBytesPerSecond=2Mi) ||
                t_fail "limits --set: $out"
        say "$(sed 's/^/    /' <<<"$out")"
        io_max_is "$DEV" "rbps=max wbps=2097152 riops=300 wiops=max"
        [ "$(limits_tag "$id")" = "v1/ri:300/wb:2Mi" ] || t_fail "tag after --set: '$(limits_tag "$id")'"
        grep -q "^In force  riops=300 wiops=max rbps=max wbps=2" <<<"$out" || t_fail "new budget not shown: $out"
        # A bad value: the plugin's INVALID_ARGUMENT, exit status 1, nothing changed.
        err=$(timeout 120 "$CTL" --endpoint "unix://$SOCK" limits --vg $VG "$id" --set readIOPS=-3 2>&1 >/dev/null)
        [ $? = 1 ] || t_fail "bad --set: exit status not 1"
        [[ "$err" == INVALID_ARGUMENT:* ]] || t_fail "bad --set: $err"
        io_max_is "$DEV" "rbps=max wbps=2097152 riops=300 wiops=max"
        # --clear removes the budget: no tag, no io.max line.
        timeout 120 "$CTL" --endpoint "unix://$SOCK" limits --vg $VG "$id" --clear >/dev/null || t_fail "limits --clear"
        [ -z "$(limits_tag "$id")" ] || t_fail "tag after --clear: '$(limits_tag "$id")'"
        io_max_line "$DEV" && t_fail "io.max line left after --clear: $(cat $CG/io.max)"
        unstage "$id" cli >/dev/null || t_fail "unstage"
        delete "$id" >/dev/null || t_fail "delete"
}

test_unstage_leaves_no_io_max_line() {
        start_plugin
        local id i lines=0
        id=$(create gone $((32 * MiB)) ',"iops":"250","writeBytesPerSecond":"4Mi"') || t_fail "create"
        for i in 1 2; do
                stage_and_find "$id" gone
                io_max_is "$DEV" "rbps=max wbps=4194304 riops=250 wiops=250"
                unstage "$id" gone >/dev/null || t_fail "unstage"
                io_max_line "$DEV" && t_fail "io.max line left after unstage $i: $(cat $CG/io.max)"
        done
        unstage "$id" gone >/dev/null || t_fail "unstage again (idempotent)"
        # Nothing of this suite's is left on kubepods at all.
        [ -s $CG/io.max ] && lines=$(wc -l <$CG/io.max)
        [ "$lines" = 0 ] || t_fail "io.max not empty: $(cat $CG/io.max)"
        delete "$id" >/dev/null || t_fail "delete"
}

# TV_IOL_ONLY=REGEX runs only the matching tests (while working on them).
for t in $(declare -F | awk '{print $3}' | grep '^test_' | grep -E "${TV_IOL_ONLY:-.}"); do
        t0=$(date +%s)
        t_run "$t"
        say "    ($(($(date +%s) - t0)) s)"
done
stop_plugin
cleanup
pool_remove $VG
rmdir $CG 2>/dev/null
t_summary
