//! Listing jobs by state: the request ([`JobQuery`]) and one page of the answer ([`JobPage`]).
//!
//! Pages are linked by cursors, not offsets, so a listing stays stable while jobs come and go:
//! a cursor names the position of the last job a page looked at, and the next page starts after
//! it, wherever that job has moved to in the meantime (or, if it left the state, where it was).

use super::Count;
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::state::JobState;
use crate::storage::JobInfo;

/// Jobs per page unless told otherwise.
pub const DEFAULT_LIMIT: usize = 25;
/// The most jobs one page holds.
pub const MAX_LIMIT: usize = 1_000;
/// How many jobs a filtered listing looks at per call unless told otherwise.
pub const DEFAULT_WINDOW: usize = 10_000;
/// The most jobs a filtered listing looks at in one call.
pub const MAX_WINDOW: usize = 100_000;

/// Which jobs to list: a state, optionally one queue, and filters.
///
/// Jobs are listed in the order their state keeps them: enqueued jobs in queue order (the next
/// to run first), scheduled ones by due time (soonest first), succeeded, failed and deleted ones
/// newest first, processing and awaiting ones by number. Without a queue, the queues are listed
/// one after the other, by name.
///
/// A filter on the job name or on a substring of the arguments is applied while scanning the
/// state's index, and one call looks at no more than [`window`](Self::window) jobs: a page may
/// then hold fewer matches than asked for, with a cursor to look further;
/// [`JobPage::examined`] says how many were looked at.
///
/// # Examples
///
/// ```
/// use jobs::monitor::JobQuery;
/// use jobs::JobState;
///
/// let q = JobQuery::new(JobState::Failed).queue("mail").search("alice@").limit(50);
/// assert!(q.is_filtered());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobQuery {
    /// The state listed.
    pub state: JobState,
    /// Only this queue (`None`: every queue).
    pub queue: Option<String>,
    /// Only this job (listed if it is in the state and passes the other filters).
    pub id: Option<JobId>,
    /// Only jobs with this registered name.
    pub name: Option<String>,
    /// Only jobs whose JSON arguments contain this text.
    pub search: Option<String>,
    /// Start after this position (the [`JobPage::next`] of the previous page).
    pub cursor: Option<String>,
    /// At most this many jobs.
    pub limit: usize,
    /// At most this many jobs looked at when filtering.
    pub window: usize,
}

impl JobQuery {
    /// The first page of jobs in `state`, on every queue, unfiltered.
    pub fn new(state: JobState) -> JobQuery {
        JobQuery {
            state,
            queue: None,
            id: None,
            name: None,
            search: None,
            cursor: None,
            limit: DEFAULT_LIMIT,
            window: DEFAULT_WINDOW,
        }
    }

    /// Only jobs of `queue`.
    #[must_use]
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Only the job `id`.
    #[must_use]
    pub fn id(mut self, id: JobId) -> Self {
        self.id = Some(id);
        self
    }

    /// Only jobs named `name`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only jobs whose arguments contain `text`.
    #[must_use]
    pub fn search(mut self, text: impl Into<String>) -> Self {
        self.search = Some(text.into());
        self
    }

    /// The page after `cursor`.
    #[must_use]
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// At most `limit` jobs (1 to [`MAX_LIMIT`]).
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.clamp(1, MAX_LIMIT);
        self
    }

    /// Look at no more than `window` jobs per call when filtering (1 to [`MAX_WINDOW`]).
    #[must_use]
    pub fn window(mut self, window: usize) -> Self {
        self.window = window.clamp(1, MAX_WINDOW);
        self
    }

    /// Whether a name or argument filter applies.
    pub fn is_filtered(&self) -> bool {
        self.name.is_some() || self.search.is_some()
    }

    /// Whether `info` passes the name and argument filters.
    pub fn matches(&self, name: &str, args: &str) -> bool {
        self.name.as_deref().map_or(true, |n| n == name)
            && self.search.as_deref().map_or(true, |s| args.contains(s))
    }

    /// How many jobs one call may look at: the window when filtering, the page otherwise.
    pub fn budget(&self) -> usize {
        if self.is_filtered() {
            self.window.clamp(1, MAX_WINDOW)
        } else {
            self.page_size()
        }
    }

    /// The page size, within bounds.
    pub fn page_size(&self) -> usize {
        self.limit.clamp(1, MAX_LIMIT)
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobPage {
    /// The jobs, in the state's order.
    pub jobs: Vec<JobInfo>,
    /// Where the next page starts; `None` at the end.
    pub next: Option<String>,
    /// How many jobs of the state this call looked at (more than `jobs.len()` when filtering).
    pub examined: u64,
    /// How many jobs are in the state (of the queue listed, or of all queues).
    pub total: Count,
}

impl JobPage {
    /// A page of `jobs`, continued at `next`, after looking at `examined` jobs.
    pub fn new(jobs: Vec<JobInfo>, next: Option<String>, examined: u64, total: Count) -> Self {
        JobPage {
            jobs,
            next,
            examined,
            total,
        }
    }

    /// An empty last page.
    pub fn empty(total: Count) -> Self {
        JobPage::new(Vec::new(), None, 0, total)
    }
}

/// The error of a cursor no listing of this kind made.
pub(crate) fn bad_cursor(cursor: &str) -> Error {
    Error::config(format!(
        "`{cursor}` is not a cursor of this listing: pass the `next` of the page before"
    ))
}

/// A cursor made of two numbers, `a:b`.
pub(crate) fn parse_pair(cursor: &str) -> Result<(u64, u64)> {
    let (a, b) = cursor.split_once(':').ok_or_else(|| bad_cursor(cursor))?;
    match (a.parse(), b.parse()) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        _ => Err(bad_cursor(cursor)),
    }
}

/// A cursor of one number.
pub(crate) fn parse_one(cursor: &str) -> Result<u64> {
    cursor.parse().map_err(|_| bad_cursor(cursor))
}
