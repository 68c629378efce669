use rustf_workers::prelude::*;

#[worker("wrong-context")]
async fn wrong_context(ctx: String) -> Result<()> {
    println!("{ctx}");
    Ok(())
}

fn main() {}
