/*-------------------------------------------------------------------------
 *
 * header_words.c
 *	  Header values that are not plain ASCII, as RFC 2047 encoded words;
 *	  shared by the e-mail channel (Subject, the From display name) and the
 *	  push channel (the ntfy Title header).
 *
 * A value with any byte outside printable ASCII becomes a sequence of
 * "=?UTF-8?B?...?=" words of at most 75 characters each (RFC 2047 section
 * 2; these are at most 64), each holding whole UTF-8 characters, so that no reader has to join a
 * character split across two words.  The words are joined by the caller's
 * separator: "\r\n " folds an e-mail header onto several lines (each well
 * under 78 octets), " " keeps an HTTP header on one line; decoders drop the
 * white space between adjacent encoded words.
 *
 * IDENTIFICATION
 *	  src/header_words.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/base64.h"
#include "lib/stringinfo.h"

#include "dispatch.h"

/*
 * Input bytes per encoded word: 39 bytes are 52 base64 characters, 64 with
 * the frame, so that even "Subject: " and the first word fit in 78 octets.
 */
#define WORD_BYTES 39

/* text as it is when plain ASCII, else as RFC 2047 encoded words. */
char *
EvmgmtEncodeHeaderWords(const char *text, const char *separator)
{
	const unsigned char *p = (const unsigned char *) text;
	size_t		len = strlen(text);
	bool		ascii = true;
	StringInfoData out;
	size_t		pos = 0;

	for (size_t i = 0; i < len; i++)
	{
		if (p[i] >= 0x7f || p[i] < 0x20)
			ascii = false;
	}
	if (ascii)
		return pstrdup(text);

	initStringInfo(&out);
	while (pos < len)
	{
		size_t		n = Min(WORD_BYTES, len - pos);
		char		b64[WORD_BYTES * 2];
		int			enc;

		/* never split a UTF-8 character: back off to its first byte */
		while (n > 1 && pos + n < len && (p[pos + n] & 0xC0) == 0x80)
			n--;
		enc = pg_b64_encode((const char *) p + pos, (int) n, b64, sizeof(b64));
		if (enc < 0)
			elog(ERROR, "evmgmt: base64 encoding of a header value failed");
		if (pos > 0)
			appendStringInfoString(&out, separator);
		appendStringInfo(&out, "=?UTF-8?B?%.*s?=", enc, b64);
		pos += n;
	}
	return out.data;
}
