/*-------------------------------------------------------------------------
 *
 * signing.c
 *	  Standard Webhooks signatures (https://www.standardwebhooks.com/).
 *
 * The signed content is "<webhook-id>.<webhook-timestamp>.<body>"; the
 * signature is HMAC-SHA256 with the endpoint's secret, base64-encoded and
 * sent as "webhook-signature: v1,<base64>".  A secret written as
 * "whsec_<base64>" (the form Standard Webhooks libraries generate) is
 * base64-decoded first; any other secret is used as it is.
 *
 * evmgmt.webhook_signature() exposes the same computation to SQL, so that
 * receivers and tests can check a signature.
 *
 * IDENTIFICATION
 *	  src/signing.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/base64.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/resowner.h"

#include "workers.h"

PG_FUNCTION_INFO_V1(evmgmt_webhook_signature);

static ResourceOwner signing_owner = NULL;

/*
 * The signature of one message, "v1,<base64>", palloc'd; NULL if the secret
 * is a malformed "whsec_" secret.
 */
char *
EvmgmtWebhookSignature(const char *secret, const char *msg_id, int64 timestamp,
				 const char *body, size_t bodylen)
{
	const uint8 *key = (const uint8 *) secret;
	size_t		keylen = strlen(secret);
	uint8	   *decoded = NULL;
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		ts[32];
	pg_hmac_ctx *ctx;
	bool		restore_owner = false;
	char	   *out;
	int			outlen;

	if (strncmp(secret, "whsec_", 6) == 0)
	{
		int			len = (int) strlen(secret + 6);
		int			n;

		decoded = palloc(pg_b64_dec_len(len) + 1);
		n = pg_b64_decode(secret + 6, len, (char *) decoded, pg_b64_dec_len(len));
		if (n <= 0)
			return NULL;
		key = decoded;
		keylen = n;
	}
	snprintf(ts, sizeof(ts), INT64_FORMAT, timestamp);

	/*
	 * The dispatcher signs outside any transaction, but the backend's HMAC
	 * registers with a resource owner: give it one of its own.
	 */
	if (CurrentResourceOwner == NULL)
	{
		if (signing_owner == NULL)
			signing_owner = ResourceOwnerCreate(NULL, "evmgmt webhook signing");
		CurrentResourceOwner = signing_owner;
		restore_owner = true;
	}

	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL)
		elog(ERROR, "evmgmt: out of memory creating an HMAC context");
	if (pg_hmac_init(ctx, key, keylen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) msg_id, strlen(msg_id)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) ".", 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) ts, strlen(ts)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) ".", 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) body, bodylen) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
	{
		const char *err = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		elog(ERROR, "evmgmt: HMAC-SHA256 failed: %s", err);
	}
	pg_hmac_free(ctx);
	if (restore_owner)
		CurrentResourceOwner = NULL;
	if (decoded)
		pfree(decoded);

	outlen = pg_b64_enc_len(sizeof(mac));
	out = palloc(outlen + 4);
	memcpy(out, "v1,", 3);
	outlen = pg_b64_encode((const char *) mac, sizeof(mac), out + 3, outlen);
	if (outlen < 0)
		elog(ERROR, "evmgmt: base64 encoding failed");
	out[3 + outlen] = '\0';
	return out;
}

/*
 * evmgmt.webhook_signature(secret text, msg_id text, ts bigint, body text)
 * returns the webhook-signature header value for that message.
 */
Datum
evmgmt_webhook_signature(PG_FUNCTION_ARGS)
{
	char	   *secret = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *msg_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int64		ts = PG_GETARG_INT64(2);
	text	   *body = PG_GETARG_TEXT_PP(3);
	char	   *sig;

	if (secret[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("secret must not be empty")));
	sig = EvmgmtWebhookSignature(secret, msg_id, ts, VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body));
	if (sig == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("secret is not valid base64 after its \"whsec_\" prefix"),
				 errhint("Use a secret of the form whsec_<base64>, or one without that prefix.")));
	PG_RETURN_TEXT_P(cstring_to_text(sig));
}
