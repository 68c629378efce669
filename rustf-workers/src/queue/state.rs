//! The states of a stored job, and which moves between them are legal.

use serde::{Deserialize, Serialize};

/// Where a stored job is in its life.
///
/// ```text
///             enqueue
///      ┌─────────┴─────────┐
///  Scheduled ──due──> Available <─────────────── requeue / rescue ─┐
///      │                  │                                        │
///      └──────claim───────┴──> Running ──> Completed               │
///                              │  │  └──> Discarded ─┐ retry()     │
///          Retrying <──failed──┘  └─────> Cancelled ─┴─> Available │
///              └──────────claim──────────> Running ────────────────┘
/// ```
///
/// Waiting jobs (`Scheduled`, `Available`, `Retrying`) are claimed once their `run_at`
/// has passed; the stored state is the one the job was written with, so a `Scheduled` job
/// whose time has come still reads `Scheduled` until it is claimed.
///
/// # Examples
///
/// ```
/// use rustf_workers::queue::JobState;
///
/// assert!(JobState::Running.can_become(JobState::Retrying));
/// assert!(!JobState::Completed.can_become(JobState::Running));
/// assert_eq!(serde_json::to_string(&JobState::Retrying).unwrap(), "\"retrying\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a `run_at` in the future.
    Scheduled,
    /// Waiting, due now.
    Available,
    /// Claimed by a process, which holds a lease on it.
    Running,
    /// An attempt failed; waiting for the backoff stored in its `run_at`.
    Retrying,
    /// Finished: the last attempt succeeded.
    Completed,
    /// Finished for good without success: out of attempts, or refused by validation.
    Discarded,
    /// Finished: cancelled before or while it ran.
    Cancelled,
}

impl JobState {
    /// Every state, in the order of the enum.
    pub const ALL: [JobState; 7] = [
        Self::Scheduled,
        Self::Available,
        Self::Running,
        Self::Retrying,
        Self::Completed,
        Self::Discarded,
        Self::Cancelled,
    ];

    /// The states a job waits in before it is claimed.
    pub const WAITING: [JobState; 3] = [Self::Scheduled, Self::Available, Self::Retrying];

    /// The states of a job that will not run again by itself.
    pub const FINISHED: [JobState; 3] = [Self::Completed, Self::Discarded, Self::Cancelled];

    /// Whether the job has finished: completed, discarded or cancelled.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Discarded | Self::Cancelled)
    }

    /// Whether the job waits to be claimed: scheduled, available or retrying.
    pub fn is_waiting(self) -> bool {
        matches!(self, Self::Scheduled | Self::Available | Self::Retrying)
    }

    /// Whether a job in this state may move to `next`; every store writes only these moves.
    ///
    /// A finished job moves only through an operator's `retry` (discarded or cancelled
    /// back to available); a completed job never runs again.
    pub fn can_become(self, next: JobState) -> bool {
        use JobState::*;
        match self {
            // Claimed, cancelled, or (for a scheduled job) simply due.
            Scheduled => matches!(next, Available | Running | Cancelled),
            Available | Retrying => matches!(next, Running | Cancelled),
            // An outcome, a shutdown's requeue, or a rescue after the lease expired.
            Running => matches!(
                next,
                Completed | Retrying | Discarded | Cancelled | Available
            ),
            Completed => false,
            Discarded | Cancelled => next == Available,
        }
    }

    /// The name stored in the database and used by serde: `"retrying"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Available => "available",
            Self::Running => "running",
            Self::Retrying => "retrying",
            Self::Completed => "completed",
            Self::Discarded => "discarded",
            Self::Cancelled => "cancelled",
        }
    }

    /// The state named `name` (as [`JobState::as_str`] spells it), if any.
    pub fn from_name(name: &str) -> Option<JobState> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::JobState::{self, *};

    #[test]
    fn the_whole_transition_table() {
        // Rows: from; columns: to, in the order of `JobState::ALL`.
        #[rustfmt::skip]
        let table: [(JobState, [u8; 7]); 7] = [
            //            Sch Ava Run Ret Com Dis Can
            (Scheduled, [  0,  1,  1,  0,  0,  0,  1]),
            (Available, [  0,  0,  1,  0,  0,  0,  1]),
            (Running,   [  0,  1,  0,  1,  1,  1,  1]),
            (Retrying,  [  0,  0,  1,  0,  0,  0,  1]),
            (Completed, [  0,  0,  0,  0,  0,  0,  0]),
            (Discarded, [  0,  1,  0,  0,  0,  0,  0]),
            (Cancelled, [  0,  1,  0,  0,  0,  0,  0]),
        ];
        for (from, row) in table {
            for (to, allowed) in JobState::ALL.into_iter().zip(row) {
                assert_eq!(from.can_become(to), allowed == 1, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn names_round_trip_and_match_serde() {
        for state in JobState::ALL {
            assert_eq!(JobState::from_name(state.as_str()), Some(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(state.is_finished(), JobState::FINISHED.contains(&state));
            assert_eq!(state.is_waiting(), JobState::WAITING.contains(&state));
        }
        assert_eq!(JobState::from_name("done"), None);
    }
}
