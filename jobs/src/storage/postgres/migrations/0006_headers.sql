-- Job headers (trace context and other metadata): a column of the wide `jobs` row, NULL for
-- the jobs without (most), written at enqueue and returned by fetch. Fetch also returns when a
-- job became ready (its enqueue time, or its due time when later), where its queue wait starts.
-- The functions that store or return jobs are replaced by versions with the new column; the
-- new parameters default to NULL, so calls written for version 3 still work.

ALTER TABLE {s}.jobs ADD COLUMN headers text;

DROP FUNCTION {s}.fetch(text[], integer, bigint, integer, boolean, integer);
DROP FUNCTION {s}.enqueue(text[], text[], text[], bigint[], text[], bigint[]);
DROP FUNCTION {s}.continue_with(bigint, text, text, text, text, text, text);
DROP FUNCTION {s}.enqueue_batch(text, text[], text[], text, text, text, text, bigint, bigint);

-- As in version 2, returning the headers and the ready time too.
CREATE FUNCTION {s}.fetch(p_queues text[], p_max integer, p_lease bigint, p_owner integer,
                           p_maintain boolean, p_batch integer)
RETURNS TABLE (o_id bigint, o_queue text, o_name text, o_args text, o_attempts integer,
               o_crashes integer, o_orphaned integer, o_enqueued_at bigint, o_token bigint,
               o_headers text, o_ready_at bigint)
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
               j.enqueued_at, l.token, j.headers, greatest(j.enqueued_at, j.run_at)
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
            NULL::integer, NULL::integer, NULL::bigint, v_next, NULL::text, NULL::bigint;
    END IF;
END $$;

-- As in version 3, storing p_headers (one per job, NULL for none; the array NULL when no job
-- has any).
CREATE FUNCTION {s}.enqueue(p_queues text[], p_names text[], p_args text[], p_run_at bigint[],
                             p_keys text[], p_windows bigint[], p_headers text[] DEFAULT NULL)
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
            SELECT nextval('{s}.ids') AS id, u.q, u.n, u.a, u.h,
                   CASE WHEN u.r > v_now THEN 1 ELSE 0 END::smallint AS st,
                   CASE WHEN u.r > v_now THEN u.r ELSE 0 END AS due, u.ord
            FROM unnest(p_queues, p_names, p_args, p_run_at, p_headers) WITH ORDINALITY
                AS u(q, n, a, r, h, ord)
        ), ins AS (
            INSERT INTO {s}.jobs (id, queue, name, args, headers, state, enqueued_at, run_at,
                                  history)
            SELECT id, q, n, a, h, st, v_now, due, jsonb_build_array(jsonb_build_object(
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
                INSERT INTO {s}.jobs (id, queue, name, args, headers, state, enqueued_at, run_at,
                                      history, flow)
                VALUES (v_id, p_queues[i], p_names[i], p_args[i], p_headers[i], v_state, v_now,
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

-- As in version 3, storing p_headers.
CREATE FUNCTION {s}.continue_with(p_parent bigint, p_parent_queue text, p_queue text, p_name text, p_args text,
                                   p_on text, p_reason text, p_headers text DEFAULT NULL)
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
    INSERT INTO {s}.jobs (id, queue, name, args, headers, state, enqueued_at, history)
    VALUES (v_id, p_queue, p_name, p_args, p_headers, 6, v_now,
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

-- As in version 3, storing p_headers (per member) and p_then_headers.
CREATE FUNCTION {s}.enqueue_batch(p_queue text, p_names text[], p_args text[],
                                   p_then_queue text, p_then_name text, p_then_args text,
                                   p_reason_prefix text, p_keep_succeeded bigint,
                                   p_succeeded_ttl bigint, p_headers text[] DEFAULT NULL,
                                   p_then_headers text DEFAULT NULL)
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
        SELECT nextval('{s}.ids') AS id, u.n, u.a, u.h, u.ord
        FROM unnest(p_names, p_args, p_headers) WITH ORDINALITY AS u(n, a, h, ord)
    ), ins AS (
        INSERT INTO {s}.jobs (id, queue, name, args, headers, state, enqueued_at, history, flow,
                              batch)
        SELECT id, p_queue, n, a, h, 0, v_now,
               jsonb_build_array(jsonb_build_object('s', 'enqueued', 't', v_now)), true, v_batch
        FROM src
    ), rd AS (
        INSERT INTO {s}.ready (id, queue, pos) SELECT id, p_queue, id FROM src
    )
    SELECT array_agg(id ORDER BY ord) INTO v_members FROM src;
    IF p_then_name IS NOT NULL THEN
        v_then := nextval('{s}.ids');
        INSERT INTO {s}.jobs (id, queue, name, args, headers, state, enqueued_at, history)
        VALUES (v_then, p_then_queue, p_then_name, p_then_args, p_then_headers, 6, v_now,
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
