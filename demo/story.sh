#!/usr/bin/env bash
# The thinvault story, played against a real kernel (run by demo/run, in
# the QEMU guest when the host lacks device-mapper): two tenants share one
# thin pool on a loop file; each gets an encrypted volume under its own key,
# writes to it, is refused the other's, runs at its own IOPS budget; usage
# is shown; a volume is deleted and crypto-erased.
# Usage: demo/story.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
CSI=$BUILD/csi/thinvault-csi
CTL=$BUILD/cli/thinvaultctl
W=/tmp/thinvault-demo
KUBELET=$W/kubelet
SOCK=$W/csi.sock
VG=tvdemo
mkdir -p "$W" "$KUBELET"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }
ctl() { "$CTL" --endpoint "unix://$SOCK" "$@"; }
jget() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    d = d[int(k)] if isinstance(d, list) else d.get(k, "")
print(d)' "$1"; }

cleanup() {
        [ -f "$W/pid" ] && kill -TERM "$(cat "$W/pid")" 2>/dev/null && sleep 1
        return 0
}
trap cleanup EXIT

# The cgroup every pod lives under (kubelet makes it on a real node).
mkdir -p /sys/fs/cgroup/kubepods/pod-team-a /sys/fs/cgroup/kubepods/pod-team-b

say "thinvault-csi starts on a 1 GiB loop-file volume group (the embedded default)"
"$CSI" --endpoint "unix://$SOCK" --node-id demo-node --vg $VG --thin-pool pool \
        --loop-file "$W/pool.img" --loop-size 1G --kubelet-dir "$KUBELET" 2>"$W/csi.log" &
echo $! >"$W/pid"
for _ in $(seq 300); do [ -S "$SOCK" ] && break; sleep 0.2; done
run ctl csi Identity.GetPluginInfo
run ctl csi Identity.Probe

say "two tenants (namespaces team-a and team-b) each create a 64 MiB volume with an IOPS budget"
declare -A VOL KEY BUDGET=([team-a]=200 [team-b]=600) WRITE_MIB=([team-a]=8 [team-b]=4)
for t in team-a team-b; do
        KEY[$t]=$(head -c 32 /dev/urandom | base64 -w0)
        VOL[$t]=$(ctl csi Controller.CreateVolume --json "{\"name\":\"pvc-$t-data\",
                \"capacityRange\":{\"requiredBytes\":\"67108864\"},
                \"volumeCapabilities\":[{\"mount\":{\"fsType\":\"ext4\"},\"accessMode\":{\"mode\":\"SINGLE_NODE_WRITER\"}}],
                \"parameters\":{\"csi.storage.k8s.io/pvc/namespace\":\"$t\",\"csi.storage.k8s.io/pvc/name\":\"data\",
                                \"readIOPS\":\"${BUDGET[$t]}\",\"writeIOPS\":\"${BUDGET[$t]}\"}}" | jget volume.volumeId)
        echo "$t -> ${VOL[$t]} (readIOPS=writeIOPS=${BUDGET[$t]})"
done
say "whose is what: lvs alone tells (tags written by the driver)"
run lvs --config 'devices{obtain_device_list_from_udev=0}' -o lv_name,lv_size,lv_tags $VG

stage() { # stage TENANT KEY VOLUME
        ctl csi Node.NodeStageVolume --json "{\"volumeId\":\"$3\",
                \"stagingTargetPath\":\"$KUBELET/stage-$1\",
                \"volumeCapability\":{\"mount\":{\"fsType\":\"ext4\"},\"accessMode\":{\"mode\":\"SINGLE_NODE_WRITER\"}},
                \"volumeContext\":{\"tenant\":\"$1\"},
                \"secrets\":{\"key\":\"$2\"}}"
}
unstage() { ctl csi Node.NodeUnstageVolume --json "{\"volumeId\":\"$2\",\"stagingTargetPath\":\"$KUBELET/stage-$1\"}" >/dev/null; }

say "each volume is LUKS2-formatted under its tenant's key, opened, given ext4 and mounted; each tenant writes"
for t in team-a team-b; do
        mkdir -p "$KUBELET/stage-$t"
        stage $t "${KEY[$t]}" "${VOL[$t]}" >/dev/null
        echo "secret data of $t" >"$KUBELET/stage-$t/hello.txt"
        dd if=/dev/urandom of="$KUBELET/stage-$t/data.bin" bs=1M count="${WRITE_MIB[$t]}" conv=fsync status=none
        echo "$t wrote: $(cat "$KUBELET/stage-$t/hello.txt") + ${WRITE_MIB[$t]} MiB of data.bin"
done
run cryptsetup luksDump "/dev/$VG/${VOL[team-a]#*:}" | grep -E 'Version|Cipher|thinvault|tenant|PBKDF' | head -8

say "team-b tries team-a's volume with team-b's key: refused"
unstage team-a "${VOL[team-a]}"
if out=$(stage team-a "${KEY[team-b]}" "${VOL[team-a]}" 2>&1); then
        echo "UNEXPECTED: staged with the wrong key"; exit 1
fi
echo "$out"
stage team-a "${KEY[team-a]}" "${VOL[team-a]}" >/dev/null
echo "team-a with its own key again: $(cat "$KUBELET/stage-team-a/hello.txt")"

say "IOPS budgets: both tenants hammer their volumes at once (fio 4k random read, direct, 4 s)"
fio_in() { # fio_in TENANT: fio from a process inside the tenant's pod cgroup
        sh -c "echo \$\$ > /sys/fs/cgroup/kubepods/pod-$1/cgroup.procs; exec fio --name=$1 \
                --filename=/dev/mapper/tvc-${VOL[$1]#*:} --rw=randread --bs=4k --direct=1 --ioengine=psync \
                --time_based --runtime=4 --output-format=json" | jget jobs.0.read.iops
}
fio_in team-a >"$W/iops.a" &
pid_a=$!
fio_in team-b >"$W/iops.b" &
pid_b=$!
wait $pid_a $pid_b # not a bare wait: the plugin is a background job too
printf '%-8s %8s %10s  %s\n' tenant budget measured verdict
for t in team-a team-b; do
        m=$(cat "$W/iops.${t#team-}")
        verdict=$(awk -v m="$m" -v b="${BUDGET[$t]}" 'BEGIN {
                if (m > b * 1.05) print "OVER BUDGET";
                else if (m >= b * 0.9) print "held at its budget";
                else print "under budget: the emulated CPU issued no more (a busy host)" }')
        printf '%-8s %8s %10.0f  %s\n' $t "${BUDGET[$t]}" "$m" "$verdict"
done
echo "io.max on kubepods:"
sed 's/^/  /' /sys/fs/cgroup/kubepods/io.max

say "usage: what each volume holds and what the pool has given out"
for t in team-a team-b; do
        ctl csi Node.NodeGetVolumeStats --json "{\"volumeId\":\"${VOL[$t]}\",\"volumePath\":\"$KUBELET/stage-$t\"}" |
                /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); u={x.get("unit"):x for x in d["usage"]}
b=u.get("BYTES",{}); print("%s: %s of %s bytes used" % (sys.argv[1], b.get("used","0"), b.get("total","?")))' "$t"
done
run "$CTL" volumes --vg $VG --thin-pool pool
run "$CTL" usage --vg $VG --thin-pool pool

say "team-b deletes its volume: unstaged, crypto-erased (keyslots and header destroyed), removed"
unstage team-b "${VOL[team-b]}"
lv_b=${VOL[team-b]#*:}
run ctl csi Controller.DeleteVolume --json "{\"volumeId\":\"${VOL[team-b]}\"}"
echo "LV gone: $(lvs --config 'devices{obtain_device_list_from_udev=0}' "$VG/$lv_b" >/dev/null 2>&1 && echo no || echo yes)"
grep -E 'volume deleted|erase' "$W/csi.log" | tail -3

say "the admin's audit: every volume encrypted, its token's tenant is its tag's, its budget in force"
run "$CTL" audit --vg $VG --thin-pool pool

say "done: team-a still reads its data; what each tenant holds now (the metering view)"
cat "$KUBELET/stage-team-a/hello.txt"
run "$CTL" usage --vg $VG --thin-pool pool
unstage team-a "${VOL[team-a]}"
