"""A background worker: reports progress every few seconds until SIGTERM."""
import os
import signal
import sys
import time

INTERVAL = float(os.environ.get("WORKER_INTERVAL", "3"))


def stop(signum, frame):
    print("worker: SIGTERM received, shutting down", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
tick = 0
while True:
    tick += 1
    print(f"worker: tick {tick}", flush=True)
    time.sleep(INTERVAL)
