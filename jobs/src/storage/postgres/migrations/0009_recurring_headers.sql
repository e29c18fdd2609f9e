-- The headers of a recurring job's ticks (the stored form of `Headers`, NULL for none), set at
-- registration and copied into every job it enqueues.
ALTER TABLE {s}.recurring ADD COLUMN headers text;
