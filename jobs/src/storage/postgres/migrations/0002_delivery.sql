-- Delivery: claiming jobs, reaping the leases of dead or hung workers, promoting due jobs,
-- completing attempts, start marks, renewals and releases.
--
-- The hot functions run with `enable_seqscan` and `enable_bitmapscan` off: the tables of a queue
-- change faster than their statistics, and a plan from stale estimates (a sequential scan, or a
-- bitmap scan and a sort of a whole queue) grows with the backlog and with the dead rows vacuum
-- has not reclaimed yet. Every statement here has an index for a point or ordered lookup.
-- Statements over a batch join its array (ten rows, as a cached plan guesses) to a table by an
-- index lookup per element, never to another batch-sized set (a nested loop over two of them is
-- quadratic: 400 ms for a batch of a thousand) nor with `= ANY (array)` inside such a loop.

-- Promotes due scheduled jobs of the queues and reaps leases that ran out or whose owner's
-- session is gone, at most p_batch of each. Returns how many jobs became ready.
CREATE FUNCTION {s}.maintain(p_queues text[], p_batch integer) RETURNS integer
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
DECLARE
    v_now bigint := {s}.now_ms();
    v_live integer[] := {s}.live_owners();
    v_ready integer := 0;
    v_n integer;
    r record;
BEGIN
    WITH due AS (
        SELECT j.id FROM {s}.jobs j
        WHERE j.state = 1 AND j.queue = ANY (p_queues) AND j.run_at <= v_now
        ORDER BY j.run_at LIMIT p_batch FOR UPDATE SKIP LOCKED
    ), moved AS (
        UPDATE {s}.jobs j SET state = 0,
            history = j.history || jsonb_build_array({s}.entry(0::smallint, v_now, NULL))
        FROM due WHERE j.id = due.id
        RETURNING j.id, j.queue
    )
    INSERT INTO {s}.ready (id, queue, pos) SELECT id, queue, nextval('{s}.ids') FROM moved;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_ready := v_ready + v_n;

    FOR r IN
        DELETE FROM {s}.leases l WHERE l.id IN (
            SELECT x.id FROM {s}.leases x
            WHERE x.queue = ANY (p_queues)
              AND (x.deadline <= v_now OR (x.owner <> 0 AND x.owner <> ALL (v_live)))
            LIMIT p_batch FOR UPDATE SKIP LOCKED)
        RETURNING l.id, l.claimed_at, l.started, l.cancel
    LOOP
        v_ready := v_ready + {s}.lease_lost(r.id, r.claimed_at, r.started, r.cancel, v_now);
    END LOOP;

    -- Fold the counter deltas of these queues into one row each once they pile up.
    IF (SELECT count(*) FROM (SELECT 1 FROM {s}.counters WHERE queue = ANY (p_queues)
                              LIMIT 64) x) >= 64 THEN
        WITH gone AS (
            DELETE FROM {s}.counters c WHERE c.ctid IN (
                SELECT x.ctid FROM {s}.counters x WHERE x.queue = ANY (p_queues)
                FOR UPDATE SKIP LOCKED)
            RETURNING c.queue, c.succeeded, c.failed
        )
        INSERT INTO {s}.counters (queue, succeeded, failed)
        SELECT queue, sum(succeeded), sum(failed) FROM gone GROUP BY queue;
    END IF;
    DELETE FROM {s}.limit_starts WHERE ctid IN (
        SELECT ctid FROM {s}.limit_starts WHERE expires <= v_now LIMIT p_batch);
    RETURN v_ready;
END $$;

-- What happens to a job whose lease ended without a completion (see the crash accounting of
-- the storage docs). Returns 1 when the job is ready again at once.
CREATE FUNCTION {s}.lease_lost(p_id bigint, p_claimed_at bigint, p_started boolean,
                                p_cancel boolean, p_now bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_queue text;
    v_flow boolean;
BEGIN
    DELETE FROM {s}.limit_slots WHERE id = p_id;
    IF p_cancel THEN
        UPDATE {s}.jobs SET state = 5, finished_at = p_now, history = history || jsonb_build_array(
                {s}.entry(2::smallint, p_claimed_at, NULL),
                {s}.entry(5::smallint, p_now, 'cancelled (its worker stopped while a cancel request was pending)'))
        WHERE id = p_id AND state = 0
        RETURNING flow INTO v_flow;
        IF v_flow THEN
            PERFORM {s}.ended(p_id, 'D', NULL, p_now);
        END IF;
        RETURN 0;
    END IF;
    IF p_started THEN
        UPDATE {s}.jobs SET crashes = crashes + 1, state = 1,
            run_at = p_now + ((crashes + 1) * (500 + floor(random() * 1001)))::bigint,
            history = history || jsonb_build_array(
                {s}.entry(2::smallint, p_claimed_at, NULL),
                {s}.entry(1::smallint, p_now,
                    'lease expired while it ran: its worker died or hung (crash ' || (crashes + 1) || ')'))
        WHERE id = p_id AND state = 0;
        RETURN 0;
    END IF;
    UPDATE {s}.jobs SET orphaned = orphaned + 1,
        history = history || jsonb_build_array(
            {s}.entry(2::smallint, p_claimed_at, NULL),
            {s}.entry(0::smallint, p_now, 'lease expired before it started: its worker stopped or '
                || 'hung; handed back without counting an attempt'))
    WHERE id = p_id AND state = 0
    RETURNING queue INTO v_queue;
    IF FOUND THEN
        INSERT INTO {s}.ready (id, queue, pos) VALUES (p_id, v_queue, -nextval('{s}.ids'));
        RETURN 1;
    END IF;
    RETURN 0;
END $$;

-- Leases up to p_max ready jobs of the queues, in priority order, FIFO within a queue. When
-- nothing was ready, returns one row whose id is NULL and whose token is the earliest time
-- (ms) something of these queues comes due or a lease runs out (NULL: nothing).
CREATE FUNCTION {s}.fetch(p_queues text[], p_max integer, p_lease bigint, p_owner integer,
                           p_maintain boolean, p_batch integer)
RETURNS TABLE (o_id bigint, o_queue text, o_name text, o_args text, o_attempts integer,
               o_crashes integer, o_orphaned integer, o_enqueued_at bigint, o_token bigint)
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
DECLARE
    v_now bigint := {s}.now_ms();
    v_q text;
    v_left integer := p_max;
    v_n integer;
    v_next bigint;
    v_ids bigint[];
BEGIN
    IF p_maintain THEN
        PERFORM {s}.maintain(p_queues, p_batch);
    END IF;
    FOREACH v_q IN ARRAY p_queues LOOP
        EXIT WHEN v_left <= 0;
        -- Ids first, then point lookups by `= ANY`: a join would let the planner scan whole
        -- tables, whose dead rows grow with every claim until vacuum runs.
        SELECT array_agg(x.id ORDER BY x.pos) INTO v_ids FROM (
            SELECT r.id, r.pos FROM {s}.ready r WHERE r.queue = v_q
            ORDER BY r.pos LIMIT v_left FOR UPDATE SKIP LOCKED) x;
        CONTINUE WHEN v_ids IS NULL;
        RETURN QUERY
        WITH picked AS (
            DELETE FROM {s}.ready r WHERE r.id = ANY (v_ids)
            RETURNING r.id
        ), leased AS (
            INSERT INTO {s}.leases (id, queue, token, deadline, owner, claimed_at)
            SELECT p.id, v_q, nextval('{s}.tokens'), v_now + p_lease, p_owner, v_now
            FROM picked p
            RETURNING id, token
        )
        SELECT j.id, j.queue, j.name, j.args, j.attempts, j.crashes, j.orphaned,
               j.enqueued_at, l.token
        FROM leased l JOIN {s}.jobs j ON j.id = l.id
        -- In queue order (v_ids is): a scan of the array per job, in C, under a millisecond
        -- for a thousand.
        ORDER BY array_position(v_ids, j.id);
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_left := v_left - v_n;
    END LOOP;
    IF v_left = p_max THEN
        SELECT least(
            (SELECT min(j.run_at) FROM {s}.jobs j WHERE j.state = 1 AND j.queue = ANY (p_queues)),
            (SELECT min(l.deadline) FROM {s}.leases l WHERE l.queue = ANY (p_queues)))
        INTO v_next;
        RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::integer,
            NULL::integer, NULL::integer, NULL::bigint, v_next;
    END IF;
END $$;

-- Ends attempts: p_outcomes 'O' succeeded, 'R' retry at p_at, 'F' failed, 'D' deleted.
-- Returns the ids whose lease was still held (the completions applied).
CREATE FUNCTION {s}.complete(p_ids bigint[], p_tokens bigint[], p_outcomes text[],
                              p_at bigint[], p_reasons text[], p_results text[],
                              p_keep_succeeded bigint, p_succeeded_ttl bigint,
                              p_keep_deleted bigint, p_deleted_ttl bigint)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
DECLARE
    v_now bigint := {s}.now_ms();
    v_queues text[];
    v_ids bigint[];
    v_qs text[];
    v_outcomes text[];
    v_flows boolean[];
    v_results text[];
BEGIN
    WITH c AS (
        -- A lease completed twice in one call ends once: the first completion wins.
        SELECT DISTINCT ON (u.id) u.id, u.token, u.outcome, u.at, u.reason, u.result,
            CASE u.outcome WHEN 'O' THEN 'succeeded' WHEN 'R' THEN 'scheduled'
                WHEN 'F' THEN 'failed' ELSE 'deleted' END AS state_name
        FROM unnest(p_ids, p_tokens, p_outcomes, p_at, p_reasons, p_results) WITH ORDINALITY
            AS u(id, token, outcome, at, reason, result, ord)
        ORDER BY u.id, u.ord
    ), done AS (
        DELETE FROM {s}.leases l USING c
        WHERE l.id = c.id AND l.token = c.token
        RETURNING l.id, l.claimed_at, c.outcome, c.at, c.reason, c.result, c.state_name
    ), ended AS (
        UPDATE {s}.jobs j SET
            state = CASE d.outcome WHEN 'O' THEN 3 WHEN 'R' THEN 1 WHEN 'F' THEN 4 ELSE 5 END,
            attempts = j.attempts + 1,
            run_at = CASE WHEN d.outcome = 'R' THEN d.at ELSE j.run_at END,
            finished_at = CASE WHEN d.outcome = 'R' THEN NULL ELSE v_now END,
            -- Written out rather than with entry(): a function call per row costs more
            -- than the rest of the update.
            history = j.history || jsonb_build_array(
                jsonb_build_object('s', 'processing', 't', d.claimed_at),
                CASE WHEN d.reason IS NULL
                    THEN jsonb_build_object('s', d.state_name, 't', v_now)
                    ELSE jsonb_build_object('s', d.state_name, 't', v_now, 'r', d.reason) END)
        FROM done d
        WHERE j.id = d.id
        RETURNING j.id, j.queue, d.outcome, j.flow, d.result
    )
    SELECT array_agg(id), array_agg(queue), array_agg(outcome), array_agg(flow), array_agg(result)
    INTO v_ids, v_qs, v_outcomes, v_flows, v_results
    FROM ended;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;

    INSERT INTO {s}.counters (queue, succeeded, failed)
    SELECT q, count(*) FILTER (WHERE o = 'O'), count(*) FILTER (WHERE o = 'F')
    FROM unnest(v_qs, v_outcomes) AS e(q, o) WHERE o IN ('O', 'F') GROUP BY q;

    IF EXISTS (SELECT 1 FROM {s}.limit_slots LIMIT 1) THEN
        DELETE FROM {s}.limit_slots WHERE id = ANY (v_ids);
    END IF;

    FOR i IN 1 .. array_length(v_ids, 1) LOOP
        IF v_flows[i] AND v_outcomes[i] <> 'R' THEN
            PERFORM {s}.ended(v_ids[i], v_outcomes[i], v_results[i], v_now);
        END IF;
    END LOOP;

    SELECT array_agg(DISTINCT q) INTO v_queues
    FROM unnest(v_qs, v_outcomes) AS e(q, o) WHERE o <> 'R';
    IF v_queues IS NOT NULL THEN
        PERFORM {s}.trim(v_queues, p_keep_succeeded, p_succeeded_ttl, p_keep_deleted,
                         p_deleted_ttl, v_now);
    END IF;
    RETURN QUERY SELECT unnest(v_ids);
END $$;

-- Drops the succeeded and deleted jobs retention no longer keeps (at most 1,000 of each per
-- queue and call, so no call grows with the backlog).
CREATE FUNCTION {s}.trim(p_queues text[], p_keep_succeeded bigint, p_succeeded_ttl bigint,
                          p_keep_deleted bigint, p_deleted_ttl bigint, p_now bigint)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_q text;
BEGIN
    FOREACH v_q IN ARRAY p_queues LOOP
        DELETE FROM {s}.jobs WHERE id IN (
            SELECT id FROM (
                SELECT id, finished_at FROM {s}.jobs
                WHERE queue = v_q AND state = 3 AND finished_at >= 0
                ORDER BY finished_at DESC, id DESC OFFSET p_keep_succeeded LIMIT 1000) old
            UNION
            SELECT id FROM (
                SELECT id FROM {s}.jobs
                WHERE queue = v_q AND state = 3 AND finished_at >= 0
                  AND finished_at <= p_now - p_succeeded_ttl
                ORDER BY finished_at LIMIT 1000) expired);
        DELETE FROM {s}.jobs WHERE id IN (
            SELECT id FROM (
                SELECT id, finished_at FROM {s}.jobs
                WHERE queue = v_q AND state = 5 AND finished_at >= 0
                ORDER BY finished_at DESC, id DESC OFFSET p_keep_deleted LIMIT 1000) old
            UNION
            SELECT id FROM (
                SELECT id FROM {s}.jobs
                WHERE queue = v_q AND state = 5 AND finished_at >= 0
                  AND finished_at <= p_now - p_deleted_ttl
                ORDER BY finished_at LIMIT 1000) expired);
        -- Finished batches are kept like succeeded jobs.
        DELETE FROM {s}.batches WHERE id IN (
            SELECT id FROM (
                SELECT id, finished_at FROM {s}.batches
                WHERE queue = v_q AND finished_at IS NOT NULL
                ORDER BY finished_at DESC, id DESC OFFSET p_keep_succeeded LIMIT 1000) old
            UNION
            SELECT id FROM (
                SELECT id FROM {s}.batches
                WHERE queue = v_q AND finished_at IS NOT NULL
                  AND finished_at <= p_now - p_succeeded_ttl
                ORDER BY finished_at LIMIT 1000) expired);
    END LOOP;
END $$;

-- Start marks: returns the ids whose lease was still held.
CREATE FUNCTION {s}.mark_started(p_ids bigint[], p_tokens bigint[]) RETURNS SETOF bigint
LANGUAGE sql
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
    UPDATE {s}.leases l SET started = true
    FROM unnest(p_ids, p_tokens) AS m(id, token)
    WHERE l.id = m.id AND l.token = m.token
    RETURNING l.id
$$;

-- Renewals: returns the ids whose lease was still held. The lease moves to the caller's
-- current session (after a reconnect, the old session's key is gone).
CREATE FUNCTION {s}.renew(p_ids bigint[], p_tokens bigint[], p_lease bigint, p_owner integer)
RETURNS SETOF bigint
LANGUAGE sql
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
    UPDATE {s}.leases l SET deadline = {s}.now_ms() + p_lease, owner = p_owner
    FROM unnest(p_ids, p_tokens) AS m(id, token)
    WHERE l.id = m.id AND l.token = m.token
    RETURNING l.id
$$;

-- Hands leased jobs back to the front of their queue without counting an attempt.
CREATE FUNCTION {s}.release(p_ids bigint[], p_tokens bigint[]) RETURNS void
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
DECLARE
    v_now bigint := {s}.now_ms();
    v_queues text[];
BEGIN
    WITH gone AS (
        DELETE FROM {s}.leases l USING unnest(p_ids, p_tokens) AS m(id, token)
        WHERE l.id = m.id AND l.token = m.token
        RETURNING l.id, l.queue, l.claimed_at
    ), back AS (
        UPDATE {s}.jobs j SET history = j.history || jsonb_build_array(
                {s}.entry(2::smallint, g.claimed_at, NULL),
                {s}.entry(0::smallint, v_now, 'handed back by a worker shutting down'))
        FROM gone g WHERE j.id = g.id
        RETURNING j.id, j.queue
    ), queued AS (
        INSERT INTO {s}.ready (id, queue, pos) SELECT id, queue, -nextval('{s}.ids') FROM back
        RETURNING queue
    )
    SELECT array_agg(DISTINCT queue) INTO v_queues FROM queued;
    IF v_queues IS NOT NULL THEN
        DELETE FROM {s}.limit_slots WHERE id = ANY (p_ids);
        PERFORM pg_notify('{chan}', q) FROM unnest(v_queues) AS u(q);
    END IF;
END $$;
