//! Makes cargo rebuild the crate when a file is added to or removed from `src/workers/`.

// `auto_workers!()` in src/lib.rs scans src/workers/; cargo re-runs this script, and so
// rebuilds the crate, when a file there is added or removed.
fn main() {
    println!("cargo:rerun-if-changed=src/workers");
}
