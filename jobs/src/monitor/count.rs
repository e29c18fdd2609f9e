//! A count of jobs that says whether it is exact: [`Count`].

use serde::{Serialize, Serializer};
use std::fmt;

/// How many jobs, and how sure the storage is of the number.
///
/// Memory and Redis keep exact counts of every state. PostgreSQL counts rows, so past a cap it
/// stops counting and gives an estimate from the planner's statistics instead, so that a page
/// over a million jobs still answers in milliseconds.
///
/// Serialized as the plain number; [`Display`](fmt::Display) marks what is not exact.
///
/// # Examples
///
/// ```
/// use jobs::monitor::Count;
///
/// assert_eq!(Count::exact(1234).to_string(), "1,234");
/// assert_eq!(Count::at_least(10_000).to_string(), "10,000+");
/// assert_eq!(Count::estimate(1_000_000).to_string(), "~1,000,000");
/// assert_eq!(serde_json::to_string(&Count::estimate(7)).unwrap(), "7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Count {
    /// The number (a lower bound or an estimate when not exact).
    pub value: u64,
    /// How it was found.
    pub kind: CountKind,
}

/// How a [`Count`] was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CountKind {
    /// Counted or kept exactly.
    #[default]
    Exact,
    /// Counting stopped at the cap: there are at least this many.
    AtLeast,
    /// An estimate (above the cap).
    Estimate,
}

impl Count {
    /// An exact count.
    pub fn exact(value: u64) -> Count {
        Count {
            value,
            kind: CountKind::Exact,
        }
    }

    /// At least `value`: counting stopped there.
    pub fn at_least(value: u64) -> Count {
        Count {
            value,
            kind: CountKind::AtLeast,
        }
    }

    /// An estimate.
    pub fn estimate(value: u64) -> Count {
        Count {
            value,
            kind: CountKind::Estimate,
        }
    }

    /// Whether the number is exact.
    pub fn is_exact(&self) -> bool {
        self.kind == CountKind::Exact
    }

    /// The sum of two counts: exact only if both are.
    #[must_use]
    pub fn plus(self, other: Count) -> Count {
        let kind = match (self.kind, other.kind) {
            (CountKind::Exact, CountKind::Exact) => CountKind::Exact,
            (CountKind::Estimate, _) | (_, CountKind::Estimate) => CountKind::Estimate,
            _ => CountKind::AtLeast,
        };
        Count {
            value: self.value.saturating_add(other.value),
            kind,
        }
    }
}

impl Serialize for Count {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.value)
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            CountKind::Exact => f.write_str(&grouped(self.value)),
            CountKind::AtLeast => write!(f, "{}+", grouped(self.value)),
            CountKind::Estimate => write!(f, "~{}", grouped(self.value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_digits_and_adds_kinds() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(123_456_789), "123,456,789");
        assert_eq!(Count::exact(1).plus(Count::exact(2)), Count::exact(3));
        assert_eq!(Count::exact(1).plus(Count::at_least(2)), Count::at_least(3));
        assert_eq!(
            Count::at_least(1).plus(Count::estimate(2)),
            Count::estimate(3)
        );
    }
}
