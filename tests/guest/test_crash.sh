#!/usr/bin/env bash
# Crash consistency against the real kernel: the plugin is killed by
# SIGKILL (TV_KILL_POINT, util.h) at each step of CreateVolume,
# NodeStageVolume (after LUKS format, open, mkfs, mount), NodeExpandVolume
# (after the LUKS resize, before the file system grows) and DeleteVolume
# (after the crypto-erase, before lvremove). Each test proves its point
# fired (the plugin died by SIGKILL and logged point=NAME), restarts the
# plugin, retries the RPC as kubelet or a sidecar would, and checks the
# state is exactly that of an uninterrupted run: one LV, one mapping, one
# mount, the io.max line, the data; then unstage and delete leave nothing.
# A bystander volume of another tenant stays staged and written across
# every crash and must keep its data, its mount and its budget.
set -uo pipefail
BUILD=${1:-$TV_BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/pool.sh"
D=/tmp/tv-crash
VG=tvcrash
K=$D/kubelet
CG=/sys/fs/cgroup/kubepods
. "$HERE/plugin.sh"
[ -d $CG ] || mkdir $CG
grep -qw io $CG/cgroup.subtree_control || echo +io >$CG/cgroup.subtree_control || true
[ -f $D/key-a ] || head -c 32 /dev/urandom | base64 -w0 >$D/key-a
[ -f $D/key-b ] || head -c 32 /dev/urandom | base64 -w0 >$D/key-b
exec 3>&1
say() { echo "$@" >&3; }

# crashes POINT command...: the call fails because the plugin died by
# SIGKILL at POINT, and the plugin's log says it reached POINT.
crashes() {
        local point=$1 pid n0 i
        shift
        pid=$(cat $D/pid)
        n0=$(grep -c "point=$point " $D/csi.log)
        "$@" >/dev/null 2>&1 && t_fail "$point: the call succeeded; the kill point did not fire"
        for i in $(seq 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && t_fail "$point: the call failed but the plugin is alive: $(tail -3 $D/csi.log)"
        # The plugin's parent is this shell's job: its status is SIGKILL's.
        wait "$pid" 2>/dev/null
        [ $? = 137 ] || t_fail "$point: the plugin did not die by SIGKILL"
        [ "$(grep -c "point=$point " $D/csi.log)" = $((n0 + 1)) ] || t_fail "$point: no 'kill point reached' line"
        rm -f $D/pid
        say "    $point fired: plugin killed by SIGKILL mid-call"
}

mounts_of() { grep -c " $1 " /proc/self/mountinfo; }

# staged_exactly_once ID NAME IO_MAX: one mapping on the LV, one ext4 mount
# of it at the staging path, its io.max line, LUKS2 underneath
staged_exactly_once() {
        local map dev
        map=$(map_of "$1")
        [ -b /dev/mapper/$map ] || t_fail "no mapping $map"
        [ "$(dmsetup ls | grep -c "^$map[[:space:]]")" = 1 ] || t_fail "not one mapping $map: $(dmsetup ls)"
        [ "$(mounts_of "$(staging_of "$2")")" = 1 ] || t_fail "not one mount at $(staging_of "$2"): $(grep "$2" /proc/self/mountinfo)"
        [ "$(findmnt -n -o FSTYPE "$(staging_of "$2")")" = ext4 ] || t_fail "not ext4 at $(staging_of "$2")"
        [ "$(blkid -o value -s TYPE "/dev/$VG/$(lv_of "$1")")" = crypto_LUKS ] || t_fail "LV is not LUKS"
        dev=$(devnum "$map")
        [ "$(grep "^$dev " $CG/io.max)" = "$dev $3" ] || t_fail "io.max for $dev: '$(grep "^$dev " $CG/io.max)', want '$3'"
}
# gone ID NAME: no LV, mapping, mount or io.max line of the volume
gone() {
        [ "$(lv_count "$(lv_of "$1")")" = 0 ] || t_fail "LV $(lv_of "$1") left"
        dmsetup ls | grep -q "^$(map_of "$1")[[:space:]]" && t_fail "mapping $(map_of "$1") left"
        [ "$(mounts_of "$(staging_of "$2")")" = 0 ] || t_fail "mount left at $(staging_of "$2")"
        return 0
}
# Only the bystander's line may be on kubepods once a test is done.
only_bystander_limited() {
        local lines
        lines=$(grep -v "^$(devnum "$(map_of "$(cat $D/by.id)")") " $CG/io.max | grep -c .)
        [ "$lines" = 0 ] || t_fail "io.max lines left: $(cat $CG/io.max)"
}
# The bystander: team-b's volume, staged once, written before every test,
# checked after it. A crash of the plugin must not touch it.
bystander_write() { head -c 262144 /dev/urandom >$D/by.data && cp $D/by.data "$(staging_of by)/data" && sync; }
bystander_ok() {
        local id
        id=$(cat $D/by.id)
        staged_exactly_once "$id" by "rbps=max wbps=max riops=300 wiops=300"
        cmp -s $D/by.data "$(staging_of by)/data" || t_fail "the bystander's data changed"
}

# A stage that died at POINT, retried after a restart, ends staged once.
stage_killed_at() {
        local point=$1 name=$2 id
        start_plugin
        id=$(create "$name" team-a ',"iops":"200"') || t_fail "create $name"
        bystander_write
        start_plugin "$point"
        crashes "$point" stage "$id" "$name" $D/key-a
        start_plugin
        bystander_ok
        stage "$id" "$name" $D/key-a >/dev/null || t_fail "retried stage after $point: $(tail -3 $D/csi.log)"
        staged_exactly_once "$id" "$name" "rbps=max wbps=max riops=200 wiops=200"
        head -c 1048576 /dev/urandom >$D/$name.data
        cp $D/$name.data "$(staging_of "$name")/data" && sync || t_fail "write"
        unstage "$id" "$name" >/dev/null || t_fail "unstage"
        stage "$id" "$name" $D/key-a >/dev/null || t_fail "restage"
        cmp -s $D/$name.data "$(staging_of "$name")/data" || t_fail "data lost after restage"
        unstage "$id" "$name" >/dev/null || t_fail "unstage"
        delete "$id" >/dev/null || t_fail "delete"
        gone "$id" "$name"
        only_bystander_limited
        bystander_ok
}

setup_bystander() {
        start_plugin
        local id
        id=$(create by team-b ',"iops":"300"') || t_fail "create bystander"
        echo "$id" >$D/by.id
        stage "$id" by $D/key-b >/dev/null || t_fail "stage bystander"
        bystander_write
        bystander_ok
}

test_create_killed_after_lvcreate_retry_returns_the_same_one_volume() {
        local id1 id2
        start_plugin create.after_lvcreate
        crashes create.after_lvcreate create c1 team-a
        # Killed after lvcreate: the LV is there, no caller knows its id.
        [ "$(lv_count "tv-c1-$(printf %s c1 | sha256sum | cut -c1-16)")" = 1 ] || t_fail "not one LV after the crash"
        start_plugin
        id1=$(create c1 team-a) || t_fail "retried create"
        id2=$(create c1 team-a) || t_fail "create again"
        [ "$id1" = "$id2" ] || t_fail "two ids for one name: $id1 $id2"
        [ "$(lv_count "$(lv_of "$id1")")" = 1 ] || t_fail "not one LV for c1"
        lvm_ lvs --noheadings -o lv_tags "$VG/$(lv_of "$id1")" | grep -q "tv.tenant=team-a" || t_fail "tags lost"
        delete "$id1" >/dev/null || t_fail "delete"
        gone "$id1" c1
        bystander_ok
}

test_stage_killed_after_luks_format() { stage_killed_at stage.after_format s-fmt; }
test_stage_killed_after_open() { stage_killed_at stage.after_open s-open; }
test_stage_killed_after_mkfs() { stage_killed_at stage.after_mkfs s-mkfs; }
test_stage_killed_after_mount_before_io_max() { stage_killed_at stage.after_mount s-mount; }

test_stage_killed_after_open_then_unstaged_instead_leaves_nothing() {
        # kubelet gives up on a volume whose stage is uncertain (the pod
        # went away): NodeUnstageVolume must take the half-made mapping.
        local id
        start_plugin
        id=$(create s-gone team-a ',"iops":"200"') || t_fail "create"
        start_plugin stage.after_open
        crashes stage.after_open stage "$id" s-gone $D/key-a
        start_plugin
        dmsetup ls | grep -q "^$(map_of "$id")[[:space:]]" || t_fail "the crash left no mapping: nothing tested"
        unstage "$id" s-gone >/dev/null || t_fail "unstage of a half-staged volume"
        dmsetup ls | grep -q "^$(map_of "$id")[[:space:]]" && t_fail "unstage left the mapping"
        delete "$id" >/dev/null || t_fail "delete"
        gone "$id" s-gone
        only_bystander_limited
        bystander_ok
}

test_node_expand_killed_after_luks_resize_retry_grows_the_fs_keeps_data() {
        local id out size0 size1 stg
        start_plugin
        id=$(create x1 team-a) || t_fail "create"
        stage "$id" x1 $D/key-a >/dev/null || t_fail "stage"
        stg=$(staging_of x1)
        head -c 1048576 /dev/urandom >$D/x1.data
        cp $D/x1.data "$stg/data" && sync || t_fail "write"
        size0=$(df -B1 --output=size "$stg" | tail -1)
        ctl csi Controller.ControllerExpandVolume --json "{\"volumeId\":\"$id\",\"capacityRange\":{\"requiredBytes\":\"$((64 * MiB))\"}}" >/dev/null ||
                t_fail "ControllerExpandVolume"
        start_plugin expand.after_luks_resize
        crashes expand.after_luks_resize ctl csi Node.NodeExpandVolume --json "{\"volumeId\":\"$id\",\"volumePath\":\"$stg\",
                \"stagingTargetPath\":\"$stg\",\"capacityRange\":{\"requiredBytes\":\"$((64 * MiB))\"},\"volumeCapability\":$MOUNT_CAP}"
        start_plugin
        bystander_ok
        out=$(ctl csi Node.NodeExpandVolume --json "{\"volumeId\":\"$id\",\"volumePath\":\"$stg\",
                \"stagingTargetPath\":\"$stg\",\"capacityRange\":{\"requiredBytes\":\"$((64 * MiB))\"},\"volumeCapability\":$MOUNT_CAP}") ||
                t_fail "retried NodeExpandVolume"
        size1=$(df -B1 --output=size "$stg" | tail -1)
        say "    file system $size0 -> $size1 bytes"
        [ "$size1" -gt $((size0 + 24 * MiB)) ] || t_fail "file system not grown: $size0 -> $size1"
        cmp -s $D/x1.data "$stg/data" || t_fail "data lost"
        [ "$(mounts_of "$stg")" = 1 ] || t_fail "not one mount"
        unstage "$id" x1 >/dev/null || t_fail "unstage"
        delete "$id" >/dev/null || t_fail "delete"
        gone "$id" x1
        bystander_ok
}

test_delete_killed_after_erase_retry_removes_the_lv_and_no_key_opens_it() {
        local id lv
        start_plugin
        id=$(create d1 team-a) || t_fail "create"
        stage "$id" d1 $D/key-a >/dev/null || t_fail "stage"
        echo secret-of-team-a >"$(staging_of d1)/data" && sync
        unstage "$id" d1 >/dev/null || t_fail "unstage"
        lv=/dev/$VG/$(lv_of "$id")
        start_plugin delete.after_erase
        crashes delete.after_erase delete "$id"
        # Killed between erase and lvremove: the LV is there, its header is
        # gone, so nothing (not even the tenant's key) opens it.
        [ "$(lv_count "$(lv_of "$id")")" = 1 ] || t_fail "LV gone before the point: the point is misplaced"
        [ -z "$(blkid -p -o value -s TYPE "$lv" 2>/dev/null)" ] || t_fail "LV still has a signature after the erase"
        base64 -d <$D/key-a | cryptsetup open --test-passphrase --key-file - "$lv" 2>/dev/null && t_fail "the key still opens it"
        start_plugin
        delete "$id" >/dev/null || t_fail "retried delete"
        delete "$id" >/dev/null || t_fail "delete again (idempotent)"
        gone "$id" d1
        bystander_ok
}

setup_bystander_ok=0
t_run setup_bystander && setup_bystander_ok=1
if [ $setup_bystander_ok = 1 ]; then
        for t in $(declare -F | awk '{print $3}' | grep '^test_' | grep -E "${TV_CRASH_ONLY:-.}"); do
                t0=$(date +%s)
                t_run "$t"
                say "    ($(($(date +%s) - t0)) s)"
        done
fi
start_plugin
unstage "$(cat $D/by.id)" by >/dev/null 2>&1
delete "$(cat $D/by.id)" >/dev/null 2>&1
stop_plugin
remove_leftovers
pool_remove $VG
t_summary
