/*-------------------------------------------------------------------------
 *
 * smtp.c
 *	  The e-mail channel of the dispatcher: an RFC 5322 message sent through
 *	  the provider's SMTP relay with libcurl.
 *
 * The provider's endpoint is smtp://host[:port] or smtps://host[:port];
 * settings.starttls = "required" (or "true") insists on STARTTLS, "try"
 * uses it when offered; username and secret, when both are set, are used
 * for SMTP AUTH.  The message has Date, From (with settings.from_name as
 * display name), To, Subject (RFC 2047 encoded when not ASCII),
 * Message-ID derived from the idempotency key (so a duplicate after a
 * crash carries the same Message-ID), MIME-Version and a text/plain UTF-8
 * body with CRLF line ends.  libcurl does the SMTP dot-stuffing.
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

/* libcurl read callback: hand out the message. */
static size_t
ReadMessage(char *buffer, size_t size, size_t nitems, void *userdata)
{
	DeliveryJob *job = (DeliveryJob *) userdata;
	size_t		room = size * nitems;
	size_t		n = Min(room, job->upload_len - job->upload_pos);

	memcpy(buffer, job->upload + job->upload_pos, n);
	job->upload_pos += n;
	return n;
}

/* Build the RFC 5322 message of a job. */
static void
BuildMessage(DeliveryJob *job)
{
	StringInfoData m;
	char		date[64];
	time_t		now = time(NULL);
	struct tm	tm;
	const char *at = strrchr(job->from_address, '@');
	const char *domain = (at && at[1]) ? at + 1 : "evmgmt.invalid";

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);

	initStringInfo(&m);
	appendStringInfo(&m, "Date: %s\r\n", date);
	if (job->from_name)
		appendStringInfo(&m, "From: %s <%s>\r\n", EncodeHeaderWord(OneLine(job->from_name)),
						 OneLine(job->from_address));
	else
		appendStringInfo(&m, "From: <%s>\r\n", OneLine(job->from_address));
	appendStringInfo(&m, "To: <%s>\r\n", OneLine(job->recipient));
	appendStringInfo(&m, "Subject: %s\r\n", EncodeHeaderWord(OneLine(job->subject ? job->subject : "evmgmt notification")));
	appendStringInfo(&m, "Message-ID: <%s@%s>\r\n", job->idempotency_key, OneLine(domain));
	appendStringInfoString(&m, "MIME-Version: 1.0\r\n");
	appendStringInfoString(&m, "Content-Type: text/plain; charset=utf-8\r\n");
	appendStringInfoString(&m, "Content-Transfer-Encoding: 8bit\r\n");
	appendStringInfo(&m, "X-Evmgmt-Notification: " INT64_FORMAT "\r\n", job->notification_id);
	appendStringInfoString(&m, "\r\n");
	for (const char *p = job->body; *p; p++)
	{
		if (*p == '\r')
			continue;
		if (*p == '\n')
			appendStringInfoString(&m, "\r\n");
		else
			appendStringInfoChar(&m, *p);
	}
	appendStringInfoString(&m, "\r\n");
	job->upload = m.data;
	job->upload_len = m.len;
	job->upload_pos = 0;
}

/* E-mail through the provider's SMTP relay. */
bool
BuildSmtpRequest(DeliveryJob *job, char **error)
{
	if (job->recipient == NULL || strchr(job->recipient, '@') == NULL ||
		strpbrk(job->recipient, "<>\r\n ") != NULL)
	{
		*error = psprintf("\"%s\" is not an e-mail address", job->recipient ? job->recipient : "");
		return false;
	}
	BuildMessage(job);
	job->recipients = curl_slist_append(NULL, job->recipient);

	curl_easy_setopt(job->easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(job->easy, CURLOPT_URL, job->endpoint);
	curl_easy_setopt(job->easy, CURLOPT_MAIL_FROM, psprintf("<%s>", OneLine(job->from_address)));
	curl_easy_setopt(job->easy, CURLOPT_MAIL_RCPT, job->recipients);
	curl_easy_setopt(job->easy, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(job->easy, CURLOPT_READFUNCTION, ReadMessage);
	curl_easy_setopt(job->easy, CURLOPT_READDATA, job);
	curl_easy_setopt(job->easy, CURLOPT_INFILESIZE, (long) job->upload_len);
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
