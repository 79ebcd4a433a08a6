/*-------------------------------------------------------------------------
 *
 * evmgmt.h
 *	  Shared declarations of the evmgmt extension.
 *
 * Each .c file in src/ owns one concern; this header holds the extern
 * declarations that cross file boundaries, grouped by the file that
 * defines them.
 *
 * IDENTIFICATION
 *	  src/evmgmt.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVMGMT_H
#define EVMGMT_H

/* evmgmt.c: module load and settings */
extern bool evmgmt_loaded_via_preload;
extern bool evmgmt_restoring;

extern void EnsurePreloaded(void);

/* escalation.c: settings of the escalation engine */
extern int	evmgmt_recipient_burst_window;
extern int	evmgmt_target_warning_lead;
extern int	evmgmt_voice_retry_interval;
extern int	evmgmt_escalation_batch_size;
extern char *evmgmt_event_link_prefix;

extern void EscalationDefineSettings(void);

#endif							/* EVMGMT_H */
