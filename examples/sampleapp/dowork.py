"""A one-off job: `python3 dowork.py 42` (or `dyno run myworker 42`)."""
import sys

items = sys.argv[1:] or ["nothing"]
for item in items:
    print(f"dowork: working on {item}", flush=True)
