//! The calls on leases: completing attempts, start marks, renewals and releases. Each is one
//! statement for the whole batch, fenced by the lease tokens.

use super::failure::{retrying, Doing};
use super::{millis, seq, PostgresStorage};
use crate::error::Result;
use crate::storage::{Completion, Lease, Outcome};
use foldhash::HashSet;
use std::time::Duration;

/// The ids and tokens of leases, as arrays.
fn columns(leases: impl Iterator<Item = Lease>) -> (Vec<i64>, Vec<i64>) {
    leases
        .map(|l| (seq(&l.id), i64::try_from(l.token.0).unwrap_or(i64::MAX)))
        .unzip()
}

/// Per lease, whether its id is among those the statement returned (a lease named twice
/// counts once, for its first place).
fn held(leases: &[Lease], returned: &[i64]) -> Vec<bool> {
    let mut returned: HashSet<i64> = returned.iter().copied().collect();
    leases
        .iter()
        .map(|l| returned.remove(&seq(&l.id)))
        .collect()
}

impl PostgresStorage {
    pub(super) async fn complete_now(&self, completions: &[Completion]) -> Result<Vec<bool>> {
        self.inner.churn.fetch_add(
            completions.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        let pool = self.ready().await?;
        let n = completions.len();
        let (ids, tokens) = columns(completions.iter().map(|c| c.lease.clone()));
        let mut outcomes = Vec::with_capacity(n);
        let mut at = Vec::with_capacity(n);
        let mut reasons = Vec::with_capacity(n);
        let mut results = Vec::with_capacity(n);
        for c in completions {
            let (code, when, reason) = match &c.outcome {
                Outcome::Succeeded => ("O", 0, None),
                Outcome::Retry { at_ms, reason } => (
                    "R",
                    i64::try_from(*at_ms).unwrap_or(i64::MAX),
                    Some(reason.as_str()),
                ),
                Outcome::Failed { reason } => ("F", 0, Some(reason.as_str())),
                Outcome::Deleted { reason } => ("D", 0, Some(reason.as_str())),
            };
            outcomes.push(code);
            at.push(when);
            reasons.push(reason);
            results.push(c.result.as_deref());
        }
        let [keep_s, ttl_s, keep_d, ttl_d] = self.retention_params();
        let applied: Vec<i64> = retrying(|| {
            sqlx::query_scalar(&self.inner.sql.complete)
                .bind(&ids)
                .bind(&tokens)
                .bind(&outcomes)
                .bind(&at)
                .bind(&reasons)
                .bind(&results)
                .bind(keep_s)
                .bind(ttl_s)
                .bind(keep_d)
                .bind(ttl_d)
                .fetch_all(pool)
        })
        .await
        .doing("completing jobs", self.schema_name())?;
        let leases: Vec<Lease> = completions.iter().map(|c| c.lease.clone()).collect();
        Ok(held(&leases, &applied))
    }

    pub(super) async fn mark_started_now(&self, leases: &[Lease]) -> Result<Vec<bool>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let pool = self.ready().await?;
        let (ids, tokens) = columns(leases.iter().cloned());
        let marked: Vec<i64> = retrying(|| {
            sqlx::query_scalar(&self.inner.sql.mark_started)
                .bind(&ids)
                .bind(&tokens)
                .fetch_all(pool)
        })
        .await
        .doing("marking jobs started", self.schema_name())?;
        Ok(held(leases, &marked))
    }

    pub(super) async fn renew_now(&self, leases: &[Lease], lease: Duration) -> Result<Vec<bool>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let pool = self.ready().await?;
        let (ids, tokens) = columns(leases.iter().cloned());
        let renewed: Vec<i64> = retrying(|| {
            sqlx::query_scalar(&self.inner.sql.renew)
                .bind(&ids)
                .bind(&tokens)
                .bind(millis(lease))
                .bind(self.inner.session.owner())
                .fetch_all(pool)
        })
        .await
        .doing("renewing leases", self.schema_name())?;
        Ok(held(leases, &renewed))
    }

    pub(super) async fn release_now(&self, leases: &[Lease]) -> Result<()> {
        if leases.is_empty() {
            return Ok(());
        }
        let pool = self.ready().await?;
        let (ids, tokens) = columns(leases.iter().cloned());
        retrying(|| {
            sqlx::query(&self.inner.sql.release)
                .bind(&ids)
                .bind(&tokens)
                .execute(pool)
        })
        .await
        .doing("handing jobs back", self.schema_name())?;
        Ok(())
    }
}
