//! What [`Monitoring::cancel`](super::Monitoring::cancel) did: [`Cancellation`].

/// The result of asking to cancel a job.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), jobs::Error> {
/// use jobs::storage::Cancellation;
/// use std::time::Duration;
///
/// #[jobs::background_job]
/// async fn report(month: u32) {}
///
/// let client = jobs::Client::new(jobs::MemoryStorage::new());
/// let id = jobs::schedule!(&client, report(5), in = Duration::from_secs(60)).await?;
/// // Not running yet: cancelling deletes it.
/// assert_eq!(client.cancel(&id).await?, Cancellation::Deleted);
/// // Now it is finished (Deleted): nothing left to cancel.
/// assert_eq!(client.cancel(&id).await?, Cancellation::Finished);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cancellation {
    /// The job was enqueued, scheduled or awaiting (a continuation waiting for its parent or
    /// batch): it was deleted and will not run, whatever its parent does later.
    Deleted,
    /// The job is running (leased by a worker): a cancel request is recorded. The worker
    /// performing it fires its [`JobContext`](crate::JobContext) token within about a second,
    /// and the attempt ends Deleted whatever the job returns.
    Requested,
    /// The job already finished (succeeded, failed or deleted): nothing was done.
    Finished,
    /// The storage has no such job (never stored, or removed by retention).
    NotFound,
}
