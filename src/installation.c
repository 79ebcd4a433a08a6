/*-------------------------------------------------------------------------
 *
 * installation.c
 *	  The worker's check that this database is the one where sending was
 *	  enabled, and not a restored copy or a clone of it.
 *
 * evmgmt.sending_hold_reason() (sql/install/69_sending_status.sql) compares
 * the installation identity with the live database and the dumped origin of
 * sending.  While it gives a reason, the worker fires no escalation step and
 * claims no notification (deliveries already in flight finish), says so as
 * a WARNING (again when the reason changes, else once per HOLD_WARNING_MS,
 * the period of its re-check), in its application_name and
 * its activity, and looks again every HOLD_CHECK_MS and whenever its latch
 * is set (evmgmt.resume_sending() wakes it at commit).
 *
 * IDENTIFICATION
 *	  src/installation.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "workers.h"

/* Warn about a held database at most this often. */
#define HOLD_WARNING_MS		60000

static bool held = false;
static TimestampTz last_warning = 0;
static char held_reason[512];
static char held_activity[256];

/*
 * Inside a unit: is sending held in this database?  Logs and shows it, and
 * logs when it ends.
 */
bool
EvmgmtCheckSendingHeld(void)
{
	char	   *reason = NULL;
	TimestampTz now = GetCurrentTimestamp();

	if (SPI_execute("SELECT evmgmt.sending_hold_reason()", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "evmgmt: evmgmt.sending_hold_reason() returned no row");
	reason = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (reason != NULL)
	{
		/* say it again when the reason changes, or once a period */
		if (!held || strcmp(reason, held_reason) != 0 ||
			TimestampDifferenceExceeds(last_warning, now, HOLD_WARNING_MS))
		{
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("evmgmt holds all sending in database \"%s\": %s",
							get_database_name(MyDatabaseId), reason),
					 errdetail("This database is not the one where sending was enabled, so no notification is sent and no escalation step fires here."),
					 errhint("See evmgmt.sending_status. If this copy is to send, an admin runs SELECT evmgmt.resume_sending(backlog => 'send') or (backlog => 'drop').")));
			last_warning = now;
		}
		if (!held)
			pgstat_report_appname("evmgmt worker (sending held)");
		strlcpy(held_reason, reason, sizeof(held_reason));
		snprintf(held_activity, sizeof(held_activity),
				 "evmgmt: sending held: %s; see evmgmt.sending_status", reason);
		held = true;
	}
	else if (held)
	{
		ereport(LOG,
				(errmsg("evmgmt resumes sending in database \"%s\"",
						get_database_name(MyDatabaseId))));
		pgstat_report_appname("evmgmt worker");
		held = false;
	}
	return held;
}

/* Was sending held at the last check? */
bool
EvmgmtSendingHeld(void)
{
	return held;
}

/* Show the hold in pg_stat_activity (between units). */
void
EvmgmtReportSendingHeld(void)
{
	if (held)
		pgstat_report_activity(STATE_IDLE, held_activity);
}
