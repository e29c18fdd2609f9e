-- The idle poll: when a fetch finds nothing, the row that says when the next scheduled job or
-- lease deadline is due also says (`o_crashes` = 1) whether another worker's session holds a
-- lease on these queues. Only then can a job come back without a NOTIFY (its worker dies and
-- the next maintenance pass reaps it), so only then does an idle worker poll every second; in
-- a quiet system it waits for a NOTIFY, a due time, or a slow safety poll (see `fetch.rs`).
-- The same function as in version 6 otherwise.
CREATE OR REPLACE FUNCTION {s}.fetch(p_queues text[], p_max integer, p_lease bigint, p_owner integer,
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
            CASE WHEN EXISTS (SELECT 1 FROM {s}.leases l WHERE l.queue = ANY (p_queues)
                              AND l.owner <> 0 AND l.owner <> p_owner) THEN 1 ELSE 0 END,
            NULL::integer, NULL::bigint, v_next, NULL::text, NULL::bigint;
    END IF;
END $$;
