#!/usr/bin/env bash
# Runs every test: unit tests, then integration tests against real daemons on temporary
# data roots (root, real kernel), then docker-py's own integration suite against berth.
# Installs what it needs. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
. scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

# The lint gate, before the tests: the code is as rustfmt writes it (rustfmt.toml) and
# clippy finds nothing, in the tests too.
cargo fmt --all --check
cargo clippy --workspace --all-targets --release --locked -- -D warnings
cargo build --release --locked -p berth -p berth-shim
export BERTH_BIN_DIR="$PWD/target/x86_64-unknown-linux-gnu/release"
. scripts/lib.sh
# Some integration tests drive docker-py's low-level API (tests/streams.rs).
BERTH_DOCKER_PY_PYTHON="$(docker_py_venv "$PWD")/bin/python"
export BERTH_DOCKER_PY_PYTHON
cargo test --release --locked --workspace -- --test-threads="${BERTH_TEST_THREADS:-4}"
scripts/docker-py.sh
