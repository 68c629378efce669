//! Makes cargo rebuild the application when a file is added to or removed from `src/workers/`.

fn main() {
    println!("cargo:rerun-if-changed=src/workers");
}
