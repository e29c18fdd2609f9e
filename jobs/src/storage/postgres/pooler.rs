//! How the storage's statements reach PostgreSQL: straight from its pool, or, behind a
//! transaction-mode pooler (PgBouncer `pool_mode = transaction`), each inside a transaction of
//! its own with unnamed statements.
//!
//! sqlx runs a statement with binds as two exchanges (parse and describe, then bind and
//! execute). A transaction-mode pooler may hand each exchange outside a transaction to a
//! different server connection, so a named statement prepared on one is missing (or already
//! exists) on the next. Inside an explicit transaction the pooler keeps one server connection
//! for both, and unnamed statements leave nothing behind for the next client of it. That costs
//! a `BEGIN` and a `COMMIT` per call, only in that mode.

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Describe, Either, Execute, Executor, PgPool, Postgres};

/// The storage's executor: its pool, and whether calls go through a transaction-mode pooler.
#[derive(Debug, Clone)]
pub(super) struct Db {
    pub(super) pool: PgPool,
    /// Behind a transaction-mode pooler: a transaction per call, no named statements.
    pub(super) pooled: bool,
}

/// A query run as an unnamed statement (prepared for this execution only).
struct Unnamed<E>(E);

impl<'q, E: Execute<'q, Postgres>> Execute<'q, Postgres> for Unnamed<E> {
    fn sql(&self) -> &'q str {
        self.0.sql()
    }

    fn statement(&self) -> Option<&PgStatement<'q>> {
        None
    }

    fn take_arguments(
        &mut self,
    ) -> Result<Option<sqlx::postgres::PgArguments>, sqlx::error::BoxDynError> {
        self.0.take_arguments()
    }

    fn persistent(&self) -> bool {
        false
    }
}

type Step = Either<PgQueryResult, PgRow>;

impl<'c> Executor<'c> for &'c Db {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.pooled {
            return self.pool.fetch_many(query);
        }
        async move {
            let mut tx = self.pool.begin().await?;
            let steps: Vec<Step> = (&mut *tx).fetch_many(Unnamed(query)).try_collect().await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(steps)
        }
        .map(|steps| match steps {
            Ok(steps) => futures::stream::iter(steps.into_iter().map(Ok)).left_stream(),
            Err(e) => futures::stream::once(async move { Err(e) }).right_stream(),
        })
        .flatten_stream()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        if !self.pooled {
            return self.pool.fetch_optional(query);
        }
        async move {
            let mut tx = self.pool.begin().await?;
            let row = (&mut *tx).fetch_optional(Unnamed(query)).await?;
            tx.commit().await?;
            Ok(row)
        }
        .boxed()
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        self.pool.prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        self.pool.describe(sql)
    }
}
