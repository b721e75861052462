"""Experiment commands that write results/ (multi-seed sweeps too long for a notebook).

Run one with ``python -m vtlib.experiments.<name> --help``; each notebook says which it reads.
"""
