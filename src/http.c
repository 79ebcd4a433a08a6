/*-------------------------------------------------------------------------
 *
 * http.c
 *	  The HTTP channels of the dispatcher: webhook, sms and voice through a
 *	  Twilio-compatible API, push through an ntfy-compatible API.
 *
 *	  webhook  POST <endpoint>, JSON body (see docs/workers.md), Standard
 *			   Webhooks headers webhook-id (the notification's idempotency
 *			   key), webhook-timestamp and webhook-signature;
 *	  twilio   POST <endpoint>/2010-04-01/Accounts/<username>/Messages.json
 *			   (sms: To, From, Body) or .../Calls.json (voice: To, From,
 *			   Twiml <Say>, inside a one-digit <Gather> posting to the
 *			   listener when the page has a token), form-encoded, basic auth
 *			   username:secret, and I-Twilio-Idempotency-Token = the
 *			   idempotency key;
 *	  ntfy	   POST <endpoint>/<topic = recipient>, the text as body, Title,
 *			   Priority and Tags headers from the severity, an Actions
 *			   button that POSTs to the ack link, basic auth
 *			   (username:secret) or a bearer token (secret alone).
 *
 * Every request carries the idempotency key, so that a retry after a crash
 * can be recognised by the receiver.
 *
 * IDENTIFICATION
 *	  src/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "lib/stringinfo.h"

#include "dispatch.h"
#include "workers.h"

static void AddHeader(DeliveryJob *job, const char *fmt,...) pg_attribute_printf(2, 3);

/* Append a header line to the job's list. */
static void
AddHeader(DeliveryJob *job, const char *fmt,...)
{
	StringInfoData line;

	initStringInfo(&line);
	for (;;)
	{
		va_list		ap;
		int			needed;

		va_start(ap, fmt);
		needed = appendStringInfoVA(&line, fmt, ap);
		va_end(ap);
		if (needed == 0)
			break;
		enlargeStringInfo(&line, needed);
	}
	/* a header value never spans lines */
	for (char *p = line.data; *p; p++)
	{
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	}
	job->headers = curl_slist_append(job->headers, line.data);
	pfree(line.data);
}

/* The endpoint without a trailing slash. */
static char *
BaseUrl(const char *endpoint)
{
	char	   *s = pstrdup(endpoint);
	size_t		len = strlen(s);

	while (len > 0 && s[len - 1] == '/')
		s[--len] = '\0';
	return s;
}

/* URL-encode a component with libcurl, into palloc'd memory. */
static char *
Escape(DeliveryJob *job, const char *s)
{
	char	   *e = curl_easy_escape(job->easy, s ? s : "", 0);
	char	   *r = pstrdup(e);

	curl_free(e);
	return r;
}

/* Finish a POST: body, headers, protocols. */
static void
SetPost(DeliveryJob *job, const char *body, size_t len)
{
	curl_easy_setopt(job->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(job->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(job->easy, CURLOPT_POSTFIELDSIZE, (long) len);
	curl_easy_setopt(job->easy, CURLOPT_POSTFIELDS, body);
	/* no "Expect: 100-continue" round trip */
	AddHeader(job, "Expect:");
	curl_easy_setopt(job->easy, CURLOPT_HTTPHEADER, job->headers);
}

/* Webhook: signed JSON POST. */
bool
EvmgmtBuildWebhookRequest(DeliveryJob *job, char **error)
{
	int64		ts = (int64) time(NULL);
	size_t		len = strlen(job->json_body);

	curl_easy_setopt(job->easy, CURLOPT_URL, job->endpoint);
	AddHeader(job, "Content-Type: application/json");
	AddHeader(job, "webhook-id: %s", job->idempotency_key);
	AddHeader(job, "webhook-timestamp: " INT64_FORMAT, ts);
	if (job->secret)
	{
		char	   *sig = EvmgmtWebhookSignature(job->secret, job->idempotency_key, ts,
										   job->json_body, len);

		if (sig == NULL)
		{
			*error = psprintf("the secret of provider \"%s\" is not valid base64 after its \"whsec_\" prefix",
							  job->provider_id);
			return false;
		}
		AddHeader(job, "webhook-signature: %s", sig);
	}
	SetPost(job, job->json_body, len);
	return true;
}

/* XML-escape text for TwiML. */
static char *
XmlEscape(const char *s)
{
	StringInfoData b;

	initStringInfo(&b);
	for (; *s; s++)
	{
		switch (*s)
		{
			case '&':
				appendStringInfoString(&b, "&amp;");
				break;
			case '<':
				appendStringInfoString(&b, "&lt;");
				break;
			case '>':
				appendStringInfoString(&b, "&gt;");
				break;
			case '"':
				appendStringInfoString(&b, "&quot;");
				break;
			default:
				appendStringInfoChar(&b, *s);
		}
	}
	return b.data;
}

/* SMS or voice call through a Twilio-compatible API. */
bool
EvmgmtBuildTwilioRequest(DeliveryJob *job, char **error)
{
	bool		voice = strcmp(job->channel, "voice") == 0;
	char	   *url;
	char	   *form;

	if (job->username == NULL || job->secret == NULL)
	{
		*error = psprintf("provider \"%s\" needs a username (the account SID) and a secret (the auth token)",
						  job->provider_id);
		return false;
	}
	if (job->from_address == NULL)
	{
		*error = psprintf("provider \"%s\" has no from_address (the sending number)", job->provider_id);
		return false;
	}
	url = psprintf("%s/2010-04-01/Accounts/%s/%s", BaseUrl(job->endpoint),
				   Escape(job, job->username), voice ? "Calls.json" : "Messages.json");
	if (voice && job->gather_url)
	{
		/*
		 * One digit, posted to the listener (/twilio/voice, the token in its
		 * query): 1 acknowledges and stops the plan with its voice retries,
		 * 2 passes it on.  The message is said inside <Gather>, so a key
		 * pressed while it plays counts.
		 */
		char	   *twiml;

		twiml = psprintf("<Response><Gather input=\"dtmf\" numDigits=\"1\" timeout=\"10\" "
						 "action=\"%s\" method=\"POST\"><Say>%s</Say>%s%s%s</Gather>"
						 "<Say>No key was pressed. Goodbye.</Say></Response>",
						 XmlEscape(job->gather_url), XmlEscape(job->body),
						 job->gather_prompt ? "<Say>" : "",
						 job->gather_prompt ? XmlEscape(job->gather_prompt) : "",
						 job->gather_prompt ? "</Say>" : "");
		form = psprintf("To=%s&From=%s&Twiml=%s",
						Escape(job, job->recipient), Escape(job, job->from_address), Escape(job, twiml));
	}
	else if (voice)
		form = psprintf("To=%s&From=%s&Twiml=%s",
						Escape(job, job->recipient), Escape(job, job->from_address),
						Escape(job, psprintf("<Response><Say>%s</Say></Response>", XmlEscape(job->body))));
	else
		form = psprintf("To=%s&From=%s&Body=%s",
						Escape(job, job->recipient), Escape(job, job->from_address),
						Escape(job, job->body));
	job->post = form;

	curl_easy_setopt(job->easy, CURLOPT_URL, url);
	curl_easy_setopt(job->easy, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
	curl_easy_setopt(job->easy, CURLOPT_USERNAME, job->username);
	curl_easy_setopt(job->easy, CURLOPT_PASSWORD, job->secret);
	AddHeader(job, "Content-Type: application/x-www-form-urlencoded");
	AddHeader(job, "I-Twilio-Idempotency-Token: %s", job->idempotency_key);
	SetPost(job, form, strlen(form));
	return true;
}

/* ntfy priority (1..5) of a severity. */
static int
NtfyPriority(const char *severity)
{
	if (severity == NULL)
		return 3;
	if (strcmp(severity, "sev1") == 0)
		return 5;
	if (strcmp(severity, "sev2") == 0)
		return 4;
	if (strcmp(severity, "sev4") == 0)
		return 2;
	return 3;
}

/* ntfy tags (emoji short codes) of a severity. */
static const char *
NtfyTag(const char *severity)
{
	if (severity == NULL)
		return "bell";
	if (strcmp(severity, "sev1") == 0)
		return "rotating_light";
	if (strcmp(severity, "sev2") == 0)
		return "warning";
	if (strcmp(severity, "sev3") == 0)
		return "information_source";
	if (strcmp(severity, "sev4") == 0)
		return "memo";
	return "bell";
}

/* Push through an ntfy-compatible API. */
bool
EvmgmtBuildNtfyRequest(DeliveryJob *job, char **error)
{
	char	   *url;

	if (job->recipient == NULL || job->recipient[0] == '\0')
	{
		*error = pstrdup("a push notification needs a topic as its recipient");
		return false;
	}
	url = psprintf("%s/%s", BaseUrl(job->endpoint), Escape(job, job->recipient));
	curl_easy_setopt(job->easy, CURLOPT_URL, url);
	AddHeader(job, "Content-Type: text/plain; charset=utf-8");
	if (job->subject)
		AddHeader(job, "Title: %s", EvmgmtEncodeHeaderWords(job->subject, " "));
	AddHeader(job, "Priority: %d", NtfyPriority(job->severity));
	if (job->severity)
		AddHeader(job, "Tags: %s,%s", NtfyTag(job->severity), job->severity);
	else
		AddHeader(job, "Tags: %s", NtfyTag(job->severity));
	AddHeader(job, "X-Idempotency-Key: %s", job->idempotency_key);

	/*
	 * The action button: an http action that POSTs to the ack link (what the
	 * link's own page would post) and clears the notification.  ntfy's short
	 * header form separates fields with commas and actions with semicolons,
	 * so a URL or label with either (or a line break) gets no button: the
	 * link stays in the text.
	 */
	if (job->ack_url && strpbrk(job->ack_url, ",;\r\n\"") == NULL &&
		(job->ack_label == NULL || strpbrk(job->ack_label, ",;\r\n\"") == NULL))
		AddHeader(job, "Actions: http, %s, %s, method=POST, clear=true",
				  EvmgmtEncodeHeaderWords(job->ack_label ? job->ack_label : "Acknowledge", " "), job->ack_url);
	if (job->username && job->secret)
	{
		curl_easy_setopt(job->easy, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
		curl_easy_setopt(job->easy, CURLOPT_USERNAME, job->username);
		curl_easy_setopt(job->easy, CURLOPT_PASSWORD, job->secret);
	}
	else if (job->secret)
		AddHeader(job, "Authorization: Bearer %s", job->secret);
	SetPost(job, job->body, strlen(job->body));
	return true;
}
