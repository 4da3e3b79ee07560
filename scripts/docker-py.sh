#!/usr/bin/env bash
# docker-py 6.1.3's own integration tests (from its PyPI source package) against a berth
# daemon on a temporary data root: containers, exec, images, builds, networks, volumes and
# healthchecks — those that need no Docker Hub (pull/push) and no swarm. Prints the pass count; fails if fewer than BERTH_DOCKER_PY_MIN
# percent pass.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
repo=$PWD
bin=${BERTH_BIN_DIR:-$repo/target/x86_64-unknown-linux-gnu/release}
min=${BERTH_DOCKER_PY_MIN:-90}

venv=$(docker_py_venv "$repo")
src=$repo/.cache/docker-py-src
if [ ! -d "$src/docker-6.1.3/tests" ]; then
    mkdir -p "$src"
    "$venv/bin/pip" download -q --no-deps --no-binary :all: 'docker==6.1.3' -d "$src"
    tar -C "$src" -xzf "$src/docker-6.1.3.tar.gz"
fi

work=$(mktemp -d /tmp/bdpyXXXX)
sock=$work/berth.sock
bridge=bdpy${work##*/bdpy}
table=$(berth_table "$work/data")
cleanup() {
    if [ -n "${daemon_pid:-}" ]; then
        ids=$("$bin/berth" -H "unix://$sock" ps -aq 2>/dev/null || true)
        [ -n "$ids" ] && "$bin/berth" -H "unix://$sock" rm -f $ids >/dev/null 2>&1 || true
        for n in $("$bin/berth" -H "unix://$sock" network ls -q --filter type=custom 2>/dev/null); do
            "$bin/berth" -H "unix://$sock" network rm "$n" >/dev/null 2>&1 || true
        done
        kill -9 "$daemon_pid" 2>/dev/null || true
    fi
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' <"$p/cmdline" | grep -q "berth-shim $work" && kill -9 "${p#/proc/}"; } 2>/dev/null || true
    done
    remove_cgroups "berth-dpy-${work##*/}"
    ip link del "$bridge" 2>/dev/null || true
    nft delete table inet "$table" 2>/dev/null || true
    # The daemon's chain in iptables' FORWARD (see berth-network's iptables.rs).
    chain="BERTH${table#berth}"
    for ipt in iptables ip6tables; do
        while "$ipt" -w -D FORWARD -j "$chain" 2>/dev/null; do :; done
        "$ipt" -w -F "$chain" 2>/dev/null || true
        "$ipt" -w -X "$chain" 2>/dev/null || true
    done
    for m in "$work"/run/netns/*; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# The default bridge is the suite's own, on a private subnet, and containers get no route
# out of this machine (no masquerading, no forwarding).
net=$((RANDOM % 200 + 20))
cat >"$work/daemon.json" <<EOF
{"bridge": "$bridge", "bip": "10.197.$net.1/24", "ip-masq": false, "ip-forward": false,
 "default-address-pools": [{"base": "10.196.0.0/16", "size": 24}]}
EOF
"$bin/berth" daemon --data-root "$work/data" --exec-root "$work/run" -H "unix://$sock" \
    --cgroup-parent "berth-dpy-${work##*/}" --config-file "$work/daemon.json" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
timeout 30 bash -c "until grep -q 'API listening' '$work/daemon.log'; do sleep 0.1; done"
export DOCKER_HOST=unix://$sock

# Base images: busybox-static under the names the suite expects (with a postgres user and
# alpine's usual directories).
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,root,home,var/opt,var/lib,usr/bin,usr/sbin,sbin,lib,mnt,opt,srv,run}
cp /bin/busybox "$root/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\npostgres:x:70:70::/var/lib/postgresql:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\npostgres:x:70:\n' >"$root/etc/group"
chmod 1777 "$root/tmp"
tar -C "$root" -c . | "$bin/berth" -H "unix://$sock" import - busybox:latest >/dev/null
"$bin/berth" -H "unix://$sock" tag busybox:latest alpine:latest
"$bin/berth" -H "unix://$sock" tag busybox:latest alpine:3.10

cd "$src/docker-6.1.3"
export DOCKER_TEST_API_VERSION=1.45 HOME=$work/home
mkdir -p "$HOME"
set +e
# BERTH_DOCKER_PY_FILES picks other files (e.g. "api_network_test.py") while working on them.
files=()
for f in ${BERTH_DOCKER_PY_FILES:-api_container_test.py api_exec_test.py models_containers_test.py api_image_test.py \
        models_images_test.py api_build_test.py api_network_test.py models_networks_test.py api_volume_test.py \
        models_volumes_test.py api_healthcheck_test.py regression_test.py}; do
    files+=("tests/integration/$f")
done
"$venv/bin/pytest" -q -p no:cacheprovider --timeout=120 -rN "${files[@]}" \
    -k 'not pull and not push and not Timeout and not import_from_url and not import_image_from_url and not test_prune_images and not test_inspect_distribution and not (ImageCollectionTest and test_list) and not test_tag_and_remove and not socket_ws and not test_get_load_image and not attachable and not ingress and not with_scope' \
    --junitxml="$work/junit.xml" >"$work/pytest.log" 2>&1
set -e
cp "$work/pytest.log" "$repo/.cache/docker-py-last.log"
tail -n 3 "$work/pytest.log"
python3 - "$work/junit.xml" "$min" <<'PY'
import sys, xml.etree.ElementTree as ET
t = ET.parse(sys.argv[1]).getroot()
s = t if t.tag == "testsuite" else t.find("testsuite")
total, fail, err, skip = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
run = total - skip
passed = run - fail - err
pct = 100.0 * passed / run if run else 0.0
print(f"docker-py 6.1.3 integration tests against berth: {passed}/{run} passed ({pct:.1f}%), {skip} skipped")
per = {}
for case in s.iter("testcase"):
    if case.find("skipped") is not None:
        continue
    mod = case.get("classname", "").split(".")[2] if case.get("classname", "").count(".") >= 2 else case.get("classname", "")
    ok = case.find("failure") is None and case.find("error") is None
    p, n = per.get(mod, (0, 0))
    per[mod] = (p + ok, n + 1)
for mod, (p, n) in sorted(per.items()):
    print(f"  {mod}: {p}/{n}")
for case in s.iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None:
        print(f"  not passing: {case.get('classname')}.{case.get('name')}")
sys.exit(0 if pct >= float(sys.argv[2]) else 1)
PY
