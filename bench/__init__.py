"""The benchmark (`make bench`, `python -m bench`): the app and a bare-ASGI floor under load,
all scenarios in one run. Not part of the eventapi package: it is not shipped in the wheel.

__main__.py parses the command line into options.py's Options; runner.py drives a run;
server.py starts the processes (pinning.py picks their CPUs): the app as users start it
(`eventapi serve`), uvicorn serving floor.py, apps.py's slow_app (the app over
slow_store.py's DelayedStore) and peers.py's two other cache-asides, granian serving the
floor and the app, and redis-server; client.py talks to them; seed.py fills the SQLite
file; loadgen.py (bundled, over http1.py) and wrk.py generate load; scenarios.py,
workloads.py, mixed.py and stampede.py measure; results.py, stats.py, table.py, targets.py,
report.py, chart.py and machine.py turn the measurements into the table,
docs/benchmarks.md and the SVG.
"""
