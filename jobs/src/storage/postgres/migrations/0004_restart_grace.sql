-- A restart of PostgreSQL ends every worker's session at once, and with it every advisory lock
-- that ties a lease to a live worker. The workers reconnect within a few hundred milliseconds
-- and take their keys again; until then a lock missing from pg_locks does not mean its worker
-- died. So for two seconds after the server started, no owner counts as gone (leases are
-- bounded by their deadline alone), and a restart does not hand every running job to another
-- worker while its own worker is about to complete it.
CREATE OR REPLACE FUNCTION {s}.live_owners() RETURNS integer[] LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN now() - pg_postmaster_start_time() < interval '2 seconds' THEN NULL
        ELSE (SELECT coalesce(array_agg(objid::bigint::integer), '{}')
              FROM pg_locks
              WHERE locktype = 'advisory' AND classid = {ns} AND objsubid = 2 AND granted
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
    END
$$;
