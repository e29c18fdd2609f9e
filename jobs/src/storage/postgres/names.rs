//! The names one storage uses inside PostgreSQL, all derived from its schema: the quoted schema,
//! the NOTIFY channel, the advisory-lock namespace, and the SQL of every call.

use crate::error::{Error, Result};

/// The names of one schema.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// The schema as given (validated: lower-case letters, digits and `_`).
    pub(crate) schema: String,
    /// The schema quoted as an identifier.
    pub(crate) quoted: String,
    /// The NOTIFY channel enqueues wake workers on.
    pub(crate) channel: String,
    /// The first key of the schema's advisory locks (a positive `int4` derived from the name).
    pub(crate) lock_namespace: i32,
}

impl Names {
    /// The names of `schema`, or an error saying why it cannot be one.
    pub(crate) fn new(schema: &str) -> Result<Names> {
        let valid = !schema.is_empty()
            && schema.len() <= 40
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(Error::config(format!(
                "`{schema}` cannot be the jobs schema: use 1 to 40 lower-case letters, digits \
                 and `_`, starting with a letter or `_`"
            )));
        }
        Ok(Names {
            schema: schema.to_owned(),
            quoted: format!("\"{schema}\""),
            channel: format!("{schema}_wake"),
            lock_namespace: namespace(schema),
        })
    }

    /// A migration template with this schema's names filled in.
    pub(crate) fn expand(&self, template: &str) -> String {
        template
            .replace("{s}", &self.quoted)
            .replace("{ns}", &self.lock_namespace.to_string())
            .replace("{chan}", &self.channel)
    }
}

/// A stable positive `int4` for the schema name (FNV-1a), so the advisory locks of different
/// schemas in one database do not meet.
fn namespace(schema: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in schema.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    i32::try_from(hash & 0x7fff_ffff).unwrap_or(1).max(1)
}

/// The SQL of every call the storage makes, built once per storage.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) enqueue: String,
    pub(crate) fetch: String,
    pub(crate) complete: String,
    pub(crate) mark_started: String,
    pub(crate) renew: String,
    pub(crate) release: String,
    pub(crate) job: String,
    pub(crate) stats: String,
    pub(crate) failed: String,
    pub(crate) requeue: String,
    pub(crate) remove: String,
    pub(crate) cancel_requested: String,
    pub(crate) heartbeat: String,
    pub(crate) servers: String,
    pub(crate) deregister: String,
    pub(crate) continue_with: String,
    pub(crate) parent_result: String,
    pub(crate) acquire_limits: String,
    pub(crate) enqueue_batch: String,
    pub(crate) batch_progress: String,
    pub(crate) register_recurring: String,
    pub(crate) remove_recurring: String,
    pub(crate) recurring: String,
    pub(crate) fire_recurring: String,
    pub(crate) trigger_recurring: String,
}

impl Statements {
    pub(crate) fn new(names: &Names) -> Statements {
        let s = &names.quoted;
        let recurring_columns = "id, cron, time_zone, misfire, misfire_grace, queue, name, args, \
                                 next_run, last_run, revision, headers";
        Statements {
            enqueue: format!("SELECT {s}.enqueue($1, $2, $3, $4, $5, $6, $7)"),
            // Paused queues are left out of the claim (a lookup by the primary key of `paused`
            // per queue), in the same statement, so no fetch takes a job of a paused queue.
            fetch: format!(
                // Arguments and headers over the worker's payload limit ($7) are not sent:
                // their length is, and the worker fails the job instead of allocating for it.
                "SELECT o_id, o_queue, o_name, \
                 CASE WHEN octet_length(o_args) + coalesce(octet_length(o_headers), 0) > $7 \
                   THEN NULL ELSE o_args END, o_attempts, \
                 o_crashes, o_orphaned, o_enqueued_at, o_token, \
                 CASE WHEN octet_length(o_args) + coalesce(octet_length(o_headers), 0) > $7 \
                   THEN (octet_length(o_args) + coalesce(octet_length(o_headers), 0))::bigint \
                 END, o_headers, o_ready_at \
                 FROM {s}.fetch(ARRAY(SELECT u.q FROM \
                 unnest($1::text[]) WITH ORDINALITY AS u(q, o) WHERE NOT EXISTS \
                 (SELECT 1 FROM {s}.paused p WHERE p.queue = u.q) ORDER BY u.o), \
                 $2, $3, $4, $5, $6)"
            ),
            complete: format!(
                "SELECT * FROM {s}.complete($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            mark_started: format!("SELECT * FROM {s}.mark_started($1, $2)"),
            renew: format!("SELECT * FROM {s}.renew($1, $2, $3, $4)"),
            release: format!("SELECT {s}.release($1, $2)"),
            job: format!(
                "SELECT j.name, j.args, j.state, j.attempts, j.crashes, j.orphaned, \
                 j.history::text, l.claimed_at, j.headers FROM {s}.jobs j \
                 LEFT JOIN {s}.leases l ON l.id = j.id WHERE j.id = $1 AND j.queue = $2"
            ),
            stats: format!(
                "SELECT (SELECT count(*) FROM {s}.ready WHERE queue = $1), \
                 (SELECT count(*) FROM {s}.jobs WHERE queue = $1 AND state = 1), \
                 (SELECT count(*) FROM {s}.leases WHERE queue = $1), \
                 (SELECT count(*) FROM {s}.jobs WHERE queue = $1 AND state = 4 \
                    AND finished_at >= 0), \
                 (SELECT coalesce(sum(succeeded), 0)::bigint FROM {s}.counters WHERE queue = $1), \
                 (SELECT coalesce(sum(failed), 0)::bigint FROM {s}.counters WHERE queue = $1), \
                 (SELECT greatest(j.enqueued_at, j.run_at) FROM {s}.ready r \
                    JOIN {s}.jobs j ON j.id = r.id WHERE r.queue = $1 ORDER BY r.pos LIMIT 1)"
            ),
            failed: format!(
                "SELECT j.id, j.name, j.args, j.state, j.attempts, j.crashes, j.orphaned, \
                 j.history::text, j.headers FROM {s}.jobs j WHERE j.queue = $1 AND j.state = 4 \
                 AND j.finished_at >= 0 ORDER BY j.finished_at, j.id LIMIT $2"
            ),
            requeue: format!("SELECT {s}.requeue($1, $2)"),
            remove: format!("SELECT {s}.remove($1, $2, $3, $4, $5, $6, $7)"),
            cancel_requested: format!("SELECT id FROM {s}.leases WHERE id = ANY ($1) AND cancel"),
            heartbeat: format!(
                "INSERT INTO {s}.servers (name, expires) VALUES ($1, {s}.now_ms() + $2) \
                 ON CONFLICT (name) DO UPDATE SET expires = EXCLUDED.expires"
            ),
            servers: format!(
                "WITH gone AS (DELETE FROM {s}.servers WHERE expires <= {s}.now_ms()) \
                 SELECT name FROM {s}.servers WHERE expires > {s}.now_ms() ORDER BY name"
            ),
            deregister: format!("DELETE FROM {s}.servers WHERE name = $1"),
            continue_with: format!("SELECT {s}.continue_with($1, $2, $3, $4, $5, $6, $7, $8)"),
            parent_result: format!(
                "SELECT parent_result FROM {s}.jobs WHERE id = $1 AND queue = $2"
            ),
            acquire_limits: format!("SELECT {s}.acquire_limits($1, $2, $3, $4, $5, $6, $7)"),
            enqueue_batch: format!(
                "SELECT {s}.enqueue_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            batch_progress: format!(
                "SELECT total, succeeded, failed FROM {s}.batches WHERE id = $1 AND queue = $2"
            ),
            register_recurring: format!(
                "INSERT INTO {s}.recurring AS r ({recurring_columns}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, 1, $10) \
                 ON CONFLICT (id) DO UPDATE SET cron = EXCLUDED.cron, \
                   time_zone = EXCLUDED.time_zone, misfire = EXCLUDED.misfire, \
                   misfire_grace = EXCLUDED.misfire_grace, queue = EXCLUDED.queue, \
                   name = EXCLUDED.name, args = EXCLUDED.args, headers = EXCLUDED.headers, \
                   next_run = CASE WHEN r.cron = EXCLUDED.cron \
                     AND r.time_zone = EXCLUDED.time_zone THEN r.next_run \
                     ELSE EXCLUDED.next_run END, \
                   revision = r.revision + 1 \
                 RETURNING {recurring_columns}"
            ),
            remove_recurring: format!("DELETE FROM {s}.recurring WHERE id = $1"),
            recurring: format!("SELECT {recurring_columns} FROM {s}.recurring ORDER BY id"),
            fire_recurring: format!(
                "WITH e AS (UPDATE {s}.recurring SET next_run = $5, \
                   last_run = coalesce($6, last_run) \
                   WHERE id = $1 AND revision = $2 AND next_run = $3 AND queue = $4 \
                   RETURNING queue, name, args, headers) \
                 SELECT {s}.enqueue(array_fill(e.queue, ARRAY[$7::int]), \
                   array_fill(e.name, ARRAY[$7::int]), array_fill(e.args, ARRAY[$7::int]), \
                   array_fill(0::bigint, ARRAY[$7::int]), NULL, NULL, \
                   CASE WHEN e.headers IS NOT NULL \
                     THEN array_fill(e.headers, ARRAY[$7::int]) END) FROM e"
            ),
            trigger_recurring: format!(
                "WITH e AS (UPDATE {s}.recurring SET last_run = {s}.now_ms() WHERE id = $1 \
                   RETURNING queue, name, args, headers) \
                 SELECT e.queue, {s}.enqueue(ARRAY[e.queue], ARRAY[e.name], ARRAY[e.args], \
                   ARRAY[0::bigint], NULL, NULL, \
                   CASE WHEN e.headers IS NOT NULL THEN ARRAY[e.headers] END) FROM e"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        assert!(Names::new("jobs").is_ok());
        assert!(Names::new("app_jobs2").is_ok());
        for bad in ["", "Jobs", "1jobs", "jobs\"; drop", "a-b", &"x".repeat(41)] {
            let err = Names::new(bad).unwrap_err();
            assert!(err.is_config(), "{bad}");
            assert!(
                err.to_string().contains("cannot be the jobs schema"),
                "{err}"
            );
        }
    }

    #[test]
    fn namespaces_are_positive_and_stable() {
        let a = Names::new("jobs").unwrap().lock_namespace;
        assert!(a > 0);
        assert_eq!(a, Names::new("jobs").unwrap().lock_namespace);
        assert_ne!(a, Names::new("jobs2").unwrap().lock_namespace);
    }
}
