//! Errors of logging in and of TLS, in words that say what to fix: redis-rs reports a wrong
//! password as "Password authentication failed", an untrusted certificate as "invalid peer
//! certificate: UnknownIssuer" (an I/O error, so "Redis is unreachable"), and a plain
//! connection to a TLS port as a reset connection.

use super::RedisStorage;
use crate::error::Error;
use redis::{ErrorKind, RedisError};
use std::io;
use std::sync::Arc;

/// What `e` means when it is a refused login, a missing permission or a failed TLS handshake:
/// the problem, and what to do about it. `None` for any other error.
pub(super) fn problem(e: &RedisError) -> Option<(&'static str, &'static str)> {
    if e.kind() == ErrorKind::AuthenticationFailed || e.code() == Some("WRONGPASS") {
        return Some((
            "Redis refused the login",
            "wrong password, or unknown user, or the user is disabled: the user and password \
             are the URL's, `redis://user:password@host`",
        ));
    }
    match e.code() {
        Some("NOAUTH") => {
            return Some((
                "Redis requires a login",
                "give a user and password in the URL, `redis://user:password@host`",
            ))
        }
        Some("NOPERM") => {
            return Some((
                "the Redis user lacks a permission",
                "the storage runs scripts, transactions and blocking pops on the keys that \
                 start with `{<prefix>`: grant them, e.g. `~{<prefix>* +@all`",
            ))
        }
        _ => {}
    }
    tls_problem(e)
}

/// The I/O error that `e` wraps, if it is one.
fn io_error(e: &RedisError) -> Option<&io::Error> {
    let source = std::error::Error::source(e)?;
    // redis-rs keeps it behind an `Arc`, which is the source it shows.
    match source.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>() {
        Some(shared) => shared.downcast_ref::<io::Error>(),
        None => source.downcast_ref::<io::Error>(),
    }
}

/// A certificate signed by a CA the storage does not trust.
#[cfg(feature = "tls")]
const UNTRUSTED: (&str, &str) = (
    "the TLS certificate of Redis is not trusted",
    "it is signed by a CA that is neither among the system's root certificates nor given to \
     `RedisStorageBuilder::tls_ca_pem`",
);

/// What a failed TLS handshake means, from the rustls error inside `e`.
#[cfg(feature = "tls")]
fn tls_problem(e: &RedisError) -> Option<(&'static str, &'static str)> {
    use rustls::{CertificateError, Error as Tls};
    let Some(tls) = io_error(e)
        .and_then(io::Error::get_ref)
        .and_then(|inner| inner.downcast_ref::<Tls>())
    else {
        // The cluster client reports its first connections' failure as text only.
        return e
            .to_string()
            .contains("invalid peer certificate: UnknownIssuer")
            .then_some(UNTRUSTED);
    };
    Some(match tls {
        Tls::InvalidCertificate(CertificateError::UnknownIssuer) => UNTRUSTED,
        Tls::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => (
            "the TLS certificate of Redis is not valid for the host in the URL",
            "connect with a host name (or IP address) that the certificate names",
        ),
        Tls::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => (
            "the TLS certificate of Redis is expired or not valid yet",
            "renew it, or check the clocks",
        ),
        Tls::InvalidCertificate(_) => (
            "the TLS certificate of Redis is not accepted",
            "see the certificate error below",
        ),
        Tls::AlertReceived(_) => (
            "Redis ended the TLS handshake",
            "does it ask for a client certificate (`tls-auth-clients`)? give one with \
             `RedisStorageBuilder::tls_client_cert_pem`",
        ),
        _ => (
            "the TLS handshake with Redis failed",
            "see the TLS error below",
        ),
    })
}

#[cfg(not(feature = "tls"))]
fn tls_problem(_: &RedisError) -> Option<(&'static str, &'static str)> {
    None
}

impl RedisStorage {
    /// `e`, an error of the check that Redis answers, or a clearer one when the URL's scheme
    /// may not match the port: a TLS port closes a connection that does not start with a TLS
    /// handshake, and a plain port does not answer a handshake (it waits for a command).
    pub(super) fn ping_error(&self, what: &str, e: Error) -> Error {
        let url = &self.inner.display_url;
        let Some(redis_error) =
            std::error::Error::source(&e).and_then(|s| s.downcast_ref::<RedisError>())
        else {
            return e;
        };
        let closed = io_error(redis_error).is_some_and(|io| {
            matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::BrokenPipe
            )
        });
        let message = match (
            super::tls::is_tls_url(url),
            closed,
            redis_error.is_timeout(),
        ) {
            (false, true, _) => format!(
                "{what}: Redis closed the connection before answering at {url} (if that port \
                 serves TLS, use a `rediss://` URL)"
            ),
            (true, _, true) => format!(
                "{what}: Redis did not answer in time at {url} (if that port does not serve \
                 TLS, use a `redis://` URL)"
            ),
            _ => return e,
        };
        Error::storage(message)
            .with_source(redis_error.clone())
            .unreachable()
    }
}
