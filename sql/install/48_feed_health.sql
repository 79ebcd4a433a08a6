-- Feed health: the detection blind spot that is easiest to miss.  A site
-- whose intervals stop arriving for longer than its operation's
-- feed_due_intervals past due opens a system event (wfm_platform_outage,
-- diagnosed with cause measurement); when data resumes, its conditions are
-- marked recovering (and resolved when a responder has responded).

CREATE TABLE evmgmt.feed_health (
	site_id			text COLLATE "C" PRIMARY KEY REFERENCES evmgmt.site ON DELETE CASCADE,
	event_id		bigint,
	last_interval_end timestamptz NOT NULL,
	silent_since	timestamptz NOT NULL,
	opened_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	resumed_at		timestamptz
);
COMMENT ON TABLE evmgmt.feed_health IS 'Sites whose interval feed went silent: since when the next interval was due, the feed-health event, and when data resumed';

-- Open a feed-health event for every live site that went silent by at (a
-- site whose latest data ended more than backfill_after ago is catching up,
-- not live); say when the next site would (for the worker's next wake-up).
CREATE FUNCTION evmgmt.check_feed_health(at timestamptz DEFAULT pg_catalog.now()) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	v_event bigint;
	v_pool evmgmt.pool;
	v_next timestamptz;
BEGIN
	IF at IS NULL OR NOT pg_catalog.isfinite(at) THEN
		RAISE EXCEPTION 'at must be a finite time' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR r IN
		SELECT l.site_id, l.last_end, l.minutes, l.pools, pol.feed_due_intervals, pol.feed_severity,
			   l.last_end + l.minutes * (1 + pol.feed_due_intervals) * interval '1 minute' AS silent_at,
			   l.last_end + l.minutes * interval '1 minute' AS due_at, fh.site_id IS NOT NULL AS known,
			   fh.resumed_at, fh.last_interval_end AS known_end
		FROM (SELECT s.site_id, si.operation_id,
					 pg_catalog.max(s.last_interval_start) AS last_start,
					 pg_catalog.array_agg(DISTINCT s.pool ORDER BY s.pool) AS pools,
					 pg_catalog.max(s.last_interval_start) + pg_catalog.max(x.interval_minutes) * interval '1 minute' AS last_end,
					 pg_catalog.max(x.interval_minutes) AS minutes
			  FROM evmgmt.interval_series s
			  JOIN evmgmt.site si ON si.site_id = s.site_id
			  LEFT JOIN LATERAL (SELECT i.interval_minutes FROM evmgmt.interval_stat i
								 WHERE i.interval_start = s.last_interval_start AND i.site_id = s.site_id
								   AND i.queue_id = s.queue_id AND i.pool = s.pool) x ON true
			  GROUP BY s.site_id, si.operation_id) l
		JOIN evmgmt.effective_detection_policy pol ON pol.operation_id = l.operation_id
		LEFT JOIN evmgmt.feed_health fh ON fh.site_id = l.site_id
		-- a feed whose latest data is older than backfill_after is catching
		-- up (backfill), not live
		WHERE pol.enabled AND l.minutes IS NOT NULL AND l.last_end >= at - pol.backfill_after
	LOOP
		IF r.silent_at > at THEN
			v_next := LEAST(v_next, r.silent_at);
			CONTINUE;
		END IF;
		-- silent: once per silence (a site already opened for this last interval waits for data)
		CONTINUE WHEN r.known AND r.known_end = r.last_end;
		v_event := evmgmt.open_event('system', r.site_id, r.pools, 'rule',
			pg_catalog.format('WFM feed silent at %s: no intervals since %s', r.site_id,
							  pg_catalog.to_char(r.last_end AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC'),
			LEAST(r.due_at, pg_catalog.now()), NULL, 'wfm_platform_outage',
			pg_catalog.format('Opened by rule feed_health: the interval due at %s is %s intervals past due.',
							  r.due_at, r.feed_due_intervals));
		FOREACH v_pool IN ARRAY r.pools
		LOOP
			PERFORM evmgmt.classify_pool(v_event, v_pool, r.feed_severity);
			PERFORM evmgmt.diagnose_pool(v_event, v_pool, 'measurement', 'it_escalation', 'interval feed stopped arriving');
		END LOOP;
		INSERT INTO evmgmt.feed_health AS f (site_id, event_id, last_interval_end, silent_since)
		VALUES (r.site_id, v_event, r.last_end, r.due_at)
		ON CONFLICT (site_id) DO UPDATE
		SET event_id = EXCLUDED.event_id, last_interval_end = EXCLUDED.last_interval_end,
			silent_since = EXCLUDED.silent_since, opened_at = pg_catalog.clock_timestamp(), resumed_at = NULL;
		INSERT INTO evmgmt.detection_log (site_id, data_time, rule, decision, event_id, severity, event_type, subtype, evidence)
		VALUES (r.site_id, r.due_at, 'feed_health', 'feed_silent', v_event, r.feed_severity, 'system', 'wfm_platform_outage',
				pg_catalog.jsonb_build_object('figures', pg_catalog.jsonb_build_object(
					'last_interval_end', r.last_end, 'interval_minutes', r.minutes, 'due_at', r.due_at,
					'silent_at', r.silent_at, 'checked_at', at)));
		PERFORM evmgmt.detection_note(v_event, NULL, 'feed_health', 'feed silent since ' || r.due_at,
									  pg_catalog.jsonb_build_object('last_interval_end', r.last_end));
	END LOOP;
	RETURN v_next;
END
$$;
COMMENT ON FUNCTION evmgmt.check_feed_health(timestamptz) IS 'Opens a system event (wfm_platform_outage, cause measurement) for every site whose next interval is feed_due_intervals past due at the given moment; returns when the next site would go silent';

-- Data arrived for these sites: a silent feed has resumed.  Called by
-- interval_stat's statement trigger through detect_loaded.
CREATE FUNCTION evmgmt.feed_resumed(touched evmgmt.interval_touch[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	pc record;
BEGIN
	FOR r IN
		SELECT f.site_id, f.event_id, pg_catalog.max(t.last_start) AS last_start
		FROM evmgmt.feed_health f
		JOIN pg_catalog.unnest(touched) t ON t.site_id = f.site_id
		WHERE f.resumed_at IS NULL AND t.last_start >= f.last_interval_end
		GROUP BY f.site_id, f.event_id
	LOOP
		UPDATE evmgmt.feed_health SET resumed_at = pg_catalog.clock_timestamp() WHERE site_id = r.site_id;
		INSERT INTO evmgmt.detection_log (site_id, data_time, rule, decision, event_id, event_type, subtype, evidence)
		VALUES (r.site_id, r.last_start, 'feed_health', 'feed_resumed', r.event_id, 'system', 'wfm_platform_outage',
				pg_catalog.jsonb_build_object('figures', pg_catalog.jsonb_build_object('first_interval_start', r.last_start)));
		IF NOT EXISTS (SELECT FROM evmgmt.event e WHERE e.event_id = r.event_id AND e.closed_at IS NULL AND e.cancelled_at IS NULL) THEN
			CONTINUE;
		END IF;
		PERFORM evmgmt.detection_note(r.event_id, NULL, 'feed_health', 'feed resumed: recovering',
									  pg_catalog.jsonb_build_object('status', 'recovering', 'data_time', r.last_start));
		FOR pc IN SELECT p.pool FROM evmgmt.pool_condition p WHERE p.event_id = r.event_id AND p.state = 'responding'
		LOOP
			PERFORM evmgmt.resolve_pool(r.event_id, pc.pool, 'rule:feed_health: data resumed');
		END LOOP;
	END LOOP;
END
$$;
COMMENT ON FUNCTION evmgmt.feed_resumed(evmgmt.interval_touch[]) IS 'Marks the feed-health events of sites that receive data again as recovering (timeline note; conditions a responder responded to are resolved)';

-- Power of One on live intervals: for the latest interval of each series,
-- service level and ASA now (Erlang C from offered, AHT and staffed) and with
-- 1, 2, 3 agents more and fewer, and the agents the queue's target needs.
CREATE VIEW evmgmt.live_power_of_one AS
SELECT s.site_id, s.queue_id, s.pool, i.interval_start, i.interval_minutes, w.traffic, w.agents AS staffed_agents,
	   evmgmt.agents_required(w.traffic, i.aht_seconds, q.sl_target, q.sl_seconds) AS agents_needed,
	   q.sl_target, q.sl_seconds, p.delta, p.agents, p.service_level, p.asa, p.occupancy
FROM evmgmt.interval_series s
JOIN evmgmt.interval_stat i ON i.interval_start = s.last_interval_start AND i.site_id = s.site_id
						   AND i.queue_id = s.queue_id AND i.pool = s.pool
JOIN evmgmt.queue q ON q.queue_id = s.queue_id
CROSS JOIN LATERAL (SELECT i.offered * i.aht_seconds / (i.interval_minutes * 60.0) AS traffic,
						   pg_catalog.round(i.staffed)::integer AS agents) w
CROSS JOIN LATERAL evmgmt.power_of_one(w.traffic, w.agents, i.aht_seconds, q.sl_seconds, 3) p
WHERE i.offered > 0 AND i.aht_seconds IS NOT NULL AND i.staffed IS NOT NULL AND w.agents >= 1
  AND p.agents >= 1;
COMMENT ON VIEW evmgmt.live_power_of_one IS 'Power of One for the latest interval of every series: traffic, staffed agents, agents needed for the queue target, and service level, ASA and occupancy with 3, 2, 1 agents fewer, as staffed, and 1, 2, 3 more (Erlang C)';
