-- The notification footprint and the status cadence: audiences told at open,
-- at every status update and at resolution; automatic status when the owner
-- posts none.

-- One row per event that has (had) a live classified pool: the tier its
-- footprint follows, the status cadence clock and who was told at open.
CREATE TABLE evmgmt.status_schedule (
	event_id		bigint PRIMARY KEY REFERENCES evmgmt.event ON DELETE CASCADE,
	severity		evmgmt.severity NOT NULL,
	cadence			interval CHECK (cadence > interval '0'),
	started_at		timestamptz NOT NULL,
	next_status_at	timestamptz,
	last_status_at	timestamptz,
	last_owner_update_at timestamptz,
	told_open		text[] NOT NULL DEFAULT '{}',
	gaps			jsonb NOT NULL DEFAULT '[]',
	ended_at		timestamptz,
	end_reason		text,
	CONSTRAINT status_schedule_cadence_has_next CHECK (ended_at IS NOT NULL OR (cadence IS NULL) = (next_status_at IS NULL))
);
CREATE INDEX status_schedule_due_idx ON evmgmt.status_schedule (next_status_at) WHERE ended_at IS NULL;
COMMENT ON TABLE evmgmt.status_schedule IS 'Status cadence of each event: the tier its notification footprint follows (the most severe live pool), when the next status update is due, the audiences told at open';
COMMENT ON COLUMN evmgmt.status_schedule.next_status_at IS 'When the owner''s next status update is due; if none is posted by then, an automatic status goes to the on_status audiences and a status_overdue escalation starts';
COMMENT ON COLUMN evmgmt.status_schedule.gaps IS 'Audience members who could not be reached at the last footprint message (no channel or no provider), with the reason';

-- Members of the groups that stand for audiences at an event's site, with the
-- channels of each mapping.  Site rows of an audience replace its
-- operation-wide rows.
CREATE FUNCTION evmgmt.audience_members(operation_id text, site_id text, audiences text[])
	RETURNS TABLE (contact_id bigint, channel evmgmt.channel, audience text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT DISTINCT ON (m.contact_id, ch.channel) m.contact_id, ch.channel, ag.audience
	FROM evmgmt.audience_group ag
	JOIN evmgmt.group_member m ON m.group_id = ag.group_id
	CROSS JOIN LATERAL pg_catalog.unnest(ag.channels) AS ch(channel)
	WHERE ag.operation_id = audience_members.operation_id AND ag.audience = ANY (audiences)
	  AND (ag.site_id = audience_members.site_id
		   OR (ag.site_id IS NULL
			   AND NOT EXISTS (SELECT FROM evmgmt.audience_group s
							   WHERE s.operation_id = ag.operation_id AND s.audience = ag.audience
								 AND s.site_id = audience_members.site_id)))
	ORDER BY m.contact_id, ch.channel, ag.audience
$$;
COMMENT ON FUNCTION evmgmt.audience_members(text, text, text[]) IS 'Contacts and channels of the groups mapped to footprint audiences for an operation and site (site-specific mappings win over operation-wide ones)';

-- Send a footprint message to audiences (and optionally to extra contacts);
-- returns the members who could not be reached, with the reason.
CREATE FUNCTION evmgmt.notify_audiences(p_event_id bigint, p_audiences text[], p_kind text, p_vars jsonb,
										p_now timestamptz, p_extra bigint[] DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_op text;
	v_site text;
	v_gaps jsonb := '[]';
	r record;
	q record;
BEGIN
	SELECT e.operation_id, e.site_id INTO v_op, v_site FROM evmgmt.event e WHERE e.event_id = p_event_id;
	FOR r IN SELECT a.contact_id, a.channel FROM evmgmt.audience_members(v_op, v_site, p_audiences) a
			 UNION
			 SELECT p.contact_id, p.channel FROM evmgmt.paged_contacts(p_extra) p
			 ORDER BY 1, 2
	LOOP
		-- somebody who is both paged and in an audience hears it once
		CONTINUE WHEN EXISTS (SELECT FROM evmgmt.notification n
							  WHERE n.event_id = p_event_id AND n.kind = p_kind AND n.contact_id = r.contact_id
								AND n.channel = r.channel AND n.created_at = p_now AND n.state <> 'cancelled');
		SELECT * INTO q FROM evmgmt.notify_contact(p_kind, r.contact_id, r.channel, p_event_id, NULL, v_op, p_vars, p_now);
		IF q.outcome NOT IN ('queued', 'bundled', 'already_notified') THEN
			v_gaps := v_gaps || pg_catalog.jsonb_build_object('contact_id', r.contact_id, 'channel', r.channel, 'outcome', q.outcome);
		END IF;
	END LOOP;
	RETURN v_gaps;
END
$$;
COMMENT ON FUNCTION evmgmt.notify_audiences(bigint, text[], text, jsonb, timestamptz, bigint[]) IS 'Queues a footprint message to the members of audiences (and to the contacts paged by the given escalations); returns who could not be reached and why';

-- Footprint rows of an operation's tier.
CREATE FUNCTION evmgmt.footprint_audiences(operation_id text, severity evmgmt.severity, moment text) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT COALESCE(pg_catalog.array_agg(f.audience ORDER BY f.audience), '{}')
		FROM evmgmt.effective_notification_footprint f
		WHERE f.operation_id = footprint_audiences.operation_id AND f.severity = footprint_audiences.severity
		  AND CASE moment WHEN 'open' THEN f.on_open WHEN 'status' THEN f.on_status ELSE f.on_resolve END);
COMMENT ON FUNCTION evmgmt.footprint_audiences(text, evmgmt.severity, text) IS 'Audiences of the effective footprint of a tier for a moment: open, status or resolve';

-- Called when a pool is classified or upgraded: the event's footprint follows
-- its most severe live pool.  Audiences of the tier that were not told yet
-- get the opened message; a more severe tier restarts the status cadence.
CREATE FUNCTION evmgmt.footprint_open(p_event_id bigint, p_now timestamptz) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_op text;
	v_floor evmgmt.severity;
	v_cadence interval;
	s evmgmt.status_schedule;
	v_new text[];
	v_gaps jsonb;
BEGIN
	SELECT e.operation_id INTO v_op FROM evmgmt.event e WHERE e.event_id = p_event_id;
	SELECT pg_catalog.min(pc.severity) INTO v_floor FROM evmgmt.pool_condition pc
	WHERE pc.event_id = p_event_id AND pc.state NOT IN ('resolved', 'cancelled');
	IF v_floor IS NULL THEN
		RETURN;
	END IF;
	SELECT p.status_cadence INTO v_cadence FROM evmgmt.effective_severity_policy p
	WHERE p.operation_id = v_op AND p.severity = v_floor;

	SELECT * INTO s FROM evmgmt.status_schedule x WHERE x.event_id = p_event_id FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO evmgmt.status_schedule (event_id, severity, cadence, started_at, next_status_at)
		VALUES (p_event_id, v_floor, v_cadence, p_now, p_now + v_cadence)
		RETURNING * INTO s;
	ELSIF s.ended_at IS NOT NULL OR v_floor < s.severity THEN
		UPDATE evmgmt.status_schedule
		SET severity = LEAST(v_floor, CASE WHEN s.ended_at IS NULL THEN s.severity END), cadence = v_cadence,
			next_status_at = p_now + v_cadence, ended_at = NULL, end_reason = NULL
		WHERE event_id = p_event_id
		RETURNING * INTO s;
	END IF;

	SELECT COALESCE(pg_catalog.array_agg(a), '{}') INTO v_new
	FROM pg_catalog.unnest(evmgmt.footprint_audiences(v_op, s.severity, 'open')) a
	WHERE NOT a = ANY (s.told_open);
	IF pg_catalog.cardinality(v_new) > 0 THEN
		v_gaps := evmgmt.notify_audiences(p_event_id, v_new, 'opened', evmgmt.event_facts(p_event_id), p_now);
		UPDATE evmgmt.status_schedule SET told_open = told_open || v_new, gaps = v_gaps WHERE event_id = p_event_id;
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.footprint_open(bigint, timestamptz) IS 'Sends the opened message to the tier''s on_open audiences not told yet and (re)starts the status cadence when the event''s tier rises';

-- Called when no pool of the event is live any more.
CREATE FUNCTION evmgmt.footprint_close(p_event_id bigint, p_state text, p_why text, p_now timestamptz) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_op text;
	s evmgmt.status_schedule;
	v_sev evmgmt.severity;
	v_auds text[];
	v_note text := p_why;
BEGIN
	SELECT e.operation_id INTO v_op FROM evmgmt.event e WHERE e.event_id = p_event_id;
	SELECT * INTO s FROM evmgmt.status_schedule x WHERE x.event_id = p_event_id FOR UPDATE;
	-- the message carries the resolution notes given, not the word "resolved"
	IF p_state = 'resolved' THEN
		v_note := COALESCE((SELECT pg_catalog.string_agg(DISTINCT pc.resolution_note, '; ')
						   FROM evmgmt.pool_condition pc
						   WHERE pc.event_id = p_event_id AND pc.resolution_note IS NOT NULL AND pc.resolution_note <> ''), p_why);
	END IF;
	IF FOUND AND s.ended_at IS NOT NULL THEN
		RETURN;
	END IF;
	v_sev := COALESCE(s.severity, (SELECT pg_catalog.min(pc.severity) FROM evmgmt.pool_condition pc WHERE pc.event_id = p_event_id));
	IF v_sev IS NULL THEN
		RETURN;
	END IF;
	IF s.event_id IS NULL THEN
		INSERT INTO evmgmt.status_schedule (event_id, severity, started_at, ended_at, end_reason)
		VALUES (p_event_id, v_sev, p_now, p_now, p_why);
	ELSE
		UPDATE evmgmt.status_schedule SET ended_at = p_now, end_reason = p_why, next_status_at = NULL
		WHERE event_id = p_event_id;
	END IF;
	-- resolved: the tier's on_resolve audiences; cancelled: whoever was told
	-- at open
	v_auds := CASE WHEN p_state = 'resolved' THEN evmgmt.footprint_audiences(v_op, v_sev, 'resolve')
				   ELSE COALESCE(s.told_open, '{}') END;
	IF pg_catalog.cardinality(v_auds) > 0 THEN
		UPDATE evmgmt.status_schedule
		SET gaps = evmgmt.notify_audiences(p_event_id, v_auds, 'resolved',
										   evmgmt.event_facts(p_event_id) || pg_catalog.jsonb_build_object('outcome', p_state, 'why', v_note),
										   p_now)
		WHERE event_id = p_event_id;
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.footprint_close(bigint, text, text, timestamptz) IS 'Ends the status cadence of an event and sends the resolution message to the tier''s on_resolve audiences (a cancellation to those told at open)';

-- A status update is due and the owner posted none: the on_status audiences
-- get an automatic status and the overdue update escalates.
CREATE FUNCTION evmgmt.status_tick(p_event_id bigint, p_now timestamptz) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s evmgmt.status_schedule;
	v_op text;
	v_tz text;
	v_pool evmgmt.pool;
	v_last text;
	v_text text;
	v_next timestamptz;
BEGIN
	SELECT * INTO s FROM evmgmt.status_schedule x WHERE x.event_id = p_event_id;
	SELECT e.operation_id, t.time_zone INTO v_op, v_tz
	FROM evmgmt.event e JOIN evmgmt.site t ON t.site_id = e.site_id WHERE e.event_id = p_event_id;
	SELECT pc.pool INTO v_pool FROM evmgmt.pool_condition pc
	WHERE pc.event_id = p_event_id AND pc.state NOT IN ('resolved', 'cancelled') AND pc.severity IS NOT NULL
	ORDER BY pc.severity, pc.pool LIMIT 1;
	IF v_pool IS NULL THEN
		UPDATE evmgmt.status_schedule SET ended_at = p_now, end_reason = 'no live pool', next_status_at = NULL
		WHERE event_id = p_event_id;
		RETURN;
	END IF;

	SELECT t.reason INTO v_last FROM evmgmt.event_timeline t
	WHERE t.event_id = p_event_id AND t.action = 'status_update' ORDER BY t.at DESC, t.entry_id DESC LIMIT 1;
	v_text := CASE WHEN s.last_owner_update_at IS NULL
				   THEN 'No status update has been posted yet; the owner has been chased.'
				   ELSE 'No new status update since ' || pg_catalog.to_char(s.last_owner_update_at AT TIME ZONE v_tz, 'YYYY-MM-DD HH24:MI')
						|| ' ' || v_tz || '; the owner has been chased. Last update: ' || COALESCE(v_last, '') END;
	UPDATE evmgmt.status_schedule
	SET gaps = evmgmt.notify_audiences(p_event_id, evmgmt.footprint_audiences(v_op, s.severity, 'status'), 'status_update',
									   evmgmt.event_facts(p_event_id) || pg_catalog.jsonb_build_object('status', v_text, 'automatic', true),
									   p_now)
	WHERE event_id = p_event_id;

	IF NOT EXISTS (SELECT FROM evmgmt.escalation x
				   WHERE x.event_id = p_event_id AND x.start_reason = 'status_overdue' AND x.state = 'active') THEN
		PERFORM evmgmt.escalation_start(p_event_id, v_pool, 'status_overdue', p_now);
	END IF;

	-- the next one a cadence later; after an outage, only the latest is sent
	v_next := s.next_status_at + s.cadence;
	IF v_next <= p_now THEN
		v_next := s.next_status_at + s.cadence * (pg_catalog.floor(pg_catalog.date_part('epoch', p_now - s.next_status_at)
																   / pg_catalog.date_part('epoch', s.cadence)) + 1);
	END IF;
	UPDATE evmgmt.status_schedule SET last_status_at = p_now, next_status_at = v_next WHERE event_id = p_event_id;
END
$$;
COMMENT ON FUNCTION evmgmt.status_tick(bigint, timestamptz) IS 'Due status update without a post from the owner: automatic status to the on_status audiences, a status_overdue escalation, next due a cadence later';

-- The owner posts a status update: it goes into the timeline and at once to
-- the tier's on_status audiences, restarts the cadence clock and ends an
-- overdue-status escalation.
CREATE FUNCTION evmgmt.post_status_update(event_id bigint, status text,
										  now timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	p_text text := pg_catalog.btrim($2);
	p_now timestamptz := $3;
	v_op text;
	v_entry bigint;
	s evmgmt.status_schedule;
	x record;
BEGIN
	IF p_text IS NULL OR p_text = '' THEN
		RAISE EXCEPTION 'a status update needs a text' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT evmgmt.lock_event(p_event, true) THEN
		RAISE EXCEPTION 'event % does not exist', p_event USING ERRCODE = 'no_data_found';
	END IF;
	-- row-level security by site (86_site_scope.sql)
	PERFORM evmgmt.require_site_in_scope((SELECT e.site_id FROM evmgmt.event e WHERE e.event_id = p_event),
										 pg_catalog.format('event %s', p_event));
	SELECT e.operation_id INTO v_op FROM evmgmt.event e WHERE e.event_id = p_event;
	IF NOT EXISTS (SELECT FROM evmgmt.pool_condition pc WHERE pc.event_id = p_event AND pc.state NOT IN ('resolved', 'cancelled'))
	   OR EXISTS (SELECT FROM evmgmt.status_schedule x WHERE x.event_id = p_event AND x.ended_at IS NOT NULL) THEN
		RAISE EXCEPTION 'event % has no live pool condition', p_event
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'Status updates are for events that are still unresolved.';
	END IF;
	INSERT INTO evmgmt.event_timeline (event_id, at, action, reason)
	VALUES (p_event, p_now, 'status_update', p_text)
	RETURNING entry_id INTO v_entry;

	SELECT * INTO s FROM evmgmt.status_schedule x WHERE x.event_id = p_event AND x.ended_at IS NULL FOR UPDATE;
	IF FOUND THEN
		UPDATE evmgmt.status_schedule
		SET last_owner_update_at = p_now, last_status_at = p_now, next_status_at = p_now + s.cadence,
			gaps = evmgmt.notify_audiences(p_event, evmgmt.footprint_audiences(v_op, s.severity, 'status'), 'status_update',
										   evmgmt.event_facts(p_event) || pg_catalog.jsonb_build_object('status', p_text, 'automatic', false),
										   p_now)
		WHERE event_id = p_event;
	END IF;

	FOR x IN SELECT e.escalation_id FROM evmgmt.escalation e
			 WHERE e.event_id = p_event AND e.start_reason = 'status_overdue' AND e.state IN ('active', 'exhausted')
			 FOR UPDATE
	LOOP
		UPDATE evmgmt.escalation
		SET state = 'satisfied', ended_at = p_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = 'status update posted'
		WHERE escalation_id = x.escalation_id;
		PERFORM evmgmt.cancel_unsent(x.escalation_id);
	END LOOP;
	RETURN v_entry;
END
$$;
COMMENT ON FUNCTION evmgmt.post_status_update(bigint, text, timestamptz) IS 'The owner''s status update: timeline entry status_update, sent at once to the tier''s on_status audiences, restarts the cadence clock and ends an overdue-status escalation; returns the timeline entry id';

-- The same at the current time: the form granted to responders, who must not
-- choose the moment (a status "posted" in 2100 would silence the cadence).
CREATE FUNCTION evmgmt.post_status_update(event_id bigint, status text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN evmgmt.post_status_update($1, $2, pg_catalog.clock_timestamp());
COMMENT ON FUNCTION evmgmt.post_status_update(bigint, text) IS 'post_status_update at the current time (clock_timestamp()): the form responders may call; the form with a clock argument is for tests and the worker';
