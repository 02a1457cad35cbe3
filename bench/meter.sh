#!/usr/bin/env bash
# bench/meter.sh: what one metering pass costs at 10, 100 and 1000 volumes,
# beside the lvm2 and device-mapper commands it cannot do without (issue 6,
# item 5). Runs INSIDE the QEMU guest; `bench/run meter` starts it through
# tests/vm/run-in-guest and keeps what it prints. Nothing outlives the
# guest: everything is on stdout.
#
# Usage (guest only): bench/meter.sh BUILD_DIR
# Environment (all optional; run-in-guest passes TV_* through):
#   TV_BENCH_STEPS      volume counts measured, ascending (default "10 100 1000")
#   TV_BENCH_REPS       measurements of each kind per step (default 3)
#   TV_BENCH_STAGED     volumes made and staged (LUKS2 + ext4, mounted)
#                       through the driver (default 5)
#   TV_BENCH_TENANTS    tenants the volumes are spread over (default 4)
#   TV_BENCH_BUDGET     guest seconds after which no more volumes are made:
#                       the last step is then measured at the count reached
#                       (default 1100)
#   TV_BENCH_LOCAL_LVM  0: leave lvm2, dmsetup, thinvaultctl, curl on 9p
#
# Setup, not measured: a VG on a loop file with a 32 MiB metadata area (1000
# LVs with their tags take ~1 MiB of text per copy; the default area is 1
# MiB) and a 1 GiB thin pool with 64 MiB of pool metadata. The plugin runs
# on it with --metrics-address. TV_BENCH_STAGED volumes are made with
# Controller.CreateVolume (64 MiB, readIOPS/writeIOPS set) and staged with
# Node.NodeStageVolume, so the collector's per-staged-volume path (mount
# table, statvfs, /sys/block/dm-N/stat, io.max, io.stat) runs. The other
# volumes are 64 MiB thin LVs with the tags the driver wrote on the first
# of those (tenant, name, pvc, fs, keysrc, limits), so the collector and the
# exposition treat them as the driver's volumes; they are made with lvcreate
# lines fed to `lvm` (one process per 100 LVs: lvm2's shell) without being
# activated, then activated with one vgchange, so what is made at each step
# costs a few lvm2 processes, not one per volume.
#
# Measured at each step, REPS times each, in an order that rotates:
#   scrape        curl GET /metrics: wall time; the plugin's own log
#                 (`msg="metrics scraped" ms=`, and the `lvm2 done` lines
#                 of that scrape); the plugin's VmRSS before and after and
#                 VmHWM after, from /proc/PID/status
#   usage         thinvaultctl usage -o json (the collector, no LUKS probe)
#   volumes       thinvaultctl volumes -o json (the collector with a LUKS
#                 probe of every volume)
#   bare lvs      lvm lvs --reportformat json --units b --nosuffix -o
#                 <TV_LVM_LVS_FIELDS> VG with TV_LVM_CONFIG: the command
#                 every listing of the collector runs
#   bare lvs, devices filtered to the PV: the same with a global_filter,
#                 to show what lvm2's device scan costs at this size
#   bare dmsetup  dmsetup status: every dm device's status, which is what
#                 the collector reads per volume (by ioctl, not by process)
#   floors        thinvaultctl --help (process start and dynamic linking)
#                 and curl GET /nothing (a 404 from the same HTTP server)
# Commands are timed with bash's $EPOCHREALTIME around GNU time, which
# gives each command's maximum RSS.
set -uo pipefail

BUILD=${1:-${TV_BUILD:-}}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
NAME=meter
. "$HERE/lib.sh"
STEPS=${TV_BENCH_STEPS:-10 100 1000}
REPS=${TV_BENCH_REPS:-3}
NSTAGED=${TV_BENCH_STAGED:-5}
NTENANTS=${TV_BENCH_TENANTS:-4}
BUDGET=${TV_BENCH_BUDGET:-1100}
LOCAL=${TV_BENCH_LOCAL_LVM:-1}
CHUNK=100 # lvcreate lines per lvm2 shell

guest_only
[ -n "$BUILD" ] || die "usage: bench/meter.sh BUILD_DIR"
BUILD=$(cd "$BUILD" && pwd) || die "no build directory $BUILD"
CSI=$BUILD/csi/thinvault-csi
CTL=$BUILD/cli/thinvaultctl
[ -x "$CSI" ] && [ -x "$CTL" ] || die "$CSI or $CTL is missing; build first (scripts/build)"
for v in REPS NSTAGED NTENANTS BUDGET; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v} is not a positive number"; done
prev=0
for s in $STEPS; do
        [[ $s =~ ^[1-9][0-9]*$ ]] && [ "$s" -gt "$prev" ] || die "TV_BENCH_STEPS must be ascending numbers (got '$STEPS')"
        prev=$s
done
FIRST_STEP=${STEPS%% *}
[ "$FIRST_STEP" -ge "$NSTAGED" ] || die "the first step ($FIRST_STEP) is below TV_BENCH_STAGED ($NSTAGED)"
TIME=/usr/bin/time
JQ=/usr/bin/jq
for t in curl dmsetup $TIME $JQ; do command -v $t >/dev/null || die "$t is not installed"; done

LVM_CONFIG=$(read_define "$ROOT/include/thinvault/lvm.h" TV_LVM_CONFIG)
[[ $LVM_CONFIG == *udev_sync=0* ]] || die "could not read TV_LVM_CONFIG from include/thinvault/lvm.h (got '$LVM_CONFIG')"
LVS_FIELDS=$(read_define "$ROOT/include/thinvault/lvm.h" TV_LVM_LVS_FIELDS)
[ -n "$LVS_FIELDS" ] || die "could not read TV_LVM_LVS_FIELDS from include/thinvault/lvm.h"

D=/tmp/tv-bench-meter
VG=tvmeter
POOL=pool
IMG=/tmp/$VG.img
SOCK=$D/csi.sock
LOG=$D/csi.log
K=$D/kubelet
CG=/sys/fs/cgroup/kubepods
MiB=1048576
export DM_DISABLE_UDEV=1 # dmsetup: no udev in the guest
rm -rf $D
mkdir -p $D $K/plugins
: >$D/seq
[ -d $CG ] || mkdir $CG || die "cannot make $CG"
ip link set lo up || die "cannot bring the loopback up (the scrape goes over 127.0.0.1)"
(umask 077 && head -c 32 /dev/urandom | base64 -w0 >$D/key) || die "cannot make a key"

cleanup() {
        local m
        for m in $(grep -o " $D/[^ ]*" /proc/self/mountinfo | sort -r); do umount "$m" 2>/dev/null; done
        stop_plugin
        for m in /dev/mapper/tvc-*; do [ -e "$m" ] && dmsetup remove "${m##*/}" 2>/dev/null; done
        lvm_ vgremove -q -f $VG >/dev/null 2>&1
        for m in $(losetup -j $IMG -O NAME -n 2>/dev/null); do losetup -d "$m" 2>/dev/null; done
        rm -f $IMG
}
trap cleanup EXIT

T_START=$SECONDS
echo "== meter benchmark (in the guest)"
echo "guest: kernel $(uname -r), $(nproc) vCPUs, $(awk '/MemTotal/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo)," \
        "$(lvm version | awk '/LVM version/ { print "lvm2 " $3 }'), $(curl --version | head -n 1 | cut -d' ' -f1-2)"
echo "steps: ${STEPS// /, } volumes ($NSTAGED of them staged: LUKS2 + ext4, mounted), over $NTENANTS tenants;" \
        "$REPS measurements of each kind per step; no new volumes after ${BUDGET} s of guest time"
if [ "$LOCAL" = 1 ]; then
        # Everything exec'd inside timed work; the plugin too (its pages are
        # read at first use, which the warm-up does).
        localize "$(command -v lvm)" "$(command -v dmsetup)" "$(command -v curl)" "$TIME" "$CTL" "$CSI"
else
        echo "binaries left on 9p (TV_BENCH_LOCAL_LVM=0): every exec re-reads them from the host"
fi

# ------------------------------------------------------------ the pool
t=$SECONDS
truncate -s 2G $IMG || die "cannot make $IMG"
LOOP=$(losetup --find --show $IMG) || die "cannot attach $IMG"
lvm_ pvcreate -q --metadatasize 32m "$LOOP" >/dev/null &&
        lvm_ vgcreate -q $VG "$LOOP" >/dev/null &&
        lvm_ lvcreate -q --yes --type thin-pool -L 1g --poolmetadatasize 64m --zero n -n $POOL $VG >/dev/null &&
        lvm_ lvchange -q --errorwhenfull y $VG/$POOL >/dev/null ||
        die "cannot make the VG and pool: $(tail -3 $D/lvm.err)"
# For the bulk lvcreates and one reference row: lvm2 looks at the PV only,
# and keeps no metadata backups or archives (setup speed, not measured).
FILTERED=${LVM_CONFIG/obtain_device_list_from_udev=0/obtain_device_list_from_udev=0 global_filter=[\"a|^$LOOP\$|\",\"r|.*|\"]}
[ "$FILTERED" != "$LVM_CONFIG" ] || die "cannot add a global_filter to '$LVM_CONFIG'"
BULK_CONFIG="${FILTERED/activation\{/activation\{monitoring=0 } backup{backup=0 archive=0}"
echo "VG $VG on $LOOP (2 GiB loop file, PV metadata area 32 MiB), thin pool $POOL 1 GiB (metadata 64 MiB) in $((SECONDS - t)) s"

start_plugin --node-id bench-node --vg $VG --thin-pool $POOL --kubelet-dir $K --cgroup-parent $CG \
        --metrics-address 127.0.0.1:0 --log-level debug
PID=$(cat $D/pid)
PORT=$(grep -o 'msg="serving metrics" .* port=[0-9]*' $LOG | sed 's/.*port=//' | head -n 1)
[ -n "$PORT" ] || die "the plugin did not say which port it serves metrics on: $(tail -3 $LOG)"
echo "plugin up after $((SECONDS - T_START)) s, metrics on 127.0.0.1:$PORT"

# ------------------------------------------------------ staged volumes
MOUNT_CAP='{"mount":{"fsType":"ext4"},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}'
tenant_of() { echo "team-$((($1 - 1) % NTENANTS + 1))"; }
staging_of() { echo "$K/plugins/kubernetes.io/csi/thinvault.csi.io/$1/globalmount"; }
t=$SECONDS
for i in $(seq "$NSTAGED"); do
        name=staged-$i
        untimed CreateVolume ctl Controller.CreateVolume --json "{\"name\":\"$name\",\"capacityRange\":{\"requiredBytes\":\"$((64 * MiB))\"},
                \"volumeCapabilities\":[$MOUNT_CAP],\"parameters\":{\"csi.storage.k8s.io/pvc/namespace\":\"$(tenant_of $i)\",
                \"csi.storage.k8s.io/pvc/name\":\"claim-$name\",\"readIOPS\":\"500\",\"writeIOPS\":\"300\"}}" >$D/reply
        id=$(volume_id $D/reply)
        [ -n "$id" ] || die "no volumeId in the CreateVolume reply: $(head -c 300 $D/reply)"
        [ "$i" -eq 1 ] && LV1=${id#*:}
        stg=$(staging_of $name)
        mkdir -p "$stg"
        req $D/stage.json "{\"volumeId\":\"$id\",\"stagingTargetPath\":\"$stg\",\"volumeCapability\":$MOUNT_CAP,\"secrets\":{\"key\":\"$(cat $D/key)\"}}"
        untimed NodeStageVolume ctl Node.NodeStageVolume --json @$D/stage.json >/dev/null
        [ -b "/dev/mapper/tvc-${id#*:}" ] && mountpoint -q "$stg" || die "volume $name is not staged"
        head -c $((4 * MiB)) /dev/urandom >"$stg/data" && sync || die "cannot write to $stg"
done
rm -f $D/stage.json
TAGS=$(lvm_ lvs --noheadings -o lv_tags "$VG/$LV1" | tr -d ' ')
[[ $TAGS == *tv.kind=volume* && $TAGS == *tv.name=staged-1* && $TAGS == *tv.tenant=team-1* &&
        $TAGS == *tv.pvc=team-1/claim-staged-1* && $TAGS == *tv.limits=* ]] ||
        die "unexpected tags on the driver's volume: $TAGS"
echo "$NSTAGED volumes made and staged by the driver in $((SECONDS - t)) s (4 MiB written to each); its tags: $TAGS"

# ----------------------------------------------------- bulk volumes
# tag_args I: --addtag arguments for bulk volume I (name, pvc and tenant
# replaced in the driver's tags).
tag_args() {
        local tags tag n t
        printf -v n 'bulk-%04d' "$1"
        TAG_ARGS=()
        tags=${TAGS//staged-1/$n}
        t=$(tenant_of "$1")
        tags=${tags//tv.pvc=team-1\//tv.pvc=$t/}
        IFS=, read -ra tags <<<"${tags//tv.tenant=team-1/tv.tenant=$t}"
        for tag in "${tags[@]}"; do TAG_ARGS+=(--addtag "$tag"); done
}
# lvmb CMD...: an lvm2 command with the bulk config (one --config only: lvm2
# takes the option once).
lvmb() { "$@" --config "$BULK_CONFIG" 2>>$D/lvm.err; }
n_bulk() { lvmb lvs --noheadings -o lv_name $VG | grep -c ' bulk-'; }
# The lvm2 shell reads its settings from an lvm.conf of its own rather than
# from --config on every line: lvm2 rebuilds its whole context (device
# cache, filters) before and after each command given --config.
LVM_DIR=$D/lvm
mkdir -p $LVM_DIR
sed 's/} /}\n/g' <<<"$BULK_CONFIG" >$LVM_DIR/lvm.conf || die "cannot write $LVM_DIR/lvm.conf"
ACT=-an
CONFIG_ARG=""
BULK=0 # bulk volumes made
# grow_to TOTAL: make bulk volumes until TOTAL volumes exist (or the time
# budget is spent), then activate them. Prints what it took.
grow_to() {
        local want=$(($1 - NSTAGED)) t0=$SECONDS from to i got chunks=0 first="" last=""
        while [ $BULK -lt $want ]; do
                if [ $((SECONDS - T_START)) -ge "$BUDGET" ]; then
                        echo "   time budget (${BUDGET} s) spent: stopping at $((BULK + NSTAGED)) volumes"
                        break
                fi
                from=$((BULK + 1)) to=$((BULK + CHUNK))
                [ $to -le $want ] || to=$want
                for i in $(seq $from $to); do
                        tag_args "$i"
                        printf "lvcreate -q --yes $ACT$CONFIG_ARG --type thin -V 64m --thinpool %s -n bulk-%04d %s %s\n" \
                                $POOL "$i" "${TAG_ARGS[*]}" $VG
                done >$D/bulk.lvm
                local c0=${EPOCHREALTIME//[.,]/}
                LVM_SYSTEM_DIR=$LVM_DIR lvm <$D/bulk.lvm >/dev/null 2>>$D/lvm.err
                local c1=${EPOCHREALTIME//[.,]/}
                got=$(n_bulk)
                if [ "$got" -ne $to ] && [ "$LVM_DIR" != /etc/lvm ] && [ $chunks -eq 0 ]; then
                        # The way bench/controller.sh makes its LVs.
                        echo "   the lvm2 shell made $((got - BULK)) of $((to - BULK)) LVs ($(tail -1 $D/lvm.err));" \
                                "again with --config on each line and the LVs activated"
                        ACT=""
                        LVM_DIR=/etc/lvm
                        CONFIG_ARG=" --config '$BULK_CONFIG'"
                        for i in $(seq $from $to); do
                                tag_args "$i"
                                printf "lvcreate -q --yes$CONFIG_ARG --type thin -V 64m --thinpool %s -n bulk-%04d %s %s\n" \
                                        $POOL "$i" "${TAG_ARGS[*]}" $VG
                        done >$D/bulk.lvm
                        c0=${EPOCHREALTIME//[.,]/}
                        lvm <$D/bulk.lvm >/dev/null 2>>$D/lvm.err
                        c1=${EPOCHREALTIME//[.,]/}
                        got=$(n_bulk)
                fi
                [ "$got" -eq $to ] || die "the lvm2 shell made $((got - BULK)) of $((to - BULK)) LVs: $(tail -3 $D/lvm.err)"
                last=$(awk -v us=$((c1 - c0)) -v n=$((to - BULK)) 'BEGIN { printf "%.2f", us / n / 1e6 }')
                [ -n "$first" ] || first=$last
                BULK=$to
                chunks=$((chunks + 1))
        done
        [ $chunks -gt 0 ] || return 0
        local a0=${EPOCHREALTIME//[.,]/}
        lvmb vgchange -q -ay $VG >/dev/null || die "vgchange -ay: $(tail -3 $D/lvm.err)"
        local a1=${EPOCHREALTIME//[.,]/}
        got=$(dmsetup ls | grep -c "^$VG-bulk--")
        [ "$got" -eq $BULK ] || die "$got of $BULK bulk LVs are active after vgchange -ay"
        echo "   $BULK bulk LVs ($((BULK + NSTAGED)) volumes) after $((SECONDS - t0)) s: $chunks lvm2 shell(s) of up to $CHUNK lvcreate$([ -n "$ACT" ] && echo " $ACT")," \
                "s per LV: first chunk $first, last $last; vgchange -ay $(awk -v us=$((a1 - a0)) 'BEGIN { printf "%.1f", us / 1e6 }') s"
}

# ------------------------------------------------------ measurements
rss() { awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r, h }' /proc/$PID/status; }
# run_cmd KEY N CMD...: CMD's wall time (us) to $D/us.KEY.N and its max RSS
# (KiB, GNU time) to $D/kib.KEY.N; its stdout in $D/out.KEY.
run_cmd() {
        local key=$1 n=$2 t0 t1 rc
        shift 2
        t0=${EPOCHREALTIME//[.,]/}
        $TIME -f %M -o $D/maxrss "$@" >$D/out.$key 2>>$D/cmd.err
        rc=$?
        t1=${EPOCHREALTIME//[.,]/}
        [ $rc -eq 0 ] || die "$key: '$*' failed (status $rc): $(tail -3 $D/cmd.err) $(tail -3 $D/lvm.err 2>/dev/null)"
        echo $((t1 - t0)) >>$D/us.$key.$n
        tail -n 1 $D/maxrss >>$D/kib.$key.$n
}
# scrape N: one GET /metrics, with the plugin's side of it.
scrape() {
        local n=$1 lines r0 h0 r1 h1 t0 t1 i
        read -r r0 h0 <<<"$(rss)"
        lines=$(wc -l <$LOG)
        t0=${EPOCHREALTIME//[.,]/}
        curl -sS -m 600 -o $D/out.scrape "http://127.0.0.1:$PORT/metrics" 2>>$D/cmd.err || die "scrape: $(tail -3 $D/cmd.err)"
        t1=${EPOCHREALTIME//[.,]/}
        read -r r1 h1 <<<"$(rss)"
        echo $((t1 - t0)) >>$D/us.scrape.$n
        echo "$r0" >>$D/kib.rss_before.$n
        echo "$r1" >>$D/kib.rss_after.$n
        echo "$h1" >>$D/kib.hwm_after.$n
        wc -c <$D/out.scrape >>$D/b.scrape.$n
        for i in $(seq 50); do
                tail -n +$((lines + 1)) $LOG | grep -q 'msg="metrics scraped"' && break
                sleep 0.1
        done
        tail -n +$((lines + 1)) $LOG | awk -v dir=$D -v n=$n '
                function field(k) { return match($0, " " k "=[^ ]*") ? substr($0, RSTART + length(k) + 2, RLENGTH - length(k) - 2) : "" }
                /msg="lvm2 done"/ { lvm += field("ms"); cmds++; next }
                /msg="metrics scraped"/ { ms = field("ms"); seen = 1 }
                END {
                        if (!seen) { print "no \"metrics scraped\" line in the plugin log" > "/dev/stderr"; exit 1 }
                        print ms * 1000 >> (dir "/us.srv." n); print lvm * 1000 >> (dir "/us.srvlvm." n)
                        print (ms - lvm) * 1000 >> (dir "/us.srvrest." n); print cmds >> (dir "/cnt.srvlvm." n)
                }' || die "cannot read the scrape's figures from the plugin log: $(tail -3 $LOG)"
}
measure() { # measure KIND N
        case $1 in
        scrape) scrape "$2" ;;
        usage) run_cmd usage "$2" "$CTL" usage --vg $VG --thin-pool $POOL --cgroup-parent $CG -o json ;;
        volumes) run_cmd volumes "$2" "$CTL" volumes --vg $VG --thin-pool $POOL --cgroup-parent $CG -o json ;;
        lvs) run_cmd lvs "$2" lvm lvs --config "$LVM_CONFIG" --reportformat json --units b --nosuffix -o "$LVS_FIELDS" $VG ;;
        lvsf) run_cmd lvsf "$2" lvm lvs --config "$FILTERED" --reportformat json --units b --nosuffix -o "$LVS_FIELDS" $VG ;;
        dm) run_cmd dm "$2" dmsetup status ;;
        ctlfloor) run_cmd ctlfloor "$2" "$CTL" --help ;;
        curlfloor) run_cmd curlfloor "$2" curl -sS -m 60 "http://127.0.0.1:$PORT/nothing" ;;
        esac
}
KINDS=(scrape usage lvs volumes dm lvsf ctlfloor curlfloor)

# check N: every volume is in what each measured command printed.
check() {
        local n=$1 got
        got=$(grep -c '^thinvault_volume_provisioned_bytes{' $D/out.scrape)
        [ "$got" -eq "$n" ] || die "the scrape has $got volume series, expected $n"
        got=$(grep '^thinvault_volume_staged{' $D/out.scrape | grep -c ' 1$')
        [ "$got" -eq "$NSTAGED" ] || die "the scrape has $got staged volumes, expected $NSTAGED"
        got=$($JQ '[.tenants[].volumes] | add' $D/out.usage) && [ "$got" -eq "$n" ] ||
                die "thinvaultctl usage counts $got volumes, expected $n"
        got=$($JQ '.volumes | length' $D/out.volumes) && [ "$got" -eq "$n" ] ||
                die "thinvaultctl volumes lists $got volumes, expected $n"
        got=$($JQ '.report[0].lv | length' $D/out.lvs) && [ "$got" -eq $((n + 1)) ] ||
                die "lvs lists $got LVs, expected $((n + 1)) (the volumes and the pool)"
}

# ---------------------------------------------------------------- run
echo
echo "-- warm-up (not measured): every command once"
t=$SECONDS
for k in "${KINDS[@]}"; do measure $k warm; done
echo "   done in $((SECONDS - t)) s; plugin VmRSS/VmHWM after: $(rss | awk '{ printf "%.1f / %.1f MiB", $1 / 1024, $2 / 1024 }')"

MEASURED=()
for step in $STEPS; do
        echo
        echo "-- step: $step volumes"
        grow_to "$step"
        n=$((BULK + NSTAGED))
        MEASURED+=("$n")
        t=$SECONDS
        for r in $(seq "$REPS"); do
                for j in $(seq 0 $((${#KINDS[@]} - 1))); do
                        measure ${KINDS[$(((j + r) % ${#KINDS[@]}))]} $n
                done
        done
        check $n
        echo "   $REPS rounds measured in $((SECONDS - t)) s; scrape $(tail -n 1 $D/b.scrape.$n) bytes," \
                "lvs JSON $(wc -c <$D/out.lvs) bytes, dmsetup status $(wc -l <$D/out.dm) devices"
        [ $n -eq "$step" ] || break
done

# ---------------------------------------------------------------- report
# cell FILE DIV: "p50 (max)" of the numbers in FILE divided by DIV.
cell() {
        [ -s "$1" ] || { echo -; return; }
        sort -n "$1" | awk -v div="$2" '{ v[NR] = $1 } END { i = int((NR + 1) / 2); printf "%.1f (%.1f)", v[i] / div, v[NR] / div }'
}
p50() {
        [ -s "$1" ] || { echo -; return; }
        sort -n "$1" | awk -v div="$2" '{ v[NR] = $1 } END { printf "%.3f", v[int((NR + 1) / 2)] / div }'
}
W=50
row() { # row LABEL PREFIX DIV: one cell per N, and the growth per volume between the last two
        local n cells=() a b
        for n in "${MEASURED[@]}"; do cells+=("$(cell $D/$2.$n $3)"); done
        if [ ${#MEASURED[@]} -ge 2 ]; then
                a=$(p50 $D/$2.${MEASURED[-2]} $3)
                b=$(p50 $D/$2.${MEASURED[-1]} $3)
                cells+=("$(awk -v a="$a" -v b="$b" -v d=$((MEASURED[-1] - MEASURED[-2])) 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%+.3f", (b - a) / d }')")
        fi
        printf "%-${W}s" "$1"
        printf ' | %17s' "${cells[@]}"
        echo
}
hdr() {
        local n
        printf "%-${W}s" "$1"
        for n in "${MEASURED[@]}"; do printf ' | %17s' "N=$n"; done
        [ ${#MEASURED[@]} -ge 2 ] && printf ' | %17s' "per volume ${MEASURED[-2]}->${MEASURED[-1]}"
        echo
        printf '%s' "$(printf "%-${W}s" "" | tr ' ' -)"
        for n in "${MEASURED[@]}" $([ ${#MEASURED[@]} -ge 2 ] && echo x); do printf '%s' "-+-$(printf '%17s' "" | tr ' ' -)"; done
        echo
}
echo
echo "== one metering pass at N volumes ($NSTAGED staged: LUKS2 + ext4 mounted; the rest unstaged, active, tagged as the driver's),"
echo "   p50 (max) of $REPS; the last column is the p50's growth per added volume between the last two steps"
hdr "time, ms"
row "scrape: curl GET /metrics (wall)" us.scrape 1000
row "  plugin side (its log, whole ms)" us.srv 1000
row "    of which lvm2 (lvs of the VG)" us.srvlvm 1000
row "    the rest: per-volume dm/sysfs reads, text" us.srvrest 1000
row "thinvaultctl usage -o json" us.usage 1000
row "thinvaultctl volumes -o json (+ LUKS probe)" us.volumes 1000
row "baseline: bare lvs -o <fields> --reportformat json" us.lvs 1000
row "  the same, devices filtered to the PV" us.lvsf 1000
row "baseline: bare dmsetup status (all devices)" us.dm 1000
row "floor: thinvaultctl --help" us.ctlfloor 1000
row "floor: curl GET /nothing (404)" us.curlfloor 1000
echo
hdr "memory, MiB"
row "plugin VmRSS before a scrape" kib.rss_before 1024
row "plugin VmRSS after a scrape" kib.rss_after 1024
row "plugin VmHWM after a scrape" kib.hwm_after 1024
row "thinvaultctl usage max RSS" kib.usage 1024
row "thinvaultctl volumes max RSS" kib.volumes 1024
row "bare lvs max RSS" kib.lvs 1024
row "bare dmsetup status max RSS" kib.dm 1024
echo
hdr "size"
row "scrape body, KiB" b.scrape 1024
row "lvm2 commands per scrape (the plugin's log)" cnt.srvlvm 1
echo
echo "lvm2 runs in the plugin and thinvaultctl with TV_LVM_CONFIG ($LVM_CONFIG);"
echo "  the bare lvs rows with the same string (the filtered one adds global_filter=[a|^$LOOP\$|, r|.*|])."
echo "the scrape collects with the pool status (TV_METER_POOL_STATUS): one lvs of the VG for the status and the listing"
echo "  (see the lvm2 count row); thinvaultctl usage/volumes open the pool (lvs VG/pool) and list it (lvs VG); volumes"
echo "  also probes every volume's LUKS header (libblkid + libcryptsetup; only the staged ones are LUKS here)."
echo "bulk LVs were made by lvcreate$([ -n "$ACT" ] && echo " $ACT") lines fed to one lvm2 shell per $CHUNK, with" \
        "$([ -z "$CONFIG_ARG" ] && echo "lvm.conf: $(tr '\n' ' ' <$LVM_DIR/lvm.conf)" || echo "--config '$BULK_CONFIG'")"
echo "plugin time is the log's \"metrics scraped\" ms (collection and rendering) and its \"lvm2 done\" ms."
echo "thinvaultctl and bare rows include process start (see the floors); every binary is in the guest's tmpfs."
host_noise_note
echo
echo "guest time for the benchmark: $((SECONDS - T_START)) s"
