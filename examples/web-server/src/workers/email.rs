//! Sending email, with a typed payload.

use std::time::Duration;

use rustf_workers::prelude::*;
use serde::Deserialize;

/// The payload of `send-email`.
#[derive(Debug, Deserialize)]
pub struct SendEmail {
    /// The recipient.
    pub to: String,
    /// The subject line.
    #[serde(default)]
    pub subject: String,
}

/// Sends one email (here: pretends to).
#[worker("send-email", timeout = "10s")]
pub async fn send_email(ctx: WorkerContext, email: SendEmail) -> Result<()> {
    if !email.to.contains('@') {
        return Err(Error::validation(format!("`{}` is not an email address", email.to)));
    }
    ctx.info(&format!("sending {:?} to {}", email.subject, email.to));
    ctx.sleep(Duration::from_millis(10)).await;
    Ok(())
}
