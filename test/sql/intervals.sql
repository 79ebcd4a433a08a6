-- Interval ingest: good rows load, each kind of bad row is refused with a
-- precise, named error, and the inbox path quarantines bad rows with the reason.
\set VERBOSITY default
SET client_min_messages = warning;
-- start from an empty extension: tests share one database
DROP EXTENSION evmgmt CASCADE;
CREATE EXTENSION evmgmt;
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme Care');
INSERT INTO evmgmt.calendar VALUES ('std', 'Standard week');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('MNL1', 'acme', 'Manila 1', 'Asia/Manila', 'std');
INSERT INTO evmgmt.queue (queue_id, operation_id, name) VALUES ('billing', 'acme', 'Billing');

-- a good row
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled,
	abandoned, answered_in_threshold, threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:00+08', 15, 120, 110, 10, 90, 20, 300, 40, 42, 118, 295);

-- negative counts
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, -1, 0, 0, 20);
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, -2, 0, 20);
-- handled > offered
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, 11, 5, 20);
-- handled + abandoned > offered
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, 8, 3, 5, 20);
-- answered in threshold > handled
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, 8, 9, 20);
-- interval length not dividing the hour
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 25, 10, 8, 5, 20);
-- start not on an interval boundary
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:07+08', 15, 10, 8, 5, 20);
-- unknown site, unknown queue, unknown pool
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('NOPE', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, 8, 5, 20);
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'nope', 'spec', '2026-03-02 09:15+08', 15, 10, 8, 5, 20);
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'bots', '2026-03-02 09:15+08', 15, 10, 8, 5, 20);
-- the same interval twice
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:00+08', 15, 10, 8, 5, 20);
-- AHT not finite
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds, aht_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, 8, 5, 20, 'NaN');

-- a COPY stops at the first bad row, naming the line
COPY evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned, answered_in_threshold, threshold_seconds) FROM stdin WITH (FORMAT csv);
MNL1,billing,spec,2026-03-02 09:15+08,15,100,95,5,80,20
MNL1,billing,spec,2026-03-02 09:30+08,15,100,101,0,80,20
\.
SELECT count(*) AS rows_after_failed_copy FROM evmgmt.interval_stat;

-- 30-minute intervals at a site offset by 45 minutes from UTC keep their local boundaries
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('KTM1', 'acme', 'Kathmandu', 'Asia/Kathmandu', 'std');
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('KTM1', 'billing', 'collab', '2026-03-02 09:30+05:45', 30, 10, 8, 5, 20);

-- the inbox keeps going: good rows land, bad rows are quarantined with the reason
COPY evmgmt.interval_inbox FROM stdin WITH (FORMAT csv);
MNL1,billing,spec,2026-03-02 09:15+08,15,100,95,5,80,20,310,38,40,102,300
MNL1,billing,spec,2026-03-02 09:30+08,15,100,101,0,80,20,310,38,40,102,300
NOPE,billing,spec,2026-03-02 09:30+08,15,100,90,0,80,20,310,38,40,102,300
MNL1,billing,spec,2026-03-02 09:45+08,fifteen,100,90,0,80,20,310,38,40,102,300
MNL1,billing,spec,2026-03-02 09:45+08,15,100,90,10,80,20,310,38,40,102,300
\.
SELECT count(*) AS inbox_rows_kept FROM evmgmt.interval_inbox;
SELECT site_id, interval_start AT TIME ZONE 'Asia/Manila' AS local_start, offered, handled
FROM evmgmt.interval_stat ORDER BY site_id, interval_start;
SELECT row_data ->> 'site_id' AS site, row_data ->> 'interval_minutes' AS minutes, sqlstate, constraint_name, reason
FROM evmgmt.interval_quarantine ORDER BY quarantine_id;
