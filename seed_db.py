"""`python seed_db.py`: the seeding menu (same as `eventapi seed`; --help for options)."""

from _venv import use_project_venv

if __name__ == "__main__":
    use_project_venv()
    from eventapi.cli import seed

    seed()
