-- Redaction helpers (issue 14): credentials scrubbed from provider responses
-- and endpoint URLs before readers and responders see them (the views in
-- 82_redaction.sql, escalation_history), next to mask_address (02_helpers.sql).

-- Scrub credentials from a free text (an error message or response body):
-- Authorization schemes and their tokens, key=value secrets, URL user
-- information; with mask_contacts also phone numbers and e-mail addresses.
CREATE FUNCTION evmgmt.redact_text(t text, mask_contacts boolean DEFAULT true) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r text := t;
BEGIN
	IF r IS NULL THEN
		RETURN NULL;
	END IF;
	-- Authorization: Bearer/Basic/Token <credential>
	r := pg_catalog.regexp_replace(r, '(bearer|basic|token|digest)(\s+)[A-Za-z0-9._~+/=:-]{4,}', '\1\2[redacted]', 'gi');
	-- key=value and "key": "value" pairs whose key names a secret
	r := pg_catalog.regexp_replace(r,
		'((?:access_?token|api_?key|apikey|auth_?token|token|secret|password|passwd|pwd|signature|sig|key|client_secret)["'']?\s*[:=]\s*["'']?)[^"''&\s,;}]+',
		'\1[redacted]', 'gi');
	-- user information in URLs
	r := pg_catalog.regexp_replace(r, '([a-z][a-z0-9+.-]*://)[^/@\s]+@', '\1[redacted]@', 'gi');
	-- Twilio-style account and key ids (AC..., SK... followed by 32 hex digits)
	r := pg_catalog.regexp_replace(r, '\m(AC|SK|MG|PN)[0-9a-fA-F]{32}\M', '\1[redacted]', 'g');
	IF mask_contacts THEN
		r := pg_catalog.regexp_replace(r, '[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\.[A-Za-z0-9.-]+)', '***@\1', 'g');
		-- runs of 6 or more digits (phone numbers, also written +1 212-555-0102)
		r := pg_catalog.regexp_replace(r, '\+?[0-9][0-9 ().-]{4,}[0-9]', '[number]', 'g');
	END IF;
	RETURN r;
END
$$;
COMMENT ON FUNCTION evmgmt.redact_text(text, boolean) IS 'Free text with credentials removed (Authorization tokens, key=value secrets, URL user information, provider account ids) and, unless mask_contacts is false, phone numbers and e-mail addresses masked';

-- An endpoint URL fit to show: no user information, no query values, no
-- fragment; account ids in the path replaced.
CREATE FUNCTION evmgmt.redact_url(u text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.regexp_replace(
	pg_catalog.regexp_replace(
		pg_catalog.regexp_replace(
			pg_catalog.regexp_replace(u, '^([a-z][a-z0-9+.-]*://)[^/@]*@', '\1[redacted]@', 'i'),
			'([?&][^=&#]+)=[^&#]*', '\1=[redacted]', 'g'),
		'#.*$', ''),
	'\m(AC|SK|MG|PN)[0-9a-fA-F]{32}\M', '\1[redacted]', 'g');
COMMENT ON FUNCTION evmgmt.redact_url(text) IS 'A URL without user information, query values, fragment or provider account ids';
