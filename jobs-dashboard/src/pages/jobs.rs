//! Jobs by state: tabs per state, a search by queue, name and arguments, cursor paging, and
//! actions on one job or on every match.

use super::{back_to, check, given, Posted};
use crate::base::{encode, Base};
use crate::config::Config;
use crate::layout::{age, button, job_link, notice, shell, Answer, Failure};
use crate::views::JobList;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::{Form, Json};
use jobs::monitor::{BulkAction, JobQuery, DEFAULT_LIMIT};
use jobs::JobState;
use maud::html;
use serde::Deserialize;
use std::time::{Duration, Instant};

const STATES: [JobState; 7] = [
    JobState::Enqueued,
    JobState::Scheduled,
    JobState::Processing,
    JobState::Failed,
    JobState::Succeeded,
    JobState::Deleted,
    JobState::Awaiting,
];

/// The most jobs one bulk request acts on; the page says when more are left.
const BULK_MAX: u64 = 10_000;

#[derive(Debug, Deserialize, Default)]
pub(crate) struct Params {
    state: Option<String>,
    queue: Option<String>,
    name: Option<String>,
    search: Option<String>,
    id: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
    done: Option<String>,
}

impl Params {
    fn query(&self) -> Result<JobQuery, Failure> {
        let state = match self.state.as_deref() {
            None | Some("") => JobState::Failed,
            Some(s) => JobState::parse(s).ok_or_else(|| {
                Failure::Bad(format!(
                    "`{s}` is not a state: use enqueued, scheduled, processing, failed, \
                     succeeded, deleted or awaiting"
                ))
            })?,
        };
        let mut q = JobQuery::new(state).limit(self.limit.unwrap_or(DEFAULT_LIMIT));
        q.queue = given(&self.queue);
        q.name = given(&self.name);
        q.search = given(&self.search);
        q.cursor = given(&self.after);
        if let Some(id) = given(&self.id) {
            q.id = Some(super::job_id(&id)?);
        }
        Ok(q)
    }

    /// This listing's query string with the filters (and `extra`), for links.
    fn link(&self, state: JobState, extra: &str) -> String {
        let mut s = format!("/jobs?state={}", state.as_str());
        for (k, v) in [
            ("queue", &self.queue),
            ("name", &self.name),
            ("search", &self.search),
        ] {
            if let Some(v) = given(v) {
                s.push_str(&format!("&{k}={}", encode(&v)));
            }
        }
        s + extra
    }
}

pub(crate) async fn page(
    State(config): State<Config>,
    base: Base,
    Query(p): Query<Params>,
) -> Answer {
    let q = p.query()?;
    let list = JobList::new(
        q.state,
        q.queue.clone(),
        config.monitor.jobs(&q).await?,
        &config.redact,
    );
    let here = p.link(
        q.state,
        &given(&p.after)
            .map(|a| format!("&after={}", encode(&a)))
            .unwrap_or_default(),
    );
    let title = format!("{} jobs", q.state);
    let active = if q.state == JobState::Scheduled {
        "Scheduled"
    } else {
        "Jobs"
    };
    let can_requeue = matches!(q.state, JobState::Failed | JobState::Deleted);
    let can_delete = matches!(
        q.state,
        JobState::Failed | JobState::Enqueued | JobState::Scheduled | JobState::Awaiting
    );
    let body = html! {
        h1 { (title) }
        (notice(p.done.as_deref()))
        div.tabs {
            @for s in STATES {
                a href=(base.to(&p.link(s, ""))) class=[(s == q.state).then_some("on")] { (s.as_str()) }
            }
        }
        form.filters method="get" action=(base.to("/jobs")) {
            input type="hidden" name="state" value=(q.state.as_str());
            input type="text" name="queue" placeholder="queue" value=(q.queue.clone().unwrap_or_default());
            input type="text" name="name" placeholder="job name" value=(q.name.clone().unwrap_or_default());
            input type="search" name="search" placeholder="text in arguments" value=(q.search.clone().unwrap_or_default());
            input type="text" name="id" placeholder="id (queue:number)" value=(p.id.clone().unwrap_or_default());
            button type="submit" { "Search" }
        }
        p.muted {
            (list.jobs.len()) " shown of " (list.total) " " (q.state.as_str())
            @if q.is_filtered() {
                "; looked at " (list.examined) " jobs from "
                @if p.after.is_some() { "where the last page stopped" } @else { "the start" }
                @if list.next.is_some() { " (more to look at: next page)" } @else { " (all of them)" }
            }
        }
        @if !config.read_only && (can_requeue || can_delete) && !list.jobs.is_empty() {
            div.actions {
                @if can_requeue {
                    (bulk_form(&config, &base, &here, &q, "requeue", "Retry all matching"))
                }
                @if can_delete {
                    (bulk_form(&config, &base, &here, &q, "delete", "Delete all matching"))
                }
            }
        }
        table #jobs {
            thead { tr { th { "Job" } th { "Name" } th { "Since" } th.num { "Attempts" } th { "Arguments" } th { "Reason" } th { "" } } }
            tbody {
                @for j in &list.jobs {
                    tr {
                        td { a href=(job_link(&base, &j.id)) { (j.id) } }
                        td { (j.name) }
                        td { (age(j.since_ms)) }
                        td.num { (j.attempts) }
                        td { code.args title=(j.args) { (j.args) } }
                        td { (j.reason.clone().unwrap_or_default()) }
                        td {
                            @if can_requeue {
                                (button(&config, &base, &format!("/jobs/{}/retry", encode(&j.id)), &here, &[], "Retry", "primary"))
                            }
                            @if can_delete {
                                (button(&config, &base, &format!("/jobs/{}/delete", encode(&j.id)), &here, &[], "Delete", "danger"))
                            }
                        }
                    }
                }
                @if list.jobs.is_empty() { tr { td colspan="7" .muted { "No jobs here." } } }
            }
        }
        div.pager {
            @if p.after.is_some() { a href=(base.to(&p.link(q.state, ""))) { "First page" } }
            @if let Some(next) = &list.next {
                a #next href=(base.to(&p.link(q.state, &format!("&after={}", encode(next))))) { "Next page" }
            }
        }
    };
    Ok(shell(&config, &base, &title, active, body))
}

fn bulk_form(
    config: &Config,
    base: &Base,
    here: &str,
    q: &JobQuery,
    action: &str,
    label: &str,
) -> maud::Markup {
    html! {
        form.inline method="post" action=(base.to("/jobs/bulk")) {
            (crate::layout::form_fields(config, here))
            input type="hidden" name="action" value=(action);
            input type="hidden" name="state" value=(q.state.as_str());
            input type="hidden" name="queue" value=(q.queue.clone().unwrap_or_default());
            input type="hidden" name="name" value=(q.name.clone().unwrap_or_default());
            input type="hidden" name="search" value=(q.search.clone().unwrap_or_default());
            button type="submit" class=(if action == "delete" { "danger" } else { "primary" }) { (label) }
        }
    }
}

pub(crate) async fn api(State(config): State<Config>, Query(p): Query<Params>) -> Answer {
    let q = p.query()?;
    let page = config.monitor.jobs(&q).await?;
    Ok(Json(JobList::new(q.state, q.queue.clone(), page, &config.redact)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct BulkForm {
    #[serde(flatten)]
    posted: Posted,
    action: String,
    #[serde(flatten)]
    params: FilterFields,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FilterFields {
    state: Option<String>,
    queue: Option<String>,
    name: Option<String>,
    search: Option<String>,
}

pub(crate) async fn bulk(
    State(config): State<Config>,
    base: Base,
    Form(form): Form<BulkForm>,
) -> Answer {
    if let Some(refused) = check(&config, &form.posted) {
        return Ok(refused);
    }
    let p = Params {
        state: form.params.state,
        queue: form.params.queue,
        name: form.params.name,
        search: form.params.search,
        ..Params::default()
    };
    let q = p.query()?;
    let action = match form.action.as_str() {
        "requeue" => BulkAction::Requeue,
        "delete" => BulkAction::Delete,
        other => return Err(Failure::Bad(format!("`{other}` is not a bulk action"))),
    };
    let started = Instant::now();
    let mut report = config.monitor.bulk(action, &q, BULK_MAX).await?;
    // Bounded per request: go on while time is left.
    let mut acted = report.acted;
    while let Some(next) = report.next.take() {
        if started.elapsed() > Duration::from_secs(5) || acted >= BULK_MAX {
            report.next = Some(next);
            break;
        }
        report = config
            .monitor
            .bulk(action, &q.clone().after(next), BULK_MAX - acted)
            .await?;
        acted += report.acted;
    }
    let verb = if action == BulkAction::Requeue {
        "Requeued"
    } else {
        "Deleted"
    };
    let more = if report.next.is_some() {
        " More match: run it again."
    } else {
        ""
    };
    Ok(back_to(
        &base,
        &form.posted.back,
        &format!("{verb} {acted} jobs.{more}"),
    ))
}
