#!/bin/sh
# Builds target/debian/sitewarden_<version>_amd64.deb: the release binary,
# its man pages and shell completions (generated from the command-line
# definitions), then cargo-deb with the metadata in Cargo.toml.
set -eu
cd "$(dirname "$0")/.."

cargo build --release --locked
rm -rf target/assets
mkdir -p target/assets/man target/assets/completions
target/release/sitewarden generate man target/assets/man
gzip -9n target/assets/man/*.1
target/release/sitewarden generate bash target/assets/completions
target/release/sitewarden generate zsh target/assets/completions

if ! command -v cargo-deb >/dev/null 2>&1; then
    cargo install cargo-deb --locked
fi
cargo deb --no-build --locked
ls target/debian/*.deb
