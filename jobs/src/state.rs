//! Job states and the history of transitions between them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum JobState {
    /// Stored and waiting on its queue for a worker.
    Enqueued,
    /// Stored and waiting for its due time (a delayed job or a retry).
    Scheduled,
    /// Leased by a worker that is performing it.
    Processing,
    /// Performed successfully. Kept for a bounded time or count, then removed.
    Succeeded,
    /// Every attempt failed (or it could not be run at all). Kept until requeued or deleted.
    Failed,
    /// Deleted by a user or a policy. Kept for a bounded time or count, then removed.
    Deleted,
    /// Waiting for another job to finish (a continuation).
    Awaiting,
}

impl JobState {
    /// The state's name as shown in history and dashboards.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Enqueued => "enqueued",
            JobState::Scheduled => "scheduled",
            JobState::Processing => "processing",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Deleted => "deleted",
            JobState::Awaiting => "awaiting",
        }
    }

    /// Parses the name produced by [`JobState::as_str`].
    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "enqueued" => JobState::Enqueued,
            "scheduled" => JobState::Scheduled,
            "processing" => JobState::Processing,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "deleted" => JobState::Deleted,
            "awaiting" => JobState::Awaiting,
            _ => return None,
        })
    }

    /// Whether the job will not run again unless a user acts on it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Deleted
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recorded transition: the state entered, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StateChange {
    /// The state entered.
    #[serde(rename = "s")]
    pub state: JobState,
    /// When, in milliseconds since the Unix epoch.
    #[serde(rename = "t")]
    pub at_ms: u64,
    /// Why, for failures, retries, reaped leases and deletions.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl StateChange {
    /// A transition into `state` at `at_ms` with an optional reason.
    pub fn new(state: JobState, at_ms: u64, reason: Option<String>) -> Self {
        StateChange {
            state,
            at_ms,
            reason,
        }
    }
}
