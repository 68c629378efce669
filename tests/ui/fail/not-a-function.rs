use rustf_workers::prelude::*;

#[worker("a-struct")]
struct NotAFunction;

fn main() {
    let _ = NotAFunction;
}
