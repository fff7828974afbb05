"""`python main.py`: start the API server on http://localhost:8000 (same as `eventapi serve`)."""

from _venv import entry_point

if __name__ == "__main__":
    entry_point("serve")()
