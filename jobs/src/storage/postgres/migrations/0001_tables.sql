-- The jobs storage, version 1. `{s}` is the schema, `{ns}` the advisory-lock namespace of the
-- schema (a positive int4), `{chan}` the NOTIFY channel.
--
-- Hot rows are small and separate from the payload: `ready` (one row per job waiting on its
-- queue) and `leases` (one per job a worker holds) are inserted and deleted as jobs move, so the
-- wide `jobs` row is written at enqueue, at the end of an attempt and when retention drops it.

CREATE SEQUENCE {s}.ids;
CREATE SEQUENCE {s}.tokens;

CREATE TABLE {s}.jobs (
    id          bigint PRIMARY KEY,
    queue       text NOT NULL,
    name        text NOT NULL,
    args        text NOT NULL,
    -- 0 enqueued, 1 scheduled, 3 succeeded, 4 failed, 5 deleted, 6 awaiting. A leased job keeps
    -- its state (0) and has a row in `leases`: that row is what makes it processing.
    state       smallint NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    crashes     integer NOT NULL DEFAULT 0,
    orphaned    integer NOT NULL DEFAULT 0,
    enqueued_at bigint NOT NULL,
    -- due time while scheduled (ms since the epoch)
    run_at      bigint NOT NULL DEFAULT 0,
    -- when it entered succeeded, failed or deleted
    finished_at bigint,
    history     jsonb NOT NULL,
    -- flow data, only on jobs that use it: unique keys, continuations, batches, results
    flow        boolean NOT NULL DEFAULT false,
    batch       bigint,
    result      text,
    parent_result text
);
CREATE INDEX jobs_due ON {s}.jobs (queue, run_at) WHERE state = 1;
CREATE INDEX jobs_finished ON {s}.jobs (queue, state, finished_at, id) WHERE state >= 3 AND state <= 5;

CREATE TABLE {s}.ready (
    id    bigint PRIMARY KEY,
    queue text NOT NULL,
    -- order on the queue: the id for jobs joining at the back, minus a fresh id at the front
    pos   bigint NOT NULL
) WITH (fillfactor = 100);
CREATE INDEX ready_order ON {s}.ready (queue, pos);

CREATE TABLE {s}.leases (
    id         bigint PRIMARY KEY,
    queue      text NOT NULL,
    token      bigint NOT NULL,
    deadline   bigint NOT NULL,
    -- the advisory lock key of the claiming worker's session (0: none, the deadline alone)
    owner      integer NOT NULL,
    claimed_at bigint NOT NULL,
    started    boolean NOT NULL DEFAULT false,
    cancel     boolean NOT NULL DEFAULT false
);
CREATE INDEX leases_deadline ON {s}.leases (queue, deadline);

-- Lifetime counters as deltas: each completion inserts one row per queue, maintenance folds
-- them (no hot row updated by every completion).
CREATE TABLE {s}.counters (
    queue     text NOT NULL,
    succeeded bigint NOT NULL,
    failed    bigint NOT NULL
);
CREATE INDEX counters_queue ON {s}.counters (queue);

CREATE TABLE {s}.servers (
    name    text PRIMARY KEY,
    expires bigint NOT NULL
);

CREATE TABLE {s}.recurring (
    id            text PRIMARY KEY,
    cron          text NOT NULL,
    time_zone     text NOT NULL,
    misfire       text NOT NULL,
    misfire_grace bigint,
    queue         text NOT NULL,
    name          text NOT NULL,
    args          text NOT NULL,
    next_run      bigint,
    last_run      bigint,
    revision      bigint NOT NULL
);

CREATE TABLE {s}.uniques (
    queue   text NOT NULL,
    key     text NOT NULL,
    id      bigint NOT NULL,
    expires bigint NOT NULL,
    PRIMARY KEY (queue, key)
);
CREATE INDEX uniques_id ON {s}.uniques (id);

CREATE TABLE {s}.continuations (
    parent bigint NOT NULL,
    child  bigint NOT NULL,
    on_end text NOT NULL,
    PRIMARY KEY (parent, child)
);

CREATE TABLE {s}.batches (
    id          bigint PRIMARY KEY,
    queue       text NOT NULL,
    total       bigint NOT NULL,
    succeeded   bigint NOT NULL DEFAULT 0,
    failed      bigint NOT NULL DEFAULT 0,
    then_id     bigint,
    finished_at bigint
);
CREATE INDEX batches_finished ON {s}.batches (queue, finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE {s}.limit_slots (
    queue text NOT NULL,
    key   text NOT NULL,
    id    bigint NOT NULL,
    token bigint NOT NULL,
    PRIMARY KEY (queue, key, id)
);
CREATE INDEX limit_slots_id ON {s}.limit_slots (id);

CREATE TABLE {s}.limit_starts (
    queue text NOT NULL,
    key   text NOT NULL,
    at    bigint NOT NULL,
    -- when this start leaves its rate window
    expires bigint NOT NULL
);
CREATE INDEX limit_starts_key ON {s}.limit_starts (queue, key, at);
CREATE INDEX limit_starts_expires ON {s}.limit_starts (expires);

CREATE FUNCTION {s}.now_ms() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint
$$;

CREATE FUNCTION {s}.state_name(p_state smallint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_state WHEN 0 THEN 'enqueued' WHEN 1 THEN 'scheduled' WHEN 2 THEN 'processing'
        WHEN 3 THEN 'succeeded' WHEN 4 THEN 'failed' WHEN 5 THEN 'deleted' ELSE 'awaiting' END
$$;

-- One history entry, as `StateChange` serializes.
CREATE FUNCTION {s}.entry(p_state smallint, p_at bigint, p_reason text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_reason IS NULL
        THEN jsonb_build_object('s', {s}.state_name(p_state), 't', p_at)
        ELSE jsonb_build_object('s', {s}.state_name(p_state), 't', p_at, 'r', p_reason) END
$$;

-- Advisory lock keys of the worker sessions alive now (in this database).
CREATE FUNCTION {s}.live_owners() RETURNS integer[] LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(objid::bigint::integer), '{}')
    FROM pg_locks
    WHERE locktype = 'advisory' AND classid = {ns} AND objsubid = 2 AND granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
$$;
