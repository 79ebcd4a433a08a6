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
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "dispatch.h"
#include "evmgmt.h"
#include "workers.h"

/* Settle finished attempts at least this often while sending. */
#define SETTLE_EVERY_MS		200
/*
 * Look again this soon when a due notification could not be claimed (locked
 * by another session, or its escalation is being changed); the interval
 * doubles up to LOCKED_RETRY_MAX_MS while that lasts, and a commit that
 * changes the row wakes the worker anyway.
 */
#define LOCKED_RETRY_MS		100
#define LOCKED_RETRY_MAX_MS	2000

/*
 * One endpoint: a provider (one base URL, one relay, one API).  Its queue of
 * claimed jobs, what it has in flight, and its circuit breaker.  Kept in
 * worker memory: only this worker sends to the database's endpoints, and a
 * restarted worker simply starts with every breaker closed (at worst it
 * spends evmgmt.max_per_endpoint requests to learn again that an endpoint is
 * down).
 */
typedef struct Endpoint
{
	dlist_node	node;
	char	   *provider_id;
	dlist_head	queued;
	int			nqueued;
	int			inflight;
	bool		backlog;		/* the last claim filled its allowance: more may be due */
	int			failures;		/* consecutive failed attempts */
	int			opens;			/* consecutive times the breaker opened */
	TimestampTz open_until;		/* 0: closed; else no request before then, then one probe */
	bool		probe_claimed;	/* the claim for this opening's probe was made */
} Endpoint;

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

static dlist_head endpoints = DLIST_STATIC_INIT(endpoints);
static dlist_head done = DLIST_STATIC_INIT(done);
static int	nqueued = 0;
static int	ninflight = 0;
static int	ndone = 0;

/* when to settle next, whether the outbox may have more due, and when */
static TimestampTz last_settle = 0;
static bool claim_more = true;
static TimestampTz outbox_due = 0;
static int	locked_retry_ms = LOCKED_RETRY_MS;

static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr settle_plan = NULL;
static SPIPlanPtr reclaim_plan = NULL;
static SPIPlanPtr next_due_plan = NULL;

/*
 * The claim.  Fair across endpoints: per provider at most its allowance ($3,
 * $4; $5 for providers not listed) of its earliest due rows, locked with SKIP
 * LOCKED; then round-robin by due time (first the earliest of every
 * endpoint, then the second, ...) up to $1.  Only rows written by this
 * installation (origin): a restored backlog waits for resume_sending.
 *
 * Finality of an acknowledgment: a page of an escalation is claimed only if
 * the escalation is still active (or exhausted) AND its row can be share-
 * locked without waiting.  acknowledge(), resolve and cancel change the
 * escalation row, which holds a lock that conflicts with FOR SHARE until
 * their transaction ends: while it is open the page is skipped ('wait'),
 * once it committed the row is seen ended (by the snapshot, or by the
 * re-check of the newest row version that a lock on an updated row makes in
 * READ COMMITTED) and the page is cancelled ('ended').  A page claimed
 * before took its share lock first, so the acknowledgment waited for the
 * claim to commit: it was in flight before the acknowledgment.
 */
static const char *const claim_sql =
"WITH lim AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::integer[])) AS l(provider_id, n)),"
" cand AS ("
"  SELECT c.notification_id, c.provider_id, c.next_attempt_at, c.kind, c.escalation_id, c.channel, c.payload,"
"   pg_catalog.row_number() OVER (PARTITION BY c.provider_id ORDER BY c.next_attempt_at, c.notification_id) AS rn"
"  FROM evmgmt.channel_provider p LEFT JOIN lim ON lim.provider_id = p.provider_id"
"  CROSS JOIN LATERAL ("
"   SELECT n.notification_id, n.provider_id, n.next_attempt_at, n.kind, n.escalation_id, n.channel, n.payload"
"   FROM evmgmt.notification n"
"   WHERE n.provider_id = p.provider_id AND n.state IN ('pending', 'retry')"
"    AND n.next_attempt_at <= pg_catalog.clock_timestamp()"
"    AND n.origin = (SELECT i.install_id FROM evmgmt.installation i)"
"   ORDER BY n.next_attempt_at, n.notification_id"
"   LIMIT coalesce(lim.n, $5) FOR UPDATE OF n SKIP LOCKED) c"
"  WHERE coalesce(lim.n, $5) > 0),"
" v AS MATERIALIZED ("
"  SELECT cand.*, CASE"
"   WHEN cand.kind = 'digest' THEN evmgmt.claim_digest_verdict(cand.payload -> 'items')"
"   WHEN cand.kind <> 'escalation_step' OR cand.escalation_id IS NULL THEN 'go'"
"   ELSE evmgmt.claim_verdict(cand.escalation_id) END AS verdict"
"  FROM cand),"
" x AS ("
"  UPDATE evmgmt.notification n SET state = 'cancelled', lease_until = NULL"
"  FROM v WHERE n.notification_id = v.notification_id AND v.verdict = 'ended'),"
" t AS ("
"  UPDATE evmgmt.notification n SET payload = d.payload, subject = d.subject, body = d.body"
"  FROM v CROSS JOIN LATERAL evmgmt.digest_without_ended(v.channel, v.payload) d"
"  WHERE n.notification_id = v.notification_id AND v.verdict = 'trim'),"
" c AS (SELECT notification_id FROM v WHERE verdict = 'go' ORDER BY rn, next_attempt_at, notification_id LIMIT $1),"
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
"  coalesce(u.payload ->> 'severity', u.payload ->> 'tier'),"
"  u.payload ->> 'ack_url', u.payload ->> 'ack_label', u.payload ->> 'gather_url', u.payload ->> 'gather_prompt'"
" FROM u JOIN evmgmt.channel_provider p ON p.provider_id = u.provider_id"
" LEFT JOIN evmgmt.provider_secret s ON s.provider_id = u.provider_id"
" ORDER BY u.next_attempt_at, u.notification_id";

static const char *const settle_sql =
"WITH r AS ("
"  SELECT * FROM ROWS FROM (pg_catalog.unnest($1::bigint[]), pg_catalog.unnest($2::integer[]),"
"   pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::integer[]),"
"   pg_catalog.unnest($6::text[]), pg_catalog.unnest($7::float8[]),"
"   pg_catalog.unnest($8::timestamptz[]), pg_catalog.unnest($9::timestamptz[]),"
"   pg_catalog.unnest($10::boolean[]))"
"   AS r(id, attempt_no, new_state, outcome, status, error, delay_s, started, finished, attempted)),"
" a AS ("
"  INSERT INTO evmgmt.delivery_attempt"
"   (notification_id, attempt_no, started_at, finished_at, status_code, outcome, error)"
"  SELECT r.id, r.attempt_no, r.started, r.finished, r.status, r.outcome, r.error FROM r"
"  WHERE r.attempted AND EXISTS (SELECT FROM evmgmt.notification n WHERE n.notification_id = r.id)"
"  ON CONFLICT (notification_id, attempt_no) DO NOTHING)"
" UPDATE evmgmt.notification n SET"
"  state = r.new_state,"
"  lease_until = NULL,"
"  attempts = CASE WHEN r.attempted THEN n.attempts ELSE n.attempts - 1 END,"
"  sent_at = CASE WHEN r.new_state = 'sent' THEN r.finished END,"
"  last_status = CASE WHEN r.attempted THEN r.status ELSE n.last_status END,"
"  last_error = CASE WHEN r.new_state = 'sent' THEN NULL WHEN r.attempted THEN r.error ELSE n.last_error END,"
"  next_attempt_at = CASE WHEN r.new_state = 'retry' AND r.attempted"
"   THEN r.finished + r.delay_s * interval '1 second' ELSE n.next_attempt_at END"
" FROM r WHERE n.notification_id = r.id AND n.state = 'sending' AND n.attempts = r.attempt_no";

static const char *const reclaim_sql =
"WITH r AS ("
"  UPDATE evmgmt.notification n SET"
"   state = CASE WHEN n.attempts >= $2 THEN 'dead' ELSE 'retry' END,"
"   lease_until = NULL, last_status = NULL,"
"   last_error = 'attempt ' || n.attempts || ' was interrupted: the worker stopped before its result was recorded'"
"  WHERE n.state = 'sending' AND ($1 OR n.lease_until <= pg_catalog.now())"
"  RETURNING n.notification_id, n.attempts, n.claimed_at, n.state, n.last_error)"
" INSERT INTO evmgmt.delivery_attempt"
"  (notification_id, attempt_no, started_at, finished_at, outcome, error)"
" SELECT notification_id, attempts, LEAST(coalesce(claimed_at, pg_catalog.now()), pg_catalog.now()),"
"  pg_catalog.now(), CASE WHEN state = 'dead' THEN 'dead' ELSE 'retry' END, last_error FROM r"
" ON CONFLICT (notification_id, attempt_no) DO NOTHING";

static Datum MakeArray(Datum *elems, bool *nulls, int n, Oid elemtype);

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

	/*
	 * The worker's statements are short and run thousands of times: JIT
	 * compiling them costs far more than it saves (a profile of the 50,000
	 * notification benchmark had 85 % of the worker's CPU in libLLVM, the
	 * claim compiled again for every batch).
	 */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);

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

/* The endpoint of a provider, created the first time it is seen. */
static Endpoint *
GetEndpoint(const char *provider_id)
{
	dlist_iter	iter;
	Endpoint   *ep;
	MemoryContext old;

	dlist_foreach(iter, &endpoints)
	{
		ep = dlist_container(Endpoint, node, iter.cur);
		if (strcmp(ep->provider_id, provider_id) == 0)
			return ep;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	ep = palloc0(sizeof(Endpoint));
	ep->provider_id = pstrdup(provider_id);
	dlist_init(&ep->queued);
	dlist_push_tail(&endpoints, &ep->node);
	MemoryContextSwitchTo(old);
	return ep;
}

/* Claimed rows an endpoint may hold: twice its in-flight cap. */
static int
EndpointRoom(void)
{
	return 2 * evmgmt_max_per_endpoint;
}

/*
 * How many more rows the next claim may take for an endpoint: room minus
 * what it holds; nothing while its breaker is open, one (the probe) once
 * the breaker's wait is over and nothing of it is in hand.
 */
static int
EndpointAllowance(Endpoint *ep, TimestampTz now)
{
	if (ep->open_until != 0)
	{
		if (ep->open_until > now || ep->inflight > 0 || ep->nqueued > 0)
			return 0;
		return 1;
	}
	return Max(EndpointRoom() - ep->inflight - ep->nqueued, 0);
}

/* Claim up to limit due notifications into the endpoints' queues; return how many. */
static int
Claim(int limit)
{
	Datum		args[5];
	uint64		n;
	ClaimBatch *batch;
	MemoryContext old;
	TimestampTz now = GetCurrentTimestamp();
	int			nep = 0;
	Datum	   *ids;
	Datum	   *allow;
	int			i = 0;
	dlist_iter	iter;

	EvmgmtBeginUnit("evmgmt: claiming due notifications");
	if (claim_plan == NULL)
	{
		Oid			types[5] = {INT4OID, INT4OID, TEXTARRAYOID, INT4ARRAYOID, INT4OID};

		claim_plan = KeepPlan(claim_sql, 5, types);
	}
	dlist_foreach(iter, &endpoints)
		nep++;
	ids = palloc(sizeof(Datum) * Max(nep, 1));
	allow = palloc(sizeof(Datum) * Max(nep, 1));
	dlist_foreach(iter, &endpoints)
	{
		Endpoint   *ep = dlist_container(Endpoint, node, iter.cur);
		int			a = EndpointAllowance(ep, now);

		ids[i] = CStringGetTextDatum(ep->provider_id);
		allow[i] = Int32GetDatum(a);
		if (ep->open_until != 0 && a > 0)
			ep->probe_claimed = true;
		/* a full endpoint may have more due: claim again when a slot frees */
		ep->backlog = (a == 0 && ep->open_until == 0);
		i++;
	}
	args[0] = Int32GetDatum(limit);
	args[1] = Int32GetDatum(evmgmt_lease_time_s);
	args[2] = MakeArray(ids, NULL, nep, TEXTOID);
	args[3] = MakeArray(allow, NULL, nep, INT4OID);
	args[4] = Int32GetDatum(EndpointRoom());
	if (SPI_execute_plan(claim_plan, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "evmgmt: claiming notifications failed");
	n = SPI_processed;
	if (n > 0)
	{
		MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "evmgmt claim",
												  ALLOCSET_DEFAULT_SIZES);
		Endpoint   *last = NULL;

		old = MemoryContextSwitchTo(cxt);
		batch = palloc(sizeof(ClaimBatch));
		batch->cxt = cxt;
		batch->remaining = (int) n;
		for (uint64 j = 0; j < n; j++)
		{
			HeapTuple	tup = SPI_tuptable->vals[j];
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
			job->ack_url = GetText(tup, desc, 19);
			job->ack_label = GetText(tup, desc, 20);
			job->gather_url = GetText(tup, desc, 21);
			job->gather_prompt = GetText(tup, desc, 22);
			job->retry_after = -1;
			job->attempted = true;
			if (last == NULL || strcmp(last->provider_id, job->provider_id) != 0)
				last = GetEndpoint(job->provider_id);
			job->ep = last;
			dlist_push_tail(&last->queued, &job->node);
			last->nqueued++;
			nqueued++;
		}
		MemoryContextSwitchTo(old);
	}
	EvmgmtEndUnit();

	/* an endpoint that got all it was allowed may have more due */
	dlist_foreach(iter, &endpoints)
	{
		Endpoint   *ep = dlist_container(Endpoint, node, iter.cur);

		if (ep->open_until == 0 && EndpointAllowance(ep, now) == 0)
			ep->backlog = true;
	}
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
	job->endpoint_failed = true;
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
	job->ep->inflight++;
}

/*
 * Start queued jobs while slots are free: round-robin over the endpoints, at
 * most evmgmt.max_per_endpoint in flight to one, none to an endpoint whose
 * breaker is open, and only its probe once the breaker's wait is over.
 */
static void
StartWhatFits(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		progress = true;

	while (progress && ninflight < evmgmt_max_concurrency && nqueued > 0)
	{
		dlist_iter	iter;

		progress = false;
		dlist_foreach(iter, &endpoints)
		{
			Endpoint   *ep = dlist_container(Endpoint, node, iter.cur);
			DeliveryJob *job;

			if (ninflight >= evmgmt_max_concurrency)
				break;
			if (ep->nqueued == 0 || ep->inflight >= evmgmt_max_per_endpoint)
				continue;
			if (ep->open_until != 0 && (ep->open_until > now || ep->inflight > 0))
				continue;
			job = dlist_container(DeliveryJob, node, dlist_pop_head_node(&ep->queued));
			ep->nqueued--;
			nqueued--;
			job->probe = (ep->open_until != 0);
			StartJob(job);
			progress = true;
		}
	}
	/* the next call starts with the next endpoint */
	if (!dlist_is_empty(&endpoints))
	{
		dlist_node *first = dlist_pop_head_node(&endpoints);

		dlist_push_tail(&endpoints, first);
	}
}

/* Hand an endpoint's queued jobs back unsent: they keep their due time. */
static void
ReleaseQueued(Endpoint *ep)
{
	TimestampTz now = GetCurrentTimestamp();

	while (!dlist_is_empty(&ep->queued))
	{
		DeliveryJob *job = dlist_container(DeliveryJob, node, dlist_pop_head_node(&ep->queued));

		job->attempted = false;
		job->outcome = "retry";
		job->new_state = "retry";
		job->error = NULL;
		job->started = job->finished = now;
		dlist_push_tail(&done, &job->node);
		ndone++;
		nqueued--;
	}
	ep->nqueued = 0;
}

/*
 * The circuit breaker of the job's endpoint, after its attempt: an answer
 * closes it; evmgmt.breaker_failures failures in a row (no answer, 5xx,
 * 429, 408) open it for the backoff of its openings (evmgmt.backoff_base
 * doubling, capped by evmgmt.backoff_cap), then one probe goes out: success
 * closes it, failure opens it for twice as long.  Opening hands the queued
 * jobs back unsent.
 */
static void
BreakerRecord(DeliveryJob *job)
{
	Endpoint   *ep = job->ep;
	double		delay_ms;

	if (job->refused)
		return;
	if (!job->endpoint_failed)
	{
		if (ep->open_until != 0)
		{
			ereport(LOG,
					(errmsg("evmgmt endpoint \"%s\" answers again: its circuit breaker is closed",
							ep->provider_id)));
			claim_more = true;
		}
		ep->failures = 0;
		ep->opens = 0;
		ep->open_until = 0;
		return;
	}
	ep->failures++;
	if (evmgmt_breaker_failures <= 0)
		return;
	if (ep->open_until != 0)
	{
		if (!job->probe)
			return;				/* started before the breaker opened */
		ep->opens++;
	}
	else if (ep->failures >= evmgmt_breaker_failures)
		ep->opens = 1;
	else
		return;
	delay_ms = Min((double) evmgmt_backoff_cap_ms,
				   evmgmt_backoff_base_ms * pow(2.0, Min(ep->opens - 1, 40)));
	ep->open_until = TimestampTzPlusMilliseconds(job->finished, (int64) delay_ms);
	ep->probe_claimed = false;
	ereport(LOG,
			(errmsg("evmgmt endpoint \"%s\" failed %d times in a row: its circuit breaker is open for %.0f ms, then one probe",
					ep->provider_id, ep->failures, delay_ms)));
	ReleaseQueued(ep);
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
		job->ep->inflight--;
		/* its endpoint may have more due now that a slot is free */
		if (job->ep->backlog)
			claim_more = true;
		BreakerRecord(job);
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
			   *ends,
			   *attempted;
	bool	   *status_null,
			   *error_null;
	Datum		args[10];
	dlist_iter	iter;
	dlist_mutable_iter miter;

	if (n == 0)
		return;
	EvmgmtBeginUnit("evmgmt: recording delivery results");
	if (settle_plan == NULL)
	{
		Oid			types[10] = {INT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
			INT4ARRAYOID, TEXTARRAYOID, FLOAT8ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID,
		BOOLARRAYOID};

		settle_plan = KeepPlan(settle_sql, 10, types);
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
	attempted = palloc(sizeof(Datum) * n);
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
		attempted[i] = BoolGetDatum(job->attempted);
		/* a retry is due then: come back for it, whatever else is in flight */
		if (job->attempted && strcmp(job->new_state, "retry") == 0)
			outbox_due = Min(outbox_due,
							 TimestampTzPlusMilliseconds(Max(job->finished, job->started),
														 (int64) (job->delay_s * 1000.0)));
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
	args[9] = MakeArray(attempted, NULL, n, BOOLOID);
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

/*
 * Earliest time the outbox needs us again, after a claim that got less than
 * it asked for: the next due notification of an endpoint that can take it
 * (not full, breaker not open) and, when nothing is in hand, the next lease
 * to expire.  A row that is due already was not claimable (locked by
 * another session, or its escalation is being changed): for those, look
 * again after a short wait that doubles while it lasts, instead of at once.
 */
static TimestampTz
NextNotificationDue(TimestampTz now, bool idle)
{
	TimestampTz result = DT_NOEND;
	Datum		args[2];
	Datum	   *ids;
	int			nep = 0;
	dlist_iter	iter;

	EvmgmtBeginUnit("evmgmt: looking for the next due notification");
	if (next_due_plan == NULL)
	{
		Oid			types[2] = {TEXTARRAYOID, BOOLOID};

		/* per provider one probe of its due index: never a scan of the backlog */
		next_due_plan = KeepPlan("SELECT LEAST("
								 "(SELECT pg_catalog.min(c.next_attempt_at) FROM evmgmt.channel_provider p"
								 "  CROSS JOIN LATERAL (SELECT n.next_attempt_at FROM evmgmt.notification n"
								 "   WHERE n.provider_id = p.provider_id AND n.state IN ('pending', 'retry')"
								 "   AND n.origin = (SELECT i.install_id FROM evmgmt.installation i)"
								 "   ORDER BY n.next_attempt_at LIMIT 1) c"
								 "  WHERE p.provider_id <> ALL ($1)),"
								 "(SELECT pg_catalog.min(lease_until) FROM evmgmt.notification"
								 "  WHERE $2 AND state = 'sending'))", 2, types);
	}
	dlist_foreach(iter, &endpoints)
		nep++;
	ids = palloc(sizeof(Datum) * Max(nep, 1));
	nep = 0;
	dlist_foreach(iter, &endpoints)
	{
		Endpoint   *ep = dlist_container(Endpoint, node, iter.cur);

		/* full, or open: a finished job or the breaker's wake-up brings us back */
		if (EndpointAllowance(ep, now) == 0)
			ids[nep++] = CStringGetTextDatum(ep->provider_id);
	}
	args[0] = MakeArray(ids, NULL, nep, TEXTOID);
	args[1] = BoolGetDatum(idle);
	if (SPI_execute_plan(next_due_plan, args, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			result = DatumGetTimestampTz(d);
	}
	/* due and not claimable: locked, or is this a copy being restored? */
	if (result <= now)
		(void) EvmgmtCheckSendingHeld();
	EvmgmtEndUnit();
	if (result <= now)
	{
		/* due but not claimable yet */
		result = TimestampTzPlusMilliseconds(now, locked_retry_ms);
		locked_retry_ms = Min(locked_retry_ms * 2, LOCKED_RETRY_MAX_MS);
	}
	return result;
}

/* When the first open breaker's wait is over (its probe may go out). */
static TimestampTz
BreakerWake(TimestampTz now)
{
	TimestampTz result = DT_NOEND;
	dlist_iter	iter;

	dlist_foreach(iter, &endpoints)
	{
		Endpoint   *ep = dlist_container(Endpoint, node, iter.cur);

		if (ep->open_until == 0 || ep->inflight > 0)
			continue;
		if (ep->open_until > now)
			result = Min(result, ep->open_until);
		else if (!ep->probe_claimed)
			result = now;
	}
	return result;
}

/*
 * One step of the dispatcher, without sleeping: drive libcurl, collect and
 * settle finished attempts, claim due notifications and start what fits.
 * woken: new notifications may have been committed; may_claim false (the
 * worker is disabled) lets what is in hand finish but claims nothing new.
 * Returns when the step wants to run again (besides whenever the
 * dispatcher's socket is ready): libcurl's timer, the next settle, the next
 * due retry (whatever is in flight), an open breaker's probe time.
 */
TimestampTz
EvmgmtDispatchStep(bool woken, bool may_claim)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake_at = DT_NOEND;
	int			running;

	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) Max(evmgmt_max_concurrency, 8));
	if (woken)
		locked_retry_ms = LOCKED_RETRY_MS;
	if (woken || outbox_due <= now || BreakerWake(now) <= now)
		claim_more = true;

	/* hand socket readiness and libcurl's timer to libcurl, collect results */
	DrainEpoll();
	if (curl_timer_set && curl_timer_at <= GetCurrentTimestamp())
	{
		curl_timer_set = false;
		curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	Harvest();
	if (!may_claim)
		claim_more = false;

	/* settle when enough is done, or now and then, or when all is done */
	now = GetCurrentTimestamp();
	if (ndone > 0 &&
		(ndone >= evmgmt_batch_size || (ninflight == 0 && nqueued == 0) ||
		 TimestampDifferenceExceeds(last_settle, now, SETTLE_EVERY_MS)))
	{
		Settle();
		last_settle = GetCurrentTimestamp();
	}

	/* start what is queued, then top up: take back expired leases, claim */
	StartWhatFits();
	if (claim_more && nqueued < evmgmt_max_concurrency)
	{
		int			want = Max(evmgmt_batch_size, evmgmt_max_concurrency);
		int			got;
		bool		idle = (ninflight == 0 && nqueued == 0 && ndone == 0);

		if (idle)
			DispatchReclaim(false);
		got = Claim(want);
		if (got > 0)
			locked_retry_ms = LOCKED_RETRY_MS;
		if (got < want)
		{
			claim_more = false;
			outbox_due = NextNotificationDue(GetCurrentTimestamp(), idle && got == 0);
		}
		StartWhatFits();
	}

	/* when to come back */
	now = GetCurrentTimestamp();
	if (ndone > 0)
		wake_at = (ninflight == 0 && nqueued == 0) ? now :
			TimestampTzPlusMilliseconds(last_settle, SETTLE_EVERY_MS);
	if (curl_timer_set)
		wake_at = Min(wake_at, curl_timer_at);
	else if (ninflight > 0)
		wake_at = Min(wake_at, TimestampTzPlusMilliseconds(now, 1000));
	if (may_claim)
	{
		if (claim_more && nqueued < evmgmt_max_concurrency)
			wake_at = now;
		wake_at = Min(wake_at, outbox_due);
		wake_at = Min(wake_at, BreakerWake(now));
	}

	if (ninflight == 0 && nqueued == 0)
		pgstat_report_activity(STATE_IDLE, NULL);
	else
	{
		char		activity[128];

		snprintf(activity, sizeof(activity), "evmgmt: dispatching (%d in flight, %d queued)",
				 ninflight, nqueued);
		pgstat_report_activity(STATE_RUNNING, activity);
	}
	return wake_at;
}
