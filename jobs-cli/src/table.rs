//! Human output: aligned tables without borders, and times as ages.

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};
use jobs::storage::now_ms;

/// A table with `header`, no borders, wrapped to the terminal.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    t
}

/// How long ago `at_ms` was: `3s ago`, `5m ago`, `2h ago`, `4d ago`; in the future `in 3s`.
pub(crate) fn age(at_ms: u64) -> String {
    let now = now_ms();
    let (d, suffix, prefix) = if at_ms <= now {
        (now - at_ms, " ago", "")
    } else {
        (at_ms - now, "", "in ")
    };
    format!("{prefix}{}{suffix}", span(d))
}

/// A duration in ms as `850ms`, `12s`, `5m`, `2h`, `4d`.
pub(crate) fn span(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{}s", ms / 1_000),
        60_000..=3_599_999 => format!("{}m", ms / 60_000),
        3_600_000..=86_399_999 => format!("{}h", ms / 3_600_000),
        _ => format!("{}d", ms / 86_400_000),
    }
}

/// `text` cut to `max` characters with an ellipsis.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}
