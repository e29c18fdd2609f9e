//! Batches: many jobs stored at once, with a continuation that runs once all of them succeeded,
//! built with [`Client::batch`]; progress through [`Client::batch_progress`].

use crate::client::Client;
use crate::error::Result;
use crate::job::{Job, JobId};
use crate::storage::{Batch, BatchProgress, NewJob};
use std::future::{Future, IntoFuture};
use std::pin::Pin;

/// A batch being built: add a continuation with [`BatchBuilder::then`], then `.await` it.
/// Made by [`Client::batch`].
#[must_use = "a batch is stored only when awaited"]
pub struct BatchBuilder {
    client: Client,
    jobs: Result<Vec<NewJob>>,
    then: Option<Result<NewJob>>,
}

impl BatchBuilder {
    /// The job to run once every member succeeded (it waits in *Awaiting* until then; a member
    /// that fails for good holds it back until it is requeued and succeeds). It may be on any
    /// queue.
    pub fn then<J: Job>(mut self, job: J) -> Self {
        self.then = Some(self.client.new_job(&job));
        self
    }
}

impl IntoFuture for BatchBuilder {
    type Output = Result<Batch>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Batch>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let jobs = self.jobs?;
            let then = self.then.transpose()?;
            let counted: Vec<_> = if cfg!(feature = "metrics") {
                jobs.iter()
                    .chain(&then)
                    .map(|j| (j.queue.clone(), j.name.clone()))
                    .collect()
            } else {
                Vec::new()
            };
            let batch = self.client.storage().enqueue_batch(jobs, then).await?;
            crate::telemetry::enqueued(counted.iter().map(|(q, n)| (&**q, n.as_ref())));
            Ok(batch)
        })
    }
}

impl Client {
    /// Starts a batch of `jobs`: stored all or none (they must share a queue, which jobs of one
    /// function do unless told otherwise), optionally with a continuation added by
    /// [`BatchBuilder::then`]. `.await` it to store it.
    ///
    /// # Errors
    ///
    /// When awaited: when an argument does not serialize, a filter rejects a job, the jobs are on
    /// different queues, or the storage fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// #[jobs::background_job]
    /// async fn resize(image: u64) {}
    /// #[jobs::background_job]
    /// async fn publish_album(album: u64) {}
    ///
    /// let client = jobs::Client::new(jobs::MemoryStorage::new());
    /// let batch = client
    ///     .batch((0..10).map(|image| jobs::job!(resize(image))))
    ///     .then(jobs::job!(publish_album(1)))
    ///     .await?;
    /// let progress = client.batch_progress(&batch.id).await?.unwrap();
    /// assert_eq!((progress.total, progress.succeeded), (10, 0));
    /// # Ok(()) }
    /// ```
    pub fn batch<J: Job>(&self, jobs: impl IntoIterator<Item = J>) -> BatchBuilder {
        BatchBuilder {
            client: self.clone(),
            jobs: jobs.into_iter().map(|j| self.new_job(&j)).collect(),
            then: None,
        }
    }

    /// How far batch `id` got, if the storage knows it.
    ///
    /// # Errors
    ///
    /// When the storage fails.
    pub async fn batch_progress(&self, id: &JobId) -> Result<Option<BatchProgress>> {
        self.storage().batch_progress(id).await
    }
}
