//! Queues: counts, latency, and pause / resume.

use super::{back_to, check, Posted};
use crate::base::{encode, Base};
use crate::config::Config;
use crate::layout::{button, notice, shell, span, Answer, Failure};
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::{Form, Json};
use maud::html;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(crate) struct Notice {
    done: Option<String>,
}

pub(crate) async fn page(
    State(config): State<Config>,
    base: Base,
    Query(n): Query<Notice>,
) -> Answer {
    let stats = super::overview::stats(&config.monitor).await?;
    let body = html! {
        h1 { "Queues" }
        (notice(n.done.as_deref()))
        table #queues {
            thead { tr { th { "Queue" } th.num { "Pending" } th.num { "Scheduled" } th.num { "Processing" }
                th.num { "Failed" } th.num { "Latency" } th.num { "Succeeded" } th.num { "Failed in all" }
                th { "State" } th { "" } } }
            tbody {
                @for q in &stats.queues {
                    tr data-queue=(q.name) {
                        td { a href=(base.to(&format!("/jobs?state=enqueued&queue={}", encode(&q.name)))) { (q.name) } }
                        td.num { (q.pending) } td.num { (q.scheduled) } td.num { (q.processing) }
                        td.num { (q.failed) }
                        td.num { (q.latency_ms.map(span).unwrap_or_else(|| "-".to_owned())) }
                        td.num { (q.succeeded_total) } td.num { (q.failed_total) }
                        td { @if q.paused { span.badge.paused { "paused" } } @else { span.badge { "running" } } }
                        td {
                            @if q.paused {
                                (button(&config, &base, "/queues/resume", "/queues", &[("queue", &q.name)], "Resume", "primary"))
                            } @else {
                                (button(&config, &base, "/queues/pause", "/queues", &[("queue", &q.name)], "Pause", ""))
                            }
                        }
                    }
                }
                @if stats.queues.is_empty() { tr { td colspan="10" .muted { "No queues yet." } } }
            }
        }
        @if !stats.queues.iter().all(|q| q.counts_exact()) {
            p.muted { "Counts marked + or ~ stop counting past 10,000 (the storage estimates beyond)." }
        }
    };
    Ok(shell(&config, &base, "Queues", "Queues", body))
}

pub(crate) async fn api(State(config): State<Config>) -> Answer {
    Ok(Json(config.monitor.queues().await?).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct QueueForm {
    #[serde(flatten)]
    posted: Posted,
    queue: String,
}

pub(crate) async fn act(
    State(config): State<Config>,
    base: Base,
    Path(action): Path<String>,
    Form(form): Form<QueueForm>,
) -> Answer {
    if let Some(refused) = check(&config, &form.posted) {
        return Ok(refused);
    }
    let queue = form.queue.trim();
    if queue.is_empty() {
        return Err(Failure::Bad("no queue given".into()));
    }
    let done = match action.as_str() {
        "pause" => {
            config.monitor.pause(queue).await?;
            format!("Paused {queue}: no worker fetches from it until it is resumed.")
        }
        "resume" => {
            config.monitor.resume(queue).await?;
            format!("Resumed {queue}.")
        }
        other => return Err(Failure::NotFound(format!("no queue action `{other}`"))),
    };
    Ok(back_to(&base, &form.posted.back, &done))
}
