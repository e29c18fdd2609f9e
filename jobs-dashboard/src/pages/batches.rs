//! Batches with their progress, newest first where the storage orders them.

use super::given;
use crate::base::{encode, Base};
use crate::config::Config;
use crate::layout::{job_link, shell, Answer};
use crate::views::BatchItem;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::Json;
use maud::html;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(crate) struct Params {
    queue: Option<String>,
    after: Option<String>,
}

async fn load(
    config: &Config,
    p: &Params,
) -> Result<(Vec<BatchItem>, Option<String>), jobs::Error> {
    let page = config
        .monitor
        .batches(given(&p.queue).as_deref(), given(&p.after).as_deref(), 25)
        .await?;
    Ok((
        page.batches.iter().map(BatchItem::from).collect(),
        page.next,
    ))
}

pub(crate) async fn page(
    State(config): State<Config>,
    base: Base,
    Query(p): Query<Params>,
) -> Answer {
    let (items, next) = load(&config, &p).await?;
    let body = html! {
        h1 { "Batches" }
        table #batches {
            thead { tr { th { "Batch" } th.num { "Members" } th.num { "Succeeded" } th.num { "Failed" } th { "Progress" } th { "Then" } } }
            tbody {
                @for b in &items {
                    tr {
                        td { (b.id) } td.num { (b.total) } td.num { (b.succeeded) } td.num { (b.failed) }
                        td { progress max=(b.total.max(1)) value=(b.succeeded) {} }
                        td { @if let Some(t) = &b.then { a href=(job_link(&base, t)) { (t) } } }
                    }
                }
                @if items.is_empty() { tr { td colspan="6" .muted { "No batches." } } }
            }
        }
        @if let Some(n) = &next {
            div.pager { a href=(base.to(&format!("/batches?after={}{}", encode(n),
                given(&p.queue).map(|q| format!("&queue={}", encode(&q))).unwrap_or_default()))) { "Next page" } }
        }
    };
    Ok(shell(&config, &base, "Batches", "Batches", body))
}

pub(crate) async fn api(State(config): State<Config>, Query(p): Query<Params>) -> Answer {
    let (items, next) = load(&config, &p).await?;
    Ok(Json(serde_json::json!({ "batches": items, "next": next })).into_response())
}
