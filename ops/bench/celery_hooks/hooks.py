"""A webhook delivery loop of the kind users write by hand: one Celery task per delivery
that signs the event as Standard Webhooks asks (HMAC-SHA256 of "id.timestamp.body" with
the base64 secret after `whsec_`, `v1,<base64>`) and POSTs it with `requests`; any
non-2xx answer or connection error is retried 5 s later (up to 7 retries).

Settings as the peer harness (/work/shared/peers) uses for Celery: JSON serializer, no
result backend, default prefetch and acknowledgement (on receipt). One `requests.Session`
per worker process, its pool as large as the gevent pool, so connections are reused.
The broker is WEBHOOK_CELERY_REDIS (default redis://127.0.0.1:6379/7).

  celery -A hooks worker -P prefork -c 2          (run from this directory)
  python hooks.py produce --n 20000 --url URL --secret whsec_...
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
import uuid

import requests
from celery import Celery

BROKER = os.environ.get("WEBHOOK_CELERY_REDIS", "redis://127.0.0.1:6379/7")

app = Celery("hooks", broker=BROKER)
app.conf.update(task_ignore_result=True, task_serializer="json", accept_content=["json"],
                worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)

_session = None


def session():
    global _session
    if _session is None:
        s = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        _session = s
    return _session


def sign(secret, msg_id, timestamp, body):
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


@app.task(name="hooks.deliver", bind=True, max_retries=7)
def deliver(self, url, secret, msg_id, body):
    data = body.encode()
    ts = str(int(time.time()))
    headers = {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": ts,
               "webhook-signature": sign(secret, msg_id, ts, data)}
    try:
        r = session().post(url, data=data, headers=headers, timeout=15, allow_redirects=False)
    except requests.RequestException as e:
        raise self.retry(exc=e, countdown=5)
    if not 200 <= r.status_code < 300:
        raise self.retry(countdown=5)


def produce(n, url, secret):
    """Queues n deliveries (one task each) through one producer connection."""
    t0 = time.time()
    with app.producer_or_acquire() as producer:
        for i in range(n):
            ts = time.time()
            body = json.dumps({"type": "collection.completed",
                               "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z",
                               "data": {"collection_id": str(uuid.uuid4()), "status": "completed", "seq": i}},
                              separators=(",", ":"))
            deliver.apply_async((url, secret, "msg_" + uuid.uuid4().hex, body), producer=producer)
    print(json.dumps({"queued": n, "seconds": round(time.time() - t0, 2)}))


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("produce")
    q.add_argument("--n", type=int, default=20000)
    q.add_argument("--url", required=True)
    q.add_argument("--secret", required=True)
    a = p.parse_args()
    sys.exit(produce(a.n, a.url, a.secret))
