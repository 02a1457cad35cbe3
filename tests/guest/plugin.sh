# Sourced by guest test scripts that drive one thinvault-csi: start and
# stop it, call it, and the CSI requests a kubelet and the sidecars send.
# The script sets, before sourcing: BUILD, D (its scratch dir), VG, K (the
# kubelet dir); optionally PLUGIN_ARGS (more plugin flags, an array) and
# LOOP_SIZE (the loop-file pool's size, default 384M).
CSI=$BUILD/csi/thinvault-csi
CTL=$BUILD/cli/thinvaultctl
SOCK=$D/csi.sock
MiB=1048576
[ -n "${PLUGIN_ARGS+x}" ] || PLUGIN_ARGS=()
mkdir -p "$D" "$K/plugins" "$K/pods"

ctl() { timeout 300 "$CTL" --endpoint "unix://$SOCK" --timeout 290 "$@"; }
# jval KEY: the first value of KEY in the CLI's pretty JSON
jval() { grep -o "\"$1\": [^,}]*" | sed 's/^[^:]*: //; s/^"//; s/"$//' | head -1; }

# start_plugin [KILL_POINT]: (re)start the plugin, wait until it answers.
# With KILL_POINT it dies by SIGKILL there (TV_KILL_POINT, util.h).
start_plugin() {
        stop_plugin
        env ${1:+TV_KILL_POINT=$1} "$CSI" --endpoint "unix://$SOCK" --node-id node-a --vg "$VG" --thin-pool pool \
                --loop-file "/tmp/$VG.img" --loop-size "${LOOP_SIZE:-384M}" --kubelet-dir "$K" \
                "${PLUGIN_ARGS[@]}" >/dev/null 2>>"$D/csi.log" &
        echo $! >"$D/pid"
        local i
        for i in $(seq 240); do
                ctl csi Identity.GetPluginInfo >/dev/null 2>&1 && return 0
                kill -0 "$(cat "$D/pid")" 2>/dev/null || break
                sleep 0.5
        done
        t_fail "plugin did not start: $(tail -5 "$D/csi.log")"
}
# stop_plugin: SIGTERM, then wait by polling (it may be an earlier test's)
stop_plugin() {
        local pid i
        pid=$(cat "$D/pid" 2>/dev/null) || return 0
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 600); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        rm -f "$D/pid"
}

MOUNT_CAP='{"mount":{"fsType":"ext4"},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}'
# create NAME TENANT [extra parameters JSON members] [BYTES]: prints the id
create() {
        local out
        out=$(ctl csi Controller.CreateVolume --json "{\"name\":\"$1\",\"capacityRange\":{\"requiredBytes\":\"${4:-$((32 * MiB))}\"},
                \"volumeCapabilities\":[$MOUNT_CAP],
                \"parameters\":{\"csi.storage.k8s.io/pvc/namespace\":\"$2\"${3:-}}}") || return 1
        jval volumeId <<<"$out"
}
delete() { ctl csi Controller.DeleteVolume --json "{\"volumeId\":\"$1\"}"; }
staging_of() { echo "$K/plugins/kubernetes.io/csi/thinvault.csi.io/$1/globalmount"; }
# stage ID NAME KEYFILE: the secret goes through a 0600 file, never argv
stage() {
        mkdir -p "$(staging_of "$2")"
        (umask 077 && printf '%s' "{\"volumeId\":\"$1\",\"stagingTargetPath\":\"$(staging_of "$2")\",
                \"volumeCapability\":$MOUNT_CAP,\"secrets\":{\"key\":\"$(cat "$3")\"}}" >"$D/req.json")
        ctl csi Node.NodeStageVolume --json "@$D/req.json"
}
unstage() { ctl csi Node.NodeUnstageVolume --json "{\"volumeId\":\"$1\",\"stagingTargetPath\":\"$(staging_of "$2")\"}"; }
lv_of() { echo "${1#*:}"; }
# lv_count REGEX: how many LVs of $VG have a name matching REGEX whole
# (pool.sh's lvm_ must be sourced)
lv_count() { lvm_ lvs --noheadings -o lv_name "$VG" 2>/dev/null | grep -c "^ *$1$"; }
# expect_status STATUS what command...: the call must fail with STATUS;
# prints its message
expect_status() {
        local want=$1 what=$2 err
        shift 2
        err=$("$@" 2>&1 >/dev/null) && t_fail "$what: succeeded, expected $want"
        [[ "$err" == "$want:"* ]] || t_fail "$what: expected $want, got: $err"
        echo "$err"
}
map_of() { echo "tvc-${1#*:}"; }
devnum() { printf '%d:%d' "0x$(stat -L -c %t "/dev/mapper/$1")" "0x$(stat -L -c %T "/dev/mapper/$1")"; }
# remove_leftovers: what a failed test may leave under the kubelet dir
remove_leftovers() {
        local m
        for m in $(grep -o " $K/[^ ]*" /proc/self/mountinfo | sort -r); do umount "$m" 2>/dev/null; done
        for m in /dev/mapper/tvc-*; do [ -e "$m" ] && dmsetup remove "${m##*/}" 2>/dev/null; done
        return 0
}
