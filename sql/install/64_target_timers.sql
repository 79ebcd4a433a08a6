-- Response and resolution target timers of the pool conditions: kept in
-- step with pool_condition by a trigger on it (the one trigger of the engine
-- on another file's table: the timers follow the condition), warning before
-- and escalating at the breach.

-- Response and resolution timers of the pool conditions.
CREATE TABLE evmgmt.target_timer (
	event_id		bigint NOT NULL,
	pool			evmgmt.pool NOT NULL,
	target			text NOT NULL CHECK (target IN ('response', 'resolution')),
	due_at			timestamptz NOT NULL,
	warn_at			timestamptz NOT NULL,
	warned_at		timestamptz,
	breached_at		timestamptz,
	met_at			timestamptz,
	next_at			timestamptz,
	escalation_id	bigint REFERENCES evmgmt.escalation ON DELETE SET NULL,
	PRIMARY KEY (event_id, pool, target),
	FOREIGN KEY (event_id, pool) REFERENCES evmgmt.pool_condition ON DELETE CASCADE,
	CONSTRAINT target_timer_warn_not_after_due CHECK (warn_at <= due_at)
);
CREATE INDEX target_timer_due_idx ON evmgmt.target_timer (next_at) WHERE next_at IS NOT NULL;
COMMENT ON TABLE evmgmt.target_timer IS 'Live response and resolution timers of each pool condition (from pool_condition.response_due / resolution_due): warning before the breach, escalation at the breach';
COMMENT ON COLUMN evmgmt.target_timer.next_at IS 'When the timer next needs attention: warn_at until warned, then due_at; NULL once met or breached';

-- Keep the target timers of a pool condition in step with its due times and
-- state.  Nothing is done while evmgmt.restoring is on.
CREATE FUNCTION evmgmt.target_timer_sync() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_lead interval := evmgmt.setting_interval('evmgmt.target_warning_lead', interval '10 minutes');
	-- the lifecycle counts targets from the detection; the condition opened then
	v_base timestamptz := NEW.opened_at;
	v_live boolean := NEW.state NOT IN ('resolved', 'cancelled');
	v_target text;
	v_due timestamptz;
	v_met boolean;
BEGIN
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN NULL;
	END IF;
	FOREACH v_target IN ARRAY ARRAY['response', 'resolution'] LOOP
		v_due := CASE v_target WHEN 'response' THEN NEW.response_due ELSE NEW.resolution_due END;
		v_met := NOT v_live OR (v_target = 'response' AND NEW.first_response_at IS NOT NULL);
		IF v_due IS NULL THEN
			DELETE FROM evmgmt.target_timer
			WHERE event_id = NEW.event_id AND pool = NEW.pool AND target = v_target AND breached_at IS NULL;
			CONTINUE;
		END IF;
		INSERT INTO evmgmt.target_timer AS t (event_id, pool, target, due_at, warn_at, met_at)
		VALUES (NEW.event_id, NEW.pool, v_target, v_due,
				v_due - LEAST(v_lead, GREATEST(v_due - v_base, interval '0') / 2),
				CASE WHEN v_met THEN COALESCE(CASE v_target WHEN 'response' THEN NEW.first_response_at END,
											  NEW.resolved_at, pg_catalog.clock_timestamp()) END)
		ON CONFLICT (event_id, pool, target) DO UPDATE
		SET due_at = EXCLUDED.due_at, warn_at = EXCLUDED.warn_at,
			warned_at = CASE WHEN EXCLUDED.due_at > t.due_at THEN NULL ELSE t.warned_at END,
			-- a response stays met (an acknowledgment counts too); a resolution
			-- only while the condition is over (a reopened one runs again)
			met_at = CASE WHEN v_target = 'resolution' AND v_live THEN NULL ELSE COALESCE(t.met_at, EXCLUDED.met_at) END
		WHERE t.breached_at IS NULL;
		UPDATE evmgmt.target_timer t
		SET next_at = CASE WHEN t.met_at IS NOT NULL OR t.breached_at IS NOT NULL THEN NULL
						   WHEN t.warned_at IS NULL AND t.warn_at < t.due_at THEN t.warn_at
						   ELSE t.due_at END
		WHERE t.event_id = NEW.event_id AND t.pool = NEW.pool AND t.target = v_target;
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.target_timer_sync() IS 'Trigger: keeps target_timer in step with pool_condition.response_due, resolution_due, first_response_at and state';
-- UPDATE only: the lifecycle sets due times by updating a condition it
-- inserted as detected, while a restore (plain or not) only inserts and
-- brings the timers along in its own COPY of target_timer.
CREATE TRIGGER target_timer_sync AFTER UPDATE OF response_due, resolution_due, first_response_at, state, classified_at
	ON evmgmt.pool_condition FOR EACH ROW EXECUTE FUNCTION evmgmt.target_timer_sync();

-- A target timer is due: warn before the breach, escalate at the breach.
CREATE FUNCTION evmgmt.target_timer_fire(p_event_id bigint, p_pool evmgmt.pool, p_target text, p_now timestamptz) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t evmgmt.target_timer;
	pc evmgmt.pool_condition;
	v_op text;
	v_tz text;
	v_esc bigint;
	v_ids bigint[];
	v_vars jsonb;
BEGIN
	SELECT * INTO t FROM evmgmt.target_timer x WHERE x.event_id = p_event_id AND x.pool = p_pool AND x.target = p_target;
	SELECT * INTO pc FROM evmgmt.pool_condition x WHERE x.event_id = p_event_id AND x.pool = p_pool;
	IF pc.state IN ('resolved', 'cancelled') OR (p_target = 'response' AND pc.first_response_at IS NOT NULL) THEN
		UPDATE evmgmt.target_timer x SET met_at = p_now, next_at = NULL
		WHERE x.event_id = p_event_id AND x.pool = p_pool AND x.target = p_target;
		RETURN;
	END IF;
	SELECT e.operation_id, s.time_zone INTO v_op, v_tz
	FROM evmgmt.event e JOIN evmgmt.site s ON s.site_id = e.site_id WHERE e.event_id = p_event_id;
	SELECT COALESCE(pg_catalog.array_agg(x.escalation_id), '{}') INTO v_ids
	FROM evmgmt.escalation x WHERE x.event_id = p_event_id AND x.pool = p_pool;
	v_vars := evmgmt.event_facts(p_event_id) || pg_catalog.jsonb_build_object(
		'target', p_target, 'pool', p_pool,
		'due', pg_catalog.to_char(t.due_at AT TIME ZONE v_tz, 'YYYY-MM-DD HH24:MI') || ' ' || v_tz,
		'due_at', t.due_at,
		'remaining', pg_catalog.ceil(GREATEST(pg_catalog.date_part('epoch', t.due_at - p_now), 0) / 60) || ' min');

	IF t.warned_at IS NULL AND p_now < t.due_at THEN
		-- the responders paged so far and the tier's open/status audiences
		PERFORM evmgmt.notify_audiences(p_event_id,
			evmgmt.footprint_audiences(v_op, pc.severity, 'open') || evmgmt.footprint_audiences(v_op, pc.severity, 'status'),
			'target_warning', v_vars, p_now, v_ids);
		UPDATE evmgmt.target_timer x SET warned_at = p_now, next_at = x.due_at
		WHERE x.event_id = p_event_id AND x.pool = p_pool AND x.target = p_target;
		RETURN;
	END IF;

	INSERT INTO evmgmt.event_timeline (event_id, pool, at, action, reason, details)
	VALUES (p_event_id, p_pool, p_now, 'note', p_target || ' target breached',
			pg_catalog.jsonb_build_object('target', p_target, 'due_at', t.due_at, 'warned_at', t.warned_at));
	v_esc := evmgmt.escalation_start(p_event_id, p_pool, p_target || '_breach', p_now);
	IF v_esc IS NULL THEN
		-- no plan for breaches: never silent, tell the same people as the warning
		PERFORM evmgmt.notify_audiences(p_event_id,
			evmgmt.footprint_audiences(v_op, pc.severity, 'open') || evmgmt.footprint_audiences(v_op, pc.severity, 'status'),
			'target_breach', v_vars, p_now, v_ids);
	END IF;
	UPDATE evmgmt.target_timer x SET breached_at = p_now, next_at = NULL, escalation_id = v_esc
	WHERE x.event_id = p_event_id AND x.pool = p_pool AND x.target = p_target;
END
$$;
COMMENT ON FUNCTION evmgmt.target_timer_fire(bigint, evmgmt.pool, text, timestamptz) IS 'Handles a due target timer: the warning before the breach, and at the breach a timeline note and an escalation of its own (response_breach / resolution_breach)';
