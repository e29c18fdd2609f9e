//! Unique jobs: `#[background_job(unique)]` makes an identical job (same name and arguments)
//! that is still live return the existing id; [`Client::submit`] with
//! [`Submit::unique_key`] does the same for a key of your choosing.

use crate::client::Client;
use crate::error::Result;
use crate::job::{Job, JobId};
use crate::storage::{NewJob, UniqueKey};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

/// The unique key of a job identified by its name and arguments.
pub(crate) fn identical_key(name: &str, args: &str) -> String {
    let mut key = String::with_capacity(name.len() + args.len() + 1);
    key.push_str(name);
    key.push('|');
    key.push_str(args);
    key
}

/// A job being enqueued with options; `.await` it to store it. Made by [`Client::submit`].
#[must_use = "a job is stored only when awaited"]
pub struct Submit {
    client: Client,
    job: Result<NewJob>,
    window: Option<Duration>,
}

impl Submit {
    /// Makes the job unique under `key`: while a job with the same key is enqueued, scheduled,
    /// running or awaiting on the same queue, storing this one returns that job's id instead.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        if let Ok(job) = &mut self.job {
            job.unique = Some(UniqueKey::new(key, self.window));
        }
        self
    }

    /// Lets the uniqueness claim lapse after `window` even if the job is still live (so a
    /// stuck job cannot block its key for ever). Without a unique key yet, the job's name and
    /// arguments become its key.
    pub fn unique_for(mut self, window: Duration) -> Self {
        self.window = Some(window);
        if let Ok(job) = &mut self.job {
            let key = match job.unique.take() {
                Some(u) => u.key,
                None => identical_key(&job.name, &job.args),
            };
            job.unique = Some(UniqueKey::new(key, Some(window)));
        }
        self
    }
}

impl Submit {
    /// Adds a header to the job (see [`Headers`](crate::Headers)), beside those the client's
    /// filters and trace propagation set; this one wins over theirs.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// #[jobs::background_job]
    /// async fn import(file: String) {}
    ///
    /// let client = jobs::Client::new(jobs::MemoryStorage::new());
    /// let id = client
    ///     .submit(jobs::job!(import("a.csv".into())))
    ///     .header("request-id", "7f3a")
    ///     .await?;
    /// let info = client.job(&id).await?.unwrap();
    /// assert_eq!(info.headers.get("request-id"), Some("7f3a"));
    /// # Ok(()) }
    /// ```
    pub fn header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        if let Ok(job) = &mut self.job {
            job.headers.insert(key, value);
        }
        self
    }
}

impl IntoFuture for Submit {
    type Output = Result<JobId>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<JobId>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.client.store_one(self.job))
    }
}

impl Client {
    /// Starts enqueueing `job` with options such as [`Submit::unique_key`]; `.await` the result
    /// to store it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), jobs::Error> {
    /// use std::time::Duration;
    ///
    /// #[jobs::background_job]
    /// async fn sync_account(account: u64, reason: String) {}
    ///
    /// let client = jobs::Client::new(jobs::MemoryStorage::new());
    /// let a = client.submit(jobs::job!(sync_account(7, "login".into())))
    ///     .unique_key("sync:7")
    ///     .await?;
    /// let b = client.submit(jobs::job!(sync_account(7, "webhook".into())))
    ///     .unique_key("sync:7")
    ///     .unique_for(Duration::from_secs(600))
    ///     .await?;
    /// assert_eq!(a, b); // the first is still enqueued
    /// # Ok(()) }
    /// ```
    pub fn submit<J: Job>(&self, job: J) -> Submit {
        Submit {
            client: self.clone(),
            job: self.new_job(&job),
            window: None,
        }
    }
}
