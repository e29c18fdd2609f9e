//! Metric handles kept by queue and job name, as the enqueue counter and the acker look them up
//! once per job.

use foldhash::HashMap;
use std::ops::Deref;
use std::sync::Arc;

/// Values by (queue, job name), with the pair of the last lookup kept aside: an application
/// mostly stores and runs the same few jobs, so a lookup is mostly two string comparisons
/// (by address first) instead of two hash lookups (230 instructions a job under callgrind for
/// the enqueue counter's earlier hash lookup).
pub(super) struct ByJob<T> {
    last: Option<(Arc<str>, Arc<str>, T)>,
    /// Made on first use, so an empty one can be a `const` (a thread-local without lazy set-up).
    by_queue: Option<ByName<ByName<T>>>,
}

type ByName<T> = HashMap<Box<str>, T>;

impl<T: Clone> ByJob<T> {
    pub(super) const fn new() -> Self {
        ByJob {
            last: None,
            by_queue: None,
        }
    }

    /// The value for `job` on `queue`, made by `make` on first use. The names are the strings
    /// the caller holds: a caller with `Arc<str>`s has them shared rather than copied, so the
    /// next lookup with the same allocations compares addresses only.
    pub(super) fn get<S: Name>(&mut self, queue: &S, job: &S, make: impl FnOnce() -> T) -> &T {
        let hit = self
            .last
            .as_ref()
            .is_some_and(|(q, j, _)| same(q, queue) && same(j, job));
        if !hit {
            let by_queue = self.by_queue.get_or_insert_with(HashMap::default);
            let by_job = match by_queue.get_mut(&**queue) {
                Some(by_job) => by_job,
                None => by_queue.entry((**queue).into()).or_default(),
            };
            let value = match by_job.get(&**job) {
                Some(value) => value.clone(),
                None => {
                    let value = make();
                    by_job.insert((**job).into(), value.clone());
                    value
                }
            };
            self.last = Some((queue.share(), job.share(), value));
        }
        let Some((_, _, value)) = &self.last else {
            unreachable!("the last pair is set above")
        };
        value
    }
}

/// A queue or job name as a caller holds it.
pub(super) trait Name: Deref<Target = str> {
    /// The name as a shared string: cloned when it is one, copied otherwise.
    fn share(&self) -> Arc<str>;
}

impl Name for &str {
    fn share(&self) -> Arc<str> {
        (*self).into()
    }
}

impl Name for Arc<str> {
    fn share(&self) -> Arc<str> {
        self.clone()
    }
}

/// Whether two strings are equal, compared by address first (the jobs of one call mostly
/// share their queue and name strings), by content only when the addresses differ.
pub(super) fn same(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}
