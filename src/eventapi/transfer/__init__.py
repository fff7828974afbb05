"""`eventapi import` and `eventapi export`: users' own events in and out of the store, in
JSON (an array), JSON Lines or CSV. formats.py reads and writes the files, rows.py checks a
row with the API's own schema, importer.py and exporter.py run the commands, progress.py
shows how far they are."""
