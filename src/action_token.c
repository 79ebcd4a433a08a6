/*-------------------------------------------------------------------------
 *
 * action_token.c
 *	  The cryptographic pieces of action tokens and inbound signatures,
 *	  SQL-callable so that the token logic itself stays readable in
 *	  sql/install/65_action_tokens.sql:
 *
 *	  evmgmt.hmac_sha256(key, msg)		 HMAC-SHA256 (the backend's pg_hmac)
 *	  evmgmt.constant_time_equal(a, b)	 comparison whose time does not depend
 *										 on where the inputs differ
 *	  evmgmt.random_bytes(n)			 n bytes from pg_strong_random
 *	  evmgmt.twilio_signature(secret, url, params)
 *										 X-Twilio-Signature: base64(HMAC-SHA1(
 *										 auth token, url + the form parameters
 *										 sorted by name, each name + value))
 *
 * EvmgmtTwilioSignature and EvmgmtConstantTimeEqual are also used by the
 * listener (listener.c) directly.
 *
 * IDENTIFICATION
 *	  src/action_token.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha1.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "port.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/resowner.h"

#include "listener.h"

PG_FUNCTION_INFO_V1(evmgmt_hmac_sha256);
PG_FUNCTION_INFO_V1(evmgmt_constant_time_equal);
PG_FUNCTION_INFO_V1(evmgmt_random_bytes);
PG_FUNCTION_INFO_V1(evmgmt_twilio_signature);

#define MAX_RANDOM_BYTES 1024

/* One HMAC over several pieces; mac receives the digest. */
static void
Hmac(pg_cryptohash_type type, const uint8 *key, size_t keylen,
	 int npieces, const uint8 *const *pieces, const size_t *lens,
	 uint8 *mac, size_t maclen)
{
	pg_hmac_ctx *ctx = pg_hmac_create(type);
	bool		ok;

	if (ctx == NULL)
		elog(ERROR, "evmgmt: out of memory creating an HMAC context");
	ok = pg_hmac_init(ctx, key, keylen) >= 0;
	for (int i = 0; ok && i < npieces; i++)
		ok = pg_hmac_update(ctx, pieces[i], lens[i]) >= 0;
	ok = ok && pg_hmac_final(ctx, mac, maclen) >= 0;
	if (!ok)
	{
		const char *err = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		elog(ERROR, "evmgmt: HMAC failed: %s", err);
	}
	pg_hmac_free(ctx);
}

/* Equal lengths and equal bytes, in time independent of the contents. */
bool
EvmgmtConstantTimeEqual(const void *a, size_t alen, const void *b, size_t blen)
{
	const volatile uint8 *x = a;
	const volatile uint8 *y = b;
	uint8		diff = 0;

	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

/* Compare two parameter names for qsort (byte order, as Twilio does). */
static int
CompareParams(const void *a, const void *b)
{
	const EvmgmtFormParam *x = a;
	const EvmgmtFormParam *y = b;
	int			c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/*
 * X-Twilio-Signature of a request: base64 of HMAC-SHA1 keyed by the auth
 * token over the full URL followed by every form parameter, sorted by name,
 * as name then value.  params is sorted in place.  Returns a palloc'd string.
 */
char *
EvmgmtTwilioSignature(const char *secret, const char *url, EvmgmtFormParam *params, int nparams)
{
	uint8		mac[SHA1_DIGEST_LENGTH];
	const uint8 **pieces;
	size_t	   *lens;
	int			n = 0;
	char	   *out;
	int			outlen;

	if (nparams > 0)
		qsort(params, nparams, sizeof(EvmgmtFormParam), CompareParams);
	pieces = palloc(sizeof(uint8 *) * (1 + 2 * nparams));
	lens = palloc(sizeof(size_t) * (1 + 2 * nparams));
	pieces[n] = (const uint8 *) url;
	lens[n++] = strlen(url);
	for (int i = 0; i < nparams; i++)
	{
		pieces[n] = (const uint8 *) params[i].name;
		lens[n++] = strlen(params[i].name);
		pieces[n] = (const uint8 *) params[i].value;
		lens[n++] = strlen(params[i].value);
	}
	Hmac(PG_SHA1, (const uint8 *) secret, strlen(secret), n, pieces, lens, mac, sizeof(mac));
	out = palloc(pg_b64_enc_len(sizeof(mac)) + 1);
	outlen = pg_b64_encode((const char *) mac, sizeof(mac), out, pg_b64_enc_len(sizeof(mac)));
	if (outlen < 0)
		elog(ERROR, "evmgmt: base64 encoding failed");
	out[outlen] = '\0';
	pfree(pieces);
	pfree(lens);
	return out;
}

/* evmgmt.hmac_sha256(key bytea, msg bytea) returns bytea */
Datum
evmgmt_hmac_sha256(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	bytea	   *msg = PG_GETARG_BYTEA_PP(1);
	bytea	   *result = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	const uint8 *pieces[1];
	size_t		lens[1];

	if (VARSIZE_ANY_EXHDR(key) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key must not be empty")));
	pieces[0] = (const uint8 *) VARDATA_ANY(msg);
	lens[0] = VARSIZE_ANY_EXHDR(msg);
	Hmac(PG_SHA256, (const uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key),
		 1, pieces, lens, (uint8 *) VARDATA(result), PG_SHA256_DIGEST_LENGTH);
	SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	PG_RETURN_BYTEA_P(result);
}

/* evmgmt.constant_time_equal(a bytea, b bytea) returns boolean */
Datum
evmgmt_constant_time_equal(PG_FUNCTION_ARGS)
{
	bytea	   *a = PG_GETARG_BYTEA_PP(0);
	bytea	   *b = PG_GETARG_BYTEA_PP(1);

	PG_RETURN_BOOL(EvmgmtConstantTimeEqual(VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a),
										   VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b)));
}

/* evmgmt.random_bytes(n integer) returns bytea */
Datum
evmgmt_random_bytes(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	bytea	   *result;

	if (n < 1 || n > MAX_RANDOM_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be between 1 and %d", MAX_RANDOM_BYTES),
				 errdetail("The value given was %d.", n)));
	result = palloc(VARHDRSZ + n);
	if (!pg_strong_random(VARDATA(result), n))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	SET_VARSIZE(result, VARHDRSZ + n);
	PG_RETURN_BYTEA_P(result);
}

/*
 * evmgmt.twilio_signature(secret text, url text, params text[]) returns text:
 * params holds name, value, name, value, ...
 */
Datum
evmgmt_twilio_signature(PG_FUNCTION_ARGS)
{
	char	   *secret = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *url = text_to_cstring(PG_GETARG_TEXT_PP(1));
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(2);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	EvmgmtFormParam *params;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("params must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	if (nelems % 2 != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params must hold name and value pairs"),
				 errdetail("The array has %d elements.", nelems)));
	params = palloc0(sizeof(EvmgmtFormParam) * Max(nelems / 2, 1));
	for (int i = 0; i < nelems; i += 2)
	{
		if (nulls[i] || nulls[i + 1])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("params must not contain nulls")));
		params[i / 2].name = TextDatumGetCString(elems[i]);
		params[i / 2].value = TextDatumGetCString(elems[i + 1]);
	}
	PG_RETURN_TEXT_P(cstring_to_text(EvmgmtTwilioSignature(secret, url, params, nelems / 2)));
}
