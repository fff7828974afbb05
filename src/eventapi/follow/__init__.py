"""Following the events: the change feed (GET /api/changes), its live stream (GET
/api/changes/stream), and the change cursor every read answers with (X-Changes-Cursor).
All read the store's change log (eventapi/changes.py) in commit order."""
