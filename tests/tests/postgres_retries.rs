//! Serialization failures and deadlocks are retried inside the PostgreSQL storage: each is
//! injected by a trigger of the test's schema that makes the server raise SQLSTATE 40001 or
//! 40P01 the first three times a statement touches the jobs table. The enqueue, the claim and
//! the completion each succeed without the caller seeing an error, and the job is stored,
//! leased and finished exactly once.

use jobs::storage::{Completion, Delivery, FetchRequest, Monitoring, NewJob, Outcome, Retention};
use jobs::JobState;
use jobs_tests::postgres::TestPostgres;
use std::sync::Arc;
use std::time::Duration;

/// Makes the next three statements that `event` rows of the schema's `jobs` table fail with
/// SQLSTATE `code`, as PostgreSQL does for a transaction it rolled back.
async fn inject(pool: &sqlx::PgPool, schema: &str, event: &str, code: &str) {
    let s = format!("\"{schema}\"");
    for sql in [
        format!("DROP TRIGGER IF EXISTS injected ON {s}.jobs"),
        format!("DROP SEQUENCE IF EXISTS {s}.injected"),
        format!("CREATE SEQUENCE {s}.injected"),
        format!(
            "CREATE OR REPLACE FUNCTION {s}.injected() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF nextval('{s}.injected') <= 3 THEN
                     RAISE EXCEPTION 'injected failure' USING ERRCODE = '{code}';
                 END IF;
                 RETURN NEW;
             END $$"
        ),
        format!(
            "CREATE TRIGGER injected BEFORE {event} ON {s}.jobs FOR EACH ROW \
             EXECUTE FUNCTION {s}.injected()"
        ),
    ] {
        sqlx::raw_sql(&sql).execute(pool).await.unwrap();
    }
}

/// How many times the injected trigger fired (failures and the pass that let it through).
async fn fired(pool: &sqlx::PgPool, schema: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT last_value FROM \"{schema}\".injected"))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn serialization_failures_and_deadlocks_are_retried_not_surfaced() {
    let Some(pg) = TestPostgres::start("retries") else {
        return;
    };
    let storage = pg.storage(Retention::default());
    let pool = storage.pool().clone();

    // Enqueue: the insert into jobs fails three times with a serialization failure.
    inject(&pool, pg.schema(), "INSERT", "40001").await;
    let ids = storage
        .enqueue(vec![NewJob::new("q", "retried", "{}".to_owned())])
        .await
        .expect("the enqueue is retried past serialization failures");
    assert_eq!(
        fired(&pool, pg.schema()).await,
        4,
        "three failures, then the insert"
    );
    let stored: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\".jobs", pg.schema()))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "the job is stored once");

    // Completion: the update of the job's row fails three times with a deadlock.
    let queues: Vec<Arc<str>> = vec![Arc::from("q")];
    let fetched = storage
        .fetch(FetchRequest::new(
            &queues,
            10,
            Duration::from_secs(30),
            Duration::ZERO,
        ))
        .await
        .unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].id, ids[0]);
    inject(&pool, pg.schema(), "UPDATE", "40P01").await;
    let applied = storage
        .complete(&[Completion::new(
            fetched[0].lease(),
            jobs::storage::now_ms(),
            Outcome::Succeeded,
        )])
        .await
        .expect("the completion is retried past deadlocks");
    assert_eq!(applied, vec![true], "the completion is applied");
    assert!(
        fired(&pool, pg.schema()).await >= 4,
        "three deadlocks, then the update"
    );
    let job = storage
        .job(&ids[0])
        .await
        .unwrap()
        .expect("the job is kept");
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(
        job.attempts, 1,
        "one attempt: the retries are the storage's, not the job's"
    );
}
