#!/usr/bin/env bash
# Measures the overlay network's two targets (issue 7) on one machine: two network-namespace
# "hosts" cabled to a "switch" namespace (a bridge made here), one etcd on the switch, a berth
# daemon per host. Prints
#   - TCP throughput host to host ("bare") and container to container across the hosts
#     ("overlay"), measured two ways, each alternated bare/overlay every round: iperf3 (one
#     stream for 4 s; it runs in the containers' network namespaces through nsenter, as the
#     busybox image has no iperf3), and one HTTP transfer (busybox httpd serving a file from
#     a tmpfs, busybox wget inside the container reading it into /dev/null). Medians, and the
#     median of the rounds' ratios (target: >= 80%);
#   - how long after `run -d --name X` returns on host 1 a container on host 2 resolves X
#     (nslookup every 20 ms; measured from the host through one `exec`, so it includes that
#     exec's start-up, shown separately; clock resolution 10 ms) (target: <= 1 s).
# Nothing is sent outside the namespaces made here; everything made is removed on exit.
# Run as root (uses what scripts/deps.sh installs: etcd-server, busybox-static, nftables, iperf3).
# Optional argument: rounds (5). BENCH_MIB: size of the transferred file (1024).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
rounds=${1:-5}
mib=${BENCH_MIB:-1024}
bin=${BERTH_BIN_DIR:-$PWD/target/x86_64-unknown-linux-gnu/release}
[ -x "$bin/berth" ] && [ -x "$bin/berth-shim" ] || { echo "build berth first: cargo build --release -p berth -p berth-shim" >&2; exit 1; }
command -v etcd >/dev/null || { echo "etcd is not installed (scripts/deps.sh installs etcd-server)" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "iperf3 is not installed (scripts/deps.sh installs it)" >&2; exit 1; }

work=$(mktemp -d /tmp/bovXXXX)
tag=${work##*/}
sw=$tag-sw
store=192.168.251.100
declare -A dpid=()
cleanup() {
    set +e
    for i in 1 2; do
        [ -n "${dpid[$i]:-}" ] || continue
        ids=$(B "$i" ps -aq 2>/dev/null)
        [ -n "$ids" ] && B "$i" rm -f $ids >/dev/null 2>&1
        B "$i" network rm bovnet >/dev/null 2>&1
        kill "${dpid[$i]}" 2>/dev/null; wait "${dpid[$i]}" 2>/dev/null
    done
    for p in /proc/[0-9]*; do { tr '\0' ' ' <"$p/cmdline" | grep -q "berth-shim $work" && kill -9 "${p#/proc/}"; } 2>/dev/null; done
    for p in ${hpid:-} ${ipid1:-} ${ipid2:-}; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    [ -n "${epid:-}" ] && { kill "$epid" 2>/dev/null; wait "$epid" 2>/dev/null; }
    remove_cgroups "berth-$tag"
    for i in 1 2; do ip netns exec "$tag-h$i" nft delete table inet "$(berth_table "$work/h$i/data")" 2>/dev/null; done
    grep " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    for n in "$tag-h1" "$tag-h2" "$sw"; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

B() { local i=$1; shift; "$bin/berth" -H "unix://$work/h$i/b.sock" "$@"; }
# (Background processes are started with `ip netns exec` itself, so that $! is their pid.)
in_ns() { local n=$1; shift; ip netns exec "$n" "$@"; }
median() { python3 -c 'import sys,statistics; print("%.1f" % statistics.median(float(x) for x in sys.stdin.read().split()))'; }
# Polls (every 20 ms, up to $1 seconds) until the rest of the line succeeds.
await() { local n=$(( $1 * 50 )); shift; for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.02; done; echo "timed out waiting for: $*" >&2; return 1; }

# The switch (bridge + etcd) and two hosts cabled to it.
ip netns add "$sw"
in_ns "$sw" sh -c "ip link set lo up && ip link add br0 type bridge && ip addr add $store/24 dev br0 && ip link set br0 up"
for i in 1 2; do
    h=$tag-h$i
    ip netns add "$h"
    ip link add eth1 netns "$h" type veth peer name "p$i" netns "$sw"
    in_ns "$sw" ip link set "p$i" master br0 up
    in_ns "$h" sh -c "ip link set lo up && ip addr add 192.168.251.$i/24 dev eth1 && ip link set eth1 up"
done
ip netns exec "$sw" etcd --name bov --data-dir "$work/etcd" --listen-client-urls "http://$store:2379" --advertise-client-urls "http://$store:2379" \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster bov=http://127.0.0.1:2380 \
    >"$work/etcd.log" 2>&1 &
epid=$!
health() { in_ns "$sw" timeout 2 busybox wget -q -O - "http://$store:2379/health" | grep -q true; }
await 30 health

# The served file, in a tmpfs: the bare server reads it directly, the overlay one through a
# read-only bind mount (made
# before the daemons start: `ip netns exec` gives them a mount namespace of their own).
mkdir -p "$work/www"
mount -t tmpfs -o size=$((mib + 16))m tmpfs "$work/www"
dd if=/dev/zero of="$work/www/big" bs=1M count="$mib" status=none
echo ok >"$work/www/ok"

# A daemon per host: its own data root, exec root, socket, cgroup parent and a private bridge.
busybox_tar "$work/busybox.tar" "$work/rootfs"
for i in 1 2; do
    mkdir -p "$work/h$i"
    cat >"$work/h$i/daemon.json" <<EOF
{"bridge": "bov$i", "bip": "10.21$i.0.1/24", "ip-masq": false, "ip-forward": false,
 "cluster-store": "etcd://$store:2379", "cluster-advertise": "eth1"}
EOF
    ip netns exec "$tag-h$i" "$bin/berth" daemon --data-root "$work/h$i/data" --exec-root "$work/h$i/run" -H "unix://$work/h$i/b.sock" \
        --cgroup-parent "berth-$tag" --config-file "$work/h$i/daemon.json" >"$work/h$i/daemon.log" 2>&1 &
    dpid[$i]=$!
    await 30 grep -q "joined the cluster" "$work/h$i/daemon.log"
    B "$i" import "$work/busybox.tar" busybox:latest >/dev/null
done

B 1 network create -d overlay --subnet 10.77.0.0/24 bovnet >/dev/null
sees() { B 2 network ls --format '{{.Name}}' | grep -qx bovnet; }
await 10 sees
B 1 run -d --name srv --network bovnet -v "$work/www:/www:ro" busybox httpd -f -p 80 -h /www >/dev/null
B 2 run -d --name cli --network bovnet busybox sleep 100000 >/dev/null
srv=$(B 1 inspect -f '{{(index .NetworkSettings.Networks "bovnet").IPAddress}}' srv)
ip netns exec "$tag-h1" busybox httpd -f -p 192.168.251.1:8000 -h "$work/www" &
hpid=$!
await 10 B 2 exec cli timeout 2 wget -q -O /dev/null "http://$srv/ok"
await 10 in_ns "$tag-h2" timeout 2 busybox wget -q -O /dev/null http://192.168.251.1:8000/ok
srvpid=$(B 1 inspect -f '{{.State.Pid}}' srv)
clipid=$(B 2 inspect -f '{{.State.Pid}}' cli)
ip netns exec "$tag-h1" iperf3 -s -B 192.168.251.1 >/dev/null 2>&1 &
ipid1=$!
nsenter -n -t "$srvpid" iperf3 -s -B "$srv" >/dev/null 2>&1 &
ipid2=$!
listening() { "$@" ss -Hltn 'sport = :5201' | grep -q .; }
await 10 listening ip netns exec "$tag-h1"
await 10 listening nsenter -n -t "$srvpid"
# MB/s received in one 4 s iperf3 run; the rest of the line is how to enter the client's namespace.
iperf() { local to=$1; shift; "$@" iperf3 -c "$to" -t 4 -J | python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 8e6))'; }

# Seconds of one transfer, timed where wget runs (/proc/uptime: the same clock everywhere).
fetch='read a _ </proc/uptime; wget -q -O /dev/null "$0"; read b _ </proc/uptime; echo "$a $b"'
mbps() { python3 -c 'import sys; a,b=map(float,sys.argv[2].split()); print("%.1f" % (float(sys.argv[1]) * 1.048576 / (b - a)))' "$mib" "$1"; }
bare=() overlay=() ibare=() ioverlay=()
for r in $(seq "$rounds"); do
    ibare+=("$(iperf 192.168.251.1 ip netns exec "$tag-h2")")
    ioverlay+=("$(iperf "$srv" nsenter -n -t "$clipid")")
    bare+=("$(mbps "$(in_ns "$tag-h2" busybox sh -c "$fetch" http://192.168.251.1:8000/big)")")
    overlay+=("$(mbps "$(B 2 exec cli sh -c "$fetch" "http://$srv/big")")")
    echo "round $r: iperf3 bare ${ibare[-1]} MB/s, overlay ${ioverlay[-1]} MB/s; HTTP bare ${bare[-1]} MB/s, overlay ${overlay[-1]} MB/s" >&2
done
# Each round's pair ran back to back, so their ratio is less exposed to the machine's load
# changing than the ratio of the medians.
ratio() { local -n b=$1 o=$2; for r in $(seq 0 $((rounds - 1))); do python3 -c "print(100 * ${o[$r]} / ${b[$r]})"; done | median; }

# Name resolution across hosts.
uptime_ms() { read -r u _ </proc/uptime; echo "${u/./}0"; }
execs=() delays=()
for r in $(seq "$rounds"); do
    a=$(uptime_ms); B 2 exec cli true; b=$(uptime_ms); execs+=("$((b - a))")
    B 1 run -d --name "nr$r" --network bovnet busybox sleep 100000 >/dev/null
    t0=$(uptime_ms)
    t1=$(B 2 exec cli sh -c 'for i in $(seq 500); do nslookup "$0" >/dev/null 2>&1 && break; usleep 20000; done; read u _ </proc/uptime; echo "$u"' "nr$r")
    delays+=("$(( ${t1/./}0 - t0 ))")
    B 1 rm -f "nr$r" >/dev/null
done

med() { printf '%s\n' "$@" | median; }
printf '%-58s %10s\n' "iperf3 bare host-to-host TCP (MB/s, median of $rounds)" "$(med "${ibare[@]}")" \
    "iperf3 overlay container-to-container TCP (MB/s)" "$(med "${ioverlay[@]}")" \
    "iperf3 overlay / bare, median of the rounds' (target >= 80%)" "$(ratio ibare ioverlay)%" \
    "HTTP bare host-to-host (MB/s, median of $rounds)" "$(med "${bare[@]}")" \
    "HTTP overlay container-to-container (MB/s)" "$(med "${overlay[@]}")" \
    "HTTP overlay / bare, median of the rounds'" "$(ratio bare overlay)%" \
    "name on host 1 resolves on host 2 after run (ms)" "$(med "${delays[@]}")" \
    "  of which one exec's start-up (ms)" "$(med "${execs[@]}")"
