/*-------------------------------------------------------------------------
 *
 * guc.h
 *	  Every evmgmt.* setting, as the C variables the rest of src/ reads.
 *
 * All of them are defined in guc.c (EvmgmtDefineSettings, called once from
 * _PG_init); this header is the one place that declares them.
 *
 * IDENTIFICATION
 *	  src/guc.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVMGMT_GUC_H
#define EVMGMT_GUC_H

#include "utils/guc.h"

/* module */
extern bool evmgmt_restoring;

/* interval data (read by SQL with current_setting) */
extern int	evmgmt_interval_partitions_ahead;
extern int	evmgmt_interval_retention;

/* lifecycle (state_machine.c) */
extern int	evmgmt_recurrence_window;

/* escalation engine (read by SQL with current_setting) */
extern int	evmgmt_recipient_burst_window;
extern int	evmgmt_target_warning_lead;
extern int	evmgmt_voice_retry_interval;
extern int	evmgmt_escalation_batch_size;
extern char *evmgmt_event_link_prefix;

/* launcher and workers */
extern int	evmgmt_max_databases;
extern bool evmgmt_worker_enabled;
extern int	evmgmt_delivery_retention_min;

/* dispatcher */
extern int	evmgmt_max_concurrency;
extern int	evmgmt_connect_timeout_ms;
extern int	evmgmt_request_timeout_ms;
extern int	evmgmt_batch_size;
extern int	evmgmt_max_attempts;
extern int	evmgmt_backoff_base_ms;
extern int	evmgmt_backoff_cap_ms;
extern int	evmgmt_lease_time_s;
extern char *evmgmt_outbound_allow;
extern int	evmgmt_max_per_endpoint;
extern int	evmgmt_breaker_failures;

/* HTTP listener and action tokens */
extern char *evmgmt_http_listen;
extern char *evmgmt_http_database;
extern char *evmgmt_public_base_url;
extern int	evmgmt_http_max_connections;
extern int	evmgmt_http_per_ip_connections;
extern int	evmgmt_http_timeout_s;
extern int	evmgmt_action_token_grace_min;

/* guc.c */
extern void EvmgmtDefineSettings(bool preload);

#endif							/* EVMGMT_GUC_H */
