"""Real servers ifd can run on one machine for the shared setup (PostgreSQL)."""
