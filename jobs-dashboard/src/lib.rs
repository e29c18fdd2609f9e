//! The web dashboard of the `jobs` framework: an [axum] [`Router`](axum::Router) over
//! [`jobs::monitor::Monitor`] that a host application mounts under any prefix, or that the
//! `jobs dashboard` command serves on its own.
//!
//! ```
//! use jobs::monitor::Monitor;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let storage = jobs::MemoryStorage::new();
//! let config = jobs_dashboard::Config::new(Monitor::new(storage))
//!     .read_only(false)
//!     .redact(jobs_dashboard::redact_keys(&["password", "token"]));
//! // Mounted under a prefix of the host's own app (add the host's auth layer around it).
//! let app: axum::Router = axum::Router::new().nest("/admin/jobs", jobs_dashboard::router(config));
//! # let _ = app;
//! # }
//! ```
//!
//! Pages are rendered on the server ([maud] templates, which escape every value), need no
//! JavaScript for any action, and load nothing from elsewhere: the stylesheet and the small
//! script that keeps counts live (Server-Sent Events from `events`) are embedded. Every page has
//! a JSON twin under `api/` built from the same view model ([`views`]).
//!
//! # Safe by default
//!
//! - State-changing requests are POST forms only, refused unless the browser says they come
//!   from the same origin (`Sec-Fetch-Site`, else `Origin`) and they carry the dashboard's
//!   CSRF token; [`Config::read_only`] refuses them all.
//! - Every response carries a Content-Security-Policy without inline script or style, and
//!   headers that forbid framing and MIME sniffing.
//! - Arguments, names and errors are HTML-escaped; [`Config::redact`] rewrites arguments before
//!   they are shown (JSON too).
//! - [`Config::authorize`] decides per request (or wrap the router in the host's own tower
//!   auth layer); the standalone server binds to 127.0.0.1 unless told otherwise.
//!
//! [axum]: https://docs.rs/axum
//! [maud]: https://docs.rs/maud
#![warn(missing_docs, unreachable_pub)]

mod assets;
mod base;
mod config;
mod layout;
mod pages;
mod security;
pub mod views;

pub use config::{redact_keys, Authorize, Config, Redact};

/// The dashboard's routes, for [`Router::nest`](axum::Router::nest) under any prefix, or to
/// serve as they are. Pages: `/` (overview), `/queues`, `/jobs?state=failed`, `/jobs/<id>`,
/// `/recurring`, `/servers`, `/batches`; their JSON under `/api/...`; live counts at `/events`.
pub fn router<S: Clone + Send + Sync + 'static>(config: Config) -> axum::Router<S> {
    pages::routes(config)
}
