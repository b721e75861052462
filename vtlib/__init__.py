"""vtlib: video transformers from scratch, the library the course notebooks build.

Import the pieces from their modules, e.g. ``from vtlib.data import load_split``. The modules
form four layers, and imports only go downwards (``tests/test_layers.py`` checks it):

1. core: errors, tokens, position, pooling, attention, block, masking, tubes, acs, data, metrics,
   stats, cost, viz, baselines, utils
2. models/: one model per file
3. training and ports: train, pretrain, hf, hf_timesformer, hf_videomae
4. commands: bench, experiments/, lab, exercises/, course

This file stays import-light so ``python -m vtlib.course`` works before torch is installed.
"""

__version__ = "0.1.0"
