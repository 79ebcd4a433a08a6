/*-------------------------------------------------------------------------
 *
 * escalation.c
 *	  Settings of the escalation engine.
 *
 * The engine itself (evmgmt.run_due_work, escalation_start/stop,
 * acknowledge, status cadence, target timers, templates) is set-based SQL
 * in sql/install/65_escalation_engine.sql; it reads these settings with
 * current_setting(..., true) and falls back to the same defaults when the
 * library is not loaded.  They are PGC_SUSET: an administrator sets them in
 * postgresql.conf (a reload reaches the workers) and a superuser may change
 * them for one session, which is what the regression tests do.
 *
 * IDENTIFICATION
 *	  src/escalation.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "evmgmt.h"

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

/* Define the evmgmt.* settings read by the escalation engine. */
void
EscalationDefineSettings(void)
{
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
}
