#!/usr/bin/env bash
# The Controller service against real lvm2 in the guest: tenant volumes as
# thin LVs, idempotency, bad input, quotas and pool guards, snapshots and
# clones that keep data, expansion, pagination, restarts.
set -uo pipefail
BUILD=${1:-$TV_BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/pool.sh"
CSI=$BUILD/csi/thinvault-csi
CTL=$BUILD/cli/thinvaultctl
D=/tmp/tv-ctrl
VG=tvctl
SOCK=$D/csi.sock
mkdir -p $D
# A crashing plugin leaves a core for the report below.
echo "$D/core.%p" >/proc/sys/kernel/core_pattern 2>/dev/null
GiB=1073741824
MiB=1048576

ctl() { timeout 600 "$CTL" --endpoint "unix://$SOCK" --timeout 590 "$@"; }
jget() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    d = d[int(k)] if isinstance(d, list) else d.get(k, "")
print(d)' "$1"; }

start_plugin() {
        ulimit -c unlimited
        "$CSI" --endpoint "unix://$SOCK" --node-id node-a --vg $VG --thin-pool pool \
                --loop-file /tmp/$VG.img --loop-size 512M "$@" >/dev/null 2>>$D/csi.log &
        echo $! >$D/pid
        t_wait_socket "$SOCK" 60 || t_fail "plugin did not start: $(tail -5 $D/csi.log) $(core_report)"
}
core_report() {
        local c
        for c in $D/core.*; do
                [ -f "$c" ] || continue
                gdb -q -batch -ex bt "$CSI" "$c" 2>&1 | grep -E '^#' | head -20
                rm -f "$c"
        done
}
# t_after runs outside the test's subshell, where `wait` cannot reach the
# plugin: poll until it is gone (in-flight calls finish first).
stop_plugin() {
        local pid i
        pid=$(cat $D/pid 2>/dev/null) || return 0
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 1200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && { echo "plugin $pid ignored SIGTERM for 10 minutes" >&2; kill -KILL "$pid"; }
        rm -f $D/pid
}
t_after() {
        stop_plugin
        core_report
}

# create NAME TENANT BYTES [extra JSON members]: prints the reply
create() {
        ctl csi Controller.CreateVolume --json "{\"name\":\"$1\",\"capacityRange\":{\"requiredBytes\":\"$3\"},
                \"volumeCapabilities\":[{\"mount\":{\"fsType\":\"ext4\"},\"accessMode\":{\"mode\":\"SINGLE_NODE_WRITER\"}}],
                \"parameters\":{\"csi.storage.k8s.io/pvc/namespace\":\"$2\",\"csi.storage.k8s.io/pvc/name\":\"claim-$1\"}${4:-}}"
}
expect_status() { # expect_status STATUS what command...
        local want=$1 what=$2 err
        shift 2
        err=$("$@" 2>&1 >/dev/null) && t_fail "$what: succeeded, expected $want"
        [[ "$err" == "$want:"* ]] || t_fail "$what: expected $want, got: $err"
        echo "$err"
}
lvs_tags() { lvm_ lvs --noheadings -o lv_tags "$VG/$1" | tr -d ' '; }
count_lvs() { lvm_ lvs --noheadings -o lv_name "$VG" | grep -c ' tv-'; }

test_create_volume_tags_tenant_and_is_idempotent() {
        start_plugin
        local out id id2
        out=$(create pvc-a1 team-a $((64 * MiB))) || t_fail "create"
        id=$(jget volume.volumeId <<<"$out")
        [[ "$id" == "$VG:tv-pvc-a1-"* ]] || t_fail "volume id: $id"
        [ "$(jget volume.capacityBytes <<<"$out")" = $((64 * MiB)) ] || t_fail "capacity: $out"
        grep -q '"tenant": "team-a"' <<<"$out" || t_fail "context: $out"
        grep -q '"topology.thinvault.io/node": "node-a"' <<<"$out" || t_fail "topology: $out"
        local tags
        tags=$(lvs_tags "${id#*:}")
        [[ "$tags" == *tv.tenant=team-a* && "$tags" == *tv.name=pvc-a1* && "$tags" == *tv.pvc=team-a/claim-pvc-a1* ]] ||
                t_fail "tags: $tags"
        out=$(create pvc-a1 team-a $((64 * MiB))) || t_fail "retry"
        id2=$(jget volume.volumeId <<<"$out")
        [ "$id" = "$id2" ] || t_fail "retry gave $id2"
        expect_status ALREADY_EXISTS "same name, other size" create pvc-a1 team-a $((128 * MiB)) >/dev/null
        # rounding: 1 byte more than 4 MiB rounds up to the 4 MiB extent
        out=$(create pvc-round team-a $((4 * MiB + 1))) || t_fail "create odd size"
        [ "$(jget volume.capacityBytes <<<"$out")" = $((8 * MiB)) ] || t_fail "rounding: $out"
}

test_create_volume_bad_input_is_refused_and_changes_nothing() {
        start_plugin
        local before
        before=$(count_lvs)
        expect_status INVALID_ARGUMENT "no tenant" ctl csi Controller.CreateVolume --json \
                '{"name":"x","volumeCapabilities":[{"block":{},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}]}' >/dev/null
        expect_status INVALID_ARGUMENT "unknown parameter" ctl csi Controller.CreateVolume --json \
                '{"name":"up","volumeCapabilities":[{"block":{},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}],"parameters":{"tenant":"team-a","iopz":"5"}}' >/dev/null
        expect_status INVALID_ARGUMENT "empty name" create "" team-a $MiB >/dev/null
        expect_status INVALID_ARGUMENT "10 KB name" create "$(head -c 10240 /dev/zero | tr '\0' 'n')" team-a $MiB >/dev/null
        expect_status INVALID_ARGUMENT "negative" create neg team-a -5 >/dev/null
        expect_status OUT_OF_RANGE "2^63-1 bytes" create huge team-a 9223372036854775807 >/dev/null
        expect_status OUT_OF_RANGE "required > limit" ctl csi Controller.CreateVolume --json \
                '{"name":"rl","capacityRange":{"requiredBytes":"2000000","limitBytes":"1000000"},"volumeCapabilities":[{"block":{},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}],"parameters":{"tenant":"team-a"}}' >/dev/null
        expect_status INVALID_ARGUMENT "bad tenant" create x "Team_A" $MiB >/dev/null
        expect_status INVALID_ARGUMENT "multi-node mode" ctl csi Controller.CreateVolume --json \
                '{"name":"mn","volumeCapabilities":[{"block":{},"accessMode":{"mode":"MULTI_NODE_MULTI_WRITER"}}],"parameters":{"tenant":"team-a"}}' >/dev/null
        expect_status INVALID_ARGUMENT "no capabilities" ctl csi Controller.CreateVolume --json '{"name":"nc","parameters":{"tenant":"team-a"}}' >/dev/null
        expect_status INVALID_ARGUMENT "unsupported fsType" ctl csi Controller.CreateVolume --json \
                '{"name":"fsx","volumeCapabilities":[{"mount":{},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}],"parameters":{"tenant":"team-a","fsType":"vfat"}}' >/dev/null
        expect_status RESOURCE_EXHAUSTED "other node's topology" create topo team-a $MiB ',"accessibilityRequirements":{"requisite":[{"segments":{"topology.thinvault.io/node":"node-b"}}]}' >/dev/null
        [ "$(count_lvs)" = "$before" ] || t_fail "an LV appeared: $(lvm_ lvs $VG)"
}

test_hostile_names_map_to_distinct_valid_lvs() {
        start_plugin
        local n ids=()
        for n in 'a/b' '../../etc' 'with space' 'ünïcödé' '-leading' 'pvc_tmeta' 'a/b ' '--help' "x\$(reboot)" 'a"b'; do
                local out
                # the name as a JSON string: escape the quote
                out=$(create "${n//\"/\\\"}" team-a $((4 * MiB))) || t_fail "create '$n'"
                ids+=("$(jget volume.volumeId <<<"$out")")
        done
        [ "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" = 10 ] || t_fail "ids collide: ${ids[*]}"
        lvm_ lvs --noheadings -o lv_tags $VG | grep -q 'tv.name=x#24#28reboot#29,' || t_fail "name tag not escaped: $(lvm_ lvs -o lv_name,lv_tags $VG)"
}

test_fifty_concurrent_creates_with_duplicates() {
        start_plugin
        local i pids=() before
        before=$(count_lvs)
        # Like external-provisioner, a caller retries a call that could not
        # connect (50 clients starting at once in an emulated guest may miss
        # the connection deadline); every other failure counts.
        create_retry() {
                local n
                for n in 1 2 3; do
                        create "$@" && return 0
                        grep -q '^UNAVAILABLE' "$D/conc.$i" 2>/dev/null || return 1
                done
                return 1
        }
        for i in $(seq 50); do
                # 10 distinct names, each asked for 5 times at once
                create_retry "conc-$((i % 10))" team-c $((4 * MiB)) >$D/conc.$i 2>&1 &
                pids+=($!)
        done
        local failed=0
        for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed=$((failed + 1)); done
        [ "$failed" = 0 ] || t_fail "$failed creates failed: $(grep -h -v '^[{ }]' $D/conc.* | sort | uniq -c | head)"
        [ "$(($(count_lvs) - before))" = 10 ] || t_fail "expected 10 new LVs, got $(($(count_lvs) - before))"
        [ "$(cat $D/conc.* | grep -o '"volumeId": "[^"]*"' | sort -u | wc -l)" = 10 ] || t_fail "ids differ for duplicates"
}

test_tenant_quota_refuses_and_sighup_reloads() {
        echo '{"tenants":{"team-q":{"maxVolumes":2,"maxBytes":"64Mi"}}}' >$D/quota.json
        start_plugin --config $D/quota.json
        create q1 team-q $((16 * MiB)) >/dev/null || t_fail "q1"
        create q2 team-q $((16 * MiB)) >/dev/null || t_fail "q2"
        local err
        err=$(expect_status RESOURCE_EXHAUSTED "third volume" create q3 team-q $((16 * MiB))) || exit 1
        [[ "$err" == *"team-q volume quota"* ]] || t_fail "message does not name the quota: $err"
        create other team-a $((16 * MiB)) >/dev/null || t_fail "another tenant is not limited"
        echo '{"tenants":{"team-q":{"maxVolumes":10,"maxBytes":"64Mi"}}}' >$D/quota.json
        kill -HUP "$(cat $D/pid)"
        sleep 1
        err=$(expect_status RESOURCE_EXHAUSTED "over byte quota" create q3 team-q $((48 * MiB))) || exit 1
        [[ "$err" == *"team-q capacity quota"* ]] || t_fail "message: $err"
        create q3 team-q $((16 * MiB)) >/dev/null || t_fail "q3 after reload"
        # A config that does not parse keeps the old one.
        echo '{"tenants":' >$D/quota.json
        kill -HUP "$(cat $D/pid)"
        sleep 1
        kill -0 "$(cat $D/pid)" || t_fail "plugin died on a bad config"
        grep -q 'config not loaded' $D/csi.log || t_fail "no log of the bad config"
}

test_overprovision_ratio_refuses_new_volumes() {
        # A pool of its own: 512M file, pool ~ 90% of it; at 100%
        # overprovision new volumes past the pool's size are refused.
        local VG=tvratio
        echo '{"pool":{"maxOverprovisionPercent":100}}' >$D/ratio.json
        start_plugin --config $D/ratio.json
        local err
        err=$(expect_status RESOURCE_EXHAUSTED "past the ratio" create big team-r $GiB) || exit 1
        [[ "$err" == *overprovision* || "$err" == *"over"* ]] || t_fail "message does not name the ratio: $err"
        local cap
        cap=$(ctl csi Controller.GetCapacity | jget availableCapacity)
        [ "$cap" -gt 0 ] || t_fail "GetCapacity: $cap"
        create fits team-r $((cap)) >/dev/null || t_fail "a volume of GetCapacity's size should fit"
        [ "$(ctl csi Controller.GetCapacity | jget availableCapacity)" = "" ] || t_fail "capacity left after filling"
        stop_plugin
        pool_remove $VG
}

test_snapshot_and_clone_keep_data_and_stay_in_tenant() {
        start_plugin
        local out vol snap clone lv
        out=$(create src team-s $((16 * MiB))) || t_fail "create"
        vol=$(jget volume.volumeId <<<"$out")
        lv=${vol#*:}
        head -c $MiB /dev/urandom >$D/pattern
        dd if=$D/pattern of=/dev/$VG/$lv bs=1M count=1 oflag=direct status=none || t_fail "write pattern"
        out=$(ctl csi Controller.CreateSnapshot --json "{\"name\":\"snap-1\",\"sourceVolumeId\":\"$vol\"}") || t_fail "snapshot"
        snap=$(jget snapshot.snapshotId <<<"$out")
        [ "$(jget snapshot.readyToUse <<<"$out")" = True ] || t_fail "not ready: $out"
        [ "$(jget snapshot.sourceVolumeId <<<"$out")" = "$vol" ] || t_fail "source: $out"
        # overwrite the origin: the snapshot must keep the old data
        dd if=/dev/zero of=/dev/$VG/$lv bs=1M count=1 oflag=direct status=none
        out=$(create clone1 team-s $((32 * MiB)) ",\"volumeContentSource\":{\"snapshot\":{\"snapshotId\":\"$snap\"}}") || t_fail "clone"
        clone=$(jget volume.volumeId <<<"$out")
        [ "$(jget volume.capacityBytes <<<"$out")" = $((32 * MiB)) ] || t_fail "clone size: $out"
        grep -q "$snap" <<<"$out" || t_fail "content source not echoed: $out"
        cmp <(head -c $MiB /dev/$VG/${clone#*:}) $D/pattern || t_fail "clone does not hold the snapshot's data"
        # another tenant cannot use the snapshot, nor the volume, and cannot tell they exist
        local e1 e2
        e1=$(expect_status NOT_FOUND "other tenant's snapshot" create steal team-x $((16 * MiB)) ",\"volumeContentSource\":{\"snapshot\":{\"snapshotId\":\"$snap\"}}") || exit 1
        e2=$(expect_status NOT_FOUND "missing snapshot" create steal2 team-x $((16 * MiB)) ",\"volumeContentSource\":{\"snapshot\":{\"snapshotId\":\"$VG:tvs-nope-0000000000000000\"}}") || exit 1
        [ "${e1//$snap/ID}" = "${e2//$VG:tvs-nope-0000000000000000/ID}" ] || t_fail "messages differ: $e1 / $e2"
        expect_status NOT_FOUND "other tenant's volume" create steal3 team-x $((16 * MiB)) ",\"volumeContentSource\":{\"volume\":{\"volumeId\":\"$vol\"}}" >/dev/null
        out=$(ctl csi Controller.ListSnapshots --json "{\"sourceVolumeId\":\"$vol\"}") || t_fail "list snapshots"
        grep -q "$snap" <<<"$out" || t_fail "ListSnapshots by source: $out"
        ctl csi Controller.DeleteSnapshot --json "{\"snapshotId\":\"$snap\"}" >/dev/null || t_fail "delete snapshot"
        ctl csi Controller.DeleteSnapshot --json "{\"snapshotId\":\"$snap\"}" >/dev/null || t_fail "delete snapshot again"
        cmp <(head -c $MiB /dev/$VG/${clone#*:}) $D/pattern || t_fail "clone lost data when the snapshot went"
}

test_expand_grows_and_asks_for_node_expansion() {
        start_plugin
        local out vol
        out=$(create grow team-e $((16 * MiB))) || t_fail "create"
        vol=$(jget volume.volumeId <<<"$out")
        out=$(ctl csi Controller.ControllerExpandVolume --json "{\"volumeId\":\"$vol\",\"capacityRange\":{\"requiredBytes\":\"$((40 * MiB))\"}}") || t_fail "expand"
        [ "$(jget capacityBytes <<<"$out")" = $((40 * MiB)) ] || t_fail "size: $out"
        [ "$(jget nodeExpansionRequired <<<"$out")" = True ] || t_fail "node expansion: $out"
        [ "$(lvm_ lvs --noheadings --units b --nosuffix -o lv_size $VG/${vol#*:} | tr -d ' ')" = $((40 * MiB)) ] || t_fail "lvs size"
        expect_status NOT_FOUND "expand missing" ctl csi Controller.ControllerExpandVolume --json "{\"volumeId\":\"$VG:tv-nope-0000000000000000\",\"capacityRange\":{\"requiredBytes\":\"1\"}}" >/dev/null
}

test_list_volumes_paginates_and_survives_restart() {
        start_plugin
        local i tok="" all="" out pages=0
        for i in 1 2 3 4 5 6 7; do create "page-$i" team-p $((4 * MiB)) >/dev/null || t_fail "create $i"; done
        local total
        total=$(ctl csi Controller.ListVolumes | grep -c '"volumeId"')
        while :; do
                out=$(ctl csi Controller.ListVolumes --json "{\"maxEntries\":3,\"startingToken\":\"$tok\"}") || t_fail "page"
                all+=$(grep -o '"volumeId": "[^"]*"' <<<"$out")$'\n'
                pages=$((pages + 1))
                tok=$(jget nextToken <<<"$out")
                [ -z "$tok" ] && break
                [ $pages -gt 100 ] && t_fail "pagination does not end"
        done
        [ "$(grep -c volumeId <<<"$all")" = "$total" ] || t_fail "pages hold $(grep -c volumeId <<<"$all") of $total"
        [ "$(sort -u <<<"$all" | grep -c volumeId)" = "$total" ] || t_fail "duplicates across pages"
        expect_status ABORTED "bad token" ctl csi Controller.ListVolumes --json '{"startingToken":"bogus"}' >/dev/null
        # restart: state lives in LVM only
        stop_plugin
        start_plugin
        [ "$(ctl csi Controller.ListVolumes | grep -c '"volumeId"')" = "$total" ] || t_fail "restart lost volumes"
}

test_delete_is_idempotent_and_refuses_open_volumes() {
        start_plugin
        local out vol
        out=$(create del team-d $((8 * MiB))) || t_fail "create"
        vol=$(jget volume.volumeId <<<"$out")
        exec 7</dev/$VG/${vol#*:}
        local err
        err=$(expect_status FAILED_PRECONDITION "open volume" ctl csi Controller.DeleteVolume --json "{\"volumeId\":\"$vol\"}") || exit 1
        [[ "$err" == *"in use"* ]] || t_fail "message: $err"
        exec 7<&-
        ctl csi Controller.DeleteVolume --json "{\"volumeId\":\"$vol\"}" >/dev/null || t_fail "delete"
        lvm_ lvs "$VG/${vol#*:}" >/dev/null 2>&1 && t_fail "LV still there"
        ctl csi Controller.DeleteVolume --json "{\"volumeId\":\"$vol\"}" >/dev/null || t_fail "second delete"
        ctl csi Controller.DeleteVolume --json '{"volumeId":"garbage:../../x"}' >/dev/null || t_fail "malformed id"
        expect_status INVALID_ARGUMENT "empty id" ctl csi Controller.DeleteVolume --json '{}' >/dev/null
        # a snapshot id is not a volume id
        ctl csi Controller.ValidateVolumeCapabilities --json "{\"volumeId\":\"$vol\",\"volumeCapabilities\":[{\"block\":{},\"accessMode\":{\"mode\":\"SINGLE_NODE_WRITER\"}}]}" >/dev/null 2>&1 &&
                t_fail "validate on a deleted volume"
        return 0
}

test_validate_capabilities_and_controller_caps() {
        start_plugin
        local out vol
        out=$(create val team-v $((8 * MiB))) || t_fail "create"
        vol=$(jget volume.volumeId <<<"$out")
        out=$(ctl csi Controller.ValidateVolumeCapabilities --json "{\"volumeId\":\"$vol\",\"volumeCapabilities\":[{\"mount\":{\"fsType\":\"ext4\"},\"accessMode\":{\"mode\":\"SINGLE_NODE_WRITER\"}}]}") || t_fail "validate"
        grep -q confirmed <<<"$out" || t_fail "not confirmed: $out"
        out=$(ctl csi Controller.ValidateVolumeCapabilities --json "{\"volumeId\":\"$vol\",\"volumeCapabilities\":[{\"mount\":{},\"accessMode\":{\"mode\":\"MULTI_NODE_MULTI_WRITER\"}}]}") || t_fail "validate multi"
        grep -q confirmed <<<"$out" && t_fail "multi-node confirmed: $out"
        out=$(ctl csi Controller.ControllerGetCapabilities) || t_fail "caps"
        for c in CREATE_DELETE_VOLUME LIST_VOLUMES GET_CAPACITY CREATE_DELETE_SNAPSHOT LIST_SNAPSHOTS CLONE_VOLUME EXPAND_VOLUME; do
                grep -q "\"$c\"" <<<"$out" || t_fail "missing $c: $out"
        done
        out=$(ctl csi Controller.GetCapacity --json '{"accessibleTopology":{"segments":{"topology.thinvault.io/node":"node-b"}}}') || t_fail "capacity other node"
        [ "$(jget availableCapacity <<<"$out")" = "" ] || t_fail "other node has capacity: $out"
}

test_missing_pool_is_not_ready_and_unavailable() {
        "$CSI" --endpoint "unix://$SOCK" --node-id node-a --vg tvnone --thin-pool pool >/dev/null 2>>$D/csi.log &
        echo $! >$D/pid
        t_wait_socket "$SOCK" 30 || t_fail "no socket"
        local out
        out=$(ctl csi Identity.Probe) || t_fail "Probe"
        grep -q '"ready": false' <<<"$out" || t_fail "ready without a VG: $out"
        local err
        err=$(expect_status UNAVAILABLE "create without pool" create np team-a $MiB) || exit 1
        [[ "$err" == *tvnone/pool* ]] || t_fail "message does not name the pool: $err"
}

# TV_ONLY=REGEX runs only the matching tests (while working on them).
for t in $(declare -F | awk '{print $3}' | grep '^test_' | grep -E "${TV_ONLY:-.}"); do
        t_run "$t"
done
stop_plugin
pool_remove $VG
t_summary
