#!/usr/bin/env bash
# bench/node.sh: the Node service's staging cost and the I/O cost of its
# dm-crypt mapping, against the same work done with the cryptsetup CLI,
# mkfs.ext4 and mount on a bare thin LV (issue 4, bench item). Runs INSIDE
# the QEMU guest; `bench/run node` starts it through tests/vm/run-in-guest
# and keeps what it prints. Nothing outlives the guest: all is on stdout.
#
# Usage (guest only): bench/node.sh BUILD_DIR
# Environment (all optional; run-in-guest passes TV_* through):
#   TV_BENCH_REPS         stage/unstage/restage rounds per size (default 5)
#   TV_BENCH_SIZES        volume sizes in GiB (default "1 100"; thin, so a
#                         100 GiB volume costs only what is written)
#   TV_BENCH_FIO_RUNTIME  seconds per fio run (default 5, after 1 s ramp)
#   TV_BENCH_FIO_SIZE     MiB of each device fio works on (default 128)
#   TV_BENCH_LOCAL_LVM    0: leave lvm2, cryptsetup, mkfs.ext4, mount on 9p
#
# Part 1, per size and round, driver and bare alternating (which goes first
# alternates too), each on a fresh thin LV of the same size:
#   stage    driver: Node.NodeStageVolume of a new volume (probe, LUKS2
#            format, open, mkfs.ext4, mount);
#            bare: cryptsetup luksFormat + cryptsetup open + mkfs.ext4 + mount
#            with the driver's settings (crypt/luks.c, csi/node_stage.c)
#   unstage  driver: Node.NodeUnstageVolume; bare: umount + cryptsetup close
#   restage  driver: Node.NodeStageVolume of that volume, now formatted;
#            bare: cryptsetup open + mount
# CreateVolume / DeleteVolume and lvcreate / lvremove are setup, not timed.
# Driver calls go through thinvaultctl; the plugin's own log gives the
# server-side time and its split (luks format, luks open, mkfs, lvm2).
#
# Part 2: fio, direct I/O, libaio, one job, on the first TV_BENCH_FIO_SIZE
# MiB (written once before measuring, so no read hits an unprovisioned
# thin block): through a block-mode volume staged by the driver (its
# dm-crypt mapping), the raw thin LV, and a mapping made by the cryptsetup
# CLI with the same settings (which says how much is dm-crypt, not driver).
set -uo pipefail

BUILD=${1:-${TV_BUILD:-}}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
NAME=node
. "$HERE/lib.sh"
REPS=${TV_BENCH_REPS:-5}
SIZES=${TV_BENCH_SIZES:-1 100}
FIO_RT=${TV_BENCH_FIO_RUNTIME:-5}
FIO_MIB=${TV_BENCH_FIO_SIZE:-128}
LOCAL=${TV_BENCH_LOCAL_LVM:-1}

guest_only
[ -n "$BUILD" ] || die "usage: bench/node.sh BUILD_DIR"
BUILD=$(cd "$BUILD" && pwd) || die "no build directory $BUILD"
CSI=$BUILD/csi/thinvault-csi
CTL=$BUILD/cli/thinvaultctl
[ -x "$CSI" ] && [ -x "$CTL" ] || die "$CSI or $CTL is missing; build first (scripts/build)"
for v in REPS FIO_RT FIO_MIB; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v} is not a positive number"; done
for s in $SIZES; do [[ $s =~ ^[1-9][0-9]*$ ]] || die "TV_BENCH_SIZES: '$s' is not a number of GiB"; done
for t in cryptsetup mkfs.ext4 fio blkid; do command -v $t >/dev/null || die "$t is not installed"; done

LVM_CONFIG=$(read_define "$ROOT/include/thinvault/lvm.h" TV_LVM_CONFIG)
[[ $LVM_CONFIG == *udev_sync=0* ]] || die "could not read TV_LVM_CONFIG from include/thinvault/lvm.h (got '$LVM_CONFIG')"

D=/tmp/tv-bench-node
VG=tvbench
POOL=pool
SOCK=$D/csi.sock
LOG=$D/csi.log
K=$D/kubelet
CG=/sys/fs/cgroup/kubepods
MiB=1048576
GiB=$((1024 * MiB))
rm -rf $D
mkdir -p $D $K/plugins $D/mnt
: >$D/seq
[ -d $CG ] || mkdir $CG || die "cannot make $CG"

# The driver's settings, for the bare commands (crypt/luks.c: LUKS2,
# aes-xts-plain64, 512-bit volume key, 512-byte sectors, PBKDF2-sha256 at
# 1000 iterations; activation without read/write workqueues, discards
# allowed. csi/node_stage.c: mkfs.ext4 -q -E lazy_itable_init=1,
# lazy_journal_init=1,nodiscard, 4 KiB blocks).
LUKS_FORMAT=(luksFormat -q --type luks2 --cipher aes-xts-plain64 --key-size 512 --sector-size 512
        --pbkdf pbkdf2 --hash sha256 --pbkdf-force-iterations 1000)
LUKS_OPEN=(open --type luks2 --allow-discards --perf-no_read_workqueue --perf-no_write_workqueue)
MKFS=(mkfs.ext4 -q -b 4096 -E lazy_itable_init=1,lazy_journal_init=1,nodiscard)
# The driver mounts ext4 with noinit_itable (csi/node_stage.c).
MOUNT_OPTS=noinit_itable
grep -q 'LUKS_PBKDF_ITERATIONS 1000' "$ROOT/crypt/luks.c" && grep -q 'LUKS_VOLUME_KEY_BYTES 64' "$ROOT/crypt/luks.c" &&
        grep -q 'lazy_itable_init=1,lazy_journal_init=1,nodiscard' "$ROOT/csi/node_stage.c" ||
        die "the driver's LUKS or mkfs settings changed: update the bare commands in bench/node.sh"

# The tenant key: base64 in the node-stage secret for the driver, the same
# decoded bytes in a 0600 file for cryptsetup (the driver's passphrase).
(umask 077 && head -c 32 /dev/urandom >$D/key.bin) || die "cannot make a key"
KEY_B64=$(base64 -w0 <$D/key.bin)

cleanup() {
        local m
        for m in $(grep -o " $D/[^ ]*" /proc/self/mountinfo | sort -r); do umount "$m" 2>/dev/null; done
        stop_plugin
        for m in /dev/mapper/tvc-* /dev/mapper/bare-* /dev/mapper/dflt-*; do [ -e "$m" ] && dmsetup remove "${m##*/}" 2>/dev/null; done
        lvm_ vgremove -q -f $VG >/dev/null 2>&1
        for m in $(losetup -j /tmp/$VG.img -O NAME -n 2>/dev/null); do losetup -d "$m" 2>/dev/null; done
        rm -f /tmp/$VG.img
}
trap cleanup EXIT

T_START=$SECONDS
echo "== node benchmark (in the guest)"
echo "guest: kernel $(uname -r), $(nproc) vCPUs, $(awk '/MemTotal/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo)," \
        "$(lvm version | awk '/LVM version/ { print "lvm2 " $3 }'), $(cryptsetup --version), $(fio --version)"
echo "sizes: $REPS rounds per size, sizes ${SIZES// / and } GiB (thin); fio ${FIO_RT} s runs on ${FIO_MIB} MiB"
if [ "$LOCAL" = 1 ]; then
        # What is exec'd inside timed work, by the driver (lvm2, mkfs) or the
        # bare steps. fio (whose libraries are ~100 MB) and thinvaultctl
        # stay on 9p: fio times itself, and thinvaultctl's cost is the
        # CLI floor, absent from the server-side rows.
        localize "$(command -v lvm)" "$(command -v cryptsetup)" "$(command -v mkfs.ext4)" \
                "$(command -v mount)" "$(command -v umount)"
else
        echo "binaries left on 9p (TV_BENCH_LOCAL_LVM=0): every exec re-reads them from the host"
fi

# A 100 GiB volume on a 1 GiB pool is 100x overprovisioned. The guard's
# overprovision check is off by default; it is set here, high, so the
# run is what a configured node does (the guard's pool status call) and
# states the overprovisioning it needs.
echo '{"pool": {"maxOverprovisionPercent": 100000}}' >$D/config.json
start_plugin --node-id bench-node --vg $VG --thin-pool $POOL --loop-file /tmp/$VG.img --loop-size 1G \
        --kubelet-dir $K --config $D/config.json --log-level debug
RPC_SKIP=$(grep -c 'msg="rpc"' $LOG)
echo "plugin up after $((SECONDS - T_START)) s (VG and thin pool on a 1 GiB loop file; config: $(cat $D/config.json))"

MOUNT_CAP='{"mount":{"fsType":"ext4"},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}'
BLOCK_CAP='{"block":{},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}'
create_json() { # create_json NAME BYTES CAPABILITY
        printf '{"name":"%s","capacityRange":{"requiredBytes":"%d"},"volumeCapabilities":[%s],"parameters":{"csi.storage.k8s.io/pvc/namespace":"bench","csi.storage.k8s.io/pvc/name":"claim-%s"}}' \
                "$1" "$2" "$3" "$1"
}
stage_req() { # stage_req ID PATH CAPABILITY: the request file, with the secret
        req $D/stage.json "{\"volumeId\":\"$1\",\"stagingTargetPath\":\"$2\",\"volumeCapability\":$3,\"secrets\":{\"key\":\"$KEY_B64\"}}"
}
staging_of() { echo "$K/plugins/kubernetes.io/csi/thinvault.csi.io/$1/globalmount"; }

# ------------------------------------------------------------- bare steps
# bare_stage S LV: format, open, mkfs, mount, each step timed; and the whole.
bare_stage() {
        local s=$1 lv=$2 t0
        t0=$(now_us)
        timed bare_fmt_$s cryptsetup "${LUKS_FORMAT[@]}" --key-file $D/key.bin /dev/$VG/$lv 2>>$D/cmd.err
        timed bare_open_$s cryptsetup "${LUKS_OPEN[@]}" --key-file $D/key.bin /dev/$VG/$lv bare-$lv 2>>$D/cmd.err
        timed bare_mkfs_$s "${MKFS[@]}" /dev/mapper/bare-$lv 2>>$D/cmd.err
        timed bare_mount_$s mount -t ext4 -o $MOUNT_OPTS /dev/mapper/bare-$lv $D/mnt/$lv 2>>$D/cmd.err
        echo $(($(now_us) - t0)) >>$D/us.bare_stage_$s
}
# defaults_stage S LV: what an admin gets from the tools' defaults
# (issue 4's baseline): luksFormat with cryptsetup's own choices (argon2id,
# benchmarked to ~2 s, 16 MiB header), plain open, plain mkfs.ext4, mount.
defaults_stage() {
        local s=$1 lv=$2 t0
        t0=$(now_us)
        timed dflt_fmt_$s cryptsetup luksFormat -q --type luks2 --key-file $D/key.bin /dev/$VG/$lv 2>>$D/cmd.err
        timed dflt_open_$s cryptsetup open --key-file $D/key.bin /dev/$VG/$lv dflt-$lv 2>>$D/cmd.err
        timed dflt_mkfs_$s mkfs.ext4 -q /dev/mapper/dflt-$lv 2>>$D/cmd.err
        timed dflt_mount_$s mount -t ext4 /dev/mapper/dflt-$lv $D/mnt/$lv 2>>$D/cmd.err
        echo $(($(now_us) - t0)) >>$D/us.dflt_stage_$s
        umount $D/mnt/$lv 2>>$D/cmd.err && cryptsetup close dflt-$lv 2>>$D/cmd.err || die "cannot undo the defaults stage of $lv"
}
bare_unstage() {
        local s=$1 lv=$2 t0
        t0=$(now_us)
        timed bare_umount_$s umount $D/mnt/$lv 2>>$D/cmd.err
        timed bare_close_$s cryptsetup close bare-$lv 2>>$D/cmd.err
        echo $(($(now_us) - t0)) >>$D/us.bare_unstage_$s
}
bare_restage() {
        local s=$1 lv=$2 t0
        t0=$(now_us)
        timed bare_reopen_$s cryptsetup "${LUKS_OPEN[@]}" --key-file $D/key.bin /dev/$VG/$lv bare-$lv 2>>$D/cmd.err
        timed bare_remount_$s mount -t ext4 -o $MOUNT_OPTS /dev/mapper/bare-$lv $D/mnt/$lv 2>>$D/cmd.err
        echo $(($(now_us) - t0)) >>$D/us.bare_restage_$s
}
bare_round() { # bare_round S ROUND
        local s=$1 lv=bare-$1g-$2
        lvm_ lvcreate -q --yes --type thin -V "${s}g" --thinpool $POOL -n $lv $VG >/dev/null ||
                die "lvcreate $lv: $(tail -3 $D/lvm.err)"
        mkdir -p $D/mnt/$lv
        bare_stage "$s" $lv
        [ "$(blkid -o value -s TYPE /dev/$VG/$lv)" = crypto_LUKS ] || die "bare LV $lv is not LUKS after the format"
        bare_unstage "$s" $lv
        bare_restage "$s" $lv
        bare_unstage "$s" $lv
        lvm_ lvremove -q -y $VG/$lv >/dev/null || die "lvremove $lv: $(tail -3 $D/lvm.err)"
        lv=dflt-$1g-$2
        lvm_ lvcreate -q --yes --type thin -V "${s}g" --thinpool $POOL -n $lv $VG >/dev/null ||
                die "lvcreate $lv: $(tail -3 $D/lvm.err)"
        mkdir -p $D/mnt/$lv
        defaults_stage "$s" $lv
        lvm_ lvremove -q -y $VG/$lv >/dev/null || die "lvremove $lv: $(tail -3 $D/lvm.err)"
}
drv_round() { # drv_round S ROUND
        local s=$1 name=drv-$1g-$2 id stg
        untimed CreateVolume/setup ctl Controller.CreateVolume --json "$(create_json $name $((s * GiB)) "$MOUNT_CAP")" >$D/reply
        id=$(volume_id $D/reply)
        [ -n "$id" ] || die "no volumeId in the CreateVolume reply: $(head -c 300 $D/reply)"
        stg=$(staging_of $name)
        mkdir -p "$stg"
        stage_req "$id" "$stg" "$MOUNT_CAP"
        drv NodeStageVolume/stage_$s drv_stage_$s ctl Node.NodeStageVolume --json @$D/stage.json >/dev/null
        [ "$(blkid -o value -s TYPE /dev/mapper/tvc-${id#*:})" = ext4 ] || die "no ext4 in the driver's mapping"
        drv NodeUnstageVolume/unstage_$s drv_unstage_$s ctl Node.NodeUnstageVolume --json "{\"volumeId\":\"$id\",\"stagingTargetPath\":\"$stg\"}" >/dev/null
        drv NodeStageVolume/restage_$s drv_restage_$s ctl Node.NodeStageVolume --json @$D/stage.json >/dev/null
        drv NodeUnstageVolume/unstage_$s drv_unstage_$s ctl Node.NodeUnstageVolume --json "{\"volumeId\":\"$id\",\"stagingTargetPath\":\"$stg\"}" >/dev/null
        [ -e /dev/mapper/tvc-${id#*:} ] && die "mapping left after unstage"
        untimed DeleteVolume/setup ctl Controller.DeleteVolume --json "{\"volumeId\":\"$id\"}" >/dev/null
}

# --------------------------------------------------------------- warm-up
# The first run of each program is not measured.
# The driver goes first: its first CreateVolume makes the VG and the pool.
untimed GetPluginInfo/setup ctl Identity.GetPluginInfo >/dev/null
untimed CreateVolume/setup ctl Controller.CreateVolume --json "$(create_json warm $((64 * MiB)) "$MOUNT_CAP")" >$D/reply
WARM=$(volume_id $D/reply)
mkdir -p "$(staging_of warm)"
stage_req "$WARM" "$(staging_of warm)" "$MOUNT_CAP"
untimed NodeStageVolume/setup ctl Node.NodeStageVolume --json @$D/stage.json >/dev/null
untimed NodeUnstageVolume/setup ctl Node.NodeUnstageVolume --json "{\"volumeId\":\"$WARM\",\"stagingTargetPath\":\"$(staging_of warm)\"}" >/dev/null
untimed DeleteVolume/setup ctl Controller.DeleteVolume --json "{\"volumeId\":\"$WARM\"}" >/dev/null
lvm_ lvcreate -q --yes --type thin -V 64m --thinpool $POOL -n warm $VG >/dev/null || die "lvcreate warm: $(tail -3 $D/lvm.err)"
mkdir -p $D/mnt/warm
bare_stage warm warm
bare_unstage warm warm
lvm_ lvremove -q -y $VG/warm >/dev/null || die "lvremove warm"
rm -f $D/us.bare_*warm*

# ------------------------------------------------------ part 1: staging
echo
echo "-- part 1: $REPS rounds per size of stage / unstage / restage / unstage, driver and bare alternating"
for s in $SIZES; do
        t=$SECONDS
        for r in $(seq "$REPS"); do
                drv GetPluginInfo/floor ctl_info ctl Identity.GetPluginInfo >/dev/null
                if [ $((r % 2)) -eq 1 ]; then
                        drv_round "$s" "$r"
                        bare_round "$s" "$r"
                else
                        bare_round "$s" "$r"
                        drv_round "$s" "$r"
                fi
        done
        echo "   $s GiB: $REPS rounds in $((SECONDS - t)) s; pool data used: $(lvm_ lvs --noheadings -o data_percent $VG/$POOL | tr -d ' ')%"
done

# --------------------------------------------------------- part 2: fio
echo
echo "-- part 2: fio on ${FIO_MIB} MiB: driver's mapping vs raw thin LV vs cryptsetup CLI mapping"
VOLB=$(((FIO_MIB + 32) * MiB))
untimed CreateVolume/setup ctl Controller.CreateVolume --json "$(create_json fio $VOLB "$BLOCK_CAP")" >$D/reply
FIO_ID=$(volume_id $D/reply)
[ -n "$FIO_ID" ] || die "no volumeId in the CreateVolume reply: $(head -c 300 $D/reply)"
FIO_STG=$K/plugins/kubernetes.io/csi/volumeDevices/staging/pv-fio
mkdir -p $FIO_STG
stage_req "$FIO_ID" $FIO_STG "$BLOCK_CAP"
untimed NodeStageVolume/setup ctl Node.NodeStageVolume --json @$D/stage.json >/dev/null
DEV_DRV=/dev/mapper/tvc-${FIO_ID#*:}
[ -b $DEV_DRV ] || die "no mapping $DEV_DRV after a block stage"
lvm_ lvcreate -q --yes --type thin -V $((VOLB / MiB))m --thinpool $POOL -n fio-raw $VG >/dev/null || die "lvcreate fio-raw"
lvm_ lvcreate -q --yes --type thin -V $((VOLB / MiB))m --thinpool $POOL -n fio-cs $VG >/dev/null || die "lvcreate fio-cs"
DEV_RAW=/dev/$VG/fio-raw
cryptsetup "${LUKS_FORMAT[@]}" --key-file $D/key.bin /dev/$VG/fio-cs 2>>$D/cmd.err &&
        cryptsetup "${LUKS_OPEN[@]}" --key-file $D/key.bin /dev/$VG/fio-cs bare-fio-cs 2>>$D/cmd.err ||
        die "cryptsetup on fio-cs: $(tail -3 $D/cmd.err)"
DEV_CS=/dev/mapper/bare-fio-cs
echo "   driver's mapping: $(dmsetup table ${DEV_DRV##*/} | awk '{ $5 = "<key>"; print }')"
echo "   cryptsetup's:     $(dmsetup table ${DEV_CS##*/} | awk '{ $5 = "<key>"; print }')"
for dev in $DEV_DRV $DEV_RAW $DEV_CS; do # provision every block fio will touch (not measured)
        fio_terse --name=fill --filename=$dev --size=${FIO_MIB}m --rw=write --bs=1m --direct=1 --ioengine=libaio --iodepth=4 >/dev/null
done
AES=$(cryptsetup benchmark --cipher aes-xts-plain64 --key-size 512 2>>$D/cmd.err | awk '/aes-xts/ { print $3 " " $4 " encryption, " $5 " " $6 " decryption" }')
echo "   guest's kernel aes-xts-512 (cryptsetup benchmark): ${AES:-not available}"

# fio_run TEST DEV KEY
fio_run() {
        local rw bs depth
        case $1 in
        randread) rw=randread bs=4k depth=16 ;;
        randwrite) rw=randwrite bs=4k depth=16 ;;
        read) rw=read bs=1m depth=4 ;;
        write) rw=write bs=1m depth=4 ;;
        esac
        fio_terse --name=$1 --filename=$2 --size=${FIO_MIB}m --rw=$rw --bs=$bs --direct=1 --ioengine=libaio \
                --iodepth=$depth --numjobs=1 --time_based --runtime=$FIO_RT --ramp_time=1 --randrepeat=0 \
                --norandommap >$D/fio.$1.$3
}
i=0
for test in randread randwrite read write; do
        i=$((i + 1))
        case $((i % 3)) in # rotate which device goes first
        0) order="drv raw cs" ;;
        1) order="raw cs drv" ;;
        2) order="cs drv raw" ;;
        esac
        for k in $order; do
                case $k in drv) dev=$DEV_DRV ;; raw) dev=$DEV_RAW ;; cs) dev=$DEV_CS ;; esac
                fio_run $test $dev $k
        done
done
cryptsetup close bare-fio-cs 2>>$D/cmd.err || die "cryptsetup close bare-fio-cs"
untimed NodeUnstageVolume/setup ctl Node.NodeUnstageVolume --json "{\"volumeId\":\"$FIO_ID\",\"stagingTargetPath\":\"$FIO_STG\"}" >/dev/null
untimed DeleteVolume/setup ctl Controller.DeleteVolume --json "{\"volumeId\":\"$FIO_ID\"}" >/dev/null

# ---------------------------------------------------------------- report
# The plugin's log: the k-th `msg="rpc"` line (after the start-up probes)
# is the k-th label of $D/seq; the lines before it (calls are sequential)
# give the luks format and open times, the mkfs time (from "luks volume
# opened" to "file system made"), and the lvm2 commands' time.
stop_plugin
awk -v seqfile=$D/seq -v dir=$D -v skip="$RPC_SKIP" '
        BEGIN { while ((getline l < seqfile) > 0) label[++nl] = l }
        function field(k,   m) { return match($0, " " k "=[^ ]*") ? substr($0, RSTART + length(k) + 2, RLENGTH - length(k) - 2) : "" }
        function ts(   p) { if (!match($0, /^ts=[^ ]*/)) return 0; split(substr($0, RSTART + 14, 12), p, ":"); return (p[1] * 3600 + p[2] * 60 + p[3]) * 1000 }
        function reset() { fmt = 0; opn = 0; mkfs = 0; lvm = 0; t_open = -1 }
        BEGIN { reset() }
        /msg="lvm2 done"/ { lvm += field("ms"); next }
        /msg="luks volume formatted"/ { fmt += field("ms"); next }
        /msg="luks volume opened"/ { opn += field("ms"); t_open = ts(); next }
        /msg="file system made"/ { if (t_open >= 0) mkfs += ts() - t_open; next }
        /msg="rpc"/ {
                if (skip > 0) { skip--; reset(); next }
                k++
                split(label[k], lk, "/"); meth = field("method"); sub(/.*\//, "", meth)
                if (lk[1] != meth) { printf "log order mismatch at rpc %d: %s vs %s\n", k, label[k], meth > "/dev/stderr"; bad = 1 }
                if (lk[2] != "setup" && lk[2] != "floor") {
                        key = lk[2]; ms = field("ms")
                        print ms * 1000 >> (dir "/srv." key)
                        print fmt * 1000 >> (dir "/srvfmt." key)
                        print opn * 1000 >> (dir "/srvopen." key)
                        print mkfs * 1000 >> (dir "/srvmkfs." key)
                        print lvm * 1000 >> (dir "/srvlvm." key)
                        print (ms - fmt - opn - mkfs - lvm) * 1000 >> (dir "/srvrest." key)
                }
                reset()
        }
        END { if (k != nl) { printf "log has %d rpc lines, %d calls were made\n", k, nl > "/dev/stderr"; bad = 1 }; exit bad }' $LOG ||
        echo "WARNING: the plugin log did not match the calls made; server-side figures may be off"

row() { # row LABEL DRIVER_FILE BARE_FILE
        local dp50 dp95 dn bp50 bp95 bn ov
        read -r dp50 dp95 dn <<<"$(stats "$2")"
        read -r bp50 bp95 bn <<<"$(stats "${3:-/nonexistent}")"
        if [ "$dp50" != - ] && [ "$bp50" != - ]; then
                ov=$(awk -v d="$dp50" -v b="$bp50" 'BEGIN { printf "%+.1f (x%.2f)", d - b, (b > 0 ? d / b : 0) }')
        else
                ov=-
        fi
        printf '%-40s | %10s | %10s | %10s | %10s | %s\n' "$1" "$dp50" "$dp95" "$bp50" "$bp95" "$ov"
}
header() {
        printf '%-40s | %10s | %10s | %10s | %10s | %s\n' "$1" "driver p50" "driver p95" "bare p50" "bare p95" "overhead p50 (ratio)"
        printf '%s\n' "-----------------------------------------+------------+------------+------------+------------+---------------------"
}
p50() { local a; read -r a _ _ <<<"$(stats "$1")"; echo "$a"; }

for s in $SIZES; do
        echo
        echo "== $s GiB thin volume: driver vs cryptsetup CLI + mkfs.ext4 + mount (ms; $REPS rounds, unstage x$((2 * REPS)))"
        header "operation"
        row "NodeStageVolume fresh (thinvaultctl)" $D/us.drv_stage_$s $D/us.bare_stage_$s
        row "NodeStageVolume fresh (server side)" $D/srv.stage_$s $D/us.bare_stage_$s
        row "  vs cryptsetup/mkfs defaults (server)" $D/srv.stage_$s $D/us.dflt_stage_$s
        row "NodeUnstageVolume (thinvaultctl)" $D/us.drv_unstage_$s $D/us.bare_unstage_$s
        row "NodeUnstageVolume (server side)" $D/srv.unstage_$s $D/us.bare_unstage_$s
        row "NodeStageVolume restage (thinvaultctl)" $D/us.drv_restage_$s $D/us.bare_restage_$s
        row "NodeStageVolume restage (server side)" $D/srv.restage_$s $D/us.bare_restage_$s
        echo "  where it goes, p50 ms: driver fresh stage: luks format $(p50 $D/srvfmt.stage_$s)," \
                "luks open $(p50 $D/srvopen.stage_$s), mkfs.ext4 $(p50 $D/srvmkfs.stage_$s), lvm2 $(p50 $D/srvlvm.stage_$s)," \
                "rest (probe, mount, gRPC) $(p50 $D/srvrest.stage_$s)"
        echo "                         bare fresh stage:   luksFormat $(p50 $D/us.bare_fmt_$s)," \
                "open $(p50 $D/us.bare_open_$s), mkfs.ext4 $(p50 $D/us.bare_mkfs_$s), mount $(p50 $D/us.bare_mount_$s)"
        echo "                         defaults fresh stage: luksFormat $(p50 $D/us.dflt_fmt_$s)," \
                "open $(p50 $D/us.dflt_open_$s), mkfs.ext4 $(p50 $D/us.dflt_mkfs_$s), mount $(p50 $D/us.dflt_mount_$s)"
        echo "                         driver restage: luks open $(p50 $D/srvopen.restage_$s), lvm2 $(p50 $D/srvlvm.restage_$s)," \
                "rest $(p50 $D/srvrest.restage_$s); bare: open $(p50 $D/us.bare_reopen_$s), mount $(p50 $D/us.bare_remount_$s)"
        echo "                         driver unstage: lvm2 $(p50 $D/srvlvm.unstage_$s), rest $(p50 $D/srvrest.unstage_$s);" \
                "bare: umount $(p50 $D/us.bare_umount_$s), cryptsetup close $(p50 $D/us.bare_close_$s)"
done
echo
row "GetPluginInfo (thinvaultctl floor)" $D/us.ctl_info
echo "bare = cryptsetup ${LUKS_FORMAT[*]} --key-file F; cryptsetup ${LUKS_OPEN[*]} --key-file F;"
echo "  ${MKFS[*]}; mount -t ext4 -o $MOUNT_OPTS (restage: open + mount; unstage: umount + cryptsetup close)."
echo "defaults = cryptsetup luksFormat --type luks2 --key-file F (argon2id, benchmarked); cryptsetup open;"
echo "  mkfs.ext4; mount: the tools as they come, the baseline issue 4 names."
echo "thinvaultctl rows include the CLI floor (process start, connect, JSON; a CSI sidecar does not pay it);"
echo "  server-side rows are the plugin's logged ms (whole ms). Bare steps each exec a program; the driver"
echo "  links libcryptsetup and execs only mkfs. With noinit_itable neither the driver's nor the bare"
echo "  mount zeroes inode tables in the background; the defaults row's mount does (ext4lazyinit)."

echo
echo "== fio: driver's dm-crypt mapping vs raw thin LV (direct, libaio, 1 job, ${FIO_RT} s after 1 s ramp, ${FIO_MIB} MiB, written beforehand)"
printf '%-30s | %12s | %12s | %9s | %16s\n' "test" "driver" "raw thin LV" "drv/raw" "cryptsetup CLI"
printf '%s\n' "-------------------------------+--------------+--------------+-----------+-----------------"
fio_row() { # fio_row LABEL TEST FIELD(1 read iops, 2 read KiB/s, 3 write iops, 4 write KiB/s) DIV UNIT
        local d r c
        d=$(awk -v f=$3 -v div=$4 '{ printf "%.0f", $f / div }' $D/fio.$2.drv)
        r=$(awk -v f=$3 -v div=$4 '{ printf "%.0f", $f / div }' $D/fio.$2.raw)
        c=$(awk -v f=$3 -v div=$4 '{ printf "%.0f", $f / div }' $D/fio.$2.cs)
        printf '%-30s | %12s | %12s | %9s | %16s\n' "$1" "$d $5" "$r $5" \
                "$(awk -v d="$d" -v r="$r" 'BEGIN { printf "x%.2f", (r > 0 ? d / r : 0) }')" "$c $5"
}
fio_row "4k randread  (iodepth 16)" randread 1 1 IOPS
fio_row "4k randwrite (iodepth 16)" randwrite 3 1 IOPS
fio_row "1M seq read  (iodepth 4)" read 2 1024 MiB/s
fio_row "1M seq write (iodepth 4)" write 4 1024 MiB/s
echo "drv/raw is the price of encryption at rest. The cryptsetup CLI column is a mapping made by hand with the"
echo "  same settings: the driver's mapping performs like it (same dm-crypt target, same flags), so the price"
echo "  is dm-crypt's, and in this guest dm-crypt's cost is mostly AES done by the emulated CPU (under TCG even"
echo "  the AES-NI instructions are emulated in software: ${AES:-see cryptsetup benchmark}); on a real node with"
echo "  hardware AES the gap is much smaller."
echo "no I/O limits are set on any device here (see bench/limits.sh)."
echo
echo "guest time for the benchmark: $((SECONDS - T_START)) s"
