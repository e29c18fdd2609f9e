-- No JIT compilation in the functions that turn sequential scans off. Turning them off makes the
-- planner cost any scan it cannot avoid (a small table without a fitting index) at 10^10, far
-- over `jit_above_cost`, so PostgreSQL compiled such statements with LLVM at every call:
-- `queue_names()` took 650-800 ms at 1,000,000 jobs (JIT inlining, optimization and emission)
-- against 1.2 ms without, and every page of the dashboard paid it. A later migration that
-- replaces one of these functions must give `SET jit = off` again (CREATE OR REPLACE resets
-- its settings).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = '{s}'::regnamespace
          AND p.proconfig @> ARRAY['enable_seqscan=off']
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET jit = off', f);
    END LOOP;
END $$;
