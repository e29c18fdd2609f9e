//! Servers: every live worker process with its host, pid, queues, concurrency, start, last
//! heartbeat and the jobs it holds.

use crate::base::Base;
use crate::config::Config;
use crate::layout::{age, job_link, shell, Answer};
use crate::views::Servers;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use maud::html;

pub(crate) async fn page(State(config): State<Config>, base: Base) -> Answer {
    let servers = config.monitor.servers().await?;
    let body = html! {
        h1 { "Servers" }
        table #servers {
            thead { tr { th { "Name" } th { "Host" } th.num { "Pid" } th { "Queues" } th.num { "Concurrency" }
                th { "Started" } th { "Heartbeat" } th { "Jobs held (running or about to start)" } } }
            tbody {
                @for s in &servers {
                    tr {
                        td { (s.name) } td { (s.host) } td.num { (s.pid) } td { (s.queues.join(", ")) }
                        td.num { (s.concurrency) }
                        td { @if s.started_at_ms > 0 { (age(s.started_at_ms)) } }
                        td { @if s.heartbeat_at_ms > 0 { (age(s.heartbeat_at_ms)) } }
                        td {
                            (s.jobs_total)
                            @if !s.jobs.is_empty() { ": " }
                            @for id in s.jobs.iter().take(20) { a href=(job_link(&base, &id.to_string())) { (id) } " " }
                            @if s.jobs.len() > 20 { "…" }
                        }
                    }
                }
                @if servers.is_empty() { tr { td colspan="8" .muted { "No worker is running." } } }
            }
        }
    };
    Ok(shell(&config, &base, "Servers", "Servers", body))
}

pub(crate) async fn api(State(config): State<Config>) -> Answer {
    let servers = config.monitor.servers().await?;
    Ok(Json(Servers { servers }).into_response())
}
