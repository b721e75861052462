"""vtlib: video transformers from scratch, the library the course notebooks build.

Import the pieces from their modules, e.g. ``from vtlib.data import load_medmnist3d``.
This file stays import-light so ``python -m vtlib.course`` works before torch is installed.
"""

__version__ = "0.1.0"
