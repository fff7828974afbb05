"""`python main.py`: start the API server on http://localhost:8000 (same as `eventapi serve`)."""

from _venv import use_project_venv

if __name__ == "__main__":
    use_project_venv()
    from eventapi.cli import serve

    serve()
