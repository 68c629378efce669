//! The run state machine: every state a run can be in, and the only moves between them.

use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

use crate::RunStatus;

/// Where a run is in its life.
///
/// ```text
/// Queued ──► Running ──► Completed | Failed | TimedOut | Panicked | Cancelled
///   │          │ ▲
///   │          ▼ │ (retry)
///   │        BackingOff
///   └──────────┴──────► Cancelled
/// ```
///
/// [`RunState::can_become`] holds the legal moves; the runtime makes no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunState {
    /// Waiting in the admission queue for a concurrency cap.
    Queued,
    /// Executing an attempt.
    Running,
    /// Between attempts: the last one failed and a retry waits out its backoff.
    BackingOff,
    /// Terminal: the handler returned `Ok(())`.
    Completed,
    /// Terminal: the (last) attempt returned an error.
    Failed,
    /// Terminal: the (last) attempt timed out.
    TimedOut,
    /// Terminal: cancelled by request or by shutdown.
    Cancelled,
    /// Terminal: the (last) attempt panicked.
    Panicked,
}

const ALL: [RunState; 8] = [
    RunState::Queued,
    RunState::Running,
    RunState::BackingOff,
    RunState::Completed,
    RunState::Failed,
    RunState::TimedOut,
    RunState::Cancelled,
    RunState::Panicked,
];

impl RunState {
    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running | Self::BackingOff)
    }

    /// Whether a run in this state may move to `next`. The only moves: a queued run starts
    /// or is cancelled; a running one ends in any terminal state or backs off for a retry;
    /// a backing-off one runs again or is cancelled. Terminal states are final.
    pub fn can_become(self, next: Self) -> bool {
        use RunState::*;
        match self {
            Queued => matches!(next, Running | Cancelled),
            Running => next == BackingOff || next.is_terminal(),
            BackingOff => matches!(next, Running | Cancelled),
            _ => false,
        }
    }

    /// The name used in JSON: `queued`, `running`, `backing_off`, `completed`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::BackingOff => "backing_off",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Panicked => "panicked",
        }
    }
}

impl From<RunStatus> for RunState {
    fn from(status: RunStatus) -> Self {
        match status {
            RunStatus::Completed => Self::Completed,
            RunStatus::Failed => Self::Failed,
            RunStatus::TimedOut => Self::TimedOut,
            RunStatus::Cancelled => Self::Cancelled,
            RunStatus::Panicked => Self::Panicked,
        }
    }
}

/// A run's current state, changed only through [`StateCell::become_`], which refuses
/// illegal moves.
#[derive(Debug)]
pub(crate) struct StateCell(AtomicU8);

/// A move the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IllegalTransition {
    pub(crate) from: RunState,
    pub(crate) to: RunState,
}

impl StateCell {
    pub(crate) fn new(state: RunState) -> Self {
        Self(AtomicU8::new(state as u8))
    }

    pub(crate) fn get(&self) -> RunState {
        ALL[usize::from(self.0.load(Ordering::Acquire))]
    }

    /// Moves to `to` if the machine allows it from the current state.
    pub(crate) fn become_(&self, to: RunState) -> Result<RunState, IllegalTransition> {
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            let from = ALL[usize::from(current)];
            if !from.can_become(to) {
                return Err(IllegalTransition { from, to });
            }
            // AcqRel: a reader that sees the new state sees what led to it.
            match self.0.compare_exchange_weak(
                current,
                to as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(from),
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legal_moves_and_only_those() {
        use RunState::*;
        let legal = [
            (Queued, Running),
            (Queued, Cancelled),
            (Running, BackingOff),
            (Running, Completed),
            (Running, Failed),
            (Running, TimedOut),
            (Running, Cancelled),
            (Running, Panicked),
            (BackingOff, Running),
            (BackingOff, Cancelled),
        ];
        for from in ALL {
            for to in ALL {
                assert_eq!(
                    from.can_become(to),
                    legal.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn the_cell_refuses_illegal_moves_and_keeps_its_state() {
        let cell = StateCell::new(RunState::Queued);
        assert_eq!(cell.become_(RunState::Running), Ok(RunState::Queued));
        assert_eq!(cell.become_(RunState::BackingOff), Ok(RunState::Running));
        assert_eq!(
            cell.become_(RunState::Completed),
            Err(IllegalTransition {
                from: RunState::BackingOff,
                to: RunState::Completed
            })
        );
        assert_eq!(cell.get(), RunState::BackingOff);
        assert_eq!(cell.become_(RunState::Cancelled), Ok(RunState::BackingOff));
        for next in ALL {
            assert!(cell.become_(next).is_err(), "a terminal state is final");
        }
        assert_eq!(cell.get(), RunState::Cancelled);
    }

    #[test]
    fn terminal_states_mirror_run_statuses() {
        for status in [
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::TimedOut,
            RunStatus::Cancelled,
            RunStatus::Panicked,
        ] {
            let state = RunState::from(status);
            assert!(state.is_terminal());
            assert_eq!(state.as_str(), status.as_str());
        }
    }
}
