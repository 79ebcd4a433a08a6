-- evmgmt upgrade script 0.1.0 -> 0.2.0, maintained by hand.
--
-- Every change to tables, types, functions, views, triggers, grants or dump
-- registration that the 0.2.0 install script (assembled from sql/install/)
-- makes must be made here too, in the same commit: the upgrade test
-- (test/integration/upgrade.sh) compares a catalog upgraded from 0.1.0 with a
-- fresh 0.2.0 one and fails on any difference.

\echo Use "ALTER EXTENSION evmgmt UPDATE TO '0.2.0'" to load this file. \quit
