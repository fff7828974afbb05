"""Rate limits per client: the limits as configured (rates.py), token buckets in process
memory (local.py) and shared through Redis (shared.py). http/gate.py puts them in front
of the API."""
