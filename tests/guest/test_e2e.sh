#!/usr/bin/env bash
# End to end: the calls kubelet and the CSI sidecars make for pods' lives,
# played against the real plugin in the guest, with the parameters,
# secrets and paths they pass when deployed from deploy/. The manifests
# are read (python3-yaml, then jq) so the requests follow them: the
# DaemonSet's plugin flags and sidecar flags, the CSIDriver, the
# StorageClasses, the VolumeAttributesClasses and the VolumeSnapshotClass.
#
# Registration (node-driver-registrar, kubelet, livenessprobe, the
# sidecars' start-up), capacity tracking (external-provisioner
# --enable-capacity), then two tenants at once, each through: CreateVolume
# (external-provisioner --extra-create-metadata, strict topology, the
# StorageClass's parameters with its csi.storage.k8s.io/ keys taken out),
# NodeStageVolume (kubelet: the node-stage Secret the class names, the
# PV's volume attributes, plugins/kubernetes.io/csi/<driver>/<sha256 of
# the handle>/globalmount), NodePublishVolume (pod info on mount,
# pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount), a pod's writes,
# NodeGetVolumeStats, ControllerExpandVolume then NodeExpandVolume (online),
# CreateSnapshot (external-snapshotter --extra-create-metadata), a restore
# into a second pod, ControllerModifyVolume (a VolumeAttributesClass),
# NodeUnpublishVolume, NodeUnstageVolume, DeleteSnapshot, DeleteVolume;
# and at the end no LV, mapping, mount or io.max line is left.
set -uo pipefail
BUILD=${1:-$TV_BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/../lib.sh"
. "$HERE/pool.sh"
CSI=$BUILD/csi/thinvault-csi
CTL=$BUILD/cli/thinvaultctl
D=/tmp/tv-e2e
VG=tve2e
NODE=node-e2e                # the DaemonSet's --node-id=$(NODE_NAME)
SOCK=$D/csi.sock
K=$D/kubelet                 # stands in for /var/lib/kubelet
CG=/sys/fs/cgroup/kubepods   # stands in for the kubelet's pods cgroup
J=$D/deploy.json             # every object of deploy/*.yaml
MiB=1048576
SIZE1=$((32 * MiB))          # the PVC's request
SIZE2=$((64 * MiB))          # after the PVC is resized
TOPO_KEY=topology.thinvault.io/node
mkdir -p $D $K/pods $K/plugins $CG
rm -rf "${D:?}"/team-*
echo '{}' >$D/empty.json

# The manifests, as the API server would hold them: all in $J, and one
# file per object, $D/m/KIND.NAME.json (programs start slowly in the guest:
# the requests are built from these with as few jq runs as can be).
rm -rf $D/m && mkdir $D/m
/usr/bin/python3 - "$ROOT/deploy" $D/m >$J <<'EOF' || { echo "FAIL read_deploy_manifests"; echo "0 passed, 1 failed"; exit 1; }
import glob, json, sys, yaml
objs = []
for f in sorted(glob.glob(sys.argv[1] + "/*.yaml")):
    if f.endswith("kustomization.yaml"):
        continue
    objs += [o for o in yaml.safe_load_all(open(f)) if o]
for o in objs:
    with open("%s/%s.%s.json" % (sys.argv[2], o["kind"], o["metadata"]["name"]), "w") as out:
        json.dump(o, out, separators=(",", ":"))
        out.write("\n")
json.dump(objs, sys.stdout)
EOF

# obj KIND [NAME]: the object(s) as compact JSON
obj() {
        if [ -n "${2:-}" ]; then
                cat "$D/m/$1.$2.json"
        else
                cat "$D/m/$1".*.json
        fi
}
DRIVER=$(obj CSIDriver | jq -r .metadata.name)
# container NAME: the DaemonSet's container of that name
container() { obj DaemonSet | jq -c --arg c "$1" '.spec.template.spec.containers[] | select(.name == $c)'; }
# flag CONTAINER FLAG: the value of --FLAG=VALUE in the container's args
flag() { container "$1" | jq -r --arg f "--$2=" '.args[] | select(startswith($f)) | ltrimstr($f)'; }
PROVISIONER_META=$(flag csi-provisioner extra-create-metadata)
SNAPSHOTTER_META=$(flag csi-snapshotter extra-create-metadata)

# Tenant keys as `kubectl create secret generic thinvault-key
# --from-literal=key=$(openssl rand -base64 32)` stores them (README);
# kubelet hands the Secret's data to NodeStageVolume as is.
head -c 32 /dev/urandom >$D/master && chmod 600 $D/master
for ns in team-a team-b; do
        (umask 077 && head -c 32 /dev/urandom | base64 -w0 >$D/secret.$ns.thinvault-key)
done

ctl() { timeout 300 "$CTL" --endpoint "unix://$SOCK" --timeout 290 "$@"; }
# call METHOD REQUEST_FILE OUT_FILE: one RPC; the reply in OUT_FILE, the
# call in the tenant's trace; fails the test with the status otherwise.
call() {
        local m=$1 req=$2 out=$3 t0=${EPOCHREALTIME/./} rc=0
        ctl csi "$m" --json @"$req" >"$out" 2>"$out.err" || rc=$?
        [ -n "${TRACE:-}" ] && echo "${m#*.}:$(((${EPOCHREALTIME/./} - t0) / 1000))" >>"$TRACE"
        [ $rc = 0 ] || t_fail "$m: $(cat "$out.err")"
}
# req FILE JQ_PROGRAM [jq args...]: build a request; 0600, as it may hold
# a secret (never on a command line)
req() {
        local f=$1
        shift
        (umask 077 && jq -n "$@" >"$f") || t_fail "building $f failed"
}
# expect WHAT ACTUAL WANTED
expect() { [ "$2" = "$3" ] || t_fail "$1: got '$2', expected '$3'"; }

# The plugin with the DaemonSet's flags, paths moved under $D, and the
# embedded loop-file pool (the node's VG in a cluster).
start_plugin() {
        local a args=()
        [ -f $D/pid ] && kill -0 "$(cat $D/pid)" 2>/dev/null && return 0
        ip link set lo up || t_fail "loopback"
        for a in $(container thinvault-csi | jq -r '.args[]'); do
                case $a in
                --endpoint=*) args+=("--endpoint=unix://$SOCK") ;;
                --node-id=*) args+=("--node-id=$NODE") ;;
                --vg=*) args+=("--vg=$VG") ;;
                --kubelet-dir=*) args+=("--kubelet-dir=$K") ;;
                --master-key=*) args+=("--master-key=$D/master") ;;
                --metrics-address=*) args+=("--metrics-address=127.0.0.1:0") ;;
                *) args+=("$a") ;;
                esac
        done
        echo "${args[*]}" >$D/plugin-args
        "$CSI" "${args[@]}" --loop-file /tmp/$VG.img --loop-size 256M >/dev/null 2>>$D/csi.log &
        echo $! >$D/pid
        local i
        for i in $(seq 240); do
                ctl csi Identity.GetPluginInfo >/dev/null 2>&1 && return 0
                kill -0 "$(cat $D/pid)" 2>/dev/null || break
                sleep 0.5
        done
        t_fail "plugin did not start with ${args[*]}: $(tail -5 $D/csi.log)"
}
stop_plugin() {
        local pid i
        pid=$(cat $D/pid 2>/dev/null) || return 0
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 600); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        rm -f $D/pid
}

# ---- what the manifests make the sidecars send -----------------------------------

# sc_fstype SC: external-provisioner's fs type: the class's fsType (any
# case) or csi.storage.k8s.io/fstype; no --default-fstype in deploy/.
sc_fstype() { cat $D/m/sc.$1.fstype; }
sc_capability() { cat $D/m/sc.$1.cap; }
sc_fstype_compute() {
        obj StorageClass "$1" | jq -r '(.parameters // {}) | to_entries
                | map(select((.key | ascii_downcase) == "fstype" or .key == "csi.storage.k8s.io/fstype")) | .[0].value // ""'
}
# sc_capability SC: the VolumeCapability of a ReadWriteOnce filesystem PVC
# (no SINGLE_NODE_MULTI_WRITER capability: RWO is SINGLE_NODE_WRITER), with
# the class's mountOptions (copied to the PV, which kubelet passes on).
sc_capability_compute() {
        obj StorageClass "$1" | jq -c --arg fs "$(sc_fstype "$1")" \
                '{mount: {fsType: $fs, mountFlags: (.mountOptions // [])}, accessMode: {mode: "SINGLE_NODE_WRITER"}}'
}
# sc_params SC PVC NAMESPACE PV: CreateVolume's parameters: the class's
# without csi.storage.k8s.io/ keys, plus the PVC/PV names with
# --extra-create-metadata.
sc_params() {
        obj StorageClass "$1" | jq -c --arg pvc "$2" --arg ns "$3" --arg pv "$4" --arg meta "$PROVISIONER_META" '
                ((.parameters // {}) | with_entries(select(.key | startswith("csi.storage.k8s.io/") | not)))
                + (if $meta == "true" then {"csi.storage.k8s.io/pvc/name": $pvc, "csi.storage.k8s.io/pvc/namespace": $ns,
                                            "csi.storage.k8s.io/pv/name": $pv} else {} end)
                | map_values(tostring)'
}
# sc_stage_secrets SC PVC NAMESPACE PV: the node-stage Secret's data
# (the class's secret reference, templates resolved), {} without one.
sc_stage_secrets() {
        local ref name ns
        ref=$(obj StorageClass "$1" | jq -r '.parameters // {} | [.["csi.storage.k8s.io/node-stage-secret-name"] // "",
                .["csi.storage.k8s.io/node-stage-secret-namespace"] // ""] | join(" ")')
        read -r name ns <<<"$ref"
        [ -z "$name" ] && { echo '{}'; return 0; }
        for v in name ns; do
                local s=${!v}
                s=${s//'${pvc.namespace}'/$3}
                s=${s//'${pvc.name}'/$2}
                s=${s//'${pv.name}'/$4}
                printf -v "$v" '%s' "$s"
        done
        [ -f "$D/secret.$ns.$name" ] || t_fail "Secret $ns/$name does not exist"
        jq -nc --rawfile k "$D/secret.$ns.$name" '{key: $k}'
}
# vac_params VAC: the class's parameters ({} for none)
vac_params() {
        [ -z "$1" ] && { echo '{}'; return 0; }
        obj VolumeAttributesClass "$1" | jq -c '.parameters // {} | map_values(tostring)'
}
# snapshot_params VOLUMESNAPSHOT NAMESPACE CONTENT: CreateSnapshot's
# parameters: the VolumeSnapshotClass's without csi.storage.k8s.io/ keys,
# plus the snapshot's names with the snapshotter's --extra-create-metadata.
snapshot_params() {
        obj VolumeSnapshotClass | head -1 | jq -c --arg vs "$1" --arg ns "$2" --arg vsc "$3" --arg meta "$SNAPSHOTTER_META" '
                ((.parameters // {}) | with_entries(select(.key | startswith("csi.storage.k8s.io/") | not)))
                + (if $meta == "true" then {"csi.storage.k8s.io/volumesnapshot/name": $vs,
                                            "csi.storage.k8s.io/volumesnapshot/namespace": $ns,
                                            "csi.storage.k8s.io/volumesnapshotcontent/name": $vsc} else {} end)'
}
for f in $D/m/StorageClass.*.json; do
        sc=${f#$D/m/StorageClass.}
        sc=${sc%.json}
        sc_fstype_compute "$sc" >$D/m/sc.$sc.fstype && sc_capability_compute "$sc" >$D/m/sc.$sc.cap ||
                { echo "FAIL read_storage_class_$sc"; exit 1; }
done
uuid() { cat /proc/sys/kernel/random/uuid; }
# kubelet's paths for a volume handle / a pod's volume
staging_path() { echo "$K/plugins/kubernetes.io/csi/$DRIVER/$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)/globalmount"; }
publish_path() { echo "$K/pods/$1/volumes/kubernetes.io~csi/$2/mount"; }
mounted() { grep -q " $1 " /proc/self/mountinfo; }
devnum() { printf '%d:%d' "0x$(stat -L -c %t "/dev/mapper/$1")" "0x$(stat -L -c %T "/dev/mapper/$1")"; }
io_max_line() { grep "^$1 " $CG/io.max; }

# ---- registration and start-up ---------------------------------------------------

test_registrar_kubelet_and_sidecars_find_what_deploy_expects() {
        start_plugin
        local out caps
        # node-driver-registrar, then kubelet's plugin watcher
        ctl csi Identity.GetPluginInfo >$D/info || t_fail "GetPluginInfo"
        expect "driver name" "$(jq -r .name $D/info)" "$DRIVER"
        [ -n "$(jq -r '.vendorVersion // ""' $D/info)" ] || t_fail "no vendor version: $(cat $D/info)"
        ctl csi Node.NodeGetInfo >$D/nodeinfo || t_fail "NodeGetInfo"
        expect "node id" "$(jq -r .nodeId $D/nodeinfo)" "$NODE"
        expect "node topology" "$(jq -c .accessibleTopology.segments $D/nodeinfo)" "{\"$TOPO_KEY\":\"$NODE\"}"
        expect "max volumes" "$(jq -r '.maxVolumesPerNode // 0' $D/nodeinfo)" 0
        # livenessprobe (and the sidecars' wait for the driver)
        out=$(ctl csi Identity.Probe) || t_fail "Probe"
        expect "ready" "$(jq -r .ready <<<"$out")" true
        # external-provisioner (topology, capacity), -resizer (online
        # expansion, modify), -snapshotter
        caps=$(ctl csi Identity.GetPluginCapabilities | jq -c '[.capabilities[] | (.service.type // ("EXPANSION_" + .volumeExpansion.type))] | sort') ||
                t_fail "GetPluginCapabilities"
        expect "plugin capabilities" "$caps" '["CONTROLLER_SERVICE","EXPANSION_ONLINE","VOLUME_ACCESSIBILITY_CONSTRAINTS"]'
        caps=$(ctl csi Controller.ControllerGetCapabilities | jq -c '[.capabilities[].rpc.type]') || t_fail "ControllerGetCapabilities"
        local c
        for c in CREATE_DELETE_VOLUME GET_CAPACITY CREATE_DELETE_SNAPSHOT EXPAND_VOLUME MODIFY_VOLUME; do
                jq -e --arg c $c 'index($c) != null' <<<"$caps" >/dev/null || t_fail "controller lacks $c: $caps"
        done
        # attachRequired: false in the CSIDriver: nothing would call ControllerPublish
        jq -e 'index("PUBLISH_UNPUBLISH_VOLUME") == null' <<<"$caps" >/dev/null || t_fail "PUBLISH_UNPUBLISH_VOLUME with attachRequired false"
        expect "CSIDriver attachRequired" "$(obj CSIDriver | jq -r .spec.attachRequired)" false
        expect "CSIDriver podInfoOnMount" "$(obj CSIDriver | jq -r .spec.podInfoOnMount)" true
        expect "CSIDriver storageCapacity" "$(obj CSIDriver | jq -r .spec.storageCapacity)" true
        caps=$(ctl csi Node.NodeGetCapabilities | jq -c '[.capabilities[].rpc.type] | sort') || t_fail "NodeGetCapabilities"
        expect "node capabilities" "$caps" '["EXPAND_VOLUME","GET_VOLUME_STATS","STAGE_UNSTAGE_VOLUME","VOLUME_CONDITION"]'
}

# The pool's free data space as the plugin reports it: dm-thin's free
# blocks times its block size, in whole extents.
pool_free_bytes() {
        local dm used total chunk extent
        # "VG-pool-tpool" once thin LVs exist, else "VG-pool"
        for dm in ${VG//-/--}-pool-tpool ${VG//-/--}-pool; do
                [ "$(dmsetup status $dm 2>/dev/null | awk '{print $3}')" = thin-pool ] && break
        done
        read -r used total < <(dmsetup status $dm | awk '{split($6, d, "/"); print d[1], d[2]}')
        chunk=$(dmsetup table $dm | awk '{print $6 * 512}')
        extent=$(lvm_ vgs --noheadings --units b --nosuffix -o vg_extent_size $VG | tr -d ' ')
        echo $(((total - used) * chunk / extent * extent))
}

# external-provisioner's capacity controller: one GetCapacity per class
# and topology segment, with the class's parameters as written (secret
# references and templates included) and no capabilities.
test_capacity_per_storage_class_and_node_segment() {
        start_plugin
        local sc want got max n=0
        want=$(pool_free_bytes)
        [ "$want" -gt $((128 * MiB)) ] || t_fail "pool free $want"
        for sc in $(obj StorageClass | jq -r .metadata.name); do
                req $D/cap.json --argjson p "$(obj StorageClass "$sc" | jq -c '.parameters // {} | map_values(tostring)')" \
                        --arg k $TOPO_KEY --arg n $NODE '{parameters: $p, accessibleTopology: {segments: {($k): $n}}}'
                call Controller.GetCapacity $D/cap.json $D/cap.out
                got=$(jq -r '.availableCapacity // "0"' $D/cap.out)
                max=$(jq -r '.maximumVolumeSize // "0"' $D/cap.out)
                expect "$sc: available" "$got" "$want"
                expect "$sc: maximum volume size" "$max" "$want"
                # another node's segment: nothing here
                req $D/cap.json --argjson p "$(obj StorageClass "$sc" | jq -c '.parameters // {} | map_values(tostring)')" \
                        --arg k $TOPO_KEY '{parameters: $p, accessibleTopology: {segments: {($k): "another-node"}}}'
                call Controller.GetCapacity $D/cap.json $D/cap.out
                expect "$sc: another node" "$(jq -r '.availableCapacity // "0"' $D/cap.out)" 0
                n=$((n + 1))
        done
        [ $n -ge 3 ] || t_fail "only $n StorageClasses in deploy/"
        echo "    $n classes, $((want / MiB)) MiB available" >&2
}

# ---- a tenant's pod, its PVC, a snapshot and a restore ---------------------------

# The pod's writes: a text file and 3 MiB of random bytes, synced.
pod_write() {
        echo "written by $2 in $1" >"$1/hello" && head -c $((3 * MiB)) /dev/urandom >"$1/data" && sync -f "$1/data" ||
                t_fail "pod write in $1"
}
sums() { (cd "$1" && md5sum hello data); }

# check_stats REPLY PATH: NodeGetVolumeStats's numbers are the file
# system's at PATH, and the volume is healthy.
check_stats() {
        local r=$1 bs blocks bfree bavail files ffree
        read -r bs blocks bfree bavail files ffree < <(stat -f -c '%S %b %f %a %c %d' "$2")
        expect "stats units" "$(jq -c '[.usage[].unit]' $r)" '["BYTES","INODES"]'
        expect "stats bytes total/available/used" "$(jq -r '.usage[0] | "\(.total // 0) \(.available // 0) \(.used // 0)"' $r)" \
                "$((blocks * bs)) $((bavail * bs)) $(((blocks - bfree) * bs))"
        expect "stats inodes total/available/used" "$(jq -r '.usage[1] | "\(.total // 0) \(.available // 0) \(.used // 0)"' $r)" \
                "$files $ffree $((files - ffree))"
        expect "volume condition" "$(jq -r '"\(.volumeCondition.abnormal // false) \(.volumeCondition.message)"' $r)" "false volume is healthy"
}

# create_volume OUT PV PVC NAMESPACE SC VAC [SNAPSHOT_ID]: external-provisioner's CreateVolume
create_volume() {
        local out=$1 pv=$2 pvc=$3 ns=$4 sc=$5 vac=$6 snap=${7:-}
        req $W/create-$pvc.json --arg name "$pv" --argjson size "$SIZE1" --argjson cap "$(sc_capability "$sc")" \
                --argjson params "$(sc_params "$sc" "$pvc" "$ns" "$pv")" --argjson mut "$(vac_params "$vac")" \
                --arg k $TOPO_KEY --arg n $NODE --arg snap "$snap" --argjson size2 $SIZE2 '
                {name: $name, volumeCapabilities: [$cap], parameters: $params, secrets: {},
                 accessibilityRequirements: {requisite: [{segments: {($k): $n}}], preferred: [{segments: {($k): $n}}]}}
                + (if $snap == "" then {capacityRange: {requiredBytes: ($size | tostring)}}
                   else {capacityRange: {requiredBytes: ($size2 | tostring)}, volumeContentSource: {snapshot: {snapshotId: $snap}}} end)
                + (if $mut == {} then {} else {mutableParameters: $mut} end)'
        call Controller.CreateVolume $W/create-$pvc.json "$out"
}

# stage_req FILE ID STAGING SC PVC NS PV CONTEXT: kubelet's NodeStageVolume
stage_req() {
        req "$1" --arg id "$2" --arg stg "$3" --argjson cap "$(sc_capability "$4")" \
                --argjson sec "$(sc_stage_secrets "$4" "$5" "$6" "$7")" --argjson ctx "$8" \
                '{volumeId: $id, publishContext: {}, stagingTargetPath: $stg, volumeCapability: $cap, secrets: $sec, volumeContext: $ctx}'
}
# publish_req FILE ID STAGING TARGET SC CONTEXT POD POD_UID NS:
# NodePublishVolume with pod info on mount (CSIDriver podInfoOnMount)
publish_req() {
        req "$1" --arg id "$2" --arg stg "$3" --arg tgt "$4" --argjson cap "$(sc_capability "$5")" --argjson ctx "$6" \
                --arg pod "$7" --arg uid "$8" --arg ns "$9" '
                {volumeId: $id, publishContext: {}, stagingTargetPath: $stg, targetPath: $tgt, volumeCapability: $cap,
                 readonly: false, secrets: {},
                 volumeContext: ($ctx + {"csi.storage.k8s.io/pod.name": $pod, "csi.storage.k8s.io/pod.namespace": $ns,
                                         "csi.storage.k8s.io/pod.uid": $uid, "csi.storage.k8s.io/serviceAccount.name": "default",
                                         "csi.storage.k8s.io/ephemeral": "false"})}'
}
# kubelet's MountDevice/SetUp: the directories and vol_data.json it
# writes before calling the driver (it makes globalmount, not the target).
kubelet_prepare() { # STAGING TARGET ID PV
        mkdir -p "$1" "$(dirname "$2")" || t_fail "mkdir"
        printf '{"driverName":"%s","volumeHandle":"%s"}\n' "$DRIVER" "$3" >"$(dirname "$1")/vol_data.json"
        printf '{"driverName":"%s","volumeHandle":"%s","specVolID":"%s","attachmentID":""}\n' "$DRIVER" "$3" "$4" \
                >"$(dirname "$2")/vol_data.json"
}
# stage_and_publish ID SC PVC NS PV CONTEXT POD POD_UID: sets STG, TGT
stage_and_publish() {
        local id=$1 sc=$2 pvc=$3 ns=$4 pv=$5 ctx=$6 pod=$7 puid=$8
        STG=$(staging_path "$id")
        TGT=$(publish_path "$puid" "$pv")
        kubelet_prepare "$STG" "$TGT" "$id" "$pv"
        call Node.NodeGetCapabilities $D/empty.json $W/nodecaps.out
        stage_req $W/stage-$pvc.json "$id" "$STG" "$sc" "$pvc" "$ns" "$pv" "$ctx"
        call Node.NodeStageVolume $W/stage-$pvc.json $W/stage-$pvc.out
        mounted "$STG" || t_fail "$pvc: staging path not mounted"
        expect "$pvc: staged file system" "$(findmnt -n -o FSTYPE "$STG")" "$(sc_fstype "$sc")"
        publish_req $W/publish-$pvc.json "$id" "$STG" "$TGT" "$sc" "$ctx" "$pod" "$puid" "$ns"
        call Node.NodePublishVolume $W/publish-$pvc.json $W/publish-$pvc.out
        mounted "$TGT" || t_fail "$pvc: target path not mounted"
}
# unpublish_and_unstage ID STAGING TARGET: the pod goes, then the volume
# leaves the node; kubelet removes its vol_data.json and directories.
unpublish_and_unstage() {
        local id=$1 stg=$2 tgt=$3 map=$4
        req $W/unpub.json --arg id "$id" --arg t "$tgt" '{volumeId: $id, targetPath: $t}'
        call Node.NodeUnpublishVolume $W/unpub.json $W/unpub.out
        mounted "$tgt" && t_fail "target still mounted"
        [ -e "$tgt" ] && t_fail "target $tgt left"
        # the pod is gone: kubelet removes its directory
        rm -f "$(dirname "$tgt")/vol_data.json" && rmdir "$(dirname "$tgt")" && rm -r "${tgt%%/volumes/*}" ||
                t_fail "kubelet's cleanup of $(dirname "$tgt")"
        req $W/unstage.json --arg id "$id" --arg s "$stg" '{volumeId: $id, stagingTargetPath: $s}'
        call Node.NodeUnstageVolume $W/unstage.json $W/unstage.out
        mounted "$stg" && t_fail "staging path still mounted"
        [ -e /dev/mapper/$map ] && t_fail "mapping $map left"
        rmdir "$stg" && rm -f "$(dirname "$stg")/vol_data.json" && rmdir "$(dirname "$stg")" ||
                t_fail "kubelet's cleanup of $(dirname "$stg")"
}

# pod_life NAMESPACE STORAGECLASS VAC_AT_CREATE VAC_LATER IO_MAX IO_MAX_LATER
# One tenant's PVC "data" through a pod's life, a snapshot, a restore into
# a second pod, a class change and the end; IO_MAX are the io.max values
# the classes make for a volume of this size.
pod_life() {
        local ns=$1 sc=$2 vac0=$3 vac1=$4 io0=$5 io1=$6
        local pv id ctx keysrc map dev pod_uid sum0 sum1 snap rpv rid rmap rdev stg tgt out
        W=$D/$ns
        TRACE=$W/calls
        mkdir -p $W
        keysrc=$(obj StorageClass "$sc" | jq -r '.parameters.keySource // "secret"')

        # --- the PVC is bound: external-provisioner ---
        pv=pvc-$(uuid)
        create_volume $W/create.out "$pv" data "$ns" "$sc" "$vac0"
        id=$(jq -r .volume.volumeId $W/create.out)
        [[ "$id" == "$VG:tv-"* ]] || t_fail "volume id $id"
        expect "capacity" "$(jq -r .volume.capacityBytes $W/create.out)" $SIZE1
        ctx=$(jq -c '.volume.volumeContext // {}' $W/create.out)
        expect "volume context" "$(jq -c -S . <<<"$ctx")" \
                "$(jq -nc -S --arg t "$ns" --arg f "$(sc_fstype "$sc")" --arg k "$keysrc" '{tenant: $t, fsType: $f, keySource: $k}')"
        expect "accessible topology" "$(jq -c .volume.accessibleTopology $W/create.out)" "[{\"segments\":{\"$TOPO_KEY\":\"$NODE\"}}]"
        expect "content source" "$(jq -c '.volume.contentSource // null' $W/create.out)" null

        # --- a pod uses it: kubelet ---
        pod_uid=$(uuid)
        stage_and_publish "$id" "$sc" data "$ns" "$pv" "$ctx" app "$pod_uid"
        stg=$STG tgt=$TGT
        map=tvc-${id#*:}
        dev=$(devnum $map) || t_fail "no mapping $map"
        echo "$dev" >>$D/devices
        expect "io.max after stage" "$(io_max_line "$dev")" "$dev $io0"
        pod_write "$tgt" "$ns"
        sum0=$(sums "$tgt")

        # --- kubelet's volume stats, on the pod's path ---
        req $W/stats.json --arg id "$id" --arg p "$tgt" --arg s "$stg" '{volumeId: $id, volumePath: $p, stagingTargetPath: $s}'
        call Node.NodeGetVolumeStats $W/stats.json $W/stats1.out
        check_stats $W/stats1.out "$tgt"
        [ "$(jq -r .usage[0].used $W/stats1.out)" -ge $((3 * MiB)) ] || t_fail "used below what the pod wrote: $(cat $W/stats1.out)"

        # --- the PVC grows: external-resizer, then kubelet (online) ---
        req $W/cexpand.json --arg id "$id" --argjson size $SIZE2 --argjson cap "$(sc_capability "$sc")" \
                '{volumeId: $id, capacityRange: {requiredBytes: ($size | tostring)}, secrets: {}, volumeCapability: $cap}'
        call Controller.ControllerExpandVolume $W/cexpand.json $W/cexpand.out
        expect "controller expansion" "$(jq -r '"\(.capacityBytes) \(.nodeExpansionRequired)"' $W/cexpand.out)" "$SIZE2 true"
        req $W/nexpand.json --arg id "$id" --arg p "$tgt" --arg s "$stg" --argjson size $SIZE2 --argjson cap "$(sc_capability "$sc")" \
                '{volumeId: $id, volumePath: $p, capacityRange: {requiredBytes: ($size | tostring)}, stagingTargetPath: $s,
                  volumeCapability: $cap, secrets: {}}'
        call Node.NodeExpandVolume $W/nexpand.json $W/nexpand.out
        expect "node expansion" "$(jq -r .capacityBytes $W/nexpand.out)" $SIZE2
        call Node.NodeGetVolumeStats $W/stats.json $W/stats2.out
        check_stats $W/stats2.out "$tgt"
        [ "$(jq -r .usage[0].total $W/stats2.out)" -ge $(($(jq -r .usage[0].total $W/stats1.out) + SIZE2 - SIZE1 - 4 * MiB)) ] ||
                t_fail "file system did not grow: $(jq -c .usage[0] $W/stats1.out) -> $(jq -c .usage[0] $W/stats2.out)"
        expect "data after expansion" "$(sums "$tgt")" "$sum0"
        expect "io.max after expansion" "$(io_max_line "$dev")" "$dev $io0"

        # --- a VolumeSnapshot: external-snapshotter ---
        local vs_uid
        vs_uid=$(uuid)
        req $W/snap.json --arg n "snapshot-$vs_uid" --arg id "$id" \
                --argjson p "$(snapshot_params data-snap "$ns" "snapcontent-$vs_uid")" \
                '{sourceVolumeId: $id, name: $n, parameters: $p, secrets: {}}'
        call Controller.CreateSnapshot $W/snap.json $W/snap.out
        snap=$(jq -r .snapshot.snapshotId $W/snap.out)
        [[ "$snap" == "$VG:tvs-"* ]] || t_fail "snapshot id $snap"
        expect "snapshot" "$(jq -r '.snapshot | "\(.sourceVolumeId) \(.sizeBytes) \(.readyToUse)"' $W/snap.out)" "$id $SIZE2 true"
        [ -n "$(jq -r '.snapshot.creationTime // ""' $W/snap.out)" ] || t_fail "no creation time: $(cat $W/snap.out)"
        # lvs tells whose they are (one lvm2 run for both)
        local tags
        tags=$(lvm_ lvs --noheadings -o lv_name,lv_tags $VG | tr -d ' ')
        grep -qE "^${id#*:}tv.*tv.pvc=$ns/data(,|$)" <<<"$tags" && grep -qE "^${id#*:}tv.*tv.pv=$pv(,|$)" <<<"$tags" &&
                grep -qE "^${id#*:}tv.*tv.tenant=$ns(,|$)" <<<"$tags" || t_fail "volume tags: $tags"
        grep -qE "^${snap#*:}tv.*tv.tenant=$ns(,|$)" <<<"$tags" || t_fail "snapshot tags: $tags"
        if [ "$SNAPSHOTTER_META" = true ]; then
                grep -qE "^${snap#*:}tv.*tv.vs=$ns/data-snap(,|$)" <<<"$tags" &&
                        grep -qE "^${snap#*:}tv.*tv.vsc=snapcontent-$vs_uid(,|$)" <<<"$tags" || t_fail "snapshot metadata tags: $tags"
        fi
        # the pod goes on writing: the snapshot keeps what was there
        pod_write "$tgt" "$ns-later"
        sum1=$(sums "$tgt")
        [ "$sum1" != "$sum0" ] || t_fail "rewrite changed nothing"

        # --- a PVC restored from it, used by a second pod ---
        rpv=pvc-$(uuid)
        create_volume $W/restore.out "$rpv" data-restored "$ns" "$sc" "$vac0" "$snap"
        rid=$(jq -r .volume.volumeId $W/restore.out)
        expect "restore capacity" "$(jq -r .volume.capacityBytes $W/restore.out)" $SIZE2
        expect "restore source" "$(jq -r .volume.contentSource.snapshot.snapshotId $W/restore.out)" "$snap"
        expect "restore context" "$(jq -c -S '.volume.volumeContext // {}' $W/restore.out)" "$(jq -c -S . <<<"$ctx")"
        stage_and_publish "$rid" "$sc" data-restored "$ns" "$rpv" "$(jq -c '.volume.volumeContext // {}' $W/restore.out)" \
                app-restored "$(uuid)"
        rmap=tvc-${rid#*:}
        rdev=$(devnum $rmap) || t_fail "no mapping $rmap"
        echo "$rdev" >>$D/devices
        expect "restored data" "$(sums "$TGT")" "$sum0"
        expect "io.max of the restore" "$(io_max_line "$rdev")" "$rdev $io0"
        req $W/rstats.json --arg id "$rid" --arg p "$TGT" --arg s "$STG" '{volumeId: $id, volumePath: $p, stagingTargetPath: $s}'
        call Node.NodeGetVolumeStats $W/rstats.json $W/rstats.out
        check_stats $W/rstats.out "$TGT"
        unpublish_and_unstage "$rid" "$STG" "$TGT" "$rmap"
        io_max_line "$rdev" && t_fail "io.max line of the restore left"

        # --- the PVC's VolumeAttributesClass changes: external-resizer ---
        req $W/modify.json --arg id "$id" --argjson m "$(vac_params "$vac1")" '{volumeId: $id, secrets: {}, mutableParameters: $m}'
        call Controller.ControllerModifyVolume $W/modify.json $W/modify.out
        expect "io.max after ControllerModifyVolume" "$(io_max_line "$dev")" "$dev $io1"
        expect "data after the class change" "$(sums "$tgt")" "$sum1"

        # --- the pod is deleted, then the PVCs and the VolumeSnapshot ---
        unpublish_and_unstage "$id" "$stg" "$tgt" "$map"
        io_max_line "$dev" && t_fail "io.max line left"
        req $W/dsnap.json --arg s "$snap" '{snapshotId: $s, secrets: {}}'
        call Controller.DeleteSnapshot $W/dsnap.json $W/dsnap.out
        # (with reclaimPolicy Retain the provisioner leaves the volume to
        # the admin, who deletes it with this same call)
        for v in "$rid" "$id"; do
                req $W/dvol.json --arg id "$v" '{volumeId: $id, secrets: {}}'
                call Controller.DeleteVolume $W/dvol.json $W/dvol.out
        done
        local left
        left=$(lvm_ lvs --noheadings -o lv_name $VG | tr -d ' ' | grep -xF -e "${snap#*:}" -e "${rid#*:}" -e "${id#*:}")
        [ -z "$left" ] || t_fail "LVs left: $left"
        echo "done"
}

TENANTS=(
        # namespace  StorageClass                   VAC at create     VAC later         io.max at stage / after the change
        "team-a thinvault-ext4-standard - thinvault-bronze rbps=104857600_wbps=52428800_riops=100_wiops=100 rbps=max_wbps=max_riops=50_wiops=50"
        "team-b thinvault-ext4-derived-retain thinvault-bronze thinvault-gold rbps=max_wbps=max_riops=50_wiops=50 rbps=419430400_wbps=209715200_riops=5000_wiops=2500"
)

test_two_tenants_pod_lives_at_once() {
        start_plugin
        local t ns sc v0 v1 io0 io1 pids=() names=() i failed=0
        : >$D/devices
        for t in "${TENANTS[@]}"; do
                read -r ns sc v0 v1 io0 io1 <<<"$t"
                [ "$v0" = - ] && v0=""
                (pod_life "$ns" "$sc" "$v0" "$v1" "${io0//_/ }" "${io1//_/ }") >$D/$ns.log 2>&1 &
                pids+=($!)
                names+=("$ns")
        done
        for i in "${!pids[@]}"; do
                if ! wait "${pids[$i]}"; then
                        echo "    ${names[$i]}: $(tail -5 $D/${names[$i]}.log)" >&2
                        failed=1
                fi
        done
        [ $failed = 0 ] || t_fail "a tenant's sequence failed"
}

# Last: everything the pods' lives made is gone.
final_no_lv_mapping_mount_or_io_max_line_left() {
        local lvs
        lvs=$(lvm_ lvs --noheadings -o lv_name $VG | tr -d ' ' | grep -v '^pool$' | grep -v '^\[')
        [ -z "$lvs" ] || t_fail "LVs left: $lvs"
        [ -z "$(dmsetup ls | grep '^tvc-')" ] || t_fail "mappings left: $(dmsetup ls | grep '^tvc-')"
        grep -q " $K/" /proc/self/mountinfo && t_fail "mounts left: $(grep " $K/" /proc/self/mountinfo)"
        local dev
        for dev in $(cat $D/devices 2>/dev/null); do
                io_max_line "$dev" && t_fail "io.max line left for $dev"
        done
        [ -s $D/devices ] || t_fail "no device was recorded"
        [ -z "$(find $K/pods -mindepth 1)" ] || t_fail "pods' files left: $(find $K/pods -mindepth 1)"
        [ -z "$(find $K/plugins ! -type d)" ] || t_fail "files left: $(find $K/plugins ! -type d)"
        # and the pool gives its space back
        req $D/cap.json --arg k $TOPO_KEY --arg n $NODE '{accessibleTopology: {segments: {($k): $n}}}'
        call Controller.GetCapacity $D/cap.json $D/cap.out
        expect "capacity at the end" "$(jq -r '.availableCapacity // "0"' $D/cap.out)" "$(pool_free_bytes)"
}

cleanup() {
        local m
        for m in $(grep -o " $K/[^ ]*" /proc/self/mountinfo | sort -r); do umount "$m" 2>/dev/null; done
        for m in /dev/mapper/tvc-*; do [ -e "$m" ] && dmsetup remove "${m##*/}" 2>/dev/null; done
        return 0
}

for t in test_registrar_kubelet_and_sidecars_find_what_deploy_expects test_capacity_per_storage_class_and_node_segment \
        test_two_tenants_pod_lives_at_once final_no_lv_mapping_mount_or_io_max_line_left; do
        t0=$(date +%s)
        t_run "$t"
        echo "    ($(($(date +%s) - t0)) s)"
done
for ns in team-a team-b; do
        [ -f $D/$ns/calls ] && echo "    $ns calls (ms): $(tr '\n' ' ' <$D/$ns/calls)"
done
stop_plugin
cleanup
pool_remove $VG
rmdir $CG 2>/dev/null
t_summary
