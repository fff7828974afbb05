"""Event stores: one Protocol (base.py) and one module per backend."""
