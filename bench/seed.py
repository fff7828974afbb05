"""Realistic generated events, bulk-inserted straight into a SQLite file before a server
starts (SqliteEventStore.load_new into a new file, else insert_missing in batches; a
progress bar on stderr)."""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from bson import ObjectId

from eventapi.events.schemas import EventRead, fields_of
from eventapi.storage.sqlite import SqliteEventStore

BATCH = 1000
_KINDS = {
    "Technology": ["Conference", "Summit", "Hackathon", "Meetup", "Workshop"],
    "Music": ["Festival", "Concert", "Jazz Night", "Open Air", "Recital"],
    "Sports": ["Marathon", "Fun Run", "Cup Final", "Triathlon", "Tournament"],
    "Business": ["Pitch Night", "Expo", "Leadership Forum", "Trade Fair", "Networking Evening"],
    "Education": ["Bootcamp", "Masterclass", "Lecture Series", "Study Day", "Workshop"],
    "Food": ["Street Food Market", "Wine Tasting", "Food Truck Rally", "Chef's Table"],
    "Arts": ["Exhibition Opening", "Gallery Night", "Film Screening", "Theatre Premiere"],
}
_THEMES = [
    "Cloud", "Data", "Spring", "Harbour", "City", "Summer", "Winter", "Riverside",
    "Open Source", "Green", "Future", "Downtown", "Northern", "Indie", "Global", "Local",
]  # fmt: skip
_PLACES = [
    "San Francisco, CA", "Austin, TX", "New York, NY", "Chicago, IL", "Seattle, WA",
    "Boston, MA", "London, UK", "Berlin, Germany", "Paris, France", "Toronto, Canada",
    "Barcelona, Spain", "Bengaluru, India", "Tokyo, Japan", "Sydney, Australia",
    "Amsterdam, Netherlands", "New Orleans, LA", "Portland, OR", "Lisbon, Portugal",
]  # fmt: skip
_ORGANIZERS = [
    "Live Nation", "Tech Corp", "Event Corp", "Code Guild", "City Council", "PyData",
    "Founders Club", "Arts Collective", "Runners Club", "Taste Co", "Open Campus",
]  # fmt: skip
_BLURBS = [
    "Talks, hands-on sessions and plenty of time to meet people",
    "A full day programme with keynotes and breakout rooms",
    "An evening of live performances from local and touring artists",
    "Family-friendly, with food stalls and activities for children",
    "Limited places: registration required, doors open an hour early",
]  # fmt: skip


def generate(count: int, seed: int = 2025) -> list[EventRead]:
    """``count`` plausible events with fresh ObjectId ids (titles never contain quotes)."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, 8, 0)
    events = []
    for n in range(count):
        category = rng.choice(list(_KINDS))
        theme, kind, place = rng.choice(_THEMES), rng.choice(_KINDS[category]), rng.choice(_PLACES)
        when = start + timedelta(days=rng.randrange(3 * 365), minutes=30 * rng.randrange(24))
        raw = {
            "id": str(ObjectId()),
            "title": f"{theme} {kind} {when.year} #{n}",
            "description": f"{rng.choice(_BLURBS)}. {theme} {kind.lower()} in {place}.",
            "date": when.isoformat(),
            "location": place,
            "category": category,
            "organizer": rng.choice(_ORGANIZERS),
        }
        events.append(EventRead.model_validate(raw))
    return events


def _progress(done: int, total: int, out: TextIO, width: int = 30) -> None:
    filled = width * done // max(total, 1)
    out.write(f"\rseeding [{'#' * filled}{'.' * (width - filled)}] {done}/{total} events")
    if done >= total:
        out.write("\n")
    out.flush()


async def _insert(path: Path, events: list[EventRead], out: TextIO) -> int:
    store = await SqliteEventStore.open(str(path), timeout=60.0)
    try:
        _progress(0, len(events), out)
        # A new file is filled as `eventapi import` fills one: all at once, sorted by id.
        inserted = await store.load_new(
            [[fields_of(e) for e in sorted(events, key=lambda e: e.id)]]
        )
        if inserted is None:
            inserted = 0
            for at in range(0, len(events), BATCH):
                inserted += await store.insert_missing(events[at : at + BATCH])
                _progress(min(at + BATCH, len(events)), len(events), out)
        _progress(len(events), len(events), out)
    finally:
        await store.close()
    return inserted


def seed_file(path: Path, events: list[EventRead], out: TextIO = sys.stderr) -> int:
    """Insert ``events`` into the SQLite file at ``path`` (created if missing)."""
    return asyncio.run(_insert(path, events, out))
