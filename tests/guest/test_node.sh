#!/usr/bin/env bash
# The Node service against the real kernel in the guest: tenant volumes
# staged as LUKS2 mappings under the tenant's key, mounted, published into
# "pods" by bind mounts, expanded online, held to io.max on a kubepods
# cgroup, crypto-erased on delete; wrong keys, foreign data and hostile
# paths refused with nothing left behind; no key byte in any log or error.
set -uo pipefail
BUILD=${1:-$TV_BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/pool.sh"
CSI=$BUILD/csi/thinvault-csi
CTL=$BUILD/cli/thinvaultctl
D=/tmp/tv-node
VG=tvnode
SOCK=$D/csi.sock
K=$D/kubelet                 # the plugin's --kubelet-dir
CG=/sys/fs/cgroup/kubepods   # stands in for the kubelet's pods cgroup
OUT=$D/outside               # never to be touched through a node path
ERRORS=$D/errors             # every error message the suite saw
MiB=1048576
PY=/usr/bin/python3
mkdir -p $D $K/plugins $K/pods $OUT
: >>$ERRORS
[ -d $CG ] || mkdir $CG

# Tenant keys (base64, as in a Secret) and the node's master key; kept
# in files so the final test can look for them everywhere.
[ -f $D/key-a ] || head -c 32 /dev/urandom | base64 -w0 >$D/key-a
[ -f $D/key-b ] || head -c 32 /dev/urandom | base64 -w0 >$D/key-b
[ -f $D/key-a2 ] || head -c 32 /dev/urandom | base64 -w0 >$D/key-a2
if [ ! -f $D/master ]; then
        head -c 32 /dev/urandom >$D/master
        head -c 32 /dev/urandom >$D/master2
        chmod 600 $D/master $D/master2
fi
KEY_A=$(cat $D/key-a)
KEY_B=$(cat $D/key-b)
KEY_A2=$(cat $D/key-a2) # team-a's next key (rotation)

ctl() { timeout 300 "$CTL" --endpoint "unix://$SOCK" --timeout 290 "$@"; }
# jvals KEY: every value of KEY in the CLI's pretty JSON, in order, one a
# line (no python start per lookup: the guest is slow to start programs).
jvals() { grep -o "\"$1\": [^,}]*" | sed 's/^[^:]*: //; s/^"//; s/"$//'; }
jval() { jvals "$1" | head -1; }
jval2() { jvals "$1" | sed -n 2p; }

# The plugin is started once and kept across tests (each start costs
# several lvm2 calls in a slow guest); start_plugin restarts it only when
# its flags differ from the running one's.
start_plugin() {
        local sig="$VG ${LOOP_SIZE:-512M} ${MASTER:-$D/master} $*"
        if [ -f $D/pid ] && kill -0 "$(cat $D/pid)" 2>/dev/null && [ "$(cat $D/sig 2>/dev/null)" = "$sig" ]; then
                return 0
        fi
        stop_plugin
        "$CSI" --endpoint "unix://$SOCK" --node-id node-a --vg $VG --thin-pool pool \
                --loop-file /tmp/$VG.img --loop-size ${LOOP_SIZE:-512M} --kubelet-dir $K \
                --master-key ${MASTER:-$D/master} "$@" >/dev/null 2>>$D/csi.log &
        echo $! >$D/pid
        echo "$sig" >$D/sig
        # Answering, not just a socket file: a killed plugin leaves its file.
        local i
        for i in $(seq 240); do
                ctl csi Identity.GetPluginInfo >/dev/null 2>&1 && return 0
                kill -0 "$(cat $D/pid)" 2>/dev/null || break
                sleep 0.5
        done
        t_fail "plugin did not start: $(tail -5 $D/csi.log)"
}
# stop_plugin [SIGNAL]: the plugin may be a child of an earlier test's
# subshell, so it is waited for by polling, not by wait.
stop_plugin() {
        local pid i
        pid=$(cat $D/pid 2>/dev/null) || return 0
        kill -"${1:-TERM}" "$pid" 2>/dev/null
        for i in $(seq 600); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        rm -f $D/pid $D/sig
}

# After a test, whatever a failure left (a passing test leaves nothing,
# and checks so itself): mounts under the kubelet dir, mappings.
cleanup_node() {
        local m
        for m in $(grep -o " $K/[^ ]*" /proc/self/mountinfo | sort -r); do umount "$m" 2>/dev/null; done
        for m in /dev/mapper/tvc-*; do [ -e "$m" ] && dmsetup remove "${m##*/}" 2>/dev/null; done
        return 0
}
t_after() { cleanup_node; }

MOUNT_CAP='{"mount":{"fsType":"ext4"},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}'
BLOCK_CAP='{"block":{},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}'

# create NAME TENANT BYTES [extra parameters JSON members] [capability]: prints the volume id
create() {
        local out
        out=$(ctl csi Controller.CreateVolume --json "{\"name\":\"$1\",\"capacityRange\":{\"requiredBytes\":\"$3\"},
                \"volumeCapabilities\":[${5:-$MOUNT_CAP}],
                \"parameters\":{\"csi.storage.k8s.io/pvc/namespace\":\"$2\"${4:-}}}") || return 1
        jval volumeId <<<"$out"
}
# shared NAME TENANT BYTES [extra parameters]: a volume several tests use
# (each leaves it unstaged), created once.
shared() {
        [ -s $D/vol.$1 ] || create "$@" >$D/vol.$1 || { rm -f $D/vol.$1; return 1; }
        cat $D/vol.$1
}
# req FILE JSON: the request goes through a 0600 file, never argv (secrets)
req() { (umask 077 && printf '%s' "$2" >"$1"); }
# stage ID PATH [KEY] [CAPABILITY]  (KEY "" sends no secret)
stage() {
        local secrets=""
        [ -n "${3:-}" ] && secrets=",\"secrets\":{\"key\":\"$3\"}"
        req $D/req.json "{\"volumeId\":\"$1\",\"stagingTargetPath\":\"$2\",\"volumeCapability\":${4:-$MOUNT_CAP}$secrets}"
        ctl csi Node.NodeStageVolume --json @$D/req.json
}
unstage() { ctl csi Node.NodeUnstageVolume --json "{\"volumeId\":\"$1\",\"stagingTargetPath\":\"$2\"}"; }
# publish ID STAGING TARGET [CAPABILITY] [readonly true|false]
publish() {
        ctl csi Node.NodePublishVolume --json "{\"volumeId\":\"$1\",\"stagingTargetPath\":\"$2\",\"targetPath\":\"$3\",
                \"volumeCapability\":${4:-$MOUNT_CAP},\"readonly\":${5:-false}}"
}
unpublish() { ctl csi Node.NodeUnpublishVolume --json "{\"volumeId\":\"$1\",\"targetPath\":\"$2\"}"; }
stats() { ctl csi Node.NodeGetVolumeStats --json "{\"volumeId\":\"$1\",\"volumePath\":\"$2\"}"; }
delete() { ctl csi Controller.DeleteVolume --json "{\"volumeId\":\"$1\"}"; }

expect_status() { # expect_status STATUS what command...: prints the message
        local want=$1 what=$2 err
        shift 2
        err=$("$@" 2>&1 >/dev/null) && t_fail "$what: succeeded, expected $want"
        echo "$err" >>$ERRORS
        [[ "$err" == "$want:"* ]] || t_fail "$what: expected $want, got: $err"
        echo "$err"
}
# paths a test uses for volume NAME
staging_of() { echo "$K/plugins/kubernetes.io/csi/thinvault.csi.io/$1/globalmount"; }
target_of() { echo "$K/pods/pod-$1/volumes/kubernetes.io~csi/pv-$1/mount"; }
mkparents() { local p; for p in "$@"; do mkdir -p "$(dirname "$p")"; done; }
lv_of() { echo "tvc-${1#*:}"; }
devnum() { printf '%d:%d' "0x$(stat -L -c %t "/dev/mapper/$1")" "0x$(stat -L -c %T "/dev/mapper/$1")"; }
mounted() { grep -q " $1 " /proc/self/mountinfo; }
# same_mib DEV N: does MiB N of DEV hold $D/blk.pattern?
same_mib() { dd if="$1" of=$D/blk.read bs=1M skip="$2" count=1 iflag=direct status=none && cmp -s $D/blk.read $D/blk.pattern; }
io_max_line() { grep "^$1 " $CG/io.max; }

test_capabilities_are_stage_stats_expand_condition() {
        start_plugin
        local out
        out=$(ctl csi Node.NodeGetCapabilities) || t_fail "NodeGetCapabilities"
        for c in STAGE_UNSTAGE_VOLUME GET_VOLUME_STATS EXPAND_VOLUME VOLUME_CONDITION; do
                grep -q "\"$c\"" <<<"$out" || t_fail "missing $c: $out"
        done
        [ "$(grep -c '"type"' <<<"$out")" = 4 ] || t_fail "not exactly four: $out"
        out=$(ctl csi Node.NodeGetInfo) || t_fail "NodeGetInfo"
        grep -q '"nodeId": "node-a"' <<<"$out" || t_fail "NodeGetInfo: $out"
}

test_stage_publish_write_unpublish_unstage_leaves_no_mapping_mount_or_io_max() {
        start_plugin
        local id map stg tgt tgt2 dev err
        id=$(shared a1 team-a $((48 * MiB)) ',"iops":"200"') || t_fail "create"
        map=$(lv_of "$id")
        stg=$(staging_of cycle)
        tgt=$(target_of cycle)
        tgt2=$(target_of cycle-ro)
        mkparents "$stg" "$tgt" "$tgt2"
        stage "$id" "$stg" "$KEY_A" >/dev/null || t_fail "stage"
        [ -b /dev/mapper/$map ] || t_fail "no mapping $map"
        mounted "$stg" || t_fail "staging path not mounted"
        [ "$(blkid -o value -s TYPE /dev/mapper/$map)" = ext4 ] || t_fail "no ext4 in the mapping"
        [ "$(blkid -o value -s TYPE "/dev/$VG/${id#*:}")" = crypto_LUKS ] || t_fail "LV is not LUKS"
        dev=$(devnum $map)
        io_max_line "$dev" | grep -q 'riops=200 wiops=200' || t_fail "io.max: $(cat $CG/io.max)"
        stage "$id" "$stg" "$KEY_A" >/dev/null || t_fail "stage again (idempotent)"
        expect_status ALREADY_EXISTS "restage with other flags" stage "$id" "$stg" "$KEY_A" \
                '{"mount":{"fsType":"ext4","mountFlags":["noexec"]},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}' >/dev/null

        publish "$id" "$stg" "$tgt" >/dev/null || t_fail "publish"
        publish "$id" "$stg" "$tgt" >/dev/null || t_fail "publish again (idempotent)"
        echo "hello from team-a" >"$tgt/greeting" && sync || t_fail "write through the target"
        publish "$id" "$stg" "$tgt2" "$MOUNT_CAP" true >/dev/null || t_fail "publish read-only"
        [ "$(cat "$tgt2/greeting")" = "hello from team-a" ] || t_fail "read-only target does not show the data"
        touch "$tgt2/nope" 2>/dev/null && t_fail "read-only target is writable"
        expect_status ALREADY_EXISTS "same target read-write" publish "$id" "$stg" "$tgt2" >/dev/null
        err=$(expect_status FAILED_PRECONDITION "unstage while published" unstage "$id" "$stg") || exit 1
        [[ "$err" == *published* ]] || t_fail "message: $err"
        mounted "$stg" || t_fail "refused unstage unmounted the staging path"

        unpublish "$id" "$tgt" >/dev/null || t_fail "unpublish"
        unpublish "$id" "$tgt2" >/dev/null || t_fail "unpublish read-only"
        [ -e "$tgt" ] && t_fail "target directory left behind"
        unpublish "$id" "$tgt" >/dev/null || t_fail "unpublish again (idempotent)"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"
        [ -e /dev/mapper/$map ] && t_fail "mapping left behind"
        mounted "$stg" && t_fail "mount left behind"
        grep -q " $K/" /proc/self/mountinfo && t_fail "a mount under the kubelet dir is left"
        io_max_line "$dev" && t_fail "io.max line left: $(cat $CG/io.max)"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage again (idempotent)"

        # Staged again with the same key: the data is there, nothing reformatted.
        stage "$id" "$stg" "$KEY_A" >/dev/null || t_fail "stage after unstage"
        [ "$(cat "$stg/greeting")" = "hello from team-a" ] || t_fail "data lost across unstage/stage"
        unstage "$id" "$stg" >/dev/null || t_fail "final unstage"
}

# HKDF-SHA256 as crypt.h documents it, computed independently: the key a
# node with master key $1 derives for tenant $2, in base64.
derived_key() {
        $PY - "$1" "$2" <<'EOF'
import base64, hashlib, hmac, sys
ikm = open(sys.argv[1], "rb").read()
prk = hmac.new(b"thinvault.csi.io tenant key salt v1", ikm, hashlib.sha256).digest()
okm = hmac.new(prk, b"thinvault tenant key v1" + sys.argv[2].encode() + b"\x01", hashlib.sha256).digest()
print(base64.b64encode(okm).decode())
EOF
}

test_other_tenants_secret_or_derived_key_is_permission_denied() {
        start_plugin
        local ida idd stg err
        ida=$(shared u1 team-a $((32 * MiB))) || t_fail "create secret volume"
        idd=$(create keys-d team-a $((32 * MiB)) ',"keySource":"derived"') || t_fail "create derived volume"
        stg=$(staging_of keys)
        mkparents "$stg"
        stage "$ida" "$stg" "$KEY_A" >/dev/null || t_fail "stage with the tenant's key"
        unstage "$ida" "$stg" >/dev/null || t_fail "unstage"
        err=$(expect_status PERMISSION_DENIED "team-b's secret" stage "$ida" "$stg" "$KEY_B") || exit 1
        [[ "$err" == *team-a* ]] || t_fail "message does not name the tenant: $err"
        [ -e "/dev/mapper/$(lv_of "$ida")" ] && t_fail "mapping left after a wrong key"
        mounted "$stg" && t_fail "mounted after a wrong key"
        expect_status INVALID_ARGUMENT "no secret" stage "$ida" "$stg" "" >/dev/null

        stage "$idd" "$stg" >/dev/null || t_fail "stage with the derived key"
        unstage "$idd" "$stg" >/dev/null || t_fail "unstage derived"
        # team-b's derived key, as another node with the same master key
        # would derive it, does not open team-a's volume.
        expect_status PERMISSION_DENIED "team-b's derived key" stage "$ida" "$stg" "$(derived_key $D/master team-b)" >/dev/null
        [ -e "/dev/mapper/$(lv_of "$ida")" ] && t_fail "mapping left after a wrong derived key"
        MASTER=$D/master2 start_plugin
        err=$(expect_status PERMISSION_DENIED "another master key" stage "$idd" "$stg") || exit 1
        [[ "$err" == *team-a* ]] || t_fail "message does not name the tenant: $err"
        [ -e "/dev/mapper/$(lv_of "$idd")" ] && t_fail "mapping left after a wrong master key"
        mounted "$stg" && t_fail "mounted after a wrong master key"
        return 0
}

# stage_rotating ID PATH KEY PREVIOUS_KEY: a Secret in the middle of a rotation
stage_rotating() {
        req $D/req.json "{\"volumeId\":\"$1\",\"stagingTargetPath\":\"$2\",\"volumeCapability\":$MOUNT_CAP,
                \"secrets\":{\"key\":\"$3\",\"previousKey\":\"$4\"}}"
        ctl csi Node.NodeStageVolume --json @$D/req.json
}
# token_fingerprint ID: the key fingerprint in the volume's thinvault token
token_fingerprint() {
        cryptsetup luksDump --dump-json-metadata "/dev/$VG/${1#*:}" | grep -o '"key_fingerprint": *"[^"]*"' | cut -d'"' -f4
}

test_key_rotation_with_previous_key_keeps_data_and_retires_the_old_key() {
        start_plugin
        local id stg fp1 fp2 err
        id=$(create rot team-a $((32 * MiB))) || t_fail "create"
        stg=$(staging_of rot)
        mkparents "$stg"
        stage "$id" "$stg" "$KEY_A" >/dev/null || t_fail "stage with the old key"
        head -c 1048576 /dev/urandom >$D/rot.data
        cp $D/rot.data "$stg/data" && sync || t_fail "write"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"
        fp1=$(token_fingerprint "$id")
        [ -n "$fp1" ] || t_fail "no token fingerprint"
        # The tenant's Secret now holds key=new, previousKey=old.
        stage_rotating "$id" "$stg" "$KEY_A2" "$KEY_A" >/dev/null || t_fail "stage during rotation"
        cmp -s $D/rot.data "$stg/data" || t_fail "data changed by the rotation"
        grep -q 'msg="volume key rotated".*tenant=team-a' $D/csi.log || t_fail "no rotation logged"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage after rotation"
        fp2=$(token_fingerprint "$id")
        [ -n "$fp2" ] && [ "$fp2" != "$fp1" ] || t_fail "token fingerprint not moved: $fp1 -> $fp2"
        # The old key is gone from the header; the new one alone opens it.
        err=$(expect_status PERMISSION_DENIED "the retired key" stage "$id" "$stg" "$KEY_A") || exit 1
        [ -e "/dev/mapper/$(lv_of "$id")" ] && t_fail "mapping left after the retired key"
        stage "$id" "$stg" "$KEY_A2" >/dev/null || t_fail "stage with the new key alone"
        cmp -s $D/rot.data "$stg/data" || t_fail "data lost after rotation"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"
        # The same Secret again (every later stage sends it): nothing to do.
        stage_rotating "$id" "$stg" "$KEY_A2" "$KEY_A" >/dev/null || t_fail "stage with the rotated Secret again"
        [ "$(token_fingerprint "$id")" = "$fp2" ] || t_fail "fingerprint changed on a second pass"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"
        # Keys that do not open it, current or previous: refused, untouched.
        err=$(expect_status PERMISSION_DENIED "team-b's keys as key and previousKey" stage_rotating "$id" "$stg" "$KEY_B" "$KEY_A") || exit 1
        [[ "$err" == *previousKey* ]] || t_fail "message does not say which keys: $err"
        [ "$(token_fingerprint "$id")" = "$fp2" ] || t_fail "a refused rotation changed the header"
        expect_status INVALID_ARGUMENT "previousKey not base64" stage_rotating "$id" "$stg" "$KEY_A2" "not-a-key!" >/dev/null
        delete "$id" >/dev/null || t_fail "delete"
}

test_volume_with_foreign_ext4_or_luks_is_refused_and_unchanged() {
        start_plugin
        local id lv stg sum
        id=$(create foreign-fs team-a $((32 * MiB))) || t_fail "create"
        lv=/dev/$VG/${id#*:}
        mkfs.ext4 -q "$lv" || t_fail "mkfs outside the driver"
        sum=$(head -c $MiB "$lv" | md5sum)
        stg=$(staging_of foreign)
        mkparents "$stg"
        err=$(expect_status FAILED_PRECONDITION "ext4 made outside" stage "$id" "$stg" "$KEY_A") || exit 1
        [[ "$err" == *ext4* ]] || t_fail "message does not say what is there: $err"
        [ "$(head -c $MiB "$lv" | md5sum)" = "$sum" ] || t_fail "first MiB changed"
        [ -e "/dev/mapper/$(lv_of "$id")" ] && t_fail "mapping left"
        mounted "$stg" && t_fail "mounted"

        id=$(create foreign-luks team-a $((32 * MiB))) || t_fail "create"
        lv=/dev/$VG/${id#*:}
        printf 'not-thinvault-passphrase' | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 \
                --pbkdf-force-iterations 1000 --key-file - "$lv" || t_fail "luksFormat outside the driver"
        sum=$(head -c $MiB "$lv" | md5sum)
        expect_status FAILED_PRECONDITION "LUKS made outside" stage "$id" "$stg" "$KEY_A" >/dev/null
        [ "$(head -c $MiB "$lv" | md5sum)" = "$sum" ] || t_fail "LUKS header changed"
        [ -e "/dev/mapper/$(lv_of "$id")" ] && t_fail "mapping left"
        return 0
}

# A stage killed right after its LUKS format (kill point stage.after_format)
# leaves a volume nothing was ever written through: its data area reads as
# the decryption of the thin LV's zeros, random bytes in which libblkid now
# and then finds a signature (hfsplus, once in the load test's ~400 fresh
# volumes). tv-noise-format leaves that state with a volume key for which
# it always does. The retried stage makes the file system instead of
# refusing the volume; a signature in written bytes is still refused (the
# test above).
test_retried_stage_formats_over_a_signature_in_never_written_bytes() {
        start_plugin
        local id lv stg seen
        id=$(create noise team-a $((32 * MiB))) || t_fail "create"
        lv=/dev/$VG/${id#*:}
        "$BUILD/tests/guest/tv-noise-format" "$lv" team-a <$D/key-a || t_fail "format with the noise key"
        # the premise: libblkid sees hfsplus through the tenant's mapping
        base64 -d <$D/key-a | cryptsetup open --key-file - "$lv" tvnoise-peek || t_fail "open to look"
        seen=$(blkid -p -o value -s TYPE /dev/mapper/tvnoise-peek)
        cryptsetup close tvnoise-peek || t_fail "close the look"
        [ "$seen" = hfsplus ] || t_fail "the never-written mapping probes as '$seen', not hfsplus"

        stg=$(staging_of noise)
        mkparents "$stg"
        stage "$id" "$stg" "$KEY_A" >/dev/null || t_fail "the retried stage refused the volume"
        [ "$(findmnt -n -o FSTYPE --mountpoint "$stg")" = ext4 ] || t_fail "not mounted as ext4"
        grep -q "signature in never-written bytes ignored.*volume=${id#*:} type=hfsplus" $D/csi.log ||
                t_fail "the plugin did not log the ignored signature"
        echo kept >"$stg/kept" && sync || t_fail "write"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"
        # from now on the file system is data: staged again, it is kept
        stage "$id" "$stg" "$KEY_A" >/dev/null || t_fail "stage again"
        [ "$(cat "$stg/kept")" = kept ] || t_fail "the file did not survive a restage"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage again"
        delete "$id" >/dev/null || t_fail "delete"
        return 0
}

test_deleted_volume_blocks_reused_by_another_tenant_show_no_key_or_data() {
        # A pool of its own, small enough that team-b's volume must take
        # every block team-a's held.
        local VG=tvreuse LOOP_SIZE=96M
        start_plugin
        local id lv map stg uuid cap idb lvb
        id=$(create secret-a team-a $((32 * MiB))) || t_fail "create"
        lv=/dev/$VG/${id#*:}
        map=$(lv_of "$id")
        stg=$(staging_of reuse)
        mkparents "$stg"
        stage "$id" "$stg" "$KEY_A" >/dev/null || t_fail "stage"
        $PY -c 'import sys; sys.stdout.write("TEAM-A-PLAINTEXT-MARKER-7f3a9c\n" * 100000)' >"$stg/secret.txt" || t_fail "write"
        sync
        grep -q -a TEAM-A-PLAINTEXT-MARKER-7f3a9c /dev/mapper/$map || t_fail "marker not on the mapping"
        grep -q -a TEAM-A-PLAINTEXT-MARKER-7f3a9c "$lv" && t_fail "plaintext on the raw LV"
        uuid=$(blkid -o value -s UUID "$lv")
        [ -n "$uuid" ] || t_fail "no LUKS UUID"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"
        delete "$id" >/dev/null || t_fail "DeleteVolume"
        grep 'msg="volume erased"' $D/csi.log | grep -q "volume=${id#*:} keyslots=1 kind=ours" ||
                t_fail "no crypto-erase logged: $(grep erased $D/csi.log | tail -2)"

        cap=$(ctl csi Controller.GetCapacity | jval availableCapacity)
        [ -n "$cap" ] && [ "$cap" -ge $((48 * MiB)) ] || t_fail "capacity after delete: $cap"
        idb=$(create reuse-b team-b "$cap" "" "$BLOCK_CAP") || t_fail "create team-b's volume"
        lvb=/dev/$VG/${idb#*:}
        # Write the last 4 KiB of every 64 KiB (the smallest thin chunk):
        # each pool block gets mapped with the rest of it as it was.
        $PY - "$lvb" <<'EOF' || t_fail "provision team-b's volume"
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)
size = os.lseek(fd, 0, os.SEEK_END)
buf = mmap.mmap(-1, 4096)
buf.write(b"B" * 4096)
for off in range(65536 - 4096, size, 65536):
    os.pwrite(fd, buf, off)
os.fsync(fd)
os.close(fd)
EOF
        local pct found
        pct=$(lvm_ lvs --noheadings -o data_percent $VG/pool | tr -d ' ')
        [ "${pct%%.*}" -ge 95 ] || t_fail "team-b's volume holds only $pct% of the pool: $(lvm_ lvs $VG)"
        found=$($PY - "$lvb" "$uuid" <<'EOF'
import sys
needles = [b"TEAM-A-PLAINTEXT-MARKER", sys.argv[2].encode(), b'"type":"thinvault"', b"team-a", b"LUKS\xba\xbe"]
with open(sys.argv[1], "rb", buffering=0) as f:
    tail = b""
    while True:
        chunk = f.read(4 << 20)
        if not chunk:
            break
        data = tail + chunk
        for n in needles:
            if n in data:
                print(n.decode("latin-1"))
                sys.exit(0)
        tail = data[-64:]
EOF
)
        [ -z "$found" ] || t_fail "team-b's blocks hold '$found' of team-a's volume"
        delete "$idb" >/dev/null || t_fail "delete team-b's volume"
        stop_plugin
        pool_remove $VG
}

test_expand_online_keeps_data() {
        start_plugin
        local id stg tgt sum out before after
        id=$(create grow team-a $((32 * MiB))) || t_fail "create"
        stg=$(staging_of grow)
        tgt=$(target_of grow)
        mkparents "$stg" "$tgt"
        stage "$id" "$stg" "$KEY_A" >/dev/null || t_fail "stage"
        publish "$id" "$stg" "$tgt" >/dev/null || t_fail "publish"
        head -c $((6 * MiB)) /dev/urandom >"$tgt/data" && sync || t_fail "write"
        sum=$(md5sum <"$tgt/data")
        before=$(($(df -B1 --output=size "$tgt" | tail -1)))
        ctl csi Controller.ControllerExpandVolume --json "{\"volumeId\":\"$id\",\"capacityRange\":{\"requiredBytes\":\"$((64 * MiB))\"}}" >/dev/null ||
                t_fail "ControllerExpandVolume"
        out=$(ctl csi Node.NodeExpandVolume --json "{\"volumeId\":\"$id\",\"volumePath\":\"$tgt\",\"stagingTargetPath\":\"$stg\",
                \"capacityRange\":{\"requiredBytes\":\"$((64 * MiB))\"},\"volumeCapability\":$MOUNT_CAP}") || t_fail "NodeExpandVolume"
        [ "$(jval capacityBytes <<<"$out")" = $((64 * MiB)) ] || t_fail "capacity: $out"
        after=$(($(df -B1 --output=size "$tgt" | tail -1)))
        [ "$after" -gt $((before + 24 * MiB)) ] || t_fail "file system did not grow: $before -> $after"
        [ "$(md5sum <"$tgt/data")" = "$sum" ] || t_fail "data changed"
        unpublish "$id" "$tgt" >/dev/null || t_fail "unpublish"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"
}

# xfs: made by the plugin on first stage (mkfs.xfs needs 300 MiB: the
# volume is thin, so that costs the pool only what xfs writes), kept on
# restage, grown online with xfs_growfs.
test_xfs_volume_made_kept_on_restage_and_grown_online() {
        start_plugin
        local cap='{"mount":{"fsType":"xfs"},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}'
        local id stg tgt sum out before after
        id=$(create xfs1 team-a $((320 * MiB)) ',"fsType":"xfs"' "$cap") || t_fail "create"
        stg=$(staging_of xfs1)
        tgt=$(target_of xfs1)
        mkparents "$stg" "$tgt"
        stage "$id" "$stg" "$KEY_A" "$cap" >/dev/null || t_fail "stage"
        [ "$(findmnt -n -o FSTYPE "$stg")" = xfs ] || t_fail "staged as $(findmnt -n -o FSTYPE "$stg")"
        publish "$id" "$stg" "$tgt" "$cap" >/dev/null || t_fail "publish"
        head -c $((4 * MiB)) /dev/urandom >"$tgt/data" && sync || t_fail "write"
        sum=$(md5sum <"$tgt/data")
        unpublish "$id" "$tgt" >/dev/null || t_fail "unpublish"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"
        stage "$id" "$stg" "$KEY_A" "$cap" >/dev/null || t_fail "restage"
        publish "$id" "$stg" "$tgt" "$cap" >/dev/null || t_fail "republish"
        [ "$(md5sum <"$tgt/data")" = "$sum" ] || t_fail "data lost on restage (made again?)"
        before=$(($(df -B1 --output=size "$tgt" | tail -1)))
        ctl csi Controller.ControllerExpandVolume --json "{\"volumeId\":\"$id\",\"capacityRange\":{\"requiredBytes\":\"$((400 * MiB))\"}}" >/dev/null ||
                t_fail "ControllerExpandVolume"
        out=$(ctl csi Node.NodeExpandVolume --json "{\"volumeId\":\"$id\",\"volumePath\":\"$tgt\",\"stagingTargetPath\":\"$stg\",
                \"capacityRange\":{\"requiredBytes\":\"$((400 * MiB))\"},\"volumeCapability\":$cap}") || t_fail "NodeExpandVolume"
        after=$(($(df -B1 --output=size "$tgt" | tail -1)))
        [ "$after" -gt $((before + 64 * MiB)) ] || t_fail "xfs did not grow: $before -> $after"
        [ "$(md5sum <"$tgt/data")" = "$sum" ] || t_fail "data changed by the growth"
        unpublish "$id" "$tgt" >/dev/null || t_fail "unpublish"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"
        delete "$id" >/dev/null || t_fail "delete"
}

# An empty ext4 volume stays thin once staged: the kernel must not zero
# its inode tables in the background (through dm-crypt each zero block is
# ciphertext and allocates pool space: 16 MiB per GiB of volume).
thin_mapped() { # bytes the thin LV of volume id $1 maps (dm doubles '-' in names)
        local lv=${1#*:}
        dmsetup status "${VG//-/--}-${lv//-/--}" | awk '$3 == "thin" {print $4 * 512}'
}
test_staged_empty_ext4_volume_allocates_no_inode_tables() {
        start_plugin
        local id stg after_stage later
        id=$(create lazy team-a $((2048 * MiB))) || t_fail "create"
        stg=$(staging_of lazy)
        mkparents "$stg"
        stage "$id" "$stg" "$KEY_A" >/dev/null || t_fail "stage"
        after_stage=$(thin_mapped "$id")
        [ "${after_stage:-0}" -gt 0 ] || t_fail "no thin mapping read for $id (mkfs wrote nothing?)"
        sleep 20
        later=$(thin_mapped "$id")
        echo "    thin mapped: $((after_stage / 1024)) KiB after stage, $((later / 1024)) KiB 20 s later"
        [ $((later - after_stage)) -lt $((4 * MiB)) ] || t_fail "the idle file system allocated $(((later - after_stage) / 1024)) KiB"
        pgrep -x ext4lazyinit >/dev/null && t_fail "ext4lazyinit runs for an idle volume"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"
        delete "$id" >/dev/null || t_fail "delete"
}

test_block_volume_round_trip() {
        start_plugin
        local id map stg tgt out size
        id=$(create blk team-a $((32 * MiB)) "" "$BLOCK_CAP") || t_fail "create"
        map=$(lv_of "$id")
        stg=$K/plugins/kubernetes.io/csi/volumeDevices/staging/pv-blk
        tgt=$K/plugins/kubernetes.io/csi/volumeDevices/publish/pv-blk/pod-blk
        mkparents "$stg/x" "$tgt"
        stage "$id" "$stg" "$KEY_A" "$BLOCK_CAP" >/dev/null || t_fail "stage block"
        [ -b /dev/mapper/$map ] || t_fail "no mapping"
        mounted "$stg" && t_fail "block staging mounted something"
        publish "$id" "$stg" "$tgt" "$BLOCK_CAP" >/dev/null || t_fail "publish block"
        [ -b "$tgt" ] || t_fail "target is not a block device"
        head -c $MiB /dev/urandom >$D/blk.pattern
        dd if=$D/blk.pattern of="$tgt" bs=1M count=1 seek=2 oflag=direct status=none || t_fail "write through the target"
        same_mib /dev/mapper/$map 2 || t_fail "mapping does not hold the data"
        same_mib "/dev/$VG/${id#*:}" 18 && t_fail "plaintext on the raw LV"
        out=$(stats "$id" "$tgt") || t_fail "stats"
        size=$(blockdev --getsize64 /dev/mapper/$map)
        [ "$(jval total <<<"$out")" = "$size" ] || t_fail "stats: $out (size $size)"
        grep -q '"abnormal": true' <<<"$out" && t_fail "healthy volume abnormal: $out"
        unpublish "$id" "$tgt" >/dev/null || t_fail "unpublish"
        [ -e "$tgt" ] && t_fail "target file left"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"
        [ -e /dev/mapper/$map ] && t_fail "mapping left"
        # Its bytes are the tenant's: no file system is made over them.
        expect_status FAILED_PRECONDITION "raw block volume staged as a file system" \
                stage "$id" "$stg" "$KEY_A" >/dev/null
        [ -e /dev/mapper/$map ] && t_fail "mapping left after the refusal"
        mounted "$stg" && t_fail "mounted after the refusal"

        stage "$id" "$stg" "$KEY_A" "$BLOCK_CAP" >/dev/null || t_fail "stage again"
        publish "$id" "$stg" "$tgt" "$BLOCK_CAP" >/dev/null || t_fail "publish again"
        same_mib "$tgt" 2 || t_fail "data lost across unstage/stage"
        # The mapping vanishing under a published device is a condition.
        dmsetup remove $map || t_fail "remove the mapping by hand"
        out=$(stats "$id" "$tgt") || t_fail "stats without mapping"
        grep -q '"abnormal": true' <<<"$out" && grep -q gone <<<"$out" || t_fail "no abnormal condition: $out"
        unpublish "$id" "$tgt" >/dev/null || t_fail "unpublish after loss"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage after loss"
}

test_volume_stats_report_usage_and_a_read_only_file_system() {
        start_plugin
        local id stg tgt out
        id=$(shared a1 team-a $((48 * MiB)) ',"iops":"200"') || t_fail "create"
        stg=$(staging_of stat)
        tgt=$(target_of stat)
        mkparents "$stg" "$tgt"
        stage "$id" "$stg" "$KEY_A" >/dev/null || t_fail "stage"
        publish "$id" "$stg" "$tgt" >/dev/null || t_fail "publish"
        out=$(stats "$id" "$tgt") || t_fail "stats"
        [ "$(jval unit <<<"$out")" = BYTES ] && [ "$(jval2 unit <<<"$out")" = INODES ] || t_fail "units: $out"
        [ "$(jval total <<<"$out")" -gt $((8 * MiB)) ] || t_fail "bytes: $out"
        [ "$(jval2 total <<<"$out")" -gt 0 ] || t_fail "inodes: $out"
        grep -q '"abnormal": true' <<<"$out" && t_fail "abnormal: $out"
        # What ext4 errors=remount-ro does: the superblock turns read-only
        # under the pod's read-write mount.
        mount -o remount,ro "$stg" || t_fail "remount ro"
        out=$(stats "$id" "$tgt") || t_fail "stats after remount"
        grep -q '"abnormal": true' <<<"$out" && grep -q read-only <<<"$out" || t_fail "no condition: $out"
        mount -o remount,rw "$stg" || t_fail "remount rw"
        expect_status NOT_FOUND "stats of a missing path" stats "$id" "$K/pods/nope/mount" >/dev/null
        unpublish "$id" "$tgt" >/dev/null || t_fail "unpublish"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"
}

test_restart_reapplies_io_max_and_no_cgroup_refuses_a_limited_volume() {
        start_plugin
        local id map stg dev unl
        id=$(shared a1 team-a $((48 * MiB)) ',"iops":"200"') || t_fail "create"
        map=$(lv_of "$id")
        stg=$(staging_of limited)
        mkparents "$stg"
        stage "$id" "$stg" "$KEY_A" >/dev/null || t_fail "stage"
        dev=$(devnum $map)
        io_max_line "$dev" | grep -q 'riops=200 wiops=200' || t_fail "io.max: $(cat $CG/io.max)"
        stop_plugin KILL
        # While it was down the line went (a kubelet restart recreating
        # the pods cgroup does that).
        echo "$dev rbps=max wbps=max riops=max wiops=max" >$CG/io.max
        io_max_line "$dev" && t_fail "io.max line not cleared by hand"
        local lines
        lines=$(wc -l <$D/csi.log)
        start_plugin
        io_max_line "$dev" | grep -q 'riops=200 wiops=200' || t_fail "not re-applied at start: $(cat $CG/io.max)"
        tail -n +$((lines + 1)) $D/csi.log | grep -q 'msg="io limits of staged volumes re-applied" volumes=[0-9]* failed=0' ||
                t_fail "no log of the re-apply: $(tail -n +$((lines + 1)) $D/csi.log | head -5)"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"

        # No pods cgroup: a limited volume is not handed out unlimited.
        start_plugin --cgroup-parent /sys/fs/cgroup/no-such-pods
        local err
        err=$(expect_status FAILED_PRECONDITION "limits without a cgroup" stage "$id" "$stg" "$KEY_A") || exit 1
        [[ "$err" == *cgroup* ]] || t_fail "message: $err"
        [ -e /dev/mapper/$map ] && t_fail "mapping left after the refusal"
        mounted "$stg" && t_fail "mount left after the refusal"
        unl=$(shared u1 team-a $((32 * MiB))) || t_fail "create unlimited"
        stage "$unl" "$stg" "$KEY_A" >/dev/null || t_fail "an unlimited volume needs no cgroup"
        unstage "$unl" "$stg" >/dev/null || t_fail "unstage unlimited"
}

test_path_traversal_relative_outside_and_symlinks_are_invalid_and_mount_nothing() {
        start_plugin
        local id stg tgt before
        id=$(shared a1 team-a $((48 * MiB)) ',"iops":"200"') || t_fail "create"
        stg=$(staging_of paths)
        tgt=$(target_of paths)
        mkparents "$stg" "$tgt"
        mkdir -p $OUT/dir $K/pods/pod-links
        ln -sfn $OUT $K/plugins/link-parent
        ln -sfn $OUT/dir $K/plugins/link-self
        ln -sfn $OUT $K/pods/pod-links/parent
        ln -sfn $OUT/dir $K/pods/pod-links/self
        before=$(wc -l </proc/self/mountinfo)
        local p
        # (every lexical rule is in tests/unit/test_node.c; one of each here)
        for p in "relative/globalmount" "$K/plugins/../../escape" "$OUT/g" "$K/plugins/link-parent/g" "$K/plugins/link-self"; do
                expect_status INVALID_ARGUMENT "staging path $p" stage "$id" "$p" "$KEY_A" >/dev/null
        done
        [ -e "/dev/mapper/$(lv_of "$id")" ] && t_fail "a refused stage left a mapping"
        stage "$id" "$stg" "$KEY_A" >/dev/null || t_fail "stage"
        for p in "$K/pods/../../escape" "$K/pods/pod-links/parent/mount" "$K/pods/pod-links/self"; do
                expect_status INVALID_ARGUMENT "target path $p" publish "$id" "$stg" "$p" >/dev/null
        done
        expect_status INVALID_ARGUMENT "unpublish a symlink" unpublish "$id" "$K/pods/pod-links/self" >/dev/null
        [ "$(wc -l </proc/self/mountinfo)" = $((before + 1)) ] || t_fail "mounts other than the staging one appeared"
        grep -q " $OUT" /proc/self/mountinfo && t_fail "something is mounted outside the kubelet dir"
        [ -z "$(ls -A $OUT/dir)" ] && [ "$(ls $OUT)" = dir ] || t_fail "files appeared outside: $(ls -R $OUT)"
        unstage "$id" "$stg" >/dev/null || t_fail "unstage"
}

# Last, over everything the suite logged and every error it was given.
final_no_key_material_in_plugin_log_or_errors() {
        local k hex files=($D/csi.log $ERRORS)
        [ -s $D/csi.log ] && [ -s $ERRORS ] || t_fail "nothing to search"
        for k in "$KEY_A" "$KEY_B" "$KEY_A2" "$(base64 -w0 <$D/master)" "$(base64 -w0 <$D/master2)" \
                "$(derived_key $D/master team-a)" "$(derived_key $D/master team-b)"; do
                hex=$(base64 -d <<<"$k" | xxd -p -c 256)
                for needle in "$k" "${k%%=*}" "$hex" "${hex:0:16}" "$(tr 'a-f' 'A-F' <<<"$hex")"; do
                        grep -q -F -- "$needle" "${files[@]}" && t_fail "key material found in the log or an error"
                done
        done
        return 0
}

# TV_NODE_ONLY=REGEX runs only the matching tests (while working on them).
for t in $(declare -F | awk '{print $3}' | grep '^test_' | grep -E "${TV_NODE_ONLY:-.}") final_no_key_material_in_plugin_log_or_errors; do
        t0=$(date +%s)
        t_run "$t"
        echo "    ($(($(date +%s) - t0)) s)"
done
if [ "${TV_NODE_DEBUG:-0}" = 1 ]; then
        grep -E 'level=(warn|error)|ms=[0-9]{4,}' $D/csi.log | cut -c1-400
fi
stop_plugin
cleanup_node
pool_remove $VG
pool_remove tvreuse
rmdir $CG 2>/dev/null
t_summary
