/*-------------------------------------------------------------------------
 *
 * sink_fast.c
 *	  A fast HTTP/1.1 keep-alive sink for the dispatch benchmark, and a
 *	  keep-alive load client to measure the sink's own capacity.
 *
 *	  sink_fast serve PORTFILE COUNTFILE
 *		  Listens on 127.0.0.1 (a free port, written to PORTFILE), answers
 *		  every request "200 OK" with an empty body, keeps connections
 *		  open, and writes the number of requests served to COUNTFILE
 *		  every 100 ms.  Single-threaded, epoll.
 *
 *	  sink_fast client PORT REQUESTS CONNECTIONS BODYBYTES
 *		  Sends REQUESTS POSTs of BODYBYTES over CONNECTIONS keep-alive
 *		  connections (one request at a time per connection, like the
 *		  dispatcher) and prints "requests/s".
 *
 * Test tool only: no TLS, no chunked bodies, no pipelining in the client.
 *
 * IDENTIFICATION
 *	  test/tools/sink_fast.c
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFSZ 65536

typedef struct Conn
{
	int			fd;
	char		buf[BUFSZ];
	size_t		len;
	long		remaining;		/* client: responses still to read */
} Conn;

static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/* Seconds since some fixed point. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Length of the first complete request or response in buf, 0 if incomplete. */
static size_t
message_length(const char *buf, size_t len)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	const char *p;
	long		clen = 0;
	size_t		head;

	if (end == NULL)
		return 0;
	head = end - buf + 4;
	for (p = buf; p < end; p++)
	{
		if ((p == buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
			clen = strtol(p + 15, NULL, 10);
	}
	if (len < head + clen)
		return 0;
	return head + clen;
}

/* Serve until killed. */
static int
serve(const char *portfile, const char *countfile)
{
	int			ls = socket(AF_INET, SOCK_STREAM, 0);
	int			one = 1;
	struct sockaddr_in a;
	socklen_t	alen = sizeof(a);
	int			ep = epoll_create1(0);
	struct epoll_event ev,
				evs[256];
	long		count = 0,
				written = -1;
	FILE	   *f;
	double		last = 0;

	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *) &a, sizeof(a)) != 0 || listen(ls, 1024) != 0)
	{
		perror("bind/listen");
		return 1;
	}
	getsockname(ls, (struct sockaddr *) &a, &alen);
	f = fopen(portfile, "w");
	fprintf(f, "%d\n", ntohs(a.sin_port));
	fclose(f);

	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	for (;;)
	{
		int			n = epoll_wait(ep, evs, 256, 100);

		for (int i = 0; i < n; i++)
		{
			Conn	   *c = evs[i].data.ptr;

			if (c == NULL)
			{
				int			fd = accept(ls, NULL, NULL);

				if (fd < 0)
					continue;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				c = calloc(1, sizeof(Conn));
				c->fd = fd;
				ev.events = EPOLLIN;
				ev.data.ptr = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				continue;
			}
			for (;;)
			{
				ssize_t		r = read(c->fd, c->buf + c->len, BUFSZ - c->len);
				size_t		m;
				int			replies = 0;

				if (r <= 0)
				{
					if (r == 0 || (errno != EAGAIN && errno != EINTR))
					{
						close(c->fd);
						free(c);
					}
					break;
				}
				c->len += r;
				while ((m = message_length(c->buf, c->len)) > 0)
				{
					memmove(c->buf, c->buf + m, c->len - m);
					c->len -= m;
					replies++;
				}
				for (int k = 0; k < replies; k++)
				{
					if (write(c->fd, reply, sizeof(reply) - 1) < 0)
						break;
				}
				count += replies;
				break;
			}
		}
		if (count != written && now_s() - last > 0.1)
		{
			f = fopen(countfile, "w");
			fprintf(f, "%ld\n", count);
			fclose(f);
			written = count;
			last = now_s();
		}
	}
}

/* Send one request on a client connection. */
static void
send_request(Conn *c, int port, const char *body, size_t bodylen)
{
	char		head[512];
	int			n = snprintf(head, sizeof(head),
							 "POST /ok HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
							 "webhook-id: 00000000-0000-0000-0000-000000000000\r\nwebhook-timestamp: 1700000000\r\n"
							 "webhook-signature: v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"
							 "Content-Length: %zu\r\n\r\n", port, bodylen);

	if (write(c->fd, head, n) < 0 || write(c->fd, body, bodylen) < 0)
		perror("write");
}

/* Measure the sink alone. */
static int
client(int port, long requests, int conns, size_t bodylen)
{
	int			ep = epoll_create1(0);
	struct epoll_event ev,
				evs[256];
	char	   *body = malloc(bodylen + 1);
	long		started = 0,
				done = 0;
	double		t0;

	memset(body, 'x', bodylen);
	t0 = now_s();
	for (int i = 0; i < conns && started < requests; i++)
	{
		Conn	   *c = calloc(1, sizeof(Conn));
		struct sockaddr_in a;
		int			one = 1;

		c->fd = socket(AF_INET, SOCK_STREAM, 0);
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_port = htons(port);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(c->fd, (struct sockaddr *) &a, sizeof(a)) != 0)
		{
			perror("connect");
			return 1;
		}
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
		send_request(c, port, body, bodylen);
		started++;
	}
	while (done < requests)
	{
		int			n = epoll_wait(ep, evs, 256, 1000);

		for (int i = 0; i < n; i++)
		{
			Conn	   *c = evs[i].data.ptr;
			ssize_t		r = read(c->fd, c->buf + c->len, BUFSZ - c->len);
			size_t		m;

			if (r <= 0)
			{
				fprintf(stderr, "connection closed\n");
				return 1;
			}
			c->len += r;
			while ((m = message_length(c->buf, c->len)) > 0)
			{
				memmove(c->buf, c->buf + m, c->len - m);
				c->len -= m;
				done++;
				if (started < requests)
				{
					send_request(c, port, body, bodylen);
					started++;
				}
			}
		}
	}
	printf("%.0f\n", requests / (now_s() - t0));
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2], argv[3]);
	if (argc == 6 && strcmp(argv[1], "client") == 0)
		return client(atoi(argv[2]), atol(argv[3]), atoi(argv[4]), (size_t) atol(argv[5]));
	fprintf(stderr, "usage: sink_fast serve PORTFILE COUNTFILE | client PORT REQUESTS CONNECTIONS BODYBYTES\n");
	return 2;
}
