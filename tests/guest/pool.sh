# Sourced by guest tests: make and remove a loop-file-backed volume group
# with a thin pool, with lvm2 told there is no udev (as in a container).
LVM_CONFIG='activation{udev_sync=0 udev_rules=0 verify_udev_operations=1} devices{obtain_device_list_from_udev=0}'

lvm_() { "$@" --config "$LVM_CONFIG"; }

# pool_create VG POOL SIZE_MB: prints nothing, fails loudly
pool_create() {
        local vg=$1 pool=$2 size=$3 file=/tmp/$1.img loopdev
        truncate -s "${size}M" "$file"
        loopdev=$(losetup --find --show "$file") || return 1
        echo "$loopdev" >"/tmp/$vg.loop"
        lvm_ pvcreate -q "$loopdev" >/dev/null &&
                lvm_ vgcreate -q "$vg" "$loopdev" >/dev/null &&
                lvm_ lvcreate -q --type thin-pool -l 90%FREE -n "$pool" "$vg" >/dev/null
}

pool_remove() {
        local vg=$1
        lvm_ vgremove -q -f "$vg" >/dev/null 2>&1
        local dev
        for dev in $(losetup -j "/tmp/$vg.img" -O NAME -n 2>/dev/null); do losetup -d "$dev" 2>/dev/null; done
        rm -f "/tmp/$vg.img" "/tmp/$vg.loop"
}
