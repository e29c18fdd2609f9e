//! One job: its arguments (pretty JSON), state history, last error, result, attempts, parent,
//! continuations and batch; retry, delete and cancel.

use super::{back_to, check, job_id, Posted};
use crate::base::Base;
use crate::config::Config;
use crate::layout::{age, button, job_link, notice, shell, state_badge, Answer, Failure};
use crate::views::JobPageView;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::{Form, Json};
use jobs::storage::Cancellation;
use jobs::JobState;
use maud::html;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(crate) struct Notice {
    done: Option<String>,
}

async fn view(config: &Config, id: &str) -> Result<JobPageView, Failure> {
    let id = job_id(id)?;
    let detail = config.monitor.job(&id).await?.ok_or_else(|| {
        Failure::NotFound(format!("no job {id}: it never existed or was removed"))
    })?;
    Ok(JobPageView::new(&detail, &config.redact))
}

pub(crate) async fn page(
    State(config): State<Config>,
    base: Base,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> Answer {
    let v = view(&config, &id).await?;
    let j = &v.job;
    let here = format!("/jobs/{}", crate::base::encode(&j.id));
    let body = html! {
        h1 { "Job " (j.id) " " (state_badge(j.state)) }
        (notice(n.done.as_deref()))
        div.actions {
            @if matches!(j.state, JobState::Failed | JobState::Deleted) {
                (button(&config, &base, &format!("{here}/retry"), &here, &[], "Retry", "primary"))
            }
            @if matches!(j.state, JobState::Enqueued | JobState::Scheduled | JobState::Failed | JobState::Awaiting) {
                (button(&config, &base, &format!("{here}/delete"), &here, &[], "Delete", "danger"))
            }
            @if j.state == JobState::Processing {
                (button(&config, &base, &format!("{here}/cancel"), &here, &[], "Cancel", "danger"))
            }
        }
        dl.kv {
            dt { "Name" } dd { (j.name) }
            dt { "Queue" } dd { a href=(base.to(&format!("/jobs?state={}&queue={}", j.state.as_str(), crate::base::encode(&j.queue)))) { (j.queue) } }
            dt { "State" } dd { (j.state.as_str()) ", " (age(j.since_ms)) }
            dt { "Attempts" } dd { (j.attempts) @if j.crashes > 0 { " (and " (j.crashes) " crashes)" } }
            @if let Some(e) = &v.last_error { dt { "Last error" } dd #last-error { (e) } }
            @if let Some(p) = &v.parent { dt { "Parent" } dd { a href=(job_link(&base, p)) { (p) } } }
            @if let Some(b) = &v.batch { dt { "Batch" } dd { (b) } }
            @if !v.continuations.is_empty() {
                dt { "Continuations" }
                dd { @for c in &v.continuations { a href=(job_link(&base, &c.id)) { (c.id) } " (on " (c.on) ") " } }
            }
        }
        h2 { "Arguments" }
        pre #args { (j.pretty_args()) }
        @if let Some(r) = &v.result { h2 { "Result" } pre { (r) } }
        h2 { "History" }
        table #history {
            thead { tr { th { "State" } th { "When" } th { "Reason" } } }
            tbody {
                @for c in j.history.iter().rev() {
                    tr { td { (state_badge(c.state)) } td { (age(c.at_ms)) } td { (c.reason.clone().unwrap_or_default()) } }
                }
            }
        }
    };
    Ok(shell(
        &config,
        &base,
        &format!("Job {}", j.id),
        "Jobs",
        body,
    ))
}

pub(crate) async fn api(State(config): State<Config>, Path(id): Path<String>) -> Answer {
    Ok(Json(view(&config, &id).await?).into_response())
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
    let id = job_id(&id)?;
    let m = &config.monitor;
    let done = match action.as_str() {
        "retry" => match m.requeue(&id).await? {
            true => format!("Requeued {id}."),
            false => format!("{id} is not failed or deleted: nothing to retry."),
        },
        "delete" => match m.delete(&id).await? {
            true => format!("Deleted {id}."),
            false => format!("{id} cannot be deleted in its state."),
        },
        "cancel" => match m.cancel(&id).await? {
            Cancellation::Deleted => format!("Cancelled {id} before it ran."),
            Cancellation::Requested => format!("Asked the worker running {id} to cancel it."),
            _ => format!("{id} has finished: nothing to cancel."),
        },
        other => return Err(Failure::NotFound(format!("no job action `{other}`"))),
    };
    Ok(back_to(&base, &posted.back, &done))
}
