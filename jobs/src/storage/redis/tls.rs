//! TLS (`rediss://`), with the `tls` feature: the certificates a storage trusts and shows, and
//! the redis-rs client made from a URL with them.
//!
//! redis-rs does the TLS (rustls, through `tokio-rustls`) on every connection it opens: the
//! shared one, the blocking ones of idle fetches, a cluster's, and behind Sentinel those to the
//! sentinels and to the master (`sentinel_client.rs` hands it the certificates there). The
//! enqueue connection
//! (`direct.rs`) reads its socket itself and does not speak TLS: under TLS there is none, and
//! enqueue transactions go through the shared connection (see the README's TLS section for
//! what that costs).

#[cfg(feature = "tls")]
use super::RedisStorageBuilder;
use crate::error::{Error, Result};

/// The certificates given to the builder (none: the system's root certificates, no client
/// certificate). Debug output never shows them.
#[derive(Debug, Clone, Default)]
pub(super) struct TlsOptions {
    #[cfg(feature = "tls")]
    certificates: Option<redis::TlsCertificates>,
}

#[cfg(feature = "tls")]
impl TlsOptions {
    /// The certificates given, if any.
    pub(super) fn certificates(&self) -> Option<&redis::TlsCertificates> {
        self.certificates.as_ref()
    }

    /// The certificates given, if any, once checked: a CA given holds a PEM certificate.
    pub(super) fn checked_certificates(&self) -> Result<Option<&redis::TlsCertificates>> {
        let Some(certificates) = &self.certificates else {
            return Ok(None);
        };
        if let Some(ca) = &certificates.root_cert {
            if !contains_certificate(ca) {
                return Err(Error::config(
                    "the CA given to `tls_ca_pem` holds no PEM certificate \
                     (`-----BEGIN CERTIFICATE-----`)",
                ));
            }
        }
        Ok(Some(certificates))
    }

    fn certificates_mut(&mut self) -> &mut redis::TlsCertificates {
        self.certificates.get_or_insert(redis::TlsCertificates {
            client_tls: None,
            root_cert: None,
        })
    }
}

#[cfg(feature = "tls")]
impl RedisStorageBuilder {
    /// Trusts the certificate authority (or authorities) in `pem`, PEM-encoded, to sign the
    /// certificate of Redis, instead of the system's root certificates: for a Redis whose
    /// certificate comes from a private CA. Needs a `rediss://` URL (on a cluster, every
    /// node's; behind Sentinel, it applies to the sentinels whose URLs are `rediss://` and to
    /// the master when its URL is). Feature `tls`.
    ///
    /// An untrusted certificate fails [`connect`](Self::connect) with an error that says so.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let ca = std::fs::read("/etc/redis/tls/ca.crt")?;
    /// let storage = jobs::RedisStorage::builder("rediss://jobsuser:secret@redis.internal:6380")
    ///     .tls_ca_pem(ca)
    ///     .connect()
    ///     .await?;
    /// # drop(storage); Ok(()) }
    /// ```
    #[must_use]
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.certificates_mut().root_cert = Some(pem.into());
        self
    }

    /// Shows Redis this client certificate (its chain, PEM-encoded) and proves it with `key`
    /// (a PEM-encoded PKCS#8, PKCS#1 or SEC1 private key): mutual TLS, for a Redis started
    /// with `tls-auth-clients yes`. Needs a `rediss://` URL (behind Sentinel, it is shown to the
    /// sentinels and to the master, as [`tls_ca_pem`](Self::tls_ca_pem) applies). Feature
    /// `tls`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let storage = jobs::RedisStorage::builder("rediss://redis.internal:6380")
    ///     .tls_ca_pem(std::fs::read("ca.crt")?)
    ///     .tls_client_cert_pem(std::fs::read("client.crt")?, std::fs::read("client.key")?)
    ///     .connect()
    ///     .await?;
    /// # drop(storage); Ok(()) }
    /// ```
    #[must_use]
    pub fn tls_client_cert_pem(
        mut self,
        cert_chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.certificates_mut().client_tls = Some(redis::ClientTlsConfig {
            client_cert: cert_chain.into(),
            client_key: key.into(),
        });
        self
    }
}

/// Whether `url` asks for TLS.
pub(super) fn is_tls_url(url: &str) -> bool {
    url.get(..9)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss://"))
}

/// The redis-rs client for the one Redis at `url`, with the builder's certificates.
pub(super) fn client(url: &str, display_url: &str, tls: &TlsOptions) -> Result<redis::Client> {
    let invalid =
        |e| Error::config(format!("`{display_url}` is not a valid Redis URL")).with_source(e);
    #[cfg(not(feature = "tls"))]
    {
        let _ = tls;
        if is_tls_url(url) {
            return Err(Error::config(format!(
                "`{display_url}` asks for TLS: build jobs with its `tls` feature"
            )));
        }
        redis::Client::open(url).map_err(invalid)
    }
    #[cfg(feature = "tls")]
    {
        let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(invalid)?;
        let info = with_certificates(info, display_url, tls)?;
        redis::Client::open(info).map_err(invalid)
    }
}

/// `info` with the builder's certificates, checked (a `rediss://` URL, readable PEM); as it is
/// without certificates. A cluster's nodes each get theirs this way.
#[cfg(feature = "tls")]
pub(super) fn with_certificates(
    info: redis::ConnectionInfo,
    display_url: &str,
    tls: &TlsOptions,
) -> Result<redis::ConnectionInfo> {
    let is_tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
    if is_tls {
        install_crypto_provider();
    }
    if tls.certificates.is_some() && !is_tls {
        return Err(Error::config(format!(
            "TLS certificates were given for `{display_url}`, which is not a `rediss://` URL"
        )));
    }
    let Some(certificates) = tls.checked_certificates()? else {
        return Ok(info);
    };
    let client = redis::Client::build_with_tls(info, certificates.clone()).map_err(|e| {
        Error::config(format!(
            "the TLS certificates given for `{display_url}` cannot be used"
        ))
        .with_source(e)
    })?;
    Ok(client.get_connection_info().clone())
}

/// `info` as it is: without the `tls` feature there are no certificates to add.
#[cfg(not(feature = "tls"))]
pub(super) fn with_certificates(
    info: redis::ConnectionInfo,
    _display_url: &str,
    _tls: &TlsOptions,
) -> Result<redis::ConnectionInfo> {
    Ok(info)
}

/// Whether `pem` holds at least one certificate block (rustls skips anything else silently,
/// which would leave a CA that trusts nothing).
#[cfg(feature = "tls")]
fn contains_certificate(pem: &[u8]) -> bool {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    pem.windows(BEGIN.len()).any(|w| w == BEGIN)
}

/// Makes rustls's `ring` provider the process's default unless one is installed: redis-rs
/// builds its TLS configurations with rustls's process default, which rustls picks by itself
/// only when exactly one provider is compiled in (an application that also pulls in
/// `aws-lc-rs`, through another crate, would otherwise panic at the first `rediss://`
/// connection). An application that installed a provider keeps it.
#[cfg(feature = "tls")]
pub(super) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails only when another thread installed one in between: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_urls_are_recognized_by_their_scheme() {
        assert!(is_tls_url("rediss://127.0.0.1:6380"));
        assert!(is_tls_url("REDISS://u:p@host"));
        assert!(!is_tls_url("redis://127.0.0.1:6379"));
        assert!(!is_tls_url("redis+unix:///tmp/redis.sock"));
        assert!(!is_tls_url("redis"));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn certificates_need_a_tls_url_and_a_certificate() {
        let builder = crate::RedisStorage::builder("redis://127.0.0.1:6379");
        let err = client("redis://127.0.0.1:6379", "redis://127.0.0.1:6379", &{
            builder.tls_ca_pem("x").tls
        })
        .unwrap_err();
        assert!(err.to_string().contains("not a `rediss://` URL"), "{err}");
        let builder = crate::RedisStorage::builder("rediss://127.0.0.1:6380");
        let err = client("rediss://127.0.0.1:6380", "rediss://127.0.0.1:6380", &{
            builder.tls_ca_pem("not a certificate").tls
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn a_tls_url_without_the_feature_says_so() {
        let err = client("rediss://h:1", "rediss://h:1", &TlsOptions::default()).unwrap_err();
        assert!(err.to_string().contains("`tls` feature"), "{err}");
    }
}
