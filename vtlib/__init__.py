"""vtlib: video transformers from scratch, the library the course notebooks build.

Import the pieces from their modules, e.g. ``from vtlib.data import load_split``. The modules
form four layers, and imports only go downwards (``tests/test_layers.py`` checks it):

1. core, one concept per module: errors and shapes (argument checks), tokens, position, pooling,
   attention (and its map recorder), window (sliding-window attention), block, masking, tubes, acs,
   data/, metrics, stats, metric (triplet loss, centroid and k-NN heads), cost, viz, baselines, utils
2. models/: one model per file, built from the core
3. training and ports: train (fit, schedules), checkpoint (fingerprinted, atomic), pretrain (VideoMAE pre-training on
   fit's optimiser and checkpoints), hf/ (Hugging Face ports: one pair table per model, walked both ways;
   model folders with the Auto classes), transfer (probe / partial / full fine-tuning), features (a frozen-feature
   store in Hugging Face ``datasets``)
4. commands: bench, experiments/, lab, exercises/, course

This file stays import-light so ``python -m vtlib.course`` works before torch is installed.
"""

__version__ = "0.1.0"
