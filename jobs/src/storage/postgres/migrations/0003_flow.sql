-- Enqueueing (with unique keys), and the flows: continuations, batches, limits, cancellation,
-- deletion and requeueing.

-- Stores jobs and returns their ids in order. A job with a unique key whose key a live job of
-- its queue holds is not stored: the live job's id is returned in its place. p_keys is NULL
-- when no job has a key (the set-based path). NOTIFY is coalesced by PostgreSQL per
-- transaction, so an enqueue inside the caller's transaction wakes workers once, on commit.
CREATE FUNCTION {s}.enqueue(p_queues text[], p_names text[], p_args text[], p_run_at bigint[],
                             p_keys text[], p_windows bigint[])
RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := {s}.now_ms();
    v_ids bigint[];
    v_id bigint;
    v_state smallint;
    i integer;
BEGIN
    IF p_keys IS NULL THEN
        WITH src AS (
            SELECT nextval('{s}.ids') AS id, u.q, u.n, u.a,
                   CASE WHEN u.r > v_now THEN 1 ELSE 0 END::smallint AS st,
                   CASE WHEN u.r > v_now THEN u.r ELSE 0 END AS due, u.ord
            FROM unnest(p_queues, p_names, p_args, p_run_at) WITH ORDINALITY AS u(q, n, a, r, ord)
        ), ins AS (
            INSERT INTO {s}.jobs (id, queue, name, args, state, enqueued_at, run_at, history)
            SELECT id, q, n, a, st, v_now, due, jsonb_build_array(jsonb_build_object(
                's', CASE st WHEN 1 THEN 'scheduled' ELSE 'enqueued' END, 't', v_now))
            FROM src
        ), rd AS (
            INSERT INTO {s}.ready (id, queue, pos) SELECT id, q, id FROM src WHERE st = 0
        )
        SELECT array_agg(id ORDER BY ord) INTO v_ids FROM src;
    ELSE
        v_ids := array_fill(NULL::bigint, ARRAY[coalesce(array_length(p_queues, 1), 0)]);
        FOR i IN 1 .. coalesce(array_length(p_queues, 1), 0) LOOP
            v_id := NULL;
            IF p_keys[i] IS NOT NULL THEN
                -- One enqueue at a time per key, so two cannot both find it free.
                PERFORM pg_advisory_xact_lock({ns}, hashtext(p_queues[i] || E'\n' || p_keys[i]));
                SELECT u.id INTO v_id FROM {s}.uniques u JOIN {s}.jobs j ON j.id = u.id
                WHERE u.queue = p_queues[i] AND u.key = p_keys[i] AND u.expires > v_now
                  AND j.state IN (0, 1, 6);
            END IF;
            IF v_id IS NULL THEN
                v_id := nextval('{s}.ids');
                v_state := CASE WHEN p_run_at[i] > v_now THEN 1 ELSE 0 END;
                INSERT INTO {s}.jobs (id, queue, name, args, state, enqueued_at, run_at, history,
                                      flow)
                VALUES (v_id, p_queues[i], p_names[i], p_args[i], v_state, v_now,
                        CASE WHEN v_state = 1 THEN p_run_at[i] ELSE 0 END,
                        jsonb_build_array({s}.entry(v_state, v_now, NULL)),
                        p_keys[i] IS NOT NULL);
                IF v_state = 0 THEN
                    INSERT INTO {s}.ready (id, queue, pos) VALUES (v_id, p_queues[i], v_id);
                END IF;
                IF p_keys[i] IS NOT NULL THEN
                    INSERT INTO {s}.uniques (queue, key, id, expires)
                    VALUES (p_queues[i], p_keys[i], v_id,
                            CASE WHEN p_windows[i] IS NULL THEN 9223372036854775807
                                 ELSE v_now + p_windows[i] END)
                    ON CONFLICT (queue, key) DO UPDATE SET id = EXCLUDED.id, expires = EXCLUDED.expires;
                END IF;
            END IF;
            v_ids[i] := v_id;
        END LOOP;
    END IF;
    PERFORM pg_notify('{chan}', q) FROM (SELECT DISTINCT unnest(p_queues)) AS u(q);
    RETURN coalesce(v_ids, '{}');
END $$;

-- What a continuation waiting on p_on does when its parent ends as p_end ('O' succeeded,
-- 'F' failed, 'D' deleted): true run, false delete, NULL keep waiting (`Finish::decide`).
CREATE FUNCTION {s}.decide(p_on text, p_end text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_on = 's' AND p_end = 'O' THEN true
        WHEN p_on = 'a' AND p_end IN ('O', 'F', 'D') THEN true
        WHEN p_on = 'd' AND p_end = 'D' THEN true
        WHEN p_on = 's' AND p_end = 'D' THEN false
        WHEN p_on = 'd' AND p_end = 'O' THEN false
        ELSE NULL END
$$;

-- Makes an awaiting continuation ready (p_run) or deletes it.
CREATE FUNCTION {s}.decide_child(p_child bigint, p_run boolean, p_result text, p_now bigint)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_queue text;
BEGIN
    IF p_run THEN
        UPDATE {s}.jobs SET state = 0, parent_result = coalesce(p_result, parent_result),
            history = history || jsonb_build_array({s}.entry(0::smallint, p_now, 'parent finished'))
        WHERE id = p_child AND state = 6
        RETURNING queue INTO v_queue;
        IF FOUND THEN
            INSERT INTO {s}.ready (id, queue, pos) VALUES (p_child, v_queue, nextval('{s}.ids'));
            PERFORM pg_notify('{chan}', v_queue);
        END IF;
    ELSE
        UPDATE {s}.jobs SET state = 5, finished_at = p_now,
            history = history || jsonb_build_array({s}.entry(5::smallint, p_now,
                'parent ended without meeting the continuation''s condition'))
        WHERE id = p_child AND state = 6;
    END IF;
END $$;

-- The end (p_end 'O', 'F', 'D') of a job that has flow data: frees its unique key, counts it
-- in its batch, and runs, deletes or keeps its continuations.
CREATE FUNCTION {s}.ended(p_id bigint, p_end text, p_result text, p_now bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_batch bigint;
    v_result text;
    b record;
    c record;
    v_run boolean;
BEGIN
    IF p_end = 'O' THEN
        UPDATE {s}.jobs SET result = p_result WHERE id = p_id;
    END IF;
    SELECT batch, result INTO v_batch, v_result FROM {s}.jobs WHERE id = p_id;
    DELETE FROM {s}.uniques WHERE id = p_id;
    IF v_batch IS NOT NULL THEN
        IF p_end = 'O' THEN
            UPDATE {s}.batches SET succeeded = succeeded + 1 WHERE id = v_batch
            RETURNING * INTO b;
            IF FOUND AND b.succeeded >= b.total AND b.finished_at IS NULL THEN
                UPDATE {s}.batches SET finished_at = p_now, then_id = NULL WHERE id = v_batch;
                IF b.then_id IS NOT NULL THEN
                    PERFORM {s}.decide_child(b.then_id, true, NULL, p_now);
                END IF;
            END IF;
        ELSIF p_end = 'F' THEN
            UPDATE {s}.batches SET failed = failed + 1 WHERE id = v_batch;
        END IF;
        IF p_end IN ('O', 'D') THEN
            UPDATE {s}.jobs SET batch = NULL WHERE id = p_id;
        END IF;
    END IF;
    FOR c IN SELECT child, on_end FROM {s}.continuations WHERE parent = p_id ORDER BY child LOOP
        v_run := {s}.decide(c.on_end, p_end);
        IF v_run IS NOT NULL THEN
            DELETE FROM {s}.continuations WHERE parent = p_id AND child = c.child;
            PERFORM {s}.decide_child(c.child, v_run, v_result, p_now);
        END IF;
    END LOOP;
END $$;

-- Stores a continuation of p_parent in Awaiting (or decides it at once when the parent already
-- ended). Returns its id, or NULL when the parent is unknown.
CREATE FUNCTION {s}.continue_with(p_parent bigint, p_parent_queue text, p_queue text, p_name text, p_args text,
                                   p_on text, p_reason text)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := {s}.now_ms();
    v_state smallint;
    v_result text;
    v_id bigint;
    v_run boolean;
BEGIN
    -- Locks the parent, so its completion waits for the continuation to be attached.
    SELECT state, result INTO v_state, v_result FROM {s}.jobs
    WHERE id = p_parent AND queue = p_parent_queue FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_id := nextval('{s}.ids');
    INSERT INTO {s}.jobs (id, queue, name, args, state, enqueued_at, history)
    VALUES (v_id, p_queue, p_name, p_args, 6, v_now,
            jsonb_build_array({s}.entry(6::smallint, v_now, p_reason)));
    v_run := {s}.decide(p_on, CASE v_state WHEN 3 THEN 'O' WHEN 4 THEN 'F' WHEN 5 THEN 'D' END);
    IF v_run IS NOT NULL THEN
        PERFORM {s}.decide_child(v_id, v_run, v_result, v_now);
    ELSE
        INSERT INTO {s}.continuations (parent, child, on_end) VALUES (p_parent, v_id, p_on);
        UPDATE {s}.jobs SET flow = true WHERE id = p_parent AND NOT flow;
    END IF;
    RETURN v_id;
END $$;

-- Stores jobs of one queue as a batch, with an optional continuation that waits until every
-- member succeeded. Returns the batch id, then the members' ids, then the continuation's id
-- (or NULL).
CREATE FUNCTION {s}.enqueue_batch(p_queue text, p_names text[], p_args text[],
                                   p_then_queue text, p_then_name text, p_then_args text,
                                   p_reason_prefix text, p_keep_succeeded bigint,
                                   p_succeeded_ttl bigint)
RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := {s}.now_ms();
    v_batch bigint := nextval('{s}.ids');
    v_members bigint[];
    v_then bigint;
    v_total integer := coalesce(array_length(p_names, 1), 0);
BEGIN
    WITH src AS (
        SELECT nextval('{s}.ids') AS id, u.n, u.a, u.ord
        FROM unnest(p_names, p_args) WITH ORDINALITY AS u(n, a, ord)
    ), ins AS (
        INSERT INTO {s}.jobs (id, queue, name, args, state, enqueued_at, history, flow, batch)
        SELECT id, p_queue, n, a, 0, v_now,
               jsonb_build_array(jsonb_build_object('s', 'enqueued', 't', v_now)), true, v_batch
        FROM src
    ), rd AS (
        INSERT INTO {s}.ready (id, queue, pos) SELECT id, p_queue, id FROM src
    )
    SELECT array_agg(id ORDER BY ord) INTO v_members FROM src;
    IF p_then_name IS NOT NULL THEN
        v_then := nextval('{s}.ids');
        INSERT INTO {s}.jobs (id, queue, name, args, state, enqueued_at, history)
        VALUES (v_then, p_then_queue, p_then_name, p_then_args, 6, v_now,
                jsonb_build_array({s}.entry(6::smallint, v_now, p_reason_prefix || v_batch)));
    END IF;
    IF v_total = 0 THEN
        INSERT INTO {s}.batches (id, queue, total, finished_at) VALUES (v_batch, p_queue, 0, v_now);
        IF v_then IS NOT NULL THEN
            PERFORM {s}.decide_child(v_then, true, NULL, v_now);
        END IF;
        -- Finished at once, it counts among the finished batches its queue keeps.
        PERFORM {s}.trim(ARRAY[p_queue], p_keep_succeeded, p_succeeded_ttl,
                         9223372036854775807, 9223372036854775807, v_now);
    ELSE
        INSERT INTO {s}.batches (id, queue, total, then_id) VALUES (v_batch, p_queue, v_total, v_then);
        PERFORM pg_notify('{chan}', p_queue);
    END IF;
    RETURN ARRAY[v_batch] || coalesce(v_members, '{}') || v_then;
END $$;

-- Asks for a slot under each request's limits (see `Storage::acquire_limits`). Returns, per
-- request, whether it was granted.
CREATE FUNCTION {s}.acquire_limits(p_ids bigint[], p_tokens bigint[], p_keys text[],
                                    p_concurrency integer[], p_rate_count integer[],
                                    p_rate_per bigint[], p_retry bigint)
RETURNS boolean[]
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := {s}.now_ms();
    v_out boolean[] := '{}';
    v_queue text;
    v_claimed bigint;
    v_wait bigint;
    v_n bigint;
    v_at bigint;
    i integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        SELECT queue INTO v_queue FROM {s}.leases WHERE id = p_ids[i] AND token = p_tokens[i]
        FOR UPDATE;
        IF NOT FOUND THEN
            v_out := v_out || false;
            CONTINUE;
        END IF;
        PERFORM pg_advisory_xact_lock({ns}, hashtext('limit' || E'\n' || v_queue || E'\n' || p_keys[i]));
        v_wait := NULL;
        IF p_concurrency[i] IS NOT NULL THEN
            -- A slot is held exactly as long as its holder's lease.
            DELETE FROM {s}.limit_slots s WHERE s.queue = v_queue AND s.key = p_keys[i]
              AND NOT EXISTS (SELECT 1 FROM {s}.leases l
                              WHERE l.id = s.id AND l.token = s.token AND l.deadline > v_now);
            SELECT count(*) INTO v_n FROM {s}.limit_slots WHERE queue = v_queue AND key = p_keys[i];
            IF v_n >= p_concurrency[i] THEN
                v_wait := v_now + p_retry;
            END IF;
        END IF;
        IF p_rate_count[i] IS NOT NULL THEN
            DELETE FROM {s}.limit_starts WHERE queue = v_queue AND key = p_keys[i] AND expires <= v_now;
            SELECT count(*), min(expires) INTO v_n, v_at FROM {s}.limit_starts
            WHERE queue = v_queue AND key = p_keys[i];
            IF v_n >= p_rate_count[i] THEN
                v_at := greatest(v_at, v_now + least(p_retry, p_rate_per[i]));
                v_wait := greatest(coalesce(v_wait, v_at), v_at);
            END IF;
        END IF;
        IF v_wait IS NULL THEN
            IF p_concurrency[i] IS NOT NULL THEN
                INSERT INTO {s}.limit_slots (queue, key, id, token)
                VALUES (v_queue, p_keys[i], p_ids[i], p_tokens[i])
                ON CONFLICT (queue, key, id) DO UPDATE SET token = EXCLUDED.token;
            END IF;
            IF p_rate_count[i] IS NOT NULL THEN
                INSERT INTO {s}.limit_starts (queue, key, at, expires)
                VALUES (v_queue, p_keys[i], v_now, v_now + p_rate_per[i]);
            END IF;
            v_out := v_out || true;
        ELSE
            DELETE FROM {s}.leases WHERE id = p_ids[i] RETURNING claimed_at INTO v_claimed;
            UPDATE {s}.jobs SET state = 1, run_at = v_wait,
                history = history || jsonb_build_array({s}.entry(2::smallint, v_claimed, NULL),
                    {s}.entry(1::smallint, v_now, 'waiting for a concurrency or rate limit slot'))
            WHERE id = p_ids[i];
            v_out := v_out || false;
        END IF;
    END LOOP;
    RETURN v_out;
END $$;

-- Moves a job to Deleted with p_reason (the caller checked its state) and settles its flow.
CREATE FUNCTION {s}.delete_now(p_id bigint, p_reason text, p_now bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_flow boolean;
BEGIN
    DELETE FROM {s}.ready WHERE id = p_id;
    UPDATE {s}.jobs SET state = 5, finished_at = p_now,
        history = history || jsonb_build_array({s}.entry(5::smallint, p_now, p_reason))
    WHERE id = p_id
    RETURNING flow INTO v_flow;
    IF v_flow THEN
        PERFORM {s}.ended(p_id, 'D', NULL, p_now);
    END IF;
END $$;

-- The state a job is in for deletion and cancellation: its stored state, or 2 (processing)
-- while a worker holds it. Locks the row. NULL when there is no such job.
CREATE FUNCTION {s}.lock_state(p_id bigint, p_queue text) RETURNS smallint
LANGUAGE plpgsql AS $$
DECLARE
    v_state smallint;
BEGIN
    SELECT state INTO v_state FROM {s}.jobs WHERE id = p_id AND queue = p_queue FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_state = 0 THEN
        -- Waits for a claim of it in flight; the job is processing when its ready row is gone.
        PERFORM 1 FROM {s}.ready WHERE id = p_id FOR UPDATE;
        IF NOT FOUND THEN
            RETURN 2;
        END IF;
    END IF;
    RETURN v_state;
END $$;

-- Deletes a job that is enqueued, scheduled, failed or awaiting; cancels (p_cancel) one that
-- is enqueued, scheduled or awaiting, and records a cancel request for one that is processing.
-- Returns 'D' deleted, 'R' requested, 'F' finished (or not in a state that allows it), 'N'
-- not found.
CREATE FUNCTION {s}.remove(p_id bigint, p_queue text, p_cancel boolean, p_keep_deleted bigint,
                            p_deleted_ttl bigint, p_keep_succeeded bigint, p_succeeded_ttl bigint)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := {s}.now_ms();
    v_state smallint := {s}.lock_state(p_id, p_queue);
BEGIN
    IF v_state IS NULL THEN
        RETURN 'N';
    END IF;
    IF v_state = 2 THEN
        IF p_cancel THEN
            UPDATE {s}.leases SET cancel = true WHERE id = p_id;
            RETURN 'R';
        END IF;
        RETURN 'F';
    END IF;
    IF v_state IN (0, 1, 6) OR (v_state = 4 AND NOT p_cancel) THEN
        PERFORM {s}.delete_now(p_id, CASE WHEN p_cancel THEN 'cancelled' ELSE 'deleted' END, v_now);
        PERFORM {s}.trim(ARRAY[p_queue], p_keep_succeeded, p_succeeded_ttl, p_keep_deleted,
                         p_deleted_ttl, v_now);
        RETURN 'D';
    END IF;
    RETURN 'F';
END $$;

-- Puts a failed or deleted job back on its queue with fresh counts. Returns whether it did.
CREATE FUNCTION {s}.requeue(p_id bigint, p_queue text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := {s}.now_ms();
BEGIN
    UPDATE {s}.jobs SET state = 0, attempts = 0, crashes = 0, orphaned = 0, finished_at = NULL,
        history = history || jsonb_build_array({s}.entry(0::smallint, v_now, 'requeued'))
    WHERE id = p_id AND queue = p_queue AND state IN (4, 5);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO {s}.ready (id, queue, pos) VALUES (p_id, p_queue, nextval('{s}.ids'));
    PERFORM pg_notify('{chan}', p_queue);
    RETURN true;
END $$;
