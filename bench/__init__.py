"""Benchmarks: ``python -m bench <name> [args]`` runs ``bench/<name>.py``'s ``main(argv)``.

Each prints one JSON object: its measurements, the named reference measured in the same
run, and their ratios.
"""
