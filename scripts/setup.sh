#!/usr/bin/env bash
# Sets berth up on this machine and shows it working: builds it (release), installs
# berth and berth-shim to /usr/local/bin (with shell completions and man pages), starts the daemon (socket /run/berth/berth.sock,
# data root /var/lib/berth), makes busybox:latest from Debian's busybox-static, and runs a
# container. Run as root. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
. scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release --locked -p berth -p berth-shim
bin=target/x86_64-unknown-linux-gnu/release
install -m 0755 "$bin/berth" "$bin/berth-shim" /usr/local/bin/
# Shell completions and man pages, made from the CLI's own definition.
share=/usr/local/share
mkdir -p "$share/bash-completion/completions" "$share/zsh/site-functions" "$share/fish/vendor_completions.d" "$share/man/man1"
berth completion bash > "$share/bash-completion/completions/berth"
berth completion zsh > "$share/zsh/site-functions/_berth"
berth completion fish > "$share/fish/vendor_completions.d/berth.fish"
berth __man "$share/man/man1" 2>/dev/null
mkdir -p /etc/berth /var/lib/berth /run/berth
[ -f /etc/berth/daemon.json ] || echo '{}' > /etc/berth/daemon.json

export DOCKER_HOST=unix:///run/berth/berth.sock
if ! berth version >/dev/null 2>&1; then
    if [ -f /run/berth/berth.pid ] && kill -0 "$(cat /run/berth/berth.pid)" 2>/dev/null; then
        kill "$(cat /run/berth/berth.pid)"; while kill -0 "$(cat /run/berth/berth.pid 2>/dev/null)" 2>/dev/null; do sleep 0.1; done
    fi
    nohup berth daemon >/var/log/berth.log 2>&1 &
    # The daemon logs "API listening" once the socket accepts connections.
    timeout 30 bash -c 'until grep -q "API listening" /var/log/berth.log; do sleep 0.1; done'
fi

if ! berth image inspect busybox:latest >/dev/null 2>&1; then
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root"/{bin,etc,tmp,root,var/opt,home}
    cp /bin/busybox "$root/bin/"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    chmod 1777 "$root/tmp"
    tar -C "$root" -c . | berth import - busybox:latest >/dev/null
fi

# The `registry` image: berth's own executable serving a registry on port 5000, so
# `berth run -d -p 5000:5000 --restart=always -v /opt/registry:/var/lib/registry registry` works.
berth image inspect registry:latest >/dev/null 2>&1 || berth registry image >/dev/null

berth run --rm busybox echo hello from berth
