//! Continuations: a job that waits in *Awaiting* until another job ends, built with
//! [`Client::continue_with`], and [`JobContext::parent_result`] to read the parent's return value.

use crate::client::Client;
use crate::error::{Error, Kind, Result};
use crate::job::{Job, JobContext, JobId};
use crate::storage::{Finish, NewJob, Storage};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

/// What a running job's context carries for continuations.
#[derive(Clone)]
pub(crate) struct ContextFlow {
    pub(crate) storage: Arc<dyn Storage>,
    /// Where the job's JSON return value goes, for jobs that return one.
    pub(crate) result: Option<Arc<OnceLock<String>>>,
}

impl std::fmt::Debug for ContextFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextFlow").finish_non_exhaustive()
    }
}

impl JobContext {
    /// The return value of the job this continuation waited on, when that job succeeded
    /// returning `Ok(value)` with a serializable value (`None` otherwise, e.g. when it was
    /// started on [`Finish::Deleted`], or is not a continuation).
    ///
    /// The type is checked when the value is decoded, not at compile time: ask for the parent's
    /// `T` (a mismatch is an error, so the attempt fails and is retried visibly).
    ///
    /// # Errors
    ///
    /// When the storage fails or the stored value does not decode as `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// #[jobs::background_job]
    /// async fn count_words(text: String) -> Result<usize, String> {
    ///     Ok(text.split_whitespace().count())
    /// }
    ///
    /// #[jobs::background_job]
    /// async fn report(ctx: jobs::JobContext) -> Result<(), jobs::Error> {
    ///     let words: Option<usize> = ctx.parent_result().await?;
    ///     println!("the text had {words:?} words");
    ///     Ok(())
    /// }
    ///
    /// let client = jobs::Client::new(jobs::MemoryStorage::new());
    /// let parent = jobs::enqueue!(&client, count_words("a b c".into())).await?;
    /// client.continue_with(&parent, jobs::job!(report())).await?;
    /// # Ok(()) }
    /// ```
    pub async fn parent_result<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>> {
        let Some(flow) = self.flow() else {
            return Ok(None);
        };
        let Some(json) = flow.storage.parent_result(self.id()).await? else {
            return Ok(None);
        };
        serde_json::from_str(&json).map(Some).map_err(|e| {
            Error::serialization(format!(
                "the parent result of job {} does not decode as `{}`",
                self.id(),
                std::any::type_name::<T>()
            ))
            .with_source(e)
        })
    }

    /// Keeps the job's return value for its continuations (generated code calls this).
    pub(crate) fn store_result<T: serde::Serialize>(&self, value: &T) {
        let Some(slot) = self.flow().and_then(|f| f.result.as_ref()) else {
            return;
        };
        match serde_json::to_string(value) {
            Ok(json) if json != "null" => {
                let _ = slot.set(json);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the job's return value does not serialize"),
        }
    }

    /// The return value stored with [`JobContext::store_result`].
    pub(crate) fn take_result(&self) -> Option<String> {
        self.flow()
            .and_then(|f| f.result.as_ref())
            .and_then(|slot| slot.get().cloned())
    }
}

/// A continuation being added: set its condition with [`ContinueWith::on`], then `.await` it.
/// Made by [`Client::continue_with`].
#[must_use = "a continuation is stored only when awaited"]
pub struct ContinueWith {
    client: Client,
    parent: JobId,
    child: Result<NewJob>,
    on: Finish,
}

impl ContinueWith {
    /// When the continuation runs: [`Finish::Success`] (the default), [`Finish::Any`] or
    /// [`Finish::Deleted`].
    pub fn on(mut self, on: Finish) -> Self {
        self.on = on;
        self
    }
}

impl IntoFuture for ContinueWith {
    type Output = Result<JobId>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<JobId>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let child = self.child?;
            let (queue, name) = (child.queue.clone(), child.name.clone());
            let id = self
                .client
                .storage()
                .continue_with(&self.parent, child, self.on)
                .await?;
            if id.is_some() {
                crate::telemetry::enqueued([(&*queue, name.as_ref())]);
            }
            id.ok_or_else(|| {
                Error::new(
                    Kind::NotFound,
                    format!(
                        "cannot continue job {}: the storage does not know it (it never \
                             existed, or it finished and retention removed it)",
                        self.parent
                    ),
                )
            })
        })
    }
}

impl Client {
    /// Adds `job` as a continuation of `parent`: it waits in *Awaiting* and is enqueued once
    /// `parent` succeeded (or as [`ContinueWith::on`] says), or deleted when the parent ends
    /// the other way. A parent that already ended decides it at once.
    ///
    /// # Errors
    ///
    /// When awaited: when the arguments do not serialize, `parent` is unknown
    /// ([`Error::is_not_found`]), or the storage fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// use jobs::storage::Finish;
    ///
    /// #[jobs::background_job]
    /// async fn charge(order: u64) {}
    /// #[jobs::background_job]
    /// async fn ship(order: u64) {}
    /// #[jobs::background_job]
    /// async fn audit(order: u64) {}
    ///
    /// let client = jobs::Client::new(jobs::MemoryStorage::new());
    /// let charged = jobs::enqueue!(&client, charge(7)).await?;
    /// let shipped = client.continue_with(&charged, jobs::job!(ship(7))).await?;
    /// client.continue_with(&charged, jobs::job!(audit(7))).on(Finish::Any).await?;
    /// let info = client.job(&shipped).await?.unwrap();
    /// assert_eq!(info.state, jobs::JobState::Awaiting);
    /// # Ok(()) }
    /// ```
    pub fn continue_with<J: Job>(&self, parent: &JobId, job: J) -> ContinueWith {
        ContinueWith {
            client: self.clone(),
            parent: parent.clone(),
            child: self.new_job(&job),
            on: Finish::Success,
        }
    }
}
