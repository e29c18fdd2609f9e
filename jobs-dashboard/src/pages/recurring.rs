//! Recurring jobs: schedule, next and last run; trigger now, pause, resume, remove.

use super::{back_to, check, Posted};
use crate::base::{encode, Base};
use crate::config::Config;
use crate::layout::{age, button, job_link, notice, shell, Answer, Failure};
use crate::views::RecurringItem;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::{Form, Json};
use maud::html;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(crate) struct Notice {
    done: Option<String>,
}

async fn items(config: &Config) -> Result<Vec<RecurringItem>, Failure> {
    Ok(config
        .monitor
        .recurring()
        .await?
        .iter()
        .map(RecurringItem::from)
        .collect())
}

pub(crate) async fn page(
    State(config): State<Config>,
    base: Base,
    Query(n): Query<Notice>,
) -> Answer {
    let items = items(&config).await?;
    let body = html! {
        h1 { "Recurring jobs" }
        (notice(n.done.as_deref()))
        table #recurring {
            thead { tr { th { "Id" } th { "Schedule" } th { "Queue" } th { "Job" } th { "Next run" } th { "Last run" } th { "" } } }
            tbody {
                @for r in &items {
                    @let at = format!("/recurring/{}", encode(&r.id));
                    tr data-recurring=(r.id) {
                        td { (r.id) @if r.paused { " " span.badge.paused { "paused" } } }
                        td { code { (r.cron) } " " span.muted { (r.time_zone) } }
                        td { (r.queue) }
                        td { (r.name) }
                        td { @if let Some(t) = r.next_run_ms { (age(t)) } @else { "-" } }
                        td { @if let Some(t) = r.last_run_ms { (age(t)) } @else { "-" } }
                        td {
                            (button(&config, &base, &format!("{at}/trigger"), "/recurring", &[], "Trigger now", "primary"))
                            @if r.paused {
                                (button(&config, &base, &format!("{at}/resume"), "/recurring", &[], "Resume", ""))
                            } @else {
                                (button(&config, &base, &format!("{at}/pause"), "/recurring", &[], "Pause", ""))
                            }
                            (button(&config, &base, &format!("{at}/remove"), "/recurring", &[], "Remove", "danger"))
                        }
                    }
                }
                @if items.is_empty() { tr { td colspan="7" .muted { "No recurring jobs." } } }
            }
        }
    };
    Ok(shell(&config, &base, "Recurring jobs", "Recurring", body))
}

pub(crate) async fn api(State(config): State<Config>) -> Answer {
    Ok(Json(items(&config).await?).into_response())
}

pub(crate) async fn act(
    State(config): State<Config>,
    base: Base,
    Path((id, action)): Path<(String, String)>,
    Form(posted): Form<Posted>,
) -> Answer {
    if let Some(refused) = check(&config, &posted) {
        return Ok(refused);
    }
    let m = &config.monitor;
    let missing = || Failure::NotFound(format!("no recurring job `{id}`"));
    let done = match action.as_str() {
        "trigger" => {
            let job = m.trigger_recurring(&id).await?.ok_or_else(missing)?;
            let _ = job_link(&base, &job.to_string());
            format!("Enqueued {job} from {id}.")
        }
        "pause" => {
            m.pause_recurring(&id)
                .await?
                .then_some(())
                .ok_or_else(missing)?;
            format!("Paused {id}: its ticks pass without a job.")
        }
        "resume" => {
            m.resume_recurring(&id)
                .await?
                .then_some(())
                .ok_or_else(missing)?;
            format!("Resumed {id}.")
        }
        "remove" => {
            m.remove_recurring(&id)
                .await?
                .then_some(())
                .ok_or_else(missing)?;
            format!("Removed {id}.")
        }
        other => return Err(Failure::NotFound(format!("no recurring action `{other}`"))),
    };
    Ok(back_to(&base, &posted.back, &done))
}
