-- Monitoring: paused queues and recurring jobs, worker reports, history snapshots, the index
-- awaiting jobs are listed by, and counts that stay cheap at any backlog.

-- A paused queue has a row here; the fetch statement leaves its queues out (see `names.rs`).
CREATE TABLE {s}.paused (
    queue text PRIMARY KEY,
    since bigint NOT NULL
);

CREATE TABLE {s}.paused_recurring (
    id text PRIMARY KEY
);

-- What each worker last said about itself (JSON), beside its heartbeat.
ALTER TABLE {s}.servers ADD COLUMN report text;

-- Lifetime counters of each queue at the start of a minute (`res` m) or hour (h), in a ring of
-- slots per queue: bounded whatever the number of jobs (see `monitor/history.rs`).
CREATE TABLE {s}.snapshots (
    queue     text NOT NULL,
    res       "char" NOT NULL,
    slot      integer NOT NULL,
    bucket    bigint NOT NULL,
    succeeded bigint NOT NULL,
    failed    bigint NOT NULL,
    PRIMARY KEY (queue, res, slot)
);

-- Awaiting jobs (continuations) by queue, for listings: the other states have theirs.
CREATE INDEX jobs_awaiting ON {s}.jobs (queue, id) WHERE state = 6;

-- How many jobs of a queue are in a state (0 enqueued, 1 scheduled, 2 processing, 3 succeeded,
-- 4 failed, 5 deleted, 6 awaiting): {n, 0} exact up to p_cap; beyond it {estimate, 2} from the
-- planner's statistics, or {p_cap, 1} (at least) when those know less. Each branch names its
-- state as a constant, so the partial index of that state serves it.
CREATE FUNCTION {s}.count_jobs(p_queue text, p_state smallint, p_cap integer) RETURNS bigint[]
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
DECLARE
    v_n bigint;
    v_sql text;
    v_plan json;
    v_est bigint;
BEGIN
    IF p_state = 0 THEN
        SELECT count(*) INTO v_n FROM (SELECT 1 FROM {s}.ready WHERE queue = p_queue
                                       LIMIT p_cap + 1) x;
        v_sql := format('SELECT 1 FROM {s}.ready WHERE queue = %L', p_queue);
    ELSIF p_state = 1 THEN
        SELECT count(*) INTO v_n FROM (SELECT 1 FROM {s}.jobs WHERE queue = p_queue AND state = 1
                                       LIMIT p_cap + 1) x;
        v_sql := format('SELECT 1 FROM {s}.jobs WHERE queue = %L AND state = 1', p_queue);
    ELSIF p_state = 2 THEN
        SELECT count(*) INTO v_n FROM (SELECT 1 FROM {s}.leases WHERE queue = p_queue
                                       LIMIT p_cap + 1) x;
        v_sql := format('SELECT 1 FROM {s}.leases WHERE queue = %L', p_queue);
    ELSIF p_state = 3 THEN
        SELECT count(*) INTO v_n FROM (SELECT 1 FROM {s}.jobs WHERE queue = p_queue AND state = 3
                                       AND finished_at >= 0 LIMIT p_cap + 1) x;
        v_sql := format('SELECT 1 FROM {s}.jobs WHERE queue = %L AND state = 3', p_queue);
    ELSIF p_state = 4 THEN
        SELECT count(*) INTO v_n FROM (SELECT 1 FROM {s}.jobs WHERE queue = p_queue AND state = 4
                                       AND finished_at >= 0 LIMIT p_cap + 1) x;
        v_sql := format('SELECT 1 FROM {s}.jobs WHERE queue = %L AND state = 4', p_queue);
    ELSIF p_state = 5 THEN
        SELECT count(*) INTO v_n FROM (SELECT 1 FROM {s}.jobs WHERE queue = p_queue AND state = 5
                                       AND finished_at >= 0 LIMIT p_cap + 1) x;
        v_sql := format('SELECT 1 FROM {s}.jobs WHERE queue = %L AND state = 5', p_queue);
    ELSE
        SELECT count(*) INTO v_n FROM (SELECT 1 FROM {s}.jobs WHERE queue = p_queue AND state = 6
                                       LIMIT p_cap + 1) x;
        v_sql := format('SELECT 1 FROM {s}.jobs WHERE queue = %L AND state = 6', p_queue);
    END IF;
    IF v_n <= p_cap THEN
        RETURN ARRAY[v_n, 0];
    END IF;
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || v_sql INTO v_plan;
    v_est := round((v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric)::bigint;
    IF v_est > p_cap THEN
        RETURN ARRAY[v_est, 2];
    END IF;
    RETURN ARRAY[p_cap::bigint, 1];
END $$;

-- The names of the queues that have jobs in any state, a pause or history: a skip scan of each
-- index that leads with the queue (one index probe per queue, not a scan of the jobs).
CREATE FUNCTION {s}.queue_names() RETURNS SETOF text
LANGUAGE sql STABLE
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
    WITH RECURSIVE
    r AS ((SELECT queue FROM {s}.ready ORDER BY queue LIMIT 1)
          UNION ALL SELECT (SELECT queue FROM {s}.ready WHERE queue > r.queue ORDER BY queue LIMIT 1)
          FROM r WHERE r.queue IS NOT NULL),
    d AS ((SELECT queue FROM {s}.jobs WHERE state = 1 ORDER BY queue LIMIT 1)
          UNION ALL SELECT (SELECT queue FROM {s}.jobs WHERE state = 1 AND queue > d.queue
                            ORDER BY queue LIMIT 1)
          FROM d WHERE d.queue IS NOT NULL),
    f AS ((SELECT queue FROM {s}.jobs WHERE state >= 3 AND state <= 5 ORDER BY queue LIMIT 1)
          UNION ALL SELECT (SELECT queue FROM {s}.jobs WHERE state >= 3 AND state <= 5
                              AND queue > f.queue ORDER BY queue LIMIT 1)
          FROM f WHERE f.queue IS NOT NULL),
    a AS ((SELECT queue FROM {s}.jobs WHERE state = 6 ORDER BY queue LIMIT 1)
          UNION ALL SELECT (SELECT queue FROM {s}.jobs WHERE state = 6 AND queue > a.queue
                            ORDER BY queue LIMIT 1)
          FROM a WHERE a.queue IS NOT NULL),
    l AS ((SELECT queue FROM {s}.leases ORDER BY queue LIMIT 1)
          UNION ALL SELECT (SELECT queue FROM {s}.leases WHERE queue > l.queue ORDER BY queue LIMIT 1)
          FROM l WHERE l.queue IS NOT NULL),
    c AS ((SELECT queue FROM {s}.counters ORDER BY queue LIMIT 1)
          UNION ALL SELECT (SELECT queue FROM {s}.counters WHERE queue > c.queue
                            ORDER BY queue LIMIT 1)
          FROM c WHERE c.queue IS NOT NULL)
    SELECT q FROM (
        SELECT queue AS q FROM r UNION SELECT queue FROM d UNION SELECT queue FROM f
        UNION SELECT queue FROM a UNION SELECT queue FROM l UNION SELECT queue FROM c
        UNION SELECT queue FROM {s}.paused UNION SELECT queue FROM {s}.snapshots
        UNION SELECT queue FROM {s}.recurring
    ) x WHERE q IS NOT NULL ORDER BY q
$$;
