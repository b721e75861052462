"""vtlib.transfer: which parameters train under probe / partial / full, frozen parts stay in eval mode."""
import pytest
import torch
from torch import nn

from vtlib.models.timesformer import TimeSformer
from vtlib.models.videomae import VideoMAEClassifier
from vtlib.models.vivit import ViViT
from vtlib.train import TrainConfig, fit
from vtlib.transfer import Finetune, block_list, count_trainable, tail_names, trainable_names

SMALL = dict(dim=16, depth=3, heads=2)


def builders():
    return {
        "videomae": lambda: VideoMAEClassifier(video_shape=(8, 14, 14), tubelet=(2, 7, 7), drop_path=0.5, **SMALL),
        "vivit": lambda: ViViT(num_classes=2, video_shape=(8, 14, 14), tubelet=(2, 7, 7), drop_path=0.5, **SMALL),
        "vivit-cls": lambda: ViViT(num_classes=2, video_shape=(8, 14, 14), tubelet=(2, 7, 7), pool="cls", **SMALL),
        "timesformer": lambda: TimeSformer(num_classes=2, video_shape=(8, 14, 14), patch=7, drop_path=0.5, **SMALL),
    }


def trained(net: nn.Module) -> set[str]:
    return {n for n, p in net.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("kind", list(builders()))
def test_probe_trains_only_the_tail_and_partial_adds_the_last_blocks(kind):
    model = builders()[kind]()
    blocks, stack = block_list(model)
    names = {n for n, _ in model.named_parameters()}
    probe = trained(Finetune(model, approach="probe"))
    assert probe and all(not n.startswith(blocks) for n in probe)
    assert {n for n in probe if n.startswith("head")} == {"head.weight", "head.bias"}
    partial = trained(Finetune(model, approach="partial", blocks=2))
    in_blocks = {n.split(".")[len(blocks.split("."))] for n in partial if n.startswith(blocks + ".")}
    assert in_blocks == {str(len(stack) - 2), str(len(stack) - 1)}
    assert probe < partial < names
    assert trained(Finetune(model, approach="full")) == names           # full unfreezes everything again


def test_the_cls_token_of_a_cls_pool_stays_frozen_outside_full():
    model = builders()["vivit-cls"]()
    assert any(n.endswith("token") for n, _ in model.named_parameters())
    for approach in ("probe", "partial"):
        assert not any(n.endswith("token") for n in trained(Finetune(model, approach=approach)))
    assert any(n.endswith("token") for n in trained(Finetune(model, approach="full")))


def test_frozen_blocks_stay_in_eval_mode_so_drop_path_is_off():
    torch.manual_seed(0)
    model = builders()["videomae"]()
    Finetune(model, approach="probe").train()
    x = torch.rand(4, 1, 8, 14, 14)
    assert not model.encoder.training and model.head.training
    with torch.no_grad():
        a, b = model.features(x), model.features(x)                 # drop path 0.5 would make these differ
    assert torch.equal(a, b)
    net_partial = Finetune(model, approach="partial", blocks=1).train()
    assert model.encoder.transformer.blocks[-1].training and not model.encoder.transformer.blocks[0].training
    net_partial.eval()
    assert not model.encoder.transformer.blocks[-1].training


def test_fit_changes_only_the_trained_parameters():
    torch.manual_seed(0)
    model = builders()["videomae"]()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x, y = torch.rand(16, 1, 8, 14, 14), torch.arange(16) % 2
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    net = Finetune(model, approach="partial", blocks=1)
    fit(net, loader, loader, TrainConfig(epochs=2, lr=1e-2, warmup_epochs=0, progress=False, device="cpu"))
    keep = trained(net)
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) == (n not in keep), n
    t, total = count_trainable(net)
    assert 0 < t < total == sum(p.numel() for p in model.parameters())


def test_tail_names_are_outside_the_blocks():
    assert tail_names(builders()["videomae"]()) == ["fc_norm", "head"]
    assert set(tail_names(builders()["timesformer"]())) == {"norm", "head"}


def test_clear_errors():
    model = builders()["videomae"]()
    with pytest.raises(ValueError, match="approach: expected one of"):
        Finetune(model, approach="linear")
    with pytest.raises(ValueError, match="blocks: expected at most the model's 3 blocks"):
        Finetune(model, approach="partial", blocks=4)
    with pytest.raises(ValueError, match="blocks: expected a positive int"):
        trainable_names(model, "partial", blocks=0)
    with pytest.raises(ValueError, match="exactly one ModuleList named 'blocks'"):
        Finetune(nn.Sequential(nn.Linear(2, 2)), approach="probe")
    with pytest.raises(ValueError, match="model: expected an nn.Module"):
        Finetune("videomae", approach="probe")


# ----------------------------------------------------------------------------- the sweep command
def test_train_subset_is_the_subset_the_loaders_keep(adrenal_path):
    from vtlib.data import load_split
    from vtlib.experiments.common import loaders
    from vtlib.experiments.transfer import train_subset

    x, _ = load_split("adrenal", "train")
    for seed in (0, 3):
        kept = loaders("adrenal", seed=seed, train_fraction=0.1)["train"].dataset.tensors[0]
        assert torch.equal(kept, x[train_subset(len(x), 0.1, seed)])
    assert torch.equal(train_subset(5, 1.0, 0), torch.arange(5))


def test_plan_is_seed_major_and_scratch_is_only_fully_trained():
    from vtlib.experiments.transfer import APPROACHES, SOURCES, finetune_run, plan

    runs = plan(seeds=(0, 1))
    assert [r[4] for r in runs] == sorted(r[4] for r in runs)                  # whole seeds first
    scratch = {(p, s, a) for p, s, a, _, _ in runs if p == "finetune" and s == "scratch"}
    assert scratch == {("finetune", "scratch", "full")}
    assert len([r for r in runs if r[0] == "finetune"]) == 2 * 2 * (1 + (len(SOURCES) - 1) * len(APPROACHES))
    with pytest.raises(ValueError, match="approach: expected 'full' for source 'scratch'"):
        finetune_run("scratch", "probe", 0.1, 0)


def test_intervals_pair_each_config_with_scratch_at_its_own_label_fraction(adrenal_path):
    import numpy as np

    from vtlib.data import load_split
    from vtlib.experiments.transfer import interval_rows

    y = load_split("adrenal", "test")[1].numpy()
    rng = np.random.default_rng(0)
    good = [list(y + rng.normal(0, 0.6, len(y))) for _ in range(3)]
    noise = [list(rng.normal(0, 1, len(y))) for _ in range(3)]
    scores = {}
    for s in range(3):
        scores["finetune", "scratch-full@10%", str(s)] = noise[s]
        scores["finetune", "scratch-full@100%", str(s)] = good[s]
        scores["finetune", "videomae-full@10%", str(s)] = good[s]
        scores["features", "videomae-features-logreg@100%", str(s)] = noise[s]
    table = {r["config"]: r for r in interval_rows(scores)}
    assert table["scratch-full@10%"]["reference"] == "" and table["scratch-full@100%"]["reference"] == ""
    assert table["videomae-full@10%"]["reference"] == "scratch-full@10%" and table["videomae-full@10%"]["diff_low"] > 0
    worse = table["videomae-features-logreg@100%"]
    assert worse["reference"] == "scratch-full@100%" and worse["diff_high"] < 0 and worse["resolved"]


def test_sweep_resumes_and_keeps_per_clip_scores(tmp_path, monkeypatch):
    from vtlib.experiments import transfer
    from vtlib.experiments.common import read_csv, read_scores

    calls = []

    def fake(source, what, fraction, seed):
        calls.append((source, what, fraction, seed))
        return {"config": f"{source}-{what}", "source": source, "fraction": fraction, "seed": seed,
                "test_auc": 0.5, "test_acc": 0.5, "train_seconds": 0.1, "_scores": [0.1 * seed, 0.2, 0.3]}

    monkeypatch.setattr(transfer, "finetune_run", fake)
    monkeypatch.setattr(transfer, "interval_rows", lambda scores: [])
    out = tmp_path / "transfer.csv"
    per_seed = 1 + (len(transfer.SOURCES) - 1) * len(transfer.APPROACHES)
    transfer.sweep(("finetune",), seeds=(0,), fractions=(0.1,), out=out, verbose=False)
    assert len(calls) == per_seed and len(read_csv(out)) == per_seed
    assert read_scores(out)["finetune", "videomae-partial@10%", "0"] == [0.0, 0.2, 0.3]
    transfer.sweep(("finetune",), seeds=(0, 1), fractions=(0.1,), out=out, verbose=False)
    assert len(calls) == 2 * per_seed and {c[3] for c in calls[per_seed:]} == {1}     # only the new seed ran


def test_an_inflated_slice_model_reads_a_still_clip_as_its_slice():
    """Inflation: on a video whose frames are all one slice, every token-frame embeds like the 2D patch."""
    from vtlib.experiments.transfer import ENCODER, inflated

    torch.manual_seed(0)
    image = VideoMAEClassifier(**{**ENCODER, "video_shape": (1, 28, 28), "tubelet": (1, 7, 7)})
    video = inflated(image)
    slice_ = torch.rand(3, 1, 1, 28, 28)
    still = slice_.expand(3, 1, 28, 28, 28)
    with torch.no_grad():
        per_slice = image.encoder.embed(slice_)                             # (3, 16, D)
        per_tubelet = video.encoder.embed(still).unflatten(1, (7, 16))      # (3, 7 token-frames, 16, D)
    assert torch.allclose(per_tubelet, per_slice[:, None].expand_as(per_tubelet), atol=1e-5)
    blocks = image.encoder.transformer.blocks.state_dict()
    assert all(torch.equal(v, video.encoder.transformer.blocks.state_dict()[k]) for k, v in blocks.items())
