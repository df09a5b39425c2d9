"""Writes the ingest bodies the load script posts: a batch of N events over
N distinct sessions (heartbeats and messages, no idempotency keys so every
request is journaled)."""
import json
import sys

out_dir, sessions = sys.argv[1], int(sys.argv[2])
for size in (1, 100):
    events = []
    for i in range(size):
        s = f"load-{(i * 7919) % sessions}"
        if i % 4 == 0:
            events.append({"session": s, "type": "message", "direction": "inbound", "count": 1})
        else:
            events.append({"session": s, "type": "heartbeat", "rtt_ms": 40})
    with open(f"{out_dir}/batch{size}.json", "w") as f:
        json.dump(events, f)
