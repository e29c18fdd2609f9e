//! Everything about one job for its page: [`JobDetail`].

use crate::job::JobId;
use crate::state::JobState;
use crate::storage::{Finish, JobInfo};

/// A job with what its page shows beside its record: its last error, its return value, its
/// parent, its continuations and its batch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobDetail {
    /// The job's record: name, arguments, state, attempts, history.
    pub info: JobInfo,
    /// The reason of its latest failed attempt (a retry, a crash, or the final failure).
    pub last_error: Option<String>,
    /// Its JSON return value, where the storage keeps one (for jobs that continuations wait
    /// on; other jobs' values are not stored).
    pub result: Option<String>,
    /// The job this continuation waited for.
    pub parent: Option<JobId>,
    /// The continuations still waiting for this job, with their condition.
    pub continuations: Vec<(JobId, Finish)>,
    /// The batch it belongs to, while the storage keeps that (until the job succeeded).
    pub batch: Option<JobId>,
}

impl JobDetail {
    /// The detail a job's record alone tells: its last error and its parent, both read from its
    /// history.
    pub fn from_info(info: JobInfo) -> JobDetail {
        let last_error = info
            .history
            .iter()
            .rev()
            .find(|c| {
                matches!(c.state, JobState::Failed | JobState::Scheduled)
                    && c.reason
                        .as_deref()
                        .is_some_and(|r| !r.starts_with("waiting for") && r != "requeued")
            })
            .and_then(|c| c.reason.clone());
        let parent = info
            .history
            .iter()
            .find(|c| c.state == JobState::Awaiting)
            .and_then(|c| c.reason.as_deref())
            .and_then(|r| r.strip_prefix("waiting for "))
            .filter(|r| !r.starts_with("batch ") && !r.starts_with("a "))
            .and_then(|r| r.parse().ok());
        JobDetail {
            info,
            last_error,
            result: None,
            parent,
            continuations: Vec::new(),
            batch: None,
        }
    }
}
