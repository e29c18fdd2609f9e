//! The routes: one module per page, each with its `/api/...` JSON twin, and the actions they
//! post to.

mod batches;
mod job;
mod jobs;
mod overview;
mod queues;
mod recurring;
mod servers;

use crate::base::{encode, Base};
use crate::config::Config;
use crate::layout::Failure;
use crate::security;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub(crate) fn routes<S: Clone + Send + Sync + 'static>(config: Config) -> Router<S> {
    Router::new()
        .route("/", get(overview::page))
        .route("/api/stats", get(overview::api))
        .route("/api/history", get(overview::history_api))
        .route("/events", get(overview::events))
        .route("/queues", get(queues::page))
        .route("/api/queues", get(queues::api))
        .route("/queues/{action}", post(queues::act))
        .route("/jobs", get(jobs::page))
        .route("/api/jobs", get(jobs::api))
        .route("/jobs/bulk", post(jobs::bulk))
        .route("/jobs/{id}", get(job::page))
        .route("/api/jobs/{id}", get(job::api))
        .route("/jobs/{id}/{action}", post(job::act))
        .route("/recurring", get(recurring::page))
        .route("/api/recurring", get(recurring::api))
        .route("/recurring/{id}/{action}", post(recurring::act))
        .route("/servers", get(servers::page))
        .route("/api/servers", get(servers::api))
        .route("/batches", get(batches::page))
        .route("/api/batches", get(batches::api))
        .route("/assets/style.css", get(crate::assets::style))
        .route("/assets/live.js", get(crate::assets::live))
        .layer(axum::middleware::from_fn_with_state(
            config.clone(),
            security::guard,
        ))
        .with_state(config)
}

/// The fields every action form carries.
#[derive(Debug, Deserialize)]
pub(crate) struct Posted {
    /// The CSRF token.
    pub(crate) csrf: String,
    /// The page to go back to, inside the dashboard.
    #[serde(default)]
    pub(crate) back: String,
}

/// Checks an action's token: the refusal to answer with when it is wrong.
pub(crate) fn check(config: &Config, posted: &Posted) -> Option<Response> {
    security::check_token(config, &posted.csrf)
}

/// After an action: back to the page it came from (a path inside the dashboard only), with a
/// notice saying what was done.
pub(crate) fn back_to(base: &Base, back: &str, done: &str) -> Response {
    let inside = back.starts_with('/') && !back.starts_with("//") && !back.contains('\\');
    let path = if inside { back } else { "/" };
    let sep = if path.contains('?') { '&' } else { '?' };
    let location = format!("{}{sep}done={}", base.to(path), encode(done));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// An optional text field: empty means absent.
pub(crate) fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A job id from a path or form.
pub(crate) fn job_id(text: &str) -> Result<::jobs::JobId, Failure> {
    text.parse()
        .map_err(|e: ::jobs::ParseJobIdError| Failure::Bad(e.to_string()))
}
