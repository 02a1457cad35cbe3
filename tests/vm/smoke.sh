#!/usr/bin/env bash
# smoke.sh: proves the guest bench can do the driver's real work:
# loop file -> lvm2 thin pool + thin LV (no udev) -> LUKS2 -> ext4 -> mount ->
# write -> fio random reads capped by cgroup v2 io.max riops=200 on the
# dm-crypt device from a child cgroup. Passes only if the measured IOPS is
# within 10% of 200.
#
# Usage: tests/vm/run-in-guest -- tests/vm/smoke.sh
# Prints "PASS smoke" or "FAIL smoke: <reason>"; exit status 0 / 1.
set -euo pipefail

LIMIT=200
VG=tvsmoke
CG=/sys/fs/cgroup/tv-smoke

fail() { echo "FAIL smoke: $*"; exit 1; }
# step NAME CMD...: run CMD, fail the test with NAME if it fails.
step() {
    local name=$1; shift
    local t0=$SECONDS out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" | sed 's/^/    /'
        fail "$name"
    fi
    [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/    /'
    echo "ok   $name ($((SECONDS - t0)) s)"
}

grep -q 'tv_run=' /proc/cmdline 2>/dev/null ||
    fail "not in the test guest; run: tests/vm/run-in-guest -- tests/vm/smoke.sh"
[ "$(id -u)" = 0 ] || fail "needs root"
[ -e /sys/fs/cgroup/cgroup.controllers ] || fail "cgroup2 is not mounted"
grep -qw io /sys/fs/cgroup/cgroup.subtree_control || fail "+io is not enabled in the root cgroup"
[ -c /dev/mapper/control ] || fail "/dev/mapper/control is missing"
[ "$(lvmconfig --typeconfig full activation/udev_sync)" = "udev_sync=0" ] ||
    fail "lvm2 is not configured for no udev: $(lvmconfig --typeconfig full activation/udev_sync)"

WORK=$(mktemp -d /tmp/tv-smoke.XXXXXX)
MNT=$WORK/mnt
LOOP=
cleanup() {
    set +e
    [ -d "$CG/fio" ] && rmdir "$CG/fio"
    [ -d "$CG" ] && rmdir "$CG"
    mountpoint -q "$MNT" && umount "$MNT"
    [ -e /dev/mapper/$VG-crypt ] && cryptsetup close $VG-crypt
    vgs $VG >/dev/null 2>&1 && vgremove -f $VG >/dev/null 2>&1
    [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# ------------------------------------------------------------- thin pool
step "sparse 512 MiB file" truncate -s 512M "$WORK/disk.img"
LOOP=$(losetup -f --show "$WORK/disk.img") || fail "losetup"
echo "ok   loop device $LOOP"
step "pvcreate" pvcreate -q "$LOOP"
step "vgcreate" vgcreate -q $VG "$LOOP"
step "lvcreate thin pool" lvcreate -q --type thin-pool -L 256M -n pool $VG
step "lvcreate 64 MiB thin LV" lvcreate -q --type thin -V 64M --thinpool pool -n thin1 $VG
[ -b /dev/$VG/thin1 ] || fail "no /dev/$VG/thin1 after lvcreate"
step "thin LV is active" test "$(lvs --noheadings -o lv_attr $VG/thin1 | tr -d ' ' | cut -c5)" = a

# ------------------------------------------------------------------ LUKS2
head -c 64 /dev/urandom >"$WORK/key"
# pbkdf2 with few iterations: argon2id takes ~12 s and 77 MB under TCG.
step "luksFormat luks2" cryptsetup luksFormat -q --batch-mode --type luks2 \
    --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$WORK/key" /dev/$VG/thin1
step "luksOpen" cryptsetup open --key-file "$WORK/key" /dev/$VG/thin1 $VG-crypt
[ -b /dev/mapper/$VG-crypt ] || fail "no /dev/mapper/$VG-crypt after open"
step "cryptsetup status" cryptsetup status $VG-crypt

# -------------------------------------------------------------- ext4, write
step "mkfs.ext4" mkfs.ext4 -q /dev/mapper/$VG-crypt
mkdir -p "$MNT"
step "mount" mount /dev/mapper/$VG-crypt "$MNT"
step "write 32 MiB" dd if=/dev/urandom of="$MNT/data" bs=1M count=32 oflag=direct status=none
step "sync" sync

# ---------------------------------------------------------- io.max + fio
# io.max is keyed by the dm-crypt device's MAJ:MIN (what the filesystem's I/O
# is submitted to), set on tv-smoke; fio runs in its child tv-smoke/fio, so
# this is also the parent-caps-descendants case.
DEV=$(lsblk -dno MAJ:MIN /dev/mapper/$VG-crypt | tr -d ' ')
[[ $DEV =~ ^[0-9]+:[0-9]+$ ]] || fail "cannot read MAJ:MIN of /dev/mapper/$VG-crypt ('$DEV')"
echo "ok   dm-crypt device is $DEV"

# fio_iops SECONDS [CGROUP]: random 4k direct reads of the data file, prints read IOPS.
fio_iops() {
    local secs=$1 cg=${2:-} out
    out=$(bash -c '
        [ -z "$1" ] || echo $$ >"$1/cgroup.procs" || exit 1
        exec fio --name=smoke --filename="$2" --size=32M --rw=randread --bs=4k \
            --direct=1 --ioengine=psync --numjobs=1 --time_based --runtime="$3" \
            --eta=never --minimal
    ' fio_iops "$cg" "$MNT/data" "$secs") || { echo "$out" >&2; return 1; }
    # terse v3: field 8 is read IOPS
    printf '%s\n' "$out" | awk -F';' 'NF > 8 { printf "%d\n", $8 + 0.5 }' | tail -n 1
}

FREE=$(fio_iops 2) || fail "fio (unthrottled)"
echo "ok   fio unthrottled: $FREE read IOPS"
# The cap must be far below the device's speed, or it proves nothing.
[ "$FREE" -ge $((LIMIT * 2)) ] || fail "unthrottled reads only reach $FREE IOPS; cannot test a $LIMIT IOPS cap"

mkdir "$CG" || fail "mkdir $CG"
echo "+io" >"$CG/cgroup.subtree_control" || fail "enable +io in $CG"
mkdir "$CG/fio" || fail "mkdir $CG/fio"
echo "$DEV riops=$LIMIT" >"$CG/io.max" || fail "write io.max"
echo "ok   $CG/io.max: $(grep "^$DEV " "$CG/io.max")"

IOPS=$(fio_iops 3 "$CG/fio") || fail "fio (throttled)"
echo "measured IOPS: $IOPS (io.max riops=$LIMIT, unthrottled $FREE)"
LO=$((LIMIT * 90 / 100)); HI=$((LIMIT * 110 / 100))
if [ "$IOPS" -lt "$LO" ] || [ "$IOPS" -gt "$HI" ]; then
    fail "measured $IOPS IOPS, expected $LO..$HI"
fi

# ------------------------------------------------------------- teardown
rmdir "$CG/fio" "$CG" || fail "rmdir cgroups"
step "umount" umount "$MNT"
step "luksClose" cryptsetup close $VG-crypt
step "lvremove" lvremove -q -f $VG/thin1 $VG/pool
step "vgremove" vgremove -q -f $VG
step "pvremove" pvremove -q "$LOOP"
step "losetup -d" losetup -d "$LOOP"
LOOP=

echo "PASS smoke"
