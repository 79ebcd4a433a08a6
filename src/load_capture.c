/*-------------------------------------------------------------------------
 *
 * load_capture.c
 *	  Which interval series a load into interval_stat touched, noted row by
 *	  row at COPY speed for the statement trigger that acts on them.
 *
 * The statement trigger of interval_stat (sql/install/20_intervals.sql)
 * needs, per series a statement touched, the first and last interval start,
 * the row count, the lowest service level and the series' high-water mark
 * before the load, plus the exact keys that were loaded again.  A transition
 * table would give it the rows, but PostgreSQL 15 refuses multi-row inserts
 * into a partitioned table that has one, so every COPY row would be a heap
 * insert and a WAL record of its own, and then be written a second time to
 * the transition tuplestore and aggregated again by SQL.
 *
 * Instead, a BEFORE STATEMENT trigger opens a capture frame, and the CHECK
 * constraint interval_stat_rules, which PostgreSQL evaluates for every row
 * just before storing it, notes the row in the frame once it has passed the
 * row's rules (src/detect.c): one hash lookup
 * per row, one index probe of interval_series per new series (its
 * high-water mark), and the start of each row at or below that mark (a
 * re-delivered interval).  The AFTER STATEMENT trigger reads the frame with
 * interval_stat_touched() and interval_stat_redelivered() and closes it with
 * interval_stat_load_end().
 *
 * Frames nest (an inbox batch inserts into interval_stat from its own
 * trigger) and belong to the (sub)transaction that opened them: an abort
 * drops the frames it opened, the end of the transaction drops any left.
 * Rows checked while no frame is open (UPDATE, session_replication_role
 * replica, a partition loaded directly) are not noted.
 *
 * IDENTIFICATION
 *	  src/load_capture.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "evmgmt.h"

PG_FUNCTION_INFO_V1(evmgmt_interval_stat_load_begin);
PG_FUNCTION_INFO_V1(evmgmt_interval_stat_touched);
PG_FUNCTION_INFO_V1(evmgmt_interval_stat_redelivered);
PG_FUNCTION_INFO_V1(evmgmt_interval_stat_load_end);
PG_FUNCTION_INFO_V1(evmgmt_stored_by_this_transaction);

/* A series: site and queue code (not NUL-terminated in lookups) and pool. */
typedef struct SeriesKey
{
	const char *site;
	const char *queue;
	int			site_len;
	int			queue_len;
	Oid			pool;
} SeriesKey;

typedef struct SeriesEntry
{
	SeriesKey	key;			/* strings owned by the frame's context */
	TimestampTz first_start;
	TimestampTz last_start;
	int64		n_rows;
	double		min_sl;
	bool		has_sl;
	bool		has_prev;		/* the series existed before the load */
	TimestampTz prev_last_start;
	int			n_redelivered;
	int			max_redelivered;
	TimestampTz *redelivered;	/* starts at or before prev_last_start */
} SeriesEntry;

typedef struct CaptureFrame
{
	struct CaptureFrame *outer;
	int			nest_level;		/* of the (sub)transaction that opened it */
	MemoryContext cxt;
	HTAB	   *series;
	SeriesEntry *last;			/* the entry of the row before */
	Oid			series_relid;	/* evmgmt.interval_series and its key */
	Oid			series_pkey;
} CaptureFrame;

static CaptureFrame *capture_top = NULL;
static bool capture_callbacks_registered = false;

/* The context HashKeyCopy copies into (the frame being written). */
static MemoryContext capture_copy_cxt = NULL;

static uint32
SeriesHash(const void *key, Size keysize)
{
	const SeriesKey *k = key;
	uint32		h;

	h = hash_bytes((const unsigned char *) k->site, k->site_len);
	h = hash_combine(h, hash_bytes((const unsigned char *) k->queue, k->queue_len));
	return hash_combine(h, hash_bytes_uint32(k->pool));
}

static int
SeriesMatch(const void *key1, const void *key2, Size keysize)
{
	const SeriesKey *a = key1;
	const SeriesKey *b = key2;

	if (a->pool != b->pool || a->site_len != b->site_len || a->queue_len != b->queue_len)
		return 1;
	if (memcmp(a->site, b->site, a->site_len) != 0 || memcmp(a->queue, b->queue, a->queue_len) != 0)
		return 1;
	return 0;
}

static void *
SeriesKeyCopy(void *dest, const void *src, Size keysize)
{
	const SeriesKey *s = src;
	SeriesKey  *d = dest;

	char	   *site = MemoryContextAlloc(capture_copy_cxt, s->site_len + s->queue_len + 2);
	char	   *queue = site + s->site_len + 1;

	memcpy(site, s->site, s->site_len);
	site[s->site_len] = '\0';
	memcpy(queue, s->queue, s->queue_len);
	queue[s->queue_len] = '\0';
	d->site = site;
	d->queue = queue;
	d->site_len = s->site_len;
	d->queue_len = s->queue_len;
	d->pool = s->pool;
	return dest;
}

/* Drop the frames opened at nest level min_level or deeper. */
static void
DropFramesFrom(int min_level)
{
	while (capture_top != NULL && capture_top->nest_level >= min_level)
	{
		CaptureFrame *f = capture_top;

		capture_top = f->outer;
		MemoryContextDelete(f->cxt);
	}
}

static void
CaptureXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* the contexts went with TopTransactionContext */
			capture_top = NULL;
			break;
		default:
			break;
	}
}

static void
CaptureSubXactCallback(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		DropFramesFrom(GetCurrentTransactionNestLevel());
}

/*
 * interval_stat_load_begin(): BEFORE INSERT ... FOR EACH STATEMENT trigger
 * of interval_stat; opens the capture frame of the statement.
 */
Datum
evmgmt_interval_stat_load_begin(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	CaptureFrame *f;
	MemoryContext cxt;
	HASHCTL		ctl;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) || !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("interval_stat_load_begin() must be fired before insert for each statement")));

	if (!capture_callbacks_registered)
	{
		RegisterXactCallback(CaptureXactCallback, NULL);
		RegisterSubXactCallback(CaptureSubXactCallback, NULL);
		capture_callbacks_registered = true;
	}

	cxt = AllocSetContextCreate(TopTransactionContext, "evmgmt load capture", ALLOCSET_DEFAULT_SIZES);
	f = MemoryContextAllocZero(cxt, sizeof(CaptureFrame));
	f->cxt = cxt;
	f->nest_level = GetCurrentTransactionNestLevel();
	f->series_relid = EvmgmtRelationOid("interval_series", false);
	f->series_pkey = EvmgmtRelationOid("interval_series_pkey", false);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(SeriesKey);
	ctl.entrysize = sizeof(SeriesEntry);
	ctl.hash = SeriesHash;
	ctl.match = SeriesMatch;
	ctl.keycopy = SeriesKeyCopy;
	ctl.hcxt = cxt;
	f->series = hash_create("evmgmt load capture series", 1024, &ctl,
							HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_KEYCOPY | HASH_CONTEXT);

	f->outer = capture_top;
	capture_top = f;
	return PointerGetDatum(NULL);
}

/* The series' last interval start before this load, from interval_series. */
static void
ProbeHighWaterMark(CaptureFrame *f, SeriesEntry *e)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key[3];
	HeapTuple	tup;
	Snapshot	snap = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
	text	   *site = cstring_to_text_with_len(e->key.site, e->key.site_len);
	text	   *queue = cstring_to_text_with_len(e->key.queue, e->key.queue_len);

	rel = table_open(f->series_relid, AccessShareLock);
	ScanKeyEntryInitialize(&key[0], 0, 1, BTEqualStrategyNumber, InvalidOid, C_COLLATION_OID,
						   F_TEXTEQ, PointerGetDatum(site));
	ScanKeyEntryInitialize(&key[1], 0, 2, BTEqualStrategyNumber, InvalidOid, C_COLLATION_OID,
						   F_TEXTEQ, PointerGetDatum(queue));
	ScanKeyEntryInitialize(&key[2], 0, 3, BTEqualStrategyNumber, InvalidOid, InvalidOid,
						   F_ENUM_EQ, ObjectIdGetDatum(e->key.pool));
	scan = systable_beginscan(rel, f->series_pkey, true, snap, 3, key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, 5, RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			e->has_prev = true;
			e->prev_last_start = DatumGetTimestampTz(d);
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	pfree(site);
	pfree(queue);
}

/*
 * Note one interval_stat row in the innermost open frame (nothing when no
 * frame is open): called by the CHECK constraint interval_stat_rules once
 * the row has passed its rules (src/detect.c).
 */
void
EvmgmtLoadCaptureNote(text *site, text *queue, Oid pool, TimestampTz start, bool has_sl_counts,
					  int32 answered, int32 offered)
{
	CaptureFrame *f = capture_top;
	SeriesKey	k;
	SeriesEntry *e;
	bool		found;

	if (f == NULL)
		return;

	k.site = VARDATA_ANY(site);
	k.site_len = VARSIZE_ANY_EXHDR(site);
	k.queue = VARDATA_ANY(queue);
	k.queue_len = VARSIZE_ANY_EXHDR(queue);
	k.pool = pool;

	if (f->last != NULL && SeriesMatch(&f->last->key, &k, sizeof(SeriesKey)) == 0)
		e = f->last;
	else
	{
		capture_copy_cxt = f->cxt;
		e = hash_search(f->series, &k, HASH_ENTER, &found);
		if (!found)
		{
			e->first_start = e->last_start = start;
			e->n_rows = 0;
			e->has_sl = false;
			e->has_prev = false;
			e->n_redelivered = e->max_redelivered = 0;
			e->redelivered = NULL;
			ProbeHighWaterMark(f, e);
		}
		f->last = e;
	}

	e->n_rows++;
	if (start < e->first_start)
		e->first_start = start;
	if (start > e->last_start)
		e->last_start = start;
	if (has_sl_counts)
	{
		/* as interval_service_level() */
		if (offered > 0 && answered >= 0 && answered <= offered)
		{
			double		sl = (double) answered / (double) offered;

			if (!e->has_sl || sl < e->min_sl)
				e->min_sl = sl;
			e->has_sl = true;
		}
	}
	if (e->has_prev && start <= e->prev_last_start)
	{
		if (e->n_redelivered == e->max_redelivered)
		{
			int			n = e->max_redelivered ? e->max_redelivered * 2 : 8;

			e->redelivered = e->redelivered
				? repalloc_huge(e->redelivered, n * sizeof(TimestampTz))
				: MemoryContextAlloc(f->cxt, n * sizeof(TimestampTz));
			e->max_redelivered = n;
		}
		e->redelivered[e->n_redelivered++] = start;
	}
}

/*
 * interval_stat_touched() -> evmgmt.interval_touch[]
 *
 * The series the open frame noted, NULL when there is no frame or it noted
 * nothing.
 */
Datum
evmgmt_interval_stat_touched(PG_FUNCTION_ARGS)
{
	CaptureFrame *f = capture_top;
	Oid			elemtype;
	TupleDesc	desc;
	HASH_SEQ_STATUS seq;
	SeriesEntry *e;
	Datum	   *elems;
	long		n;
	long		i = 0;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (f == NULL || (n = hash_get_num_entries(f->series)) == 0)
		PG_RETURN_NULL();

	elemtype = get_element_type(get_fn_expr_rettype(fcinfo->flinfo));
	if (!OidIsValid(elemtype))
		elemtype = get_element_type(get_func_rettype(fcinfo->flinfo->fn_oid));
	desc = lookup_rowtype_tupdesc_copy(elemtype, -1);
	if (desc->natts != 8)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("type evmgmt.interval_touch has %d attributes, expected 8", desc->natts)));

	elems = palloc(n * sizeof(Datum));
	hash_seq_init(&seq, f->series);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[8];
		bool		nulls[8] = {false};

		values[0] = PointerGetDatum(cstring_to_text_with_len(e->key.site, e->key.site_len));
		values[1] = PointerGetDatum(cstring_to_text_with_len(e->key.queue, e->key.queue_len));
		values[2] = ObjectIdGetDatum(e->key.pool);
		values[3] = TimestampTzGetDatum(e->first_start);
		values[4] = TimestampTzGetDatum(e->last_start);
		values[5] = Int64GetDatum(e->n_rows);
		values[6] = Float8GetDatum(e->min_sl);
		nulls[6] = !e->has_sl;
		values[7] = TimestampTzGetDatum(e->prev_last_start);
		nulls[7] = !e->has_prev;
		elems[i++] = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
	}
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, (int) i, elemtype, typlen, typbyval, typalign));
}

/*
 * interval_stat_redelivered() -> TABLE (site_id, queue_id, pool, interval_start)
 *
 * The keys of the open frame's rows that were at or before their series'
 * high-water mark: the intervals this load may have delivered again.
 */
Datum
evmgmt_interval_stat_redelivered(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CaptureFrame *f = capture_top;
	HASH_SEQ_STATUS seq;
	SeriesEntry *e;

	InitMaterializedSRF(fcinfo, 0);
	if (f == NULL)
		return (Datum) 0;

	hash_seq_init(&seq, f->series);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[4];
		bool		nulls[4] = {false};
		int			i;

		if (e->n_redelivered == 0)
			continue;
		values[0] = PointerGetDatum(cstring_to_text_with_len(e->key.site, e->key.site_len));
		values[1] = PointerGetDatum(cstring_to_text_with_len(e->key.queue, e->key.queue_len));
		values[2] = ObjectIdGetDatum(e->key.pool);
		for (i = 0; i < e->n_redelivered; i++)
		{
			values[3] = TimestampTzGetDatum(e->redelivered[i]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/* interval_stat_load_end(): closes the innermost frame (if any). */
Datum
evmgmt_interval_stat_load_end(PG_FUNCTION_ARGS)
{
	CaptureFrame *f = capture_top;

	if (f != NULL)
	{
		capture_top = f->outer;
		MemoryContextDelete(f->cxt);
	}
	PG_RETURN_VOID();
}

/*
 * stored_by_this_transaction(xmin xid) -> boolean
 *
 * Whether a row with this xmin was stored by the current transaction or one
 * of its open subtransactions: of the copies of a re-delivered interval, the
 * one to keep.
 */
Datum
evmgmt_stored_by_this_transaction(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TransactionIdIsCurrentTransactionId(DatumGetTransactionId(PG_GETARG_DATUM(0))));
}
