"""The notifications service: the first bounded context extracted from the monolith.

Serves the monolith's ``/api/notifications`` contract from its own database, which the
CDC sink (``cdc.sinks``) keeps in sync with the monolith's tables while the monolith
still owns the data. ``python -m extracted.notifications migrate|serve|sink``.
"""
