"""Weight ports between vtlib models and Hugging Face ``transformers`` (pinned 5.23), both ways.

A port is believable only if both sides then compute the same function, so every port is tested:
same weights, same clip -> same logits (tests/test_hf_*.py). One mechanism serves all models
(``vtlib.hf.common``): a table of (vtlib parameter, HF parameter) pairs, walked vtlib -> HF and
HF -> vtlib, that must cover every parameter of both models, plus a few named special cases; one
``to_hf_video`` for the clip layout and one ``HFVideoClassifier`` wrapper family.

* ``vtlib.hf.vivit``: ViViT Model 1 <-> ``VivitForVideoClassification``
* ``vtlib.hf.timesformer``: TimeSformer <-> ``TimesformerForVideoClassification``
* ``vtlib.hf.videomae``: VideoMAE (encoder, pre-training, classifier) <-> the three HF VideoMAE classes
* ``vtlib.hf.folders``: a ViViT / TimeSformer / VideoMAEClassifier as an HF model folder (``save_pretrained``,
  Auto classes, image processor for raw uint8 frames): ``save_folder``, ``load_folder``, ``from_folder``,
  ``predict_frames``
* ``vtlib.hf.longformer``: vtlib's window attention run by HF's ``LongformerSelfAttention`` with the same
  weights (a reference for VTN, not a port: HF has no VTN)

Import from here: ``from vtlib.hf import vivit_to_hf, to_hf_video``. Nothing is downloaded (except by
``load_folder`` given a Hub id): configs are built locally from the vtlib model, and ``transformers`` is
imported only when a port runs.
"""
from vtlib.hf.common import HFVideoClassifier, Pair, check_table, copy_from_hf, copy_to_hf, to_hf_video
from vtlib.hf.folders import from_folder, load_folder, predict_frames, save_folder
from vtlib.hf.longformer import HFWindowAttention, hf_longformer_config, use_hf_attention
from vtlib.hf.timesformer import (
    HF_ATTENTION,
    VTLIB_ATTENTION,
    HFTimesformerClassifier,
    hf_timesformer_config,
    timesformer_from_hf,
    timesformer_table,
    timesformer_to_hf,
)
from vtlib.hf.videomae import (
    HFVideoMAEClassifier,
    classifier_from_hf,
    classifier_to_hf,
    encoder_from_hf,
    encoder_to_hf,
    videomae_config,
    videomae_from_hf,
    videomae_table,
    videomae_to_hf,
)
from vtlib.hf.vivit import TANH_GELUS, hf_vivit_config, vivit_from_hf, vivit_table, vivit_to_hf

__all__ = [
    "HFVideoClassifier", "Pair", "check_table", "copy_from_hf", "copy_to_hf", "to_hf_video",
    "TANH_GELUS", "hf_vivit_config", "vivit_from_hf", "vivit_table", "vivit_to_hf",
    "HF_ATTENTION", "VTLIB_ATTENTION", "HFTimesformerClassifier", "hf_timesformer_config", "timesformer_from_hf",
    "timesformer_table", "timesformer_to_hf",
    "HFVideoMAEClassifier", "classifier_from_hf", "classifier_to_hf", "encoder_from_hf", "encoder_to_hf",
    "videomae_config", "videomae_from_hf", "videomae_table", "videomae_to_hf",
    "HFWindowAttention", "hf_longformer_config", "use_hf_attention",
    "save_folder", "load_folder", "from_folder", "predict_frames",
]
