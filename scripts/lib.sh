# Helpers the repo's scripts share for tearing down a daemon they started. Source it.

# The nftables table of a daemon on data root $1 (as berth-daemon names it: FNV-1a of the
# path; the default data root uses plain "berth").
berth_table() {
    python3 -c 'import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode(): h = ((h ^ b) * 0x100000001b3) % 2**64
print("berth_%08x" % (h % 2**32))' "$1"
}

# Writes the benchmarks' busybox image as a tar to $1, staging its root in the directory $2:
# Debian's static busybox with its applet links, root in /etc/passwd and /etc/group.
busybox_tar() {
    local root=$2 a
    mkdir -p "$root"/{bin,etc,tmp}
    cp /bin/busybox "$root/bin/"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"; printf 'root:x:0:\n' >"$root/etc/group"
    tar -C "$root" -cf "$1" .
}

# Removes the iptables/ip6tables FORWARD chain a daemon on data root $1 added beside another
# engine's FORWARD policy (BERTH_<hash>, named like its nftables table). The daemon keeps it
# when it stops, for its containers that live on; a script that removes the bridge removes it.
remove_iptables_chain() {
    local chain t
    t=$(berth_table "$1")
    chain="BERTH${t#berth}"
    for ipt in iptables ip6tables; do
        command -v "$ipt" >/dev/null || continue
        while "$ipt" -D FORWARD -j "$chain" 2>/dev/null; do :; done
        "$ipt" -F "$chain" 2>/dev/null || true
        "$ipt" -X "$chain" 2>/dev/null || true
    done
}

# Removes the cgroup directories matching */$1* under every hierarchy, deepest first;
# killed containers leave theirs a moment later, so it retries for up to 5 s.
remove_cgroups() {
    local left c
    for _ in $(seq 50); do
        left=$(find /sys/fs/cgroup/*/ -maxdepth 2 -type d -path "*/$1*" 2>/dev/null | sort -r)
        [ -z "$left" ] && return 0
        for c in $left; do rmdir "$c" 2>/dev/null || true; done
        sleep 0.1
    done
}

# docker-py 6.1.3 in a venv of the repo's own (.cache/docker-py-venv): the suite's judge of
# the Python client, used by scripts/docker-py.sh and by integration tests that drive
# docker-py's low-level API. Prints the venv's path.
docker_py_venv() {
    local venv=$1/.cache/docker-py-venv
    # A venv whose interpreter or scripts point elsewhere (moved, or its Python gone) is made again.
    if ! "$venv/bin/pytest" --version >/dev/null 2>&1; then
        rm -rf "$venv"
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install -q 'docker==6.1.3' 'requests<2.32' 'pytest<9' 'pytest-timeout' 'paramiko' >&2
    fi
    echo "$venv"
}
