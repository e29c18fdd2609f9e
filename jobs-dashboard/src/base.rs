//! Where the dashboard is mounted, so links work under any prefix: [`Base`].

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use std::convert::Infallible;

/// The path the dashboard is mounted at, without a trailing `/` (`""` at the root,
/// `/admin/jobs` when nested there).
#[derive(Debug, Clone)]
pub(crate) struct Base(pub(crate) String);

impl Base {
    /// The link to `path` (which starts with `/`) inside the dashboard.
    pub(crate) fn to(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let inner = parts.uri.path().to_owned();
        let original = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| inner.clone(), |o| o.0.path().to_owned());
        let base = if inner == "/" {
            original.as_str()
        } else {
            original.strip_suffix(inner.as_str()).unwrap_or("")
        };
        let base = base.trim_end_matches('/').to_owned();
        Ok(Base(base))
    }
}

/// `text` percent-encoded for a path segment or a query value.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
