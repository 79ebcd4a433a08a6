/*-------------------------------------------------------------------------
 *
 * listener.c
 *	  The HTTP listener: acknowledgments from where the page lands (ack
 *	  links, Twilio SMS replies and keypresses, push action buttons, signed
 *	  webhook callbacks).
 *
 * Isolation.  The listener is a background worker of its own, "evmgmt
 * listener", registered at server start only when evmgmt.http_listen is set
 * (so with the default, empty, no process runs and no port is opened).  It
 * connects to the one database named by evmgmt.http_database: the listen
 * address is cluster-wide and a background worker cannot switch databases.
 * Escalations and deliveries stay in the per-database workers; the listener
 * only commits acknowledgments, which wake those workers through the usual
 * commit trigger.  An ERROR that escapes a request ends only this process,
 * which the postmaster starts again after LISTENER_RESTART_S seconds; the
 * escalation workers carry on.  (A crash by signal, as for any backend,
 * makes the postmaster reinitialize every process; that is PostgreSQL's
 * rule, not ours.)
 *
 * Event loop.  libmicrohttpd runs in its external-event-loop mode with epoll
 * (MHD_USE_EPOLL, no internal thread): its one epoll descriptor is the only
 * socket in this process's one WaitEventSet, beside the latch and
 * postmaster death.  When it is readable (or MHD's timeout passes) the loop
 * calls MHD_run, which calls the request handlers on this same thread, so
 * no other thread ever touches PostgreSQL.
 *
 * Requests.  Each request is read up to LISTENER_MAX_BODY bytes (413
 * beyond), then handed whole to the SQL function evmgmt.listener_handle()
 * (sql/install/66_listener.sql) in one short transaction: method, raw URI,
 * path, query and form parameters (parsed by libmicrohttpd), the few headers
 * that matter, the body and the client address.  It answers a status, a
 * content type and a body.  Any ERROR inside is caught here, the transaction
 * rolled back, the error logged, and the client gets a 500: a bad request
 * never ends the process.  Memory, connections, connections per client and
 * idle time are capped by libmicrohttpd options from the evmgmt.http_*
 * settings.
 *
 * IDENTIFICATION
 *	  src/listener.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "evmgmt.h"
#include "listener.h"
#include "workers.h"

#define LISTENER_MAX_BODY		(16 * 1024)
#define LISTENER_MAX_PARAMS		64
#define LISTENER_MEMORY_LIMIT	(64 * 1024)
#define LISTENER_RESTART_S		5

/* One request in progress (malloc'd: MHD owns its lifetime). */
typedef struct ListenerRequest
{
	char	   *uri;			/* as received: path and query */
	bool		started;
	bool		too_big;
	size_t		len;
	char		body[LISTENER_MAX_BODY + 1];
} ListenerRequest;

/* Collected parameters of one kind. */
typedef struct ParamList
{
	int			n;
	bool		overflow;
	EvmgmtFormParam items[LISTENER_MAX_PARAMS];
} ParamList;

static struct MHD_Daemon *daemon_handle = NULL;
static MemoryContext request_cxt = NULL;
static SPIPlanPtr handle_plan = NULL;

/* Register the listener at server start when an address is set. */
void
EvmgmtRegisterListener(void)
{
	BackgroundWorker worker;

	if (evmgmt_http_listen == NULL || evmgmt_http_listen[0] == '\0')
		return;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = LISTENER_RESTART_S;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "evmgmt");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "EvmgmtListenerMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "evmgmt listener");
	snprintf(worker.bgw_type, BGW_MAXLEN, "evmgmt listener");
	RegisterBackgroundWorker(&worker);
}

/* libmicrohttpd's own messages go to the server log. */
static void
ListenerLogger(void *cls, const char *fmt, va_list ap)
{
	char		buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	ereport(DEBUG1, (errmsg_internal("evmgmt listener: %s", buf)));
}

/* First callback of a request: keep the raw URI, start its state. */
static void *
ListenerUriLog(void *cls, const char *uri, struct MHD_Connection *conn)
{
	ListenerRequest *req = calloc(1, sizeof(ListenerRequest));

	if (req != NULL)
		req->uri = strdup(uri ? uri : "/");
	return req;
}

/* Last callback of a request: free its state. */
static void
ListenerCompleted(void *cls, struct MHD_Connection *conn, void **con_cls,
				  enum MHD_RequestTerminationCode toe)
{
	ListenerRequest *req = *con_cls;

	if (req != NULL)
	{
		free(req->uri);
		free(req);
	}
	*con_cls = NULL;
}

/* Queue a response with the headers every answer carries. */
static enum MHD_Result
Respond(struct MHD_Connection *conn, unsigned int status, const char *content_type,
		const char *body)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(body), (void *) body, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", content_type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Content-Security-Policy",
							"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Collect one parameter (query or form) into a ParamList. */
static enum MHD_Result
CollectParam(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	ParamList  *list = cls;

	if (key == NULL)
		return MHD_YES;
	if (list->n >= LISTENER_MAX_PARAMS)
	{
		list->overflow = true;
		return MHD_NO;
	}
	list->items[list->n].name = MemoryContextStrdup(request_cxt, key);
	list->items[list->n].value = MemoryContextStrdup(request_cxt, value ? value : "");
	list->n++;
	return MHD_YES;
}

/* The post processor's iterator: a value may come in several pieces. */
static enum MHD_Result
CollectFormPiece(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *filename, const char *content_type,
				 const char *transfer_encoding, const char *data, uint64_t off, size_t size)
{
	ParamList  *list = cls;

	if (key == NULL)
		return MHD_YES;
	if (off > 0 && list->n > 0 && strcmp(list->items[list->n - 1].name, key) == 0)
	{
		EvmgmtFormParam *p = &list->items[list->n - 1];
		size_t		oldlen = strlen(p->value);
		char	   *v = MemoryContextAlloc(request_cxt, oldlen + size + 1);

		memcpy(v, p->value, oldlen);
		memcpy(v + oldlen, data, size);
		v[oldlen + size] = '\0';
		p->value = v;
		return MHD_YES;
	}
	if (list->n >= LISTENER_MAX_PARAMS)
	{
		list->overflow = true;
		return MHD_NO;
	}
	list->items[list->n].name = MemoryContextStrdup(request_cxt, key);
	list->items[list->n].value = MemoryContextAlloc(request_cxt, size + 1);
	memcpy(list->items[list->n].value, data, size);
	list->items[list->n].value[size] = '\0';
	list->n++;
	return MHD_YES;
}

/* A ParamList as a text[] of name, value, name, value, ... */
static Datum
ParamsToArray(ParamList *list)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(1, 2 * list->n));

	for (int i = 0; i < list->n; i++)
	{
		elems[2 * i] = CStringGetTextDatum(list->items[i].name);
		elems[2 * i + 1] = CStringGetTextDatum(list->items[i].value);
	}
	return PointerGetDatum(construct_array(elems, 2 * list->n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Text that PostgreSQL accepts: valid in the database encoding, no NUL. */
static bool
AcceptableText(const char *s, size_t len)
{
	return memchr(s, '\0', len) == NULL && pg_verifymbstr(s, (int) len, true);
}

/* The client address as text. */
static char *
ClientAddress(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char		host[NI_MAXHOST];

	if (ci == NULL || ci->client_addr == NULL)
		return pstrdup("");
	if (getnameinfo(ci->client_addr,
					ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
					host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
		return pstrdup("");
	return pstrdup(host);
}

/* A header value or the empty string. */
static const char *
Header(struct MHD_Connection *conn, const char *name)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);

	return v ? v : "";
}

/*
 * Run evmgmt.listener_handle() for a complete request in one unit.  Fills
 * status, content type and body (allocated in request_cxt); false after an
 * error (already logged and rolled back).
 */
static bool
HandleInTransaction(struct MHD_Connection *conn, const char *method, const char *path,
					ListenerRequest *req, ParamList *query, ParamList *form,
					int *status, char **content_type, char **body)
{
	volatile bool ok = false;
	MemoryContext oldcxt = CurrentMemoryContext;

	PG_TRY();
	{
		Datum		args[8];
		Oid			types[8] = {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTOID, TEXTOID};
		ParamList  *headers = palloc0(sizeof(ParamList));
		static const char *const wanted[] = {
			"Content-Type", "X-Twilio-Signature", "webhook-id", "webhook-timestamp", "webhook-signature",
			"X-Forwarded-For"
		};
		bool		isnull;
		int			rc;

		for (int i = 0; i < lengthof(wanted); i++)
		{
			headers->items[headers->n].name = (char *) wanted[i];
			headers->items[headers->n].value = (char *) Header(conn, wanted[i]);
			headers->n++;
		}

		EvmgmtBeginUnit("evmgmt: handling an HTTP request");
		if (handle_plan == NULL)
		{
			SPIPlanPtr	plan = SPI_prepare("SELECT status, content_type, body FROM evmgmt.listener_handle($1, $2, $3, $4, $5, $6, $7, $8)",
										   8, types);

			if (plan == NULL || SPI_keepplan(plan) != 0)
				elog(ERROR, "evmgmt: preparing the listener's query failed");
			handle_plan = plan;
		}
		args[0] = CStringGetTextDatum(method);
		args[1] = CStringGetTextDatum(req->uri);
		args[2] = CStringGetTextDatum(path);
		args[3] = ParamsToArray(query);
		args[4] = ParamsToArray(form);
		args[5] = ParamsToArray(headers);
		args[6] = PointerGetDatum(cstring_to_text_with_len(req->body, req->len));
		args[7] = CStringGetTextDatum(ClientAddress(conn));
		rc = SPI_execute_plan(handle_plan, args, NULL, false, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "evmgmt: evmgmt.listener_handle() returned no row");
		*status = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (isnull)
			*status = 500;
		*content_type = MemoryContextStrdup(request_cxt,
											SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2) ?: "text/plain; charset=utf-8");
		*body = MemoryContextStrdup(request_cxt,
									SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3) ?: "");
		EvmgmtEndUnit();
		ok = true;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(request_cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	return ok;
}

/* The request handler, called by MHD_run on this thread. */
static enum MHD_Result
ListenerAccess(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			   const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	ListenerRequest *req = *con_cls;
	ParamList  *query;
	ParamList  *form;
	const char *ctype;
	int			status = 500;
	char	   *content_type = "text/plain; charset=utf-8";
	char	   *body = "internal error\n";

	if (req == NULL)
		return MHD_NO;			/* out of memory in ListenerUriLog: drop the connection */
	if (!req->started)
	{
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

		req->started = true;
		if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 && strcmp(method, "HEAD") != 0)
			return Respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "method not allowed\n");
		if (cl != NULL && strtoull(cl, NULL, 10) > LISTENER_MAX_BODY)
			return Respond(conn, MHD_HTTP_CONTENT_TOO_LARGE, "text/plain; charset=utf-8", "request body too large\n");
		return MHD_YES;
	}
	if (*upload_data_size > 0)
	{
		if (req->len + *upload_data_size > LISTENER_MAX_BODY)
			req->too_big = true;
		else
		{
			memcpy(req->body + req->len, upload_data, *upload_data_size);
			req->len += *upload_data_size;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->too_big)
		return Respond(conn, MHD_HTTP_CONTENT_TOO_LARGE, "text/plain; charset=utf-8", "request body too large\n");
	req->body[req->len] = '\0';
	if (!AcceptableText(req->body, req->len) || !AcceptableText(url, strlen(url)) ||
		!AcceptableText(req->uri, strlen(req->uri)))
		return Respond(conn, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8", "bad request\n");

	MemoryContextReset(request_cxt);
	query = MemoryContextAllocZero(request_cxt, sizeof(ParamList));
	form = MemoryContextAllocZero(request_cxt, sizeof(ParamList));
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, CollectParam, query);
	ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (strcmp(method, "POST") == 0 && req->len > 0 && ctype != NULL &&
		pg_strncasecmp(ctype, MHD_HTTP_POST_ENCODING_FORM_URLENCODED,
					   strlen(MHD_HTTP_POST_ENCODING_FORM_URLENCODED)) == 0)
	{
		struct MHD_PostProcessor *pp = MHD_create_post_processor(conn, 1024, CollectFormPiece, form);

		if (pp == NULL || MHD_post_process(pp, req->body, req->len) != MHD_YES)
			form->overflow = true;
		if (pp)
			MHD_destroy_post_processor(pp);
	}
	if (query->overflow || form->overflow)
		return Respond(conn, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8", "bad request\n");
	for (int i = 0; i < query->n; i++)
		if (!AcceptableText(query->items[i].value, strlen(query->items[i].value)))
			return Respond(conn, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8", "bad request\n");
	for (int i = 0; i < form->n; i++)
		if (!AcceptableText(form->items[i].value, strlen(form->items[i].value)) ||
			!AcceptableText(form->items[i].name, strlen(form->items[i].name)))
			return Respond(conn, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8", "bad request\n");

	if (HandleInTransaction(conn, strcmp(method, "HEAD") == 0 ? "GET" : method, url, req, query, form,
							&status, &content_type, &body))
		return Respond(conn, status, content_type, body);
	return Respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, content_type, body);
}

/* Parse evmgmt.http_listen ("host:port", "[v6]:port") into an address. */
static bool
ParseListenAddress(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen)
{
	char	   *copy = pstrdup(spec);
	char	   *host = copy;
	char	   *port;
	struct addrinfo hints;
	struct addrinfo *res = NULL;

	if (host[0] == '[')
	{
		char	   *end = strchr(host, ']');

		if (end == NULL || end[1] != ':')
			return false;
		*end = '\0';
		host++;
		port = end + 2;
	}
	else
	{
		port = strrchr(host, ':');
		if (port == NULL)
			return false;
		*port++ = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL)
		return false;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return true;
}

/* Entry point of the listener background worker. */
void
EvmgmtListenerMain(Datum main_arg)
{
	struct sockaddr_storage addr;
	socklen_t	addrlen;
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_SUPPRESS_DATE_NO_CLOCK;
	const union MHD_DaemonInfo *info;
	WaitEventSet *wait_set;
	MemoryContext loop_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/*
	 * Least privilege, as the per-database workers (docs/security.md): the
	 * role evmgmt_worker, which may execute evmgmt.listener_handle() (SECURITY
	 * DEFINER) and nothing else of the listener's, with the session's
	 * search_path pinned above whatever the database or role sets.
	 */
	BackgroundWorkerInitializeConnection(evmgmt_http_database, EVMGMT_WORKER_ROLE, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);
	pgstat_report_appname("evmgmt listener");
	EvmgmtBeginUnit("evmgmt: checking the listener's role");
	if (superuser())
		ereport(FATAL,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role %s must not be a superuser", EVMGMT_WORKER_ROLE),
				 errdetail("The evmgmt listener runs with least privilege; see docs/security.md."),
				 errhint("Run ALTER ROLE %s NOSUPERUSER.", EVMGMT_WORKER_ROLE)));
	EvmgmtEndUnit();

	if (!ParseListenAddress(evmgmt_http_listen, &addr, &addrlen))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid evmgmt.http_listen: \"%s\"", evmgmt_http_listen),
				 errhint("Give a numeric address and a port, e.g. 127.0.0.1:8089 or [::1]:8089.")));
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;

	request_cxt = AllocSetContextCreate(TopMemoryContext, "evmgmt listener request",
										ALLOCSET_DEFAULT_SIZES);
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "evmgmt listener loop",
									 ALLOCSET_DEFAULT_SIZES);

	daemon_handle = MHD_start_daemon(flags, 0, NULL, NULL, ListenerAccess, NULL,
									 MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
									 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) LISTENER_MEMORY_LIMIT,
									 MHD_OPTION_CONNECTION_LIMIT, (unsigned int) evmgmt_http_max_connections,
									 MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) evmgmt_http_per_ip_connections,
									 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) evmgmt_http_timeout_s,
									 MHD_OPTION_URI_LOG_CALLBACK, ListenerUriLog, NULL,
									 MHD_OPTION_NOTIFY_COMPLETED, ListenerCompleted, NULL,
									 MHD_OPTION_EXTERNAL_LOGGER, ListenerLogger, NULL,
									 MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int) 1024,
									 MHD_OPTION_END);
	if (daemon_handle == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("evmgmt listener could not listen on %s", evmgmt_http_listen),
				 errdetail("libmicrohttpd could not start: the address may be in use or not local."),
				 errhint("Check evmgmt.http_listen; the listener tries again in %d seconds.", LISTENER_RESTART_S)));
	info = MHD_get_daemon_info(daemon_handle, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL)
		elog(ERROR, "evmgmt: libmicrohttpd has no epoll descriptor");

	wait_set = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, info->epoll_fd, NULL, NULL);

	ereport(LOG, (errmsg("evmgmt listener serving database \"%s\" on %s",
						 evmgmt_http_database, evmgmt_http_listen)));

	for (;;)
	{
		WaitEvent	events[3];
		MHD_UNSIGNED_LONG_LONG mhd_timeout;
		long		timeout = -1;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);

		/* accept, read, answer and time out whatever is ready */
		MHD_run(daemon_handle);

		if (MHD_get_timeout(daemon_handle, &mhd_timeout) == MHD_YES)
			timeout = (long) Min(mhd_timeout, (MHD_UNSIGNED_LONG_LONG) INT_MAX);
		pgstat_report_activity(STATE_IDLE, NULL);
		(void) WaitEventSetWait(wait_set, timeout, events, lengthof(events), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
