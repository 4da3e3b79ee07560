#!/usr/bin/env bash
# Measures issue 19's CRI targets: berth's CRI beside containerd's CRI plugin (Debian's
# containerd 1.6 with runc), in one run, with the same client and workload
# (crates/berth-integration/examples/cri_bench.rs):
#   - RunPodSandbox + CreateContainer + StartContainer of one busybox container on the
#     node's network (median and best of the rounds);
#   - ExecSync `true` (median);
#   - BENCH_PODS (50) pods with one container each, started in sequence (total).
# Each runtime runs privately: its own data root, state and socket under a temporary
# directory. containerd gets busybox and a "pause" image (busybox running sleep: no registry
# is reachable) from berth's `save`; berth needs no pause image. Pods are on the node's
# network, so no CNI plugin is involved. Everything made is removed on exit.
# Run as root on an otherwise idle machine. Optional argument: rounds (20).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
rounds=${1:-20}
pods=${BENCH_PODS:-50}
export PATH="$HOME/.cargo/bin:$PATH"
bin=${BERTH_BIN_DIR:-$PWD/target/x86_64-unknown-linux-gnu/release}
[ -x "$bin/berth" ] || cargo build --release -p berth -p berth-shim >/dev/null
cargo build --release -p berth-integration --example cri_bench >/dev/null
client=$PWD/target/x86_64-unknown-linux-gnu/release/examples/cri_bench

work=$(mktemp -d /tmp/bcriXXXX)
cleanup() {
    [ -n "${cpid:-}" ] && { kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null || true; }
    pkill -9 -f "containerd-shim-runc-v2 -namespace k8s.io .*-address $work" 2>/dev/null || true
    [ -n "${bpid:-}" ] && { kill "$bpid" 2>/dev/null; wait "$bpid" 2>/dev/null || true; }
    for p in /proc/[0-9]*; do { tr '\0' ' ' <"$p/cmdline" | grep -q "berth-shim $work" && kill -9 "${p#/proc/}"; } 2>/dev/null || true; done
    ip link del bcrib0 2>/dev/null || true
    remove_cgroups berth-crib
    remove_cgroups k8s.io
    grep " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    nft delete table inet "$(berth_table "$work/data")" 2>/dev/null || true
    remove_iptables_chain "$work/data"
    rm -rf "$work"
}
trap cleanup EXIT

# A busybox image, and the pause image containerd's sandboxes run.
busybox_tar "$work/busybox.tar" "$work/rootfs"

echo '{"bridge": "bcrib0", "bip": "10.215.0.1/24", "ip-masq": false, "ip-forward": false}' >"$work/daemon.json"
"$bin/berth" daemon --data-root "$work/data" --exec-root "$work/run" -H "unix://$work/b.sock" \
    --cri-socket "$work/berth-cri.sock" --cgroup-parent berth-crib --config-file "$work/daemon.json" >"$work/daemon.log" 2>&1 &
bpid=$!
timeout 30 bash -c "until grep -q 'API listening' '$work/daemon.log'; do sleep 0.05; done"
B=("$bin/berth" -H "unix://$work/b.sock")
"${B[@]}" import "$work/busybox.tar" busybox:latest >/dev/null
mkdir -p "$work/pause"
printf 'FROM busybox:latest\nCMD ["sleep", "2147483647"]\n' >"$work/pause/Dockerfile"
"${B[@]}" build -q -t berth.bench/pause:1 "$work/pause" >/dev/null
"${B[@]}" save -o "$work/images.tar" busybox:latest berth.bench/pause:1

have_containerd=false
if command -v containerd >/dev/null && command -v containerd-shim-runc-v2 >/dev/null; then
    mkdir -p "$work/cni"
    cat >"$work/containerd.toml" <<EOF
version = 2
root = "$work/ctd/root"
state = "$work/ctd/state"
[grpc]
  address = "$work/ctd.sock"
[ttrpc]
  address = "$work/ctd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/ctd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "berth.bench/pause:1"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$work/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
EOF
    containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
    cpid=$!
    if timeout 30 bash -c "until ctr -a '$work/ctd.sock' version >/dev/null 2>&1; do sleep 0.1; done"; then
        ctr -a "$work/ctd.sock" -n k8s.io images import "$work/images.tar" >/dev/null
        have_containerd=true
    fi
fi

run_client() {
    "$client" --socket "$1" --image docker.io/library/busybox:latest --rounds "$rounds" --pods "$pods" --logs "$work/logs-$2"
}
run_client "$work/berth-cri.sock" berth >"$work/berth.txt"
if $have_containerd; then
    run_client "$work/ctd.sock" containerd >"$work/containerd.txt" || { echo "containerd run failed" >&2; : >"$work/containerd.txt"; }
else
    : >"$work/containerd.txt"
fi

printf '%-58s %10s %12s %8s\n' "measure" "berth" "containerd" "ratio"
row() {
    local b c r
    b=$(awk -v k="$2" '$1 == k {print $2}' "$work/berth.txt")
    c=$(awk -v k="$2" '$1 == k {print $2}' "$work/containerd.txt")
    r=$(python3 -c "import sys; a,b=sys.argv[1],sys.argv[2]; print('%.1fx' % (float(b)/float(a)) if a and b and float(a)>0 else '-')" "${b:-}" "${c:-}")
    printf '%-58s %10s %12s %8s\n' "$1" "${b:--}" "${c:--}" "$r"
}
row "RunPodSandbox+Create+Start, node network, median (ms)" pod_start_ms
row "RunPodSandbox+Create+Start, node network, best (ms)" pod_start_best_ms
row "ExecSync true, median (ms)" exec_sync_ms
row "$pods pods started in sequence (ms)" pods_in_sequence_ms
# Where a pod start's time goes: the mean of each call.
for r in berth containerd; do
    steps=$(grep '^pod_start_steps_mean_ms' "$work/$r.txt" | cut -d' ' -f2-) || true
    if [ -n "$steps" ]; then printf '%-10s %s\n' "$r" "$steps"; fi
done
