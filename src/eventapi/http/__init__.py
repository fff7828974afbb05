"""HTTP plumbing shared by all routes (middleware, health)."""
