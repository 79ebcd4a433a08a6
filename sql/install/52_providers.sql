-- Channel providers: where each channel is delivered (webhook endpoints, SMS
-- and voice gateways, SMTP relays) and their credentials.

CREATE TABLE evmgmt.channel_provider (
	provider_id		text PRIMARY KEY CHECK (provider_id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	channel			evmgmt.channel NOT NULL,
	kind			text NOT NULL CHECK (kind IN ('webhook', 'smtp', 'twilio', 'ntfy')),
	endpoint		text NOT NULL,
	username		text,
	from_address	text,
	settings		jsonb NOT NULL DEFAULT '{}' CHECK (pg_catalog.jsonb_typeof(settings) = 'object'),
	active			boolean NOT NULL DEFAULT true,
	CONSTRAINT channel_provider_kind_fits_channel CHECK (
		(kind = 'webhook' AND channel = 'webhook') OR (kind = 'smtp' AND channel = 'email') OR
		(kind = 'twilio' AND channel IN ('sms', 'voice')) OR (kind = 'ntfy' AND channel = 'push')),
	CONSTRAINT channel_provider_endpoint_url CHECK (
		CASE kind WHEN 'smtp' THEN endpoint ~ '^smtps?://[^/\s]+(:[0-9]+)?/?$' ELSE endpoint ~ '^https?://[^/\s]+' END),
	CONSTRAINT channel_provider_email_has_sender CHECK (kind <> 'smtp' OR from_address IS NOT NULL)
);
CREATE UNIQUE INDEX channel_provider_one_active_per_channel ON evmgmt.channel_provider (channel)
	WHERE active AND channel <> 'webhook';
COMMENT ON TABLE evmgmt.channel_provider IS 'Where a channel is delivered: webhook endpoints, the SMTP relay, the Twilio-compatible SMS/voice API, the ntfy-compatible push API (at most one active provider per person channel)';

CREATE TABLE evmgmt.provider_secret (
	provider_id		text PRIMARY KEY REFERENCES evmgmt.channel_provider ON DELETE CASCADE,
	secret			text NOT NULL CHECK (secret <> '')
);
COMMENT ON TABLE evmgmt.provider_secret IS 'Credentials of channel providers (webhook signing secret, SMTP or API password); readable by evmgmt_admin only';

-- The outbound allow-list (src/allowlist.c): would the dispatcher connect to
-- this address?  For admins checking an endpoint before they use it.
CREATE FUNCTION evmgmt.outbound_allowed(address inet) RETURNS boolean
AS 'MODULE_PATHNAME', 'evmgmt_outbound_allowed'
LANGUAGE C STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.outbound_allowed(inet) IS 'Whether evmgmt.outbound_allow lets the dispatcher connect to the address: "*" allows public addresses only; loopback, private, link-local (metadata), CGNAT, multicast and other special-purpose ranges must be listed explicitly';
