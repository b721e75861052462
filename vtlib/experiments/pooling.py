"""CLS token vs mean pooling vs attention pooling on one small ViViT (notebook 03).

    python -m vtlib.experiments.pooling        # adrenal, 4 configs x 3 seeds x 10 epochs: ~16 min on 1 quiet thread
    python -m vtlib.experiments.pooling --seeds 0 1 2 3 4 --epochs 12

Trains ``ViViT(pool=...)`` with everything else fixed, for four read-outs:

* ``cls``    a learned CLS token is prepended; the head reads its output (ViT / ViViT);
* ``mean``   no extra token; the head reads the average of all token outputs (VideoMAE);
* ``attn``   no extra token; a learned query attends over the token outputs (TubeViT's head);
* ``token0`` no extra token, and the head reads ``x[:, 0]``, which is then the first *patch* token
  (Hugging Face VideoMAE with ``use_mean_pooling=False``; issue #21016): trained that way.

Besides the usual test AUC/ACC (weights chosen on validation), each row records what the
notebook discusses:

* ``misread_*`` (mean rows only): the trained mean-pooled model, unchanged, but read at token 0, the
  bug of calling ``x[:, 0]`` on a model without CLS; ``misread_agree`` is the share of test clips
  whose predicted class stays the same.
* ``probe_pooled_auc`` / ``probe_patch0_auc``: a logistic regression fitted on the TRAIN split to the
  frozen pooled feature / to the first patch token's feature, scored on test. How much the first
  patch token knows, with a head trained for it.
* ``gland_share``: the share of read-out weight on tubelets that contain gland voxels (mean over
  test clips); ``gland_base`` is that share for uniform weights (= mean pooling).
  ``eff_tokens``: exp(entropy) of the read-out weights, the number of tokens it effectively reads.
* ``patch_cos``: mean cosine similarity between the final patch-token outputs of a clip.
* ``any_token_auc_min/max`` (mean rows): the head read at each patch token in turn, worst and best AUC.

Writes ``results/pooling.csv`` (one row per config and seed) and ``results/pooling_summary.csv``
(mean and sample std per config, plus a ``mean_read_token0`` row from the misread columns).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vtlib.attention import record_attention
from vtlib.errors import bad_arg, check_choice, check_rank
from vtlib.experiments.common import RESULTS, loaders, provenance, run, summarise, write_csv
from vtlib.metrics import evaluate_scores
from vtlib.models.vivit import ViViT
from vtlib.pooling import AttentionPool, ClsToken, MeanPool
from vtlib.train import TrainConfig, evaluate

CONFIGS = ("cls", "mean", "attn", "token0")
SUMMARY_KEYS = ("test_auc", "test_acc", "probe_pooled_auc", "probe_patch0_auc", "gland_share", "eff_tokens",
                "patch_cos")


class FirstToken(nn.Module):
    """The pitfall as a module: read ``x[:, 0]`` of a sequence that has NO CLS token.

    Token 0 is then the first patch token: the tubelet at (t, h, w) = (0, 0, 0), a corner of the
    first frames. (B, N, D) -> (B, D). Same interface as the pools of ``vtlib.pooling``.
    """

    num_prefix = 0

    def prepend(self, x: Tensor) -> Tensor:
        return x

    def forward(self, x: Tensor) -> Tensor:
        check_rank("x", x, 3, "B N D")
        return x[:, 0]


def build_model(config: str, dim: int = 64, depth: int = 4, heads: int = 4, **kwargs) -> ViViT:
    """The notebook's small encoder with one read-out: config in cls | mean | attn | token0."""
    check_choice("config", config, CONFIGS)
    model = ViViT(dim=dim, depth=depth, heads=heads, pool="mean" if config == "token0" else config, **kwargs)
    if config == "token0":
        model.pool = FirstToken()
    return model


@torch.no_grad()
def encode(model: ViViT, x: Tensor) -> Tensor:
    """Final-norm token outputs (B, [1+]N, D) of a ViViT (maps: wrap it in ``record_attention``)."""
    tokens = model.pool.prepend(model.pos(model.embed(x)))
    return model.norm(model.encoder(tokens))


@torch.no_grad()
def readout_weights(model: ViViT, x: Tensor) -> Tensor:
    """How much each patch token contributes to the read-out, (B, N) over the N patch tokens.

    cls: the CLS query's attention in the LAST block, averaged over heads (its weight on itself
    is left out, so rows sum to 1 minus that). attn: the pool's weights, averaged over heads.
    mean: 1/N everywhere. token0: all weight on patch 0.
    """
    check_rank("x", x, 5, "B C T H W")
    model.eval()
    x = x.to(next(model.parameters()).device)
    pool = model.pool
    if isinstance(pool, ClsToken):
        with record_attention(model.encoder) as maps:
            encode(model, x)
        return maps[-1][:, :, 0, 1:].mean(1).float().cpu()             # last block: (B, N)
    out = encode(model, x)
    n = out.shape[1]
    if isinstance(pool, AttentionPool):
        return pool(out, return_weights=True)[1].mean(1).float().cpu()  # (B, N)
    if isinstance(pool, MeanPool):
        return torch.full((x.shape[0], n), 1.0 / n)
    if isinstance(pool, FirstToken):
        return F.one_hot(torch.zeros(x.shape[0], dtype=torch.long), n).float()
    raise bad_arg("model.pool", "ClsToken, MeanPool, AttentionPool or FirstToken", type(pool).__name__,
                  "build the model with vtlib.experiments.pooling.build_model")


def gland_tokens(x: Tensor, tubelet: tuple[int, int, int] = (4, 7, 7)) -> Tensor:
    """(B, N) bool: True where the tubelet holds any gland voxel (> 0), tokens in (t h w) order."""
    check_rank("x", x, 5, "B C T H W")
    return (F.max_pool3d(x.amax(1, keepdim=True), tubelet) > 0).flatten(1)


@torch.no_grad()
def patch_similarity(model: ViViT, x: Tensor) -> float:
    """Mean cosine similarity between the final patch-token outputs of a clip (1 = all identical)."""
    model.eval()
    out = encode(model, x.to(next(model.parameters()).device))[:, model.pool.num_prefix:]
    z = F.normalize(out.float(), dim=-1)
    return (z @ z.transpose(1, 2)).mean().item()


@torch.no_grad()
def token_readout_aucs(model: ViViT, loader) -> Tensor:
    """(N,) test AUC of the model's own head applied to each patch token's output in turn.

    For a mean-pooled model this asks: what if the head had read token n instead of the mean?
    """
    if not isinstance(model.pool, MeanPool):
        raise bad_arg("model.pool", "MeanPool (the head must take raw token features)", type(model.pool).__name__,
                      "use a mean-pooled model")
    model.eval()
    device = next(model.parameters()).device
    logits, labels = [], []
    for x, y in loader:
        logits.append(model.head(encode(model, x.to(device))).float().cpu())   # (B, N, classes)
        labels.append(y)
    logits, labels = torch.cat(logits), torch.cat(labels)
    return torch.tensor([evaluate_scores(labels, logits[:, n].softmax(-1), "binary-class").auc
                         for n in range(logits.shape[1])])


def weight_stats(weights: Tensor, gland: Tensor) -> dict:
    """Share of (renormalised) weight on gland tubelets, its uniform baseline, effective token count."""
    w = weights / weights.sum(-1, keepdim=True)
    entropy = -(w * w.clamp_min(1e-12).log()).sum(-1)
    return {"gland_share": round((w * gland).sum(-1).mean().item(), 4),
            "gland_base": round(gland.float().mean().item(), 4),
            "eff_tokens": round(entropy.exp().mean().item(), 2)}


@torch.no_grad()
def features(model: ViViT, loader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frozen features over a loader: pooled (M, D), first patch token (M, D), labels (M,)."""
    model.eval()
    device = next(model.parameters()).device
    pooled, patch0, labels = [], [], []
    for x, y in loader:
        out = encode(model, x.to(device))
        pooled.append(model.pool(out).float().cpu())
        patch0.append(out[:, model.pool.num_prefix].float().cpu())
        labels.append(y)
    return torch.cat(pooled).numpy(), torch.cat(patch0).numpy(), torch.cat(labels).numpy()


def probe_auc(train_feats: np.ndarray, y_train: np.ndarray, test_feats: np.ndarray, y_test: np.ndarray) -> float:
    """Test AUC of a logistic regression fitted on frozen train features (fixed C, no selection)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    clf.fit(train_feats, y_train)
    return float(evaluate_scores(y_test, clf.predict_proba(test_feats), "binary-class").auc)


@torch.no_grad()
def misread(model: ViViT, loader) -> dict:
    """A trained model without CLS, read at token 0 with its own head: test AUC, ACC, agreement."""
    if model.pool.num_prefix:
        raise bad_arg("model", "a model without a CLS token", "a CLS model", "misread a mean or attn model")
    right = evaluate(model, loader, "binary-class")
    pool, model.pool = model.pool, FirstToken()
    try:
        wrong = evaluate(model, loader, "binary-class")
    finally:
        model.pool = pool
    agree = float((right["scores"].argmax(1) == wrong["scores"].argmax(1)).mean())
    return {"misread_auc": round(wrong["auc"], 4), "misread_acc": round(wrong["acc"], 4),
            "misread_agree": round(agree, 4)}


def analyse(model: ViViT, data: dict) -> dict:
    """Every extra column of a row: probes, read-out weight statistics, and the misread for mean."""
    tr_pooled, tr_patch0, y_tr = features(model, data["train"])
    te_pooled, te_patch0, y_te = features(model, data["test"])
    row = {"probe_pooled_auc": round(probe_auc(tr_pooled, y_tr, te_pooled, y_te), 4),
           "probe_patch0_auc": round(probe_auc(tr_patch0, y_tr, te_patch0, y_te), 4)}
    x = torch.cat([xb for xb, _ in data["test"]])
    row.update(weight_stats(readout_weights(model, x), gland_tokens(x)))
    row["patch_cos"] = round(patch_similarity(model, x), 4)
    if isinstance(model.pool, MeanPool):
        row.update(misread(model, data["test"]))
        aucs = token_readout_aucs(model, data["test"])
        row.update({"any_token_auc_min": round(aucs.min().item(), 4), "any_token_auc_max": round(aucs.max().item(), 4)})
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--out", default=str(RESULTS / "pooling.csv"))
    args = p.parse_args(argv)
    if len(args.seeds) < 2:
        raise bad_arg("--seeds", "at least 2 seeds (a std needs two)", args.seeds, "e.g. --seeds 0 1 2")
    torch.set_num_threads(1)  # the course machine is shared; one thread per sweep

    cfg = TrainConfig(epochs=args.epochs, lr=args.lr, progress=False)
    extra = {"dataset": "adrenal", "dim": args.dim, "depth": args.depth, "lr": args.lr, **provenance(),
             "command": "python -m vtlib.experiments.pooling"}
    rows = []
    for config in args.configs:
        for seed in args.seeds:  # one seed at a time, so each trained model can be analysed
            data = loaders("adrenal", seed=seed)
            built: list[ViViT] = []
            def build():
                built.append(build_model(config, args.dim, args.depth))
                return built[-1]
            row = run(config, build, data, cfg, [seed], extra)[0]
            row.update(analyse(built[-1], data))
            rows.append(row)
            print({k: row[k] for k in ("config", "seed", "best_epoch", "test_auc", "test_acc",
                                       "probe_pooled_auc", "probe_patch0_auc", "gland_share", "eff_tokens")
                   } | {k: v for k, v in row.items() if k.startswith("misread")}, flush=True)
    out = write_csv(rows, args.out)

    summary = summarise(rows, SUMMARY_KEYS)
    mis = [{"config": "mean_read_token0", "test_auc": r["misread_auc"], "test_acc": r["misread_acc"],
            "agree": r["misread_agree"], "any_token_auc_min": r["any_token_auc_min"],
            "any_token_auc_max": r["any_token_auc_max"]} for r in rows if "misread_auc" in r]
    if mis:
        summary += summarise(mis, ("test_auc", "test_acc", "agree", "any_token_auc_min", "any_token_auc_max"))
    for r in summary:
        r.update({"epochs": args.epochs, "seeds": " ".join(map(str, args.seeds)), "device": rows[0]["device"]})
    summary_path = write_csv(summary, out.with_name(out.stem + "_summary.csv"))
    print(f"wrote {out} and {summary_path}")
    for r in summary:
        print(r)


if __name__ == "__main__":
    main()
