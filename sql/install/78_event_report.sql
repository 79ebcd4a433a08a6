-- The post-event report as a page: evmgmt.event_report(event_id) returns one
-- self-contained HTML document (inline CSS and SVG, no scripts, no external
-- files) that an analyst can save and mail.  Every value taken from the
-- database goes through html_escape, so titles and notes cannot inject
-- markup.  Checked in headless Chromium by test/integration/event_report.sh.

-- (html_escape: 66_listener.sql)

-- The service level of one pool across the event window as an SVG chart:
-- the measured service level per interval, the tier thresholds and the
-- queue target as horizontal lines, the event's marks as vertical lines.
CREATE FUNCTION evmgmt.event_report_chart(event_id bigint, pool evmgmt.pool) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	e record;
	pc record;
	v_from timestamptz;
	v_to timestamptz;
	v_span double precision;
	w constant integer := 760;
	h constant integer := 260;
	l constant integer := 50;		-- left margin
	t constant integer := 20;		-- top margin
	pw constant integer := 690;		-- plot width
	ph constant integer := 200;		-- plot height
	v_svg text;
	v_points text;
	r record;
	x double precision;
BEGIN
	SELECT * INTO e FROM evmgmt.event x WHERE x.event_id = event_report_chart.event_id;
	SELECT * INTO pc FROM evmgmt.pool_condition x WHERE x.event_id = event_report_chart.event_id AND x.pool = event_report_chart.pool;
	v_from := e.detected_at - interval '1 hour';
	v_to := COALESCE(pc.resolved_at, e.closed_at, e.cancelled_at, pg_catalog.now()) + interval '1 hour';
	v_span := GREATEST(pg_catalog.date_part('epoch', v_to - v_from), 1);

	v_svg := pg_catalog.format('<svg xmlns="http://www.w3.org/2000/svg" class="sl-chart" data-pool="%s" width="%s" height="%s" viewBox="0 0 %s %s" role="img" aria-label="Service level of pool %s">',
							   pc.pool, w, h, w, h, pc.pool)
		|| pg_catalog.format('<rect x="%s" y="%s" width="%s" height="%s" fill="#fafafa" stroke="#999"/>', l, t, pw, ph);
	-- y axis: 0, 50 and 100 %
	FOR r IN SELECT v FROM (VALUES (0.0), (0.5), (1.0)) AS y(v) LOOP
		v_svg := v_svg || pg_catalog.format('<text x="%s" y="%s" font-size="10" text-anchor="end">%s%%</text>',
											l - 4, t + ph - r.v * ph + 3, (r.v * 100)::integer);
	END LOOP;
	-- tier thresholds and the queue target
	FOR r IN
		SELECT th.severity::text AS label, th.sl_threshold AS v, '#c0392b' AS colour
		FROM evmgmt.effective_severity_policy th
		WHERE th.operation_id = e.operation_id AND th.sl_threshold IS NOT NULL
		UNION ALL
		SELECT 'target', q.sl_target, '#27ae60' FROM evmgmt.queue q WHERE q.queue_id = e.queue_id
	LOOP
		v_svg := v_svg || pg_catalog.format('<line class="threshold" data-label="%s" x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s" stroke-dasharray="4 3"/><text x="%s" y="%s" font-size="10" fill="%s">%s %s%%</text>',
											r.label, l, l + pw, t + ph - r.v * ph, t + ph - r.v * ph, r.colour,
											l + pw - 60, t + ph - r.v * ph - 2, r.colour, r.label, pg_catalog.round((r.v * 100)::numeric));
	END LOOP;
	-- the measured service level, one point per interval (at its middle)
	v_points := '';
	FOR r IN
		SELECT s.interval_start + s.interval_minutes * interval '30 seconds' AS mid,
			   evmgmt.interval_service_level(s.answered_in_threshold, s.offered) AS sl
		FROM evmgmt.interval_stat s
		WHERE s.interval_start >= v_from AND s.interval_start < v_to AND s.site_id = e.site_id
		  AND (e.queue_id IS NULL OR s.queue_id = e.queue_id) AND s.pool = pc.pool
		  AND s.offered > 0
		ORDER BY s.interval_start
	LOOP
		x := l + pw * pg_catalog.date_part('epoch', r.mid - v_from) / v_span;
		v_points := v_points || pg_catalog.format('%s,%s ', pg_catalog.round(x::numeric, 1), pg_catalog.round((t + ph - r.sl * ph)::numeric, 1));
		v_svg := v_svg || pg_catalog.format('<circle class="sl-point" cx="%s" cy="%s" r="2.5" fill="#2c3e50"><title>%s: %s%%</title></circle>',
											pg_catalog.round(x::numeric, 1), pg_catalog.round((t + ph - r.sl * ph)::numeric, 1),
											pg_catalog.to_char(r.mid, 'YYYY-MM-DD HH24:MI'), pg_catalog.round((r.sl * 100)::numeric, 1));
	END LOOP;
	IF v_points <> '' THEN
		v_svg := v_svg || pg_catalog.format('<polyline points="%s" fill="none" stroke="#2c3e50" stroke-width="1.5"/>', pg_catalog.rtrim(v_points));
	ELSE
		v_svg := v_svg || pg_catalog.format('<text x="%s" y="%s" font-size="12" text-anchor="middle">no interval data</text>', l + pw / 2, t + ph / 2);
	END IF;
	-- marks
	FOR r IN
		SELECT m.kind, m.at, m.colour FROM (
			SELECT 'detected' AS kind, e.detected_at AS at, '#8e44ad' AS colour
			UNION ALL SELECT 'classified', pc.classified_at, '#2980b9'
			UNION ALL SELECT 'acknowledged', k.acked_at, '#16a085'
				FROM evmgmt.escalation x JOIN evmgmt.escalation_ack k ON k.escalation_id = x.escalation_id
				WHERE x.event_id = e.event_id AND x.pool = pc.pool
			UNION ALL SELECT 'response: ' || a.lever, a.activated_at, '#d35400'
				FROM evmgmt.response_action a WHERE a.event_id = e.event_id AND a.pool = pc.pool
			UNION ALL SELECT 'resolved', pc.resolved_at, '#27ae60') m
		WHERE m.at IS NOT NULL
		ORDER BY m.at
	LOOP
		x := l + pw * pg_catalog.date_part('epoch', r.at - v_from) / v_span;
		v_svg := v_svg || pg_catalog.format('<line class="mark" data-mark="%s" x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s"/><text x="%s" y="%s" font-size="9" fill="%s" transform="rotate(90 %s %s)">%s</text>',
											evmgmt.html_escape(r.kind), pg_catalog.round(x::numeric, 1), pg_catalog.round(x::numeric, 1),
											t, t + ph, r.colour, pg_catalog.round((x + 3)::numeric, 1), t + 4, r.colour,
											pg_catalog.round((x + 3)::numeric, 1), t + 4, evmgmt.html_escape(r.kind));
		-- the label runs down beside the line, inside the plot
	END LOOP;
	-- time axis: start and end
	v_svg := v_svg || pg_catalog.format('<text x="%s" y="%s" font-size="10">%s</text><text x="%s" y="%s" font-size="10" text-anchor="end">%s</text></svg>',
										l, t + ph + 14, pg_catalog.to_char(v_from, 'YYYY-MM-DD HH24:MI'),
										l + pw, t + ph + 14, pg_catalog.to_char(v_to, 'YYYY-MM-DD HH24:MI'));
	RETURN v_svg;
END
$$;
COMMENT ON FUNCTION evmgmt.event_report_chart(bigint, evmgmt.pool) IS 'Inline SVG chart of one pool''s service level across the event window (an hour either side), with the tier thresholds, the queue target and the marks detected, classified, acknowledged, each response and resolved';

CREATE FUNCTION evmgmt.event_report(event_id bigint) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	e record;
	r record;
	a record;
	q record;
	v_html text;
	v_rows text;
	v_floor evmgmt.severity;
	w record;
BEGIN
	IF event_id IS NULL THEN
		RAISE EXCEPTION 'event_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- SECURITY DEFINER reads past row security: an event at a site the
	-- acting role is not bound to does not exist for it (86_site_scope.sql)
	SELECT * INTO e FROM evmgmt.event x WHERE x.event_id = event_report.event_id
	  AND (evmgmt.site_scope() IS NULL OR x.site_id = ANY (evmgmt.site_scope()));
	IF NOT FOUND THEN
		RAISE EXCEPTION 'event % does not exist', event_report.event_id
			USING ERRCODE = 'no_data_found', HINT = 'Look the event up in evmgmt.event_rollup.';
	END IF;
	SELECT pg_catalog.min(x.severity) FILTER (WHERE x.state <> 'cancelled') INTO v_floor
	FROM evmgmt.pool_condition x WHERE x.event_id = e.event_id;

	v_html := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
		|| '<title>' || evmgmt.html_escape(pg_catalog.format('Event %s: %s', e.event_id, e.title)) || '</title>'
		|| '<style>body{font-family:sans-serif;margin:2em;max-width:60em;color:#222}'
		|| 'table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}'
		|| 'th{background:#eee}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em;border-bottom:1px solid #ccc}'
		|| '.sev1{color:#c0392b;font-weight:bold}.sev2{color:#d35400;font-weight:bold}.muted{color:#777}</style></head><body>'
		|| '<h1 id="title">' || evmgmt.html_escape(pg_catalog.format('Event %s: %s', e.event_id, e.title)) || '</h1>'
		|| '<table id="summary">'
		|| '<tr><th>Type</th><td>' || evmgmt.html_escape(e.event_type::text || COALESCE(' / ' || e.subtype, '')) || '</td></tr>'
		|| '<tr><th>Site / queue</th><td>' || evmgmt.html_escape(e.site_id || COALESCE(' / ' || e.queue_id, '')) || '</td></tr>'
		|| '<tr><th>Detected</th><td>' || evmgmt.html_escape(pg_catalog.to_char(e.detected_at, 'YYYY-MM-DD HH24:MI TZ') || ' by ' || e.detection_source) || '</td></tr>'
		|| '<tr><th>Floor severity</th><td id="floor-severity" class="' || COALESCE(v_floor::text, '') || '">' || COALESCE(v_floor::text, 'none') || '</td></tr>'
		|| '<tr><th>State</th><td>' || CASE WHEN e.cancelled_at IS NOT NULL THEN 'cancelled: ' || evmgmt.html_escape(e.cancel_reason)
											 WHEN e.closed_at IS NOT NULL THEN 'closed ' || pg_catalog.to_char(e.closed_at, 'YYYY-MM-DD HH24:MI TZ')
											 ELSE 'open' END || '</td></tr>'
		|| CASE WHEN e.description IS NOT NULL THEN '<tr><th>Description</th><td>' || evmgmt.html_escape(e.description) || '</td></tr>' ELSE '' END
		|| '</table>';

	-- per pool: its condition, the chart, Power of One at the worst interval
	FOR r IN SELECT * FROM evmgmt.pool_condition x WHERE x.event_id = e.event_id ORDER BY x.pool LOOP
		v_html := v_html || pg_catalog.format('<section class="pool" id="pool-%s"><h2>Pool %s: %s, %s</h2>', r.pool, r.pool,
											  COALESCE(r.severity::text, 'unclassified'), r.state)
			|| '<table class="pool-facts"><tr><th>Response</th><td>'
			|| COALESCE('due ' || pg_catalog.to_char(r.response_due, 'YYYY-MM-DD HH24:MI'), 'no target')
			|| COALESCE(', first lever ' || pg_catalog.to_char(r.first_response_at, 'YYYY-MM-DD HH24:MI'), ', no lever yet')
			|| CASE WHEN COALESCE(r.first_response_at, pg_catalog.now()) > r.response_due THEN ' <b class="sev1">breached</b>' ELSE '' END
			|| '</td></tr><tr><th>Resolution</th><td>'
			|| COALESCE('due ' || pg_catalog.to_char(r.resolution_due, 'YYYY-MM-DD HH24:MI'), 'no target')
			|| COALESCE(', resolved ' || pg_catalog.to_char(r.resolved_at, 'YYYY-MM-DD HH24:MI'), ', unresolved')
			|| CASE WHEN COALESCE(r.resolved_at, pg_catalog.now()) > r.resolution_due THEN ' <b class="sev1">breached</b>' ELSE '' END
			|| '</td></tr>'
			|| CASE WHEN r.cause_category IS NOT NULL THEN '<tr><th>Diagnosis</th><td>' || evmgmt.html_escape(r.cause_category || ' / ' || r.lever_class || COALESCE(': ' || r.proximate_cause, '')) || '</td></tr>' ELSE '' END
			|| CASE WHEN r.resolution_note IS NOT NULL THEN '<tr><th>Resolution note</th><td>' || evmgmt.html_escape(r.resolution_note) || '</td></tr>' ELSE '' END
			|| '</table>'
			|| evmgmt.event_report_chart(e.event_id, r.pool);

		SELECT * INTO w FROM evmgmt.event_window_stats(e.event_id, r.pool, pg_catalog.now());
		IF w.worst_interval IS NOT NULL THEN
			SELECT s.*, s.offered * s.aht_seconds::float8 / (s.interval_minutes * 60.0) AS traffic INTO a
			FROM evmgmt.interval_stat s
			WHERE s.interval_start = w.worst_interval AND s.site_id = e.site_id AND s.pool = r.pool
			  AND (e.queue_id IS NULL OR s.queue_id = e.queue_id)
			ORDER BY evmgmt.interval_service_level(s.answered_in_threshold, s.offered) NULLS LAST LIMIT 1;
			v_html := v_html || pg_catalog.format('<h3>Power of One at the worst interval (%s, queue %s, service level <span class="worst-sl">%s%%</span>)</h3>',
												  pg_catalog.to_char(a.interval_start, 'YYYY-MM-DD HH24:MI'), evmgmt.html_escape(a.queue_id),
												  pg_catalog.round((100 * w.worst_service_level)::numeric, 1));
			IF a.aht_seconds IS NOT NULL AND a.staffed IS NOT NULL AND a.staffed >= 1 AND a.staffed < 1000000 THEN
				v_rows := '';
				FOR q IN SELECT p.*
						 FROM evmgmt.power_of_one(a.traffic, pg_catalog.floor(a.staffed)::integer, a.aht_seconds, a.threshold_seconds, 3) p
				LOOP
					v_rows := v_rows || pg_catalog.format('<tr%s><td>%s</td><td>%s</td><td>%s%%</td><td>%s</td><td>%s%%</td></tr>',
						CASE WHEN q.delta = 0 THEN ' class="staffed"' ELSE '' END, q.agents,
						CASE WHEN q.delta > 0 THEN '+' ELSE '' END || q.delta,
						pg_catalog.round((100 * q.service_level)::numeric, 1),
						CASE WHEN q.asa = 'Infinity' THEN 'unbounded' ELSE pg_catalog.round(q.asa::numeric, 1) || ' s' END,
						pg_catalog.round((100 * q.occupancy)::numeric, 1));
				END LOOP;
				v_html := v_html || '<table class="power-of-one"><tr><th>Agents</th><th>Change</th><th>Service level (Erlang C)</th><th>ASA</th><th>Occupancy</th></tr>'
					|| v_rows || '</table>';
			ELSE
				v_html := v_html || '<p class="muted">No staffing or handle time recorded for that interval.</p>';
			END IF;
		END IF;
		v_html := v_html || '</section>';
	END LOOP;

	-- what prediction foresaw and how it turned out (49_prediction.sql)
	v_rows := '';
	FOR r IN SELECT ps.* FROM evmgmt.prediction_state ps WHERE ps.event_id = e.event_id ORDER BY ps.pool LOOP
		v_rows := v_rows || pg_catalog.format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s%%</td><td>%s</td><td>%s</td></tr>',
			r.pool, pg_catalog.to_char(r.predicted_at, 'YYYY-MM-DD HH24:MI'), r.severity,
			pg_catalog.to_char(r.breach_starts_at, 'YYYY-MM-DD HH24:MI'),
			COALESCE(pg_catalog.round((100 * r.projected_service_level)::numeric, 1)::text, '-'),
			COALESCE(r.agents_needed::text, '-'), evmgmt.html_escape(r.status));
	END LOOP;
	IF v_rows <> '' THEN
		v_html := v_html || '<h2>Prediction</h2><table id="prediction"><tr><th>Pool</th><th>Predicted</th><th>Tier</th>'
			|| '<th>Breach from</th><th>Projected service level</th><th>Agents to add</th><th>Outcome</th></tr>' || v_rows || '</table>';
	END IF;

	-- what response rules did (72_response_rules.sql)
	v_rows := '';
	FOR r IN SELECT * FROM evmgmt.response_rule_firing f WHERE f.event_id = e.event_id ORDER BY f.fired_at, f.firing_id LOOP
		v_rows := v_rows || pg_catalog.format('<tr class="%s"><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			evmgmt.html_escape(r.outcome), pg_catalog.to_char(r.fired_at, 'YYYY-MM-DD HH24:MI:SS'), r.pool,
			evmgmt.html_escape(r.rule_id), evmgmt.html_escape(r.lever), evmgmt.html_escape(r.outcome || COALESCE(': ' || r.detail, '')));
	END LOOP;
	IF v_rows <> '' THEN
		v_html := v_html || '<h2>Automatic responses</h2><table id="rules"><tr><th>Time</th><th>Pool</th><th>Rule</th>'
			|| '<th>Lever</th><th>Outcome</th></tr>' || v_rows || '</table>';
	END IF;

	-- escalation timeline: who was paged how and when, who acknowledged
	v_rows := '';
	FOR r IN
		SELECT x.at, x.pool, x.what, x.channel, x.who, x.outcome FROM (
			SELECT sr.fired_at AS at, esc.pool, 'step ' || sr.step_no || CASE WHEN sr.retry_no > 0 THEN ' retry ' || sr.retry_no ELSE '' END AS what,
				   sr.channel::text AS channel, c.name AS who, sr.outcome || COALESCE(' / ' || n.state, '') AS outcome
			FROM evmgmt.escalation esc
			JOIN evmgmt.escalation_step_run sr ON sr.escalation_id = esc.escalation_id
			LEFT JOIN evmgmt.contact c ON c.contact_id = sr.contact_id
			LEFT JOIN evmgmt.notification n ON n.notification_id = sr.notification_id
			WHERE esc.event_id = e.event_id
			UNION ALL
			SELECT k.acked_at, esc.pool, 'acknowledged', k.channel, c.name, k.note
			FROM evmgmt.escalation esc
			JOIN evmgmt.escalation_ack k ON k.escalation_id = esc.escalation_id
			LEFT JOIN evmgmt.contact c ON c.contact_id = k.contact_id
			WHERE esc.event_id = e.event_id
		) x ORDER BY x.at, x.what
	LOOP
		v_rows := v_rows || pg_catalog.format('<tr class="%s"><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			CASE WHEN r.what = 'acknowledged' THEN 'ack' ELSE 'page' END,
			pg_catalog.to_char(r.at, 'YYYY-MM-DD HH24:MI:SS'), r.pool, evmgmt.html_escape(r.what),
			COALESCE(evmgmt.html_escape(r.channel), ''), COALESCE(evmgmt.html_escape(r.who), ''), COALESCE(evmgmt.html_escape(r.outcome), ''));
	END LOOP;
	v_html := v_html || '<h2>Escalation timeline</h2>'
		|| CASE WHEN v_rows = '' THEN '<p class="muted">No escalation steps.</p>'
				ELSE '<table id="escalations"><tr><th>Time</th><th>Pool</th><th>Step</th><th>Channel</th><th>Who</th><th>Outcome / note</th></tr>' || v_rows || '</table>' END;

	-- the event's own timeline
	v_rows := '';
	FOR r IN SELECT * FROM evmgmt.event_timeline x WHERE x.event_id = e.event_id ORDER BY x.at, x.entry_id LOOP
		v_rows := v_rows || pg_catalog.format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			pg_catalog.to_char(r.at, 'YYYY-MM-DD HH24:MI:SS'), COALESCE(r.pool::text, ''), evmgmt.html_escape(r.action),
			evmgmt.html_escape(r.actor),
			evmgmt.html_escape(pg_catalog.concat_ws(' ', CASE WHEN r.from_severity IS NOT NULL OR r.to_severity IS NOT NULL
															   THEN COALESCE(r.from_severity::text, '') || ' -> ' || COALESCE(r.to_severity::text, '') END,
													r.lever, r.reason)));
	END LOOP;
	v_html := v_html || '<h2>Timeline</h2><table id="timeline"><tr><th>Time</th><th>Pool</th><th>Action</th><th>Actor</th><th>Detail</th></tr>'
		|| v_rows || '</table>';

	-- responses
	v_rows := '';
	FOR r IN SELECT * FROM evmgmt.response_action x WHERE x.event_id = e.event_id ORDER BY x.activated_at, x.action_id LOOP
		v_rows := v_rows || pg_catalog.format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			pg_catalog.to_char(r.activated_at, 'YYYY-MM-DD HH24:MI:SS'), r.pool, evmgmt.html_escape(r.lever),
			evmgmt.html_escape(r.actor), COALESCE(evmgmt.html_escape(r.note), ''));
	END LOOP;
	IF v_rows <> '' THEN
		v_html := v_html || '<h2>Responses</h2><table id="responses"><tr><th>Time</th><th>Pool</th><th>Lever</th><th>Actor</th><th>Note</th></tr>' || v_rows || '</table>';
	END IF;

	-- analysis, action items, objective impacts
	SELECT * INTO a FROM evmgmt.post_resolution_analysis x WHERE x.event_id = e.event_id;
	IF FOUND THEN
		v_html := v_html || '<h2>Post-resolution analysis</h2><table id="analysis">'
			|| '<tr><th>Root cause</th><td>' || evmgmt.html_escape(a.root_cause) || '</td></tr>'
			|| '<tr><th>Contributing factors</th><td>' || COALESCE(evmgmt.html_escape(pg_catalog.array_to_string(a.contributing_factors, '; ')), '') || '</td></tr>'
			|| '<tr><th>Action plan</th><td>' || evmgmt.html_escape(a.action_plan) || '</td></tr>'
			|| CASE WHEN a.detector_gap IS NOT NULL THEN '<tr><th>Detector gap</th><td>' || evmgmt.html_escape(a.detector_gap) || '</td></tr>' ELSE '' END
			|| '<tr><th>Recorded</th><td>' || evmgmt.html_escape(pg_catalog.to_char(a.recorded_at, 'YYYY-MM-DD HH24:MI') || ' by ' || a.recorded_by) || '</td></tr>'
			|| '</table>';
	ELSE
		v_html := v_html || '<h2>Post-resolution analysis</h2><p class="muted" id="analysis">No analysis recorded.</p>';
	END IF;
	v_rows := '';
	FOR r IN SELECT * FROM evmgmt.action_item x WHERE x.event_id = e.event_id ORDER BY x.due_date, x.item_id LOOP
		v_rows := v_rows || pg_catalog.format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			evmgmt.html_escape(r.description), evmgmt.html_escape(r.owner), r.due_date,
			CASE WHEN r.done_at IS NOT NULL THEN 'done ' || pg_catalog.to_char(r.done_at, 'YYYY-MM-DD')
				 WHEN r.due_date < CURRENT_DATE THEN '<b class="sev1">overdue</b>' ELSE 'open' END);
	END LOOP;
	IF v_rows <> '' THEN
		v_html := v_html || '<h2>Action items</h2><table id="action-items"><tr><th>Item</th><th>Owner</th><th>Due</th><th>Status</th></tr>' || v_rows || '</table>';
	END IF;
	v_rows := '';
	FOR r IN SELECT * FROM evmgmt.objective_impact x WHERE x.event_id = e.event_id ORDER BY x.objective LOOP
		v_rows := v_rows || pg_catalog.format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			r.objective, evmgmt.html_escape(r.direction), COALESCE(r.magnitude || ' ' || evmgmt.html_escape(r.unit), ''),
			COALESCE(evmgmt.html_escape(r.note), ''));
	END LOOP;
	IF v_rows <> '' THEN
		v_html := v_html || '<h2>Objective impacts</h2><table id="impacts"><tr><th>Objective</th><th>Direction</th><th>Magnitude</th><th>Note</th></tr>' || v_rows || '</table>';
	END IF;
	RETURN v_html || pg_catalog.format('<p class="muted">Generated by evmgmt at %s.</p></body></html>',
									   pg_catalog.to_char(pg_catalog.now(), 'YYYY-MM-DD HH24:MI TZ'));
END
$$;
COMMENT ON FUNCTION evmgmt.event_report(bigint) IS 'The post-event report of one event as a self-contained HTML document (inline SVG service-level chart per pool with thresholds and marks, what prediction foresaw, what response rules did, escalation timeline with names and acknowledgment channels but no addresses, Power of One at the worst interval, timeline, responses, analysis, action items, objective impacts); every database value HTML-escaped';
