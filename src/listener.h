/*-------------------------------------------------------------------------
 *
 * listener.h
 *	  The HTTP listener (listener.c) and the cryptographic helpers of action
 *	  tokens and inbound signatures (action_token.c).
 *
 * IDENTIFICATION
 *	  src/listener.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVMGMT_LISTENER_H
#define EVMGMT_LISTENER_H

#include "fmgr.h"

/* One form or query parameter of a request. */
typedef struct EvmgmtFormParam
{
	char	   *name;
	char	   *value;
} EvmgmtFormParam;

/* action_token.c */
extern bool EvmgmtConstantTimeEqual(const void *a, size_t alen, const void *b, size_t blen);
extern char *EvmgmtTwilioSignature(const char *secret, const char *url,
								   EvmgmtFormParam *params, int nparams);

/* listener.c */
extern void EvmgmtRegisterListener(void);
extern PGDLLEXPORT void EvmgmtListenerMain(Datum main_arg);

#endif							/* EVMGMT_LISTENER_H */
