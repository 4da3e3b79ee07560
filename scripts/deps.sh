#!/usr/bin/env bash
# Installs what building and running berth needs from Debian's packages (idempotent),
# and what the tests compare against: docker.io (a private dockerd checks image archives),
# docker-registry and skopeo (registry interop), openssl and curl (HTTPS registry tests),
# iperf3 (the overlay benchmark), and the standard CNI plugins the CRI's pods are networked with
# (containernetworking-plugins: bridge, host-local, loopback, portmap…, in /usr/lib/cni, one of
# the daemon's default plugin directories).
set -euo pipefail
need=()
have() { dpkg -s "$1" >/dev/null 2>&1; }
for p in busybox-static iproute2 nftables procps tar ca-certificates pkg-config gcc libc6-dev python3 python3-venv docker-registry docker.io etcd-server skopeo openssl curl iperf3 containernetworking-plugins openssh-client; do
    have "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "berth needs a Rust toolchain (cargo, rustc 1.90 or newer); install it with rustup" >&2
        exit 1
    fi
fi
# The lint gate's tools (rustup toolchains may lack them).
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

# buildx and compose v2 as docker CLI plugins, for the tests that drive them (BuildKit's API).
# Debian trixie ships both as static Go binaries that run on bookworm: the .debs come through
# a sources list of our own, so the system's apt sources and pinning stay as they are. They go
# to .cache/cli-plugins, not to a directory the docker CLI reads by default: with buildx
# installed system-wide every `docker build` would switch to BuildKit, and tests of the
# classic builder drive `docker build` too. Tests point DOCKER_CONFIG at a config whose
# cliPluginsExtraDirs names this directory.
install_cli_plugins() {
    local root dest work
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    dest=$root/.cache/cli-plugins
    [ -x "$dest/docker-buildx" ] && [ -x "$dest/docker-compose" ] && return 0
    work=$(mktemp -d)

    mkdir -p "$work/lists/partial" "$work/archives/partial" "$dest"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        >"$work/trixie.list"
    local apt_opts=(-o "Dir::Etc::sourcelist=$work/trixie.list" -o Dir::Etc::sourceparts=-
        -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::archives=$work/archives"
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Get::List-Cleanup=0
        -o APT::Sandbox::User=root) # the .debs land in a private temp directory
    apt-get "${apt_opts[@]}" update -qq
    (cd "$work" && apt-get "${apt_opts[@]}" download -qq docker-buildx docker-compose)
    for deb in "$work"/docker-buildx_*.deb "$work"/docker-compose_*.deb; do
        dpkg-deb -x "$deb" "$work/root"
    done
    install -m 0755 "$work/root/usr/libexec/docker/cli-plugins/docker-buildx" "$dest/docker-buildx"
    install -m 0755 "$work/root/usr/libexec/docker/cli-plugins/docker-compose" "$dest/docker-compose"
    rm -rf "$work"
}
install_cli_plugins
