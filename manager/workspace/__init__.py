"""Workspace files reached through the manager: safe paths, the file service, run artifacts."""
