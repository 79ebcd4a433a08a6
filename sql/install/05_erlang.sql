-- Queueing math (src/erlang.c, src/erlang_math.c): Erlang B, C and A.
-- Units: traffic in Erlangs (hours of work per hour), times in seconds,
-- probabilities and occupancy as fractions 0..1.  Reference: docs/erlang.md.
--
-- All are pure functions of their arguments, IMMUTABLE STRICT PARALLEL SAFE,
-- and EXECUTE stays granted to PUBLIC.  They carry no SET search_path: they
-- are C code that resolves no names, and a SET clause would route every call
-- through fmgr_security_definer, which saves and restores the setting per
-- call and costs more than the math itself.
-- Bad arguments raise SQLSTATE 22023 with a message that names the argument.

CREATE FUNCTION evmgmt.erlang_b(traffic float8, agents int) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_erlang_b';
COMMENT ON FUNCTION evmgmt.erlang_b(float8, int) IS 'Erlang B: blocking probability of a loss system with the given traffic (Erlangs) and agents (1..1000000)';

CREATE FUNCTION evmgmt.erlang_c(traffic float8, agents int) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_erlang_c';
COMMENT ON FUNCTION evmgmt.erlang_c(float8, int) IS 'Erlang C: probability that a call waits; 1 when agents <= traffic (unstable queue)';

CREATE FUNCTION evmgmt.service_level(traffic float8, agents int, aht_seconds float8, target_seconds float8) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_service_level';
COMMENT ON FUNCTION evmgmt.service_level(float8, int, float8, float8) IS 'Erlang C service level 0..1: share of calls answered within target_seconds, 1 - C exp(-(agents - traffic) target / aht); 0 when agents <= traffic';

CREATE FUNCTION evmgmt.asa(traffic float8, agents int, aht_seconds float8) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_asa';
COMMENT ON FUNCTION evmgmt.asa(float8, int, float8) IS 'Erlang C average speed of answer in seconds over all calls, C aht / (agents - traffic); Infinity when agents <= traffic';

CREATE FUNCTION evmgmt.occupancy(traffic float8, agents int) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_occupancy';
COMMENT ON FUNCTION evmgmt.occupancy(float8, int) IS 'Agent occupancy traffic / agents, capped at 1 (agents <= traffic: all agents busy all the time)';

CREATE FUNCTION evmgmt.agents_required(traffic float8, aht_seconds float8, target_sl float8, target_seconds float8,
									   max_occupancy float8 DEFAULT 1, shrinkage float8 DEFAULT 0) RETURNS int
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_agents_required';
COMMENT ON FUNCTION evmgmt.agents_required(float8, float8, float8, float8, float8, float8) IS 'Smallest number of agents whose Erlang C service level reaches target_sl within target_seconds and whose occupancy is at most max_occupancy, grossed up for shrinkage; 0 for zero traffic';

CREATE FUNCTION evmgmt.power_of_one(traffic float8, agents int, aht_seconds float8, target_seconds float8, steps int DEFAULT 5)
RETURNS TABLE (agents int, delta int, service_level float8, asa float8, occupancy float8)
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE ROWS 11
AS 'MODULE_PATHNAME', 'evmgmt_power_of_one';
COMMENT ON FUNCTION evmgmt.power_of_one(float8, int, float8, float8, int) IS 'Power of One: Erlang C service level, ASA and occupancy from agents - steps to agents + steps (counts below 1 or above 1000000 skipped), ascending';

CREATE FUNCTION evmgmt.erlang_a(traffic float8, agents int, aht_seconds float8, patience_seconds float8, target_seconds float8,
								OUT p_wait float8, OUT p_abandon float8, OUT service_level float8,
								OUT asa float8, OUT mean_wait float8, OUT occupancy float8)
RETURNS record
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_erlang_a';
COMMENT ON FUNCTION evmgmt.erlang_a(float8, int, float8, float8, float8) IS 'Erlang A (M/M/n+M, exponential patience with mean patience_seconds): probability of waiting, of abandoning, share answered within target_seconds, ASA of answered calls, mean wait of all calls, occupancy';

CREATE FUNCTION evmgmt.traffic(calls float8, interval_seconds float8, aht_seconds float8) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_traffic';
COMMENT ON FUNCTION evmgmt.traffic(float8, float8, float8) IS 'Offered traffic in Erlangs from an interval: calls * aht_seconds / interval_seconds';
