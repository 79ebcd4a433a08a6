-- Acknowledgment: who is acting, acknowledging one escalation or all of an
-- event's.

CREATE TABLE evmgmt.escalation_ack (
	escalation_id	bigint NOT NULL REFERENCES evmgmt.escalation ON DELETE CASCADE,
	contact_id		bigint NOT NULL REFERENCES evmgmt.contact,
	acked_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	note			text,
	PRIMARY KEY (escalation_id, contact_id),
	channel			text NOT NULL DEFAULT 'sql' CONSTRAINT escalation_ack_channel_known CHECK (channel IN ('sms', 'voice', 'push', 'email', 'webhook', 'sql')),
	source			text
);
COMMENT ON TABLE evmgmt.escalation_ack IS 'Acknowledgments by responders (several when the plan requires all of them to acknowledge)';
COMMENT ON COLUMN evmgmt.escalation_ack.channel IS 'How the acknowledgment came: sms, voice, push, email or webhook through the HTTP listener, sql from a session';
COMMENT ON COLUMN evmgmt.escalation_ack.source IS 'Where it came from: the masked phone number or the client address (NULL from a SQL session)';

-- The contact acting: the given one, or the active contact whose role_name is
-- the session user.  Only evmgmt_admin may act for somebody else.
CREATE FUNCTION evmgmt.acting_contact(contact_id bigint) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	v_id bigint;
	v_role text;
	v_active boolean;
	n integer;
BEGIN
	IF $1 IS NULL THEN
		SELECT pg_catalog.count(*), pg_catalog.min(c.contact_id) INTO n, v_id
		FROM evmgmt.contact c WHERE c.role_name = SESSION_USER AND c.active;
		IF n = 0 THEN
			RAISE EXCEPTION 'no active contact for role "%"', SESSION_USER
				USING ERRCODE = 'no_data_found',
					  HINT = 'Pass the contact_id of the person acknowledging, or set contact.role_name to the role they log in with.';
		ELSIF n > 1 THEN
			RAISE EXCEPTION 'several active contacts use role "%"', SESSION_USER
				USING ERRCODE = 'cardinality_violation',
					  HINT = 'Pass the contact_id of the person acknowledging.';
		END IF;
		RETURN v_id;
	END IF;
	SELECT c.role_name, c.active INTO v_role, v_active FROM evmgmt.contact c WHERE c.contact_id = $1;
	IF NOT FOUND OR NOT v_active THEN
		RAISE EXCEPTION 'contact % does not exist or is not active', $1
			USING ERRCODE = 'no_data_found';
	END IF;
	IF v_role <> SESSION_USER AND NOT pg_catalog.pg_has_role(SESSION_USER, 'evmgmt_admin', 'MEMBER') THEN
		RAISE EXCEPTION 'role "%" may not acknowledge for contact %', SESSION_USER, $1
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = pg_catalog.format('Contact %s logs in as role "%s".', $1, v_role),
				  HINT = 'Acknowledge as yourself (leave contact_id NULL); only evmgmt_admin acknowledges for others.';
	END IF;
	RETURN $1;
END
$$;
COMMENT ON FUNCTION evmgmt.acting_contact(bigint) IS 'The contact an acknowledgment is made by: the given one (others than oneself only for evmgmt_admin) or the contact of the session user';

-- The acknowledgment itself, by a contact already authenticated (by
-- acting_contact for SQL sessions, by an action token or a provider
-- signature for the HTTP listener), with the channel and source it came by.
-- It stops the escalation at once, in this transaction, and cancels what it
-- queued and nobody sent yet.  With require_all_ack it stops only when
-- everyone it paged has acknowledged.
CREATE FUNCTION evmgmt.acknowledge_via(escalation_id bigint, contact_id bigint, channel text, source text, note text)
	RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_id bigint := $1;
	p_note text := $5;
	p_channel text := $3;
	p_source text := $4;
	v_contact bigint := $2;
	v_now timestamptz := pg_catalog.clock_timestamp();
	e evmgmt.escalation;
	v_missing integer := 0;
	v_by text;
BEGIN
	-- waits for a step firing or a resolve that holds the event; whoever
	-- comes second sees the first one's result
	PERFORM evmgmt.lock_event((SELECT x.event_id FROM evmgmt.escalation x WHERE x.escalation_id = p_id), true);
	SELECT * INTO e FROM evmgmt.escalation x WHERE x.escalation_id = p_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'escalation % does not exist', p_id USING ERRCODE = 'no_data_found';
	END IF;
	-- row-level security by site (86_site_scope.sql)
	PERFORM evmgmt.require_site_in_scope((SELECT ev.site_id FROM evmgmt.event ev WHERE ev.event_id = e.event_id),
										 pg_catalog.format('escalation %s', p_id));
	-- an exhausted escalation paged everyone it could and still waits for
	-- somebody to take it
	IF e.state NOT IN ('active', 'exhausted') THEN
		SELECT c.name INTO v_by FROM evmgmt.contact c WHERE c.contact_id = e.acknowledged_by;
		RAISE EXCEPTION 'escalation % is no longer active', p_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = CASE WHEN e.state = 'acknowledged'
							   THEN pg_catalog.format('It was acknowledged by %s at %s.', v_by, e.acknowledged_at)
							   ELSE pg_catalog.format('It ended (%s) at %s.', e.state, e.ended_at) END;
	END IF;
	IF EXISTS (SELECT FROM evmgmt.escalation_ack a WHERE a.escalation_id = p_id AND a.contact_id = v_contact) THEN
		RAISE EXCEPTION 'contact % already acknowledged escalation %', v_contact, p_id
			USING ERRCODE = 'unique_violation',
				  DETAIL = 'The plan requires every paged responder to acknowledge; the others have not yet.';
	END IF;
	INSERT INTO evmgmt.escalation_ack (escalation_id, contact_id, acked_at, note, channel, source)
	VALUES (p_id, v_contact, v_now, p_note, p_channel, p_source);

	IF (e.plan_snapshot ->> 'require_all_ack')::boolean THEN
		SELECT pg_catalog.count(DISTINCT r.contact_id) INTO v_missing
		FROM evmgmt.escalation_step_run r
		WHERE r.escalation_id = p_id AND r.contact_id IS NOT NULL AND r.outcome IN ('queued', 'bundled')
		  AND NOT EXISTS (SELECT FROM evmgmt.escalation_ack a WHERE a.escalation_id = p_id AND a.contact_id = r.contact_id);
	END IF;

	INSERT INTO evmgmt.event_timeline (event_id, pool, at, action, reason, details)
	VALUES (e.event_id, e.pool, v_now, 'acknowledged', p_note,
			pg_catalog.jsonb_build_object('escalation_id', p_id, 'contact_id', v_contact,
										  'contact', (SELECT c.name FROM evmgmt.contact c WHERE c.contact_id = v_contact),
										  'stopped', v_missing = 0, 'awaiting', v_missing,
										  'channel', p_channel, 'source', p_source));

	IF v_missing > 0 THEN
		-- this responder is done; the others keep being paged
		PERFORM evmgmt.cancel_unsent(p_id, v_contact);
		RETURN e.state;
	END IF;
	UPDATE evmgmt.escalation
	SET state = 'acknowledged', acknowledged_at = v_now, acknowledged_by = v_contact, ack_note = p_note,
		ended_at = v_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = 'acknowledged'
	WHERE escalation_id = p_id;
	PERFORM evmgmt.cancel_unsent(p_id);
	-- an acknowledgment is a response
	UPDATE evmgmt.target_timer t
	SET met_at = v_now, next_at = NULL
	WHERE t.event_id = e.event_id AND t.pool = e.pool AND t.target = 'response'
	  AND t.met_at IS NULL AND t.breached_at IS NULL;
	RETURN 'acknowledged';
END
$$;
COMMENT ON FUNCTION evmgmt.acknowledge_via(bigint, bigint, text, text, text) IS 'Acknowledges an escalation for an authenticated contact, recording the channel (sms, voice, push, email, webhook, sql) and source it came by; called by acknowledge and by the HTTP listener';

-- Acknowledge an escalation from a SQL session, as oneself (or, for
-- evmgmt_admin, for somebody else).
CREATE FUNCTION evmgmt.acknowledge(escalation_id bigint, contact_id bigint DEFAULT NULL, note text DEFAULT NULL)
	RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN evmgmt.acknowledge_via($1, evmgmt.acting_contact($2), 'sql', NULL, $3);
COMMENT ON FUNCTION evmgmt.acknowledge(bigint, bigint, text) IS 'Acknowledges a running (or exhausted) escalation as a named contact (default: the contact of the session user): stops it at once and cancels unsent notifications (with require_all_ack, once every paged responder has acknowledged); returns the resulting state';

-- Acknowledge every running escalation of an event (one pool or all).
CREATE FUNCTION evmgmt.acknowledge_event(event_id bigint, pool evmgmt.pool DEFAULT NULL, contact_id bigint DEFAULT NULL,
										 note text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	x record;
	n integer := 0;
BEGIN
	FOR x IN SELECT e.escalation_id FROM evmgmt.escalation e
			 WHERE e.event_id = $1 AND ($2 IS NULL OR e.pool = $2) AND e.state IN ('active', 'exhausted')
			   AND NOT EXISTS (SELECT FROM evmgmt.escalation_ack a
							   WHERE a.escalation_id = e.escalation_id AND a.contact_id = evmgmt.acting_contact($3))
			 ORDER BY e.escalation_id
	LOOP
		PERFORM evmgmt.acknowledge(x.escalation_id, $3, $4);
		n := n + 1;
	END LOOP;
	IF n = 0 THEN
		RAISE EXCEPTION 'event % has no running escalation to acknowledge%', $1,
			CASE WHEN $2 IS NULL THEN '' ELSE ' in pool ' || $2 END
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION evmgmt.acknowledge_event(bigint, evmgmt.pool, bigint, text) IS 'Acknowledges every running escalation of an event (of one pool, or all pools for NULL); returns how many';
