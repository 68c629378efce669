//! Node b as seen from node a: a second process of this binary, started, watched and
//! stopped; and, in node b, the watch on the node a that started it.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustf_workers::prelude::*;
use tokio::process::{Child, Command};

/// How long past its grace period a node gets to exit after SIGTERM, before it is
/// killed: time to store the outcomes of its last jobs and mark itself stopped.
pub(crate) const STOP_MARGIN: Duration = Duration::from_secs(5);

/// How often node b checks that node a is still there.
const PARENT_CHECK: Duration = Duration::from_millis(200);

/// A node started by this one, killed if it is dropped unstopped (node a returning early
/// with an error leaves no process behind).
pub(crate) struct Peer {
    child: Child,
    pid: u32,
}

impl Peer {
    /// Starts this binary as `--node <name>` on the database at `url`, with the same
    /// standard output and error as this process, and this process's environment (the
    /// settings of `CLUSTER_CONCURRENCY`, `SHUTDOWN_GRACE_MS`, `CLUSTER_LOG`, `RUST_LOG`).
    pub(crate) fn spawn(name: &str, url: &str) -> Result<Peer> {
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .args(["--node", name])
            // In the environment, not the command line, which `ps` shows to everyone.
            .env("DATABASE_URL", url)
            .env(crate::PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| Error::internal(format!("node {name} exited as it started")))?;
        Ok(Peer { child, pid })
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Resolves when it exits, with its status.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future before it resolves leaves the process running.
    pub(crate) async fn exited(&mut self) -> Result<ExitStatus> {
        Ok(self.child.wait().await?)
    }

    /// Asks it to stop, as a deploy would (SIGTERM), and waits `within` for it to exit;
    /// kills it past that.
    ///
    /// # Errors
    ///
    /// When it was still running after `within`, or could not be signalled.
    pub(crate) async fn stop(&mut self, within: Duration) -> Result<ExitStatus> {
        terminate(&mut self.child, self.pid).await?;
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(Error::timeout(format!(
                    "node b still running {within:?} after SIGTERM: killed"
                )))
            }
        }
    }
}

/// Sends SIGTERM to `pid` (std has no way to send it; `kill(1)` has).
#[cfg(unix)]
async fn terminate(_child: &mut Child, pid: u32) -> Result<()> {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "`kill -TERM {pid}` failed ({status})"
        )))
    }
}

/// Where there is no SIGTERM, the process is stopped at once.
#[cfg(not(unix))]
async fn terminate(child: &mut Child, _pid: u32) -> Result<()> {
    Ok(child.start_kill()?)
}

/// Resolves once the node a named by environment variable `var` (its pid) is no longer
/// this process's parent: it died without stopping this node (SIGKILL, a crash). Never
/// resolves for a node started by hand, without `var`.
pub(crate) async fn parent_gone(var: &str) {
    #[cfg(unix)]
    if let Some(parent) = std::env::var(var)
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
    {
        // A dead parent's orphans are adopted by init or a subreaper: the parent id
        // changes.
        while std::os::unix::process::parent_id() == parent {
            tokio::time::sleep(PARENT_CHECK).await;
        }
        return;
    }
    #[cfg(not(unix))]
    let _ = var;
    std::future::pending::<()>().await;
}
