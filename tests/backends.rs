//! One test, every storage backend: `on_every_backend!(test_a, test_b)` runs each
//! `async fn test_a(kind: Kind)` on `MemoryStorage`, on a private Redis, on a local Redis
//! Cluster of 3 primaries and 3 replicas (one per test process, a prefix per test) and on a
//! schema of its own in the local PostgreSQL. The suite is the contract a backend fulfils.
//!
//! With `JOBS_REDIS_TLS=1`, the Redis variant runs over TLS instead (`rediss://`, on a private
//! server of [`crate::tls`]): `JOBS_REDIS_TLS=1 cargo test -p jobs-tests redis::`.

use crate::cluster::TestCluster;
use crate::postgres::TestPostgres;
use crate::TestRedis;
use jobs::storage::Retention;
use jobs::Storage;
use std::sync::Arc;

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// `MemoryStorage`.
    Memory,
    /// `RedisStorage` on the test's own `redis-server`.
    Redis,
    /// `RedisStorage` on the test process's local Redis Cluster.
    RedisCluster,
    /// `PostgresStorage` on a schema of the test's own.
    Postgres,
}

impl Kind {
    /// How many backends there are: [`Kind::index`] is below it.
    pub const COUNT: u64 = 4;

    /// A small number per backend, for tests that keep their numbers apart.
    pub fn index(self) -> u64 {
        match self {
            Kind::Memory => 0,
            Kind::Redis => 1,
            Kind::Postgres => 2,
            Kind::RedisCluster => 3,
        }
    }
}

/// A storage for one test, with the Redis server it runs on (stopped when dropped).
pub struct Backend {
    /// The storage under test.
    pub storage: Arc<dyn Storage>,
    /// Builds another handle on the same jobs (see [`Backend::another_handle`]).
    another: Box<dyn Fn() -> Arc<dyn Storage> + Send + Sync>,
    _redis: Option<TestRedis>,
    _postgres: Option<TestPostgres>,
    /// The TLS server of the Redis variant under `JOBS_REDIS_TLS=1`.
    _tls_redis: Option<crate::tls::TlsRedis>,
}

impl Backend {
    /// Another handle on the same jobs, with connections of its own, as another process would
    /// have: a worker on it can be torn down (its runtime dropped, as a killed process would
    /// stop) without touching the connections of [`Backend::storage`].
    pub fn another_handle(&self) -> Arc<dyn Storage> {
        (self.another)()
    }
}

/// A fresh storage of `kind` for the test named `test`; `None` when Redis is unavailable and
/// not required (the test then skips).
pub fn backend(kind: Kind, test: &str, retention: Retention) -> Option<Backend> {
    backend_with_payload_limit(kind, test, retention, jobs::storage::DEFAULT_MAX_PAYLOAD)
}

/// Like [`backend`], with a payload limit of `max_payload` bytes.
pub fn backend_with_payload_limit(
    kind: Kind,
    test: &str,
    retention: Retention,
    max_payload: usize,
) -> Option<Backend> {
    match kind {
        Kind::Memory => {
            let storage = jobs::MemoryStorage::builder()
                .retention(retention)
                .max_payload(max_payload)
                .build();
            Some(Backend {
                storage: Arc::new(storage.clone()),
                another: Box::new(move || Arc::new(storage.clone())),
                _redis: None,
                _postgres: None,
                _tls_redis: None,
            })
        }
        Kind::Redis if crate::tls::suite_over_tls() => {
            let redis = crate::tls::TlsRedis::start(test, false)?;
            let open = {
                let builder = jobs::RedisStorage::builder(&redis.tls_url())
                    .prefix(crate::unique_prefix(test))
                    .retention(retention)
                    .max_payload(max_payload)
                    .tls_ca_pem(redis.ca_pem());
                move || -> Arc<dyn Storage> {
                    Arc::new(builder.clone().build().expect("a valid Redis URL"))
                }
            };
            Some(Backend {
                storage: open(),
                another: Box::new(open),
                _redis: None,
                _postgres: None,
                _tls_redis: Some(redis),
            })
        }
        Kind::Redis => {
            let redis = TestRedis::start(test)?;
            let storage = redis
                .storage_builder(test, retention)
                .max_payload(max_payload)
                .build()
                .expect("a valid Redis URL");
            let (url, prefix) = (redis.url().to_owned(), storage.prefix().to_owned());
            Some(Backend {
                storage: Arc::new(storage),
                another: Box::new(move || {
                    Arc::new(
                        jobs::RedisStorage::builder(&url)
                            .prefix(&prefix)
                            .retention(retention)
                            .max_payload(max_payload)
                            .build()
                            .expect("a valid Redis URL"),
                    )
                }),
                _redis: Some(redis),
                _postgres: None,
                _tls_redis: None,
            })
        }
        Kind::RedisCluster => {
            let cluster = TestCluster::shared(test)?;
            let storage = cluster
                .storage_builder(test, retention)
                .max_payload(max_payload)
                .build()
                .expect("valid cluster URLs");
            let (urls, prefix) = (cluster.urls(), storage.prefix().to_owned());
            Some(Backend {
                storage: Arc::new(storage),
                another: Box::new(move || {
                    Arc::new(
                        jobs::RedisStorage::cluster_builder(&urls)
                            .prefix(&prefix)
                            .retention(retention)
                            .max_payload(max_payload)
                            .build()
                            .expect("valid cluster URLs"),
                    )
                }),
                _redis: None,
                _postgres: None,
                _tls_redis: None,
            })
        }
        Kind::Postgres => {
            let postgres = TestPostgres::start(test)?;
            let open = {
                let builder = postgres.storage_builder(retention).max_payload(max_payload);
                move || -> Arc<dyn Storage> {
                    Arc::new(builder.clone().build().expect("a valid PostgreSQL URL"))
                }
            };
            Some(Backend {
                storage: open(),
                another: Box::new(open),
                _redis: None,
                _postgres: Some(postgres),
                _tls_redis: None,
            })
        }
    }
}

/// Declares, for each named `async fn(Kind)`, a test on each backend (modules `memory`,
/// `redis`, `redis_cluster` and `postgres`).
#[macro_export]
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::backends::Kind::Memory).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::backends::Kind::Redis).await;
                }
            )*
        }
        mod redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::backends::Kind::RedisCluster).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::backends::Kind::Postgres).await;
                }
            )*
        }
    };
}
