//! The overview: totals, every queue, live counts and the per-second graph (SSE), and the
//! history of the last 24 hours per minute.

use crate::base::{encode, Base};
use crate::config::Config;
use crate::layout::{shell, span, Answer};
use crate::views::{History, Stats};
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use futures::stream::{self, Stream};
use jobs::monitor::{HistoryPoint, Monitor, Resolution};
use maud::{html, Markup};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;

/// The overview's data.
pub(crate) async fn stats(m: &Monitor) -> Result<Stats, jobs::Error> {
    let (queues, servers) = futures::try_join!(m.queues(), m.servers())?;
    Ok(Stats::new(queues, servers.len()))
}

pub(crate) async fn page(State(config): State<Config>, base: Base) -> Answer {
    let m = &config.monitor;
    let (stats, history) = futures::try_join!(stats(m), m.history(None, Resolution::Minute))?;
    let t = &stats.totals;
    let cards = [
        ("pending", t.pending.to_string(), "/jobs?state=enqueued"),
        (
            "scheduled",
            t.scheduled.to_string(),
            "/jobs?state=scheduled",
        ),
        (
            "processing",
            t.processing.to_string(),
            "/jobs?state=processing",
        ),
        ("failed", t.failed.to_string(), "/jobs?state=failed"),
        (
            "succeeded_total",
            t.succeeded_total.to_string(),
            "/jobs?state=succeeded",
        ),
        (
            "failed_total",
            t.failed_total.to_string(),
            "/jobs?state=failed",
        ),
        ("servers", stats.servers.to_string(), "/servers"),
    ];
    let body = html! {
        h1 { "Overview" }
        div.cards {
            @for (key, value, link) in &cards {
                a.card href=(base.to(link)) {
                    div.n data-live=(key) { (value) }
                    div.l { (key.replace('_', " ")) }
                }
            }
        }
        h2 { "Now" }
        div.graph {
            svg #live-graph viewBox="0 0 600 140" preserveAspectRatio="none" {}
            div.legend { span.ok { "succeeded" } " / " span.bad { "failed" } " per second, last minute: "
                span data-live="rate" { "waiting for data (needs JavaScript)" } }
        }
        h2 { "Last 24 hours" }
        (history_graph(&history))
        h2 { "Queues" }
        (queue_table(&base, &stats))
    };
    Ok(shell(&config, &base, "Overview", "Overview", body))
}

/// The queues with their counts (shared with the queues page, which adds the pause buttons).
pub(crate) fn queue_table(base: &Base, stats: &Stats) -> Markup {
    html! {
        table #queues {
            thead { tr { th { "Queue" } th.num { "Pending" } th.num { "Scheduled" } th.num { "Processing" }
                th.num { "Failed" } th.num { "Latency" } th.num { "Succeeded" } th { "" } } }
            tbody {
                @for q in &stats.queues {
                    tr {
                        td { a href=(base.to(&format!("/jobs?state=enqueued&queue={}", encode(&q.name)))) { (q.name) } }
                        td.num data-live={ "q:" (q.name) ":pending" } { (q.pending) }
                        td.num { (q.scheduled) }
                        td.num data-live={ "q:" (q.name) ":processing" } { (q.processing) }
                        td.num data-live={ "q:" (q.name) ":failed" } {
                            a href=(base.to(&format!("/jobs?state=failed&queue={}", encode(&q.name)))) { (q.failed) } }
                        td.num { (q.latency_ms.map(span).unwrap_or_else(|| "-".to_owned())) }
                        td.num { (q.succeeded_total) }
                        td { @if q.paused { span.badge.paused { "paused" } } }
                    }
                }
                @if stats.queues.is_empty() { tr { td colspan="8" .muted { "No queues yet." } } }
            }
        }
    }
}

/// Bars of succeeded (up) and failed (down) jobs per bucket, drawn on the server.
pub(crate) fn history_graph(points: &[HistoryPoint]) -> Markup {
    let max = points
        .iter()
        .map(|p| p.succeeded.max(p.failed))
        .max()
        .unwrap_or(0)
        .max(1);
    let total_s: u64 = points.iter().map(|p| p.succeeded).sum();
    let total_f: u64 = points.iter().map(|p| p.failed).sum();
    let n = points.len().max(1) as f64;
    let w = 1200.0 / n;
    html! {
        div.graph {
            svg viewBox="0 0 1200 140" preserveAspectRatio="none" role="img" aria-label="history" {
                @for (i, p) in points.iter().enumerate() {
                    @if p.succeeded > 0 {
                        @let h = 68.0 * p.succeeded as f64 / max as f64;
                        rect.s x=(format!("{:.2}", i as f64 * w)) y=(format!("{:.2}", 70.0 - h))
                            width=(format!("{:.2}", w.max(1.0))) height=(format!("{h:.2}")) {}
                    }
                    @if p.failed > 0 {
                        @let h = 68.0 * p.failed as f64 / max as f64;
                        rect.f x=(format!("{:.2}", i as f64 * w)) y="70"
                            width=(format!("{:.2}", w.max(1.0))) height=(format!("{h:.2}")) {}
                    }
                }
            }
            div.legend { span.ok { (total_s) " succeeded" } ", " span.bad { (total_f) " failed" }
                " (peak " (max) " per bucket)" }
        }
    }
}

pub(crate) async fn api(State(config): State<Config>) -> Answer {
    Ok(Json(stats(&config.monitor).await?).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct HistoryQuery {
    resolution: Option<String>,
    queue: Option<String>,
}

pub(crate) async fn history_api(
    State(config): State<Config>,
    Query(q): Query<HistoryQuery>,
) -> Answer {
    let resolution = match q.resolution.as_deref() {
        None | Some("minute") => Resolution::Minute,
        Some("hour") => Resolution::Hour,
        Some(other) => {
            return Err(crate::layout::Failure::Bad(format!(
                "`{other}` is not a resolution: use minute or hour"
            )))
        }
    };
    let queue = super::given(&q.queue);
    let points = config.monitor.history(queue.as_deref(), resolution).await?;
    Ok(Json(History { resolution, points }).into_response())
}

/// Live counts: the overview's data once a second, as Server-Sent Events.
pub(crate) async fn events(
    State(config): State<Config>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let m = config.monitor.clone();
    let stream = stream::unfold((m, true), |(m, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let event = match stats(&m).await {
            Ok(s) => Event::default().data(serde_json::to_string(&s).unwrap_or_default()),
            Err(e) => Event::default().event("error").data(e.to_string()),
        };
        Some((Ok(event), (m, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
