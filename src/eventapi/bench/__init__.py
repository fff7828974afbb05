"""`eventapi bench`: the app and a bare-ASGI floor under load, all scenarios in one run.

runner.py drives a run (options.py); server.py starts uvicorn and redis-server processes
(pinning.py picks their CPUs) and client.py talks to them; seed.py fills the SQLite file;
loadgen.py (bundled, over http1.py) and wrk.py generate load; scenarios.py, workloads.py,
mixed.py and stampede.py measure; results.py, stats.py, table.py, targets.py, report.py,
chart.py and machine.py turn the measurements into the table, docs/benchmarks.md and the SVG.
"""
