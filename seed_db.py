"""`python seed_db.py`: the seeding menu (same as `eventapi seed`; --help for options)."""

from _venv import entry_point

if __name__ == "__main__":
    entry_point("seed")()
