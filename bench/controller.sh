#!/usr/bin/env bash
# bench/controller.sh: the Controller service's latency against bare lvm2
# (issue 3 item 6). Runs INSIDE the QEMU guest; `bench/run controller`
# starts it through tests/vm/run-in-guest and keeps what it prints. It
# writes nothing that outlives the guest: everything is on stdout.
#
# Usage (guest only): bench/controller.sh BUILD_DIR
# Environment (all optional; run-in-guest passes TV_* through):
#   TV_BENCH_N      CreateVolume/DeleteVolume pairs measured (default 50)
#   TV_BENCH_LIST   volumes present for ListVolumes/GetCapacity (default 500)
#   TV_BENCH_CALLS  calls of each listing kind measured (default 20)
#   TV_BENCH_LOCAL_LVM  0: do not copy lvm2 into the guest's tmpfs first
#
# What is timed, all sequentially, each sample one wall-clock interval taken
# with bash's $EPOCHREALTIME (no fork for the clock):
#   driver   `thinvaultctl csi Controller.X --json ...` as a whole: process
#            start, connect, the RPC, JSON printing. The plugin's own log
#            (`msg="rpc" ... ms=`) gives the server-side time of the same
#            calls, and its debug lines (`msg="lvm2 done" cmd=... ms=`) the
#            lvm2 commands each RPC ran.
#   bare     the lvm2 commands an admin would type for the same LV,
#            with the same --config (TV_LVM_CONFIG) and the same tags.
#   floor    `thinvaultctl csi Identity.GetPluginInfo`: what the CLI costs
#            when the RPC does nothing. A CSI sidecar holds one connection
#            open and does not pay it.
# Driver and bare calls alternate (which one goes first alternates too), so
# both see the same VG size and the same host noise.
#
# The guest reads the host's files over virtio-9p without a page cache, so
# every exec of lvm2 would re-read ~12 MB of binary and libraries over 9p
# (about 1-2 s per exec under TCG: an artefact no real node has, and the
# driver execs lvm2 several times per RPC). lvm2 and its libraries are first
# copied up into the guest's tmpfs overlay (`touch`), which is what the
# first minute of the run does. thinvaultctl is left on 9p: its cost is
# reported as the CLI floor and is the same in every thinvaultctl row.
set -uo pipefail

BUILD=${1:-${TV_BUILD:-}}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
N=${TV_BENCH_N:-50}
NLIST=${TV_BENCH_LIST:-500}
CALLS=${TV_BENCH_CALLS:-20}

die() { echo "controller.sh: error: $*"; exit 1; }

grep -q 'tv_run=' /proc/cmdline 2>/dev/null ||
        die "runs only inside the test guest (it makes volume groups and loop devices); use: bench/run controller"
[ -n "$BUILD" ] || die "usage: bench/controller.sh BUILD_DIR"
BUILD=$(cd "$BUILD" && pwd) || die "no build directory $BUILD"
CSI=$BUILD/csi/thinvault-csi
CTL=$BUILD/cli/thinvaultctl
[ -x "$CSI" ] && [ -x "$CTL" ] || die "$CSI or $CTL is missing; build first (scripts/build)"
LOCAL_LVM=${TV_BENCH_LOCAL_LVM:-1}
for v in N NLIST CALLS; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v} is not a positive number"; done

# The driver's own no-udev lvm2 config, read from the header so the two
# cannot drift apart.
LVM_CONFIG=$(sed -n '/#define TV_LVM_CONFIG/,/[^\\]$/p' "$ROOT/include/thinvault/lvm.h" |
        grep -o '"[^"]*"' | tr -d '"\n')
[[ $LVM_CONFIG == *udev_sync=0* ]] || die "could not read TV_LVM_CONFIG from include/thinvault/lvm.h (got '$LVM_CONFIG')"
LVS_FIELDS=$(sed -n '/#define TV_LVM_LVS_FIELDS/,/[^\\]$/p' "$ROOT/include/thinvault/lvm.h" |
        grep -o '"[^"]*"' | tr -d '"\n')
[ -n "$LVS_FIELDS" ] || die "could not read TV_LVM_LVS_FIELDS from include/thinvault/lvm.h"

D=/tmp/tv-bench
VG=tvbench
POOL=pool
SOCK=$D/csi.sock
LOG=$D/csi.log
SEQ=$D/seq # one label per driver RPC, in call order (matched to the log)
MiB=1048576
rm -rf $D
mkdir -p $D

ctl() { "$CTL" --endpoint "unix://$SOCK" --timeout 600 csi "$@"; }
# lvm2's stderr (over-provisioning warnings and the like) goes to a file,
# shown if a command fails.
lvm_() { "$@" --config "$LVM_CONFIG" 2>>$D/lvm.err; }

# timed KEY CMD...: run CMD (output as redirected by the caller), append its
# wall time in microseconds to $D/us.KEY. Fails the benchmark if CMD fails.
timed() {
        local key=$1 t0 t1 rc
        shift
        t0=${EPOCHREALTIME//[.,]/}
        "$@"
        rc=$?
        t1=${EPOCHREALTIME//[.,]/}
        [ $rc -eq 0 ] || die "$key: '$*' failed (status $rc); lvm2 said: $(tail -3 $D/lvm.err 2>/dev/null); plugin log: $(tail -3 $LOG 2>/dev/null)"
        echo $((t1 - t0)) >>"$D/us.$key"
}
# drv LABEL KEY CMD...: a timed driver call, its label queued for the log.
drv() {
        local label=$1
        shift
        echo "$label" >>$SEQ
        timed "$@"
}

# stats FILE: "p50 p95 n" in ms (nearest-rank percentiles), or "- - 0".
stats() {
        [ -s "$1" ] || { echo "- - 0"; return; }
        sort -n "$1" | awk '{ v[NR] = $1 }
                END { i50 = int((NR * 50 + 99) / 100); i95 = int((NR * 95 + 99) / 100)
                      printf "%.1f %.1f %d\n", v[i50] / 1000, v[i95] / 1000, NR }'
}
# row LABEL DRIVER_FILE BARE_FILE: one table row; overhead = driver p50 - bare p50.
row() {
        local d b dp50 dp95 dn bp50 bp95 bn ov
        read -r dp50 dp95 dn <<<"$(stats "$2")"
        read -r bp50 bp95 bn <<<"$(stats "${3:-/nonexistent}")"
        d=$dp50 b=$bp50
        if [ "$d" != - ] && [ "$b" != - ]; then
                ov=$(awk -v d="$d" -v b="$b" 'BEGIN { printf "%+.1f (x%.2f)", d - b, (b > 0 ? d / b : 0) }')
        else
                ov=-
        fi
        printf '%-44s | %10s | %10s | %13s | %13s | %s\n' "$1" "$dp50" "$dp95" "$bp50" "$bp95" "$ov"
}
header() {
        printf '%-44s | %10s | %10s | %13s | %13s | %s\n' "$1" "driver p50" "driver p95" "bare lvm2 p50" \
                "bare lvm2 p95" "overhead p50 (ratio)"
        printf '%s\n' "---------------------------------------------+------------+------------+---------------+---------------+---------------------"
}

# ----------------------------------------------------------------- plugin
stop_plugin() {
        local pid i
        pid=$(cat $D/pid 2>/dev/null) || return 0
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        rm -f $D/pid
}
cleanup() {
        stop_plugin
        lvm_ vgremove -q -f $VG >/dev/null 2>&1
        local dev
        for dev in $(losetup -j /tmp/$VG.img -O NAME -n 2>/dev/null); do losetup -d "$dev" 2>/dev/null; done
        rm -f /tmp/$VG.img
}
trap cleanup EXIT

T_START=$SECONDS
echo "== controller benchmark (in the guest)"
echo "guest: kernel $(uname -r), $(nproc) vCPUs, $(awk '/MemTotal/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo)," \
        "$(lvm version | awk '/LVM version/ { print "lvm2 " $3 }')"
echo "sizes: $N create/delete pairs of 64 MiB thin LVs; listing at $NLIST volumes, $CALLS calls each"
echo "lvm2 --config: $LVM_CONFIG"

# localize FILE...: copy the files and the libraries they load up into the
# overlay's tmpfs (overlayfs copies a file up when it is touched).
localize() {
        local t0=$SECONDS files f
        files=$(for f in "$@"; do
                readlink -f "$f"
                ldd "$f" | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
        done | xargs -r -n1 readlink -f | sort -u)
        for f in $files; do touch -c "$f" || die "cannot copy $f up into the guest's tmpfs"; done
        echo "lvm2 made local to the guest: $(echo $files | wc -w) files, $(du -cLk $files | tail -n 1 | cut -f1) KiB in $((SECONDS - t0)) s"
}
if [ "$LOCAL_LVM" = 1 ]; then
        localize "$(command -v lvm)"
else
        echo "lvm2 left on 9p (TV_BENCH_LOCAL_LVM=0): every lvm2 exec re-reads it from the host"
fi

"$CSI" --endpoint "unix://$SOCK" --node-id bench-node --vg $VG --thin-pool $POOL \
        --loop-file /tmp/$VG.img --loop-size 1G --log-level debug >/dev/null 2>>$LOG &
echo $! >$D/pid
for i in $(seq 600); do
        [ -S "$SOCK" ] && break
        kill -0 "$(cat $D/pid)" 2>/dev/null || die "plugin exited: $(tail -5 $LOG)"
        sleep 0.1
done
[ -S "$SOCK" ] || die "plugin did not start in 60 s: $(tail -5 $LOG)"
echo "plugin up after $((SECONDS - T_START)) s (VG and thin pool on a 1 GiB loop file)"

# create_json NAME: a CreateVolume request as the external-provisioner sends one.
create_json() {
        printf '{"name":"%s","capacityRange":{"requiredBytes":"%d"},"volumeCapabilities":[{"mount":{"fsType":"ext4"},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}],"parameters":{"csi.storage.k8s.io/pvc/namespace":"bench","csi.storage.k8s.io/pvc/name":"claim-%s"}}' \
                "$1" $((64 * MiB)) "$1"
}
volume_id() { sed -n 's/.*"volumeId": *"\([^"]*\)".*/\1/p' "$1" | head -n 1; }

# --------------------------------------------------------------- warm-up
# First runs read the binaries over 9p; not measured. The warm-up volume
# also gives the tags the driver sets, for the bare LVs to copy.
drv warmup warmup ctl Identity.GetPluginInfo >/dev/null
drv warmup warmup ctl Controller.CreateVolume --json "$(create_json warm-0)" >$D/reply
WARM_ID=$(volume_id $D/reply)
[ -n "$WARM_ID" ] || die "no volumeId in the CreateVolume reply: $(head -c 300 $D/reply)"
TAGS=$(lvm_ lvs --noheadings -o lv_tags "$VG/${WARM_ID#*:}" | tr -d ' ')
[[ $TAGS == *tv.kind=volume* ]] || die "unexpected tags on the driver's volume: $TAGS"
echo "driver's tags on a volume: $TAGS"
# tag_args NAME: --addtag arguments for a bare LV standing for volume NAME.
tag_args() {
        local tags tag
        TAG_ARGS=()
        IFS=, read -ra tags <<<"${TAGS//warm-0/$1}"
        for tag in "${tags[@]}"; do TAG_ARGS+=(--addtag "$tag"); done
}
tag_args warm-1
timed warmup lvm_ lvcreate -q --yes --type thin -V 64m --thinpool $POOL -n tv-warm-1 "${TAG_ARGS[@]}" $VG >/dev/null
drv warmup warmup ctl Controller.DeleteVolume --json "{\"volumeId\":\"$WARM_ID\"}" >/dev/null
timed warmup lvm_ lvremove -q -y $VG/tv-warm-1 >/dev/null
drv warmup warmup ctl Controller.ListVolumes >/dev/null
drv warmup warmup ctl Controller.GetCapacity >/dev/null
timed warmup lvm_ lvs --reportformat json --units b --nosuffix -o "$LVS_FIELDS" $VG >/dev/null

# ------------------------------------------------------ create / delete
echo
echo "-- phase 1: $N x CreateVolume then $N x DeleteVolume, interleaved with bare lvcreate/lvremove"
t=$SECONDS
declare -a IDS
for i in $(seq "$N"); do
        [ $((i % 2)) -eq 1 ] && drv GetPluginInfo ctl_info ctl Identity.GetPluginInfo >/dev/null
        tag_args "bare-$i"
        if [ $((i % 2)) -eq 1 ]; then
                drv CreateVolume drv_create ctl Controller.CreateVolume --json "$(create_json "crud-$i")" >$D/reply
                timed bare_create lvm_ lvcreate -q --yes --type thin -V 64m --thinpool $POOL -n "tv-bare-$i" "${TAG_ARGS[@]}" $VG >/dev/null
        else
                timed bare_create lvm_ lvcreate -q --yes --type thin -V 64m --thinpool $POOL -n "tv-bare-$i" "${TAG_ARGS[@]}" $VG >/dev/null
                drv CreateVolume drv_create ctl Controller.CreateVolume --json "$(create_json "crud-$i")" >$D/reply
        fi
        IDS[i]=$(volume_id $D/reply)
        [ -n "${IDS[i]}" ] || die "no volumeId in the CreateVolume reply: $(head -c 300 $D/reply)"
done
echo "   $N pairs created in $((SECONDS - t)) s; $(lvm_ lvs --noheadings -o lv_name $VG | grep -c ' tv-') tv-* LVs in the VG"
t=$SECONDS
for i in $(seq "$N"); do
        [ $((i % 2)) -eq 0 ] && drv GetPluginInfo ctl_info ctl Identity.GetPluginInfo >/dev/null
        if [ $((i % 2)) -eq 1 ]; then
                drv DeleteVolume drv_delete ctl Controller.DeleteVolume --json "{\"volumeId\":\"${IDS[i]}\"}" >/dev/null
                timed bare_delete lvm_ lvremove -q -y "$VG/tv-bare-$i" >/dev/null
        else
                timed bare_delete lvm_ lvremove -q -y "$VG/tv-bare-$i" >/dev/null
                drv DeleteVolume drv_delete ctl Controller.DeleteVolume --json "{\"volumeId\":\"${IDS[i]}\"}" >/dev/null
        fi
done
left=$(lvm_ lvs --noheadings -o lv_name $VG | grep -c ' tv-')
echo "   $N pairs deleted in $((SECONDS - t)) s; $left tv-* LVs left"
[ "$left" -eq 0 ] || die "LVs left after the deletes: $(lvm_ lvs $VG)"

# ----------------------------------------------------------- listings
echo
echo "-- phase 2: $NLIST volumes made with lvcreate + the driver's tags, in one lvm2 shell (setup, not measured)"
t=$SECONDS
for i in $(seq "$NLIST"); do
        n=$(printf 'list-%04d' "$i")
        tag_args "$n"
        echo "lvcreate -q --yes --config '$LVM_CONFIG' --type thin -V 64m --thinpool $POOL -n tv-$n ${TAG_ARGS[*]} $VG"
done >$D/bulk.lvm
lvm <$D/bulk.lvm >/dev/null 2>>$D/lvm.err
got=$(lvm_ lvs --noheadings -o lv_name $VG | grep -c ' tv-list-')
[ "$got" -eq "$NLIST" ] || die "the lvm2 shell made $got of $NLIST LVs: $(tail -3 $D/lvm.err)"
echo "   $NLIST LVs in $((SECONDS - t)) s"

echo check >>$SEQ
ctl Controller.ListVolumes >$D/list
got=$(grep -c '"volumeId"' $D/list)
echo "   ListVolumes sees $got volumes ($(wc -c <$D/list) bytes of JSON from thinvaultctl)"
[ "$got" -eq "$NLIST" ] || die "ListVolumes returned $got volumes, expected $NLIST"

echo "-- phase 3: $CALLS rounds of ListVolumes (all), bare lvs, ListVolumes (maxEntries 100, one page), GetCapacity"
CAP_JSON='{"volumeCapabilities":[{"mount":{"fsType":"ext4"},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}]}'
t=$SECONDS
token=
pages=0
for i in $(seq "$CALLS"); do
        drv ListVolumes_all list_all ctl Controller.ListVolumes >$D/reply
        timed bare_lvs lvm_ lvs --reportformat json --units b --nosuffix -o "$LVS_FIELDS" $VG >/dev/null
        # One page per round; the walk wraps around at the end.
        if [ -n "$token" ]; then
                drv ListVolumes_page list_page ctl Controller.ListVolumes --json "{\"maxEntries\":100,\"startingToken\":\"$token\"}" >$D/reply
        else
                drv ListVolumes_page list_page ctl Controller.ListVolumes --json '{"maxEntries":100}' >$D/reply
        fi
        got=$(grep -c '"volumeId"' $D/reply)
        [ "$got" -ge 1 ] && [ "$got" -le 100 ] || die "a maxEntries=100 page had $got entries"
        token=$(sed -n 's/.*"nextToken": *"\([^"]*\)".*/\1/p' $D/reply)
        pages=$((pages + 1))
        drv GetCapacity capacity ctl Controller.GetCapacity --json "$CAP_JSON" >$D/reply
        grep -q '"availableCapacity"' $D/reply || die "GetCapacity reply without availableCapacity: $(head -c 300 $D/reply)"
done
echo "   done in $((SECONDS - t)) s"

# ---------------------------------------------------------------- report
# Server-side figures: the k-th `msg="rpc"` line of the log is the k-th
# label in $SEQ; the `lvm2 done` lines before it are the lvm2 commands
# that RPC ran (calls are sequential).
stop_plugin
awk -v seqfile=$SEQ -v dir=$D '
        BEGIN { while ((getline l < seqfile) > 0) label[++nl] = l }
        function field(k,   m) { return match($0, " " k "=[^ ]*") ? substr($0, RSTART + length(k) + 2, RLENGTH - length(k) - 2) : "" }
        /msg="lvm2 done"/ { c = field("cmd"); cmds[c]++; lvm_ms += field("ms"); next }
        /msg="rpc"/ {
                k++
                lab = label[k]; meth = field("method"); sub(/.*\//, "", meth)
                if (index(lab, meth) != 1 && lab != "warmup" && lab != "check") { printf "log order mismatch at rpc %d: %s vs %s\n", k, lab, meth > "/dev/stderr"; bad = 1 }
                if (lab != "warmup" && lab != "check") {
                        print field("ms") * 1000 >> (dir "/srv." lab)
                        print lvm_ms * 1000 >> (dir "/srvlvm." lab)
                        print (field("ms") - lvm_ms) * 1000 >> (dir "/srvrest." lab)
                        for (c in cmds) { n[lab, c] += cmds[c]; seen[c] = 1 }
                        calls[lab]++
                }
                delete cmds; lvm_ms = 0
        }
        END {
                for (lab in calls) {
                        s = ""
                        for (c in seen) if (n[lab, c]) s = s sprintf("%s%s x%.2f", s == "" ? "" : ", ", c, n[lab, c] / calls[lab])
                        print s > (dir "/cmds." lab)
                }
                if (k != nl) { printf "log has %d rpc lines, %d calls were made\n", k, nl > "/dev/stderr"; bad = 1 }
                exit bad
        }' $LOG || echo "WARNING: the plugin log did not match the calls made; server-side figures may be off"

echo
echo "== CreateVolume / DeleteVolume: driver vs bare lvm2 (ms; $N calls each, 64 MiB thin LVs, VG holding 0..$((2 * N)) LVs)"
header "operation"
row "CreateVolume  (thinvaultctl wall time)" $D/us.drv_create $D/us.bare_create
row "DeleteVolume  (thinvaultctl wall time)" $D/us.drv_delete $D/us.bare_delete
row "CreateVolume  (server side, plugin log)" $D/srv.CreateVolume $D/us.bare_create
row "DeleteVolume  (server side, plugin log)" $D/srv.DeleteVolume $D/us.bare_delete
row "GetPluginInfo (CLI floor, from phase 1)" $D/us.ctl_info
row "GetPluginInfo (server side)" $D/srv.GetPluginInfo
read -r f50 _ _ <<<"$(stats $D/us.ctl_info)"
for op in create delete; do
        read -r w50 _ _ <<<"$(stats $D/us.drv_$op)"
        read -r b50 _ _ <<<"$(stats $D/us.bare_$op)"
        read -r s50 _ _ <<<"$(stats $D/srv.${op^}Volume)"
        awk -v op="${op^}Volume" -v w="$w50" -v f="$f50" -v b="$b50" -v s="$s50" 'BEGIN {
                if (w == "-" || f == "-" || b == "-") exit
                printf "%s: wall p50 %.1f - CLI floor p50 %.1f = %.1f ms (server side p50 %s), %+.1f ms over bare lvm2\n", op, w, f, w - f, s, w - f - b }'
done
echo
echo "== at $NLIST volumes (ms; $CALLS calls each)"
header "operation"
row "ListVolumes all (thinvaultctl wall time)" $D/us.list_all $D/us.bare_lvs
row "ListVolumes maxEntries=100 (one page, wall)" $D/us.list_page $D/us.bare_lvs
row "GetCapacity (thinvaultctl wall time)" $D/us.capacity $D/us.bare_lvs
row "ListVolumes all (server side)" $D/srv.ListVolumes_all $D/us.bare_lvs
row "ListVolumes maxEntries=100 (server side)" $D/srv.ListVolumes_page $D/us.bare_lvs
row "GetCapacity (server side)" $D/srv.GetCapacity $D/us.bare_lvs
row "GetPluginInfo (CLI floor, from phase 1)" $D/us.ctl_info
echo
echo "bare lvm2 equivalents: CreateVolume = lvcreate --type thin -V 64m --thinpool $POOL -n X --addtag ... $VG;"
echo "  DeleteVolume = lvremove -y $VG/X; ListVolumes = lvs --reportformat json -o <driver's fields> $VG;"
echo "  GetCapacity = that same lvs (the driver adds two in-process dm ioctls). All with --config TV_LVM_CONFIG."
echo "overhead p50 = driver p50 - bare p50 (ratio driver/bare). Wall-time rows include the CLI floor"
echo "  (thinvaultctl start + connect + JSON), which a CSI sidecar does not pay; server-side rows do not."
echo
echo "== where the server-side time goes (plugin log, per call; ms)"
printf '%-18s | %8s | %8s | %12s | %12s | %s\n' "rpc" "rpc p50" "rpc p95" "in lvm2 p50" "other p50" "lvm2 commands per call"
printf '%s\n' "-------------------+----------+----------+--------------+--------------+-----------------------"
for lab in CreateVolume DeleteVolume ListVolumes_all ListVolumes_page GetCapacity GetPluginInfo; do
        [ -s $D/srv.$lab ] || continue
        read -r p50 p95 _ <<<"$(stats $D/srv.$lab)"
        read -r l50 _ _ <<<"$(stats $D/srvlvm.$lab)"
        read -r o50 _ _ <<<"$(stats $D/srvrest.$lab)"
        printf '%-18s | %8s | %8s | %12s | %12s | %s\n' "$lab" "$p50" "$p95" "$l50" "$o50" "$(cat $D/cmds.$lab 2>/dev/null)"
done
echo "(server ms are whole milliseconds as logged; 'other' = rpc - lvm2 = parsing, dm ioctls, encoding, gRPC)"
echo
echo "guest time for the benchmark: $((SECONDS - T_START)) s"
