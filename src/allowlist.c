/*-------------------------------------------------------------------------
 *
 * allowlist.c
 *	  The outbound allow-list (evmgmt.outbound_allow): which IP addresses the
 *	  dispatcher may connect to.
 *
 * The setting is a comma-separated list of CIDR blocks or single addresses,
 * IPv4 or IPv6, or "*" for any address.  It is checked against the address
 * libcurl resolved, just before the socket is opened, so a host name that
 * resolves to a forbidden address (DNS rebinding, an internal name) is
 * refused too.  The parsed form lives in the GUC's "extra" block, so a
 * reload that brings an invalid value keeps the previous one.
 *
 * IDENTIFICATION
 *	  src/allowlist.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "utils/guc.h"

#include "workers.h"

#define MAX_ALLOW_ENTRIES 64

/* One allowed block. */
typedef struct AllowEntry
{
	int			family;			/* AF_INET or AF_INET6 */
	int			prefix;			/* prefix length in bits */
	unsigned char addr[16];
} AllowEntry;

/* The parsed list. */
typedef struct AllowList
{
	bool		any;
	int			n;
	AllowEntry	entries[MAX_ALLOW_ENTRIES];
} AllowList;

static AllowList *current_allow = NULL;

/* bumped at every change, so that cached connections can be dropped */
uint64		evmgmt_allowlist_generation = 0;

/* Parse one "address[/prefix]" item. */
static bool
ParseAllowItem(const char *item, AllowEntry *e)
{
	char		buf[INET6_ADDRSTRLEN + 8];
	char	   *slash;
	int			maxbits;

	if (strlen(item) >= sizeof(buf))
		return false;
	strcpy(buf, item);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, e->addr) == 1)
	{
		e->family = AF_INET;
		maxbits = 32;
	}
	else if (inet_pton(AF_INET6, buf, e->addr) == 1)
	{
		e->family = AF_INET6;
		maxbits = 128;
	}
	else
		return false;
	e->prefix = maxbits;
	if (slash)
	{
		char	   *end;
		long		bits = strtol(slash + 1, &end, 10);

		if (*end != '\0' || end == slash + 1 || bits < 0 || bits > maxbits)
			return false;
		e->prefix = (int) bits;
	}
	return true;
}

/* Parse a whole setting value into *list; false with a message on error. */
static bool
ParseAllowList(const char *value, AllowList *list, char **errmsg_out)
{
	const char *p = value ? value : "";

	memset(list, 0, sizeof(*list));
	while (*p)
	{
		char		item[128];
		int			len = 0;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
		{
			if (len < (int) sizeof(item) - 1)
				item[len++] = *p;
			p++;
		}
		item[len] = '\0';
		if (strcmp(item, "*") == 0)
			list->any = true;
		else if (list->n >= MAX_ALLOW_ENTRIES)
		{
			*errmsg_out = psprintf("at most %d entries are allowed", MAX_ALLOW_ENTRIES);
			return false;
		}
		else if (!ParseAllowItem(item, &list->entries[list->n++]))
		{
			*errmsg_out = psprintf("\"%s\" is not an IP address or CIDR block", item);
			return false;
		}
	}
	return true;
}

/* GUC check hook of evmgmt.outbound_allow. */
bool
evmgmt_check_outbound_allow(char **newval, void **extra, GucSource source)
{
	AllowList  *list;
	char	   *msg = NULL;

	list = (AllowList *) malloc(sizeof(AllowList));
	if (list == NULL)
		return false;
	if (!ParseAllowList(*newval, list, &msg))
	{
		GUC_check_errdetail("%s", msg);
		free(list);
		return false;
	}
	*extra = list;
	return true;
}

/* GUC assign hook of evmgmt.outbound_allow. */
void
evmgmt_assign_outbound_allow(const char *newval, void *extra)
{
	current_allow = (AllowList *) extra;
	evmgmt_allowlist_generation++;
}

/* Does the block contain the address? */
static bool
EntryContains(const AllowEntry *e, const unsigned char *addr)
{
	int			full = e->prefix / 8;
	int			rest = e->prefix % 8;

	if (memcmp(e->addr, addr, full) != 0)
		return false;
	if (rest)
	{
		unsigned char mask = (unsigned char) (0xFF << (8 - rest));

		if ((e->addr[full] & mask) != (addr[full] & mask))
			return false;
	}
	return true;
}

/*
 * May the dispatcher connect to this address?  The address is written to
 * textbuf for error messages either way.
 */
bool
EvmgmtAllowListPermits(const struct sockaddr *sa, char *textbuf, size_t textlen)
{
	const unsigned char *addr;
	unsigned char mapped[4];
	int			family = sa->sa_family;

	if (family == AF_INET)
	{
		addr = (const unsigned char *) &((const struct sockaddr_in *) sa)->sin_addr;
		inet_ntop(AF_INET, addr, textbuf, textlen);
	}
	else if (family == AF_INET6)
	{
		addr = (const unsigned char *) &((const struct sockaddr_in6 *) sa)->sin6_addr;
		inet_ntop(AF_INET6, addr, textbuf, textlen);
		/* an IPv4-mapped address is judged as the IPv4 address it carries */
		if (IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *) sa)->sin6_addr))
		{
			memcpy(mapped, addr + 12, 4);
			addr = mapped;
			family = AF_INET;
		}
	}
	else
	{
		strlcpy(textbuf, "(unknown address family)", textlen);
		return false;
	}

	if (current_allow == NULL)
		return false;
	if (current_allow->any)
		return true;
	for (int i = 0; i < current_allow->n; i++)
	{
		const AllowEntry *e = &current_allow->entries[i];

		if (e->family == family && EntryContains(e, addr))
			return true;
	}
	return false;
}
