/*-------------------------------------------------------------------------
 *
 * smtp.c
 *	  The e-mail channel of the dispatcher: an RFC 5322 message sent through
 *	  the provider's SMTP relay with libcurl.
 *
 * The provider's endpoint is smtp://host[:port] or smtps://host[:port];
 * settings.starttls = "required" (or "true") insists on STARTTLS, "try"
 * uses it when offered; username and secret, when both are set, are used
 * for SMTP AUTH.
 *
 * The message is built with libcurl's MIME API: the header fields Date,
 * From (settings.from_name as display name), To, Subject, Message-ID
 * (derived from the idempotency key, so a duplicate after a crash carries
 * the same Message-ID) and X-Evmgmt-Notification go in through
 * CURLOPT_HTTPHEADER, non-ASCII display names and subjects as RFC 2047
 * encoded words folded onto short lines, and MIME-Version; libcurl adds the
 * multipart/mixed frame around one text/plain; charset=utf-8 part whose
 * body it encodes as quoted-printable.  The message is therefore 7-bit
 * with lines of at most 76 characters, whatever the text: long lines and
 * non-ASCII text survive relays without 8BITMIME and the 998-octet line
 * limit of RFC 5322.  libcurl also does the SMTP dot-stuffing.
 *
 * IDENTIFICATION
 *	  src/smtp.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "lib/stringinfo.h"

#include "dispatch.h"
#include "workers.h"

/* Copy a header value with CR and LF turned into spaces (no injection). */
static char *
OneLine(const char *s)
{
	char	   *r = pstrdup(s ? s : "");

	for (char *p = r; *p; p++)
	{
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	}
	return r;
}

/*
 * A display name for From: encoded words when not ASCII, a quoted string
 * when it holds characters that are special in an address (RFC 5322 3.2.3),
 * else as it is.
 */
static char *
DisplayName(const char *name)
{
	char	   *flat = OneLine(name);
	StringInfoData q;

	for (const unsigned char *p = (const unsigned char *) flat; *p; p++)
	{
		if (*p >= 0x7f || *p < 0x20)
			return EvmgmtEncodeHeaderWords(flat, "\r\n ");
	}
	if (strpbrk(flat, "()<>[]:;@\\,.\"") == NULL)
		return flat;
	initStringInfo(&q);
	appendStringInfoChar(&q, '"');
	for (const char *p = flat; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			appendStringInfoChar(&q, '\\');
		appendStringInfoChar(&q, *p);
	}
	appendStringInfoChar(&q, '"');
	return q.data;
}

/* Append a header field to the job's list. */
static void
AddField(DeliveryJob *job, const char *name, const char *value)
{
	char	   *line = psprintf("%s: %s", name, value);

	job->headers = curl_slist_append(job->headers, line);
	pfree(line);
}

/* Build the RFC 5322 message of a job as a libcurl MIME structure. */
static bool
BuildMessage(DeliveryJob *job, char **error)
{
	char		date[64];
	time_t		now = time(NULL);
	struct tm	tm;
	const char *at = strrchr(job->from_address, '@');
	const char *domain = (at && at[1]) ? at + 1 : "evmgmt.invalid";
	StringInfoData body;
	curl_mimepart *part;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);

	AddField(job, "Date", date);
	if (job->from_name)
	{
		char	   *name = DisplayName(job->from_name);
		char	   *addr = OneLine(job->from_address);
		const char *lastline = strrchr(name, '\n');

		/* fold before the address rather than go past 78 octets */
		lastline = lastline ? lastline + 1 : name;
		AddField(job, "From", psprintf("%s%s<%s>", name,
									   (lastline == name ? 6 : 0) + strlen(lastline) + strlen(addr) + 3 > 78 ? "\r\n " : " ",
									   addr));
	}
	else
		AddField(job, "From", psprintf("<%s>", OneLine(job->from_address)));
	AddField(job, "To", psprintf("<%s>", OneLine(job->recipient)));
	AddField(job, "Subject",
			 EvmgmtEncodeHeaderWords(OneLine(job->subject ? job->subject : "evmgmt notification"), "\r\n "));
	AddField(job, "Message-ID", psprintf("<%s@%s>", job->idempotency_key, OneLine(domain)));
	AddField(job, "X-Evmgmt-Notification", psprintf(INT64_FORMAT, job->notification_id));
	/* spelled as RFC 2045 does; libcurl adds its own only when this is missing */
	AddField(job, "MIME-Version", "1.0");

	/* CRLF line ends: the quoted-printable encoder keeps those as line breaks */
	initStringInfo(&body);
	for (const char *p = job->body; *p; p++)
	{
		if (*p == '\r')
			continue;
		if (*p == '\n')
			appendStringInfoString(&body, "\r\n");
		else
			appendStringInfoChar(&body, *p);
	}
	appendStringInfoString(&body, "\r\n");

	job->mime = curl_mime_init(job->easy);
	part = job->mime ? curl_mime_addpart(job->mime) : NULL;
	if (part == NULL ||
		curl_mime_data(part, body.data, body.len) != CURLE_OK ||
		curl_mime_type(part, "text/plain; charset=utf-8") != CURLE_OK ||
		curl_mime_encoder(part, "quoted-printable") != CURLE_OK)
	{
		*error = pstrdup("could not build the e-mail message (out of memory in libcurl)");
		return false;
	}
	pfree(body.data);
	return true;
}

/* E-mail through the provider's SMTP relay. */
bool
EvmgmtBuildSmtpRequest(DeliveryJob *job, char **error)
{
	if (job->recipient == NULL || strchr(job->recipient, '@') == NULL ||
		strpbrk(job->recipient, "<>\r\n ") != NULL)
	{
		*error = psprintf("\"%s\" is not an e-mail address", job->recipient ? job->recipient : "");
		return false;
	}
	if (!BuildMessage(job, error))
		return false;
	job->recipients = curl_slist_append(NULL, job->recipient);

	curl_easy_setopt(job->easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(job->easy, CURLOPT_URL, job->endpoint);
	curl_easy_setopt(job->easy, CURLOPT_MAIL_FROM, psprintf("<%s>", OneLine(job->from_address)));
	curl_easy_setopt(job->easy, CURLOPT_MAIL_RCPT, job->recipients);
	curl_easy_setopt(job->easy, CURLOPT_HTTPHEADER, job->headers);
	curl_easy_setopt(job->easy, CURLOPT_MIMEPOST, job->mime);
	if (job->starttls && (strcmp(job->starttls, "required") == 0 || strcmp(job->starttls, "true") == 0))
		curl_easy_setopt(job->easy, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL);
	else if (job->starttls && strcmp(job->starttls, "try") == 0)
		curl_easy_setopt(job->easy, CURLOPT_USE_SSL, (long) CURLUSESSL_TRY);
	if (job->username && job->secret)
	{
		curl_easy_setopt(job->easy, CURLOPT_USERNAME, job->username);
		curl_easy_setopt(job->easy, CURLOPT_PASSWORD, job->secret);
	}
	return true;
}
