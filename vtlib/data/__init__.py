"""vtlib.data: MedMNIST 3D volumes read as videos, video transforms, synthetic motion videos.

    from vtlib.data import load_split, make_loaders, augment, make_motion_videos
    x, y = load_split("adrenal", "train", size=28)      # x: (1188, 1, 28, 28, 28) float32 in [0, 1]
"""
from vtlib.data.download import DataFileError, download_file, md5sum
from vtlib.data.medmnist3d import (
                                   NAMES,
                                   SIZES,
                                   SPLITS,
                                   DatasetInfo,
                                   MedMNISTVideo,
                                   data_root,
                                   dataset_info,
                                   ensure_file,
                                   load_arrays,
                                   load_split,
                                   make_loaders,
                                   to_video,
                                   train_stats,
)
from vtlib.data.synthetic import centroid_x, make_motion_videos, make_order_videos, motion_x, order_video_events
from vtlib.data.transforms import augment, frame_indices, from_frames, resize, sample_frames, standardize, to_frames

__all__ = [
    "DataFileError", "download_file", "md5sum", "NAMES", "SIZES", "SPLITS", "DatasetInfo",
    "MedMNISTVideo", "data_root", "dataset_info", "ensure_file", "load_arrays", "load_split",
    "make_loaders", "to_video", "train_stats", "centroid_x", "make_motion_videos", "make_order_videos",
    "order_video_events", "motion_x", "augment",
    "frame_indices", "from_frames", "resize", "sample_frames", "standardize", "to_frames",
]
