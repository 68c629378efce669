//! Nodes: the processes that run a store's jobs, as the store knows them.

use serde::{Deserialize, Serialize};

/// A process that runs jobs, as it registers itself with the store when its queue
/// starts ([`JobStore::register_node`](super::JobStore::register_node)): a fresh id per
/// start, never reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNode {
    /// The node's id: the owner of the jobs it claims.
    pub id: String,
    /// The machine it runs on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// How many stored jobs it runs at once (`QueueOptions::concurrency`).
    pub concurrency: u32,
    /// Its memory pool, in bytes (`WorkerRegistry::set_memory_pool`).
    pub memory_pool: u64,
    /// The workers it has registered, sorted.
    pub workers: Vec<String>,
    /// How often it beats, in ms.
    pub heartbeat_ms: u64,
}

/// What a node's heartbeat carries ([`JobStore::node_beat`](super::JobStore::node_beat)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeBeat {
    /// The node.
    pub id: String,
    /// Runs of stored jobs in flight there.
    pub running: u32,
    /// Memory its runs declare, in bytes.
    pub memory_used: u64,
    /// Until when it claims nothing (ms since the Unix epoch), after too many of its
    /// jobs failed for reasons of the node (panics, timeouts): its cooldown.
    pub cooling_until_ms: Option<i64>,
}

/// A node's health, derived from its heartbeats when it is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeStatus {
    /// Beating, running no stored job.
    Idle,
    /// Beating, running stored jobs.
    Busy,
    /// In its cooldown, or a beat late (more than two intervals since the last one).
    Unhealthy,
    /// Stopped (its queue shut down), or no beat for longer than the listing's timeout:
    /// its leases run out and its jobs are rescued.
    Offline,
}

impl NodeStatus {
    /// The status's name, as the HTTP routes spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Unhealthy => "unhealthy",
            Self::Offline => "offline",
        }
    }
}

/// Everything a store knows of a node ([`JobStore::nodes`](super::JobStore::nodes)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// How it registered.
    #[serde(flatten)]
    pub node: NewNode,
    /// When it registered, in ms since the Unix epoch.
    pub started_at_ms: i64,
    /// Its last heartbeat.
    pub last_beat_ms: i64,
    /// When its queue shut down, if it did.
    pub stopped_at_ms: Option<i64>,
    /// Runs of stored jobs in flight, at its last beat.
    pub running: u32,
    /// Memory its runs declared, at its last beat.
    pub memory_used: u64,
    /// The end of its cooldown, if it is cooling down.
    pub cooling_until_ms: Option<i64>,
    /// Its health at the time of the listing.
    pub status: NodeStatus,
}

impl NodeRecord {
    /// The status of a node with these heartbeats at `now_ms`: offline once stopped or
    /// silent for `offline_after_ms`, unhealthy while cooling down or more than two beats
    /// late, else busy or idle by what it runs.
    pub fn status_at(&self, now_ms: i64, offline_after_ms: u64) -> NodeStatus {
        let silent = now_ms.saturating_sub(self.last_beat_ms);
        let offline_after = i64::try_from(offline_after_ms).unwrap_or(i64::MAX);
        let late = i64::try_from(self.node.heartbeat_ms.saturating_mul(2)).unwrap_or(i64::MAX);
        if self.stopped_at_ms.is_some() || silent > offline_after {
            NodeStatus::Offline
        } else if self.cooling_until_ms.is_some_and(|until| until > now_ms) || silent > late {
            NodeStatus::Unhealthy
        } else if self.running > 0 {
            NodeStatus::Busy
        } else {
            NodeStatus::Idle
        }
    }
}
