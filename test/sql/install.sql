-- CREATE, DROP and CREATE again in one session; the extension's objects are all there.
\set VERBOSITY terse
SELECT extversion FROM pg_extension WHERE extname = 'evmgmt';
DROP EXTENSION evmgmt;
SELECT count(*) AS leftover_objects FROM pg_class WHERE relnamespace = 'evmgmt'::regnamespace;
CREATE EXTENSION evmgmt;
SELECT extversion FROM pg_extension WHERE extname = 'evmgmt';
-- roles exist, without login (but the workers' role, which has no password)
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'evmgmt\_%' ORDER BY 1;
-- reference data is in place
SELECT severity, sl_threshold, sustain_minutes, response_target, resolution_target, business_time, status_cadence
FROM evmgmt.severity_policy_default ORDER BY severity;
SELECT event_type, count(*) FROM evmgmt.event_subtype GROUP BY 1 ORDER BY 1;
SELECT pool, count(DISTINCT lever) FROM evmgmt.lever_applicability GROUP BY 1 ORDER BY 1;
