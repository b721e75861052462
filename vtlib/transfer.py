"""Transfer by fine-tuning: start from a trained model and train only part of it (notebook 12).

A pre-trained video model is a stack: tokenizer -> blocks -> tail (final norm, pooling, head). The
three classic ways to reuse it differ only in which of those parameters keep learning:

    approach   trained                          cost of a step (backward stops at the first trainable layer)
    probe      the tail (norm, pool, head)      forward of the whole model, backward of the tail only
    partial    the last ``blocks`` blocks + tail  forward + backward of the last blocks
    full       everything                       as training from scratch

Freezing has two halves, and forgetting the second is a classic bug: ``requires_grad = False`` stops
the weights from changing, but a frozen block left in train mode still applies dropout and stochastic
depth (and a BatchNorm would still update its statistics), so the features the head learns from are
noisier than those it will see at test time. :class:`Finetune` keeps every frozen part in eval mode
whatever ``.train()`` says. (Approach 2 of notebook 12, frozen features stored once, is
``vtlib.features``.)

    model = VideoMAEClassifier.from_pretrained(mae)
    net = Finetune(model, approach="partial", blocks=1)  # then fit(net, ...) as usual
"""
from __future__ import annotations

from torch import Tensor, nn

from vtlib.errors import bad_arg, check_choice, check_positive_int

APPROACHES = ("probe", "partial", "full")
# the modules that run after the last block, by their last name part (vtlib's ViViT, TimeSformer, VideoMAE)
TAIL = ("norm", "pool", "fc_norm", "head")
# parameters of a tail module that enter BEFORE the blocks: a CLS pool's token is prepended to the
# input tokens, so training it would mean back-propagating through every frozen block
INPUT_SIDE = ("token",)


def block_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The model's one stack of transformer blocks: (name, ModuleList), e.g. ("encoder.blocks", ...)."""
    found = [(n, m) for n, m in model.named_modules() if n.split(".")[-1] == "blocks" and isinstance(m, nn.ModuleList)]
    if len(found) != 1:
        raise bad_arg("model", "a model with exactly one ModuleList named 'blocks'",
                      f"{type(model).__name__} with {[n for n, _ in found]}",
                      "freeze it by hand: set requires_grad on the parameters you want to train")
    return found[0]


def tail_names(model: nn.Module) -> list[str]:
    """Top-level modules after the blocks (names in ``TAIL``, found at any depth outside the blocks)."""
    blocks, _ = block_list(model)
    names = [n for n, m in model.named_modules()
             if n.split(".")[-1] in TAIL and not n.startswith(blocks + ".") and any(True for _ in m.parameters())]
    return [n for n in names if not any(n.startswith(o + ".") for o in names)]   # outermost only


def trainable_names(model: nn.Module, approach: str, blocks: int = 1) -> list[str]:
    """Module prefixes that keep learning under ``approach`` (``blocks``: how many last blocks, for partial)."""
    check_choice("approach", approach, APPROACHES)
    if approach == "full":
        return [""]
    name, stack = block_list(model)
    tail = tail_names(model)
    if "head" not in {t.split(".")[-1] for t in tail}:
        raise bad_arg("model", "a classifier with a module named 'head'", type(model).__name__,
                      "add a head (nn.Linear) or freeze by hand")
    if approach == "probe":
        return tail
    check_positive_int("blocks", blocks)
    if blocks > len(stack):
        raise bad_arg("blocks", f"at most the model's {len(stack)} blocks", blocks,
                      f"pass blocks <= {len(stack)}, or approach='full'")
    return [f"{name}.{i}" for i in range(len(stack) - blocks, len(stack))] + tail


def _under(name: str, prefixes: list[str]) -> bool:
    return any(p == "" or name == p or name.startswith(p + ".") for p in prefixes)


class Finetune(nn.Module):
    """``model`` with only the parameters of ``approach`` trainable; frozen parts stay in eval mode.

    x (B, C, T, H, W) -> model(x) (B, K). The wrapped model is ``.model`` (its weights are shared,
    not copied); ``.trained`` lists the trained module prefixes and ``.frozen`` the frozen modules.
    For probe and partial a CLS pool's token stays frozen too (``INPUT_SIDE``): it is an input of block 0.
    """

    def __init__(self, model: nn.Module, *, approach: str = "full", blocks: int = 1):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise bad_arg("model", "an nn.Module", type(model).__name__, "pass a vtlib model")
        self.model, self.approach = model, approach
        self.trained = trainable_names(model, approach, blocks)
        for n, p in model.named_parameters():
            input_side = approach != "full" and n.split(".")[-1] in INPUT_SIDE
            p.requires_grad_(_under(n, self.trained) and not input_side)
        # the largest modules whose parameters are all frozen (blocks keep their DropPath inside)
        self.frozen = [n for n, m in model.named_modules()
                       if n and any(True for _ in m.parameters())
                       and not any(p.requires_grad for p in m.parameters())]
        self.frozen = [n for n in self.frozen if not any(n.startswith(o + ".") for o in self.frozen)]
        self.train(model.training)

    def train(self, mode: bool = True) -> "Finetune":
        super().train(mode)
        modules = dict(self.model.named_modules())
        for n in self.frozen:
            modules[n].eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def extra_repr(self) -> str:
        return f"approach={self.approach!r}, trained={self.trained}"


def count_trainable(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    ps = list(model.parameters())
    return sum(p.numel() for p in ps if p.requires_grad), sum(p.numel() for p in ps)
