use rustf_workers::prelude::*;

#[worker("no-parameters")]
async fn no_parameters() -> Result<()> {
    Ok(())
}

fn main() {}
