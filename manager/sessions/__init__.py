"""Script sessions: one resource-limited container per run, and the images they run in."""
