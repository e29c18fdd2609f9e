//! What a queue name may be: the rule `#[background_job(queue = "...")]` checks at compile time,
//! checked at run time for names given at a call (`Client::enqueue_on`, `Worker::queues`).
//!
//! The rule keeps every storage's keys well formed: on Redis a queue name goes into the hash tag
//! `{<prefix>:<queue>}` of every key of that queue, so a `{`, `}` or `:` would move some of them
//! to another slot or make two queues share keys; whitespace makes names that cannot be typed
//! back into the CLI.

use crate::error::{Error, Result};

/// Checks `name` against the rule; the error says what is wrong and where the name came from.
pub(crate) fn check(name: &str, given_to: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::config(format!(
            "{given_to}: a queue name must not be empty"
        )));
    }
    if name.contains(['{', '}', ':']) || name.chars().any(char::is_whitespace) {
        return Err(Error::config(format!(
            "{given_to}: the queue name {name:?} is not allowed: a queue name must be without spaces, `:`, `{{` or `}}`"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn names_the_macro_accepts_pass() {
        for name in ["default", "mail-eu", "bench0", "critical_1", "ü"] {
            assert!(check(name, "test").is_ok(), "{name}");
        }
    }

    #[test]
    fn names_the_macro_refuses_are_refused_with_the_reason() {
        let empty = check("", "enqueue_on").unwrap_err().to_string();
        assert!(
            empty.contains("enqueue_on") && empty.contains("must not be empty"),
            "{empty}"
        );
        for name in ["a b", "a:b", "{a}", "a}", "tab\t"] {
            let e = check(name, "enqueue_on").unwrap_err().to_string();
            assert!(e.contains("is not allowed"), "{name}: {e}");
        }
    }
}
