//! Job headers: a small map of strings carried with a job, beside its arguments (trace context,
//! a tenant, a request id), set by the client or a client [filter](crate::filter::Filter),
//! read in [`JobContext::headers`](crate::JobContext::headers) and by worker filters.

use crate::error::{Error, Kind, Result};
use serde::ser::SerializeMap;
use std::fmt;

/// The most bytes a job's headers may take, stored (as a JSON object): 8 KiB. Headers are
/// metadata; data belongs in the arguments.
pub const MAX_HEADERS: usize = 8 * 1024;

/// A small map of string headers carried with a job. Keys are unique; iteration follows
/// insertion order. An empty map costs nothing, neither in memory nor in storage.
///
/// With the `opentelemetry` feature the client stores the W3C trace context
/// (`traceparent`, `tracestate`) here, and the worker links the attempt's span to it.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), jobs::Error> {
/// #[jobs::background_job]
/// async fn export(account: u64, ctx: jobs::JobContext) {
///     let tenant = ctx.headers().get("tenant");
///     println!("export of {account} for {tenant:?}");
/// }
///
/// let client = jobs::Client::new(jobs::MemoryStorage::new());
/// let id = client.submit(jobs::job!(export(7))).header("tenant", "acme").await?;
/// let info = client.job(&id).await?.expect("stored");
/// assert_eq!(info.headers.get("tenant"), Some("acme"));
/// # Ok(()) }
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    /// No headers.
    pub const fn new() -> Self {
        Headers {
            entries: Vec::new(),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let (key, value) = (key.into(), value.into());
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(at).1)
    }

    /// The headers, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The stored form: a JSON object (empty string for no headers).
    pub(crate) fn to_json(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        serde_json::to_string(self).unwrap_or_default()
    }

    /// How many bytes the stored form takes (what counts toward the limits).
    pub(crate) fn stored_len(&self) -> usize {
        if self.is_empty() {
            return 0;
        }
        // `{}` plus `"k":"v"` and a comma per entry, plus escapes: computed as stored.
        self.to_json().len()
    }

    /// Decodes the stored form; `None` when it is not a JSON object of strings.
    // Only backends that store text read it back (the memory storage keeps values).
    #[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
    pub(crate) fn from_json(json: &str) -> Option<Headers> {
        if json.is_empty() {
            return Some(Headers::new());
        }
        serde_json::from_str(json).ok()
    }

    /// The stored headers of recurring job `id`. Undecodable ones (written behind the
    /// storage's back) are dropped with a warning rather than hiding the entry: its ticks still
    /// run.
    #[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
    pub(crate) fn of_recurring(id: &str, stored: &str) -> Headers {
        Headers::from_json(stored).unwrap_or_else(|| {
            tracing::warn!(
                recurring = id,
                "ignoring the recurring job's undecodable headers"
            );
            Headers::new()
        })
    }

    /// Refuses headers over [`MAX_HEADERS`] or with an empty key, for job `name`.
    ///
    /// # Errors
    ///
    /// A [too large](Error::is_too_large) error naming both sizes, or a configuration error
    /// for an empty key.
    pub(crate) fn check(&self, name: &str) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        if self.entries.iter().any(|(k, _)| k.is_empty()) {
            return Err(Error::config(format!(
                "job `{name}` has a header with an empty name: nothing was stored"
            )));
        }
        let len = self.stored_len();
        if len > MAX_HEADERS {
            return Err(Error::new(
                Kind::TooLarge,
                format!(
                    "job `{name}` has {} of headers, over the limit of {}: nothing was stored \
                     (headers carry small metadata such as trace context; pass data as \
                     arguments)",
                    crate::storage::size(len as u64),
                    crate::storage::size(MAX_HEADERS as u64)
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        headers.extend(iter);
        headers
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for Headers {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl serde::Serialize for Headers {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for Headers {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Headers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of string headers")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Headers, A::Error> {
                let mut headers = Headers::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    headers.insert(k, v);
                }
                Ok(headers)
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_keep_their_order() {
        let mut h = Headers::new();
        assert!(h.insert("b", "1").is_none());
        assert!(h.insert("a", "2").is_none());
        assert_eq!(h.insert("b", "3").as_deref(), Some("1"));
        assert_eq!(h.iter().collect::<Vec<_>>(), [("b", "3"), ("a", "2")]);
        assert_eq!(h.remove("b").as_deref(), Some("3"));
        assert_eq!(h.get("a"), Some("2"));
        assert_eq!(format!("{h:?}"), r#"{"a": "2"}"#);
    }

    #[test]
    fn the_stored_form_round_trips_and_is_empty_for_none() {
        assert_eq!(Headers::new().to_json(), "");
        assert_eq!(Headers::from_json(""), Some(Headers::new()));
        let h: Headers = [("traceparent", "00-ab-cd-01"), ("q", "a\"|b")]
            .into_iter()
            .collect();
        let json = h.to_json();
        assert_eq!(json.len(), h.stored_len());
        assert_eq!(Headers::from_json(&json), Some(h));
        assert_eq!(Headers::from_json("[1]"), None);
        assert_eq!(Headers::from_json(r#"{"a":1}"#), None);
    }

    #[test]
    fn headers_over_the_limit_are_refused_naming_both_sizes() {
        let h: Headers = [("big", "x".repeat(MAX_HEADERS))].into_iter().collect();
        let err = h.check("send_email").unwrap_err();
        assert!(err.is_too_large(), "{err:?}");
        assert!(
            err.to_string().starts_with(
                "job `send_email` has 8202 bytes (8.0 KiB) of headers, over the limit of 8 KiB"
            ),
            "{err}"
        );
        let empty_key: Headers = [("", "x")].into_iter().collect();
        assert!(empty_key.check("j").unwrap_err().is_config());
    }
}
