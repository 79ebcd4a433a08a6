-- placeholder
CREATE FUNCTION evmgmt.detect_loaded(touched evmgmt.interval_touch[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ BEGIN END $$;
