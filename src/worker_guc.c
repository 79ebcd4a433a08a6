/*-------------------------------------------------------------------------
 *
 * worker_guc.c
 *	  Settings of the evmgmt background workers and of the dispatcher.
 *
 * evmgmt.max_databases sizes shared memory and is PGC_POSTMASTER, defined
 * only while shared_preload_libraries is processed.  Everything else is
 * PGC_SIGHUP: the workers re-read it on SIGHUP (pg_reload_conf()).  The
 * outbound allow-list names where notifications may go, so only superusers
 * may see or change it.
 *
 * IDENTIFICATION
 *	  src/worker_guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "workers.h"

bool		evmgmt_worker_enabled = true;
int			evmgmt_max_databases = 16;
int			evmgmt_max_concurrency = 32;
int			evmgmt_connect_timeout_ms = 5000;
int			evmgmt_request_timeout_ms = 30000;
int			evmgmt_batch_size = 200;
int			evmgmt_max_attempts = 10;
int			evmgmt_backoff_base_ms = 1000;
int			evmgmt_backoff_cap_ms = 3600000;
int			evmgmt_lease_time_s = 300;
char	   *evmgmt_outbound_allow = NULL;
int			evmgmt_delivery_retention_min = 30 * 24 * 60;

/* Define the worker settings; preload says whether postmaster ones may be. */
void
DefineWorkerSettings(bool preload)
{
	if (preload)
		DefineCustomIntVariable("evmgmt.max_databases",
								gettext_noop("Maximum number of databases that get an evmgmt worker."),
								gettext_noop("Each database with the extension needs one slot and one background worker (see max_worker_processes)."),
								&evmgmt_max_databases,
								16, 1, 1024,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	DefineCustomBoolVariable("evmgmt.worker_enabled",
							 gettext_noop("Runs escalations and dispatches notifications in the background."),
							 gettext_noop("When off, the per-database workers stay idle; due work waits until it is turned on again."),
							 &evmgmt_worker_enabled,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("evmgmt.max_concurrency",
							gettext_noop("Maximum number of deliveries a worker has in flight at once."),
							NULL,
							&evmgmt_max_concurrency,
							32, 1, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("evmgmt.connect_timeout",
							gettext_noop("Time allowed to resolve and connect to a delivery endpoint."),
							NULL,
							&evmgmt_connect_timeout_ms,
							5000, 100, 600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("evmgmt.request_timeout",
							gettext_noop("Total time allowed for one delivery attempt, connection included."),
							NULL,
							&evmgmt_request_timeout_ms,
							30000, 100, 3600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("evmgmt.batch_size",
							gettext_noop("Number of due notifications claimed per transaction."),
							NULL,
							&evmgmt_batch_size,
							200, 1, 10000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("evmgmt.max_attempts",
							gettext_noop("Delivery attempts before a notification is marked dead."),
							NULL,
							&evmgmt_max_attempts,
							10, 1, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("evmgmt.backoff_base",
							gettext_noop("Delay before the first retry; it doubles with every further attempt."),
							gettext_noop("The actual delay is drawn between half of it and all of it (jitter)."),
							&evmgmt_backoff_base_ms,
							1000, 1, 86400000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("evmgmt.backoff_cap",
							gettext_noop("Longest delay between two attempts (also caps Retry-After)."),
							NULL,
							&evmgmt_backoff_cap_ms,
							3600000, 1, 604800000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("evmgmt.lease_time",
							gettext_noop("How long a claimed notification stays reserved for the worker that claimed it."),
							gettext_noop("A claim left behind by a crashed worker is retried once its lease has expired."),
							&evmgmt_lease_time_s,
							300, 10, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("evmgmt.outbound_allow",
							   gettext_noop("IP addresses and CIDR blocks the dispatcher may connect to (\"*\" for any)."),
							   gettext_noop("Checked against the resolved address of every connection; a refused notification is marked dead."),
							   &evmgmt_outbound_allow,
							   "*",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_LIST_INPUT,
							   check_outbound_allow, assign_outbound_allow, NULL);

	DefineCustomIntVariable("evmgmt.delivery_retention",
							gettext_noop("How long delivery attempts and sent, dead or cancelled notifications are kept."),
							gettext_noop("Older rows are purged by the workers in small batches; -1 keeps them forever."),
							&evmgmt_delivery_retention_min,
							30 * 24 * 60, -1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);
}
