#!/usr/bin/env bash
# Installs what building and running berth needs from Debian's packages (idempotent),
# and what the tests compare against: docker.io (a private dockerd checks image archives),
# docker-registry and skopeo (registry interop), openssl and curl (HTTPS registry tests),
# iperf3 (the overlay benchmark).
set -euo pipefail
need=()
have() { dpkg -s "$1" >/dev/null 2>&1; }
for p in busybox-static iproute2 nftables procps tar ca-certificates pkg-config gcc libc6-dev python3 python3-venv docker-registry docker.io etcd-server skopeo openssl curl iperf3; do
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
