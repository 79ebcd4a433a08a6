-- Organisation: operations, business calendars, sites, queues.

CREATE TABLE evmgmt.operation (
	operation_id	text PRIMARY KEY CHECK (operation_id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	name			text NOT NULL CHECK (name <> ''),
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE evmgmt.operation IS 'A contact-center operation: owns sites, queues, its calibrated severity policy and notification footprint';

CREATE TABLE evmgmt.calendar (
	calendar_id		text PRIMARY KEY CHECK (calendar_id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	name			text NOT NULL CHECK (name <> '')
);
COMMENT ON TABLE evmgmt.calendar IS 'A business calendar: working hours per weekday and holidays; interpreted in the time zone of the site that uses it';

CREATE TABLE evmgmt.calendar_hours (
	calendar_id		text NOT NULL REFERENCES evmgmt.calendar ON DELETE CASCADE,
	isodow			smallint NOT NULL CHECK (isodow BETWEEN 1 AND 7),
	opens			time NOT NULL,
	closes			time NOT NULL,
	CONSTRAINT calendar_hours_opens_before_closes CHECK (opens < closes),
	PRIMARY KEY (calendar_id, isodow, opens)
);
COMMENT ON TABLE evmgmt.calendar_hours IS 'Working windows of a calendar per ISO weekday (1 = Monday); several windows a day allowed, never overlapping';

-- Working windows of one weekday must not overlap.  The calendar row is locked
-- first so that two sessions adding windows to one calendar are serialised.
CREATE FUNCTION evmgmt.calendar_hours_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM FROM evmgmt.calendar WHERE calendar_id = NEW.calendar_id FOR UPDATE;
	IF EXISTS (SELECT FROM evmgmt.calendar_hours h
			   WHERE h.calendar_id = NEW.calendar_id AND h.isodow = NEW.isodow
				 AND (h.calendar_id, h.isodow, h.opens) IS DISTINCT FROM (OLD.calendar_id, OLD.isodow, OLD.opens)
				 AND h.opens < NEW.closes AND NEW.opens < h.closes) THEN
		RAISE EXCEPTION 'working window % to % overlaps another window of calendar "%" on ISO weekday %',
			NEW.opens, NEW.closes, NEW.calendar_id, NEW.isodow
			USING ERRCODE = 'exclusion_violation',
				  DETAIL = 'Working windows of one weekday must not overlap.';
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION evmgmt.calendar_hours_check() IS 'Trigger: refuses overlapping working windows on one weekday of a calendar';
CREATE TRIGGER calendar_hours_check BEFORE INSERT OR UPDATE ON evmgmt.calendar_hours
	FOR EACH ROW EXECUTE FUNCTION evmgmt.calendar_hours_check();

CREATE TABLE evmgmt.calendar_holiday (
	calendar_id		text NOT NULL REFERENCES evmgmt.calendar ON DELETE CASCADE,
	day				date NOT NULL,
	name			text NOT NULL CHECK (name <> ''),
	PRIMARY KEY (calendar_id, day)
);
COMMENT ON TABLE evmgmt.calendar_holiday IS 'Whole-day holidays of a calendar: no business time is counted on them';

CREATE TABLE evmgmt.site (
	site_id			text COLLATE "C" PRIMARY KEY CHECK (site_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
	operation_id	text NOT NULL REFERENCES evmgmt.operation,
	name			text NOT NULL CHECK (name <> ''),
	time_zone		text NOT NULL CONSTRAINT site_time_zone_known CHECK (evmgmt.is_time_zone(time_zone)),
	calendar_id		text NOT NULL REFERENCES evmgmt.calendar,
	division		text,
	seats			integer CHECK (seats >= 0),
	UNIQUE (operation_id, site_id)
);
CREATE INDEX ON evmgmt.site (operation_id);
COMMENT ON TABLE evmgmt.site IS 'A contact-center site: its time zone and business calendar drive business-time targets';

CREATE TABLE evmgmt.queue (
	queue_id		text COLLATE "C" PRIMARY KEY CHECK (queue_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
	operation_id	text NOT NULL REFERENCES evmgmt.operation,
	name			text NOT NULL CHECK (name <> ''),
	channel			text NOT NULL DEFAULT 'voice' CHECK (channel IN ('voice', 'chat', 'email', 'messaging', 'back_office')),
	sl_target		double precision NOT NULL DEFAULT 0.8 CHECK (sl_target > 0 AND sl_target <= 1),
	sl_seconds		integer NOT NULL DEFAULT 20 CHECK (sl_seconds > 0)
);
CREATE INDEX ON evmgmt.queue (operation_id);
COMMENT ON TABLE evmgmt.queue IS 'A contact queue (skill) with its service-level goal, e.g. 80% answered within 20 seconds';

-- Which roles see and change which sites (row-level security by site,
-- 86_site_scope.sql).  A role with no binding in an operation sees all of that
-- operation; a role bound to some of its sites sees only those.  Bindings
-- apply to the roles a login is a member of.  Admins set them.
CREATE TABLE evmgmt.site_binding (
	role_name		name NOT NULL,
	site_id			text COLLATE "C" NOT NULL REFERENCES evmgmt.site ON UPDATE CASCADE ON DELETE CASCADE,
	bound_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	bound_by		name NOT NULL DEFAULT SESSION_USER,
	PRIMARY KEY (role_name, site_id)
);
CREATE INDEX ON evmgmt.site_binding (site_id);
COMMENT ON TABLE evmgmt.site_binding IS 'Row-level security by site: a role bound to some sites of an operation sees and changes only the events, intervals, escalations and reports of those sites (other operations are unaffected)';

-- A binding names a role that exists (a typo would restrict nobody).
CREATE FUNCTION evmgmt.site_binding_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_catalog.to_regrole(pg_catalog.quote_ident(NEW.role_name)) IS NULL THEN
		RAISE EXCEPTION 'role "%" does not exist', NEW.role_name
			USING ERRCODE = 'undefined_object',
				  HINT = 'Bind an existing role (CREATE ROLE first); a binding of an unknown role would restrict nobody.';
	END IF;
	IF NEW.role_name = 'evmgmt_worker' OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = NEW.role_name) THEN
		RAISE EXCEPTION 'role "%" cannot be bound to sites', NEW.role_name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Superusers and the worker role always see every site.';
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION evmgmt.site_binding_check() IS 'Trigger: a site binding names an existing role that is neither a superuser nor the worker';
CREATE TRIGGER site_binding_check BEFORE INSERT OR UPDATE ON evmgmt.site_binding
	FOR EACH ROW EXECUTE FUNCTION evmgmt.site_binding_check();

CREATE TABLE evmgmt.pool_info (
	pool			evmgmt.pool PRIMARY KEY,
	name			text NOT NULL,
	description		text NOT NULL,
	response_lead	text NOT NULL
);
COMMENT ON TABLE evmgmt.pool_info IS 'The three pools of the three-pool architecture and who leads the response in each (reference data)';
INSERT INTO evmgmt.pool_info VALUES
	('aa', 'Autonomous AI', 'AI agents handling contacts end to end; events are model regression, content drift, integration failure', 'engineering'),
	('collab', 'Human-AI collaborative', 'Humans supervising AI; events are monitoring overhead, switching cost, AI-handoff regression', 'ROC with supervisors'),
	('spec', 'Specialist humans', 'Specialist agents; events are staffing shortfall, AHT inflation, escalation surge', 'ROC with site WFM');
