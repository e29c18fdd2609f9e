//! The payload limit: the most bytes a job's stored arguments (and headers) may take.
//!
//! A storage refuses a larger job before writing anything (every entry point: enqueue, bulk,
//! schedule, batch, continuation, recurring registration), and its workers refuse a stored job
//! over the limit (written by another process with a higher limit, or behind the storage's
//! back) without loading it: it ends Failed with a reason that says so. The limit is a setting
//! of the storage because both sides need it: set the same value on every process that shares
//! one storage.

use crate::error::{Error, Kind, Result};
use crate::headers::Headers;
use crate::storage::{NewJob, RecurringEntry};

/// The default payload limit: 512 KiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 512 * 1024;

/// A storage's payload limit, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PayloadLimit(pub(crate) usize);

impl Default for PayloadLimit {
    fn default() -> Self {
        PayloadLimit(DEFAULT_MAX_PAYLOAD)
    }
}

/// How to raise the limit, for the messages below.
const RAISE: &str = "raise it with `max_payload` on the storage's builder, on every process \
                     that shares the storage, or store large data elsewhere and pass its key";

impl PayloadLimit {
    /// Refuses `job` when its headers are over their own bound, or its payload (arguments and
    /// headers) is over the limit.
    ///
    /// # Errors
    ///
    /// A [too large](Error::is_too_large) error naming the job and both sizes.
    pub(crate) fn check(self, job: &NewJob) -> Result<()> {
        self.check_with_headers(&job.name, &job.args, &job.headers)
    }

    fn check_with_headers(self, name: &str, args: &str, job_headers: &Headers) -> Result<()> {
        job_headers.check(name)?;
        let headers = job_headers.stored_len();
        if headers == 0 {
            return self.check_parts(name, args.len());
        }
        let payload = args.len() + headers;
        if payload <= self.0 {
            return Ok(());
        }
        Err(Error::new(
            Kind::TooLarge,
            format!(
                "job `{}` has {} of arguments and headers ({} + {}), over the limit of {}: \
                 nothing was stored ({RAISE})",
                name,
                size(payload as u64),
                size(args.len() as u64),
                size(headers as u64),
                size(self.0 as u64)
            ),
        ))
    }

    /// Refuses a recurring job whose payload is over the limit (each tick stores a copy).
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check).
    pub(crate) fn check_recurring(self, entry: &RecurringEntry) -> Result<()> {
        self.check_with_headers(&entry.name, &entry.args, &entry.headers)
    }

    fn check_parts(self, name: &str, payload: usize) -> Result<()> {
        if payload <= self.0 {
            return Ok(());
        }
        Err(Error::new(
            Kind::TooLarge,
            format!(
                "job `{name}` has {} of arguments, over the limit of {}: nothing was stored \
                 ({RAISE})",
                size(payload as u64),
                size(self.0 as u64)
            ),
        ))
    }

    /// Why a worker fails a stored job whose payload is `len` bytes, over the limit.
    // Only backends that read stored records back call this (the memory storage keeps values).
    #[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
    pub(crate) fn refusal(self, len: u64) -> String {
        format!(
            "its stored arguments are {}, over this worker's payload limit of {}: not performed \
             ({RAISE}; then requeue it)",
            size(len),
            size(self.0 as u64)
        )
    }
}

/// A size for people: whole KiB or MiB when exact, otherwise the bytes with their KiB beside
/// (so a job one byte over the limit does not read as the limit itself).
pub(crate) fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if bytes == 1 {
        "1 byte".to_owned()
    } else if bytes < KIB {
        format!("{bytes} bytes")
    } else if bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else if bytes % KIB == 0 {
        format!("{} KiB", bytes / KIB)
    } else {
        #[allow(clippy::cast_precision_loss)] // a rounded figure for display
        let kib = bytes as f64 / KIB as f64;
        format!("{bytes} bytes ({kib:.1} KiB)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(1), "1 byte");
        assert_eq!(size(900), "900 bytes");
        assert_eq!(size(600 * 1024), "600 KiB");
        assert_eq!(size(2 * 1024 * 1024), "2 MiB");
        assert_eq!(size(512 * 1024 + 1), "524289 bytes (512.0 KiB)");
    }

    #[test]
    fn the_limit_itself_is_allowed_and_one_byte_more_is_not() {
        let limit = PayloadLimit(10);
        assert!(limit.check(&NewJob::new("q", "j", "x".repeat(10))).is_ok());
        let err = limit
            .check(&NewJob::new("q", "send_email", "x".repeat(11)))
            .unwrap_err();
        assert!(err.is_too_large(), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(
                "job `send_email` has 11 bytes of arguments, over the limit of 10 bytes"
            ),
            "{text}"
        );
        assert!(text.contains("max_payload"), "{text}");
    }

    #[test]
    fn headers_count_toward_the_limit() {
        let limit = PayloadLimit(100);
        let headers: crate::headers::Headers = [("k", "v".repeat(20))].into_iter().collect();
        let stored = headers.stored_len();
        let fits = NewJob::new("q", "j", "x".repeat(100 - stored)).headers(headers.clone());
        assert!(limit.check(&fits).is_ok());
        let over = NewJob::new("q", "j", "x".repeat(101 - stored)).headers(headers);
        let text = limit.check(&over).unwrap_err().to_string();
        assert!(
            text.starts_with(&format!(
                "job `j` has 101 bytes of arguments and headers ({} bytes + {stored} bytes), over \
                 the limit of 100 bytes",
                101 - stored
            )),
            "{text}"
        );
    }

    #[test]
    fn the_default_is_512_kib() {
        assert_eq!(PayloadLimit::default().0, 512 * 1024);
        let err = PayloadLimit::default()
            .check(&NewJob::new("q", "send_email", "x".repeat(600 * 1024)))
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "job `send_email` has 600 KiB of arguments, over the limit of 512 KiB"
            ),
            "{err}"
        );
    }
}
