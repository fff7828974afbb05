"""Response caches: one Protocol (base.py), backends beside it, and the read-through logic."""
