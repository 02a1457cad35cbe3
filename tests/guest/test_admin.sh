#!/usr/bin/env bash
# The admin commands of thinvaultctl (pool, volumes, usage, inspect, audit)
# against the real kernel in the guest, with the plugin down: a loop-backed
# thin pool whose volumes are made, tagged, LUKS2-formatted and staged the
# way the driver does it (lvm2, cryptsetup, an io.max line by hand), then
# the numbers checked against the kernel's own (dmsetup status, statvfs),
# every seeded defect found by the audit, and no key in any output.
set -uo pipefail
BUILD=${1:-$TV_BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/pool.sh"
CTL=$BUILD/cli/thinvaultctl
CSI=$BUILD/csi/thinvault-csi
D=/tmp/tv-admin
VG=tvadm
CG=/sys/fs/cgroup/kubepods # stands in for the kubelet's pods cgroup
MiB=1048576
JQ=/usr/bin/jq
mkdir -p $D
rm -rf $D/json && mkdir -p $D/json
[ -d $CG ] || mkdir $CG
export THINVAULT_VG=$VG THINVAULT_THIN_POOL=pool

adm() { timeout 300 "$CTL" "$@"; }
# dm name of VG/LV (lvm2 doubles every '-')
dm_of() { echo "$VG-$(sed 's/-/--/g' <<<"$1")"; }
# thin mapped bytes, from the kernel: "0 LEN thin MAPPED_SECTORS HIGHEST"
mapped_of() { echo $(($(dmsetup status "$(dm_of "$1")" | awk '{print $4}') * 512)); }
devnum() { printf '%d:%d' "0x$(stat -L -c %t "/dev/mapper/$1")" "0x$(stat -L -c %T "/dev/mapper/$1")"; }
fingerprint() { { printf 'thinvault key fingerprint v1\0'; cat "$1"; } | sha256sum | cut -c1-16; }
# vol NAME TENANT SIZE_MB [extra lvcreate args]: a thin LV tagged as CreateVolume tags it
vol() {
        local name=$1 tenant=$2 size=$3
        shift 3
        lvm_ lvcreate -q -V "${size}M" -T $VG/pool -n "$name" --addtag tv.kind=volume \
                --addtag "tv.tenant=$tenant" --addtag "tv.name=$name-req" --addtag "tv.pvc=$tenant/claim-$name" \
                --addtag tv.fs=ext4 --addtag tv.keysrc=secret "$@" >/dev/null
}
# luks LV TENANT: LUKS2 + the thinvault token, as tv_luks_format() writes them
luks() {
        local dev=/dev/$VG/$1 tenant=$2
        cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
                --key-file "$D/key-$tenant" "$dev" || return 1
        printf '{"type":"thinvault","keyslots":[],"tenant":"%s","key_fingerprint":"%s","version":1}' \
                "$tenant" "$(fingerprint "$D/key-$tenant")" | cryptsetup token import "$dev"
}
# stage LV TENANT: open as tvc-LV, as NodeStageVolume does (the volume key
# in the dm table, not the kernel keyring: tv_luks_open() does the same)
stage() { cryptsetup open --allow-discards --disable-keyring --key-file "$D/key-$2" "/dev/$VG/$1" "tvc-$1"; }
jcount() { $JQ -r "$1" <<<"$2"; }
# json NAME ARGS...: `thinvaultctl ARGS -o json`, kept as $D/json/NAME.json
json() {
        local name=$1 rc
        shift
        adm "$@" -o json >$D/json/$name.json
        rc=$?
        cat $D/json/$name.json
        return $rc
}

# ---- the fixture: one pool, made once -------------------------------------------
A1=tv-a1-0123456789abcdef   # team-a, limited to 300 IOPS, staged and mounted
A2=tv-a2-1111111111111111   # team-a, staged as a raw block device
B1=tv-b1-2222222222222222   # team-b, formatted, not staged
C1=tv-c1-3333333333333333   # team-c, 1 GiB, never staged (no header yet)
S1=tvs-snap-b1-4444444444444444 # snapshot of B1
STG=$D/stage/a1 # the staging path of A1 ("kubelet" dir)
POD=$D/pod/a1   # a pod's bind mount of it

fixture() {
        pool_remove $VG
        pool_create $VG pool 512 || return 1
        head -c 32 /dev/urandom >$D/key-team-a
        head -c 32 /dev/urandom >$D/key-team-b
        vol $A1 team-a 64 --addtag tv.limits=v1/ri:300/wi:300 &&
                vol $A2 team-a 64 &&
                vol $B1 team-b 32 &&
                vol $C1 team-c 1024 || return 1
        luks $A1 team-a && luks $A2 team-a && luks $B1 team-b || return 1
        lvm_ lvcreate -q -s $VG/$B1 -n $S1 -kn --addtag tv.kind=snapshot --addtag tv.tenant=team-b \
                --addtag tv.name=snap-b1 --addtag tv.source=$B1 >/dev/null || return 1
        lvm_ lvchange -q -ay -K $VG/$S1 >/dev/null || return 1
        stage $A1 team-a && stage $A2 team-a || return 1
        mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 /dev/mapper/tvc-$A1 || return 1
        mkdir -p $STG $POD && mount /dev/mapper/tvc-$A1 $STG && mount --bind $STG $POD || return 1
        echo "$(devnum tvc-$A1) riops=300 wiops=300" >$CG/io.max
}
if ! fixture >$D/fixture.log 2>&1; then
        echo "FAIL fixture"
        sed 's/^/    /' $D/fixture.log | tail -20
        echo "0 passed, 1 failed"
        exit 1
fi

# ---- tests -------------------------------------------------------------------------

test_admin_commands_have_help_and_refuse_bad_usage() {
        local c out
        for c in pool volumes usage inspect audit; do
                out=$(adm $c --help) || t_fail "$c --help: exit $?"
                [[ "$out" == *"Usage: thinvaultctl $c"* && "$out" == *"-o, --output"* ]] || t_fail "$c --help: $out"
                adm $c -o yaml >/dev/null 2>&1
                [ $? = 2 ] || t_fail "$c -o yaml: not a usage error"
        done
        adm inspect >/dev/null 2>&1
        [ $? = 2 ] || t_fail "inspect without VOLUME"
        adm volumes extra >/dev/null 2>&1
        [ $? = 2 ] || t_fail "volumes with an argument"
        adm usage --config /dev/null >/dev/null 2>&1
        [ $? = 2 ] || t_fail "--config on usage"
        out=$(adm pool --vg nosuchvg 2>&1)
        [ $? = 1 ] || t_fail "missing VG: exit status"
        [[ "$out" == *nosuchvg* ]] || t_fail "missing VG not named: $out"
        out=$(THINVAULT_VG=nosuchvg2 adm volumes 2>&1)
        [[ "$out" == *nosuchvg2* ]] || t_fail "THINVAULT_VG not honoured: $out"
        out=$(adm inspect tv-nope-0000000000000000 2>&1)
        [ $? = 1 ] && [[ "$out" == *tv-nope* ]] || t_fail "inspect of a missing volume: $out"
}

# Every -o json output the tests below saw is kept in $D/json/ and parsed
# here by another JSON parser than the jq the tests read it with.
test_every_json_output_parses() {
        local f n=0
        for f in $D/json/*.json; do
                [ -f "$f" ] || continue
                /usr/bin/python3 -m json.tool "$f" >/dev/null || t_fail "$(basename "$f") does not parse: $(head -c 300 "$f")"
                n=$((n + 1))
        done
        [ $n -ge 8 ] || t_fail "only $n JSON outputs were saved"
}

test_volumes_shows_tenant_size_allocation_encryption_staging_and_iops() {
        local j t
        j=$(json volumes volumes) || t_fail "volumes"
        [ "$(jcount '.volumes | length' "$j")" = 5 ] || t_fail "expected 5 thin LVs: $j"
        v() { $JQ -r --arg n "$1" ".volumes[] | select(.name == \$n) | $2" <<<"$j"; }
        [ "$(v $A1 .tenant)" = team-a ] || t_fail "tenant of A1"
        [ "$(v $A1 .pvc)" = team-a/claim-$A1 ] || t_fail "pvc of A1: $(v $A1 .pvc)"
        [ "$(v $A1 .sizeBytes)" = $((64 * MiB)) ] || t_fail "size of A1"
        [ "$(v $C1 .sizeBytes)" = $((1024 * MiB)) ] || t_fail "size of C1"
        for t in $A1 $A2 $B1 $C1 $S1; do
                [ "$(v $t .allocatedBytes)" = "$(mapped_of $t)" ] || t_fail "allocated of $t: $(v $t .allocatedBytes) != kernel $(mapped_of $t)"
        done
        [ "$(v $A1 .encrypted)" = true ] && [ "$(v $B1 .encrypted)" = true ] && [ "$(v $S1 .encrypted)" = true ] ||
                t_fail "formatted volumes not encrypted"
        [ "$(v $C1 .encrypted)" = false ] || t_fail "C1 has no header, encrypted: $(v $C1 .encrypted)"
        [ "$(v $A1 .luks.tenant)" = team-a ] && [ "$(v $A1 .luks.keyFingerprint)" = "$(fingerprint $D/key-team-a)" ] ||
                t_fail "token of A1: $(v $A1 .luks)"
        [ "$(v $A1 .staged)" = true ] && [ "$(v $A2 .staged)" = true ] && [ "$(v $B1 .staged)" = false ] || t_fail "staged"
        [ "$(v $A1 '.mounts | join(",")')" = "$STG,$POD" ] || t_fail "mounts of A1: $(v $A1 .mounts)"
        [ "$(v $A2 '.mounts | length')" = 0 ] || t_fail "A2 is staged as a block device"
        [ "$(v $A1 .device)" = "$(devnum tvc-$A1)" ] || t_fail "device of A1"
        [ "$(v $A1 .limits.spec)" = v1/ri:300/wi:300 ] || t_fail "spec"
        [ "$(v $A1 .limits.resolved.readIOPS)" = 300 ] && [ "$(v $A1 .limits.inForce.writeIOPS)" = 300 ] ||
                t_fail "limits of A1: $(v $A1 .limits)"
        [ "$(v $A2 .limits.inForce.readIOPS)" = 0 ] || t_fail "A2 has no limit in force"
        [ "$(v $B1 .snapshots)" = 1 ] && [ "$(v $S1 .kind)" = snapshot ] || t_fail "snapshot of B1"
        local used
        used=$(df -B1 --output=used $STG | tail -1 | tr -d ' ')
        [ "$(v $A1 .usedBytes)" = "$used" ] || t_fail "used of A1: $(v $A1 .usedBytes) != df $used"
        [ "$(v $A1 .filesystem.inodesUsed)" = "$(df --output=iused $STG | tail -1 | tr -d ' ')" ] || t_fail "inodes used"
        [ "$(v $A1 .io.device)" = "$(basename "$(readlink /sys/dev/block/$(devnum tvc-$A1))")" ] || t_fail "io device"
        [ "$(v $A1 .io.writes)" -gt 0 ] || t_fail "mkfs wrote to A1 but no writes counted"

        local table
        table=$(adm volumes) || t_fail "volumes table"
        grep -E "^$A1 +volume +team-a .* 300/300 +yes +$STG,$POD\$" <<<"$table" >/dev/null || t_fail "A1 row: $table"
        grep -E "^$A2 +volume +team-a .* max +yes +block\$" <<<"$table" >/dev/null || t_fail "A2 row: $table"
        grep -E "^$C1 +volume +team-c .* - +no +no\$" <<<"$table" >/dev/null || t_fail "C1 row: $table"
}

test_allocated_grows_by_the_bytes_written_and_discard_returns_them() {
        local p chunk before after pool_before pool_after j
        p=$(json pool-before pool) || t_fail "pool"
        chunk=$(jcount .chunkBytes "$p")
        pool_before=$(jcount .dataUsedBytes "$p")
        [ "$chunk" -gt 0 ] || t_fail "chunk size"
        before=$(json inspect-a2-before inspect $A2 | $JQ .allocatedBytes)
        [ "$before" = "$(mapped_of $A2)" ] || t_fail "allocated $before != kernel $(mapped_of $A2)"
        # 8 MiB at 16 MiB into the mapping: whole chunks, away from the header
        dd if=/dev/urandom of=/dev/mapper/tvc-$A2 bs=1M seek=16 count=8 oflag=direct status=none || t_fail "dd"
        after=$(json inspect-a2-after inspect $A2 | $JQ .allocatedBytes)
        pool_after=$(json pool-after pool | $JQ .dataUsedBytes)
        local grew=$((after - before))
        [ "$grew" -ge $((8 * MiB)) ] && [ "$grew" -le $((8 * MiB + 2 * chunk)) ] ||
                t_fail "allocated grew by $grew for 8 MiB written (chunk $chunk)"
        [ $((pool_after - pool_before)) -ge $((8 * MiB)) ] || t_fail "pool data used grew by $((pool_after - pool_before))"
        blkdiscard -o $((16 * MiB)) -l $((8 * MiB)) /dev/mapper/tvc-$A2 || t_fail "blkdiscard"
        j=$(json inspect-a2-discarded inspect $A2) || t_fail "inspect"
        [ "$(jcount .allocatedBytes "$j")" -le $((before + chunk)) ] ||
                t_fail "after discard allocated is $(jcount .allocatedBytes "$j"), was $before before the write"
        [ "$(jcount .io.discards "$j")" -gt 0 ] && [ "$(jcount .io.writes "$j")" -gt 0 ] || t_fail "I/O not counted: $(jcount .io "$j")"
}

test_usage_sums_each_tenant_as_the_kernel_counts() {
        local j t
        dd if=/dev/urandom of=$STG/file bs=1M count=4 status=none && sync || t_fail "write a file"
        j=$(json usage usage) || t_fail "usage"
        u() { $JQ -r --arg t "$1" ".tenants[] | select(.tenant == \$t) | $2" <<<"$j"; }
        [ "$(jcount '[.tenants[].tenant] | join(",")' "$j")" = team-a,team-b,team-c ] || t_fail "tenants: $j"
        [ "$(u team-a .volumes)" = 2 ] && [ "$(u team-a .staged)" = 2 ] || t_fail "team-a counts"
        [ "$(u team-a .provisionedBytes)" = $((128 * MiB)) ] || t_fail "team-a provisioned"
        [ "$(u team-a .allocatedBytes)" = $(($(mapped_of $A1) + $(mapped_of $A2))) ] || t_fail "team-a allocated"
        [ "$(u team-a .usedBytes)" = "$(df -B1 --output=used $STG | tail -1 | tr -d ' ')" ] || t_fail "team-a used"
        [ "$(u team-a .usedBytes)" -ge $((4 * MiB)) ] || t_fail "team-a used below the 4 MiB written"
        [ "$(u team-b .volumes)" = 1 ] && [ "$(u team-b .snapshots)" = 1 ] || t_fail "team-b counts"
        [ "$(u team-b .provisionedBytes)" = $((32 * MiB)) ] || t_fail "team-b provisioned (snapshot apart)"
        [ "$(u team-b .snapshotAllocatedBytes)" = "$(mapped_of $S1)" ] || t_fail "team-b snapshot allocated"
        [ "$(u team-c .allocatedBytes)" = 0 ] && [ "$(u team-c .usedBytes)" = 0 ] || t_fail "team-c"
        [ "$(jcount .total.provisionedBytes "$j")" = $(((64 + 64 + 32 + 1024) * MiB)) ] || t_fail "total"
        adm usage | grep -E '^TOTAL +4 +2 ' >/dev/null || t_fail "table: $(adm usage)"
}

test_pool_shows_use_ratio_tenants_and_config_thresholds() {
        local j tp used total chunk virt
        j=$(json pool pool) || t_fail "pool"
        # the kernel: "0 LEN thin-pool TRANS META_USED/META_TOTAL DATA_USED/DATA_TOTAL ..."
        tp=$(dmsetup status $VG-pool-tpool)
        chunk=$(($(dmsetup table $VG-pool-tpool | awk '{print $6}') * 512))
        used=$(($(awk '{split($6, d, "/"); print d[1]}' <<<"$tp") * chunk))
        total=$(($(awk '{split($6, d, "/"); print d[2]}' <<<"$tp") * chunk))
        [ "$(jcount .chunkBytes "$j")" = $chunk ] || t_fail "chunk $(jcount .chunkBytes "$j") != $chunk"
        [ "$(jcount .dataUsedBytes "$j")" = $used ] || t_fail "data used $(jcount .dataUsedBytes "$j") != $used"
        [ "$(jcount .dataTotalBytes "$j")" = $total ] || t_fail "data total"
        virt=$(((64 + 64 + 32 + 1024 + 32) * MiB))
        [ "$(jcount .virtualBytes "$j")" = $virt ] || t_fail "virtual $(jcount .virtualBytes "$j")"
        /usr/bin/python3 -c "import sys; r=float(sys.argv[1]); e=$virt/$total; sys.exit(abs(r-e) > 1e-6)" \
                "$(jcount .overprovisionRatio "$j")" || t_fail "ratio $(jcount .overprovisionRatio "$j")"
        [ "$(jcount .volumes "$j")/$(jcount .snapshots "$j")/$(jcount .foreignLvs "$j")" = 4/1/0 ] || t_fail "counts"
        [ "$(jcount '.tenants[] | select(.tenant == "team-a") | .volumes' "$j")" = 2 ] || t_fail "volumes per tenant"
        [ "$(jcount .healthy "$j")" = true ] || t_fail "not healthy"
        adm pool | grep -q 'Thresholds  not shown' || t_fail "no note that thresholds need --config"

        echo '{"pool":{"maxDataPercent":80,"maxOverprovisionPercent":200},"tenants":{}}' >$D/config.json
        j=$(json pool-config pool --config $D/config.json) || t_fail "pool --config"
        [ "$(jcount .thresholds.maxDataPercent "$j")/$(jcount .thresholds.maxMetadataPercent "$j")" = 80/90 ] ||
                t_fail "thresholds: $(jcount .thresholds "$j")"
        [ "$(jcount .thresholds.overprovisionOver "$j")" = true ] || t_fail "ratio above 2x not flagged"
        [ "$(jcount .thresholds.dataOver "$j")" = false ] || t_fail "data flagged"
        adm pool --config $D/config.json | grep -E '^Ratio .*limit 2\.00x +OVER' >/dev/null ||
                t_fail "table: $(adm pool --config $D/config.json)"
        echo '{"pool":{"maxDataPercent":"x"}}' >$D/bad.json
        adm pool --config $D/bad.json >/dev/null 2>&1
        [ $? = 2 ] || t_fail "a bad config is not a usage error"
}

audit_expect_clean() {
        local out
        out=$(adm audit) || t_fail "audit not clean: $out"
        [[ "$out" == "clean: 5 thin LVs of $VG/pool checked" ]] || t_fail "audit: $out"
}
# audit_expect_finding NAME CHECK VOLUME REGEX...: exit status 1, and for
# each CHECK VOLUME REGEX triple a finding whose message matches
audit_expect_finding() {
        local name=$1 j rc
        shift
        j=$(json "audit-$name" audit)
        rc=$?
        [ $rc = 1 ] || t_fail "audit exit status $rc, expected 1: $j"
        [ "$(jcount .clean "$j")" = false ] || t_fail "not clean in JSON: $j"
        while [ $# -ge 3 ]; do
                $JQ -e --arg c "$1" --arg v "$2" --arg re "$3" \
                        '.findings | map(select(.check == $c and .volume == $v and (.message | test($re)))) | length == 1' \
                        <<<"$j" >/dev/null || t_fail "no $1 finding for $2 matching '$3': $j"
                shift 3
        done
}

test_audit_is_clean_on_a_pool_as_the_driver_leaves_it() {
        audit_expect_clean
        json audit-clean audit | $JQ -e '.clean == true and .findings == [] and .checked == 5' >/dev/null ||
                t_fail "json: $(cat $D/json/audit-clean.json)"
}

test_audit_finds_an_unencrypted_lv_in_the_pool() {
        local out
        lvm_ lvcreate -q -V 16M -T $VG/pool -n plain >/dev/null || t_fail "lvcreate"
        mkfs.ext4 -q /dev/$VG/plain || t_fail "mkfs"
        # also a thinvault-tagged volume written without LUKS
        vol tv-raw-5555555555555555 team-a 16 || t_fail "vol"
        mkfs.ext4 -q /dev/$VG/tv-raw-5555555555555555 || t_fail "mkfs raw"
        out=$(adm audit)
        [ $? = 1 ] || t_fail "audit exit status: $out"
        grep -qx "$VG/plain: unencrypted-lv: unencrypted LV in the pool: not made by thinvault (no tv. tags), holds ext4" <<<"$out" &&
                grep -qx "$VG/tv-raw-5555555555555555: unencrypted: the volume holds ext4, unencrypted" <<<"$out" &&
                grep -qx "2 findings in 7 thin LVs of $VG/pool" <<<"$out" || t_fail "audit: $out"
        lvm_ lvremove -q -f $VG/plain $VG/tv-raw-5555555555555555 >/dev/null || t_fail "lvremove"
        audit_expect_clean
}

test_audit_finds_a_token_tenant_that_is_not_the_tag_tenant() {
        lvm_ lvchange -q --deltag tv.tenant=team-b --addtag tv.tenant=team-x $VG/$B1 >/dev/null || t_fail "retag"
        audit_expect_finding tenant tenant-mismatch $B1 'token says tenant team-b, the tv.tenant tag says team-x$'
        lvm_ lvchange -q --deltag tv.tenant=team-x --addtag tv.tenant=team-b $VG/$B1 >/dev/null || t_fail "restore"
}

test_audit_finds_a_staged_volume_without_or_with_other_io_max() {
        local dev dev2
        dev=$(devnum tvc-$A1)
        dev2=$(devnum tvc-$A2)
        echo "$dev rbps=max wbps=max riops=max wiops=max" >$CG/io.max
        grep -q "^$dev " $CG/io.max && t_fail "io.max line not removed"
        audit_expect_finding missing io-max $A1 "^staged as $dev without its io.max limit: want riops=300 wiops=300"
        echo "$dev riops=500 wiops=300" >$CG/io.max
        # a limit on a volume that asks for none is a finding too
        echo "$dev2 wiops=50" >$CG/io.max
        audit_expect_finding other io-max $A1 "^io.max of $dev is riops=500 wiops=300 rbps=max wbps=max, want riops=300 wiops=300" \
                io-max $A2 "^io.max of $dev2 is riops=max wiops=50 rbps=max wbps=max, want unlimited$"
        echo "$dev riops=300 wiops=300" >$CG/io.max
        echo "$dev2 wiops=max" >$CG/io.max
        audit_expect_clean
}

test_inspect_shows_token_limits_mounts_and_tables_but_never_the_key() {
        local key out j
        # the key, as only the kernel and dmsetup --showkeys tell it
        key=$(dmsetup table --showkeys tvc-$A1 | awk '{print $5}')
        [ ${#key} -ge 64 ] || t_fail "no key from dmsetup: $key"
        out=$(adm inspect $A1) || t_fail "inspect"
        j=$(json inspect-a1 inspect $VG:$A1) || t_fail "inspect json"
        for o in "$out" "$j"; do
                grep -qi "$key" <<<"$o" && t_fail "the volume key is printed"
                grep -qi "${key:0:16}" <<<"$o" && t_fail "part of the volume key is printed"
        done
        grep -E "^ +0 [0-9]+ crypt aes-xts-plain64 <redacted> 0 " <<<"$out" >/dev/null || t_fail "crypt table: $out"
        grep -E "^ +0 $((64 * MiB / 512)) thin [0-9]+:[0-9]+ [0-9]+$" <<<"$out" >/dev/null || t_fail "thin table: $out"
        grep -q "thinvault token: tenant team-a, key fingerprint $(fingerprint $D/key-team-a)" <<<"$out" || t_fail "token: $out"
        grep -q "spec v1/ri:300/wi:300" <<<"$out" && grep -q "resolved riops=300 wiops=300 rbps=max wbps=max" <<<"$out" &&
                grep -q "in force riops=300 wiops=300 rbps=max wbps=max ($CG/io.max)" <<<"$out" || t_fail "limits: $out"
        grep -q "^Mounts      $STG\$" <<<"$out" && grep -q "^            $POD\$" <<<"$out" || t_fail "mounts: $out"
        grep -q "^Tags        tv\." <<<"$out" && grep -qE "^ *(Tags *)?tv.kind=volume$" <<<"$out" && grep -q "tv.pvc=team-a/claim-$A1" <<<"$out" || t_fail "tags: $out"
        [ "$($JQ -r .dmTables.crypt <<<"$j" | awk '{print $5}')" = "<redacted>" ] || t_fail "json crypt table: $j"
        [ "$($JQ -r .tags.tenant <<<"$j")" = team-a ] && [ "$($JQ -r .mappingOnLv <<<"$j")" = true ] || t_fail "json"
        # not staged: no crypt table, the thin one still
        out=$(adm inspect $S1) || t_fail "inspect snapshot"
        grep -q "^Staged      no" <<<"$out" && grep -q " thin " <<<"$out" || t_fail "snapshot: $out"
}

# The driver itself makes, formats and stages a volume; the admin commands
# read it the same way (tags, token, mapping name, io.max), plugin up or down.
test_admin_reads_a_volume_the_plugin_created_and_staged() {
        local V=tvadmp K=$D/kubelet S=$D/csi.sock out id stg
        mkdir -p $K
        "$CSI" --endpoint "unix://$S" --node-id node-a --vg $V --thin-pool pool --loop-file /tmp/$V.img \
                --loop-size 256M --kubelet-dir $K >/dev/null 2>>$D/csi.log &
        echo $! >$D/pid
        t_wait_socket $S 120 || t_fail "plugin did not start: $(tail -3 $D/csi.log)"
        ctl() { timeout 300 "$CTL" --endpoint "unix://$S" --timeout 290 "$@"; }
        out=$(ctl csi Controller.CreateVolume --json '{"name":"pvc-p1","capacityRange":{"requiredBytes":"33554432"},
                "volumeCapabilities":[{"mount":{"fsType":"ext4"},"accessMode":{"mode":"SINGLE_NODE_WRITER"}}],
                "parameters":{"csi.storage.k8s.io/pvc/namespace":"team-p","csi.storage.k8s.io/pvc/name":"claim","iops":"250"}}') ||
                t_fail "create: $out"
        id=$($JQ -r .volume.volumeId <<<"$out")
        stg=$K/plugins/kubernetes.io/csi/thinvault.csi.io/p1/globalmount
        mkdir -p "$(dirname $stg)"
        (umask 077 && printf '{"volumeId":"%s","stagingTargetPath":"%s","volumeCapability":{"mount":{"fsType":"ext4"},"accessMode":{"mode":"SINGLE_NODE_WRITER"}},"secrets":{"key":"%s"}}' \
                "$id" "$stg" "$(base64 -w0 $D/key-team-a)" >$D/req.json)
        ctl csi Node.NodeStageVolume --json @$D/req.json >/dev/null || t_fail "stage"
        kill -TERM "$(cat $D/pid)"
        for _ in $(seq 100); do kill -0 "$(cat $D/pid)" 2>/dev/null || break; sleep 0.2; done
        out=$(json volumes-plugin volumes --vg $V) || t_fail "volumes"
        [ "$($JQ -r '.volumes[0] | [.tenant, .encrypted, .staged, .limits.inForce.readIOPS, .mounts[0]] | join(" ")' <<<"$out")" = \
                "team-p true true 250 $stg" ] || t_fail "the plugin's volume: $out"
        out=$(adm audit --vg $V) || t_fail "audit of the plugin's pool: $out"
        local key
        key=$(dmsetup table --showkeys tvc-${id#*:} | awk '{print $5}')
        [ ${#key} -ge 64 ] || t_fail "the plugin's mapping has no key in its table: $key"
        out=$(adm inspect --vg $V "$id") || t_fail "inspect by id"
        grep -q "thinvault token: tenant team-p" <<<"$out" && grep -q " crypt aes-xts-plain64 <redacted> " <<<"$out" ||
                t_fail "inspect of the plugin's volume: $out"
        grep -qi "${key:0:16}" <<<"$out" && t_fail "the volume key of the plugin's volume is printed"
        umount $stg
        echo "$(devnum tvc-${id#*:}) riops=max wiops=max" >$CG/io.max
        cryptsetup close tvc-${id#*:}
}
# t_after runs outside the test's subshell: stop a plugin a test left running.
t_after() {
        local pid i
        pid=$(cat $D/pid 2>/dev/null) || return 0
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null
        rm -f $D/pid
}

t_run test_admin_commands_have_help_and_refuse_bad_usage
t_run test_volumes_shows_tenant_size_allocation_encryption_staging_and_iops
t_run test_allocated_grows_by_the_bytes_written_and_discard_returns_them
t_run test_usage_sums_each_tenant_as_the_kernel_counts
t_run test_pool_shows_use_ratio_tenants_and_config_thresholds
t_run test_audit_is_clean_on_a_pool_as_the_driver_leaves_it
t_run test_audit_finds_an_unencrypted_lv_in_the_pool
t_run test_audit_finds_a_token_tenant_that_is_not_the_tag_tenant
t_run test_audit_finds_a_staged_volume_without_or_with_other_io_max
t_run test_inspect_shows_token_limits_mounts_and_tables_but_never_the_key
t_run test_admin_reads_a_volume_the_plugin_created_and_staged
t_run test_every_json_output_parses

umount $POD $STG 2>/dev/null
cryptsetup close tvc-$A1 2>/dev/null
cryptsetup close tvc-$A2 2>/dev/null
pool_remove $VG
pool_remove tvadmp
t_summary
