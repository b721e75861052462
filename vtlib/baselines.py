"""Published MedMNIST v2 3D benchmark (test split, AUC / ACC), for comparison with course models.

Source: MedMNIST v2 paper (Yang et al., Scientific Data 10:41, 2023), Table 4, the same values as
the official project site. ResNets are the CIFAR-style 3D variants trained 100 epochs with Adam
(lr 1e-3), batch 32, keeping the checkpoint with the best validation AUC.
"""
from __future__ import annotations

DATASETS = ("organ", "nodule", "fracture", "adrenal", "vessel", "synapse")

# Table 4: AUC and ACC on each of DATASETS in turn
#                        organ         nodule        fracture      adrenal       vessel        synapse
_TABLE_4: dict[str, tuple[float, ...]] = {
    "ResNet-18 + 2.5D": (0.977, 0.788, 0.838, 0.835, 0.587, 0.451, 0.718, 0.772, 0.748, 0.846, 0.634, 0.696),
    "ResNet-18 + 3D":   (0.996, 0.907, 0.863, 0.844, 0.712, 0.508, 0.827, 0.721, 0.874, 0.877, 0.820, 0.745),
    "ResNet-18 + ACS":  (0.994, 0.900, 0.873, 0.847, 0.714, 0.497, 0.839, 0.754, 0.930, 0.928, 0.705, 0.722),
    "ResNet-50 + 2.5D": (0.974, 0.769, 0.835, 0.848, 0.552, 0.397, 0.732, 0.763, 0.751, 0.877, 0.669, 0.735),
    "ResNet-50 + 3D":   (0.994, 0.883, 0.875, 0.847, 0.725, 0.494, 0.828, 0.745, 0.907, 0.918, 0.851, 0.795),
    "ResNet-50 + ACS":  (0.994, 0.889, 0.886, 0.841, 0.750, 0.517, 0.828, 0.758, 0.912, 0.858, 0.719, 0.709),
    "auto-sklearn":     (0.977, 0.814, 0.914, 0.874, 0.628, 0.453, 0.828, 0.802, 0.910, 0.915, 0.631, 0.730),
    "AutoKeras":        (0.979, 0.804, 0.844, 0.834, 0.642, 0.458, 0.804, 0.705, 0.773, 0.894, 0.538, 0.724),
}
# method -> dataset -> (AUC, ACC)
MEDMNIST3D: dict[str, dict[str, tuple[float, float]]] = {
    method: {d: scores[2 * i:2 * i + 2] for i, d in enumerate(DATASETS)} for method, scores in _TABLE_4.items()
}


def baseline_table(dataset: str | None = None) -> str:
    """The benchmark as aligned text: every dataset, or one column with ``dataset="adrenal"``."""
    from vtlib.errors import check_choice

    cols = DATASETS if dataset is None else (dataset,)
    if dataset is not None:
        check_choice("dataset", dataset, DATASETS)
    header = f"{'method':<18}" + "".join(f"{c + ' AUC/ACC':>18}" for c in cols)
    rows = [header, "-" * len(header)]
    for method, scores in MEDMNIST3D.items():
        rows.append(f"{method:<18}" + "".join(f"{scores[c][0]:>10.3f} / {scores[c][1]:.3f}" for c in cols))
    return "\n".join(rows)
