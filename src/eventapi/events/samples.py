"""Sample events for `seed`: the original README's examples plus a realistic spread.

Ids are fixed so that seeding twice inserts nothing new, and so the original README's
example id (68ed254e36d0233aa05afbe9, the Music Festival) works after seeding.
"""

from __future__ import annotations

from eventapi.events.schemas import EventRead

_RAW: list[dict[str, str]] = [
    {
        "id": "68ed254e36d0233aa05afbe1",
        "title": "Tech Conference 2025",
        "description": "Annual technology conference",
        "date": "2025-11-15T09:00:00",
        "location": "San Francisco, CA",
        "category": "Technology",
        "organizer": "Tech Corp",
    },
    {
        "id": "68ed254e36d0233aa05afbe9",
        "title": "Music Festival",
        "description": "Three-day outdoor music festival",
        "date": "2025-08-20T14:00:00",
        "location": "Austin, TX",
        "category": "Music",
        "organizer": "Live Nation",
    },
    {
        "id": "68ed254e36d0233aa05afbe2",
        "title": "New Conference",
        "description": "Amazing event",
        "date": "2025-12-01T10:00:00",
        "location": "New York, NY",
        "category": "Technology",
        "organizer": "Event Corp",
    },
    {
        "id": "68ed254e36d0233aa05afbe3",
        "title": "Workshop 2025",
        "description": "Hands-on coding workshop",
        "date": "2025-11-20T14:00:00",
        "location": "Bengaluru, India",
        "category": "Education",
        "organizer": "Code Guild",
    },
    {
        "id": "68ed254e36d0233aa05afbe4",
        "title": "City Marathon",
        "description": "42 km through the historic centre, with a 10 km fun run",
        "date": "2025-10-12T07:30:00",
        "location": "Chicago, IL",
        "category": "Sports",
        "organizer": "Chicago Runners Club",
    },
    {
        "id": "68ed254e36d0233aa05afbe5",
        "title": "Startup Pitch Night",
        "description": "Ten early-stage founders pitch to a panel of investors",
        "date": "2025-09-18T18:30:00",
        "location": "Berlin, Germany",
        "category": "Business",
        "organizer": "Founders Berlin",
    },
    {
        "id": "68ed254e36d0233aa05afbe6",
        "title": "Jazz in the Park",
        "description": "Free evening concert of local jazz ensembles",
        "date": "2025-07-05T19:00:00",
        "location": "New Orleans, LA",
        "category": "Music",
        "organizer": "Crescent City Arts",
    },
    {
        "id": "68ed254e36d0233aa05afbe7",
        "title": "Python Data Summit",
        "description": "Talks on data engineering, analytics and machine learning in Python",
        "date": "2026-03-10T09:00:00",
        "location": "London, UK",
        "category": "Technology",
        "organizer": "PyData London",
    },
    {
        "id": "68ed254e36d0233aa05afbe8",
        "title": "Food Truck Festival",
        "description": "Forty food trucks, live music and a craft beer garden",
        "date": "2025-06-14T11:00:00",
        "location": "Portland, OR",
        "category": "Food",
        "organizer": "Portland Street Eats",
    },
    {
        "id": "68ed254e36d0233aa05afbea",
        "title": "Modern Art Exhibition Opening",
        "description": "Opening night of a contemporary painting and sculpture exhibition",
        "date": "2025-10-02T18:00:00",
        "location": "Paris, France",
        "category": "Arts",
        "organizer": "Galerie Lumière",
    },
    {
        "id": "68ed254e36d0233aa05afbeb",
        "title": "Cloud Security Workshop",
        "description": "Hands-on labs on identity, secrets and network policy",
        "date": "2026-01-22T13:00:00",
        "location": "Seattle, WA",
        "category": "Education",
        "organizer": "SecureOps Academy",
    },
    {
        "id": "68ed254e36d0233aa05afbec",
        "title": "Charity 5K Fun Run",
        "description": "Family-friendly run raising money for the children's hospital",
        "date": "2025-09-06T08:00:00",
        "location": "Toronto, Canada",
        "category": "Sports",
        "organizer": "Run for Kids",
    },
    {
        "id": "68ed254e36d0233aa05afbed",
        "title": "Product Management Meetup",
        "description": "Roadmaps, discovery and metrics: lightning talks and networking",
        "date": "2025-11-05T18:00:00",
        "location": "Austin, TX",
        "category": "Business",
        "organizer": "PM Austin",
    },
    {
        "id": "68ed254e36d0233aa05afbee",
        "title": "Street Food & Wine Evening",
        "description": "Regional wines paired with street food from six cuisines",
        "date": "2026-05-16T17:00:00",
        "location": "Barcelona, Spain",
        "category": "Food",
        "organizer": "Taste Barcelona",
    },
]

SAMPLE_EVENTS: list[EventRead] = [EventRead.model_validate(raw) for raw in _RAW]
