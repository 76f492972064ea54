//! Compiles in what this manifest builds, so that the consumer record says it: the
//! registry name from `[package.metadata.tfinterop] consumer` in Cargo.toml
//! (`TFINTEROP_CONSUMER_NAME`) and the version of the `tensorflow` crate in the manifest's own
//! Cargo.lock (`TFINTEROP_TENSORFLOW_CRATE`), whichever manifest (crate 0.17 or 0.21) builds.

use std::path::Path;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let read = |name: &str| {
        let path = Path::new(&dir).join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        (path, text)
    };
    let (manifest, text) = read("Cargo.toml");
    let name = consumer_name(&text).unwrap_or_else(|| {
        panic!(
            "{} has no [package.metadata.tfinterop] consumer",
            manifest.display()
        )
    });
    println!("cargo:rustc-env=TFINTEROP_CONSUMER_NAME={name}");
    let (lock, text) = read("Cargo.lock");
    let version = tensorflow_version(&text)
        .unwrap_or_else(|| panic!("{} locks no `tensorflow` package", lock.display()));
    println!("cargo:rustc-env=TFINTEROP_TENSORFLOW_CRATE={version}");
}

/// `"VALUE"` -> `VALUE`
fn quoted(value: &str) -> Option<&str> {
    value.strip_prefix('"')?.strip_suffix('"')
}

/// `consumer = "NAME"` in the manifest's `[package.metadata.tfinterop]` table.
fn consumer_name(manifest: &str) -> Option<&str> {
    manifest
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "[package.metadata.tfinterop]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| quoted(l.strip_prefix("consumer = ")?))
}

/// The `version` of the `[[package]]` named exactly `tensorflow` (not tensorflow-sys).
fn tensorflow_version(lock: &str) -> Option<&str> {
    lock.split("[[package]]").find_map(|block| {
        let mut fields = block.lines().map(str::trim);
        if !fields.clone().any(|l| l == "name = \"tensorflow\"") {
            return None;
        }
        quoted(fields.find_map(|l| l.strip_prefix("version = "))?)
    })
}
