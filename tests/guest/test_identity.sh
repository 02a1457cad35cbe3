#!/usr/bin/env bash
# First guest test: a real loop-file volume group and thin pool, the plugin
# started against it, Identity, Node info and Probe driven through
# thinvaultctl. Probe follows the pool: ready while it answers, not ready
# once it is gone.
set -uo pipefail
BUILD=${1:-$TV_BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/pool.sh"
CSI=$BUILD/csi/thinvault-csi
CTL=$BUILD/cli/thinvaultctl
SOCK=/tmp/tv-identity/csi.sock
mkdir -p /tmp/tv-identity

ctl() { timeout 30 "$CTL" --endpoint "unix://$SOCK" "$@"; }

start_plugin() {
        "$CSI" --endpoint "unix://$SOCK" --node-id guest-node --vg tvid --thin-pool pool 2>>/tmp/tv-identity/csi.log &
        echo $! >/tmp/tv-identity/pid
        t_wait_socket "$SOCK" 30 || t_fail "plugin did not start: $(cat /tmp/tv-identity/csi.log)"
}

stop_plugin() {
        kill -TERM "$(cat /tmp/tv-identity/pid)" && wait "$(cat /tmp/tv-identity/pid)"
}

test_identity_and_probe_on_a_real_thin_pool() {
        pool_create tvid pool 256 || t_fail "cannot create the loop-backed pool"
        start_plugin
        local out
        out=$(ctl csi Identity.GetPluginInfo) || t_fail "GetPluginInfo"
        grep -q '"name": "thinvault.csi.io"' <<<"$out" || t_fail "name: $out"
        out=$(ctl csi Identity.GetPluginCapabilities) || t_fail "GetPluginCapabilities"
        grep -q CONTROLLER_SERVICE <<<"$out" || t_fail "caps: $out"
        grep -q VOLUME_ACCESSIBILITY_CONSTRAINTS <<<"$out" || t_fail "caps: $out"
        out=$(ctl csi Node.NodeGetInfo) || t_fail "NodeGetInfo"
        grep -q '"nodeId": "guest-node"' <<<"$out" || t_fail "node: $out"
        out=$(ctl csi Identity.Probe) || t_fail "Probe"
        grep -q '"ready": true' <<<"$out" || t_fail "Probe not ready on a healthy pool: $out"
        pool_remove tvid
        out=$(ctl csi Identity.Probe) || t_fail "Probe after pool removal"
        grep -q '"ready": false' <<<"$out" || t_fail "Probe ready without a pool: $out"
        stop_plugin || t_fail "plugin exit status"
}

for t in $(declare -F | awk '{print $3}' | grep '^test_'); do
        t_run "$t"
done
pool_remove tvid
t_summary
