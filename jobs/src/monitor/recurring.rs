//! A recurring job as listed: [`RecurringView`].

use crate::storage::RecurringEntry;

/// A registered recurring job and whether it is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecurringView {
    /// The entry as stored (schedule, next and last run).
    pub entry: RecurringEntry,
    /// Whether its ticks pass without a job.
    pub paused: bool,
}
