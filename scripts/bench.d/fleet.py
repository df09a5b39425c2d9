"""Writes ingest bodies that load a fleet: sessions s-<FROM>..s-<TO-1>, three
events each (connected, a heartbeat, inbound messages), in JSON arrays of at
most 5,000 events. About one session in ten has a stale heartbeat and one in
fifty is disconnected, so the fleet carries warnings and critical alerts."""
import json
import sys
import time

out_dir, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = time.time()


def at(seconds_ago):
    t = now - seconds_ago
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}Z"


batch, n = [], 0
for i in range(first, last):
    s = f"s-{i:06d}"
    state = "disconnected" if i % 50 == 0 else "connected"
    batch.append({"session": s, "type": "state", "state": state, "at": at(900)})
    batch.append({"session": s, "type": "heartbeat", "at": at(75 if i % 10 == 0 else 10), "rtt_ms": 40})
    batch.append({"session": s, "type": "message", "direction": "inbound", "count": 3, "at": at(5)})
    if len(batch) >= 4998 or i == last - 1:
        with open(f"{out_dir}/fleet-{first:06d}-{n:04d}.json", "w") as f:
            json.dump(batch, f)
        batch, n = [], n + 1
