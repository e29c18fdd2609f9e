//! What a dashboard is built with: [`Config`] (its monitor, read-only mode, redaction and
//! authorization hooks).

use axum::http::request::Parts;
use jobs::monitor::Monitor;
use std::sync::Arc;

/// Rewrites a job's arguments before display: `(job name, JSON arguments) -> shown text`.
pub type Redact = Arc<dyn Fn(&str, &str) -> String + Send + Sync>;

/// Decides whether a request may see the dashboard (`true`) or is refused with 403.
pub type Authorize = Arc<dyn Fn(&Parts) -> bool + Send + Sync>;

/// How a dashboard is served.
#[derive(Clone)]
pub struct Config {
    pub(crate) monitor: Monitor,
    pub(crate) read_only: bool,
    pub(crate) redact: Redact,
    pub(crate) authorize: Option<Authorize>,
    /// The token every form carries (random per configuration).
    pub(crate) csrf: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A dashboard of `monitor`: actions allowed, arguments shown as stored, every request
    /// authorized (wrap the router in the host's auth layer, or see [`Config::authorize`]).
    pub fn new(monitor: Monitor) -> Config {
        Config {
            monitor,
            read_only: false,
            redact: Arc::new(|_: &str, args: &str| args.to_owned()),
            authorize: None,
            csrf: format!("{:032x}", rand::random::<u128>()),
        }
    }

    /// Shows everything and changes nothing: every action is refused.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Config {
        self.read_only = read_only;
        self
    }

    /// Rewrites arguments before they are shown, e.g. [`redact_keys`].
    #[must_use]
    pub fn redact(mut self, redact: impl Fn(&str, &str) -> String + Send + Sync + 'static) -> Self {
        self.redact = Arc::new(redact);
        self
    }

    /// Lets a request in only when `allow` says so (e.g. checks a session cookie or a header
    /// the host's proxy sets); others get 403.
    #[must_use]
    pub fn authorize(mut self, allow: impl Fn(&Parts) -> bool + Send + Sync + 'static) -> Self {
        self.authorize = Some(Arc::new(allow));
        self
    }
}

/// A redaction hook that replaces the value of every JSON object key named in `keys` (at any
/// depth, case-insensitive) with `"[redacted]"`; arguments that are not JSON are hidden whole.
///
/// ```
/// let redact = jobs_dashboard::redact_keys(&["password"]);
/// assert_eq!(
///     redact("signup", r#"{"user":"ada","password":"hunter2"}"#),
///     r#"{"password":"[redacted]","user":"ada"}"#
/// );
/// ```
pub fn redact_keys(keys: &[&str]) -> impl Fn(&str, &str) -> String + Send + Sync + 'static {
    let keys: Vec<String> = keys.iter().map(|k| k.to_ascii_lowercase()).collect();
    move |_: &str, args: &str| match serde_json::from_str::<serde_json::Value>(args) {
        Ok(mut v) => {
            scrub(&mut v, &keys);
            v.to_string()
        }
        Err(_) => "[redacted]".to_owned(),
    }
}

fn scrub(v: &mut serde_json::Value, keys: &[String]) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if keys.contains(&k.to_ascii_lowercase()) {
                    *val = serde_json::Value::String("[redacted]".to_owned());
                } else {
                    scrub(val, keys);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| scrub(i, keys)),
        _ => {}
    }
}
