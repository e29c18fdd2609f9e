//! The commands: each builds the view model the dashboard serves for the same data, then prints
//! it as a table or, with `--json`, as JSON.

use crate::table::{age, cut, span, table};
use crate::{Action, Cli, Command, Filter, RecurringCommand};
use jobs::monitor::{BulkAction, JobQuery, Monitor, Resolution};
use jobs::JobId;
use jobs_dashboard::views::{
    BatchItem, History, JobList, JobPageView, RecurringItem, Servers, Stats,
};
use serde::Serialize;
use std::sync::Arc;

type Out = Result<(), String>;

fn json<T: Serialize>(value: &T) -> Out {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

fn parse_id(id: &str) -> Result<JobId, String> {
    id.parse().map_err(|e: jobs::ParseJobIdError| e.to_string())
}

/// Arguments shown as stored: the CLI's user reads the storage anyway.
fn no_redaction() -> jobs_dashboard::Redact {
    Arc::new(|_: &str, args: &str| args.to_owned())
}

pub(crate) async fn run(cli: Cli) -> Out {
    let url = cli.url.clone().ok_or("no storage given: pass --url")?;
    let m = crate::connect::open(&url, cli.prefix.as_deref()).await?;
    let e = |e: jobs::Error| e.to_string();
    match cli.command {
        Command::Stats { json: as_json } => {
            let stats = stats(&m).await?;
            if as_json {
                return json(&stats);
            }
            print_queues(&stats);
            let t = &stats.totals;
            println!(
                "\n{} pending, {} scheduled, {} processing, {} failed; {} succeeded and {} failed in all; {} servers",
                t.pending, t.scheduled, t.processing, t.failed, t.succeeded_total, t.failed_total, stats.servers
            );
            Ok(())
        }
        Command::Queues { json: as_json } => {
            let stats = stats(&m).await?;
            if as_json {
                return json(&stats.queues);
            }
            print_queues(&stats);
            Ok(())
        }
        Command::List {
            state,
            filter,
            limit,
            after,
            json: as_json,
        } => {
            let mut q = query(state.job_state(), &filter).limit(limit);
            q.cursor = after;
            let page = m.jobs(&q).await.map_err(e)?;
            let list = JobList::new(q.state, filter.queue.clone(), page, &no_redaction());
            if as_json {
                return json(&list);
            }
            let mut t = table(&["ID", "NAME", "SINCE", "ATTEMPTS", "ARGUMENTS", "REASON"]);
            for j in &list.jobs {
                t.add_row(vec![
                    j.id.clone(),
                    j.name.clone(),
                    age(j.since_ms),
                    j.attempts.to_string(),
                    cut(&j.args, 40),
                    cut(j.reason.as_deref().unwrap_or(""), 50),
                ]);
            }
            println!("{t}");
            println!(
                "\n{} of {} {} jobs (looked at {}){}",
                list.jobs.len(),
                list.total,
                list.state,
                list.examined,
                list.next
                    .as_deref()
                    .map(|n| format!("; next page: --after '{n}'"))
                    .unwrap_or_default()
            );
            Ok(())
        }
        Command::Show { id, json: as_json } => {
            let id = parse_id(&id)?;
            let detail = m
                .job(&id)
                .await
                .map_err(e)?
                .ok_or_else(|| format!("no job {id}: it never existed or was removed"))?;
            let view = JobPageView::new(&detail, &no_redaction());
            if as_json {
                return json(&view);
            }
            let j = &view.job;
            println!("{}  {}  {}", j.id, j.name, j.state);
            println!("attempts {}, crashes {}", j.attempts, j.crashes);
            if let Some(err) = &view.last_error {
                println!("last error: {err}");
            }
            for (label, value) in [
                ("parent", &view.parent),
                ("batch", &view.batch),
                ("result", &view.result),
            ] {
                if let Some(v) = value {
                    println!("{label}: {v}");
                }
            }
            for c in &view.continuations {
                println!("continuation: {} (on {})", c.id, c.on);
            }
            println!("arguments:\n{}", j.pretty_args());
            let mut t = table(&["STATE", "AT", "REASON"]);
            for c in &j.history {
                t.add_row(vec![
                    c.state.to_string(),
                    age(c.at_ms),
                    c.reason.clone().unwrap_or_default(),
                ]);
            }
            println!("history:\n{t}");
            Ok(())
        }
        Command::Retry(action) => act(&m, BulkAction::Requeue, action).await,
        Command::Delete(action) => act(&m, BulkAction::Delete, action).await,
        Command::Pause { queue } => {
            m.pause(&queue).await.map_err(e)?;
            println!("paused {queue}");
            Ok(())
        }
        Command::Resume { queue } => {
            m.resume(&queue).await.map_err(e)?;
            println!("resumed {queue}");
            Ok(())
        }
        Command::Recurring { command } => recurring(&m, command).await,
        Command::Servers { json: as_json } => {
            let servers = Servers {
                servers: m.servers().await.map_err(e)?,
            };
            if as_json {
                return json(&servers);
            }
            let mut t = table(&[
                "NAME", "HOST", "PID", "QUEUES", "SLOTS", "STARTED", "BEAT", "JOBS",
            ]);
            for s in &servers.servers {
                t.add_row(vec![
                    s.name.clone(),
                    s.host.clone(),
                    s.pid.to_string(),
                    s.queues.join(","),
                    s.concurrency.to_string(),
                    age(s.started_at_ms),
                    age(s.heartbeat_at_ms),
                    s.jobs_total.to_string(),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        Command::History {
            queue,
            hourly,
            json: as_json,
        } => {
            let resolution = if hourly {
                Resolution::Hour
            } else {
                Resolution::Minute
            };
            let points = m.history(queue.as_deref(), resolution).await.map_err(e)?;
            let history = History { resolution, points };
            if as_json {
                return json(&history);
            }
            let mut t = table(&["BUCKET", "SUCCEEDED", "FAILED"]);
            for p in history.points.iter().filter(|p| p.succeeded + p.failed > 0) {
                t.add_row(vec![
                    age(p.at_ms),
                    p.succeeded.to_string(),
                    p.failed.to_string(),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        Command::Batches {
            queue,
            limit,
            json: as_json,
        } => {
            let page = m.batches(queue.as_deref(), None, limit).await.map_err(e)?;
            let items: Vec<BatchItem> = page.batches.iter().map(BatchItem::from).collect();
            if as_json {
                return json(&items);
            }
            let mut t = table(&["ID", "TOTAL", "SUCCEEDED", "FAILED", "THEN"]);
            for b in &items {
                t.add_row(vec![
                    b.id.clone(),
                    b.total.to_string(),
                    b.succeeded.to_string(),
                    b.failed.to_string(),
                    b.then.clone().unwrap_or_default(),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        Command::Dashboard { bind, read_only } => {
            let config = jobs_dashboard::Config::new(m).read_only(read_only);
            let app: axum::Router = jobs_dashboard::router(config);
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .map_err(|e| format!("cannot listen on {bind}: {e}"))?;
            eprintln!(
                "dashboard on http://{bind}/{}",
                if read_only { " (read-only)" } else { "" }
            );
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .map_err(|e| e.to_string())
        }
    }
}

fn query(state: jobs::JobState, f: &Filter) -> JobQuery {
    let mut q = JobQuery::new(state).window(f.window);
    q.queue = f.queue.clone();
    q.name = f.name.clone();
    q.search = f.search.clone();
    q
}

async fn stats(m: &Monitor) -> Result<Stats, String> {
    let (queues, servers) = futures_join(m).await.map_err(|e| e.to_string())?;
    Ok(Stats::new(queues, servers))
}

async fn futures_join(
    m: &Monitor,
) -> Result<(Vec<jobs::monitor::QueueSummary>, usize), jobs::Error> {
    let queues = m.queues().await?;
    let servers = m.servers().await?.len();
    Ok((queues, servers))
}

fn print_queues(stats: &Stats) {
    let mut t = table(&[
        "QUEUE",
        "PENDING",
        "SCHEDULED",
        "PROCESSING",
        "FAILED",
        "LATENCY",
        "SUCCEEDED",
        "PAUSED",
    ]);
    for q in &stats.queues {
        t.add_row(vec![
            q.name.clone(),
            q.pending.to_string(),
            q.scheduled.to_string(),
            q.processing.to_string(),
            q.failed.to_string(),
            q.latency_ms.map(span).unwrap_or_else(|| "-".into()),
            q.succeeded_total.to_string(),
            if q.paused { "paused" } else { "" }.to_owned(),
        ]);
    }
    println!("{t}");
}

/// `retry` / `delete`: one job by id, or every match with `--all`.
async fn act(m: &Monitor, action: BulkAction, a: Action) -> Out {
    let verb = match action {
        BulkAction::Requeue => "requeued",
        _ => "deleted",
    };
    if let Some(id) = &a.id {
        let id = parse_id(id)?;
        let done = match action {
            BulkAction::Requeue => m.requeue(&id).await,
            _ => m.delete(&id).await,
        }
        .map_err(|e| e.to_string())?;
        if !done {
            return Err(match m.job(&id).await.map_err(|e| e.to_string())? {
                None => format!("no job {id}: it never existed or was removed"),
                Some(d) => format!("job {id} is {}: it cannot be {verb}", d.info.state),
            });
        }
        if a.json {
            return json(&serde_json::json!({ "id": id.to_string(), verb: true }));
        }
        println!("{verb} {id}");
        return Ok(());
    }
    let state = a.state.ok_or("--all needs --state")?.job_state();
    let q = query(state, &a.filter);
    let report = m
        .bulk(action, &q, u64::MAX)
        .await
        .map_err(|e| e.to_string())?;
    if a.json {
        return json(&report);
    }
    println!(
        "{verb} {} of {} {} jobs looked at",
        report.acted, report.examined, state
    );
    Ok(())
}

async fn recurring(m: &Monitor, command: RecurringCommand) -> Out {
    let e = |e: jobs::Error| e.to_string();
    let missing = |id: &str| format!("no recurring job `{id}`");
    match command {
        RecurringCommand::List { json: as_json } => {
            let items: Vec<RecurringItem> = m
                .recurring()
                .await
                .map_err(e)?
                .iter()
                .map(RecurringItem::from)
                .collect();
            if as_json {
                return json(&items);
            }
            let mut t = table(&["ID", "CRON", "QUEUE", "JOB", "NEXT", "LAST", "PAUSED"]);
            for r in &items {
                t.add_row(vec![
                    r.id.clone(),
                    format!("{} ({})", r.cron, r.time_zone),
                    r.queue.clone(),
                    r.name.clone(),
                    r.next_run_ms.map(age).unwrap_or_else(|| "-".into()),
                    r.last_run_ms.map(age).unwrap_or_else(|| "-".into()),
                    if r.paused { "paused" } else { "" }.to_owned(),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        RecurringCommand::Trigger { id } => {
            let job = m.trigger_recurring(&id).await.map_err(e)?;
            let job = job.ok_or_else(|| missing(&id))?;
            println!("enqueued {job}");
            Ok(())
        }
        RecurringCommand::Pause { id } => {
            if !m.pause_recurring(&id).await.map_err(e)? {
                return Err(missing(&id));
            }
            println!("paused {id}");
            Ok(())
        }
        RecurringCommand::Resume { id } => {
            if !m.resume_recurring(&id).await.map_err(e)? {
                return Err(missing(&id));
            }
            println!("resumed {id}");
            Ok(())
        }
        RecurringCommand::Remove { id } => {
            if !m.remove_recurring(&id).await.map_err(e)? {
                return Err(missing(&id));
            }
            println!("removed {id}");
            Ok(())
        }
    }
}
