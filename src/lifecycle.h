/*-------------------------------------------------------------------------
 *
 * lifecycle.h
 *	  The rules of the pool-aware event lifecycle (state_machine.c), used
 *	  by the SQL-callable lifecycle functions (lifecycle.c).
 *
 * IDENTIFICATION
 *	  src/lifecycle.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVMGMT_LIFECYCLE_H
#define EVMGMT_LIFECYCLE_H

/* Protocol state of a pool condition (the first labels of evmgmt.event_state). */
typedef enum PoolState
{
	PS_DETECTED,
	PS_CLASSIFIED,
	PS_DIAGNOSED,
	PS_RESPONDING,
	PS_RESOLVED,
	PS_CANCELLED,
	PS_COUNT
} PoolState;

/* What a lifecycle function does to a pool condition. */
typedef enum PoolAction
{
	PA_CLASSIFY,
	PA_RECLASSIFY,
	PA_DIAGNOSE,
	PA_RESPOND,
	PA_RESOLVE,
	PA_CANCEL,
	PA_REOPEN,
	PA_AVERT,
	PA_COUNT
} PoolAction;

/* No transition: the action is illegal from the state. */
#define PS_ILLEGAL (-1)

/* state_machine.c: the transition table and the messages built from it */
extern int	EvmgmtNextPoolState(PoolState from, PoolAction action);
extern const char *EvmgmtPoolStateName(PoolState state);
extern PoolState EvmgmtParsePoolState(const char *name);
extern const char *EvmgmtPoolActionName(PoolAction action);
extern const char *EvmgmtPoolActionVerb(PoolAction action);
extern char *EvmgmtLegalMovesHint(PoolState from);
extern char *EvmgmtStatesAllowing(PoolAction action);

/*
 * The earliest event time accepted (2000-01-01 00:00 UTC, the PostgreSQL
 * epoch); the latest is now.  docs/security.md, "Bounds".
 */
#define EVMGMT_EARLIEST_TIME	((TimestampTz) 0)

/* state_machine.c: the guard lets writes through while this is > 0 */
extern int	evmgmt_lifecycle_write_depth;

#endif							/* EVMGMT_LIFECYCLE_H */
