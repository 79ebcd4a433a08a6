-- Escalation plans and their steps: validation at commit, the snapshot an
-- escalation keeps, and the schedule of step k of cycle c.

CREATE TABLE evmgmt.escalation_plan (
	plan_id			text PRIMARY KEY CHECK (plan_id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	name			text NOT NULL CHECK (name <> ''),
	operation_id	text REFERENCES evmgmt.operation ON DELETE CASCADE,
	severities		evmgmt.severity[],
	event_types		evmgmt.event_type[],
	site_ids		text[],
	pools			evmgmt.pool[],
	priority		integer NOT NULL DEFAULT 100,
	start_reasons	text[] CONSTRAINT escalation_plan_start_reasons_known CHECK (start_reasons <@ ARRAY['opened', 'upgraded', 'response_breach', 'resolution_breach', 'status_overdue', 'manual']),
	repeat_from_step integer CHECK (repeat_from_step >= 1),
	require_all_ack	boolean NOT NULL DEFAULT false,
	active			boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE evmgmt.escalation_plan IS 'An escalation plan and the events it applies to (NULL criteria match anything); the matching active plan with the lowest priority number wins';
COMMENT ON COLUMN evmgmt.escalation_plan.repeat_from_step IS 'After the last step, start again from this step until acknowledged (NULL: stop after the last step)';
COMMENT ON COLUMN evmgmt.escalation_plan.start_reasons IS 'Why an escalation starts for the plan to apply: opened, upgraded, response_breach, resolution_breach, status_overdue, manual (NULL: any)';
COMMENT ON COLUMN evmgmt.escalation_plan.require_all_ack IS 'When true, every paged responder must acknowledge before the escalation stops';

CREATE TABLE evmgmt.escalation_step (
	plan_id			text NOT NULL REFERENCES evmgmt.escalation_plan ON DELETE CASCADE,
	step_no			integer NOT NULL CHECK (step_no >= 1),
	delay			interval NOT NULL CONSTRAINT escalation_step_delay_not_negative CHECK (delay >= interval '0'),
	channel			evmgmt.channel NOT NULL,
	target_kind		text NOT NULL CHECK (target_kind IN ('contact', 'group', 'rota', 'endpoint')),
	contact_id		bigint REFERENCES evmgmt.contact,
	group_id		text REFERENCES evmgmt.contact_group,
	rota_id			text REFERENCES evmgmt.rota,
	provider_id		text REFERENCES evmgmt.channel_provider,
	days_of_week	smallint[] CHECK (days_of_week <@ '{1,2,3,4,5,6,7}'::smallint[]),
	working_hours_only boolean NOT NULL DEFAULT false,
	hold_until_window boolean NOT NULL DEFAULT false,
	time_basis		text NOT NULL DEFAULT 'site' CHECK (time_basis IN ('site', 'recipient')),
	voice_retries	smallint NOT NULL DEFAULT 0 CHECK (voice_retries BETWEEN 0 AND 10),
	PRIMARY KEY (plan_id, step_no),
	CONSTRAINT escalation_step_one_target CHECK (
		(target_kind = 'contact') = (contact_id IS NOT NULL) AND (target_kind = 'group') = (group_id IS NOT NULL) AND
		(target_kind = 'rota') = (rota_id IS NOT NULL) AND (target_kind <> 'endpoint' OR provider_id IS NOT NULL)),
	CONSTRAINT escalation_step_endpoint_is_webhook CHECK ((target_kind = 'endpoint') = (channel = 'webhook'))
);
COMMENT ON TABLE evmgmt.escalation_step IS 'Ordered steps of a plan: step k fires at the escalation start plus the sum of the delays of steps 1..k';

-- A plan that repeats must repeat something that takes time, or it would page
-- without pause.  Checked at commit so that steps can be edited in any order.
CREATE FUNCTION evmgmt.escalation_plan_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_plan text := CASE WHEN TG_OP = 'DELETE' THEN OLD.plan_id ELSE NEW.plan_id END;
	p record;
	v_steps integer;
	v_cycle interval;
BEGIN
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN NULL;
	END IF;
	SELECT * INTO p FROM evmgmt.escalation_plan WHERE plan_id = v_plan;
	IF NOT FOUND OR p.repeat_from_step IS NULL THEN
		RETURN NULL;
	END IF;
	SELECT pg_catalog.count(*), pg_catalog.sum(s.delay) INTO v_steps, v_cycle
	FROM evmgmt.escalation_step s WHERE s.plan_id = v_plan AND s.step_no >= p.repeat_from_step;
	IF v_steps > 0 AND v_cycle <= interval '0' THEN
		RAISE EXCEPTION 'repeat cycle of escalation plan "%" takes no time', v_plan
			USING ERRCODE = 'check_violation',
				  DETAIL = pg_catalog.format('The steps from step %s on have a total delay of zero, so the plan would repeat them without pause.', p.repeat_from_step),
				  HINT = 'Give one of the repeated steps a delay, or set repeat_from_step to NULL.';
	END IF;
	IF EXISTS (SELECT FROM evmgmt.escalation_step s WHERE s.plan_id = v_plan) AND v_steps = 0 THEN
		RAISE EXCEPTION 'escalation plan "%" repeats from step % but has no such step', v_plan, p.repeat_from_step
			USING ERRCODE = 'check_violation',
				  HINT = 'Set repeat_from_step to the number of an existing step.';
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.escalation_plan_check() IS 'Constraint trigger: a repeating plan must repeat from an existing step and its repeated steps must take time';
CREATE CONSTRAINT TRIGGER escalation_plan_check AFTER INSERT OR UPDATE ON evmgmt.escalation_plan
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION evmgmt.escalation_plan_check();
CREATE CONSTRAINT TRIGGER escalation_plan_check AFTER INSERT OR UPDATE OR DELETE ON evmgmt.escalation_step
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION evmgmt.escalation_plan_check();

-- The plan as it is now, for escalation.plan_snapshot: its settings and its
-- steps with their cumulative offsets from the start in seconds.
CREATE FUNCTION evmgmt.plan_snapshot(plan_id text) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (
	SELECT pg_catalog.jsonb_build_object(
		'plan_id', p.plan_id, 'name', p.name, 'priority', p.priority,
		'repeat_from_step', p.repeat_from_step, 'require_all_ack', p.require_all_ack,
		'steps', (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
						'step_no', s.step_no, 'delay', s.delay::text,
						'offset_s', s.offset_s, 'channel', s.channel, 'target_kind', s.target_kind,
						'contact_id', s.contact_id, 'group_id', s.group_id, 'rota_id', s.rota_id, 'provider_id', s.provider_id,
						'days_of_week', s.days_of_week, 'working_hours_only', s.working_hours_only,
						'hold_until_window', s.hold_until_window, 'time_basis', s.time_basis,
						'voice_retries', s.voice_retries) ORDER BY s.step_no)
				  FROM (SELECT st.*, pg_catalog.sum(pg_catalog.date_part('epoch', st.delay)) OVER (ORDER BY st.step_no) AS offset_s
						FROM evmgmt.escalation_step st WHERE st.plan_id = p.plan_id) s))
	FROM evmgmt.escalation_plan p
	WHERE p.plan_id = plan_snapshot.plan_id);
COMMENT ON FUNCTION evmgmt.plan_snapshot(text) IS 'A plan with its steps and their offsets from the start (seconds), as stored in escalation.plan_snapshot';

-- One step of a snapshot.
CREATE FUNCTION evmgmt.snapshot_step(snapshot jsonb, step_no integer) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s jsonb;
BEGIN
	FOR s IN SELECT x FROM pg_catalog.jsonb_array_elements(snapshot -> 'steps') x LOOP
		IF (s ->> 'step_no')::integer = step_no THEN
			RETURN s;
		END IF;
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.snapshot_step(jsonb, integer) IS 'The step with the given number from a plan snapshot';

-- The step after a given one in a snapshot (the first step for NULL; with
-- repeat = true the first step of the repeated part).
CREATE FUNCTION evmgmt.snapshot_next_step(snapshot jsonb, after integer, repeat boolean DEFAULT false) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s jsonb;
	n integer;
	best integer;
	r integer := (snapshot ->> 'repeat_from_step')::integer;
BEGIN
	FOR s IN SELECT x FROM pg_catalog.jsonb_array_elements(snapshot -> 'steps') x LOOP
		n := (s ->> 'step_no')::integer;
		IF ((repeat AND n >= r) OR (NOT repeat AND (after IS NULL OR n > after))) AND (best IS NULL OR n < best) THEN
			best := n;
		END IF;
	END LOOP;
	RETURN best;
END
$$;
COMMENT ON FUNCTION evmgmt.snapshot_next_step(jsonb, integer, boolean) IS 'Number of the step after the given one (the first for NULL; the first repeated step with repeat = true)';

-- When step k of cycle c is scheduled: cycle 1 at start + offset(k); cycle
-- c >= 2 at start + offset(last) + (c - 2) * cycle length + offset(k) -
-- offset(step before the repeated part).  Seconds, so DST never shifts it.
CREATE FUNCTION evmgmt.escalation_step_due(snapshot jsonb, started_at timestamptz, cycle integer, step_no integer)
	RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s jsonb;
	n integer;
	off float8;
	k_off float8;
	last_off float8 := 0;
	rep_off float8;
	rep_no integer;
	r integer := (snapshot ->> 'repeat_from_step')::integer;
BEGIN
	FOR s IN SELECT x FROM pg_catalog.jsonb_array_elements(snapshot -> 'steps') x LOOP
		n := (s ->> 'step_no')::integer;
		off := (s ->> 'offset_s')::float8;
		IF n = step_no THEN
			k_off := off;
		END IF;
		last_off := GREATEST(last_off, off);
		IF r IS NOT NULL AND n >= r AND (rep_no IS NULL OR n < rep_no) THEN
			rep_no := n;
			rep_off := off - pg_catalog.date_part('epoch', (s ->> 'delay')::interval);
		END IF;
	END LOOP;
	IF cycle = 1 THEN
		RETURN started_at + pg_catalog.make_interval(secs => k_off);
	END IF;
	RETURN started_at + pg_catalog.make_interval(secs => last_off + (cycle - 2) * (last_off - rep_off) + k_off - rep_off);
END
$$;
COMMENT ON FUNCTION evmgmt.escalation_step_due(jsonb, timestamptz, integer, integer) IS 'When a step of a cycle is scheduled: start + sum of delays (+ whole repeat cycles), independent of when anything ran';
