"""System backups: the data folder, run logs and a consistent database dump in one archive.

``archive`` writes and reads the archives, ``dump`` dumps and loads the database (SQLite's online
backup API, ``pg_dump``/``pg_restore``), ``service`` lists, deletes, restores and reports status,
``scheduler`` runs the daily backup exactly once across manager processes.
"""
