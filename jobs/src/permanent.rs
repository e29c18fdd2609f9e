//! Errors that are not worth retrying: [`Permanent`] and [`permanent`].

use std::error::Error as StdError;
use std::fmt;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An error that retrying cannot fix (bad input, a record that no longer exists, a refused
/// card): an attempt that fails with it is not retried, and the job ends at once as its
/// [`OnExhausted`](crate::OnExhausted) policy says (Failed by default).
///
/// Wrap the error with [`permanent`] (or `Permanent::new`). The worker finds it when the job
/// function returns:
/// - `Result<T, jobs::Permanent>`,
/// - `anyhow::Result<T>` whose error chain holds a `Permanent` (with the default `anyhow`
///   feature), e.g. `Err(jobs::permanent(e))?` or `.map_err(jobs::permanent)?`,
/// - `Result<T, Box<dyn std::error::Error + Send + Sync>>` whose chain holds a `Permanent`.
///
/// Every other error is retried.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), jobs::Error> {
/// use jobs::{permanent, JobState};
/// use std::time::Duration;
///
/// #[jobs::background_job(retries = 5)]
/// async fn charge(amount_cents: i64) -> anyhow::Result<()> {
///     if amount_cents <= 0 {
///         // No retry will make this amount valid.
///         return Err(permanent(format!("cannot charge {amount_cents} cents")).into());
///     }
///     Ok(())
/// }
///
/// let storage = jobs::MemoryStorage::new();
/// let client = jobs::Client::new(storage.clone());
/// let id = jobs::enqueue!(&client, charge(-5)).await?;
/// let probe = client.clone();
/// let probe_id = id.clone();
/// jobs::Worker::builder(storage)
///     .build()?
///     .run_until(async move {
///         while !probe.job(&probe_id).await.unwrap().unwrap().state.is_final() {
///             tokio::time::sleep(Duration::from_millis(10)).await;
///         }
///     })
///     .await?;
/// let info = client.job(&id).await?.expect("kept");
/// assert_eq!((info.state, info.attempts), (JobState::Failed, 1));
/// # Ok(()) }
/// ```
pub struct Permanent(BoxError);

impl Permanent {
    /// Marks `error` as permanent.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Permanent(error.into())
    }

    /// The wrapped error.
    pub fn get_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.0
    }

    /// Unwraps the error.
    pub fn into_inner(self) -> BoxError {
        self.0
    }
}

/// Marks `error` as permanent: an attempt failing with it is not retried. See [`Permanent`].
pub fn permanent(error: impl Into<BoxError>) -> Permanent {
    Permanent::new(error)
}

impl fmt::Display for Permanent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Permanent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Permanent").field(&self.0).finish()
    }
}

impl StdError for Permanent {
    // The wrapped error's own cause, not the wrapped error itself: `Permanent` displays as the
    // error it wraps, so reporting that again would print it twice in an error chain.
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// Whether a chain of errors holds a [`Permanent`].
fn chain_is_permanent(mut e: Option<&(dyn StdError + 'static)>) -> bool {
    while let Some(err) = e {
        if err.is::<Permanent>() {
            return true;
        }
        e = err.source();
    }
    false
}

/// Whether a job function's error says it is permanent (see [`Permanent`] for the types looked
/// at).
pub(crate) fn is_permanent<E: 'static>(error: &E) -> bool {
    let any: &dyn std::any::Any = error;
    if any.is::<Permanent>() {
        return true;
    }
    if let Some(b) = any.downcast_ref::<BoxError>() {
        return chain_is_permanent(Some(&**b as &(dyn StdError + 'static)));
    }
    if let Some(b) = any.downcast_ref::<Box<dyn StdError + 'static>>() {
        return chain_is_permanent(Some(&**b));
    }
    #[cfg(feature = "anyhow")]
    if let Some(a) = any.downcast_ref::<anyhow::Error>() {
        return a.chain().any(|e| e.is::<Permanent>());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_directly_and_in_boxes() {
        assert!(is_permanent(&permanent("bad input")));
        let boxed: BoxError = Box::new(permanent("bad input"));
        assert!(is_permanent(&boxed));
    }

    #[cfg(feature = "anyhow")]
    #[test]
    fn found_in_anyhow_chains() {
        let wrapped = anyhow::Error::new(permanent("bad input")).context("charging order 7");
        assert!(is_permanent(&wrapped));
        assert_eq!(format!("{wrapped:#}"), "charging order 7: bad input");
        assert!(!is_permanent(&anyhow::anyhow!("timeout")));
    }

    #[test]
    fn other_errors_are_retried() {
        assert!(!is_permanent(&"timeout".to_owned()));
        let boxed: BoxError = "timeout".into();
        assert!(!is_permanent(&boxed));
    }
}
