# shellcheck shell=bash
# bench/lib.sh: helpers shared by the node and limits benchmarks (sourced,
# inside the guest). The caller sets NAME (its name, for messages), D (its
# scratch directory), LOG (the plugin's log), SOCK (the plugin's socket)
# and CTL (thinvaultctl) before calling any of them.

die() { echo "$NAME.sh: error: $*"; exit 1; }

# guest_only: refuse to run outside the test guest (these scripts make
# volume groups, loop devices, dm mappings and cgroups).
guest_only() {
        grep -q 'tv_run=' /proc/cmdline 2>/dev/null ||
                die "runs only inside the test guest (it makes volume groups, loop devices and dm mappings); use: bench/run $NAME"
}

# read_define HEADER MACRO: the concatenated string literal of a #define.
read_define() {
        sed -n "/#define $2/,/[^\\\\]\$/p" "$1" | grep -o '"[^"]*"' | tr -d '"\n'
}

ctl() { "$CTL" --endpoint "unix://$SOCK" --timeout 600 csi "$@"; }
# lvm2's stderr (over-provisioning warnings and the like) goes to a file,
# shown if a command fails.
lvm_() { "$@" --config "$LVM_CONFIG" 2>>$D/lvm.err; }

# now_us: wall clock in microseconds, no fork.
now_us() { echo "${EPOCHREALTIME//[.,]/}"; }

# timed KEY CMD...: run CMD (output as redirected by the caller), append its
# wall time in microseconds to $D/us.KEY. Fails the benchmark if CMD fails.
timed() {
        local key=$1 t0 t1 rc
        shift
        t0=${EPOCHREALTIME//[.,]/}
        "$@"
        rc=$?
        t1=${EPOCHREALTIME//[.,]/}
        [ $rc -eq 0 ] || die "$key: '$*' failed (status $rc); lvm2 said: $(tail -3 $D/lvm.err 2>/dev/null);" \
                "other stderr: $(tail -3 $D/cmd.err 2>/dev/null); plugin log: $(tail -3 $LOG 2>/dev/null)"
        echo $((t1 - t0)) >>"$D/us.$key"
}
# drv LABEL KEY CMD...: a timed driver call; LABEL is queued in $D/seq to be
# matched with the plugin's k-th `msg="rpc"` log line.
drv() {
        local label=$1
        shift
        echo "$label" >>$D/seq
        timed "$@"
}
# untimed LABEL CMD...: a driver call that is not measured (setup).
untimed() {
        local label=$1 rc
        shift
        echo "$label" >>$D/seq
        "$@"
        rc=$?
        [ $rc -eq 0 ] || die "'$*' failed (status $rc); plugin log: $(tail -3 $LOG 2>/dev/null)"
}

# stats FILE [DIVISOR]: "p50 p95 n" (nearest-rank) of the numbers in FILE
# divided by DIVISOR (default 1000: microseconds to ms), or "- - 0".
stats() {
        [ -s "$1" ] || { echo "- - 0"; return; }
        sort -n "$1" | awk -v div="${2:-1000}" '{ v[NR] = $1 }
                END { i50 = int((NR * 50 + 99) / 100); i95 = int((NR * 95 + 99) / 100)
                      printf "%.1f %.1f %d\n", v[i50] / div, v[i95] / div, NR }'
}

# localize FILE...: copy the files and the libraries they load up into the
# overlay's tmpfs (overlayfs copies a file up when it is touched), so that
# an exec does not re-read them over 9p (see bench/README.md).
localize() {
        local t0=$SECONDS files f
        files=$(for f in "$@"; do
                readlink -f "$f"
                ldd "$f" | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
        done | xargs -r -n1 readlink -f | sort -u)
        for f in $files; do touch -c "$f" || die "cannot copy $f up into the guest's tmpfs"; done
        echo "made local to the guest: $(echo $files | wc -w) files, $(du -cLk $files | tail -n 1 | cut -f1) KiB in $((SECONDS - t0)) s"
}

# start_plugin ARGS...: the plugin on $SOCK, answering, its pid in $D/pid.
start_plugin() {
        local i
        "$CSI" --endpoint "unix://$SOCK" "$@" >/dev/null 2>>$LOG &
        echo $! >$D/pid
        for i in $(seq 600); do
                ctl Identity.GetPluginInfo >/dev/null 2>&1 && return 0
                kill -0 "$(cat $D/pid)" 2>/dev/null || die "plugin exited: $(tail -5 $LOG)"
                sleep 0.2
        done
        die "plugin did not answer in 120 s: $(tail -5 $LOG)"
}
stop_plugin() {
        local pid i
        pid=$(cat $D/pid 2>/dev/null) || return 0
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        rm -f $D/pid
}

# volume_id FILE: the volumeId of a CreateVolume reply.
volume_id() { sed -n 's/.*"volumeId": *"\([^"]*\)".*/\1/p' "$1" | head -n 1; }
# req FILE JSON: a request with a secret goes through a 0600 file, never argv.
req() { (umask 077 && printf '%s' "$2" >"$1"); }

# fio_terse ARGS...: run fio with --minimal and print "read_iops read_KiBps
# write_iops write_KiBps" (terse v3 fields 8, 7, 49, 48; --group_reporting).
fio_terse() {
        local out
        out=$(fio --minimal --group_reporting "$@" 2>>$D/cmd.err) || die "fio $* failed: $(tail -3 $D/cmd.err)"
        awk -F';' 'END { if (NF < 49) exit 1; print $8, $7, $49, $48 }' <<<"$out" ||
                die "fio output not understood: $(head -c 300 <<<"$out")"
}

# host_noise_note: how to read the figures.
host_noise_note() {
        echo "(the guest is CPU-emulated (QEMU TCG) on a shared 2-CPU host: absolute figures are slow and noisy;"
        echo " compare the columns of one run, and see the host load in the footer)"
}
