"""Benchmarks: ``python -m bench <name>`` runs ``bench/<name>.py:main``."""
