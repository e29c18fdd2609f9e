//! The redis-rs `SentinelClient` of a storage behind Sentinel, made from the builder: the
//! sentinels' URLs, the master's name (and login), and the TLS certificates, which apply to
//! the sentinels and to the master they name.
//!
//! Without certificates, each sentinel URL is handed to redis-rs as it is (with that
//! sentinel's own login). With them, the client comes from redis-rs's `SentinelClientBuilder`,
//! the one way it takes certificates for the master's connections: it takes one login for
//! every sentinel, so their URLs must agree on it.

use super::sentinel::master_name;
use super::tls::TlsOptions;
use crate::error::{Error, Result};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{ConnectionAddr, RedisConnectionInfo, TlsMode};

/// The master as the storage names it: the name the sentinels know it by, the login (and
/// database) on it, and whether its connections are TLS (a `rediss://` master URL).
pub(super) struct MasterSpec {
    pub(super) name: String,
    pub(super) login: RedisConnectionInfo,
    pub(super) tls: bool,
}

impl MasterSpec {
    /// Reads `master`: a name, or a URL whose host is the name (`redis://app:pw@mymaster/2`).
    pub(super) fn parse(master: &str) -> Result<MasterSpec> {
        if !master.contains("://") {
            return Ok(MasterSpec {
                name: master.to_owned(),
                login: RedisConnectionInfo::default(),
                tls: false,
            });
        }
        let info = redis::IntoConnectionInfo::into_connection_info(master).map_err(|e| {
            Error::config(format!(
                "`{}` is not a valid URL of a Sentinel master (`redis://user:password@name/db`)",
                super::open::redact(master)
            ))
            .with_source(e)
        })?;
        let (name, tls) = match info.addr() {
            ConnectionAddr::Tcp(host, _) => (host.clone(), false),
            ConnectionAddr::TcpTls { host, .. } => (host.clone(), true),
            _ => {
                return Err(Error::config(format!(
                    "`{}`: a Sentinel master is named by the host of a `redis://` URL",
                    super::open::redact(master)
                )))
            }
        };
        if master_name(master).contains(':') {
            return Err(Error::config(format!(
                "`{}`: a Sentinel master URL names the master, not its address: leave out the \
                 port",
                super::open::redact(master)
            )));
        }
        Ok(MasterSpec {
            name,
            login: info.redis_settings().clone(),
            tls,
        })
    }
}

/// The client that asks the sentinels at `sentinels` for `master`, with the builder's
/// certificates if any; `display` names the deployment in errors.
pub(super) fn sentinel_client(
    sentinels: &[String],
    master: &MasterSpec,
    tls: &TlsOptions,
    display: &str,
) -> Result<SentinelClient> {
    #[cfg(feature = "tls")]
    if let Some(certificates) = tls.checked_certificates()? {
        return with_certificates(sentinels, master, certificates, display);
    }
    #[cfg(not(feature = "tls"))]
    let _ = tls;
    #[cfg(feature = "tls")]
    if master.tls || sentinels.iter().any(|s| super::tls::is_tls_url(s)) {
        super::tls::install_crypto_provider();
    }
    let mut node =
        SentinelNodeConnectionInfo::default().set_redis_connection_info(master.login.clone());
    if master.tls {
        node = node.set_tls_mode(TlsMode::Secure);
    }
    SentinelClient::build(
        sentinels.to_vec(),
        master.name.clone(),
        Some(node),
        SentinelServerType::Master,
    )
    .map_err(|e| Error::config(format!("cannot set up a connection to {display}")).with_source(e))
}

/// The client of [`sentinel_client`] when certificates were given: they apply to the
/// sentinels when their URLs are `rediss://`, and to the master when its URL is.
#[cfg(feature = "tls")]
fn with_certificates(
    sentinels: &[String],
    master: &MasterSpec,
    certificates: &redis::TlsCertificates,
    display: &str,
) -> Result<SentinelClient> {
    let infos = sentinels
        .iter()
        .map(|url| {
            redis::IntoConnectionInfo::into_connection_info(url.as_str()).map_err(|e| {
                Error::config(format!(
                    "`{}` is not a valid URL of a sentinel",
                    super::open::redact(url)
                ))
                .with_source(e)
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let over_tls = infos
        .iter()
        .filter(|i| matches!(i.addr(), ConnectionAddr::TcpTls { .. }))
        .count();
    if over_tls != 0 && over_tls != infos.len() {
        return Err(Error::config(format!(
            "TLS certificates were given for {display}, whose sentinel URLs mix `rediss://` and \
             `redis://`: make them all `rediss://` (or all `redis://`)"
        )));
    }
    if over_tls == 0 && !master.tls {
        return Err(Error::config(format!(
            "TLS certificates were given for {display}, but neither the sentinels' URLs nor \
             the master's are `rediss://` URLs (`rediss://mymaster` names a master over TLS)"
        )));
    }
    let first = infos[0].redis_settings();
    let same_login = infos.iter().all(|i| {
        let s = i.redis_settings();
        s.username() == first.username()
            && s.password() == first.password()
            && s.protocol() == first.protocol()
    });
    if !same_login {
        return Err(Error::config(format!(
            "with TLS certificates, the sentinels of {display} log in alike: give every \
             sentinel URL the same user and password"
        )));
    }
    super::tls::install_crypto_provider();
    let cannot =
        |e| Error::config(format!("cannot set up a connection to {display}")).with_source(e);
    let mut builder = redis::sentinel::SentinelClientBuilder::new(
        infos.iter().map(|i| i.addr().clone()),
        &master.name,
        SentinelServerType::Master,
    )
    .map_err(cannot)?
    .set_client_to_sentinel_protocol(first.protocol())
    .set_client_to_redis_db(master.login.db())
    .set_client_to_redis_protocol(master.login.protocol());
    if let Some(user) = first.username() {
        builder = builder.set_client_to_sentinel_username(user);
    }
    if let Some(password) = first.password() {
        builder = builder.set_client_to_sentinel_password(password);
    }
    if over_tls != 0 {
        builder = builder.set_client_to_sentinel_certificates(certificates.clone());
    }
    if let Some(user) = master.login.username() {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = master.login.password() {
        builder = builder.set_client_to_redis_password(password);
    }
    if master.tls {
        builder = builder
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_redis_certificates(certificates.clone());
    }
    builder.build().map_err(|e| {
        Error::config(format!(
            "the TLS certificates given for {display} cannot be used"
        ))
        .with_source(e)
    })
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    const CA: &str = "-----BEGIN CERTIFICATE-----";

    fn build_error(sentinels: &[&str], master: &str) -> String {
        let err = crate::RedisStorage::sentinel_builder(sentinels, master)
            .tls_ca_pem(CA)
            .build()
            .err()
            .map(|e| e.to_string());
        err.unwrap_or_default()
    }

    #[test]
    fn certificates_need_a_tls_url_somewhere() {
        let err = build_error(&["redis://127.0.0.1:26379"], "mymaster");
        assert!(
            err.contains("neither the sentinels' URLs nor the master's"),
            "{err}"
        );
    }

    #[test]
    fn sentinel_urls_do_not_mix_tls_and_plain_under_certificates() {
        let err = build_error(
            &["rediss://127.0.0.1:26379", "redis://127.0.0.1:26380"],
            "rediss://mymaster",
        );
        assert!(err.contains("mix `rediss://` and `redis://`"), "{err}");
    }

    #[test]
    fn sentinels_log_in_alike_under_certificates() {
        let err = build_error(
            &["rediss://:a@127.0.0.1:26379", "rediss://:b@127.0.0.1:26380"],
            "mymaster",
        );
        assert!(err.contains("log in alike"), "{err}");
    }

    #[test]
    fn a_ca_without_a_certificate_is_refused_behind_sentinel() {
        let err = crate::RedisStorage::sentinel_builder(["rediss://127.0.0.1:26379"], "mymaster")
            .tls_ca_pem("not a certificate")
            .build()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }
}
