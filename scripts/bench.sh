#!/usr/bin/env bash
# Measures berth and, when installed, Docker (Debian's docker.io) side by side, and prints
# the ratios: `run --rm true` latency, `exec` latency, 50 detached containers (time, memory
# per supervisor), idle daemon memory, cached/uncached builds, save/load, push/pull through a
# local registry. Run as root on an otherwise idle machine. Optional argument: rounds (20).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
rounds=${1:-20}
bin=${BERTH_BIN_DIR:-$PWD/target/x86_64-unknown-linux-gnu/release}
[ -x "$bin/berth" ] || cargo build --release -p berth -p berth-shim >/dev/null
work=$(mktemp -d /tmp/bbenchXXXX)
out=$work/results.txt
cleanup() {
    [ -n "${rpid:-}" ] && kill "$rpid" 2>/dev/null || true
    [ -n "${dregpid:-}" ] && kill "$dregpid" 2>/dev/null || true
    [ -n "${bpid:-}" ] && { "$bin/berth" -H "unix://$work/b.sock" rm -f $("$bin/berth" -H "unix://$work/b.sock" ps -aq) >/dev/null 2>&1 || true; kill "$bpid" 2>/dev/null || true; }
    for p in /proc/[0-9]*; do { tr '\0' ' ' <"$p/cmdline" | grep -q "berth-shim $work" && kill -9 "${p#/proc/}"; } 2>/dev/null || true; done
    ip link del bbench0 2>/dev/null || true
    remove_cgroups berth-bench
    if [ -n "${dpid:-}" ]; then
        docker -H "unix://$work/d.sock" rm -f $(docker -H "unix://$work/d.sock" ps -aq) >/dev/null 2>&1 || true
        kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null || true
        pkill -f "$work/dexec" 2>/dev/null || true
        ip link del docker0 2>/dev/null || true
        grep " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    fi
    nft delete table inet "$(berth_table "$work/data")" 2>/dev/null || true
    remove_iptables_chain "$work/data"
    rm -rf "$work"
}
trap cleanup EXIT

ms() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.stdin.read().split()]; print("%.1f" % statistics.median(v))'; }
now() { date +%s%N; }

# Median wall time in ms of a command over $rounds runs.
median_ms() {
    local t=()
    for _ in $(seq "$rounds"); do
        local a; a=$(now); "$@" >/dev/null 2>&1; local b; b=$(now)
        t+=("$(( (b - a) / 1000 ))")
    done
    printf '%s\n' "${t[@]}" | python3 -c 'import sys,statistics; v=[int(x)/1000 for x in sys.stdin.read().split()]; print("%.1f" % statistics.median(v))'
}

rss_kib() { awk '/^Rss:/ {s+=$2} END {print s+0}' /proc/"$1"/smaps_rollup 2>/dev/null || echo 0; }
pss_kib() { awk '/^Pss:/ {s+=$2} END {print s+0}' /proc/"$1"/smaps_rollup 2>/dev/null || echo 0; }

# busybox rootfs
busybox_tar "$work/busybox.tar" "$work/rootfs"

echo "{\"bridge\": \"bbench0\", \"bip\": \"10.213.0.1/24\", \"ip-masq\": false, \"ip-forward\": false}" >"$work/daemon.json"
"$bin/berth" daemon --data-root "$work/data" --exec-root "$work/run" -H "unix://$work/b.sock" --cgroup-parent berth-bench --config-file "$work/daemon.json" >"$work/daemon.log" 2>&1 &
bpid=$!
timeout 30 bash -c "until grep -q 'API listening' '$work/daemon.log'; do sleep 0.05; done"
B=("$bin/berth" -H "unix://$work/b.sock")
"${B[@]}" import "$work/busybox.tar" busybox:latest >/dev/null

# Docker: the system's if it is running, else a private dockerd (Debian's docker.io) on its
# own data root and socket, with its default bridge but no iptables rules of its own.
have_docker=false
if [ -S /var/run/docker.sock ] && docker -H unix:///var/run/docker.sock info >/dev/null 2>&1; then
    have_docker=true
    D=(docker -H unix:///var/run/docker.sock)
elif command -v dockerd >/dev/null 2>&1 && ! ip link show docker0 >/dev/null 2>&1; then
    dockerd --data-root "$work/docker" --exec-root "$work/dexec" --pidfile "$work/docker.pid" -H "unix://$work/d.sock" \
        --iptables=false --ip6tables=false --ip-masq=false --bip 10.214.0.1/24 >"$work/dockerd.log" 2>&1 &
    dpid=$!
    if timeout 60 bash -c "until docker -H unix://$work/d.sock version >/dev/null 2>&1; do sleep 0.1; done"; then
        have_docker=true
        D=(docker -H "unix://$work/d.sock")
    fi
fi
$have_docker && { "${D[@]}" image inspect busybox:latest >/dev/null 2>&1 || "${D[@]}" import "$work/busybox.tar" busybox:latest >/dev/null; }

report() { printf '%-46s %12s %12s %10s\n' "$@" | tee -a "$out"; }
report "measure" "berth" "docker" "ratio"
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),sys.argv[2]; print('%.1fx' % (float(b)/a) if b not in ('-','') and a>0 else '-')" "$1" "$2"; }

# Warm up (memory untouched for a while is paged out on this machine).
"${B[@]}" run --rm --network none busybox true >/dev/null
b=$(median_ms "${B[@]}" run --rm --network none busybox true)
d=-; $have_docker && d=$(median_ms "${D[@]}" run --rm --network none busybox true)
report "run --rm --network none busybox true (ms)" "$b" "$d" "$(ratio "$b" "$d")"

b=$(median_ms "${B[@]}" run --rm busybox true)
d=-; $have_docker && d=$(median_ms "${D[@]}" run --rm busybox true)
report "run --rm busybox true, default bridge (ms)" "$b" "$d" "$(ratio "$b" "$d")"

"${B[@]}" run -d --name bexec busybox sleep 100000 >/dev/null
"${B[@]}" exec bexec true
b=$(median_ms "${B[@]}" exec bexec true)
d=-; if $have_docker; then "${D[@]}" run -d --name bexec busybox sleep 100000 >/dev/null; d=$(median_ms "${D[@]}" exec bexec true); "${D[@]}" rm -f bexec >/dev/null; fi
report "exec CONTAINER true (ms)" "$b" "$d" "$(ratio "$b" "$d")"
"${B[@]}" rm -f bexec >/dev/null

fifty() {
    local a; a=$(now)
    for i in $(seq 50); do "$@" run -d --network none busybox sleep 100000 >/dev/null; done
    local z; z=$(now)
    echo $(( (z - a) / 1000000 ))
}
b=$(fifty "${B[@]}")
sleep 2  # steady state: each shim drops its start-up pages ~0.5 s after starting
shims=$(pgrep -f "berth-shim $work" || true)
n=$(echo "$shims" | grep -c . || true)
rss=0; pss=0
for p in $shims; do rss=$((rss + $(rss_kib "$p"))); pss=$((pss + $(pss_kib "$p"))); done
d=-; drss=-
if $have_docker; then
    d=$(fifty "${D[@]}")
    dshims=$(pgrep -f containerd-shim || true); dr=0
    for p in $dshims; do dr=$((dr + $(rss_kib "$p"))); done
    dn=$(echo "$dshims" | grep -c . || true); [ "$dn" -gt 0 ] && drss=$(python3 -c "print('%.2f' % ($dr/$dn/1024))")
    "${D[@]}" rm -f $("${D[@]}" ps -aq) >/dev/null 2>&1 || true
fi
report "50 detached containers, total (ms)" "$b" "$d" "$(ratio "$b" "$d")"
report "supervisor RSS per container (MiB)" "$(python3 -c "print('%.2f' % ($rss/max($n,1)/1024))")" "$drss" ""
report "supervisor PSS per container (MiB)" "$(python3 -c "print('%.2f' % ($pss/max($n,1)/1024))")" "-" ""
report "daemon RSS with 50 containers (MiB)" "$(python3 -c "print('%.1f' % ($(rss_kib $bpid)/1024))")" "-" ""
"${B[@]}" rm -f $("${B[@]}" ps -aq) >/dev/null
sum_rss() { local t=0; for p in "$@"; do t=$((t + $(rss_kib "$p"))); done; python3 -c "print('%.1f' % ($t/1024))"; }
d=-; $have_docker && d=$(sum_rss $(pgrep -x dockerd) $(pgrep -x containerd))
report "daemon RSS right after removing them (MiB)" "$(sum_rss $bpid)" "$d" ""

# save / load of busybox
"${B[@]}" save -o "$work/s.tar" busybox
sz=$(stat -c %s "$work/s.tar")
b=$(median_ms "${B[@]}" save -o "$work/s2.tar" busybox)
d=-; $have_docker && d=$(median_ms "${D[@]}" save -o "$work/d2.tar" busybox)
report "save busybox ($(( sz / 1024 )) KiB) (ms)" "$b" "$d" "$(ratio "$b" "$d")"
reload() { "$@" rmi -f busybox >/dev/null 2>&1; "$@" load -i "$work/s.tar"; }
b=$(median_ms reload "${B[@]}")
d=-; $have_docker && d=$(median_ms reload "${D[@]}")
report "load busybox (ms)" "$b" "$d" "$(ratio "$b" "$d")"

# builds (the builder issue's workload): a Dockerfile of 10 steps (ENV, WORKDIR, COPY of a
# context of 2,000 small files and one 100 MiB file, RUN, EXPOSE, VOLUME, CMD, ENTRYPOINT,
# LABEL) on busybox: uncached (--no-cache), fully cached, and after one small file's content
# changed. Docker here is the classic builder (Debian's docker.io has no buildx for BuildKit).
ctx=$work/ctx
mkdir -p "$ctx/src"
for i in $(seq 2000); do echo "file $i" >"$ctx/src/f$i.txt"; done
head -c $((100 << 20)) /dev/urandom >"$ctx/big.bin"
cat >"$ctx/Dockerfile" <<'DF'
FROM busybox
ENV APP=/app
WORKDIR /app
COPY . /app/
RUN ls /app/src | wc -l > /count
EXPOSE 8080
VOLUME /data
CMD ["/count"]
ENTRYPOINT ["cat"]
LABEL bench=build
DF
build_b() { "${B[@]}" build -q "$@" -t bench-build "$ctx"; }
build_d() { DOCKER_BUILDKIT=0 "${D[@]}" build -q "$@" -t bench-build "$ctx"; }
r=$(( rounds < 5 ? rounds : 5 ))
rounds_saved=$rounds; rounds=$r
b=$(median_ms build_b --no-cache); d=-; $have_docker && d=$(median_ms build_d --no-cache)
report "build, uncached (ms)" "$b" "$d" "$(ratio "$b" "$d")"
build_b >/dev/null 2>&1; $have_docker && build_d >/dev/null 2>&1
b=$(median_ms build_b); d=-; $have_docker && d=$(median_ms build_d)
report "build, fully cached (ms)" "$b" "$d" "$(ratio "$b" "$d")"
edit_build() { echo "edit $(date +%N)" >"$ctx/src/f7.txt"; "$@"; }
b=$(median_ms edit_build build_b); d=-; $have_docker && d=$(median_ms edit_build build_d)
report "build, one small file changed (ms)" "$b" "$d" "$(ratio "$b" "$d")"

# The same workload through buildx's "docker" driver (the plugin scripts/deps.sh puts in
# .cache/cli-plugins): berth's BuildKit API against dockerd's embedded BuildKit.
bx_config=$work/buildx-config
mkdir -p "$bx_config"
echo "{\"cliPluginsExtraDirs\": [\"$(cd "$(dirname "$0")/.." && pwd)/.cache/cli-plugins\"]}" >"$bx_config/config.json"
if [ -x "$(dirname "$0")/../.cache/cli-plugins/docker-buildx" ]; then
    bx_b() { DOCKER_CONFIG=$bx_config docker -H "unix://$work/b.sock" buildx build -q --load "$@" -t bench-bx "$ctx"; }
    bx_d() { DOCKER_CONFIG=$bx_config "${D[@]}" buildx build -q --load "$@" -t bench-bx "$ctx"; }
    b=$(median_ms bx_b --no-cache); d=-; $have_docker && d=$(median_ms bx_d --no-cache)
    report "buildx build, uncached (ms)" "$b" "$d" "$(ratio "$b" "$d")"
    bx_b >/dev/null 2>&1; $have_docker && bx_d >/dev/null 2>&1
    b=$(median_ms bx_b); d=-; $have_docker && d=$(median_ms bx_d)
    report "buildx build, fully cached (ms)" "$b" "$d" "$(ratio "$b" "$d")"
    b=$(median_ms edit_build bx_b); d=-; $have_docker && d=$(median_ms edit_build bx_d)
    report "buildx build, one small file changed (ms)" "$b" "$d" "$(ratio "$b" "$d")"

    # A RUN step with a cache mount that holds 100 MiB from the build before, against the
    # same step without the mount: the difference is what finding the cache costs (the
    # steps' own times, from buildx's progress; the builds before filled the cache).
    cm=$work/cachemount
    mkdir -p "$cm"
    cat >"$cm/Dockerfile" <<'DF'
FROM busybox
ARG BUST=0
RUN --mount=type=cache,target=/cache,id=bench100 test -f /cache/big || head -c 104857600 /dev/zero >/cache/big; echo $BUST
RUN echo $BUST
DF
    step_ms() {
        DOCKER_CONFIG=$bx_config "$@" buildx build --progress=rawjson --build-arg "BUST=$RANDOM" --load -t bench-cm "$cm" 2>&1 |
            python3 -c '
import sys, json
from datetime import datetime
def t(s):
    a, b = s.rstrip("Z").split(".")
    return datetime.fromisoformat(a).timestamp() + float("0." + b)
data, dec, i, took = sys.stdin.read(), json.JSONDecoder(), 0, {}
while True:
    while i < len(data) and data[i].isspace():
        i += 1
    if i >= len(data):
        break
    o, i = dec.raw_decode(data, i)
    for v in o.get("vertexes") or []:
        if v.get("started") and v.get("completed"):
            took[v["name"]] = (t(v["completed"]) - t(v["started"])) * 1000
mount = [ms for n, ms in took.items() if "--mount=type=cache" in n]
plain = [ms for n, ms in took.items() if "RUN echo" in n and "--mount" not in n]
print("%.1f" % (mount[0] - plain[0]) if mount and plain else "-")'
    }
    cm_rounds() {
        local v=()
        DOCKER_CONFIG=$bx_config "$@" buildx build -q --load -t bench-cm "$cm" >/dev/null 2>&1 || true
        for _ in $(seq "$rounds"); do v+=("$(step_ms "$@")"); done
        printf '%s\n' "${v[@]}" | grep -v '^-$' | ms
    }
    b=$(cm_rounds docker -H "unix://$work/b.sock"); d=-; $have_docker && d=$(cm_rounds "${D[@]}")
    report "RUN with a 100 MiB cache mount, added (ms)" "$b" "$d" "-"
fi
rounds=$rounds_saved

# push / pull through a local registry: single-layer images of random and of text data
# (BENCH_MB MiB, default 200), berth's daemon with berth's registry, Docker with Debian's
# docker-registry (distribution 2.8) when both are installed; then one blob served by each
# registry to the same client (curl).
mb=${BENCH_MB:-200}
bytes=$((mb * 1048576))
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mbps() { python3 -c "import sys; print('%.0f' % ($bytes/1e6/(max(int(sys.argv[1]),1)/1e9)))" "$1"; }
timed_ns() { local a; a=$(now); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }; local z; z=$(now); echo $((z - a)); }
mkdir -p "$work/img-random" "$work/img-text"
head -c "$bytes" /dev/urandom >"$work/img-random/data"
python3 - "$work/img-text/data" "$bytes" <<'PY'
import random, sys
random.seed(7)
words = [w.strip() for w in open("/usr/share/dict/words")] if __import__("os").path.exists("/usr/share/dict/words") else \
    ["container", "image", "layer", "registry", "berth", "docker", "network", "volume", "build", "cache", "push", "pull", "digest", "manifest", "the", "a", "of", "and", "to", "in"]
out, n = open(sys.argv[1], "w"), int(sys.argv[2])
while n > 0:
    line = " ".join(random.choice(words) for _ in range(12)) + "\n"
    out.write(line[:n]); n -= len(line)
PY
for k in random text; do
    tar -C "$work/img-$k" -cf "$work/img-$k.tar" .
    "${B[@]}" import "$work/img-$k.tar" "bench-$k:latest" >/dev/null
    rm -f "$work/img-$k/data"
    $have_docker && "${D[@]}" import "$work/img-$k.tar" "bench-$k:latest" >/dev/null
    rm -f "$work/img-$k.tar"
done
# Each round pushes to a fresh registry of each kind (its own root and port, so no client
# finds the layer already there or mounts it from another repository), then pulls back after
# removing the image; the figures are the medians of the rounds (at most 3).
have_dreg=false
$have_docker && [ -x /usr/bin/docker-registry ] && have_dreg=true
start_registries() {
    if [ -n "${rpid:-}" ]; then kill "$rpid" 2>/dev/null || true; wait "$rpid" 2>/dev/null || true; fi
    if [ -n "${dregpid:-}" ]; then kill "$dregpid" 2>/dev/null || true; wait "$dregpid" 2>/dev/null || true; fi
    rm -rf "$work/registry" "$work/dregistry"
    rport=$(free_port)
    "$bin/berth" registry serve --addr "127.0.0.1:$rport" --root "$work/registry" 2>"$work/registry.log" &
    rpid=$!
    timeout 30 bash -c "until grep -q 'listening on' '$work/registry.log'; do sleep 0.05; done"
    if $have_dreg; then
        dport=$(free_port)
        printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$work/dregistry" "$dport" >"$work/dreg.yml"
        /usr/bin/docker-registry serve "$work/dreg.yml" >"$work/dreg.log" 2>&1 &
        dregpid=$!
        timeout 30 bash -c "until (exec 3<>/dev/tcp/127.0.0.1/$dport) 2>/dev/null; do sleep 0.05; done"
    fi
}
median() { python3 -c 'import sys,statistics; print("%.0f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
xfer_rounds=$(( rounds < 1 ? 1 : rounds < 3 ? rounds : 3 ))
# Pushes image $2 (local name) through the registry at 127.0.0.1:$3 with client $1 ("B" or
# "D"), removes it, pulls it back under its old name; prints "push-MB/s pull-MB/s".
round_trip() {
    local -n c=$1
    local n="127.0.0.1:$3/$2:1" p l
    "${c[@]}" tag "$2" "$n" >/dev/null
    # Each transfer starts with no writeback pending from what came before (on 2 cores the
    # kernel's flushing of the pushed blob competes with the pull).
    sync
    p=$(mbps "$(timed_ns "${c[@]}" push "$n")")
    "${c[@]}" rmi "$2" "$n" >/dev/null
    sync
    l=$(mbps "$(timed_ns "${c[@]}" pull "$n")")
    "${c[@]}" tag "$n" "$2" >/dev/null
    "${c[@]}" rmi "$n" >/dev/null
    echo "$p $l"
}
for k in random text; do
    bps=() bls=() dps=() dls=()
    for _ in $(seq "$xfer_rounds"); do
        start_registries
        read -r p l < <(round_trip B "bench-$k" "$rport"); bps+=("$p"); bls+=("$l")
        if $have_dreg; then read -r p l < <(round_trip D "bench-$k" "$dport"); dps+=("$p"); dls+=("$l"); fi
    done
    bp=$(median "${bps[@]}"); bl=$(median "${bls[@]}")
    dp=-; dl=-; rp=""; rl=""
    if $have_dreg; then dp=$(median "${dps[@]}"); dl=$(median "${dls[@]}"); rp=$(ratio "$dp" "$bp"); rl=$(ratio "$dl" "$bl"); fi
    report "push ${mb} MiB $k layer (MB/s, median of $xfer_rounds)" "$bp" "$dp" "$rp"
    report "pull ${mb} MiB $k layer (MB/s, median of $xfer_rounds)" "$bl" "$dl" "$rl"
done
# The registries of the last round hold bench-text; the blob below is bench-random's.
"${B[@]}" tag bench-random "127.0.0.1:$rport/bench-random:1"
"${B[@]}" push "127.0.0.1:$rport/bench-random:1" >/dev/null
# The same blob from each registry, to one client.
blob=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])' < <(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://127.0.0.1:$rport/v2/bench-random/manifests/1"))
serve() { curl -s -o /dev/null "http://127.0.0.1:$1/v2/bench-random/blobs/$blob"; }
in_dreg=false
if $have_dreg && "${B[@]}" tag "127.0.0.1:$rport/bench-random:1" "127.0.0.1:$dport/bench-random:1" && "${B[@]}" push "127.0.0.1:$dport/bench-random:1" >/dev/null; then
    in_dreg=true
fi
sync
serve "$rport"
b=$(median_ms serve "$rport")
d=-
if $in_dreg; then
    serve "$dport"
    d=$(median_ms serve "$dport")
fi
report "registry serves the random layer blob (ms)" "$b" "$d" "$(ratio "$b" "$d")"
# curl reads in small pieces (100 KiB), and each fetch starts a process: a client that reads
# into one large buffer shows the servers' own difference, and one
# that splices the body from the socket into /dev/null (the kernel drops the pages, nothing is
# copied to the client) shows it with the client's copy out of the way too. Both registries
# are fetched alternately by the same process, so they see the same machine.
lean() {
python3 - "$rport" "$($in_dreg && echo "$dport" || echo 0)" "/v2/bench-random/blobs/$blob" "$rounds" "$1" <<'PY'
import os, socket, statistics, sys, time
ports, path, rounds, mode = [int(sys.argv[1]), int(sys.argv[2])], sys.argv[3], int(sys.argv[4]), sys.argv[5]
buf = memoryview(bytearray(4 << 20))
null = os.open("/dev/null", os.O_WRONLY)
pr, pw = os.pipe()
def fetch(port):
    t = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    if mode == "splice":
        while (n := os.splice(s.fileno(), pw, 1 << 20)):
            while n:
                n -= os.splice(pr, null, n)
    else:
        while s.recv_into(buf):
            pass
    s.close()
    return (time.perf_counter() - t) * 1000
times = {p: [] for p in ports if p}
for p in times:
    fetch(p)
for _ in range(rounds):
    for p in times:
        times[p].append(fetch(p))
print(" ".join("%.1f" % statistics.median(times[p]) if p else "-" for p in ports))
PY
}
l=$(lean recv); b=${l%% *}; d=${l##* }
report "  ... read by a lean client (ms)" "$b" "$d" "$(ratio "$b" "$d")"
l=$(lean splice); b=${l%% *}; d=${l##* }
report "  ... spliced to /dev/null by a client (ms)" "$b" "$d" "$(ratio "$b" "$d")"

# Network data path: one 400 MiB download from a container's httpd, through a published
# port on 127.0.0.1 and straight to the container's address over the bridge.
"${B[@]}" run -d --name bweb -p 127.0.0.1:18099:80 --tmpfs /www:size=500m busybox \
    sh -c 'dd if=/dev/zero of=/www/big bs=1M count=400 2>/dev/null && exec httpd -f -p 80 -h /www' >/dev/null
ip=$("${B[@]}" inspect -f '{{.NetworkSettings.IPAddress}}' bweb)
timeout 30 bash -c "until curl -s -o /dev/null -r 0-0 http://$ip/big; do sleep 0.1; done"
r=$(( rounds < 5 ? rounds : 5 )); saved=$rounds; rounds=$r
bare=$(median_ms curl -s -o /dev/null "http://$ip/big")
pub=$(median_ms curl -s -o /dev/null "http://127.0.0.1:18099/big")
rounds=$saved
"${B[@]}" rm -f bweb >/dev/null
report "400 MiB over the bridge to the container (MB/s)" "$(python3 -c "print('%.0f' % (400*1.048576/($bare/1000)))")" "-" ""
report "400 MiB through a published port (MB/s)" "$(python3 -c "print('%.0f' % (400*1.048576/($pub/1000)))")" "-" "$(python3 -c "print('%.0f%%' % (100*$bare/$pub))")"

# DNS: 100 containers on one user-defined network; one of them asks for every other by name
# (queries sent from inside its namespace by a small client, timed one by one).
"${B[@]}" network create bnet >/dev/null
for i in $(seq 100); do "${B[@]}" run -d --network bnet --name "dns$i" busybox sleep 100000 >/dev/null; done
pid=$("${B[@]}" inspect -f '{{.State.Pid}}' dns1)
dns=$(nsenter -t "$pid" -n python3 - <<'PY'
import socket, struct, time, statistics
def q(name):
    hdr = struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0)
    body = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    t = time.perf_counter(); s.sendto(hdr + body, ("127.0.0.11", 53)); data = s.recv(512); dt = time.perf_counter() - t
    return dt, struct.unpack(">H", data[6:8])[0]
times, answered = [], 0
for i in range(2, 101):
    dt, an = q(f"dns{i}")
    times.append(dt); answered += an > 0
print("%.3f %d" % (statistics.median(times) * 1000, answered))
PY
)
report "DNS answer, 100 containers on a network (ms)" "${dns% *}" "-" ""
report "names resolved of 99" "${dns#* }" "-" ""
"${B[@]}" rm -f $("${B[@]}" ps -aq) >/dev/null
"${B[@]}" network rm bnet >/dev/null

# Scale: ps -a with 1,000 containers, system df with them and 100 images; 50 running
# containers re-adopted after the daemon is killed.
for i in $(seq 100); do
    mkdir -p "$work/img$i"; echo "$i" >"$work/img$i/f"; tar -C "$work/img$i" -cf "$work/img$i.tar" .
    "${B[@]}" import "$work/img$i.tar" "bimg$i:1" >/dev/null; rm -rf "$work/img$i" "$work/img$i.tar"
done
for i in $(seq 1000); do "${B[@]}" create --network none busybox true >/dev/null; done
report "ps -a with 1,000 containers (ms)" "$(median_ms "${B[@]}" ps -a)" "-" ""
report "system df, 1,000 containers, 100 images (ms)" "$(median_ms "${B[@]}" system df)" "-" ""
"${B[@]}" rm -f $("${B[@]}" ps -aq) >/dev/null
for i in $(seq 50); do "${B[@]}" run -d --network none busybox sleep 100000 >/dev/null; done
kill -9 "$bpid"; wait "$bpid" 2>/dev/null || true
a=$(now)
"$bin/berth" daemon --data-root "$work/data" --exec-root "$work/run" -H "unix://$work/b.sock" --cgroup-parent berth-bench --config-file "$work/daemon.json" >"$work/daemon2.log" 2>&1 &
bpid=$!
until [ "$("${B[@]}" ps -q 2>/dev/null | wc -l)" = 50 ]; do sleep 0.01; done
z=$(now)
report "50 running containers re-adopted after SIGKILL (ms)" "$(( (z - a) / 1000000 ))" "-" ""
"${B[@]}" rm -f $("${B[@]}" ps -aq) >/dev/null

# Idle: no requests for a while (berth trims what it does not use after 30-35 s).
sleep 45
d=-; $have_docker && d=$(sum_rss $(pgrep -x dockerd) $(pgrep -x containerd))
report "idle daemon RSS, 45 s without requests (MiB)" "$(sum_rss $bpid)" "$d" ""

echo
echo "results in $out (kept only for this run)"
cat "$out" >/dev/null
