//! The one error type of the crate: an opaque [`Error`] with a kind you can ask about.

use std::fmt;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong when enqueueing, storing or running jobs.
///
/// The error is opaque on purpose: ask it what it is with the `is_*` predicates, print it with
/// `Display` (which always says what to do about it), and walk its cause with
/// [`std::error::Error::source`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[jobs::background_job]
/// async fn ping() {}
///
/// // No client was installed, so the ambient `enqueue!` cannot store the job.
/// let err = jobs::enqueue!(ping()).await.unwrap_err();
/// assert!(err.is_no_client());
/// assert!(err.to_string().contains(".install()"));
/// # }
/// ```
pub struct Error {
    kind: Kind,
    message: String,
    source: Option<BoxError>,
    /// A storage error because the storage could not be reached (see `is_unreachable`).
    unreachable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    NoClient,
    Config,
    Serialization,
    Storage,
    Rejected,
    NotFound,
    ShuttingDown,
    TooLarge,
}

impl Error {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
            unreachable: false,
        }
    }

    /// Marks a storage error as one where the storage could not be reached.
    // Only a backend behind a network marks errors so (the memory storage is always reachable).
    #[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
    pub(crate) fn unreachable(mut self) -> Self {
        self.unreachable = true;
        self
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The same error for another of several callers it failed: same kind, and the full text
    /// (the source cannot be cloned, so its description goes into the message).
    pub(crate) fn for_each_caller(&self) -> Self {
        Error {
            unreachable: self.unreachable,
            ..Error::new(self.kind, self.to_string())
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(Kind::Config, message)
    }

    pub(crate) fn storage(message: impl Into<String>) -> Self {
        Error::new(Kind::Storage, message)
    }

    pub(crate) fn serialization(message: impl Into<String>) -> Self {
        Error::new(Kind::Serialization, message)
    }

    /// `enqueue!` was used without a client and no ambient client is installed.
    pub fn is_no_client(&self) -> bool {
        self.kind == Kind::NoClient
    }

    /// A worker or client was configured wrongly (duplicate job names, missing state, ...).
    pub fn is_config(&self) -> bool {
        self.kind == Kind::Config
    }

    /// Job arguments could not be serialized, or a stored job could not be decoded.
    pub fn is_serialization(&self) -> bool {
        self.kind == Kind::Serialization
    }

    /// The storage backend could not be reached or answered with an error.
    /// Nothing was stored when `enqueue` returns this error.
    pub fn is_storage(&self) -> bool {
        self.kind == Kind::Storage
    }

    /// A storage error because the storage could not be reached or is not serving yet: the
    /// connection was refused, lost or timed out, or the server is still loading its data. The
    /// same call is worth trying again soon; [`is_storage`](Self::is_storage) holds too.
    pub fn is_unreachable(&self) -> bool {
        self.unreachable
    }

    /// An extension filter rejected the job when it was created; it was not stored.
    pub fn is_rejected(&self) -> bool {
        self.kind == Kind::Rejected
    }

    /// The job (or other record) asked for does not exist, or is not in a state that allows
    /// the operation.
    pub fn is_not_found(&self) -> bool {
        self.kind == Kind::NotFound
    }

    /// The job is over the storage's payload limit (its arguments are too large); it was not
    /// stored. The message names the job and both sizes.
    pub fn is_too_large(&self) -> bool {
        self.kind == Kind::TooLarge
    }

    /// The worker is shutting down and refused new work.
    pub fn is_shutting_down(&self) -> bool {
        self.kind == Kind::ShuttingDown
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("jobs::Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if self.unreachable {
            d.field("unreachable", &true);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
