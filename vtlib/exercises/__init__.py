"""Check functions for the notebooks' exercises: one module per notebook (nb00.py, nb01.py, ...).

Each check returns a bool and prints one fixed line, so nbval can compare it.
"""
