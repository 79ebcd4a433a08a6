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

#include "fmgr.h"

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

/* classify.c: severity classification from the service-level signal */
extern bool SignalBelow(double service_level, double threshold);
extern bool SustainMet(double minutes, int sustain_minutes);
extern Datum EnumDatumForReturn(FunctionCallInfo fcinfo, const char *label);

/* state_machine.c: the pool-aware event lifecycle */
extern int	evmgmt_recurrence_window;

extern void LifecycleInit(void);

#endif							/* EVMGMT_H */
