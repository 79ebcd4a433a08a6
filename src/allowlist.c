/*-------------------------------------------------------------------------
 *
 * allowlist.c
 *	  The outbound allow-list (evmgmt.outbound_allow): which IP addresses the
 *	  dispatcher may connect to.
 *
 * The setting is a comma-separated list of CIDR blocks or single addresses,
 * IPv4 or IPv6, and "*" for any public address.  It is checked against the
 * address libcurl resolved, just before the socket is opened, so a host name
 * that resolves to a forbidden address (DNS rebinding, an internal name) is
 * refused too; redirects are never followed (dispatch.c).
 *
 * Special-purpose ranges (loopback, "this network" 0.0.0.0/8 and ::,
 * private, carrier-grade NAT, link-local with the cloud metadata address
 * 169.254.169.254, multicast, reserved, documentation, benchmarking, IPv6
 * unique-local fc00::/7 and link-local fe80::/10, the NAT64 and 6to4
 * forms that embed an IPv4 address) are refused unless the setting names
 * them explicitly: an entry allows an address in such a range only if it is
 * at least as specific as the range (127.0.0.1/32 or 127.0.0.0/8 allow
 * loopback; "*" and 0.0.0.0/0 do not).  IPv4-mapped and IPv4-compatible IPv6
 * addresses (::ffff:127.0.0.1, ::127.0.0.1) are judged as the IPv4 address
 * they carry.  So the default "*" means the public Internet only.
 *
 * The parsed form lives in the GUC's "extra" block, so a reload that brings
 * an invalid value keeps the previous one.
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

#include "fmgr.h"
#include "utils/guc.h"
#include "utils/inet.h"

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

/* A special-purpose block (RFC 6890 and successors). */
typedef struct ReservedBlock
{
	int			family;
	const char *cidr;
} ReservedBlock;

static const ReservedBlock reserved_blocks[] = {
	{AF_INET, "0.0.0.0/8"},		/* "this network"; 0.0.0.0 reaches the host */
	{AF_INET, "10.0.0.0/8"},	/* private */
	{AF_INET, "100.64.0.0/10"}, /* carrier-grade NAT */
	{AF_INET, "127.0.0.0/8"},	/* loopback */
	{AF_INET, "169.254.0.0/16"},	/* link-local, cloud metadata */
	{AF_INET, "172.16.0.0/12"}, /* private */
	{AF_INET, "192.0.0.0/24"},	/* IETF protocol assignments */
	{AF_INET, "192.0.2.0/24"},	/* documentation */
	{AF_INET, "192.88.99.0/24"},	/* 6to4 relay anycast */
	{AF_INET, "192.168.0.0/16"},	/* private */
	{AF_INET, "198.18.0.0/15"}, /* benchmarking */
	{AF_INET, "198.51.100.0/24"},	/* documentation */
	{AF_INET, "203.0.113.0/24"},	/* documentation */
	{AF_INET, "224.0.0.0/4"},	/* multicast */
	{AF_INET, "240.0.0.0/4"},	/* reserved, broadcast */
	{AF_INET6, "::/128"},		/* unspecified */
	{AF_INET6, "::1/128"},		/* loopback */
	{AF_INET6, "64:ff9b::/96"}, /* NAT64, embeds IPv4 */
	{AF_INET6, "64:ff9b:1::/48"},	/* local NAT64 */
	{AF_INET6, "100::/64"},		/* discard */
	{AF_INET6, "2001::/23"},	/* IETF protocol assignments, Teredo */
	{AF_INET6, "2001:db8::/32"},	/* documentation */
	{AF_INET6, "2002::/16"},	/* 6to4, embeds IPv4 */
	{AF_INET6, "fc00::/7"},		/* unique local */
	{AF_INET6, "fe80::/10"},	/* link-local */
	{AF_INET6, "fec0::/10"},	/* site-local (deprecated) */
	{AF_INET6, "ff00::/8"},		/* multicast */
};

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
	AllowList  *list = (AllowList *) extra;

	/*
	 * A reload re-assigns every setting of the file: only a real change drops
	 * the dispatcher's cached connections.
	 */
	if (current_allow == NULL || list == NULL ||
		memcmp(current_allow, list, sizeof(AllowList)) != 0)
		evmgmt_allowlist_generation++;
	current_allow = list;
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
 * The prefix length of the special-purpose block holding the address, or -1
 * for a public address.
 */
static int
ReservedPrefix(int family, const unsigned char *addr)
{
	static AllowEntry parsed[lengthof(reserved_blocks)];
	static bool ready = false;

	if (!ready)
	{
		for (int i = 0; i < lengthof(reserved_blocks); i++)
		{
			if (!ParseAllowItem(reserved_blocks[i].cidr, &parsed[i]) ||
				parsed[i].family != reserved_blocks[i].family)
				elog(ERROR, "evmgmt: bad reserved block %s", reserved_blocks[i].cidr);
		}
		ready = true;
	}
	for (int i = 0; i < lengthof(reserved_blocks); i++)
	{
		if (parsed[i].family == family && EntryContains(&parsed[i], addr))
			return parsed[i].prefix;
	}
	return -1;
}

/*
 * Does the list allow the address (family AF_INET with 4 bytes, AF_INET6
 * with 16, IPv4-mapped forms already unwrapped)?  A public address needs "*"
 * or an entry containing it; an address in a special-purpose block needs an
 * entry containing it that is at least as specific as the block.
 */
static bool
EvmgmtAllowListPermitsAddress(const AllowList *list, int family, const unsigned char *addr)
{
	int			reserved = ReservedPrefix(family, addr);

	if (list == NULL)
		return false;
	if (list->any && reserved < 0)
		return true;
	for (int i = 0; i < list->n; i++)
	{
		const AllowEntry *e = &list->entries[i];

		if (e->family == family && EntryContains(e, addr) && e->prefix >= reserved)
			return true;
	}
	return false;
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
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *) sa)->sin6_addr;

		addr = (const unsigned char *) a6;
		inet_ntop(AF_INET6, addr, textbuf, textlen);
		/*
		 * An IPv4-mapped (::ffff:a.b.c.d) or IPv4-compatible (::a.b.c.d)
		 * address is judged as the IPv4 address it carries; :: and ::1 stay
		 * IPv6.
		 */
		if (IN6_IS_ADDR_V4MAPPED(a6) ||
			(IN6_IS_ADDR_V4COMPAT(a6)))
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

	return EvmgmtAllowListPermitsAddress(current_allow, family, addr);
}

PG_FUNCTION_INFO_V1(evmgmt_outbound_allowed);

/*
 * outbound_allowed(address inet): would the dispatcher connect to this
 * address under the current evmgmt.outbound_allow?  (The prefix length of
 * the inet value is ignored: the host address is judged.)
 */
Datum
evmgmt_outbound_allowed(PG_FUNCTION_ARGS)
{
	inet	   *ip = PG_GETARG_INET_PP(0);
	struct sockaddr_storage ss;
	char		text[INET6_ADDRSTRLEN];

	memset(&ss, 0, sizeof(ss));
	if (ip_family(ip) == PGSQL_AF_INET)
	{
		struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, ip_addr(ip), 4);
	}
	else
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ip_addr(ip), 16);
	}
	PG_RETURN_BOOL(EvmgmtAllowListPermits((struct sockaddr *) &ss, text, sizeof(text)));
}
