#!/bin/sh
# Builds bin/photo-service. `tfinterop build` (and interop, check, pytest --tfinterop) runs it
# from this directory with what this machine's build needs in the environment (see
# docs/consumer-contract.md, "Your own consumer"):
#   TFINTEROP_SOURCES       the contract code shipped with tfinterop (rust_consumer/)
#   TFINTEROP_CARGO_CONFIG  cargo --config file linking tensorflow-sys to the TensorFlow wheel
# CARGO_TARGET_DIR is honoured: point it at a shared target dir to reuse compiled crates.
set -eu
: "${TFINTEROP_SOURCES:?is not set: run this through tfinterop build}"
: "${TFINTEROP_CARGO_CONFIG:?is not set: run this through tfinterop build}"
ln -sfn "$TFINTEROP_SOURCES/rust_consumer" .tfinterop-rust
cargo build --release --quiet --config "$TFINTEROP_CARGO_CONFIG"
mkdir -p bin
cp "${CARGO_TARGET_DIR:-target}/release/photo-service" bin/photo-service.tmp
mv bin/photo-service.tmp bin/photo-service
