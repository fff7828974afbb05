"""eventapi: an event-management REST API with cache-aside caching."""

__version__ = "0.1.0"
