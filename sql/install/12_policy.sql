-- Severity policy and notification footprint, calibrated per operation.
--
-- The *_default tables hold the matrix from the practitioner texts.  They are
-- reference data owned by the extension (not dumped, not editable): a new
-- operation gets a copy of them, and that copy is what the operation calibrates.

CREATE TABLE evmgmt.severity_policy_default (
	severity			evmgmt.severity PRIMARY KEY,
	definition			text NOT NULL,
	sl_threshold		double precision CHECK (sl_threshold >= 0 AND sl_threshold <= 1),
	sustain_minutes		integer CHECK (sustain_minutes >= 0),
	response_target		interval NOT NULL CHECK (response_target > interval '0'),
	resolution_target	interval NOT NULL CHECK (resolution_target > interval '0'),
	business_time		boolean NOT NULL,
	status_cadence		interval CHECK (status_cadence > interval '0'),
	status_at_resolution boolean NOT NULL
);
COMMENT ON TABLE evmgmt.severity_policy_default IS 'The reference severity matrix copied into every new operation''s severity_policy (read-only reference data)';
INSERT INTO evmgmt.severity_policy_default VALUES
	('sev1', 'Total or near-total work outage; routing, network or facility failure', 0.0, 0, '5 minutes', '1 hour', false, '1 hour', true),
	('sev2', 'Significant service-level degradation; routing and network functional but service collapsed', 0.30, 60, '30 minutes', '4 hours', false, '12 hours', true),
	('sev3', 'Service slipping below the acceptable threshold; volume or staffing variance is the cause', 0.60, 30, '1 hour', '1 day', true, NULL, true),
	('sev4', 'No outage; standard request, change or enhancement', NULL, NULL, '2 days', '5 days', true, NULL, false);

CREATE TABLE evmgmt.severity_policy (
	operation_id		text NOT NULL REFERENCES evmgmt.operation ON DELETE CASCADE,
	severity			evmgmt.severity NOT NULL,
	definition			text NOT NULL,
	sl_threshold		double precision CONSTRAINT severity_policy_sl_threshold_fraction CHECK (sl_threshold >= 0 AND sl_threshold <= 1),
	sustain_minutes		integer CONSTRAINT severity_policy_sustain_not_negative CHECK (sustain_minutes >= 0),
	response_target		interval NOT NULL CONSTRAINT severity_policy_response_positive CHECK (response_target > interval '0'),
	resolution_target	interval NOT NULL CONSTRAINT severity_policy_resolution_positive CHECK (resolution_target > interval '0'),
	business_time		boolean NOT NULL,
	status_cadence		interval CONSTRAINT severity_policy_cadence_positive CHECK (status_cadence > interval '0'),
	status_at_resolution boolean NOT NULL,
	PRIMARY KEY (operation_id, severity),
	CONSTRAINT severity_policy_response_within_resolution CHECK (response_target <= resolution_target),
	-- a signal threshold needs a sustain time and the other way round
	CONSTRAINT severity_policy_threshold_with_sustain CHECK ((sl_threshold IS NULL) = (sustain_minutes IS NULL)),
	-- sev4 is never signal-driven (no outage; a request, change or enhancement)
	CONSTRAINT severity_policy_sev4_not_signal_driven CHECK (severity <> 'sev4' OR sl_threshold IS NULL)
);
COMMENT ON TABLE evmgmt.severity_policy IS 'Calibrated severity matrix of an operation: service-level threshold and sustain time that trigger each tier, response and resolution targets (business time when business_time), status cadence';
COMMENT ON COLUMN evmgmt.severity_policy.sl_threshold IS 'Service level (0..1) below which the tier applies; 0 means outage (no contact answered in threshold); NULL: not signal-driven (sev4)';
COMMENT ON COLUMN evmgmt.severity_policy.sustain_minutes IS 'How long the service level must stay below sl_threshold before the tier applies';
COMMENT ON COLUMN evmgmt.severity_policy.business_time IS 'When true the targets count working time of the site calendar: 1 day means one business day, 4 hours means four working hours';
COMMENT ON COLUMN evmgmt.severity_policy.status_cadence IS 'Interval between status updates until the event resolves; NULL for none';

-- Audiences are the roles in the notification footprint (ROC management, site
-- WFM, ...); audience_group maps them to real contact groups per operation/site.
CREATE TABLE evmgmt.audience (
	audience		text PRIMARY KEY,
	name			text NOT NULL
);
COMMENT ON TABLE evmgmt.audience IS 'Recipient audiences of the notification footprint (reference data)';
INSERT INTO evmgmt.audience VALUES
	('roc', 'Resource Optimization Center'),
	('roc_management', 'ROC management'),
	('site_wfm', 'Site workforce management'),
	('site_ops_leadership', 'Site operations leadership'),
	('division_ops_leadership', 'Division operations leadership'),
	('it_leadership', 'IT leadership'),
	('ticketing', 'Ticketing distribution');

CREATE TABLE evmgmt.notification_footprint_default (
	severity		evmgmt.severity NOT NULL,
	audience		text NOT NULL REFERENCES evmgmt.audience,
	on_open			boolean NOT NULL,
	on_status		boolean NOT NULL,
	on_resolve		boolean NOT NULL,
	PRIMARY KEY (severity, audience)
);
COMMENT ON TABLE evmgmt.notification_footprint_default IS 'The reference notification footprint copied into every new operation (read-only reference data)';
INSERT INTO evmgmt.notification_footprint_default VALUES
	('sev1', 'roc_management', true, true, true),
	('sev1', 'site_wfm', true, true, true),
	('sev1', 'site_ops_leadership', true, true, true),
	('sev1', 'division_ops_leadership', true, true, true),
	('sev1', 'it_leadership', true, true, true),
	('sev2', 'roc', true, true, true),
	('sev2', 'site_wfm', true, true, true),
	('sev2', 'site_ops_leadership', true, true, true),
	('sev3', 'roc', false, false, true),
	('sev3', 'site_wfm', false, false, true),
	('sev4', 'ticketing', true, false, true);

CREATE TABLE evmgmt.notification_footprint (
	operation_id	text NOT NULL REFERENCES evmgmt.operation ON DELETE CASCADE,
	severity		evmgmt.severity NOT NULL,
	audience		text NOT NULL REFERENCES evmgmt.audience,
	on_open			boolean NOT NULL,
	on_status		boolean NOT NULL,
	on_resolve		boolean NOT NULL,
	PRIMARY KEY (operation_id, severity, audience),
	CONSTRAINT notification_footprint_notifies_something CHECK (on_open OR on_status OR on_resolve)
);
COMMENT ON TABLE evmgmt.notification_footprint IS 'Who is told about an event of each tier and when: at open, at every status update (severity_policy.status_cadence), at resolution';

-- What applies to an operation: its own calibrated row for a tier where it has
-- one, the reference row otherwise.  (Rows are not copied into an operation by a
-- trigger, because pg_restore would then collide with the restored copies.)
CREATE VIEW evmgmt.effective_severity_policy AS
SELECT o.operation_id, d.severity,
	   COALESCE(p.definition, d.definition) AS definition,
	   CASE WHEN p.operation_id IS NULL THEN d.sl_threshold ELSE p.sl_threshold END AS sl_threshold,
	   CASE WHEN p.operation_id IS NULL THEN d.sustain_minutes ELSE p.sustain_minutes END AS sustain_minutes,
	   COALESCE(p.response_target, d.response_target) AS response_target,
	   COALESCE(p.resolution_target, d.resolution_target) AS resolution_target,
	   COALESCE(p.business_time, d.business_time) AS business_time,
	   CASE WHEN p.operation_id IS NULL THEN d.status_cadence ELSE p.status_cadence END AS status_cadence,
	   COALESCE(p.status_at_resolution, d.status_at_resolution) AS status_at_resolution,
	   p.operation_id IS NOT NULL AS calibrated
FROM evmgmt.operation o
CROSS JOIN evmgmt.severity_policy_default d
LEFT JOIN evmgmt.severity_policy p ON p.operation_id = o.operation_id AND p.severity = d.severity;
COMMENT ON VIEW evmgmt.effective_severity_policy IS 'The severity matrix in force for each operation: its calibrated row per tier, or the reference row (calibrated = false)';

CREATE VIEW evmgmt.effective_notification_footprint AS
SELECT f.operation_id, f.severity, f.audience, f.on_open, f.on_status, f.on_resolve, true AS calibrated
FROM evmgmt.notification_footprint f
UNION ALL
SELECT o.operation_id, d.severity, d.audience, d.on_open, d.on_status, d.on_resolve, false
FROM evmgmt.operation o
CROSS JOIN evmgmt.notification_footprint_default d
WHERE NOT EXISTS (SELECT FROM evmgmt.notification_footprint f
				  WHERE f.operation_id = o.operation_id AND f.severity = d.severity);
COMMENT ON VIEW evmgmt.effective_notification_footprint IS 'The footprint in force: an operation''s own rows for a tier where it has any, the reference rows otherwise';

-- Copy the reference matrix and footprint into an operation so that it can be
-- calibrated row by row.  Existing calibrated rows are kept.
CREATE FUNCTION evmgmt.calibrate_from_defaults(operation_id text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	INSERT INTO evmgmt.severity_policy
		SELECT calibrate_from_defaults.operation_id, d.severity, d.definition, d.sl_threshold, d.sustain_minutes,
			   d.response_target, d.resolution_target, d.business_time, d.status_cadence, d.status_at_resolution
		FROM evmgmt.severity_policy_default d
		ON CONFLICT DO NOTHING;
	INSERT INTO evmgmt.notification_footprint
		SELECT calibrate_from_defaults.operation_id, d.severity, d.audience, d.on_open, d.on_status, d.on_resolve
		FROM evmgmt.notification_footprint_default d
		WHERE NOT EXISTS (SELECT FROM evmgmt.notification_footprint f
						  WHERE f.operation_id = calibrate_from_defaults.operation_id AND f.severity = d.severity);
END;
COMMENT ON FUNCTION evmgmt.calibrate_from_defaults(text) IS 'Copies the reference severity matrix and footprint into an operation''s own tables, keeping rows it already has, so they can be edited';
