/*-------------------------------------------------------------------------
 *
 * dispatch.c
 *	  The notification dispatcher: claim due notifications from the outbox,
 *	  send them with libcurl multi, settle the results.
 *
 * Three kinds of short transaction, never one open across network I/O:
 *	  claim	  up to evmgmt.batch_size due rows, FOR UPDATE SKIP LOCKED; they
 *			  become 'sending' with a lease (evmgmt.lease_time) and their
 *			  attempt counter goes up;
 *	  settle  the finished attempts: one delivery_attempt row each, and the
 *			  notification becomes 'sent', 'retry' (with exponential backoff
 *			  and jitter, or the server's Retry-After) or 'dead' (retry budget
 *			  spent, a 4xx answer, a refused address);
 *	  reclaim rows still 'sending' whose worker is gone (at worker start,
 *			  all of them; later, those whose lease expired).
 *
 * Each is one unit of work (work_unit.c).
 *
 * Sending uses one CURLM for the life of the worker, so connections are
 * reused across batches, driven by curl_multi_socket_action: libcurl tells
 * us which sockets to watch (we keep them in an epoll set) and when to call
 * back on a timer.  The epoll fd is the one socket the dispatcher asks the
 * worker to watch (EvmgmtDispatchSocket); the worker waits on it together
 * with its latch in its one WaitEventSet, so new work, SIGTERM and SIGHUP
 * are seen at once while requests are in flight.
 *
 * The dispatcher is a step: EvmgmtDispatchStep hands socket readiness and
 * libcurl's timer to libcurl, collects finished transfers, settles, claims,
 * starts what fits, and returns the time it wants to run again (libcurl's
 * timer, the next settle, the next due notification or expiring lease).
 * It never sleeps and never calls back into the worker.  At most
 * evmgmt.max_concurrency handles are in the multi handle at a time; the rest
 * of a claimed batch waits in a queue.  A claim is topped up when the queue
 * runs low and results are settled every SETTLE_EVERY_MS, so a hanging
 * endpoint holds only its own request (until evmgmt.request_timeout) and
 * never the others.
 *
 * IDENTIFICATION
 *	  src/dispatch.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "dispatch.h"
#include "evmgmt.h"
#include "workers.h"

/* Settle finished attempts at least this often while sending. */
#define SETTLE_EVERY_MS		200
/* Look again this soon when a due notification could not be claimed. */
#define LOCKED_RETRY_MS		100

/* Memory of one claim; freed when its last job is settled. */
typedef struct ClaimBatch
{
	MemoryContext cxt;
	int			remaining;
} ClaimBatch;

static CURLM *multi = NULL;
static uint64 multi_generation = 0;	/* allow-list its connections were checked against */
static int	epfd = -1;
static bool curl_timer_set = false;
static TimestampTz curl_timer_at = 0;

static dlist_head queued = DLIST_STATIC_INIT(queued);
static dlist_head done = DLIST_STATIC_INIT(done);
static int	nqueued = 0;
static int	ninflight = 0;
static int	ndone = 0;

/* when to settle next, whether the outbox may have more due, and when */
static TimestampTz last_settle = 0;
static bool claim_more = true;
static TimestampTz outbox_due = 0;

static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr settle_plan = NULL;
static SPIPlanPtr reclaim_plan = NULL;

static const char *const claim_sql =
"WITH c AS ("
"  SELECT notification_id FROM evmgmt.notification"
"  WHERE state IN ('pending', 'retry') AND next_attempt_at <= pg_catalog.clock_timestamp()"
"  ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED),"
" u AS ("
"  UPDATE evmgmt.notification n SET state = 'sending', attempts = n.attempts + 1,"
"   claimed_at = pg_catalog.clock_timestamp(),"
"   lease_until = pg_catalog.clock_timestamp() + $2 * interval '1 second'"
"  FROM c WHERE n.notification_id = c.notification_id"
"  RETURNING n.*)"
" SELECT u.notification_id, u.attempts, u.idempotency_key::text, u.channel::text,"
"  p.provider_id, p.kind, p.active, p.endpoint, p.username, p.from_address, s.secret,"
"  p.settings ->> 'starttls', p.settings ->> 'from_name',"
"  u.recipient, u.subject, u.body,"
"  pg_catalog.jsonb_build_object('type', 'evmgmt.' || u.kind, 'timestamp', u.created_at,"
"   'data', u.payload || pg_catalog.jsonb_build_object("
"    'notification_id', u.notification_id, 'event_id', u.event_id, 'escalation_id', u.escalation_id,"
"    'kind', u.kind, 'channel', u.channel, 'recipient', u.recipient,"
"    'subject', u.subject, 'body', u.body))::text,"
"  coalesce(u.payload ->> 'severity', u.payload ->> 'tier')"
" FROM u JOIN evmgmt.channel_provider p ON p.provider_id = u.provider_id"
" LEFT JOIN evmgmt.provider_secret s ON s.provider_id = u.provider_id";

static const char *const settle_sql =
"WITH r AS ("
"  SELECT * FROM ROWS FROM (pg_catalog.unnest($1::bigint[]), pg_catalog.unnest($2::integer[]),"
"   pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::integer[]),"
"   pg_catalog.unnest($6::text[]), pg_catalog.unnest($7::float8[]),"
"   pg_catalog.unnest($8::timestamptz[]), pg_catalog.unnest($9::timestamptz[]))"
"   AS r(id, attempt_no, new_state, outcome, status, error, delay_s, started, finished)),"
" a AS ("
"  INSERT INTO evmgmt.delivery_attempt"
"   (notification_id, attempt_no, started_at, finished_at, status_code, outcome, error)"
"  SELECT r.id, r.attempt_no, r.started, r.finished, r.status, r.outcome, r.error FROM r"
"  WHERE EXISTS (SELECT FROM evmgmt.notification n WHERE n.notification_id = r.id)"
"  ON CONFLICT (notification_id, attempt_no) DO NOTHING)"
" UPDATE evmgmt.notification n SET"
"  state = r.new_state,"
"  lease_until = NULL,"
"  sent_at = CASE WHEN r.new_state = 'sent' THEN r.finished END,"
"  last_status = r.status,"
"  last_error = CASE WHEN r.new_state = 'sent' THEN NULL ELSE r.error END,"
"  next_attempt_at = CASE WHEN r.new_state = 'retry'"
"   THEN r.finished + r.delay_s * interval '1 second' ELSE n.next_attempt_at END"
" FROM r WHERE n.notification_id = r.id AND n.state = 'sending' AND n.attempts = r.attempt_no";

static const char *const reclaim_sql =
"WITH r AS ("
"  UPDATE evmgmt.notification n SET"
"   state = CASE WHEN n.attempts >= $2 THEN 'dead' ELSE 'retry' END,"
"   lease_until = NULL, next_attempt_at = pg_catalog.now(), last_status = NULL,"
"   last_error = 'attempt ' || n.attempts || ' was interrupted: the worker stopped before its result was recorded'"
"  WHERE n.state = 'sending' AND ($1 OR n.lease_until <= pg_catalog.now())"
"  RETURNING n.notification_id, n.attempts, n.claimed_at, n.state, n.last_error)"
" INSERT INTO evmgmt.delivery_attempt"
"  (notification_id, attempt_no, started_at, finished_at, outcome, error)"
" SELECT notification_id, attempts, LEAST(coalesce(claimed_at, pg_catalog.now()), pg_catalog.now()),"
"  pg_catalog.now(), CASE WHEN state = 'dead' THEN 'dead' ELSE 'retry' END, last_error FROM r"
" ON CONFLICT (notification_id, attempt_no) DO NOTHING";

/* Prepare and keep a plan. */
static SPIPlanPtr
KeepPlan(const char *sql, int nargs, Oid *types)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

	if (plan == NULL)
		elog(ERROR, "evmgmt: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	return plan;
}

/* libcurl socket callback: keep our epoll set in step with what it watches. */
static int
SocketCallback(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct epoll_event ev;

	if (what == CURL_POLL_REMOVE)
	{
		(void) epoll_ctl(epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.data.fd = s;
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
		(void) epoll_ctl(epfd, EPOLL_CTL_ADD, s, &ev);
	return 0;
}

/* libcurl timer callback: remember when to call it back. */
static int
TimerCallback(CURLM *m, long timeout_ms, void *userp)
{
	if (timeout_ms < 0)
		curl_timer_set = false;
	else
	{
		curl_timer_set = true;
		curl_timer_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	}
	return 0;
}

/* Open a socket, unless the resolved address is not on the allow-list. */
static curl_socket_t
OpenSocketCallback(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	DeliveryJob *job = (DeliveryJob *) clientp;
	char		text[64];

	if (!EvmgmtAllowListPermits(&address->addr, text, sizeof(text)))
	{
		job->refused = true;
		strlcpy(job->refused_addr, text, sizeof(job->refused_addr));
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

/* Keep the start of the response body; cut off a response that is too big. */
static size_t
WriteCallback(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	DeliveryJob *job = (DeliveryJob *) userdata;
	size_t		n = size * nmemb;
	size_t		keep;

	job->response_total += n;
	if (job->response_total > RESPONSE_MAX_BYTES)
		return 0;
	keep = Min(n, RESPONSE_KEEP_BYTES - job->response_len);
	memcpy(job->response + job->response_len, ptr, keep);
	job->response_len += keep;
	job->response[job->response_len] = '\0';
	return n;
}

/* Options every request gets, whatever its channel. */
static void
SetCommonOptions(DeliveryJob *job)
{
	CURL	   *e = job->easy;

	curl_easy_setopt(e, CURLOPT_PRIVATE, job);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) evmgmt_connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) evmgmt_request_timeout_ms);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	/* no proxy from the server's environment: the allow-list judges the peer */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, job->errbuf);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, OpenSocketCallback);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, job);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, WriteCallback);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, job);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "evmgmt/" EVMGMT_LIBRARY_VERSION);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
}

/*
 * (Re)create the multi handle.  Its connection cache goes with it: after a
 * change of the allow-list, no connection opened under the old one is
 * reused.
 */
static void
CreateMulti(void)
{
	if (multi != NULL)
		curl_multi_cleanup(multi);
	curl_timer_set = false;
	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, SocketCallback);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, TimerCallback);
	multi_generation = evmgmt_allowlist_generation;
}

/* Set up what lives for the whole worker: curl and the epoll set. */
void
EvmgmtDispatchInit(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not initialize libcurl")));
	CreateMulti();

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		ereport(ERROR,
				(errcode_for_socket_access(),
				 errmsg("could not create an epoll set: %m")));
}

/* The socket the worker watches for us: the epoll set of libcurl's sockets. */
pgsocket
EvmgmtDispatchSocket(void)
{
	return epfd;
}

/* Return notifications left 'sending' to the queue (all, or expired leases). */
static void
DispatchReclaim(bool all)
{
	Datum		args[2];

	EvmgmtBeginUnit("evmgmt: reclaiming abandoned claims");
	if (reclaim_plan == NULL)
	{
		Oid			types[2] = {BOOLOID, INT4OID};

		reclaim_plan = KeepPlan(reclaim_sql, 2, types);
	}
	args[0] = BoolGetDatum(all);
	args[1] = Int32GetDatum(evmgmt_max_attempts);
	if (SPI_execute_plan(reclaim_plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "evmgmt: reclaiming claims failed");
	if (SPI_processed > 0)
		ereport(LOG,
				(errmsg("evmgmt reclaimed %llu notification(s) whose delivery was interrupted",
						(unsigned long long) SPI_processed)));
	EvmgmtEndUnit();
}

/* At worker start: nothing is in flight any more. */
void
EvmgmtDispatchReclaimAll(void)
{
	DispatchReclaim(true);
}

/* Copy a column as a string into the claim's memory, NULL for SQL NULL. */
static char *
GetText(HeapTuple tup, TupleDesc desc, int col)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	return v ? pstrdup(v) : NULL;
}

/* Claim up to limit due notifications into the queue; return how many. */
static int
Claim(int limit)
{
	Datum		args[2];
	uint64		n;
	ClaimBatch *batch;
	MemoryContext old;

	EvmgmtBeginUnit("evmgmt: claiming due notifications");
	if (claim_plan == NULL)
	{
		Oid			types[2] = {INT4OID, INT4OID};

		claim_plan = KeepPlan(claim_sql, 2, types);
	}
	args[0] = Int32GetDatum(limit);
	args[1] = Int32GetDatum(evmgmt_lease_time_s);
	if (SPI_execute_plan(claim_plan, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "evmgmt: claiming notifications failed");
	n = SPI_processed;
	if (n > 0)
	{
		MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "evmgmt claim",
												  ALLOCSET_DEFAULT_SIZES);

		old = MemoryContextSwitchTo(cxt);
		batch = palloc(sizeof(ClaimBatch));
		batch->cxt = cxt;
		batch->remaining = (int) n;
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			DeliveryJob *job = palloc0(sizeof(DeliveryJob));
			char	   *active;

			job->batch = batch;
			job->notification_id = pg_strtoint64(SPI_getvalue(tup, desc, 1));
			job->attempt_no = pg_strtoint32(SPI_getvalue(tup, desc, 2));
			job->idempotency_key = GetText(tup, desc, 3);
			job->channel = GetText(tup, desc, 4);
			job->provider_id = GetText(tup, desc, 5);
			job->provider_kind = GetText(tup, desc, 6);
			active = SPI_getvalue(tup, desc, 7);
			job->provider_active = (active != NULL && active[0] == 't');
			job->endpoint = GetText(tup, desc, 8);
			job->username = GetText(tup, desc, 9);
			job->from_address = GetText(tup, desc, 10);
			job->secret = GetText(tup, desc, 11);
			job->starttls = GetText(tup, desc, 12);
			job->from_name = GetText(tup, desc, 13);
			job->recipient = GetText(tup, desc, 14);
			job->subject = GetText(tup, desc, 15);
			job->body = GetText(tup, desc, 16);
			job->json_body = GetText(tup, desc, 17);
			job->severity = GetText(tup, desc, 18);
			job->retry_after = -1;
			dlist_push_tail(&queued, &job->node);
			nqueued++;
		}
		MemoryContextSwitchTo(old);
	}
	EvmgmtEndUnit();
	return (int) n;
}

/* Delay before the next attempt: exponential backoff with jitter, or Retry-After. */
static double
RetryDelay(DeliveryJob *job)
{
	double		cap = evmgmt_backoff_cap_ms / 1000.0;
	double		d;

	if (job->retry_after >= 0)
		return Min(job->retry_after, cap);
	d = evmgmt_backoff_base_ms / 1000.0 * pow(2.0, Min(job->attempt_no - 1, 60));
	d = Min(d, cap);
	/* "equal jitter": between half the delay and all of it */
	return d / 2 + pg_prng_double(&pg_global_prng_state) * d / 2;
}

/* Mark a job as failed in a way worth retrying (within the budget). */
static void
Retryable(DeliveryJob *job, char *error)
{
	job->error = error;
	if (job->attempt_no >= evmgmt_max_attempts)
	{
		job->outcome = "dead";
		job->new_state = "dead";
		job->error = psprintf("%s (gave up after %d attempts)", error, job->attempt_no);
	}
	else
	{
		job->outcome = "retry";
		job->new_state = "retry";
		job->delay_s = RetryDelay(job);
	}
}

/* Mark a job as failed for good. */
static void
Permanent(DeliveryJob *job, const char *outcome, char *error)
{
	job->outcome = outcome;
	job->new_state = "dead";
	job->error = error;
}

/*
 * What an error message says about the response body: its length only.  The
 * body of an internal service or a provider (an echoed token, a phone
 * number) is never stored where a non-superuser could read it.
 */
static const char *
ResponseSnippet(DeliveryJob *job)
{
	return psprintf("response body of %zu bytes not stored", job->response_total);
}

/* Decide what the result of an attempt means. */
static void
Classify(DeliveryJob *job)
{
	MemoryContext old = MemoryContextSwitchTo(job->batch->cxt);
	bool		smtp = strcmp(job->provider_kind, "smtp") == 0;
	long		st = job->status;

	if (job->refused)
		Permanent(job, "refused",
				  psprintf("connection to %s refused: the address is not in evmgmt.outbound_allow",
						   job->refused_addr));
	else if (smtp)
	{
		if (job->result == CURLE_OK)
		{
			job->outcome = "sent";
			job->new_state = "sent";
		}
		else if (st >= 500 && st < 600)
			Permanent(job, "dead", psprintf("SMTP %ld: %s", st, job->errbuf[0] ? job->errbuf : curl_easy_strerror(job->result)));
		else if (job->result == CURLE_LOGIN_DENIED)
			Permanent(job, "dead", psprintf("SMTP authentication failed: %s", job->errbuf[0] ? job->errbuf : curl_easy_strerror(job->result)));
		else if (st > 0)
			Retryable(job, psprintf("SMTP %ld: %s", st, job->errbuf[0] ? job->errbuf : curl_easy_strerror(job->result)));
		else
			Retryable(job, psprintf("%s", job->errbuf[0] ? job->errbuf : curl_easy_strerror(job->result)));
	}
	else if (st >= 200 && st < 300)
	{
		/* a body cut off for size does not undo a success */
		job->outcome = "sent";
		job->new_state = "sent";
	}
	else if (st == 0)
	{
		if (job->result == CURLE_OPERATION_TIMEDOUT)
			Retryable(job, psprintf("timed out: %s", job->errbuf[0] ? job->errbuf : curl_easy_strerror(job->result)));
		else
			Retryable(job, psprintf("%s", job->errbuf[0] ? job->errbuf : curl_easy_strerror(job->result)));
	}
	else if (st == 429 || st == 503 || st == 408 || st >= 500)
		Retryable(job, psprintf("HTTP %ld: %s", st, ResponseSnippet(job)));
	else if (st >= 300 && st < 400)
		Permanent(job, "dead", psprintf("HTTP %ld: redirects are not followed", st));
	else
		Permanent(job, "dead", psprintf("HTTP %ld: %s", st, ResponseSnippet(job)));
	MemoryContextSwitchTo(old);
}

/* The job could not even be sent (bad configuration): it is done, dead. */
static void
FailBeforeSending(DeliveryJob *job, char *error)
{
	job->finished = job->started;
	Permanent(job, "dead", error);
	dlist_push_tail(&done, &job->node);
	ndone++;
}

/* Free what libcurl holds for a job. */
static void
ReleaseRequest(DeliveryJob *job)
{
	if (job->easy)
	{
		/* a no-op for a handle that was never added */
		curl_multi_remove_handle(multi, job->easy);
		curl_easy_cleanup(job->easy);
		job->easy = NULL;
	}
	if (job->mime)
		curl_mime_free(job->mime);
	job->mime = NULL;
	if (job->headers)
		curl_slist_free_all(job->headers);
	job->headers = NULL;
	if (job->recipients)
		curl_slist_free_all(job->recipients);
	job->recipients = NULL;
}

/* Build the request of the next queued job and hand it to libcurl. */
static void
StartJob(DeliveryJob *job)
{
	char	   *error = NULL;
	bool		ok;
	MemoryContext old;

	job->started = GetCurrentTimestamp();
	old = MemoryContextSwitchTo(job->batch->cxt);
	if (!job->provider_active)
	{
		FailBeforeSending(job, psprintf("provider \"%s\" is not active", job->provider_id));
		MemoryContextSwitchTo(old);
		return;
	}
	/* the allow-list changed: no connection checked under the old one is reused */
	if (multi_generation != evmgmt_allowlist_generation && ninflight == 0)
		CreateMulti();
	job->easy = curl_easy_init();
	if (job->easy == NULL)
		elog(ERROR, "evmgmt: curl_easy_init failed");
	SetCommonOptions(job);
	if (multi_generation != evmgmt_allowlist_generation)
	{
		curl_easy_setopt(job->easy, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(job->easy, CURLOPT_FORBID_REUSE, 1L);
	}
	if (strcmp(job->provider_kind, "webhook") == 0)
		ok = EvmgmtBuildWebhookRequest(job, &error);
	else if (strcmp(job->provider_kind, "twilio") == 0)
		ok = EvmgmtBuildTwilioRequest(job, &error);
	else if (strcmp(job->provider_kind, "ntfy") == 0)
		ok = EvmgmtBuildNtfyRequest(job, &error);
	else if (strcmp(job->provider_kind, "smtp") == 0)
		ok = EvmgmtBuildSmtpRequest(job, &error);
	else
	{
		ok = false;
		error = psprintf("unknown provider kind \"%s\"", job->provider_kind);
	}
	MemoryContextSwitchTo(old);
	if (!ok)
	{
		ReleaseRequest(job);
		FailBeforeSending(job, error);
		return;
	}
	if (curl_multi_add_handle(multi, job->easy) != CURLM_OK)
		elog(ERROR, "evmgmt: curl_multi_add_handle failed");
	ninflight++;
}

/* Collect finished transfers from libcurl. */
static void
Harvest(void)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		DeliveryJob *job;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &job);
		job->result = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &job->status);
		{
			curl_off_t	retry_after = 0;

			/* seconds, from either form of the header; 0 when there is none */
			if (curl_easy_getinfo(msg->easy_handle, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
				retry_after > 0)
				job->retry_after = (double) retry_after;
		}
		job->finished = GetCurrentTimestamp();
		ReleaseRequest(job);
		Classify(job);
		ninflight--;
		dlist_push_tail(&done, &job->node);
		ndone++;
	}
}

/* Build a one-dimensional array; elements flagged in nulls are NULL. */
static Datum
MakeArray(Datum *elems, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  elemtype, typlen, typbyval, typalign));
}

/* Record every finished attempt in one short transaction. */
static void
Settle(void)
{
	int			n = ndone;
	int			i = 0;
	Datum	   *ids,
			   *attempts,
			   *states,
			   *outcomes,
			   *statuses,
			   *errors,
			   *delays,
			   *starts,
			   *ends;
	bool	   *status_null,
			   *error_null;
	Datum		args[9];
	dlist_iter	iter;
	dlist_mutable_iter miter;

	if (n == 0)
		return;
	EvmgmtBeginUnit("evmgmt: recording delivery results");
	if (settle_plan == NULL)
	{
		Oid			types[9] = {INT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		INT4ARRAYOID, TEXTARRAYOID, FLOAT8ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID};

		settle_plan = KeepPlan(settle_sql, 9, types);
	}
	ids = palloc(sizeof(Datum) * n);
	attempts = palloc(sizeof(Datum) * n);
	states = palloc(sizeof(Datum) * n);
	outcomes = palloc(sizeof(Datum) * n);
	statuses = palloc(sizeof(Datum) * n);
	errors = palloc(sizeof(Datum) * n);
	delays = palloc(sizeof(Datum) * n);
	starts = palloc(sizeof(Datum) * n);
	ends = palloc(sizeof(Datum) * n);
	status_null = palloc(sizeof(bool) * n);
	error_null = palloc(sizeof(bool) * n);

	dlist_foreach(iter, &done)
	{
		DeliveryJob *job = dlist_container(DeliveryJob, node, iter.cur);

		ids[i] = Int64GetDatum(job->notification_id);
		attempts[i] = Int32GetDatum(job->attempt_no);
		states[i] = CStringGetTextDatum(job->new_state);
		outcomes[i] = CStringGetTextDatum(job->outcome);
		status_null[i] = (job->status <= 0);
		statuses[i] = Int32GetDatum((int32) job->status);
		error_null[i] = (job->error == NULL);
		errors[i] = job->error ? CStringGetTextDatum(job->error) : (Datum) 0;
		delays[i] = Float8GetDatum(job->delay_s);
		starts[i] = TimestampTzGetDatum(job->started);
		ends[i] = TimestampTzGetDatum(Max(job->finished, job->started));
		i++;
	}
	args[0] = MakeArray(ids, NULL, n, INT8OID);
	args[1] = MakeArray(attempts, NULL, n, INT4OID);
	args[2] = MakeArray(states, NULL, n, TEXTOID);
	args[3] = MakeArray(outcomes, NULL, n, TEXTOID);
	args[4] = MakeArray(statuses, status_null, n, INT4OID);
	args[5] = MakeArray(errors, error_null, n, TEXTOID);
	args[6] = MakeArray(delays, NULL, n, FLOAT8OID);
	args[7] = MakeArray(starts, NULL, n, TIMESTAMPTZOID);
	args[8] = MakeArray(ends, NULL, n, TIMESTAMPTZOID);
	if (SPI_execute_plan(settle_plan, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "evmgmt: recording delivery results failed");
	EvmgmtEndUnit();

	/* Free every claim whose last job is now settled. */
	dlist_foreach_modify(miter, &done)
	{
		DeliveryJob *job = dlist_container(DeliveryJob, node, miter.cur);
		ClaimBatch *batch = job->batch;

		dlist_delete(miter.cur);
		if (--batch->remaining == 0)
			MemoryContextDelete(batch->cxt);
	}
	ndone = 0;
#ifdef __GLIBC__
	/* all batches gone: hand their memory back before the worker sleeps */
	if (ninflight == 0 && nqueued == 0)
		malloc_trim(0);
#endif
}

/* Hand socket readiness from our epoll set to libcurl. */
static void
DrainEpoll(void)
{
	struct epoll_event evs[64];
	int			n;
	int			running;

	do
	{
		n = epoll_wait(epfd, evs, lengthof(evs), 0);
		for (int i = 0; i < n; i++)
		{
			int			flags = 0;

			if (evs[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (evs[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(multi, evs[i].data.fd, flags, &running);
		}
	} while (n == lengthof(evs));
}

/* Is anything claimed and not yet settled? */
bool
EvmgmtDispatchBusy(void)
{
	return ninflight > 0 || nqueued > 0 || ndone > 0;
}

/* Earliest time the outbox needs us again: a retry or an expiring lease. */
static TimestampTz
NextNotificationDue(void)
{
	TimestampTz result = DT_NOEND;

	EvmgmtBeginUnit("evmgmt: looking for the next due notification");
	if (SPI_execute("SELECT LEAST("
					"(SELECT pg_catalog.min(next_attempt_at) FROM evmgmt.notification WHERE state IN ('pending', 'retry')),"
					"(SELECT pg_catalog.min(lease_until) FROM evmgmt.notification WHERE state = 'sending'))",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			result = DatumGetTimestampTz(d);
	}
	EvmgmtEndUnit();
	return result;
}

/*
 * One step of the dispatcher, without sleeping: drive libcurl, collect and
 * settle finished attempts, claim due notifications and start what fits.
 * woken: new notifications may have been committed; may_claim false (the
 * worker is disabled) lets what is in hand finish but claims nothing new.
 * Returns when the step wants to run again (besides whenever the
 * dispatcher's socket is ready).
 */
TimestampTz
EvmgmtDispatchStep(bool woken, bool may_claim)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake_at;
	int			running;

	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) Max(evmgmt_max_concurrency, 8));
	if (woken || outbox_due <= now)
		claim_more = true;
	if (!may_claim)
		claim_more = false;

	/* hand socket readiness and libcurl's timer to libcurl, collect results */
	DrainEpoll();
	if (curl_timer_set && curl_timer_at <= GetCurrentTimestamp())
	{
		curl_timer_set = false;
		curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	Harvest();

	/* settle when enough is done, or now and then, or when all is done */
	now = GetCurrentTimestamp();
	if (ndone > 0 &&
		(ndone >= evmgmt_batch_size || (ninflight == 0 && nqueued == 0) ||
		 TimestampDifferenceExceeds(last_settle, now, SETTLE_EVERY_MS)))
	{
		Settle();
		last_settle = GetCurrentTimestamp();
	}

	/* claim: first take back expired leases, then top up the queue */
	if (claim_more && nqueued < evmgmt_max_concurrency)
	{
		int			want = Max(evmgmt_batch_size, evmgmt_max_concurrency);

		if (ninflight == 0 && nqueued == 0)
			DispatchReclaim(false);
		if (Claim(want) < want)
			claim_more = false;
	}

	/* start what fits; libcurl's timer callback asks for the first kick */
	while (ninflight < evmgmt_max_concurrency && nqueued > 0)
	{
		DeliveryJob *job = dlist_container(DeliveryJob, node, dlist_pop_head_node(&queued));

		nqueued--;
		StartJob(job);
	}

	/* when to come back */
	now = GetCurrentTimestamp();
	if (ninflight == 0 && nqueued == 0)
	{
		if (ndone > 0 || claim_more)
			return now;			/* settle the jobs that failed before sending, claim again */
		if (!may_claim)
			return DT_NOEND;
		outbox_due = NextNotificationDue();
		if (outbox_due <= now)
		{
			/* due but not claimable yet (a row locked by someone else) */
			outbox_due = TimestampTzPlusMilliseconds(now, LOCKED_RETRY_MS);
		}
		pgstat_report_activity(STATE_IDLE, NULL);
		return outbox_due;
	}

	{
		char		activity[128];

		snprintf(activity, sizeof(activity), "evmgmt: dispatching (%d in flight, %d queued)",
				 ninflight, nqueued);
		pgstat_report_activity(STATE_RUNNING, activity);
	}
	wake_at = curl_timer_set ? curl_timer_at : TimestampTzPlusMilliseconds(now, 1000);
	if (ndone > 0)
		wake_at = Min(wake_at, TimestampTzPlusMilliseconds(last_settle, SETTLE_EVERY_MS));
	if (claim_more && nqueued < evmgmt_max_concurrency)
		wake_at = now;
	return wake_at;
}
