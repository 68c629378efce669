use rustf_workers::prelude::*;

struct Mailer;

impl Mailer {
    #[worker("method")]
    async fn send(&self, _ctx: WorkerContext) -> Result<()> {
        Ok(())
    }
}

fn main() {
    let _ = Mailer;
}
