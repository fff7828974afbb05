"""The events domain: HTTP routes, schemas and the service they call."""
