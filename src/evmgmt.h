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

#endif							/* EVMGMT_H */
