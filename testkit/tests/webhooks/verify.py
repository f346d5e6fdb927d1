"""Verifies webhook deliveries with the Standard Webhooks reference library.

Reads JSON lines {"headers": {...}, "body": "..."} on stdin; the secret is argv[1].
Prints how many verified; exits 1 at the first that does not.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

hook = Webhook(sys.argv[1])
n = 0
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    r = json.loads(line)
    try:
        hook.verify(r["body"], r["headers"])
    except Exception as e:  # noqa: BLE001 - report which one failed
        print(f"delivery {r['headers'].get('webhook-id')} did not verify: {e}", file=sys.stderr)
        sys.exit(1)
    n += 1
print(n)
