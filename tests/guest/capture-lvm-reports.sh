#!/bin/bash
# capture-lvm-reports.sh: print real lvm2 outputs (JSON reports and the
# stderr of failing commands) that tests/unit/test_lvm_report.c and
# test_lvm_errmap.c keep as string literals. Re-run after an lvm2 upgrade
# and compare.
#
# Usage: tests/vm/run-in-guest -- tests/guest/capture-lvm-reports.sh
# Runs against a throw-away loop-backed VG "tvcap" in the guest's /tmp.
set -u
grep -q 'tv_run=' /proc/cmdline 2>/dev/null || { echo "run me in the test guest"; exit 2; }

C='activation{udev_sync=0 udev_rules=0 verify_udev_operations=1} devices{obtain_device_list_from_udev=0}'
# Keep in sync with TV_LVM_LVS_FIELDS in include/thinvault/lvm.h.
F=lv_name,vg_name,lv_uuid,lv_attr,lv_size,segtype,pool_lv,origin,data_percent,lv_tags,lv_kernel_major,lv_kernel_minor,lv_time,lv_path,lv_dm_path,vg_extent_size,vg_size,vg_free
VG=tvcap
lvm() { command lvm "$1" --config "$C" "${@:2}"; }
# show TITLE CMD...: the command's stdout and stderr, each framed.
show() {
    local title=$1; shift
    local out err rc
    out=$("$@" 2>/tmp/cap.err); rc=$?
    err=$(cat /tmp/cap.err)
    echo "=== $title (exit $rc)"
    [ -z "$out" ] || { echo "--- stdout"; printf '%s\n' "$out"; }
    [ -z "$err" ] || { echo "--- stderr"; printf '%s\n' "$err"; }
}
report() { show "$1" lvm lvs --reportformat json --units b --nosuffix -o $F "${@:2}"; }

truncate -s 256M /tmp/cap.img
LOOP=$(losetup -f --show /tmp/cap.img)
lvm vgcreate -q $VG "$LOOP" >/dev/null
report "empty vg" $VG
lvm lvcreate -q --yes --type thin-pool -l 100%FREE -n pool --zero n $VG >/dev/null
lvm lvchange -q --errorwhenfull y $VG/pool >/dev/null
report "pool only" $VG
lvm lvcreate -q --yes --type thin -V 8m --thinpool pool -n tv-vol-0123456789abcdef \
    --addtag 'tv.tenant=team-a' --addtag 'tv.name=pvc#20one/#C3#BC' --addtag admin-tag $VG >/dev/null
lvm lvcreate -q --yes --snapshot --setactivationskip n --activate y --permission r \
    -n tvs-snap-0123456789abcdef --addtag tv.kind=snapshot $VG/tv-vol-0123456789abcdef >/dev/null
lvm lvcreate -q --yes --snapshot --setactivationskip n --activate y --permission rw \
    -n tv-clone-0123456789abcdef $VG/tvs-snap-0123456789abcdef >/dev/null
lvm lvcreate -q --yes -L 4m -n plain $VG >/dev/null
lvm lvcreate -q --yes --type thin -V 4m --thinpool pool -n inactive -an $VG >/dev/null
report "volumes" $VG
report "one volume" $VG/tv-vol-0123456789abcdef
report "missing lv" $VG/nope
report "missing vg" nope
show "create existing" lvm lvcreate --yes --type thin -V 8m --thinpool pool -n tv-vol-0123456789abcdef $VG
show "create too big" lvm lvcreate --yes -L 1g -n big $VG
show "reserved name" lvm lvcreate --yes --type thin -V 8m --thinpool pool -n snapshot1 $VG
show "bad size" lvm lvcreate --yes --type thin -V 1000b --thinpool pool -n odd $VG
show "extend smaller" lvm lvextend -L 4m $VG/tv-vol-0123456789abcdef
show "extend missing" lvm lvextend -L 4m $VG/nope
show "snapshot missing origin" lvm lvcreate --yes --snapshot -n s2 $VG/nope
show "remove missing" lvm lvremove --yes -f $VG/nope
exec 7<"/dev/mapper/$VG-tv--vol--0123456789abcdef"
show "remove open" lvm lvremove --yes -f $VG/tv-vol-0123456789abcdef
exec 7<&-
show "bad tag" lvm lvchange --addtag 'a b' $VG/tv-vol-0123456789abcdef
lvm lvcreate -q --yes --type thin -V 512m --thinpool pool -n filler $VG >/dev/null 2>&1
dd if=/dev/zero of=/dev/mapper/$VG-filler bs=1M count=300 oflag=direct status=none 2>/dev/null
show "create in full pool" lvm lvcreate --yes --type thin -V 8m --thinpool pool -n more $VG
report "full pool" $VG/pool
show "dmsetup status" dmsetup status
show "dmsetup table" dmsetup table
lvm vgremove -q -f $VG >/dev/null 2>&1
show "vgremove gone" lvm vgremove --yes -f $VG
show "pvremove no label" lvm pvremove --yes "$LOOP"
show "pvremove twice" lvm pvremove --yes "$LOOP"
losetup -d "$LOOP"
rm -f /tmp/cap.img /tmp/cap.err
