#!/usr/bin/env bash
# Hostile input against the real plugin in the guest (issue 8, item 3):
# names and ids crafted to inject into lvm2's argv or LV tags, to collide,
# or to name what is not a thinvault volume (the pool, an admin's LV,
# another VG); NUL bytes; oversized secrets and parameters; one tenant
# using another's key, volume or staging path; symlinked and outside node
# paths. Each call gets its exact gRPC status and changes nothing: the LV
# list and tags, the dm table, the mounts, the kubelet dir and io.max are
# the same before and after. The secrets sent are in no log or error.
# Where the other cases live (not repeated here):
#   test_node.sh: path traversal, relative, outside and symlinked staging
#     and target paths on stage/publish/unpublish; another tenant's secret,
#     derived key or master key (PERMISSION_DENIED, no mapping); foreign
#     ext4/LUKS on a volume; no key material in the log.
#   test_controller.sh: bad CreateVolume input; hostile names mapped to
#     distinct LVs; another tenant's snapshot or volume as a clone source
#     (NOT_FOUND, same message as a missing one); malformed delete ids.
#   tests/unit: every lexical path rule (test_node.c), the name mapping
#     (test_lvm_name.c), tag escaping (test_lvm_tag.c), NUL bytes
#     (test_dispatch.c); tests/fuzz: random bytes through tv_dispatch.
set -uo pipefail
BUILD=${1:-$TV_BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/pool.sh"
D=/tmp/tv-hostile
VG=tvhost
K=$D/kubelet
OUT=$D/outside              # never to be touched through a node path
CG=/sys/fs/cgroup/kubepods  # the plugin's default pods cgroup
ERRORS=$D/errors            # every error message the suite saw
PY=/usr/bin/python3
LOOP_SIZE=256M
. "$HERE/plugin.sh"
mkdir -p "$OUT/dir"
: >>$ERRORS
# The pool is made here, not by the plugin's --loop-file (which would take
# 100% of the VG): the admin's linear LV below needs free extents.
pool_remove $VG
pool_create $VG pool 256 || { echo "FAIL pool_create"; exit 1; }
[ -d $CG ] || mkdir $CG
[ -f $D/key-a ] || head -c 32 /dev/urandom | base64 -w0 >$D/key-a
[ -f $D/key-b ] || head -c 32 /dev/urandom | base64 -w0 >$D/key-b
KEY_A=$(cat $D/key-a)
KEY_B=$(cat $D/key-b)

# expect_status STATUS what command...: as plugin.sh's, and every message
# is kept for the last test's search for secrets.
expect_status() {
        local want=$1 what=$2 err
        shift 2
        err=$("$@" 2>&1 >/dev/null) && t_fail "$what: succeeded, expected $want"
        printf '%s\n' "$err" >>$ERRORS
        [[ "$err" == "$want:"* ]] || t_fail "$what: expected $want, got: $(head -c 300 <<<"$err")"
        echo "$err"
}
# ensure_plugin: started once and kept (each start costs lvm2 calls)
ensure_plugin() {
        [ -f $D/pid ] && kill -0 "$(cat $D/pid)" 2>/dev/null && return 0
        start_plugin
}
# call METHOD FILE: a request built as a file (JSON, or --raw protobuf)
call() { ctl csi "$1" --json "@$2"; }
raw() { ctl csi "$1" --raw "$2"; }

# state: everything a hostile call must leave as it was
state() {
        echo "== lvs"
        lvm_ lvs --noheadings -o lv_name,lv_size,segtype,pool_lv,origin,lv_tags "$VG" 2>&1 | sort
        echo "== dm"
        dmsetup table 2>&1 | sort
        echo "== mounts"
        awk '{print $5, $4}' /proc/self/mountinfo | sort
        echo "== files"
        find "$K" "$OUT" -printf '%p %y %m %s\n' 2>&1 | sort
        echo "== io.max"
        cat $CG/io.max 2>/dev/null
}
snap_state() { state >"$D/state.$1"; }
# unchanged NAME: the state now is the one saved as NAME
unchanged() {
        state >"$D/state.now"
        diff -u "$D/state.$1" "$D/state.now" >"$D/state.diff" || t_fail "state changed: $(head -40 "$D/state.diff")"
}

# create_from NAME TENANT SOURCE: CreateVolume with a volumeContentSource
create_from() {
        ctl csi Controller.CreateVolume --json "{\"name\":\"$1\",\"capacityRange\":{\"requiredBytes\":\"$((8 * MiB))\"},
                \"volumeCapabilities\":[$MOUNT_CAP],\"parameters\":{\"csi.storage.k8s.io/pvc/namespace\":\"$2\"},
                \"volumeContentSource\":$3}"
}
# shared NAME TENANT [BYTES]: a volume several tests use, created once
shared() {
        [ -s $D/vol.$1 ] || create "$1" "$2" "" "${3:-$((8 * MiB))}" >$D/vol.$1 || { rm -f $D/vol.$1; return 1; }
        cat $D/vol.$1
}
# jreq FILE PYTHON-EXPR: a JSON request written by python (any bytes in
# strings, exact escaping), 0600: it may hold a secret
jreq() { (umask 077 && $PY -c "import json,sys; json.dump($2, open(sys.argv[1], 'w'))" "$1"); }
cap_json='{"mount":{"fsType":"ext4"},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}'

t_after() {
        remove_leftovers
        umount "$OUT/mnt" 2>/dev/null
        return 0
}

test_injecting_names_and_tags_map_to_safe_lvs_and_change_nothing() {
        ensure_plugin
        # The pool's first thin LV adds its -tpool layer for good: one
        # exists before the state is taken.
        shared anchor team-a >/dev/null || t_fail "create"
        snap_state before
        # Every byte lvm2's argv or tag syntax could read: a leading '-', a
        # whole --config, '@' (a tag selector), ',', '=', spaces, a newline,
        # '|', quotes, unicode, '../'.
        $PY - "$D" <<'EOF' || t_fail "write requests"
import json, os, sys
d = sys.argv[1]
names = ['--config=devices{filter=["r|.*|"]}', '-', '@tv.tenant=team-b,x y\nz', 'ünïcödé/../../etc/passwd']
cap = {'mount': {'fsType': 'ext4'}, 'accessMode': {'mode': 'SINGLE_NODE_WRITER'}}
for i, n in enumerate(names):
    req = {'name': n, 'capacityRange': {'requiredBytes': str(4 << 20)}, 'volumeCapabilities': [cap],
           'parameters': {'csi.storage.k8s.io/pvc/namespace': 'team-a',
                          'csi.storage.k8s.io/pvc/name': '--addtag=evil @x,y=z\n' + n[:40],
                          'csi.storage.k8s.io/pv/name': '-' * 10 + ' ../..'}}
    json.dump(req, open(os.path.join(d, 'inj.%d.json' % i), 'w'))
    open(os.path.join(d, 'inj.%d.name' % i), 'w', encoding='utf-8').write(n)
big = dict(req, name='n' * 10240)
json.dump(big, open(os.path.join(d, 'inj.big.json'), 'w'))
for t in ['--config=x', '@team', 'team,a', 'a=b', 'team a', '../team', 'téam']:
    json.dump(dict(req, name='tenant-' + t, parameters={'csi.storage.k8s.io/pvc/namespace': t}),
              open(os.path.join(d, 'inj.tenant.%d.json' % len(os.listdir(d))), 'w'))
EOF
        local f out id ids=() lv tag
        for f in $D/inj.[0-9].json; do
                out=$(call Controller.CreateVolume "$f") || t_fail "create $(cat "${f%.json}.name")"
                id=$(jval volumeId <<<"$out")
                lv=${id#"$VG:"}
                [[ "$lv" =~ ^tv-[a-z0-9-]*[0-9a-f]{16}$ ]] || t_fail "LV name $lv for $(cat "${f%.json}.name")"
                [[ "$lv" != tv--* && "$lv" != *--* ]] || t_fail "LV name $lv has '--'"
                ids+=("$id")
        done
        [ "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" = 4 ] || t_fail "ids collide: ${ids[*]}"
        # Every tag is one of ours, in lvm2's alphabet, and decodes back to
        # exactly the name that was sent.
        local tags
        tags=$(lvm_ lvs --noheadings -o lv_tags "$VG" | tr ',' '\n' | tr -d ' ' | grep -v '^$')
        if grep -v '^tv\.' <<<"$tags"; then t_fail "a tag that is not ours: $(grep -v '^tv\.' <<<"$tags")"; fi
        grep -q -x 'evil\|@.*' <<<"$tags" && t_fail "an injected tag: $tags"
        for f in $D/inj.[0-9].json; do
                tag=$($PY -c 'import sys
n = open(sys.argv[1], encoding="utf-8").read().encode()
print("tv.name=" + "".join(chr(b) if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "._+-/:") else "#%02X" % b for b in n))' "${f%.json}.name")
                grep -q -x -F -- "$tag" <<<"$tags" || t_fail "name tag $tag not found in: $tags"
        done
        expect_status INVALID_ARGUMENT "10 KiB name" call Controller.CreateVolume $D/inj.big.json >/dev/null
        for f in $D/inj.tenant.*.json; do
                expect_status INVALID_ARGUMENT "hostile tenant in $(cat "$f")" call Controller.CreateVolume "$f" >/dev/null
        done
        # Hostile snapshot names the same way, then all of it goes.
        jreq $D/snap.json "{'name': '--config=x @a,b=c\n../', 'sourceVolumeId': '${ids[0]}'}"
        out=$(call Controller.CreateSnapshot $D/snap.json) || t_fail "snapshot with a hostile name"
        id=$(jval snapshotId <<<"$out")
        [[ "${id#"$VG:"}" =~ ^tvs-[a-z0-9-]*[0-9a-f]{16}$ ]] || t_fail "snapshot LV name $id"
        ctl csi Controller.DeleteSnapshot --json "{\"snapshotId\":\"$id\"}" >/dev/null || t_fail "delete snapshot"
        for id in "${ids[@]}"; do delete "$id" >/dev/null || t_fail "delete $id"; done
        unchanged before
}

# pb: protobuf bytes, by hand (the CLI's JSON cannot carry a NUL byte)
pb_setup() {
        cat >$D/pb.py <<'EOF'
import sys
def varint(n):
    out = b''
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])
def field(num, payload):  # a length-delimited field
    return varint(num << 3 | 2) + varint(len(payload)) + payload
def entry(k, v):
    return field(1, k) + field(2, v)
cap = field(2, field(1, b'ext4')) + field(3, varint(1 << 3 | 0) + varint(1))  # mount ext4, SINGLE_NODE_WRITER
def create(name, ns=b'team-a'):
    return (field(1, name) + field(2, varint(1 << 3 | 0) + varint(8 << 20)) + field(3, cap) +
            field(4, entry(b'csi.storage.k8s.io/pvc/namespace', ns)))
EOF
}
pb() { umask 077 && $PY -c "exec(open('$D/pb.py').read()); import sys; sys.stdout.buffer.write($2)" >"$1"; }

test_nul_byte_in_name_id_secret_or_path_is_invalid_argument() {
        ensure_plugin
        pb_setup
        local id
        id=$(shared nulbase team-a) || t_fail "create"
        snap_state before
        # Before the fix "nulbase\0x" was read as "nulbase": its volume.
        pb $D/nul.name "create(b'nulbase\\0x')"
        expect_status INVALID_ARGUMENT "NUL in a name" raw Controller.CreateVolume $D/nul.name >/dev/null
        pb $D/nul.ns "create(b'nul-ns', b'team-a\\0evil')"
        expect_status INVALID_ARGUMENT "NUL in a parameter" raw Controller.CreateVolume $D/nul.ns >/dev/null
        pb $D/nul.id "field(1, b'$id\\0x')"
        expect_status INVALID_ARGUMENT "NUL in a delete id" raw Controller.DeleteVolume $D/nul.id >/dev/null
        pb $D/nul.stage "field(1, b'$id') + field(3, b'$(staging_of nul)\\0/../../x') + field(4, cap) + field(5, entry(b'key', b'$KEY_A\\0'))"
        expect_status INVALID_ARGUMENT "NUL in a path and secret" raw Node.NodeStageVolume $D/nul.stage >/dev/null
        pb $D/nul.pub "field(1, b'$id') + field(3, b'$(staging_of nul)') + field(4, b'$K/pods/p\\0/../../../x') + field(5, cap)"
        expect_status INVALID_ARGUMENT "NUL in a target path" raw Node.NodePublishVolume $D/nul.pub >/dev/null
        unchanged before
}

test_same_name_from_another_tenant_is_already_exists() {
        ensure_plugin
        local id id2
        id=$(shared samename team-a) || t_fail "create"
        snap_state before
        id2=$(create samename team-a "" $((8 * MiB))) || t_fail "the same tenant's retry"
        [ "$id" = "$id2" ] || t_fail "retry gave $id2, not $id"
        # Before the fix team-b was handed team-a's volume id here.
        expect_status ALREADY_EXISTS "team-b, same name and size" create samename team-b "" $((8 * MiB)) >/dev/null
        expect_status ALREADY_EXISTS "derived key source" create samename team-a ',"keySource":"derived"' $((8 * MiB)) >/dev/null
        local err
        err=$(expect_status ALREADY_EXISTS "team-b, block" ctl csi Controller.CreateVolume --json "{\"name\":\"samename\",
                \"capacityRange\":{\"requiredBytes\":\"$((8 * MiB))\"},\"volumeCapabilities\":[{\"block\":{},
                \"accessMode\":{\"mode\":\"SINGLE_NODE_WRITER\"}}],\"parameters\":{\"tenant\":\"team-b\"}}") || exit 1
        [[ "$err" == *team-a* ]] && t_fail "the message names the owner: $err"
        unchanged before
}

# Everything each RPC must refuse for an id that is not one of our volumes.
# id_refused ID SNAPSHOT_ID [shaped]: prints nothing, fails the test. A
# "shaped" id (tv-<name>, an LV of the pool) passes the node's lexical
# check; NodePublishVolume and NodeGetVolumeStats look at the mapping only
# (no lvs call per kubelet poll): "not staged", and an abnormal condition.
id_refused() {
        local id=$1 src=$2 shaped=${3:-} stg tgt out
        stg=$(staging_of idref)
        tgt="$K/pods/pod-idref/volumes/kubernetes.io~csi/pv/mount"
        ctl csi Controller.DeleteVolume --json "{\"volumeId\":\"$id\"}" >/dev/null || t_fail "DeleteVolume $id is not idempotent OK"
        expect_status NOT_FOUND "expand $id" ctl csi Controller.ControllerExpandVolume --json \
                "{\"volumeId\":\"$id\",\"capacityRange\":{\"requiredBytes\":\"$((64 * MiB))\"}}" >/dev/null
        expect_status NOT_FOUND "validate $id" ctl csi Controller.ValidateVolumeCapabilities --json \
                "{\"volumeId\":\"$id\",\"volumeCapabilities\":[$cap_json]}" >/dev/null
        expect_status NOT_FOUND "modify $id" ctl csi Controller.ControllerModifyVolume --json \
                "{\"volumeId\":\"$id\",\"mutableParameters\":{\"iops\":\"100\"}}" >/dev/null
        expect_status NOT_FOUND "snapshot of $id" ctl csi Controller.CreateSnapshot --json \
                "{\"name\":\"snap-idref\",\"sourceVolumeId\":\"$id\"}" >/dev/null
        expect_status NOT_FOUND "clone of $id" create_from clone-idref team-a "{\"volume\":{\"volumeId\":\"$id\"}}" >/dev/null
        [ -n "$src" ] && expect_status NOT_FOUND "clone of snapshot $src" create_from clone-idref team-a \
                "{\"snapshot\":{\"snapshotId\":\"$src\"}}" >/dev/null
        expect_status NOT_FOUND "stage $id" stage "$id" idref $D/key-a >/dev/null
        local want=NOT_FOUND
        [ -n "$shaped" ] && want=FAILED_PRECONDITION
        expect_status "$want" "publish $id" ctl csi Node.NodePublishVolume --json \
                "{\"volumeId\":\"$id\",\"stagingTargetPath\":\"$stg\",\"targetPath\":\"$tgt\",\"volumeCapability\":$cap_json}" >/dev/null
        if [ -n "$shaped" ]; then
                out=$(ctl csi Node.NodeGetVolumeStats --json "{\"volumeId\":\"$id\",\"volumePath\":\"$stg\"}") || t_fail "stats $id"
                grep -q '"abnormal": true' <<<"$out" || t_fail "stats $id: condition not abnormal: $out"
        else
                expect_status NOT_FOUND "stats $id" ctl csi Node.NodeGetVolumeStats --json "{\"volumeId\":\"$id\",\"volumePath\":\"$stg\"}" >/dev/null
        fi
        expect_status NOT_FOUND "node expand $id" ctl csi Node.NodeExpandVolume --json "{\"volumeId\":\"$id\",\"volumePath\":\"$stg\"}" >/dev/null
        return 0
}

test_pool_handmade_lv_and_foreign_ids_are_not_found_and_never_deleted() {
        ensure_plugin
        # An admin's LVs in the same VG: a thin LV whose name looks like
        # ours (and carries a tenant tag, but no kind), a snapshot-looking
        # one, and a plain linear LV. Each holds a marker.
        lvm_ lvcreate -q -y -T "$VG/pool" -V 8m -n tv-handmade-0123456789abcdef --addtag tv.tenant=team-a >/dev/null ||
                t_fail "lvcreate thin"
        lvm_ lvcreate -q -y -T "$VG/pool" -V 8m -n tvs-handmade-0123456789abcdef --addtag tv.tenant=team-a >/dev/null ||
                t_fail "lvcreate snapshot-like"
        lvm_ lvcreate -q -y -L 4m -n admin-data "$VG" >/dev/null || t_fail "lvcreate linear"
        local lv
        head -c 4096 /dev/urandom >$D/marker
        for lv in tv-handmade-0123456789abcdef tvs-handmade-0123456789abcdef admin-data; do
                dd if=$D/marker of=/dev/$VG/$lv bs=4096 count=1 oflag=direct status=none || t_fail "mark $lv"
        done
        mkdir -p "$(staging_of idref)" "$K/pods/pod-idref/volumes/kubernetes.io~csi/pv"
        snap_state before
        local id
        id_refused "$VG:tv-handmade-0123456789abcdef" "$VG:tvs-handmade-0123456789abcdef" shaped
        for id in "$VG:admin-data" "$VG:pool" "$VG:pool_tdata" \
                "othervg:tv-x-0123456789abcdef" "$VG:tvs-handmade-0123456789abcdef" "$VG:tv-../../x" "$VG:-ttv" \
                "$VG:tv-$(head -c 300 /dev/zero | tr '\0' a)"; do
                id_refused "$id" "$VG:tvs-handmade-0123456789abcdef"
        done
        unchanged before
        for lv in tv-handmade-0123456789abcdef tvs-handmade-0123456789abcdef admin-data; do
                cmp -n 4096 /dev/$VG/$lv $D/marker || t_fail "$lv's data changed"
        done
        # Listed nowhere: not a volume, not a snapshot of ours.
        local list
        list=$(ctl csi Controller.ListVolumes) || t_fail "ListVolumes"
        grep -q handmade <<<"$list" && t_fail "ListVolumes shows the admin's LV"
        list=$(ctl csi Controller.ListSnapshots) || t_fail "ListSnapshots"
        grep -q handmade <<<"$list" && t_fail "ListSnapshots shows the admin's LV"
        lvm_ lvremove -q -y "$VG/tv-handmade-0123456789abcdef" "$VG/tvs-handmade-0123456789abcdef" "$VG/admin-data" >/dev/null
        return 0
}

test_oversized_secret_and_parameters_are_invalid_argument() {
        ensure_plugin
        local id stg
        id=$(shared big team-a) || t_fail "create"
        stg=$(staging_of big)
        mkdir -p "$stg"
        # 1 MiB of base64 as the key, a secret with 5000 entries, a value
        # of 64 KiB for a known parameter, 1000 unknown keys, a huge limit.
        $PY - "$D" "$id" "$stg" <<'EOF' || t_fail "write requests"
import base64, json, os, sys
d, vid, stg = sys.argv[1:4]
cap = {'mount': {'fsType': 'ext4'}, 'accessMode': {'mode': 'SINGLE_NODE_WRITER'}}
big = base64.b64encode(os.urandom(768 * 1024)).decode()
open(os.path.join(d, 'big.secret'), 'w').write(big)
os.umask(0o077)
def w(name, req):
    json.dump(req, open(os.path.join(d, name), 'w'))
w('big.key.json', {'volumeId': vid, 'stagingTargetPath': stg, 'volumeCapability': cap, 'secrets': {'key': big}})
w('big.prev.json', {'volumeId': vid, 'stagingTargetPath': stg, 'volumeCapability': cap,
                    'secrets': {'key': open(os.path.join(d, 'key-a')).read(), 'previousKey': big}})
w('big.many.json', {'volumeId': vid, 'stagingTargetPath': stg, 'volumeCapability': cap,
                    'secrets': dict(('k%d' % i, big[i * 100:(i + 1) * 100]) for i in range(5000))})
base = {'name': 'big-params', 'capacityRange': {'requiredBytes': str(8 << 20)}, 'volumeCapabilities': [cap],
        'parameters': {'csi.storage.k8s.io/pvc/namespace': 'team-a'}}
def p(name, extra, field='parameters'):
    r = json.loads(json.dumps(base))
    r.setdefault(field, {}).update(extra)
    w(name, r)
p('big.pvc.json', {'csi.storage.k8s.io/pvc/name': 'x' * 65536})
p('big.unknown.json', dict(('k%d' % i, 'v' * 100) for i in range(1000)))
p('big.iops.json', {'iops': '9' * 65536})
p('big.iops2.json', {'iops': '99999999999999999999999'})
p('big.mutable.json', {'iops': '1' * 65536}, 'mutableParameters')
w('big.modify.json', {'volumeId': vid, 'mutableParameters': dict(('k%d' % i, 'v' * 1000) for i in range(500))})
w('big.snap.json', {'name': 'big-snap', 'sourceVolumeId': vid,
                    'parameters': {'csi.storage.k8s.io/volumesnapshot/name': 's' * 65536}})
EOF
        snap_state before
        local f err
        for f in key prev many; do
                err=$(expect_status INVALID_ARGUMENT "stage with secret $f" call Node.NodeStageVolume $D/big.$f.json) || exit 1
                [ ${#err} -lt 2000 ] || t_fail "a ${#err}-byte message for secret $f"
        done
        for f in pvc unknown iops iops2 mutable; do
                err=$(expect_status INVALID_ARGUMENT "create with $f" call Controller.CreateVolume $D/big.$f.json) || exit 1
                [ ${#err} -lt 2000 ] || t_fail "a ${#err}-byte message for $f"
        done
        expect_status INVALID_ARGUMENT "modify with 500 unknown keys" call Controller.ControllerModifyVolume $D/big.modify.json >/dev/null
        expect_status INVALID_ARGUMENT "snapshot with a 64 KiB parameter" call Controller.CreateSnapshot $D/big.snap.json >/dev/null
        kill -0 "$(cat $D/pid)" || t_fail "the plugin died"
        unchanged before
}

# header_sum ID: the LUKS2 header (1 MiB, crypt/luks.c: metadata and
# keyslots), read past the page cache; the file system starts after it
header_sum() { dd if="/dev/$VG/${1#*:}" bs=1M count=1 iflag=direct status=none | sha256sum; }

test_other_tenants_key_staging_path_and_sources_change_nothing() {
        ensure_plugin
        local ida idb stga stgb tgt hdr
        ida=$(shared tenant-a team-a $((32 * MiB))) || t_fail "create a"
        idb=$(shared tenant-b team-b $((32 * MiB))) || t_fail "create b"
        stga=$(staging_of tenant-a)
        stgb=$(staging_of tenant-b)
        tgt="$K/pods/pod-b/volumes/kubernetes.io~csi/pv-b/mount"
        mkdir -p "$stga" "$stgb" "$(dirname "$tgt")"
        # team-a's volume is formatted under team-a's key, then unstaged.
        stage "$ida" tenant-a $D/key-a >/dev/null || t_fail "stage a"
        unstage "$ida" tenant-a >/dev/null || t_fail "unstage a"
        hdr=$(header_sum "$ida")
        snap_state before
        # team-b's key on team-a's volume: refused, header untouched.
        local err
        err=$(expect_status PERMISSION_DENIED "team-b's key on team-a's volume" stage "$ida" tenant-a $D/key-b) || exit 1
        [ "$(header_sum "$ida")" = "$hdr" ] || t_fail "the LUKS header changed after team-b's key"
        # team-a's volume at team-b's staging path is not staged there.
        expect_status FAILED_PRECONDITION "publish a through b's staging path" ctl csi Node.NodePublishVolume --json \
                "{\"volumeId\":\"$ida\",\"stagingTargetPath\":\"$stgb\",\"targetPath\":\"$tgt\",\"volumeCapability\":$cap_json}" >/dev/null
        # Clones and expansions name tenants only through the source's tags.
        expect_status NOT_FOUND "team-b clones team-a's volume" create_from steal team-b \
                "{\"volume\":{\"volumeId\":\"$ida\"}}" >/dev/null
        unchanged before
        # With team-a's volume staged, team-b's publish of it through its
        # own path, and unstaging it with team-b's id, do nothing.
        stage "$ida" tenant-a $D/key-a >/dev/null || t_fail "stage a again"
        [ "$(header_sum "$ida")" = "$hdr" ] || echo "    (the header changed on team-a's own restage)"
        hdr=$(header_sum "$ida")
        snap_state staged
        expect_status FAILED_PRECONDITION "publish b through a's staging path" ctl csi Node.NodePublishVolume --json \
                "{\"volumeId\":\"$idb\",\"stagingTargetPath\":\"$stga\",\"targetPath\":\"$tgt\",\"volumeCapability\":$cap_json}" >/dev/null
        expect_status FAILED_PRECONDITION "unstage a's path with b's id" unstage "$idb" tenant-a >/dev/null
        expect_status FAILED_PRECONDITION "delete a while staged" delete "$ida" >/dev/null
        unchanged staged
        [ "$(header_sum "$ida")" = "$hdr" ] || t_fail "the LUKS header changed after others' publish, unstage and delete"
        unstage "$ida" tenant-a >/dev/null || t_fail "unstage a"
}

test_symlinked_or_outside_unstage_stats_and_expand_paths_are_invalid() {
        ensure_plugin
        local id p
        id=$(shared paths team-a) || t_fail "create"
        # Something mounted outside the kubelet dir, reachable by symlinks
        # from inside it: no node RPC may unmount, stat or grow it.
        mkdir -p "$OUT/mnt" $K/pods/pod-links
        mount -t tmpfs -o size=1m hostile "$OUT/mnt" || t_fail "mount tmpfs"
        ln -sfn "$OUT/mnt" $K/plugins/link-mnt
        ln -sfn "$OUT" $K/pods/pod-links/parent
        snap_state before
        for p in "$K/plugins/link-mnt" "$OUT/mnt" "$K/plugins/../../outside/mnt" "$K/pods/pod-links/parent/mnt"; do
                expect_status INVALID_ARGUMENT "unstage $p" ctl csi Node.NodeUnstageVolume --json \
                        "{\"volumeId\":\"$id\",\"stagingTargetPath\":\"$p\"}" >/dev/null
                expect_status INVALID_ARGUMENT "unpublish $p" unpublish_ "$id" "$p" >/dev/null
                expect_status INVALID_ARGUMENT "stats $p" ctl csi Node.NodeGetVolumeStats --json \
                        "{\"volumeId\":\"$id\",\"volumePath\":\"$p\"}" >/dev/null
                expect_status INVALID_ARGUMENT "node expand $p" ctl csi Node.NodeExpandVolume --json \
                        "{\"volumeId\":\"$id\",\"volumePath\":\"$p\"}" >/dev/null
        done
        expect_status INVALID_ARGUMENT "unstage at the kubelet dir itself" ctl csi Node.NodeUnstageVolume --json \
                "{\"volumeId\":\"$id\",\"stagingTargetPath\":\"$K\"}" >/dev/null
        expect_status INVALID_ARGUMENT "a 5000-byte path" ctl csi Node.NodeUnstageVolume --json \
                "{\"volumeId\":\"$id\",\"stagingTargetPath\":\"$K/$(head -c 5000 /dev/zero | tr '\0' a)\"}" >/dev/null
        mountpoint -q "$OUT/mnt" || t_fail "the outside mount is gone"
        unchanged before
        umount "$OUT/mnt"
        rm -f $K/plugins/link-mnt $K/pods/pod-links/parent
}
unpublish_() { ctl csi Node.NodeUnpublishVolume --json "{\"volumeId\":\"$1\",\"targetPath\":\"$2\"}"; }

# Last: the secrets sent (and big.secret's first bytes) are in no log line
# and no error message.
final_no_secret_in_plugin_log_or_errors() {
        local k big
        [ -s $D/csi.log ] && [ -s $ERRORS ] || t_fail "nothing to search"
        big=$(head -c 64 $D/big.secret 2>/dev/null)
        for k in "$KEY_A" "$KEY_B" "${KEY_A:0:16}" "${KEY_B:0:16}" ${big:+"$big"}; do
                grep -q -F -- "$k" $D/csi.log $ERRORS && t_fail "a secret is in the log or an error"
        done
        return 0
}

# TV_ONLY=REGEX runs only the matching tests (while working on them).
for t in $(declare -F | awk '{print $3}' | grep '^test_' | grep -E "${TV_ONLY:-.}") final_no_secret_in_plugin_log_or_errors; do
        t0=$(date +%s)
        t_run "$t"
        echo "    ($(($(date +%s) - t0)) s)"
done
stop_plugin
remove_leftovers
pool_remove $VG
rm -rf $D
rmdir $CG 2>/dev/null
t_summary
