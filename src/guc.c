/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Every evmgmt.* setting, defined in one place, in data-path order:
 *	  the module, the lifecycle, the escalation engine, the launcher and
 *	  workers, the dispatcher.
 *
 * Contexts follow what a setting governs: evmgmt.max_databases sizes shared
 * memory and is PGC_POSTMASTER, defined only while shared_preload_libraries
 * is processed; the worker and dispatcher settings are PGC_SIGHUP (the
 * workers re-read them on SIGHUP, pg_reload_conf()); the lifecycle and
 * escalation settings are PGC_SUSET, read by SQL with current_setting(...,
 * true) and set per session by the regression tests; the outbound
 * allow-list names where notifications may go, so only superusers may see
 * or change it.
 *
 * IDENTIFICATION
 *	  src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "guc.h"
#include "workers.h"

/* evmgmt.restoring: set by a superuser while restoring a dump */
bool		evmgmt_restoring = false;

/* evmgmt.dump_secrets: off keeps provider_secret rows out of pg_dump */
static bool evmgmt_dump_secrets = true;

/* evmgmt.recurrence_window, in minutes */
int			evmgmt_recurrence_window = 7 * 24 * 60;

/* evmgmt.interval_partitions_ahead: months of interval_stat partitions kept ahead */
int			evmgmt_interval_partitions_ahead = 2;

/* evmgmt.interval_retention: minutes of interval data kept (0: all) */
int			evmgmt_interval_retention = 0;

/* evmgmt.prediction_refresh: seconds between full prediction passes */
static int	evmgmt_prediction_refresh = 300;

/* evmgmt.forecast_retention: minutes of past forecast intervals kept */
static int	evmgmt_forecast_retention = 35 * 24 * 60;

/* evmgmt.recipient_burst_window: seconds within which pages to one address are bundled */
int			evmgmt_recipient_burst_window = 60;

/* evmgmt.target_warning_lead: seconds before a target breach that the warning goes out */
int			evmgmt_target_warning_lead = 600;

/* evmgmt.voice_retry_interval: seconds between retries of an unanswered voice step */
int			evmgmt_voice_retry_interval = 120;

/* evmgmt.escalation_batch_size: due items handled per run_due_work call and kind */
int			evmgmt_escalation_batch_size = 500;

/* evmgmt.event_link_prefix: prefix of the link to an event in messages */
char	   *evmgmt_event_link_prefix = NULL;

/* launcher and workers */
int			evmgmt_max_databases = 16;
bool		evmgmt_worker_enabled = true;
int			evmgmt_delivery_retention_min = 30 * 24 * 60;

/* dispatcher */
int			evmgmt_max_concurrency = 32;
int			evmgmt_connect_timeout_ms = 5000;
int			evmgmt_request_timeout_ms = 30000;
int			evmgmt_batch_size = 200;
int			evmgmt_max_attempts = 10;
int			evmgmt_backoff_base_ms = 1000;
int			evmgmt_backoff_cap_ms = 3600000;
int			evmgmt_lease_time_s = 300;
char	   *evmgmt_outbound_allow = NULL;
int			evmgmt_max_per_endpoint = 8;
int			evmgmt_breaker_failures = 5;

/* HTTP listener and action tokens (listener.c, sql/install/65-66) */
char	   *evmgmt_http_listen = NULL;
char	   *evmgmt_http_database = NULL;
char	   *evmgmt_public_base_url = NULL;
int			evmgmt_http_max_connections = 1000;
int			evmgmt_http_per_ip_connections = 0;
int			evmgmt_http_timeout_s = 10;
int			evmgmt_action_token_grace_min = 24 * 60;

/*
 * Define every evmgmt.* setting; preload says whether the postmaster ones
 * may be defined (shared_preload_libraries is being processed).
 */
void
EvmgmtDefineSettings(bool preload)
{
	/* module */
	DefineCustomBoolVariable("evmgmt.restoring",
							 gettext_noop("Marks a session that restores an evmgmt dump."),
							 gettext_noop("While on, restored rows are not written to the audit trail a second time."),
							 &evmgmt_restoring,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("evmgmt.dump_secrets",
							 gettext_noop("Whether pg_dump writes the rows of evmgmt.provider_secret."),
							 gettext_noop("The dump registration of provider_secret keeps its rows only while this is on in the dumping session; turn it off (PGOPTIONS='-c evmgmt.dump_secrets=off') to keep credentials out of a dump."),
							 &evmgmt_dump_secrets,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	/* interval data (sql/install/25_partitions.sql, read with current_setting) */
	DefineCustomIntVariable("evmgmt.interval_partitions_ahead",
							gettext_noop("How many months of interval_stat partitions the worker keeps ahead of the current month."),
							gettext_noop("The worker creates the month partitions from the current month to this many months ahead (UTC); rows of a month without a partition wait in the default partition."),
							&evmgmt_interval_partitions_ahead,
							2, 0, 120,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("evmgmt.interval_retention",
							gettext_noop("How long interval data is kept; 0 keeps everything."),
							gettext_noop("The worker drops the month partitions of interval_stat that ended at least this long ago, with older default-partition rows and series with nothing newer. Below a day nothing is dropped (and a warning says so)."),
							&evmgmt_interval_retention,
							0, 0, INT_MAX / 2,
							PGC_SUSET,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	/* prediction (sql/install/49_prediction.sql, read with current_setting) */
	DefineCustomIntVariable("evmgmt.prediction_refresh",
							gettext_noop("How often the worker predicts every series with a forecast again."),
							gettext_noop("Series whose forecast or actuals changed are predicted at once; all of them again at this interval, as the horizon moves on."),
							&evmgmt_prediction_refresh,
							300, 10, 86400,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("evmgmt.forecast_retention",
							gettext_noop("How long forecast intervals are kept after they start."),
							gettext_noop("The prediction pass deletes interval_forecast rows that started longer ago than this."),
							&evmgmt_forecast_retention,
							35 * 24 * 60, 24 * 60, INT_MAX / 2,
							PGC_SUSET,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	/* lifecycle */
	DefineCustomIntVariable("evmgmt.recurrence_window",
							gettext_noop("How long after resolution an event can be reopened or is a predecessor of a recurrence."),
							gettext_noop("A resolved pool or closed event can be reopened within this time; an event of the same type, site, queue and cause detected within it is linked as a recurrence."),
							&evmgmt_recurrence_window,
							7 * 24 * 60,
							0,
							INT_MAX / 2,
							PGC_SUSET,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	/* escalation engine */
	DefineCustomIntVariable("evmgmt.recipient_burst_window",
							gettext_noop("Window within which notifications to one address are bundled into a digest."),
							gettext_noop("The first notification goes out at once; later ones to the same channel and address within the window are merged into one digest sent when the window closes. 0 disables bundling."),
							&evmgmt_recipient_burst_window,
							60, 0, 86400,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("evmgmt.target_warning_lead",
							gettext_noop("How long before a response or resolution target breaches the warning goes out."),
							gettext_noop("Capped at half of the time from the opening of the pool condition to the target, so short targets still warn in time."),
							&evmgmt_target_warning_lead,
							600, 0, 7 * 86400,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("evmgmt.voice_retry_interval",
							gettext_noop("Spacing of the retries of a voice step."),
							gettext_noop("Retries are squeezed closer together when the next step would otherwise come first."),
							&evmgmt_voice_retry_interval,
							120, 1, 86400,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("evmgmt.escalation_batch_size",
							gettext_noop("Due escalations, status updates and target timers handled per run_due_work call."),
							NULL,
							&evmgmt_escalation_batch_size,
							500, 1, 100000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("evmgmt.event_link_prefix",
							   gettext_noop("Prefix of the link to an event in notification messages."),
							   gettext_noop("The event id is appended, e.g. https://roc.example.com/events/ gives https://roc.example.com/events/42. Empty: no link."),
							   &evmgmt_event_link_prefix,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	/* launcher, workers and dispatcher */
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

	DefineCustomIntVariable("evmgmt.max_per_endpoint",
							gettext_noop("Maximum number of deliveries a worker has in flight to one endpoint (provider) at once."),
							gettext_noop("A slow or hanging endpoint holds at most this many of the evmgmt.max_concurrency slots."),
							&evmgmt_max_per_endpoint,
							8, 1, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("evmgmt.breaker_failures",
							gettext_noop("Consecutive failed attempts after which an endpoint's circuit breaker opens."),
							gettext_noop("An open endpoint gets no requests until one probe after a backoff succeeds; 0 disables the breaker."),
							&evmgmt_breaker_failures,
							5, 0, 1000,
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
							   gettext_noop("IP addresses and CIDR blocks the dispatcher may connect to (\"*\": any public address)."),
							   gettext_noop("Checked against the resolved address of every connection; loopback, private, link-local and other special-purpose ranges must be listed explicitly; a refused notification is marked dead."),
							   &evmgmt_outbound_allow,
							   "*",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_LIST_INPUT,
							   evmgmt_check_outbound_allow, evmgmt_assign_outbound_allow, NULL);

	DefineCustomIntVariable("evmgmt.delivery_retention",
							gettext_noop("How long delivery attempts and sent, dead or cancelled notifications are kept."),
							gettext_noop("Older rows are purged by the workers in small batches; -1 keeps them forever."),
							&evmgmt_delivery_retention_min,
							30 * 24 * 60, -1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	/* HTTP listener and action tokens */
	if (preload)
	{
		DefineCustomStringVariable("evmgmt.http_listen",
								   gettext_noop("Address (host:port) the HTTP listener for acknowledgments listens on."),
								   gettext_noop("Empty (the default): no listener process, no port. Loopback is advised, with a TLS reverse proxy in front."),
								   &evmgmt_http_listen,
								   "",
								   PGC_POSTMASTER,
								   GUC_SUPERUSER_ONLY,
								   NULL, NULL, NULL);
		DefineCustomStringVariable("evmgmt.http_database",
								   gettext_noop("Database the HTTP listener serves."),
								   NULL,
								   &evmgmt_http_database,
								   "postgres",
								   PGC_POSTMASTER,
								   GUC_SUPERUSER_ONLY,
								   NULL, NULL, NULL);
		DefineCustomIntVariable("evmgmt.http_max_connections",
								gettext_noop("Maximum number of connections the HTTP listener holds at once."),
								NULL,
								&evmgmt_http_max_connections,
								1000, 1, 10000,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);
		DefineCustomIntVariable("evmgmt.http_per_ip_connections",
								gettext_noop("Maximum number of connections one client address may hold (0: no limit)."),
								gettext_noop("Behind a reverse proxy every request comes from the proxy's address."),
								&evmgmt_http_per_ip_connections,
								0, 0, 10000,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);
		DefineCustomIntVariable("evmgmt.http_timeout",
								gettext_noop("Seconds an HTTP connection may stay idle or unfinished before the listener closes it."),
								NULL,
								&evmgmt_http_timeout_s,
								10, 1, 3600,
								PGC_POSTMASTER,
								GUC_UNIT_S,
								NULL, NULL, NULL);
	}
	DefineCustomStringVariable("evmgmt.public_base_url",
							   gettext_noop("The URL the outside world reaches the HTTP listener at, e.g. https://roc.example.com/evmgmt."),
							   gettext_noop("Used in {{ack_url}} and to verify provider signatures behind a proxy. Empty: messages carry no ack link."),
							   &evmgmt_public_base_url,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("evmgmt.action_token_grace",
							gettext_noop("Minutes an action token stays usable after its escalation ended, and a rotated key stays accepted."),
							NULL,
							&evmgmt_action_token_grace_min,
							24 * 60, 0, 30 * 24 * 60,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);
}
