"""vtlib.metrics agrees numerically with medmnist's official Evaluator."""
import numpy as np
import pytest
from medmnist.evaluator import Evaluator, getACC, getAUC

from vtlib.data import data_root, load_arrays
from vtlib.errors import VtlibError
from vtlib.metrics import acc_score, auc_score, evaluate_scores, majority_baseline


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_binary_matches_medmnist_evaluator_on_real_labels():
    _, labels = load_arrays("adrenal", "test")
    rng = np.random.default_rng(0)
    scores = softmax(rng.normal(size=(len(labels), 2)) + labels[:, None] * [0, 0.8])
    ours = evaluate_scores(labels, scores, "binary-class")
    theirs = Evaluator("adrenalmnist3d", "test", root=str(data_root())).evaluate(scores)
    assert ours.auc == pytest.approx(theirs.AUC, abs=1e-12)
    assert ours.acc == pytest.approx(theirs.ACC, abs=1e-12)
    assert 0.5 < ours.auc < 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multiclass_matches_medmnist(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 11, size=300)
    scores = softmax(rng.normal(size=(300, 11)) + np.eye(11)[y])
    assert auc_score(y, scores, "multi-class") == pytest.approx(getAUC(y[:, None], scores, "multi-class"))
    assert acc_score(y, scores, "multi-class") == pytest.approx(getACC(y[:, None], scores, "multi-class"))


def test_binary_1d_scores_match():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=100)
    p = rng.random(100)
    assert auc_score(y, p, "binary-class") == pytest.approx(getAUC(y, p, "binary-class"))
    assert acc_score(y, p, "binary-class") == pytest.approx(getACC(y, p, "binary-class"))


def test_majority_baseline_on_adrenal():
    _, ytr = load_arrays("adrenal", "train")
    _, yte = load_arrays("adrenal", "test")
    m = majority_baseline(ytr, yte, num_classes=2, task="binary-class")
    assert m.auc == 0.5
    assert m.acc == pytest.approx((yte == 0).mean())   # 229 / 298 normal glands


@pytest.mark.parametrize("call, arg", [
    (lambda: evaluate_scores([0, 1], np.ones((2, 2)) / 2, "binary"), "task"),
    (lambda: evaluate_scores([0, 1, 1], np.ones((2, 2)) / 2, "binary-class"), "y_score"),
    (lambda: evaluate_scores([0, 3], np.ones((2, 2)) / 2, "binary-class"), "y_true"),
    (lambda: evaluate_scores([], np.ones((0, 2)), "binary-class"), "y_true"),
])
def test_bad_inputs(call, arg):
    with pytest.raises(VtlibError, match=f"^{arg}: expected"):
        call()


# --------------------------------------------------------------------- inputs that used to give nonsense
Y = np.array([0, 1, 1, 0, 1])
P = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3], [0.5, 0.5]])


@pytest.mark.parametrize("fn", [auc_score, acc_score])
def test_logits_are_refused(fn):
    logits = np.log(P) + 3.0
    with pytest.raises(VtlibError, match="look like logits"):
        fn(Y, logits, "binary-class")


@pytest.mark.parametrize("fn", [auc_score, acc_score])
def test_rows_that_do_not_sum_to_one_are_refused(fn):
    with pytest.raises(VtlibError, match="sum to 1"):
        fn(Y, P * 0.5, "binary-class")


@pytest.mark.parametrize("labels", [Y + 0.3, Y.astype(bool), np.array(["0", "1", "1", "0", "1"])])
def test_non_integer_labels_are_refused(labels):
    with pytest.raises(VtlibError, match="y_true"):
        auc_score(labels, P, "binary-class")


def test_swapped_arguments_are_refused():
    with pytest.raises(VtlibError, match="y_true"):
        auc_score(P[:, 1], Y, "binary-class")


def test_nan_scores_are_refused():
    bad = P.copy()
    bad[0] = np.nan
    with pytest.raises(VtlibError, match="NaN"):
        evaluate_scores(Y, bad, "binary-class")


def test_whole_number_float_labels_still_work():
    assert auc_score(Y.astype(np.float32), P, "binary-class") == auc_score(Y, P, "binary-class")
