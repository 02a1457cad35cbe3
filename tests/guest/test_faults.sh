#!/usr/bin/env bash
# Faults below the driver, against the real kernel and lvm2 in the guest:
# - an lvm2 command that hangs (its VG lock held by another process) is
#   killed after --lvm-timeout and reported as DEADLINE_EXCEEDED, while
#   the server keeps answering other calls; the retry then succeeds once;
# - a thin pool filling up: new volumes are refused (RESOURCE_EXHAUSTED)
#   at the --config data threshold, before the pool is full; when it is
#   full, a tenant's writes fail with an I/O error (not a hang: the pool
#   errors when full), and the plugin says so everywhere it reports:
#   Probe, NodeGetVolumeStats' volume condition, `thinvaultctl pool`;
#   unstage and delete still work and give the space back;
# - dm-error under the pool's data device (lvm2's VG-pool_tdata) while a
#   tenant writes: the tenant gets EIO at once, ext4 aborts its journal;
#   the pool itself does not notice (data errors go back to the bio, and
#   an empty flush to dm-error succeeds), so only the volume condition
#   says so (ext4's error count); with dm-error under the metadata device
#   too, the next commit fails the pool: Probe not ready, metrics and
#   `thinvaultctl pool` unhealthy, CreateVolume FAILED_PRECONDITION;
#   unstage and delete then fail in seconds with a message (the pool
#   stays failed in the kernel until an admin repairs it);
# - pool metadata filling (thin snapshots by pool message + writes, on
#   lvm2's smallest metadata): new volumes are refused (RESOURCE_EXHAUSTED)
#   at the maxMetadataPercent threshold;
# - pool metadata running out for real (2 MiB of metadata, 1 MiB extents;
#   fio writes 4 KiB into each 64 KiB chunk of a large thin LV: ~109k
#   mappings in ~20-40 s; past the tenant's chunks the pool's data device
#   is dm-zero so tmpfs holds nothing). What happens depends on the pool's
#   zeroing. Zeroed (-Zy, lvm2's default): the kernel switches the pool to
#   out-of-metadata-space mode ("ro", no needs_check, metadata shown
#   used == total); a tenant's rewrite of its own blocks works, a write to
#   new space is EIO; Probe, the volume condition, /metrics, `thinvaultctl
#   pool` and CreateVolume (FAILED_PRECONDITION) say "out of metadata
#   space ... lvextend --poolmetadatasize", and that command alone brings
#   the pool back to rw: new volumes and tenant writes work again. Not
#   zeroed (-Zn, what --loop-file makes): a sub-chunk write's mapping is
#   inserted after the switch to read-only, fails, and the kernel fails
#   the pool ("Fail": every I/O is EIO); the reports say failed and name
#   lvconvert --repair; lvextend --poolmetadatasize exits 0 but the kernel
#   refuses to grow a failed pool's metadata; deactivate, lvconvert
#   --repair, activate, extend: rw, the tenant stages and writes again;
# - NodeStageVolume on a device whose I/O blocks (the pool suspended):
#   the server keeps answering, the call and a concurrent retry finish
#   once the pool resumes, with one mapping and one mount;
# - a LUKS2 header with its primary copy zeroed still opens (libcryptsetup
#   reads the second copy); with both copies' checksums damaged, stage is
#   FAILED_PRECONDITION naming the damage, writes nothing, and delete
#   overwrites the header area and removes the LV.
set -uo pipefail
BUILD=${1:-$TV_BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/pool.sh"
D=/tmp/tv-faults
VG=tvfault
K=$D/kubelet
LOOP_SIZE=192M
. "$HERE/plugin.sh"
[ -f $D/key ] || head -c 32 /dev/urandom | base64 -w0 >$D/key
exec 3>&1
say() { echo "$@" >&3; }
# A failed check must not leave a device suspended (I/O to it would hang
# the cleanup and every later test).
t_after() {
        [ -s $D/resume ] && dmsetup resume "$(cat $D/resume)" 2>/dev/null
        rm -f $D/resume
        remove_leftovers
}
# quick_ctl SECONDS args...: ctl with a short deadline
quick_ctl() { local s=$1; shift; timeout $((s + 5)) "$CTL" --endpoint "unix://$SOCK" --timeout "$s" "$@"; }

pool_json() { "$CTL" pool --vg $VG --thin-pool pool -o json; }
pool_field() { pool_json | grep -o "\"$1\": [^,}]*" | sed 's/^[^:]*: //'; }
# elapsed_ms command...: runs it, prints how long it took
elapsed_ms() {
        local t0 t1
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000000))
}

test_hung_lvm2_call_times_out_is_reported_and_does_not_wedge_the_server() {
        local holder out err rc t0 t1 ms_id ms_info id
        PLUGIN_ARGS=(--lvm-timeout 5)
        start_plugin
        ctl csi Identity.Probe >/dev/null || t_fail "Probe"
        # Another process holds the VG's lvm2 lock, as a stuck lvm2 command
        # or an admin's interrupted one would.
        mkdir -p /run/lock/lvm
        flock /run/lock/lvm/V_$VG sleep 120 &
        holder=$!
        sleep 1
        flock -n /run/lock/lvm/V_$VG true && t_fail "the lock is not held: nothing tested"
        t0=$(date +%s)
        ( ctl csi Controller.CreateVolume --json "{\"name\":\"hung\",\"capacityRange\":{\"requiredBytes\":\"$((32 * MiB))\"},
                \"volumeCapabilities\":[$MOUNT_CAP],\"parameters\":{\"csi.storage.k8s.io/pvc/namespace\":\"team-a\"}}" \
                >$D/hung.out 2>$D/hung.err; echo $? >$D/hung.rc ) &
        sleep 1
        # While that call waits for lvm2, the server answers others.
        ms_id=$(elapsed_ms ctl csi Identity.GetPluginInfo)
        ms_info=$(elapsed_ms ctl csi Node.NodeGetInfo)
        say "    during the hung lvm2 call: GetPluginInfo $ms_id ms, NodeGetInfo $ms_info ms"
        [ "$ms_id" -lt 3000 ] && [ "$ms_info" -lt 3000 ] || t_fail "the server stalled behind the hung call"
        wait $!
        t1=$(date +%s)
        rc=$(cat $D/hung.rc)
        err=$(cat $D/hung.err)
        say "    CreateVolume returned after $((t1 - t0)) s: ${err:0:220}"
        [ "$rc" != 0 ] || t_fail "CreateVolume succeeded under a held VG lock"
        [[ "$err" == DEADLINE_EXCEEDED:* ]] || t_fail "expected DEADLINE_EXCEEDED, got: $err"
        [[ "$err" == *"did not finish within 5000 ms"* ]] || t_fail "the message does not say what timed out: $err"
        [ $((t1 - t0)) -lt 60 ] || t_fail "the time-out took $((t1 - t0)) s"
        grep -q 'msg="lvm2 timed out"' $D/csi.log || t_fail "no 'lvm2 timed out' log line"
        # flock's child (sleep) holds the lock too: end both.
        pkill -P $holder 2>/dev/null
        kill $holder 2>/dev/null
        wait $holder 2>/dev/null
        flock -n /run/lock/lvm/V_$VG true || t_fail "the lock is still held"
        # lvm2 commits atomically: the retry finds out and ends with one LV.
        id=$(create hung team-a) || t_fail "retry after the lock is gone"
        [ "$(lv_count "$(lv_of "$id")")" = 1 ] || t_fail "not one LV after the retry"
        delete "$id" >/dev/null || t_fail "delete"
}

test_pool_filling_up_is_refused_early_then_errors_writes_and_is_reported() {
        local id stg total fill pct err out ready
        echo '{"pool": {"maxDataPercent": 60}}' >$D/cfg.json
        PLUGIN_ARGS=(--config $D/cfg.json)
        start_plugin
        ctl csi Identity.Probe | grep -q '"ready": true' || t_fail "pool not ready at the start"
        total=$(pool_field dataTotalBytes)
        [ -n "$total" ] && [ "$total" -gt 0 ] || t_fail "no pool size: $(pool_json)"
        # Thin: a 1 GiB volume on a pool of a few hundred MiB.
        id=$(create big team-a '' $((1024 * MiB))) || t_fail "create"
        stage "$id" big $D/key >/dev/null || t_fail "stage"
        stg=$(staging_of big)
        fill=$((total * 65 / 100 / MiB))
        dd if=/dev/urandom of="$stg/fill" bs=1M count=$fill oflag=direct conv=fsync status=none || t_fail "fill to 65%"
        pct=$(pool_field dataPercent)
        say "    pool $((total / MiB)) MiB, after writing $fill MiB: data ${pct}%"
        awk -v p="$pct" 'BEGIN { exit !(p >= 60) }' || t_fail "pool at ${pct}%, not past the threshold"
        err=$(expect_status RESOURCE_EXHAUSTED "a new volume past the data threshold" create more team-a) || exit 1
        say "    new volume: ${err:0:200}"
        [[ "$err" == *60* ]] || t_fail "the message does not name the threshold: $err"
        [ "$(lv_count "tv-more-.*")" = 0 ] || t_fail "a refused create left an LV"

        # Full: the pool errors instead of queueing writes for a minute.
        if [ "$(pool_field errorWhenFull)" != true ]; then
                lvm_ lvchange -q --errorwhenfull y $VG/pool >/dev/null || t_fail "errorwhenfull"
        fi
        timeout 300 dd if=/dev/urandom of="$stg/fill2" bs=1M count=$((total / MiB)) oflag=direct conv=fsync status=none 2>$D/dd.err &&
                t_fail "writing past a full pool succeeded"
        say "    the tenant's write past the end: $(head -c 160 $D/dd.err)"
        [ "$(pool_field outOfDataSpace)" = true ] || t_fail "thinvaultctl pool does not say out of data space: $(pool_json)"
        [ "$(pool_field healthy)" = false ] || t_fail "thinvaultctl pool says healthy"
        out=$(ctl csi Identity.Probe) || t_fail "Probe"
        ready=$(jval ready <<<"$out")
        [ "$ready" != true ] || t_fail "Probe is ready on a full pool: $out"
        out=$(ctl csi Node.NodeGetVolumeStats --json "{\"volumeId\":\"$id\",\"volumePath\":\"$stg\"}") || t_fail "stats"
        grep -q '"abnormal": true' <<<"$out" || t_fail "volume condition not abnormal: $out"
        say "    volume condition: $(jval message <<<"$out" | head -c 200)"
        expect_status RESOURCE_EXHAUSTED "a new volume on a full pool" create more team-a >/dev/null

        # The way out: unstage, delete (crypto-erase + discard), space back.
        unstage "$id" big >/dev/null || t_fail "unstage on a full pool"
        delete "$id" >/dev/null || t_fail "delete on a full pool"
        [ "$(lv_count "$(lv_of "$id")")" = 0 ] || t_fail "LV left"
        pct=$(pool_field dataPercent)
        say "    after the delete: data ${pct}%, Probe: $(ctl csi Identity.Probe | tr -d '\n ' | head -c 80)"
        awk -v p="$pct" 'BEGIN { exit !(p < 10) }' || t_fail "space not given back: ${pct}%"
}


# ---- helpers for the tests below ------------------------------------------
# pool_nuke: take the VG away whatever state its pool is in (a failed or
# needs_check pool can refuse lvremove): remove its device-mapper devices
# and the loop device, so the next start_plugin builds a fresh one.
pool_nuke() {
        local dev i
        stop_plugin
        remove_leftovers
        lvm_ vgremove -q -f $VG >/dev/null 2>&1
        for i in 1 2 3; do
                for dev in $(dmsetup ls 2>/dev/null | awk '{print $1}' | grep "^$VG-"); do
                        dmsetup resume "$dev" >/dev/null 2>&1
                        dmsetup remove --force "$dev" >/dev/null 2>&1
                done
        done
        pool_remove $VG
}
tpool() { if dmsetup info $VG-pool-tpool >/dev/null 2>&1; then echo $VG-pool-tpool; else echo $VG-pool; fi; }
metrics_port() { grep -o 'msg="serving metrics" .* port=[0-9]*' $D/csi.log | tail -1 | sed 's/.*port=//'; }
pool_metrics() { curl -sS -m 120 "http://127.0.0.1:$(metrics_port)/metrics" | grep -E '^thinvault_pool_(up|healthy)'; }
# one_line: a command's output on one line, for the report
one_line() { tr -s '\n ' '  ' | head -c "${1:-300}"; }
report_plugin_view() { # ID STAGING
        local out
        say "    kernel: $(dmsetup status "$(tpool)" | cut -d' ' -f4-)"
        out=$(ctl csi Identity.Probe 2>&1)
        say "    Probe: $(one_line 240 <<<"$out")"
        PROBE=$out
        out=$(ctl csi Node.NodeGetVolumeStats --json "{\"volumeId\":\"$1\",\"volumePath\":\"$2\"}" 2>&1)
        STATS=$out
        say "    volume condition: $(grep -o '"abnormal": [a-z]*' <<<"$out") $(jval message <<<"$out" | head -c 240)"
        METRICS=$(pool_metrics)
        say "    metrics: $(one_line 200 <<<"$METRICS")"
        POOL=$(pool_json 2>&1)
        say "    thinvaultctl pool: $(grep -oE '"(healthy|failed|readOnly|needsCheck|outOfDataSpace)": [a-z]*' <<<"$POOL" | one_line)"
}

test_data_device_errors_under_io_are_eio_and_reported_then_bounded_recovery() {
        local id stg tdata table sz tmeta mtable msz out err rc t0 ddpid
        pool_nuke
        echo '{"pool": {"maxDataPercent": 90}}' >$D/cfg.json
        PLUGIN_ARGS=(--config $D/cfg.json --metrics-address 127.0.0.1:0 --lvm-timeout 60)
        start_plugin
        id=$(create dataerr team-a) || t_fail "create"
        stage "$id" dataerr $D/key >/dev/null || t_fail "stage"
        stg=$(staging_of dataerr)
        dd if=/dev/urandom of="$stg/before" bs=1M count=4 oflag=direct conv=fsync status=none || t_fail "write"
        # The pool's data device is lvm2's VG-pool_tdata (linear on the PV):
        # swap its table for dm-error while the tenant writes.
        tdata=$VG-pool_tdata
        table=$(dmsetup table $tdata) || t_fail "no $tdata"
        sz=$(dmsetup table $tdata | awk '{s += $2} END {print s}')
        t0=$(date +%s)
        ( timeout 120 dd if=/dev/urandom of="$stg/during" bs=64k count=400 oflag=direct conv=fsync status=none \
                2>$D/dd.err; echo $? >$D/dd.rc ) &
        ddpid=$!
        sleep 0.5
        dmsetup reload $tdata --table "0 $sz error" || t_fail "reload error table"
        dmsetup resume $tdata || t_fail "resume"
        wait $ddpid
        rc=$(cat $D/dd.rc)
        say "    tenant's write during the fault: status $rc after $(($(date +%s) - t0)) s: $(head -c 160 $D/dd.err)"
        [ "$rc" != 0 ] || t_fail "the write succeeded on an error data device"
        [ "$rc" != 124 ] || t_fail "the write hung (killed by timeout)"
        out=$(timeout 60 dd if="$stg/before" of=/dev/null bs=1M iflag=direct status=none 2>&1)
        rc=$?
        say "    tenant's read of old data: status $rc: ${out:0:160}"
        [ "$rc" != 0 ] && [ "$rc" != 124 ] || t_fail "read: status $rc (expected an I/O error, not success or a hang)"
        # The pool itself has not noticed yet: data I/O errors go back to
        # the bio. The file system has (its journal aborted).
        sleep 2
        say "  before any metadata commit:"
        report_plugin_view "$id" "$stg"
        grep -q '"abnormal": true' <<<"$STATS" || t_fail "volume condition not abnormal after the file system's I/O errors"
        # A metadata commit flushes the data device first, but device-mapper
        # completes an empty flush to a dm-error target without sending it
        # there: a CreateVolume (lvcreate's create_thin message) commits and
        # the pool stays read-write, so the new volume is made.
        t0=$(date +%s)
        out=$(create dataerr2 team-a 2>&1)
        say "    a new volume with the data device failing ($(($(date +%s) - t0)) s): status $? ${out:0:200}"
        say "    kernel after that commit: $(dmsetup status "$(tpool)" | cut -d' ' -f4-)"

        # The metadata device failing too: the next commit fails, the
        # kernel gives up on the pool.
        tmeta=$VG-pool_tmeta
        mtable=$(dmsetup table $tmeta) || t_fail "no $tmeta"
        msz=$(dmsetup table $tmeta | awk '{s += $2} END {print s}')
        dmsetup reload $tmeta --table "0 $msz error" && dmsetup resume $tmeta || t_fail "error table on $tmeta"
        t0=$(date +%s)
        err=$(create dataerr3 team-a 2>&1 >/dev/null) && t_fail "CreateVolume succeeded with a failing metadata device"
        say "    a new volume with the metadata device failing ($(($(date +%s) - t0)) s): ${err:0:300}"
        say "  after it:"
        report_plugin_view "$id" "$stg"
        dmsetup status "$(tpool)" | grep -qE ' (ro|Fail)( |$)|needs_check|^[0-9]+ [0-9]+ thin-pool Fail' ||
                t_fail "the kernel still reports the pool read-write"
        grep -q '"ready": true' <<<"$PROBE" && t_fail "Probe says ready on a failed pool"
        grep -q '"abnormal": true' <<<"$STATS" || t_fail "volume condition not abnormal"
        grep -q '^thinvault_pool_healthy.* 0$' <<<"$METRICS" || [ -z "$(grep '^thinvault_pool_up.* 1$' <<<"$METRICS")" ] ||
                t_fail "metrics say up and healthy: $METRICS"
        grep -q '"healthy": true' <<<"$POOL" && t_fail "thinvaultctl pool says healthy: $POOL"
        t0=$(date +%s)
        err=$(expect_status FAILED_PRECONDITION "a new volume on a failed pool" create dataerr4 team-a) || exit 1
        say "    the next new volume ($(($(date +%s) - t0)) s): ${err:0:300}"
        [ "$(lv_count "tv-dataerr4-.*")" = 0 ] || t_fail "a refused create left an LV"
        dmsetup reload $tmeta --table "$mtable" && dmsetup resume $tmeta || t_fail "restore $tmeta"

        # Restore the table: data I/O works again, the pool stays as the
        # kernel left it until an admin repairs it.
        dmsetup reload $tdata --table "$table" && dmsetup resume $tdata || t_fail "restore the table"
        say "    after restoring the data device: $(dmsetup status "$(tpool)" | cut -d' ' -f4-)"
        t0=$(date +%s)
        out=$(unstage "$id" dataerr 2>&1)
        rc=$?
        say "    unstage: status $rc in $(($(date +%s) - t0)) s ${out:0:200}"
        # The LUKS header cannot be read through the failed pool, but the
        # mapping is still the plugin's to close (by its dm uuid).
        [ "$rc" = 0 ] || t_fail "unstage on a failed pool: status $rc: ${out:0:300}"
        [ -z "$(dmsetup ls | grep "^$(map_of "$id")")" ] || t_fail "mapping left after unstage on a failed pool"
        t0=$(date +%s)
        out=$(delete "$id" 2>&1)
        rc=$?
        say "    delete: status $rc in $(($(date +%s) - t0)) s: ${out:0:300}"
        # Nothing can be read, so nothing is erased: refused, not removed.
        [[ "$out" == FAILED_PRECONDITION* ]] || t_fail "delete on a failed pool: ${out:0:300}"
        [ "$(lv_count "tv-dataerr-.*")" = 1 ] || t_fail "the unerased volume was removed"
        [ $(($(date +%s) - t0)) -lt 150 ] || t_fail "delete took $(($(date +%s) - t0)) s"
        pool_nuke
}

test_metadata_threshold_refuses_new_volumes_before_metadata_fills() {
        local id raw lv dev devid st used total pct n t0 err rc out stg
        pool_nuke
        # lvm2's smallest pool metadata (2 MiB = 512 blocks of 4 KiB).
        truncate -s 192M /tmp/$VG.img
        dev=$(losetup --find --show /tmp/$VG.img) || t_fail "losetup"
        lvm_ vgcreate -q $VG "$dev" >/dev/null || t_fail "vgcreate"
        lvm_ lvcreate -q --type thin-pool -L 160M --poolmetadatasize 2M --chunksize 64k -Zn \
                -n pool $VG >/dev/null || t_fail "lvcreate pool"
        lvm_ lvchange -q --errorwhenfull y $VG/pool >/dev/null || t_fail "errorwhenfull"
        st=$(dmsetup status $VG-pool | cut -d' ' -f5)
        used=${st%/*}
        total=${st#*/}
        say "    fresh pool: metadata $used of $total blocks (4 KiB) used"
        PLUGIN_ARGS=(--metrics-address 127.0.0.1:0)
        start_plugin
        # A tenant's volume, staged; and a raw one the test writes to.
        id=$(create metat team-a) || t_fail "create"
        stage "$id" metat $D/key >/dev/null || t_fail "stage"
        stg=$(staging_of metat)
        raw=$(create meta team-a) || t_fail "create"
        lv=$(lv_of "$raw")
        st=$(dmsetup status "$(tpool)" | cut -d' ' -f5)
        used=${st%/*}
        pct=$(((used + 30) * 100 / total + 1))
        say "    metadata: $used of $total blocks used with two volumes; maxMetadataPercent $pct"
        echo "{\"pool\": {\"maxMetadataPercent\": $pct}}" >$D/cfg.json
        PLUGIN_ARGS=(--config $D/cfg.json --metrics-address 127.0.0.1:0)
        start_plugin
        out=$(create meta2 team-a) || t_fail "create below the threshold"
        delete "$out" >/dev/null || t_fail "delete"
        devid=$(dmsetup table $VG-$(sed 's/-/--/g' <<<"$lv") | awk '{print $5}')
        [ -n "$devid" ] || t_fail "no thin device id"
        # Metadata grows without lvm2 (one lvcreate takes seconds): a thin
        # snapshot by pool message, then a 4 KiB write to the origin breaks
        # the sharing of its btree path (a few metadata blocks each time).
        t0=$(date +%s)
        n=0
        while [ $n -lt 2000 ] && [ $(($(date +%s) - t0)) -lt 150 ] && [ "${REFUSED:-0}" -lt 3 ]; do
                dmsetup message "$(tpool)" 0 "create_snap $((1000 + n)) $devid" 2>$D/msg.err || break
                dd if=/dev/urandom of=/dev/$VG/$lv bs=4k count=1 seek=$((n * 37 % 8000)) oflag=direct \
                        status=none 2>$D/w.err || break
                n=$((n + 1))
                [ -n "${REFUSED:-}" ] && REFUSED=$((REFUSED + 1))
                if [ $((n % 10)) = 0 ]; then
                        st=$(dmsetup status "$(tpool)" | cut -d' ' -f5)
                        [ -z "${REFUSED:-}" ] && [ $((${st%/*} * 100)) -ge $((pct * total)) ] && {
                                REFUSED=0
                                say "    past the threshold after $n snapshots+writes ($(($(date +%s) - t0)) s): metadata $st"
                                err=$(expect_status RESOURCE_EXHAUSTED "a new volume past the metadata threshold" \
                                        create more team-a) || exit 1
                                say "    new volume: ${err:0:240}"
                                [[ "$err" == *metadata* ]] || t_fail "the message does not say metadata: $err"
                                [ "$(lv_count "tv-more-.*")" = 0 ] || t_fail "a refused create left an LV"
                        }
                fi
        done
        [ -n "${REFUSED:-}" ] || t_fail "the threshold was never reached ($n rounds)"
        unset REFUSED
        say "    stopped after $n rounds in $(($(date +%s) - t0)) s: message: $(head -c 160 $D/msg.err) write: $(head -c 160 $D/w.err)"
        say "    metadata now: $(dmsetup status "$(tpool)" | cut -d' ' -f4-)"
        dmesg | grep -iE 'thin|metadata' | tail -4 | sed 's/^/    dmesg: /' >&3
        out=$(timeout 60 dd if=/dev/urandom of="$stg/x" bs=64k count=20 oflag=direct conv=fsync status=none 2>&1)
        rc=$?
        say "    tenant's write now: status $rc ${out:0:160}"
        report_plugin_view "$id" "$stg"
        pool_nuke
}

# meta_status: the thin pool's "used/total" metadata blocks (kernel status)
meta_status() { dmsetup status "$(tpool)" | cut -d' ' -f5; }
# pool_mode: rw, ro or out_of_data_space, then needs_check or - (kernel status)
pool_mode() { dmsetup status "$(tpool)" | awk '{print $8, $11}'; }
# soft CONDITION-DESCRIPTION command...: record a failed check, go on (the
# test reports everything it saw, then fails with the list)
soft() {
        local what=$1
        shift
        "$@" || { SOFT_FAILS+="; $what"; say "    CHECK FAILED: $what"; }
}

# metafull_setup ZERO: a pool with lvm2's smallest metadata, 2 MiB = 512
# blocks of 4 KiB (1 MiB extents, so it is not rounded up), on a large
# pool of 64 KiB chunks, zeroed or not (y/n): a 4 KiB write to a new chunk
# is one new mapping. An admin's thin LV, filler, to fill the metadata
# with; a tenant's volume, staged, with data (ID, STG, BEFORE_SUM).
metafull_setup() {
        local dev
        pool_nuke
        truncate -s 8800M /tmp/$VG.img
        dev=$(losetup --find --show /tmp/$VG.img) || t_fail "losetup"
        lvm_ vgcreate -q -s 1M $VG "$dev" >/dev/null || t_fail "vgcreate"
        lvm_ lvcreate -q --type thin-pool -L 8G --poolmetadatasize 2M --chunksize 64k -Z "$1" \
                -n pool $VG >/dev/null 2>&1 || t_fail "lvcreate pool"
        lvm_ lvchange -q --errorwhenfull y $VG/pool >/dev/null || t_fail "errorwhenfull"
        lvm_ lvcreate -q -V 8G -T $VG/pool -n filler >/dev/null 2>&1 || t_fail "lvcreate filler"
        say "    fresh pool (zeroing $1): metadata $(meta_status) blocks, $(df -m /tmp | awk 'NR == 2 {print $4}') MiB free in /tmp"
        PLUGIN_ARGS=(--metrics-address 127.0.0.1:0)
        start_plugin
        ID=$(create metafull team-a) || t_fail "create"
        stage "$ID" metafull $D/key >/dev/null || t_fail "stage"
        STG=$(staging_of metafull)
        dd if=/dev/urandom of="$STG/before" bs=64k count=16 oflag=direct conv=fsync status=none || t_fail "write"
        BEFORE_SUM=$(dd if="$STG/before" bs=64k skip=1 status=none | sha256sum)
        # Past what is written so far (the tenant's chunks are the pool's
        # first), the pool's data device drops writes and reads zeros
        # (dm-zero): zeroing a 64 KiB chunk is a real write, which tmpfs
        # would have to hold.
        local t
        t=$(dmsetup table $VG-pool_tdata) || t_fail "no $VG-pool_tdata"
        set -- $t
        [ "$#" = 5 ] && [ "$3" = linear ] || t_fail "pool data is not one linear segment: $t"
        [ "$(dmsetup status "$(tpool)" | cut -d' ' -f6 | cut -d/ -f1)" -lt 512 ] || t_fail "the tenant holds more than 32 MiB"
        printf '0 65536 linear %s %s\n65536 %s zero\n' "$4" "$5" $(($2 - 65536)) | dmsetup reload $VG-pool_tdata &&
                dmsetup resume $VG-pool_tdata || t_fail "dm-zero under the pool's data"
}
# metafull_fill: mappings, not data: fio writes 4 KiB at the start of
# every 64 KiB chunk of filler until the pool refuses (FIO_RC, SECS).
metafull_fill() {
        local t0 d0 d1 st
        d0=$(dmsetup status "$(tpool)" | cut -d' ' -f6)
        t0=$(date +%s)
        fio --name=m --filename=/dev/$VG/filler --rw=write:60k --bs=4k --direct=1 --ioengine=libaio \
                --iodepth=16 --size=8G >$D/fio.out 2>&1
        FIO_RC=$?
        SECS=$(($(date +%s) - t0))
        d1=$(dmsetup status "$(tpool)" | cut -d' ' -f6)
        st=$(meta_status)
        say "    fio status $FIO_RC after $SECS s: data chunks ${d0%/*} -> ${d1%/*}, metadata ${st:-?}, $(df -m /tmp | awk 'NR == 2 {print $3}') MiB of /tmp used"
        say "    fio: $(grep -m1 -E 'io_u error' $D/fio.out | one_line 200); $(grep -m1 -oE 'WRITE: bw=[^,]*, [^,]*, io=[^ ]*' $D/fio.out)"
        say "    kernel: $(dmsetup status "$(tpool)" | cut -d' ' -f4-)"
        dmesg | grep -iE 'thin|metadata' | tail -8 | sed 's/^/    dmesg: /' >&3
}
# metafull_tenant_writes: what the staged tenant sees (REWRITE_RC, NEW_RC)
# metafull_write_again FILE WHEN: the tenant writes 1 MiB to a new file
# FILE once the pool is back (WHEN words it: "after the repair"); a soft
# failure if it cannot
metafull_write_again() {
        local out rc
        out=$(timeout 60 dd if=/dev/urandom of="$STG/$1" bs=64k count=16 oflag=direct conv=fsync status=none 2>&1)
        rc=$?
        say "    tenant writes $2: status $rc $(one_line 200 <<<"$out")"
        soft "tenant writes $2" [ "$rc" = 0 ]
}
# metafull_finish: the tenant's data from before the fill is intact; then
# everything goes, and the test fails if any soft check did
metafull_finish() {
        soft "the tenant's old data is intact" [ "$(dd if="$STG/before" bs=64k skip=1 status=none | sha256sum)" = "$BEFORE_SUM" ]
        unstage "$ID" metafull >/dev/null 2>&1
        delete "$ID" >/dev/null 2>&1
        pool_nuke
        [ -z "$SOFT_FAILS" ] || t_fail "failed checks${SOFT_FAILS}"
}

metafull_tenant_writes() {
        local out t0 fs_err
        out=$(timeout 60 dd if=/dev/urandom of="$STG/before" bs=64k count=1 conv=notrunc oflag=direct status=none 2>&1)
        REWRITE_RC=$?
        say "    tenant rewrites a block it has: status $REWRITE_RC ${out:0:160}"
        t0=$(date +%s)
        out=$(timeout 120 dd if=/dev/urandom of="$STG/new" bs=64k count=64 oflag=direct conv=fsync status=none 2>&1)
        NEW_RC=$?
        say "    tenant writes a new file: status $NEW_RC after $(($(date +%s) - t0)) s: $(one_line 200 <<<"$out")"
        sleep 1
        fs_err=$(cat /sys/fs/ext4/"$(basename "$(readlink -f /sys/dev/block/"$(devnum "$(map_of "$ID")")")")"/errors_count 2>/dev/null)
        say "    tenant's ext4 errors_count: ${fs_err:-?}, mount $(grep " $STG " /proc/self/mountinfo | awk '{print $6}'); dmesg: $(dmesg | grep -i 'ext4' | tail -3 | one_line 300)"
}

test_metadata_exhaustion_zeroed_pool_goes_read_only_and_extending_metadata_recovers() {
        local st mode out err rc t0
        SOFT_FAILS=
        metafull_setup y
        metafull_fill
        mode=$(pool_mode)
        st=$(meta_status)
        soft "fio stopped on an error" [ "$FIO_RC" != 0 ]
        soft "the kernel reports the pool ro (got: $mode)" [ "${mode% *}" = ro ]
        soft "no needs_check after running out of metadata (got: $mode)" [ "${mode#* }" = - ]
        soft "status shows metadata used == total ($st)" [ "${st%/*}" = "${st#*/}" ]
        metafull_tenant_writes
        soft "a tenant's write to new space fails" [ "$NEW_RC" != 0 ]
        soft "it fails, not hangs" [ "$NEW_RC" != 124 ]
        soft "a tenant's rewrite of a block it has works" [ "$REWRITE_RC" = 0 ]
        report_plugin_view "$ID" "$STG"
        # Probe's answer has no message: its reason goes to the log.
        out=$(grep 'msg="not ready"' $D/csi.log | tail -1)
        say "    Probe's log line: ${out:0:400}"
        soft "Probe not ready" eval '! grep -q "\"ready\": true" <<<"$PROBE"'
        soft "Probe's reason says out of metadata space" eval 'grep -q "out of metadata space" <<<"$out"'
        soft "Probe's reason says lvextend --poolmetadatasize" eval 'grep -q "lvextend --poolmetadatasize" <<<"$out"'
        soft "Probe's reason does not send the admin to lvconvert --repair" eval '! grep -q "lvconvert --repair" <<<"$out"'
        soft "volume condition abnormal" eval 'grep -q "\"abnormal\": true" <<<"$STATS"'
        soft "volume condition says extend the metadata" eval 'grep -q "out of metadata space.*lvextend --poolmetadatasize" <<<"$STATS"'
        soft "metrics: out of metadata space" eval 'grep -q "^thinvault_pool_out_of_metadata_space.* 1$" <<<"$(curl -sS -m 120 "http://127.0.0.1:$(metrics_port)/metrics")"'
        soft "metrics: pool not healthy" eval 'grep -q "^thinvault_pool_healthy.* 0$" <<<"$METRICS"'
        soft "thinvaultctl pool: outOfMetadataSpace" eval 'grep -q "\"outOfMetadataSpace\": true" <<<"$POOL"'
        say "    thinvaultctl pool (text): $("$CTL" pool --vg $VG --thin-pool pool 2>&1 | grep -iE 'thin pool|metadata' | one_line 400)"
        err=$(create metafull2 team-a 2>&1 >/dev/null)
        say "    a new volume: status $?: ${err:0:400}"
        soft "CreateVolume FAILED_PRECONDITION" eval '[[ "$err" == FAILED_PRECONDITION:* ]]'
        soft "CreateVolume says out of metadata space" eval '[[ "$err" == *"out of metadata space"* ]]'
        soft "no LV left by a refused create" [ "$(lv_count "tv-metafull2-.*")" = 0 ]

        # The way out: more metadata space.
        t0=$(date +%s)
        out=$(lvm_ lvextend -q --poolmetadatasize +2M $VG/pool 2>&1)
        rc=$?
        say "    lvextend --poolmetadatasize +2M: status $rc in $(($(date +%s) - t0)) s: $(grep -v WARNING <<<"$out" | one_line 300)"
        say "    kernel: $(dmsetup status "$(tpool)" | cut -d' ' -f4-)"
        dmesg | grep -iE 'thin|metadata' | tail -3 | sed 's/^/    dmesg: /' >&3
        soft "lvextend --poolmetadatasize works on the pool" [ "$rc" = 0 ]
        mode=$(pool_mode)
        soft "the pool is rw after extending its metadata (got: $mode)" [ "$mode" = "rw -" ]
        report_plugin_view "$ID" "$STG"
        soft "Probe ready after the extension" eval 'grep -q "\"ready\": true" <<<"$PROBE"'
        out=$(create metafull3 team-a 2>&1)
        rc=$?
        say "    a new volume after the extension: status $rc ${out:0:200}"
        soft "CreateVolume after the extension" [ "$rc" = 0 ]
        [ "$rc" = 0 ] && { delete "$out" >/dev/null || soft "delete it" false; }
        out=$(timeout 60 dd if=/dev/urandom of="$STG/after" bs=64k count=16 oflag=direct conv=fsync status=none 2>&1)
        rc=$?
        say "    tenant writes a new file after the extension: status $rc $(one_line 200 <<<"$out")"
        out=$(unstage "$ID" metafull 2>&1) || soft "unstage ($out)" false
        out=$(stage "$ID" metafull $D/key 2>&1) || soft "stage again ($out)" false
        out=$(ctl csi Node.NodeGetVolumeStats --json "{\"volumeId\":\"$ID\",\"volumePath\":\"$STG\"}" 2>&1)
        say "    restaged: volume condition $(grep -o '"abnormal": [a-z]*' <<<"$out") $(jval message <<<"$out" | head -c 240)"
        metafull_write_again after2 "after restaging"
        metafull_finish
}

test_metadata_exhaustion_unzeroed_pool_fails_and_needs_a_repair() {
        local st out err rc t0
        SOFT_FAILS=
        metafull_setup n
        metafull_fill
        soft "fio stopped on an error" [ "$FIO_RC" != 0 ]
        st=$(dmsetup status "$(tpool)" | cut -d' ' -f4)
        soft "the kernel failed the pool (got: $st)" [ "$st" = Fail ]
        metafull_tenant_writes
        soft "a tenant's rewrite fails too" [ "$REWRITE_RC" != 0 ]
        soft "a tenant's write to new space fails" [ "$NEW_RC" != 0 ]
        soft "it fails, not hangs" [ "$NEW_RC" != 124 ]
        report_plugin_view "$ID" "$STG"
        soft "Probe not ready" eval '! grep -q "\"ready\": true" <<<"$PROBE"'
        soft "volume condition names the repair" eval 'grep -q "lvconvert --repair" <<<"$STATS"'
        soft "thinvaultctl pool: failed" eval 'grep -q "\"failed\": true" <<<"$POOL"'
        err=$(create metafull2 team-a 2>&1 >/dev/null)
        say "    a new volume: status $?: ${err:0:400}"
        soft "CreateVolume FAILED_PRECONDITION" eval '[[ "$err" == FAILED_PRECONDITION:* ]]'
        soft "CreateVolume names the repair" eval '[[ "$err" == *"lvconvert --repair"* ]]'
        # lvm2 grows the metadata LV and reports success; the kernel does
        # not take it: a failed pool's metadata grows only after a repair.
        out=$(lvm_ lvextend -q --poolmetadatasize +2M $VG/pool 2>&1)
        rc=$?
        say "    lvextend --poolmetadatasize +2M: status $rc: $(grep -v WARNING <<<"$out" | one_line 300)"
        say "    kernel: $(dmsetup status "$(tpool)" | cut -d' ' -f4-); dmesg: $(dmesg | grep -i 'thin' | tail -1 | one_line 200)"
        st=$(dmsetup status "$(tpool)" | cut -d' ' -f4)
        soft "the pool is still failed after lvextend (got: $st)" [ "$st" = Fail ]
        soft "the kernel says it grows the metadata only after a repair" eval \
                'dmesg | grep -q "unable to grow the metadata device until repaired"'
        # The repair: nothing may hold the pool open.
        umount "$STG" 2>/dev/null
        dmsetup remove "$(map_of "$ID")" 2>/dev/null
        stop_plugin
        t0=$(date +%s)
        out=$(lvm_ lvchange -q -an $VG 2>&1)
        say "    lvchange -an: status $? $(grep -v WARNING <<<"$out" | one_line 200)"
        out=$(lvm_ lvconvert -q -y --repair $VG/pool 2>&1)
        rc=$?
        say "    lvconvert --repair: status $rc in $(($(date +%s) - t0)) s: $(grep -v WARNING <<<"$out" | one_line 400)"
        out=$(lvm_ lvchange -q -ay $VG 2>&1)
        say "    lvchange -ay $VG: status $? $(grep -v WARNING <<<"$out" | one_line 200)"
        say "    kernel after the repair: $(dmsetup status "$(tpool)" 2>&1 | cut -d' ' -f4-)"
        soft "lvconvert --repair" [ "$rc" = 0 ]
        out=$(lvm_ lvextend -q --poolmetadatasize +2M $VG/pool 2>&1)
        say "    lvextend --poolmetadatasize +2M after it: status $? $(grep -v WARNING <<<"$out" | one_line 200)"
        say "    kernel: $(dmsetup status "$(tpool)" 2>&1 | cut -d' ' -f4-)"
        st=$(pool_mode)
        soft "the pool is rw after repair and extension (got: $st)" [ "${st% *}" = rw ]
        start_plugin
        out=$(ctl csi Identity.Probe 2>&1)
        say "    Probe: $(one_line 300 <<<"$out")"
        soft "Probe ready after repair and extension" eval 'grep -q "\"ready\": true" <<<"$out"'
        out=$(stage "$ID" metafull $D/key 2>&1)
        rc=$?
        say "    stage again: status $rc $(one_line 300 <<<"$out")"
        soft "stage after the repair" [ "$rc" = 0 ]
        metafull_write_again after "after the repair"
        metafull_finish
}

# luks_hdr_size DEV: the LUKS2 binary header's hdr_size (where the second
# header starts)
luks_hdr_size() { printf '%d' "0x$(od -An -tx1 -j8 -N8 "$1" | tr -d ' \n')"; }

test_stage_on_a_blocked_device_keeps_the_server_answering_and_converges() {
        local id dmdev t0 ms_id ms_info ms_probe rc1 rc2 i
        rm -f $D/s1.rc $D/s2.rc
        start_plugin
        id=$(create hang team-a) || t_fail "create"
        # I/O to the (empty) thin LV waits for the pool's worker, which does
        # not run while the pool is suspended: libblkid and libcryptsetup,
        # in the plugin's process, wait in the kernel. (Suspending the LV
        # itself would make lvm2 report it inactive.)
        dmdev=$(tpool)
        echo $dmdev >$D/resume
        dmsetup suspend $dmdev || t_fail "suspend"
        # Whatever blocks below, the pool comes back after 30 s.
        ( sleep 30; dmsetup resume $dmdev ) >/dev/null 2>&1 &
        t0=$(date +%s)
        ( stage "$id" hang $D/key >$D/s1.out 2>$D/s1.err; echo $? >$D/s1.rc ) >/dev/null 2>&1 &
        sleep 3
        ( stage "$id" hang $D/key >$D/s2.out 2>$D/s2.err; echo $? >$D/s2.rc ) >/dev/null 2>&1 &
        sleep 2
        say "    the pool suspended, two NodeStageVolume calls waiting"
        ms_id=$(elapsed_ms quick_ctl 20 csi Identity.GetPluginInfo)
        say "    meanwhile GetPluginInfo $ms_id ms"
        ms_info=$(elapsed_ms quick_ctl 20 csi Node.NodeGetInfo)
        say "    NodeGetInfo $ms_info ms"
        ms_probe=$(elapsed_ms quick_ctl 40 csi Identity.Probe)
        say "    Probe $ms_probe ms"
        [ "$ms_id" -lt 3000 ] && [ "$ms_info" -lt 3000 ] || t_fail "the server stalled behind the blocked stage"
        [ -f $D/s1.rc ] && t_fail "the stage finished on a suspended device: $(cat $D/s1.err)"
        sleep 3
        dmsetup resume $dmdev || t_fail "resume"
        for i in $(seq 120); do [ -f $D/s1.rc ] && [ -f $D/s2.rc ] && break; sleep 1; done
        [ -f $D/s1.rc ] && [ -f $D/s2.rc ] || t_fail "a stage still runs 120 s after the resume"
        rc1=$(cat $D/s1.rc) rc2=$(cat $D/s2.rc)
        say "    after resume ($(($(date +%s) - t0)) s): first stage status $rc1 $(head -c 160 $D/s1.err); retry status $rc2 $(head -c 200 $D/s2.err)"
        [ "$rc1" = 0 ] || [ "$rc2" = 0 ] || t_fail "neither stage succeeded"
        stage "$id" hang $D/key >/dev/null || t_fail "a later retry"
        [ "$(dmsetup ls | grep -c "^$(map_of "$id")\s")" = 1 ] || t_fail "not one mapping: $(dmsetup ls)"
        [ "$(grep -c " $(staging_of hang) " /proc/self/mountinfo)" = 1 ] || t_fail "not one mount"
        unstage "$id" hang >/dev/null || t_fail "unstage"
        delete "$id" >/dev/null || t_fail "delete"
}

test_corrupt_luks_header_is_a_clear_refusal_that_changes_nothing() {
        local id lv dev hs err before after key out
        start_plugin
        id=$(create corrupt team-a) || t_fail "create"
        lv=$(lv_of "$id")
        dev=/dev/$VG/$lv
        stage "$id" corrupt $D/key >/dev/null || t_fail "stage"
        unstage "$id" corrupt >/dev/null || t_fail "unstage"
        key=$(cat $D/key)
        hs=$(luks_hdr_size $dev)
        # 1. The primary header's magic and binary header gone: libcryptsetup
        # reads the second copy.
        cp /dev/null $D/c1.err
        dd if=/dev/zero of=$dev bs=512 count=1 conv=notrunc oflag=direct status=none || t_fail "zero"
        err=$(stage "$id" corrupt $D/key 2>&1 >/dev/null)
        say "    primary header zeroed: stage status $? ${err:0:240}"
        [[ "$err" == INTERNAL:* ]] && t_fail "INTERNAL: $err"
        [[ "$err" == *"$key"* ]] && t_fail "key material in the message"
        unstage "$id" corrupt >/dev/null 2>&1
        # 2. Both headers' checksums damaged (the magic stays: blkid still
        # sees LUKS2, libcryptsetup cannot load either copy).
        for off in $((0x1c0)) $((hs + 0x1c0)); do
                dd if=/dev/urandom of=$dev bs=1 count=32 seek=$off conv=notrunc status=none || t_fail "corrupt"
        done
        sync
        before=$(head -c 16M $dev | sha256sum)
        err=$(expect_status FAILED_PRECONDITION "stage with both headers damaged" stage "$id" corrupt $D/key) || exit 1
        say "    both headers damaged: ${err:0:300}"
        [[ "$err" == *damaged* ]] || t_fail "the message does not say the header is damaged: $err"
        [[ "$err" == *"$key"* ]] && t_fail "key material in the message"
        after=$(head -c 16M $dev | sha256sum)
        [ "$before" = "$after" ] || t_fail "the stage changed the device"
        [ "$(dmsetup ls | grep -c "^$(map_of "$id")\s")" = 0 ] || t_fail "a mapping was made"
        grep -q " $(staging_of corrupt) " /proc/self/mountinfo && t_fail "something was mounted"
        # Delete still works: the damaged header area is overwritten (its
        # keyslots may hold the key), then the LV goes.
        out=$(delete "$id" 2>&1) || t_fail "delete of a volume with a damaged header: $out"
        [ "$(lv_count "$lv")" = 0 ] || t_fail "LV left"
        grep -q 'msg="damaged luks header erased"' $D/csi.log || t_fail "no erase logged"
}

for t in $(declare -F | awk '{print $3}' | grep '^test_' | grep -E "${TV_FAULTS_ONLY:-.}"); do
        t0=$(date +%s)
        t_run "$t"
        say "    ($(($(date +%s) - t0)) s)"
done
stop_plugin
remove_leftovers
pool_remove $VG
t_summary
