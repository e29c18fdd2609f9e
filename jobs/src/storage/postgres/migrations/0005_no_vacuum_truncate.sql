-- Vacuum must never truncate the storage's tables, neither the storage's own vacuum (which says
-- TRUNCATE false) nor the server's autovacuum: giving a table's empty end back to the OS takes
-- an exclusive lock on it that stalls every claim and completion until it is granted and done
-- (with the storage's own vacuum truncating, drain fell from 34,000 to 1,700 jobs/s while a
-- transaction was held open elsewhere: see vacuum.rs).
ALTER TABLE {s}.jobs SET (vacuum_truncate = false);
ALTER TABLE {s}.ready SET (vacuum_truncate = false);
ALTER TABLE {s}.leases SET (vacuum_truncate = false);
ALTER TABLE {s}.counters SET (vacuum_truncate = false);
ALTER TABLE {s}.uniques SET (vacuum_truncate = false);
ALTER TABLE {s}.batches SET (vacuum_truncate = false);
ALTER TABLE {s}.continuations SET (vacuum_truncate = false);
ALTER TABLE {s}.limit_slots SET (vacuum_truncate = false);
ALTER TABLE {s}.limit_starts SET (vacuum_truncate = false);
ALTER TABLE {s}.servers SET (vacuum_truncate = false);
