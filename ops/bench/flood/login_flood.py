#!/usr/bin/env python3
"""A flood of bad logins against a running API, and what it costs the API.

Sends N bad logins (unknown emails and wrong passwords), C at a time, while another
process (its own interpreter, so the flood's threads do not delay it) probes /healthz and
samples the API's resident set every 10 ms. With
--spread every login claims another client address (X-Forwarded-For, which the API trusts
only when AMP_TRUST_FORWARDED_FOR is set): a distributed flood that per-IP limits do not
stop, so only the bound on password hashes holds the line.
Prints one JSON line.
"""
import argparse, collections, concurrent.futures, http.client, json, multiprocessing, time, uuid


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(values, p):
    """The nearest-rank percentile (p in 0..100)."""
    if not values:
        return 0.0
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100 * len(v) + 0.5)) - 1))
    return v[k]


def watch(port, pid, stop, results):
    """Probes /healthz every 10 ms and samples the API's RSS until `stop`."""
    health, rss = [], []
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while not stop.is_set():
        t = time.perf_counter()
        rss.append(rss_mb(pid))
        try:
            c.request("GET", "/healthz")
            c.getresponse().read()
            health.append((time.perf_counter() - t) * 1000)
        except OSError:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        time.sleep(max(0.0, 0.01 - (time.perf_counter() - t)))
    results.put((health, rss))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--logins", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--spread", action="store_true")
    a = ap.parse_args()
    run = uuid.uuid4().hex[:8]

    def login(i):
        headers = {"content-type": "application/json"}
        if a.spread:
            headers["X-Forwarded-For"] = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        email = f"nobody-{run}-{i}@example.com" if i % 2 else "bench@example.com"
        body = json.dumps({"email": email, "password": f"wrong password {i}"})
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
        try:
            c.request("POST", "/api/v1/auth/login", body, headers)
            r = c.getresponse()
            r.read()
            return r.status
        except OSError as e:
            return type(e).__name__
        finally:
            c.close()

    stop = multiprocessing.Event()
    results = multiprocessing.Queue()
    watcher = multiprocessing.Process(target=watch, args=(a.port, a.pid, stop, results))
    before = rss_mb(a.pid)
    watcher.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(a.concurrency) as pool:
        statuses = collections.Counter(pool.map(login, range(a.logins)))
    took = time.perf_counter() - t0
    time.sleep(0.5)
    stop.set()
    health, rss = results.get()
    watcher.join()
    time.sleep(1)
    q = lambda p: round(percentile(health, p), 2)
    print(json.dumps({
        "logins": a.logins, "concurrency": a.concurrency, "spread": a.spread,
        "seconds": round(took, 2), "statuses": {str(k): v for k, v in statuses.items()},
        "healthz_probes": len(health), "healthz_p50_ms": q(50),
        "healthz_p99_ms": q(99), "healthz_max_ms": q(100),
        "rss_before_mb": round(before, 1), "rss_max_mb": round(max(rss or [0]), 1),
        "rss_after_mb": round(rss_mb(a.pid), 1),
    }))


if __name__ == "__main__":
    main()
