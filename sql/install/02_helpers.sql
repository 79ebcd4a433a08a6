-- Helpers used by several concerns: time zone check and address masking
-- (constraints and reader views), the built-in row guard (catalogues,
-- message templates), duration settings, and the worker wake-up on commit
-- (src/launcher.c) that the outbox and the escalations call from triggers.

-- Does the server know this time zone name?  Used by CHECK constraints; the
-- zone database does not change under a running server, hence IMMUTABLE.
CREATE FUNCTION evmgmt.is_time_zone(name text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT FROM pg_catalog.pg_timezone_names WHERE pg_timezone_names.name = is_time_zone.name);
COMMENT ON FUNCTION evmgmt.is_time_zone(text) IS 'True when the argument is a time zone name the server knows (IANA names such as Europe/Berlin)';

-- Mask a phone number or e-mail address for logs and reader views:
-- keep the last two digits of a phone, the first letter and domain of an e-mail.
CREATE FUNCTION evmgmt.mask_address(address text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE
	WHEN address ~ '@' THEN pg_catalog.left(address, 1) || '***' || pg_catalog.substr(address, pg_catalog.strpos(address, '@'))
	WHEN address ~ '^\+?[0-9 ().-]{5,}$' THEN pg_catalog.regexp_replace(pg_catalog.left(address, -2), '[0-9]', '*', 'g') || pg_catalog.right(address, 2)
	ELSE '***'
END;
COMMENT ON FUNCTION evmgmt.mask_address(text) IS 'Masks a phone number (all but the last two digits) or e-mail address (all but the first letter and the domain)';

-- Refuse changes to the rows shipped with the extension.
CREATE FUNCTION evmgmt.protect_builtin() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF (TG_OP = 'INSERT' AND NEW.builtin) OR (TG_OP = 'UPDATE' AND (OLD.builtin OR NEW.builtin)) OR (TG_OP = 'DELETE' AND OLD.builtin) THEN
		RAISE EXCEPTION 'rows shipped with evmgmt cannot be changed'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = pg_catalog.format('Table %s holds built-in catalogue rows (builtin = true).', TG_TABLE_NAME),
				  HINT = 'Add a row of your own with builtin = false instead.';
	END IF;
	RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION evmgmt.protect_builtin() IS 'Trigger: refuses INSERT, UPDATE and DELETE of built-in catalogue rows';

-- A duration setting (GUC_UNIT_S) as an interval, with the built-in default
-- when the library is not loaded.
CREATE FUNCTION evmgmt.setting_interval(name text, fallback interval) RETURNS interval
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN COALESCE(NULLIF(pg_catalog.current_setting(name, true), '')::interval, fallback);
END
$$;
COMMENT ON FUNCTION evmgmt.setting_interval(text, interval) IS 'Value of a duration setting as an interval, or the fallback when it is not defined';

-- The wake-up on commit (src/launcher.c).
CREATE FUNCTION evmgmt.wake_workers() RETURNS void
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'evmgmt_wake_workers';
COMMENT ON FUNCTION evmgmt.wake_workers() IS 'Wake this database''s evmgmt worker when the calling transaction commits (nothing happens on abort)';

CREATE FUNCTION evmgmt.wake_workers_trigger() RETURNS trigger
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'evmgmt_wake_workers_trigger';
COMMENT ON FUNCTION evmgmt.wake_workers_trigger() IS 'Statement trigger: wake the worker at commit when due work was written (not while evmgmt.restoring is on)';
