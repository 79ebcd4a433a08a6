/*-------------------------------------------------------------------------
 *
 * dispatch.h
 *	  One delivery job of the dispatcher, shared by dispatch.c (claim, the
 *	  libcurl multi loop, settle) and the channel builders http.c and
 *	  smtp.c.
 *
 * IDENTIFICATION
 *	  src/dispatch.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVMGMT_DISPATCH_H
#define EVMGMT_DISPATCH_H

#include <curl/curl.h>

#include "datatype/timestamp.h"
#include "lib/ilist.h"

/* At most this much of a response body is kept (for the error message). */
#define RESPONSE_KEEP_BYTES		512
/* A response larger than this is cut off. */
#define RESPONSE_MAX_BYTES		(1024 * 1024)

struct ClaimBatch;
struct Endpoint;

/* A claimed notification, its request and its result. */
typedef struct DeliveryJob
{
	dlist_node	node;
	struct ClaimBatch *batch;	/* memory it lives in */
	struct Endpoint *ep;		/* where it goes: its provider */

	/* what was claimed */
	int64		notification_id;
	int32		attempt_no;
	char	   *idempotency_key;
	char	   *channel;
	char	   *provider_id;
	char	   *provider_kind;	/* webhook, smtp, twilio, ntfy */
	bool		provider_active;
	char	   *endpoint;
	char	   *username;
	char	   *from_address;
	char	   *secret;
	char	   *starttls;		/* provider setting, NULL if unset */
	char	   *from_name;		/* provider setting, NULL if unset */
	char	   *recipient;
	char	   *subject;
	char	   *body;
	char	   *json_body;		/* the webhook payload */
	char	   *severity;		/* payload severity (or tier), may be NULL */
	char	   *ack_url;		/* the page's ack link: ntfy's action button */
	char	   *ack_label;		/* its label (NULL: Acknowledge) */
	char	   *gather_url;		/* voice: where the call's keypress is posted */
	char	   *gather_prompt;	/* voice: said after the message, NULL if none */

	/* the request */
	CURL	   *easy;
	struct curl_slist *headers;
	struct curl_slist *recipients;
	curl_mime  *mime;			/* SMTP message body */
	char	   *post;			/* form body */
	char		response[RESPONSE_KEEP_BYTES + 1];
	size_t		response_len;
	size_t		response_total;
	char		errbuf[CURL_ERROR_SIZE];
	bool		refused;
	char		refused_addr[64];
	double		retry_after;	/* seconds, < 0 if none */

	/* the result */
	TimestampTz started;
	TimestampTz finished;
	CURLcode	result;
	long		status;
	const char *outcome;		/* sent, retry, dead, refused */
	const char *new_state;		/* sent, retry, dead */
	char	   *error;
	double		delay_s;		/* before the next attempt, when retrying */
	bool		attempted;		/* false: handed back unsent (breaker opened) */
	bool		probe;			/* the probe of an open circuit breaker */
	bool		endpoint_failed;	/* no answer, or 5xx/429/408: counts for the breaker */
} DeliveryJob;

/* http.c: webhook, Twilio-compatible and ntfy-compatible requests */
extern bool EvmgmtBuildWebhookRequest(DeliveryJob *job, char **error);
extern bool EvmgmtBuildTwilioRequest(DeliveryJob *job, char **error);
extern bool EvmgmtBuildNtfyRequest(DeliveryJob *job, char **error);

/* header_words.c: RFC 2047 encoded words for header values */
extern char *EvmgmtEncodeHeaderWords(const char *text, const char *separator);

/* smtp.c: e-mail */
extern bool EvmgmtBuildSmtpRequest(DeliveryJob *job, char **error);

#endif							/* EVMGMT_DISPATCH_H */
