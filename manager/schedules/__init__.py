"""Scheduled runs of batch scripts: model in manager/models/personal.py, see service.py."""
