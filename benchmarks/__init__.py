"""Benchmarks of bulkchime against its emulator, each runnable as ``python -m benchmarks.NAME``.

They are not part of the test suite: they take minutes, and their figures depend on
the machine. ``python -m benchmarks [--quick]`` runs them all. See README.md.
"""
