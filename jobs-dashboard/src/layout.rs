//! The page shell (header, navigation, stylesheet, script) and what every page shares: state
//! badges, ages, the forms' token field, notices, and error pages.

use crate::base::{encode, Base};
use crate::config::Config;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use jobs::storage::now_ms;
use jobs::JobState;
use maud::{html, Markup, DOCTYPE};

/// The navigation: (path, label).
const NAV: [(&str, &str); 7] = [
    ("/", "Overview"),
    ("/queues", "Queues"),
    ("/jobs?state=failed", "Jobs"),
    ("/jobs?state=scheduled", "Scheduled"),
    ("/recurring", "Recurring"),
    ("/servers", "Servers"),
    ("/batches", "Batches"),
];

/// A whole page: `title`, the navigation with `active` marked, and `body`.
pub(crate) fn shell(
    config: &Config,
    base: &Base,
    title: &str,
    active: &str,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · jobs" }
                link rel="stylesheet" href=(base.to("/assets/style.css"));
            }
            body data-base=(base.0) {
                header {
                    span.brand { "jobs" }
                    nav {
                        @for (path, label) in NAV {
                            a href=(base.to(path)) class=[(label == active).then_some("on")] { (label) }
                        }
                    }
                    @if config.read_only { span.mode { "read-only" } }
                }
                main { (body) }
                script src=(base.to("/assets/live.js")) {}
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// A state as a badge.
pub(crate) fn state_badge(state: JobState) -> Markup {
    html! { span class={ "badge " (state.as_str()) } { (state.as_str()) } }
}

/// `at_ms` as an age (`5m ago`), with the exact time in a tooltip.
pub(crate) fn age(at_ms: u64) -> Markup {
    let now = now_ms();
    let (d, text) = if at_ms <= now {
        (now - at_ms, " ago")
    } else {
        (at_ms - now, " from now")
    };
    html! { span title={ (at_ms) " ms since the epoch" } { (span(d)) (text) } }
}

/// A duration in ms, short.
pub(crate) fn span(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{}s", ms / 1_000),
        60_000..=3_599_999 => format!("{}m", ms / 60_000),
        3_600_000..=86_399_999 => format!("{}h", ms / 3_600_000),
        _ => format!("{}d", ms / 86_400_000),
    }
}

/// The hidden fields every form carries: the CSRF token and the page to return to.
pub(crate) fn form_fields(config: &Config, back: &str) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(config.csrf);
        input type="hidden" name="back" value=(back);
    }
}

/// A POST button form to `action` with extra hidden `fields`; nothing in read-only mode.
pub(crate) fn button(
    config: &Config,
    base: &Base,
    action: &str,
    back: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: &str,
) -> Markup {
    if config.read_only {
        return html! {};
    }
    html! {
        form.inline method="post" action=(base.to(action)) {
            (form_fields(config, back))
            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
            button type="submit" class=(class) { (label) }
        }
    }
}

/// The notice a redirect after an action carries (`?done=...`), escaped like everything else.
pub(crate) fn notice(done: Option<&str>) -> Markup {
    html! { @if let Some(text) = done { div.notice { (text) } } }
}

/// The link to a job's page.
pub(crate) fn job_link(base: &Base, id: &str) -> String {
    base.to(&format!("/jobs/{}", encode(id)))
}

/// What a handler answers when something failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The storage failed (503 when unreachable, 500 otherwise).
    Storage(jobs::Error),
    /// A bad request, with what was wrong.
    Bad(String),
    /// Nothing by that name.
    NotFound(String),
}

impl From<jobs::Error> for Failure {
    fn from(e: jobs::Error) -> Self {
        if e.is_config() {
            Failure::Bad(e.to_string())
        } else {
            Failure::Storage(e)
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            Failure::Storage(e) if e.is_unreachable() => {
                (StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            Failure::Storage(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            Failure::Bad(text) => (StatusCode::BAD_REQUEST, text),
            Failure::NotFound(text) => (StatusCode::NOT_FOUND, text),
        };
        let body = html! {
            (DOCTYPE)
            html lang="en" { head { meta charset="utf-8"; title { "jobs: " (status.as_u16()) } }
                body { h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) } p { (text) } } }
        };
        (status, Html(body.into_string())).into_response()
    }
}

/// A handler's answer.
pub(crate) type Answer = Result<Response, Failure>;
