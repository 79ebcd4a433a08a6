-- evmgmt upgrade script 0.1.0 -> 0.2.0, maintained by hand.
--
-- Every change to tables, types, functions, views, triggers, grants or dump
-- registration that the 0.2.0 install script (assembled from sql/install/)
-- makes must be made here too, in the same commit: the upgrade test
-- (test/integration/upgrade.sh) compares a catalog upgraded from 0.1.0 with a
-- fresh 0.2.0 one and fails on any difference.

\echo Use "ALTER EXTENSION evmgmt UPDATE TO '0.2.0'" to load this file. \quit

-- Queueing math (src/erlang_math.c): the Erlang functions accept and return
-- up to 1,000,000 agents (0.1.0: 100,000).  The C entry points and SQL
-- signatures are unchanged; only the comments that name the limit change.
COMMENT ON FUNCTION evmgmt.erlang_b(float8, int) IS 'Erlang B: blocking probability of a loss system with the given traffic (Erlangs) and agents (1..1000000)';
COMMENT ON FUNCTION evmgmt.power_of_one(float8, int, float8, float8, int) IS 'Power of One: Erlang C service level, ASA and occupancy from agents - steps to agents + steps (counts below 1 or above 1000000 skipped), ascending';
