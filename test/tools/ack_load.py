#!/usr/bin/env python3
"""ack_load.py METHOD URLFILE CONNECTIONS: a load generator for the listener.

Sends one request per line of URLFILE (all to one host and port) over
CONNECTIONS keep-alive HTTP/1.1 connections, each request on the next free
connection, and prints requests per second and the latency percentiles
(from sending a request to reading its whole answer).  Fails (exit 1) when an
answer is not 200.  Python 3 stdlib only.
"""
import http.client
import sys
import threading
import time
import urllib.parse


def main():
    method, path, n_conn = sys.argv[1], sys.argv[2], int(sys.argv[3])
    urls = [line.strip() for line in open(path) if line.strip()]
    first = urllib.parse.urlsplit(urls[0])
    lock = threading.Lock()
    pos = [0]
    latencies = []
    bad = []

    def worker():
        conn = http.client.HTTPConnection(first.hostname, first.port, timeout=60)
        mine = []
        while True:
            with lock:
                i = pos[0]
                pos[0] += 1
            if i >= len(urls):
                break
            u = urllib.parse.urlsplit(urls[i])
            t = time.perf_counter()
            conn.request(method, u.path, body=b"" if method == "POST" else None)
            r = conn.getresponse()
            r.read()
            mine.append(time.perf_counter() - t)
            if r.status != 200:
                bad.append((r.status, u.path))
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(n_conn)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    print(f"{len(latencies)} requests in {wall:.2f} s: {len(latencies) / wall:.0f}/s; "
          f"latency p50 {pct(50):.1f} ms, p90 {pct(90):.1f} ms, p99 {pct(99):.1f} ms, max {latencies[-1] * 1000:.1f} ms"
          f"; {len(bad)} not 200")
    if bad:
        print("first not 200:", bad[0])
        sys.exit(1)


if __name__ == "__main__":
    main()
