-- The pool-aware event lifecycle: every legal and illegal transition per pool
-- (table-driven, checked against the C transition table), prerequisites,
-- roll-up, reclassification, analysis before close, recurrence, reopen
-- window, the guard on event tables, privileges and the SLA clocks.
\set VERBOSITY terse
DROP EXTENSION evmgmt;
CREATE EXTENSION evmgmt;
SET timezone = 'UTC';

INSERT INTO evmgmt.operation VALUES ('acme', 'Acme'), ('other', 'Other Co');
INSERT INTO evmgmt.calendar VALUES ('de', 'Germany office hours');
INSERT INTO evmgmt.calendar_hours SELECT 'de', d, '09:00', '17:00' FROM generate_series(1, 5) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES
	('BER', 'acme', 'Berlin', 'Europe/Berlin', 'de'), ('OTH', 'other', 'Elsewhere', 'Europe/Berlin', 'de');
INSERT INTO evmgmt.queue (queue_id, operation_id, name) VALUES
	('billing', 'acme', 'Billing'), ('sales', 'acme', 'Sales'), ('oq', 'other', 'Other queue');

-- The SQLSTATE, message and hint of a failing statement (its detail may
-- carry a timestamp, so it is left out).
CREATE FUNCTION pg_temp.err(cmd text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_state text;
	v_msg text;
	v_hint text;
BEGIN
	EXECUTE cmd;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT, v_hint = PG_EXCEPTION_HINT;
	RETURN v_state || ': ' || v_msg || ' / ' || v_hint;
END
$$;

-- The transition table compiled into C, as the view shows it for one pool.
SELECT from_state, action, to_state, via FROM evmgmt.lifecycle_transitions WHERE pool = 'spec';
SELECT pool, count(*) FROM evmgmt.lifecycle_transitions GROUP BY pool ORDER BY pool;

------------------------------------------------------------------------------
-- Table-driven: for every pool, every state, every action, on a fresh event
-- whose condition in that pool is in that state (and whose other pool is
-- classified sev3), try the action and compare with the table.
------------------------------------------------------------------------------

-- An event with pool p in state st; its other pool is classified sev3.
CREATE FUNCTION pg_temp.event_in(p evmgmt.pool, st text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	e bigint;
	other evmgmt.pool := CASE WHEN p = 'aa' THEN 'spec' ELSE 'aa' END;
BEGIN
	e := evmgmt.open_event('system', 'BER', ARRAY[p, other], 'rule', 'table test',
						   '2025-06-02 10:00+02', 'billing', 'router_failure');
	PERFORM evmgmt.classify_pool(e, other, 'sev3');
	IF st = 'detected' THEN RETURN e; END IF;
	IF st = 'cancelled' THEN PERFORM evmgmt.cancel_pool(e, p, 'false positive'); RETURN e; END IF;
	PERFORM evmgmt.classify_pool(e, p, 'sev2');
	IF st = 'classified' THEN RETURN e; END IF;
	PERFORM evmgmt.diagnose_pool(e, p, 'technology', 'routing');
	IF st = 'diagnosed' THEN RETURN e; END IF;
	PERFORM evmgmt.log_response(e, p, 'routing_change');
	IF st = 'responding' THEN RETURN e; END IF;
	PERFORM evmgmt.resolve_pool(e, p);
	RETURN e;
END
$$;

-- Try one action on pool p of event e: the new state or the error, the
-- error hint, how many timeline rows it added for p, and whether the other
-- pool is exactly as it was.
CREATE FUNCTION pg_temp.try(e bigint, p evmgmt.pool, act text,
							OUT outcome text, OUT hint text, OUT timeline_rows bigint, OUT other_untouched boolean)
LANGUAGE plpgsql AS $$
DECLARE
	other evmgmt.pool := CASE WHEN p = 'aa' THEN 'spec' ELSE 'aa' END;
	before_other jsonb;
	before_rows bigint;
	v_state text;
BEGIN
	SELECT to_jsonb(pc) INTO before_other FROM evmgmt.pool_condition pc WHERE event_id = e AND pool = other;
	SELECT count(*) INTO before_rows FROM evmgmt.event_timeline WHERE event_id = e AND pool = p;
	BEGIN
		CASE act
			WHEN 'classify' THEN PERFORM evmgmt.classify_pool(e, p, 'sev3');
			WHEN 'reclassify' THEN PERFORM evmgmt.reclassify_pool(e, p, 'sev3', 'signal recovered');
			WHEN 'diagnose' THEN PERFORM evmgmt.diagnose_pool(e, p, 'technology', 'it_escalation');
			WHEN 'respond' THEN PERFORM evmgmt.log_response(e, p, 'outage_message');
			WHEN 'resolve' THEN PERFORM evmgmt.resolve_pool(e, p);
			WHEN 'cancel' THEN PERFORM evmgmt.cancel_pool(e, p, 'false positive');
			WHEN 'reopen' THEN PERFORM evmgmt.reopen_pool(e, p, 'came back');
		END CASE;
		SELECT state::text INTO outcome FROM evmgmt.pool_condition WHERE event_id = e AND pool = p;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, hint = PG_EXCEPTION_HINT;
		outcome := 'ERROR ' || v_state;
	END;
	SELECT count(*) - before_rows INTO timeline_rows FROM evmgmt.event_timeline WHERE event_id = e AND pool = p;
	SELECT to_jsonb(pc) = before_other INTO other_untouched FROM evmgmt.pool_condition pc WHERE event_id = e AND pool = other;
END
$$;

CREATE TEMP TABLE outcome AS
SELECT p.pool, s.st AS from_state, s.so, a.act, a.ao, (pg_temp.try(pg_temp.event_in(p.pool, s.st), p.pool, a.act)).*
FROM unnest(enum_range(NULL::evmgmt.pool)) AS p(pool)
CROSS JOIN (VALUES ('detected', 1), ('classified', 2), ('diagnosed', 3), ('responding', 4),
				   ('resolved', 5), ('cancelled', 6)) AS s(st, so)
CROSS JOIN (VALUES ('classify', 1), ('reclassify', 2), ('diagnose', 3), ('respond', 4),
				   ('resolve', 5), ('cancel', 6), ('reopen', 7)) AS a(act, ao)
ORDER BY 1, 3, 5;

-- Every (pool, state, action): what happened, what the table says, and
-- whether they agree (a legal move lands in the table's state and writes one
-- timeline row; an illegal one fails with 55000 and writes none), the other
-- pool untouched either way.
SELECT o.pool, o.from_state, o.act, o.outcome, t.to_state AS table_says,
	   o.outcome = COALESCE(t.to_state::text, 'ERROR 55000')
	   AND o.timeline_rows = CASE WHEN t.to_state IS NULL THEN 0 ELSE 1 END
	   AND o.other_untouched AS agrees
FROM outcome o
LEFT JOIN evmgmt.lifecycle_transitions t ON t.pool = o.pool AND t.from_state::text = o.from_state AND t.action = o.act
ORDER BY o.pool, o.so, o.ao;
SELECT count(*) AS cases, count(*) FILTER (WHERE outcome NOT LIKE 'ERROR%') AS legal,
	   count(*) FILTER (WHERE outcome LIKE 'ERROR%') AS illegal
FROM outcome;
-- The hint of every refusal lists the legal next states of the state it was in.
SELECT DISTINCT so, from_state, hint FROM outcome WHERE outcome LIKE 'ERROR%' ORDER BY so;

------------------------------------------------------------------------------
-- Opening an event
------------------------------------------------------------------------------
\set VERBOSITY default
SELECT evmgmt.open_event('system', 'BER', '{}', 'rule', 'no pools');
SELECT evmgmt.open_event('system', 'BER', '{aa,aa}', 'rule', 'twice');
SELECT evmgmt.open_event('system', 'NOPE', '{aa}', 'rule', 'unknown site');
SELECT evmgmt.open_event('system', 'BER', '{aa}', 'rule', 'wrong queue', queue_id => 'oq');
SELECT evmgmt.open_event('system', 'BER', '{aa}', 'rule', '  ');
\set VERBOSITY terse
SELECT evmgmt.open_event('system', 'BER', '{aa}', 'rule', 'future', detected_at => now() + interval '1 hour');
SELECT evmgmt.open_event('system', 'BER', '{aa}', 'rule', 'forever ago', detected_at => '-infinity');
SELECT evmgmt.open_event('system', 'BER', '{aa}', 'rule', 'subtype of another type', subtype => 'volume_spike');
SELECT evmgmt.open_event('system', 'BER', '{aa}', 'nosuch', 'unknown source');

-- One multi-pool event: aa, collab and spec, each with its own severity and state.
SELECT evmgmt.open_event('system', 'BER', '{spec,aa,collab}', 'monitoring', 'Router outage',
						 '2025-06-02 10:00+02', 'billing', 'router_failure') AS e \gset
SELECT pool, severity, state FROM evmgmt.pool_condition WHERE event_id = :e ORDER BY pool;
SELECT evmgmt.classify_pool(:e, 'aa', 'sev1'), evmgmt.classify_pool(:e, 'spec', 'sev3');
-- roll-up: the most severe live pool, the least advanced live state
SELECT floor_severity, state, pools, severities FROM evmgmt.event_rollup WHERE event_id = :e;
SELECT pool, severity, state, response_due, resolution_due FROM evmgmt.pool_condition WHERE event_id = :e ORDER BY pool;

-- A pool can join an open event later (one it already has is refused).
SELECT evmgmt.open_event('demand', 'BER', '{spec}', 'rule', 'Spreading surge', '2025-06-02 10:00+02') AS g \gset
SELECT evmgmt.add_pool(:g, 'collab', 'supervisors overloaded too');
SELECT evmgmt.add_pool(:g, 'spec');
SELECT evmgmt.add_pool(:g, NULL);
SELECT pool, state FROM evmgmt.pool_condition WHERE event_id = :g ORDER BY pool;
SELECT action, pool, to_state, reason FROM evmgmt.event_timeline WHERE event_id = :g ORDER BY entry_id;

-- Reclassification needs a reason and a different tier; it changes one pool only.
\set VERBOSITY default
SELECT evmgmt.reclassify_pool(:e, 'spec', 'sev2', NULL);
SELECT evmgmt.reclassify_pool(:e, 'spec', 'sev3', 'no change');
\set VERBOSITY terse
CREATE TEMP TABLE aa_before AS SELECT to_jsonb(pc) AS r FROM evmgmt.pool_condition pc WHERE event_id = :e AND pool = 'aa';
SELECT evmgmt.reclassify_pool(:e, 'spec', 'sev2', 'service collapsed for an hour');
SELECT (SELECT r FROM aa_before) = to_jsonb(pc) AS aa_untouched FROM evmgmt.pool_condition pc WHERE event_id = :e AND pool = 'aa';
-- due times recomputed from the same clock start (detection) with the new tier
SELECT pool, severity, response_due, resolution_due FROM evmgmt.pool_condition WHERE event_id = :e AND pool = 'spec';

-- Diagnosis needs a cause category and a lever class from the catalogues.
\set VERBOSITY default
SELECT evmgmt.diagnose_pool(:e, 'aa', NULL, 'it_escalation');
SELECT evmgmt.diagnose_pool(:e, 'aa', 'gremlins', 'it_escalation');
SELECT evmgmt.diagnose_pool(:e, 'aa', 'technology', 'prayer');
SELECT evmgmt.diagnose_pool(:e, 'collab', 'technology', 'it_escalation');
SELECT evmgmt.diagnose_pool(:e, 'nosuch', 'technology', 'it_escalation');
\set VERBOSITY terse
SELECT evmgmt.diagnose_pool(:e, 'aa', 'technology', 'it_escalation', 'core router crashed');
SELECT evmgmt.diagnose_pool(:e, 'spec', 'technology', 'routing', 'calls not reaching agents');

-- A response needs a lever the catalogue allows for the pool and event type.
\set VERBOSITY default
SELECT evmgmt.log_response(:e, 'aa', 'overtime');
SELECT evmgmt.log_response(:e, 'aa', 'magic');
SELECT evmgmt.log_response(:e, 'aa', NULL);
\set VERBOSITY terse
SELECT evmgmt.log_response(:e, 'aa', 'it_escalation', 'P1 ticket with network team') > 0 AS logged;
SELECT evmgmt.log_response(:e, 'aa', 'deflect_to_humans') > 0 AS logged;
SELECT evmgmt.log_response(:e, 'spec', 'outage_message') > 0 AS logged;
SELECT pool, lever FROM evmgmt.response_action WHERE event_id = :e ORDER BY action_id;
SELECT pool, state, first_response_at IS NOT NULL AS responded FROM evmgmt.pool_condition WHERE event_id = :e ORDER BY pool;

-- Resolving the whole event resolves every live pool, all or none: collab
-- is still detected, so nothing changes.
\set VERBOSITY default
SELECT evmgmt.resolve_event(:e, 'router replaced');
\set VERBOSITY terse
SELECT pool, state FROM evmgmt.pool_condition WHERE event_id = :e ORDER BY pool;
-- collab turns out to be a false positive for that pool
SELECT evmgmt.cancel_pool(:e, 'collab', 'collab queue was closed for the day');
\set VERBOSITY default
SELECT evmgmt.close_event(:e);
SELECT evmgmt.cancel_event(:e, 'not real');
\set VERBOSITY terse
SELECT evmgmt.resolve_event(:e, 'router replaced');
SELECT floor_severity, state FROM evmgmt.event_rollup WHERE event_id = :e;
SELECT evmgmt.resolve_event(:e, 'again');

-- Closing a sev1 needs a complete post-resolution analysis: root cause and
-- action plan, at least one action item, an impact row for each objective.
\set VERBOSITY default
SELECT evmgmt.close_event(:e);
SELECT evmgmt.add_action_item(:e, 'Redundant router', 'IT', '2025-07-01');
SELECT evmgmt.record_analysis(:e, '', 'plan');
\set VERBOSITY terse
SELECT evmgmt.record_analysis(:e, 'Core router firmware bug', 'Upgrade firmware; add a hot standby',
							  '{"no standby router","alert routed to a shared mailbox"}', 'No detector on router heartbeat');
\set VERBOSITY default
SELECT evmgmt.close_event(:e);
\set VERBOSITY terse
SELECT evmgmt.add_action_item(:e, 'Install a hot standby router', 'IT infrastructure', '2025-07-01') AS item \gset
SELECT evmgmt.record_objective_impact(:e, 'service_level', 'degraded', -45, 'points SL', 'two hours at 0%');
SELECT evmgmt.record_objective_impact(:e, 'cost', 'degraded', 12000, 'EUR');
SELECT evmgmt.record_objective_impact(:e, 'customer_experience', 'degraded');
SELECT evmgmt.record_objective_impact(:e, 'agent_experience', 'neutral');
SELECT evmgmt.analysis_gaps(:e), evmgmt.analysis_complete(:e);
SELECT evmgmt.record_objective_impact(:e, 'business_value', 'bogus');
SELECT evmgmt.record_objective_impact(:e, 'business_value', 'degraded', 3, NULL);
SELECT evmgmt.record_objective_impact(:e, 'business_value', 'degraded', 3, 'lost sales');
SELECT evmgmt.analysis_gaps(:e), evmgmt.analysis_complete(:e);
SELECT evmgmt.complete_action_item(:item);
SELECT evmgmt.complete_action_item(:item);
SELECT evmgmt.complete_action_item(-1);
SELECT evmgmt.close_event(:e);
SELECT floor_severity, state, closed_at IS NOT NULL AS closed FROM evmgmt.event_rollup WHERE event_id = :e;
SELECT closed_by = session_user AS closed_by_session_user FROM evmgmt.event WHERE event_id = :e;

-- A closed event refuses pool moves; the hint names the way back.
SELECT pg_temp.err(format($$SELECT evmgmt.log_response(%s, 'aa', 'it_escalation')$$, :e));
SELECT pg_temp.err(format($$SELECT evmgmt.close_event(%s)$$, :e));
SELECT pg_temp.err(format($$SELECT evmgmt.reopen_pool(%s, 'aa', 'back')$$, :e));

-- The whole timeline of the event, in order, with actor = session_user.
SELECT action, pool, from_state, to_state, from_severity, to_severity, lever, reason,
	   details - 'action_id' - 'action_item' - 'response_due' - 'resolution_due' AS details
FROM evmgmt.event_timeline WHERE event_id = :e ORDER BY entry_id;
SELECT count(*) AS entries, bool_and(actor = session_user) AS actor_is_session_user,
	   bool_and(at IS NOT NULL) AS stamped
FROM evmgmt.event_timeline WHERE event_id = :e;

------------------------------------------------------------------------------
-- Reopen within the recurrence window (evmgmt.recurrence_window)
------------------------------------------------------------------------------
SHOW evmgmt.recurrence_window;
SET evmgmt.recurrence_window = 0;
SELECT pg_temp.err(format($$SELECT evmgmt.reopen_event(%s, 'it came back')$$, :e));
RESET evmgmt.recurrence_window;
SELECT evmgmt.reopen_event(:e, 'it came back', '{spec}');
SELECT pool, state, resolved_at IS NULL AS unresolved FROM evmgmt.pool_condition WHERE event_id = :e ORDER BY pool;
SELECT floor_severity, state, closed_at FROM evmgmt.event_rollup WHERE event_id = :e;
SELECT evmgmt.reopen_event(:e, 'again');
-- a resolved pool of an open event reopens with reopen_pool
SELECT evmgmt.log_response(:e, 'spec', 'routing_change') > 0 AS logged;
SELECT evmgmt.resolve_pool(:e, 'spec');
SET evmgmt.recurrence_window = 0;
SELECT evmgmt.reopen_pool(:e, 'spec', 'flapping');
SET evmgmt.recurrence_window = '1h';
SELECT evmgmt.reopen_pool(:e, 'spec', 'flapping');
RESET evmgmt.recurrence_window;
SELECT evmgmt.reopen_pool(:e, 'aa', '');
SELECT evmgmt.reopen_event(:e, 'not closed');

------------------------------------------------------------------------------
-- Recurrence: same type, site, queue and cause within the window
------------------------------------------------------------------------------
-- a sev2 that was diagnosed 'people', resolved and closed without analysis
SELECT evmgmt.open_event('capacity', 'BER', '{spec}', 'rule', 'Staffing shortfall', now() - interval '3 hours', 'sales') AS p1 \gset
SELECT evmgmt.classify_pool(:p1, 'spec', 'sev2'), evmgmt.diagnose_pool(:p1, 'spec', 'people', 'schedule_adjustment');
SELECT evmgmt.log_response(:p1, 'spec', 'overtime') > 0, evmgmt.resolve_pool(:p1, 'spec'), evmgmt.close_event(:p1);
-- it comes back: linked at diagnosis; as a recurring sev2 it needs an analysis to close
SELECT evmgmt.open_event('capacity', 'BER', '{spec}', 'rule', 'Staffing shortfall again', now() - interval '1 hour', 'sales') AS p2 \gset
SELECT evmgmt.classify_pool(:p2, 'spec', 'sev2'), evmgmt.diagnose_pool(:p2, 'spec', 'people', 'schedule_adjustment');
SELECT recurrence_of = :p1 AS linked_to_predecessor FROM evmgmt.event WHERE event_id = :p2;
SELECT action, reason, details ->> 'cause_category' AS cause FROM evmgmt.event_timeline WHERE event_id = :p2 AND action = 'note';
SELECT evmgmt.log_response(:p2, 'spec', 'overtime') > 0, evmgmt.resolve_pool(:p2, 'spec');
\set VERBOSITY default
SELECT evmgmt.close_event(:p2);
\set VERBOSITY terse
SELECT evmgmt.record_analysis(:p2, 'Attrition in the sales team', 'Hiring wave; cross-skill billing agents');
SELECT evmgmt.add_action_item(:p2, 'Open 10 requisitions', 'Site WFM', '2025-08-01') AS item \gset
SELECT event_id = :p2 AS same_event, description, owner, due_date, done_at FROM evmgmt.action_item WHERE item_id = :item;
SELECT evmgmt.record_objective_impact(:p2, o, 'degraded') FROM unnest(enum_range(NULL::evmgmt.objective)) o;
SELECT evmgmt.close_event(:p2);
-- not linked: another cause, another queue, another type, or outside the window
SELECT evmgmt.open_event('capacity', 'BER', '{spec}', 'rule', 'Other cause', now() - interval '1 hour', 'sales') AS p3 \gset
SELECT evmgmt.classify_pool(:p3, 'spec', 'sev2'), evmgmt.diagnose_pool(:p3, 'spec', 'demand', 'routing');
SELECT evmgmt.open_event('capacity', 'BER', '{spec}', 'rule', 'Other queue', now() - interval '1 hour', 'billing') AS p4 \gset
SELECT evmgmt.classify_pool(:p4, 'spec', 'sev2'), evmgmt.diagnose_pool(:p4, 'spec', 'people', 'schedule_adjustment');
SELECT evmgmt.open_event('demand', 'BER', '{spec}', 'rule', 'Other type', now() - interval '1 hour', 'sales') AS p5 \gset
SELECT evmgmt.classify_pool(:p5, 'spec', 'sev2'), evmgmt.diagnose_pool(:p5, 'spec', 'people', 'schedule_adjustment');
SET evmgmt.recurrence_window = 0;
SELECT evmgmt.open_event('capacity', 'BER', '{spec}', 'rule', 'Outside the window', NULL, 'sales') AS p6 \gset
SELECT evmgmt.classify_pool(:p6, 'spec', 'sev2'), evmgmt.diagnose_pool(:p6, 'spec', 'people', 'schedule_adjustment');
RESET evmgmt.recurrence_window;
SELECT title, recurrence_of IS NOT NULL AS recurring FROM evmgmt.event WHERE event_id IN (:p3, :p4, :p5, :p6) ORDER BY event_id;
-- a non-recurring sev2 closes without analysis
SELECT evmgmt.log_response(:p3, 'spec', 'routing_change') > 0, evmgmt.resolve_event(:p3), evmgmt.close_event(:p3);
-- a sev3 closes without analysis
SELECT evmgmt.reclassify_pool(:p4, 'spec', 'sev3', 'milder than thought');
SELECT evmgmt.log_response(:p4, 'spec', 'overtime') > 0, evmgmt.resolve_event(:p4), evmgmt.close_event(:p4);

------------------------------------------------------------------------------
-- Cancelling a false positive
------------------------------------------------------------------------------
SELECT evmgmt.open_event('demand', 'BER', '{aa,spec}', 'predictive', 'Predicted surge', '2025-06-02 10:00+02') AS c \gset
SELECT evmgmt.classify_pool(:c, 'spec', 'sev3');
SELECT evmgmt.cancel_event(:c, NULL);
SELECT evmgmt.cancel_event(:c, 'forecast error');
SELECT cancelled_by = session_user AS by_session_user, cancel_reason FROM evmgmt.event WHERE event_id = :c;
SELECT pool, state FROM evmgmt.pool_condition WHERE event_id = :c ORDER BY pool;
SELECT state FROM evmgmt.event_rollup WHERE event_id = :c;
SELECT pg_temp.err(format($$SELECT evmgmt.classify_pool(%s, 'aa', 'sev3')$$, :c));
SELECT pg_temp.err(format($$SELECT evmgmt.reopen_event(%s, 'x')$$, :c));
SELECT pg_temp.err(format($$SELECT evmgmt.record_analysis(%s, 'x', 'y')$$, :c));
-- an event with a response cannot be cancelled as a false positive
SELECT evmgmt.open_event('demand', 'BER', '{spec}', 'rule', 'Real surge', '2025-06-02 10:00+02') AS r \gset
SELECT evmgmt.classify_pool(:r, 'spec', 'sev3'), evmgmt.diagnose_pool(:r, 'spec', 'demand', 'routing');
SELECT evmgmt.log_response(:r, 'spec', 'callback_offer') AS rid \gset
SELECT event_id = :r AS same_event, pool, lever FROM evmgmt.response_action WHERE action_id = :rid;
SELECT evmgmt.cancel_event(:r, 'oops');
SELECT evmgmt.cancel_pool(:r, 'spec', 'oops');
SELECT evmgmt.classify_pool(-5, 'spec', 'sev3');
SELECT evmgmt.classify_pool(NULL, 'spec', 'sev3');

------------------------------------------------------------------------------
-- Clocks at fixed times (event detected Monday 2025-06-02 10:00 Berlin)
------------------------------------------------------------------------------
SELECT evmgmt.open_event('capacity', 'BER', '{aa,collab,spec}', 'rule', 'Clock test', '2025-06-02 10:00+02') AS k \gset
SELECT evmgmt.classify_pool(:k, 'aa', 'sev1'), evmgmt.classify_pool(:k, 'spec', 'sev3');
SELECT at, pool, severity, response_due, response_time_left, response_overdue_by, response_breached,
	   resolution_due, resolution_time_left, resolution_overdue_by, resolution_breached
FROM unnest(ARRAY['2025-06-02 08:03+00', '2025-06-02 08:30+00', '2025-06-02 10:00+00']::timestamptz[]) AS at,
	 LATERAL evmgmt.event_clocks(at) c
WHERE c.event_id = :k
ORDER BY at, pool;
-- a met response stops the response clock: responded now (late), so breached
SELECT evmgmt.diagnose_pool(:k, 'spec', 'people', 'schedule_adjustment'), evmgmt.log_response(:k, 'spec', 'overtime') > 0;
SELECT pool, response_time_left, response_overdue_by > interval '1 day' AS very_late, response_breached
FROM evmgmt.event_clocks('2025-06-02 08:30+00') WHERE event_id = :k AND pool = 'spec';
-- closed and cancelled events are not on the clock
SELECT count(*) AS clocks_of_closed_or_cancelled FROM evmgmt.open_event_clocks WHERE event_id IN (:c, :p1, :p2);
SELECT count(*) AS clocks_of_reopened FROM evmgmt.open_event_clocks WHERE event_id = :e;

------------------------------------------------------------------------------
-- Direct changes are refused, superuser included; INSERTs (restore) pass
------------------------------------------------------------------------------
SELECT current_setting('is_superuser') AS superuser;
UPDATE evmgmt.pool_condition SET state = 'resolved' WHERE event_id = :k;
UPDATE evmgmt.event SET title = 'x' WHERE event_id = :k;
DELETE FROM evmgmt.event WHERE event_id = :k;
SELECT count(*) AS timeline_rows FROM evmgmt.event_timeline \gset
DELETE FROM evmgmt.event_timeline WHERE event_id = :k;
UPDATE evmgmt.response_action SET lever = 'overtime';
UPDATE evmgmt.post_resolution_analysis SET root_cause = 'x';
DELETE FROM evmgmt.action_item;
DELETE FROM evmgmt.objective_impact;
TRUNCATE evmgmt.event_timeline;
SET client_min_messages = warning;
TRUNCATE evmgmt.event CASCADE;
RESET client_min_messages;
SELECT count(*) = :timeline_rows AS all_still_there FROM evmgmt.event_timeline;
INSERT INTO evmgmt.event (event_id, operation_id, site_id, event_type, detection_source, title, detected_at, opened_at, opened_by)
VALUES (100000, 'acme', 'BER', 'demand', 'rule', 'restored', '2025-01-01', '2025-01-01', 'someone');
INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, opened_at, classified_at, resolved_at)
VALUES (100000, 'spec', 'sev3', 'resolved', '2025-01-01', '2025-01-01', '2025-01-02');
INSERT INTO evmgmt.event_timeline (event_id, pool, at, actor, action) VALUES (100000, 'spec', '2025-01-01', 'someone', 'opened');
SELECT state FROM evmgmt.event_rollup WHERE event_id = 100000;

------------------------------------------------------------------------------
-- Privileges: lifecycle functions are for responders (and admins) only
------------------------------------------------------------------------------
SELECT r.rolname, bool_and(has_function_privilege(r.rolname, p.oid, 'EXECUTE')) AS can_run_lifecycle
FROM pg_roles r
CROSS JOIN pg_proc p
WHERE r.rolname IN ('evmgmt_admin', 'evmgmt_responder', 'evmgmt_reader', 'evmgmt_ingest')
  AND p.pronamespace = 'evmgmt'::regnamespace
  AND p.proname IN ('open_event', 'add_pool', 'classify_pool', 'reclassify_pool', 'diagnose_pool', 'log_response',
					'resolve_pool', 'resolve_event', 'cancel_pool', 'cancel_event', 'reopen_pool',
					'reopen_event', 'record_analysis', 'add_action_item', 'complete_action_item',
					'record_objective_impact', 'close_event')
GROUP BY r.rolname ORDER BY 1;
SELECT count(*) AS lifecycle_functions, bool_and(prosecdef) AS security_definer,
	   bool_and(proconfig @> '{"search_path=pg_catalog, pg_temp"}') AS search_path_pinned
FROM pg_proc WHERE pronamespace = 'evmgmt'::regnamespace
  AND proname IN ('open_event', 'add_pool', 'classify_pool', 'reclassify_pool', 'diagnose_pool', 'log_response',
				  'resolve_pool', 'resolve_event', 'cancel_pool', 'cancel_event', 'reopen_pool',
				  'reopen_event', 'record_analysis', 'add_action_item', 'complete_action_item',
				  'record_objective_impact', 'close_event');
SELECT count(*) AS clocks FROM evmgmt.open_event_clocks \gset
SET ROLE evmgmt_reader;
SELECT evmgmt.open_event('demand', 'BER', '{spec}', 'rule', 'reader tries');
SELECT count(*) AS reader_sees_clocks, count(*) = :clocks AS as_many_as_the_owner FROM evmgmt.open_event_clocks;
SET ROLE evmgmt_responder;
SELECT evmgmt.open_event('demand', 'BER', '{spec}', 'rule', 'responder opens', '2025-06-02 10:00+02') AS q \gset
SELECT evmgmt.classify_pool(:q, 'spec', 'sev4');
UPDATE evmgmt.pool_condition SET severity = 'sev1' WHERE event_id = :q;
RESET ROLE;
SELECT actor = session_user AS actor_is_session_user, count(*) FROM evmgmt.event_timeline WHERE event_id = :q GROUP BY 1;

------------------------------------------------------------------------------
-- The lifecycle functions keep prepared statements for the session; they
-- still work after the extension is dropped and created again.
------------------------------------------------------------------------------
DROP EXTENSION evmgmt CASCADE;
CREATE EXTENSION evmgmt;
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme');
INSERT INTO evmgmt.calendar VALUES ('de', 'Germany office hours');
INSERT INTO evmgmt.calendar_hours SELECT 'de', d, '09:00', '17:00' FROM generate_series(1, 5) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'acme', 'Berlin', 'Europe/Berlin', 'de');
SELECT evmgmt.open_event('system', 'BER', '{aa}', 'rule', 'after re-creation', '2025-06-02 10:00+02') AS n \gset
SELECT evmgmt.classify_pool(:n, 'aa', 'sev3'), evmgmt.diagnose_pool(:n, 'aa', 'technology', 'it_escalation'),
	   evmgmt.log_response(:n, 'aa', 'it_escalation'), evmgmt.resolve_event(:n), evmgmt.close_event(:n);
SELECT pool, severity, state, response_due, resolution_due FROM evmgmt.pool_condition WHERE event_id = :n;
