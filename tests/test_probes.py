"""Activation maps, linear probes and CKA against hand computations and published formulas."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from netxray.probes import (
    ActivationMap,
    CKAMatrix,
    ProbeResult,
    activation_map,
    cka,
    cka_matrix,
    linear_probes,
    selectivity_index,
)

# ---------------------------------------------------------------- reference CKA in float64


def ref_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """Gretton's biased HSIC: tr(K H L H) / (n - 1)^2 with the centering matrix H."""
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(K @ H @ L @ H)) / (n - 1) ** 2


def ref_hsic_unbiased(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al. (2012), eq. 5: the unbiased HSIC estimator on zero-diagonal kernels."""
    n = K.shape[0]
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(n)
    return float(
        np.trace(Kt @ Lt)
        + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
        - 2 / (n - 2) * (one @ Kt @ Lt @ one)
    ) / (n * (n - 3))


def ref_cka(A: np.ndarray, B: np.ndarray, debiased: bool = False) -> float:
    A = A - A.mean(0)
    B = B - B.mean(0)
    K, L = A @ A.T, B @ B.T
    h = ref_hsic_unbiased if debiased else ref_hsic
    return h(K, L) / np.sqrt(h(K, K) * h(L, L))


def u_statistic_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """HSIC as the U-statistic over distinct ordered 4-tuples (Song et al. 2012, eq. 4)."""
    n = K.shape[0]
    total, count = 0.0, 0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += K[i, j] * L[i, j] + K[i, j] * L[q, r] - 2 * K[i, j] * L[i, q]
        count += 1
    return total / count


# ---------------------------------------------------------------- CKA


def test_cka_of_a_representation_with_itself_is_one() -> None:
    X = np.random.default_rng(0).normal(size=(40, 7))
    assert cka(X, X) == pytest.approx(1.0, abs=1e-12)
    assert cka(X, X, debiased=True) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize(("n", "d1", "d2"), [(50, 8, 5), (30, 120, 90), (12, 3, 40)])
def test_cka_matches_the_published_formula(debiased: bool, n: int, d1: int, d2: int) -> None:
    rng = np.random.default_rng(n + d1)
    A = rng.normal(size=(n, d1)) + 3.0  # uncentred on purpose
    B = np.tanh(A[:, : min(d1, d2)] @ rng.normal(size=(min(d1, d2), d2))) + rng.normal(size=(n, d2))
    assert cka(A, B, debiased) == pytest.approx(ref_cka(A, B, debiased), rel=1e-10, abs=1e-12)


def test_debiased_hsic_formula_is_the_u_statistic() -> None:
    """Check the closed form used as reference against the U-statistic definition."""
    rng = np.random.default_rng(3)
    A, B = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    A, B = A - A.mean(0), B - B.mean(0)
    K, L = A @ A.T, B @ B.T
    assert ref_hsic_unbiased(K, L) == pytest.approx(u_statistic_hsic(K, L), rel=1e-10)
    expected = u_statistic_hsic(K, L) / np.sqrt(u_statistic_hsic(K, K) * u_statistic_hsic(L, L))
    assert cka(A, B, debiased=True) == pytest.approx(expected, rel=1e-10)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3), debiased=st.booleans())
def test_cka_invariant_to_orthogonal_maps_and_isotropic_scaling(
    seed: int, scale: float, debiased: bool
) -> None:
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(25, 6)), rng.normal(size=(25, 4))
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    base = cka(A, B, debiased)
    assert cka(scale * A @ Q + 7.0, B, debiased) == pytest.approx(base, rel=1e-8, abs=1e-10)


def test_cka_is_not_invariant_to_anisotropic_scaling() -> None:
    rng = np.random.default_rng(1)
    A = rng.normal(size=(40, 3))
    assert cka(A, A * [1.0, 10.0, 0.1]) < 0.9


def test_debiased_cka_removes_the_bias_for_unrelated_wide_features() -> None:
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(20, 500)), rng.normal(size=(20, 500))
    assert cka(A, B) > 0.8  # biased CKA is high for independent noise when d >> n
    assert abs(cka(A, B, debiased=True)) < 0.1


def test_cka_accepts_tensors_and_conv_maps() -> None:
    A = torch.randn(16, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    B = torch.randn(16, 5, generator=torch.Generator().manual_seed(1))
    assert cka(A, B) == pytest.approx(
        ref_cka(A.reshape(16, -1).double().numpy(), B.double().numpy())
    )


def test_cka_errors_and_constant_layer() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="same samples"):
        cka(rng.normal(size=(5, 2)), rng.normal(size=(6, 2)))
    with pytest.raises(ValueError, match="at least 4"):
        cka(rng.normal(size=(3, 2)), rng.normal(size=(3, 2)), debiased=True)
    assert np.isnan(cka(np.zeros((10, 3)), rng.normal(size=(10, 2))))


def test_cka_matrix_is_all_pairs(tmp_path) -> None:
    rng = np.random.default_rng(2)
    acts = {
        "a": rng.normal(size=(30, 5)),
        "b": torch.as_tensor(rng.normal(size=(30, 4))),
        "dead": np.zeros((30, 3)),
    }
    acts["c"] = np.maximum(acts["a"] @ rng.normal(size=(5, 6)), 0)
    for debiased in (False, True):
        m = cka_matrix(acts, debiased=debiased)
        assert m.layers == ["a", "b", "dead", "c"] and m.debiased is debiased
        for i, j in itertools.product(range(4), range(4)):
            if "dead" in (m.layers[i], m.layers[j]):
                assert np.isnan(m.values[i, j])
            else:
                want = ref_cka(
                    np.asarray(acts[m.layers[i]]), np.asarray(acts[m.layers[j]]), debiased
                )
                assert m.values[i, j] == pytest.approx(want, rel=1e-10, abs=1e-12)
    back = CKAMatrix.load(m.save(tmp_path / "cka.npz"))
    np.testing.assert_array_equal(back.values, m.values)
    assert back.layers == m.layers


# ---------------------------------------------------------------- linear probes


def test_linear_probes_against_a_manual_cross_validation() -> None:
    rng = np.random.default_rng(0)
    n = 120
    y = np.repeat([0, 1, 2], 40)
    separable = np.eye(3)[y] * 5 + rng.normal(size=(n, 3)) * 0.1
    noise = rng.normal(size=(n, 6))
    res = linear_probes({"separable": separable, "noise": torch.as_tensor(noise)}, y, cv=4)
    assert res.layers == ["separable", "noise"]
    assert res.accuracy["separable"] == 1.0 and res.std["separable"] == 0.0
    assert res.chance == pytest.approx(1 / 3)
    # the same folds, fitted by hand
    folds = StratifiedKFold(4, shuffle=True, random_state=0).split(noise, y)
    scores = []
    for train, test in folds:
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        scores.append(probe.fit(noise[train], y[train]).score(noise[test], y[test]))
    assert res.accuracy["noise"] == pytest.approx(np.mean(scores), abs=1e-12)
    assert res.std["noise"] == pytest.approx(np.std(scores), abs=1e-12)
    assert res.folds["noise"] == pytest.approx(scores, abs=1e-12)
    assert res.accuracy["noise"] < 0.6


def test_chance_is_the_majority_rate_and_one_hot_labels_work() -> None:
    rng = np.random.default_rng(1)
    y = np.array([0] * 30 + [1] * 10)
    res = linear_probes({"x": rng.normal(size=(40, 2))}, np.eye(2)[y], cv=5)
    assert res.chance == pytest.approx(0.75)
    assert res.n_samples == 40 and res.cv == 5


def test_probe_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="fewer than cv"):
        linear_probes({"x": rng.normal(size=(12, 2))}, [0] * 10 + [1] * 2, cv=5)
    with pytest.raises(ValueError, match="single class"):
        linear_probes({"x": rng.normal(size=(12, 2))}, [0] * 12)
    with pytest.raises(ValueError, match="same data"):
        linear_probes({"x": rng.normal(size=(12, 2)), "z": rng.normal(size=(10, 2))}, [0, 1] * 6)
    with pytest.raises(TypeError, match="dict"):
        linear_probes({}, [0, 1])


def test_probe_result_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 20)
    res = linear_probes({"x": rng.normal(size=(40, 2)) + y[:, None]}, y)
    back = ProbeResult.load(res.save(tmp_path / "probe.npz"))
    assert back == res


# ---------------------------------------------------------------- activation maps


def test_selectivity_index_by_hand() -> None:
    means = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 2.0], [2.0, 0.0, 2.0]])
    # unit 0: top 3, rest (1 + 2) / 2 = 1.5 -> (3 - 1.5) / 4.5; unit 1 silent; unit 2 uniform
    np.testing.assert_allclose(selectivity_index(means), [1.5 / 4.5, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(selectivity_index(np.array([[0.0], [4.0]])), [1.0])


def test_activation_map_by_hand() -> None:
    rng = np.random.default_rng(0)
    n = 60
    y = rng.integers(0, 3, size=n)
    base1, base2 = rng.normal(size=n), rng.normal(size=n)
    # units 0, 2, 4 follow base1; units 1, 3 follow base2; unit 5 is dead
    H = np.column_stack(
        [
            base1,
            base2,
            2 * base1 + 0.01 * rng.normal(size=n),
            -base2 * 0 + base2 * 3,
            base1 + 0.02 * rng.normal(size=n),
            np.zeros(n),
        ]
    )
    H = np.maximum(H, 0)
    amap = activation_map(torch.as_tensor(H), y)
    assert isinstance(amap, ActivationMap)
    assert (np.diff(amap.labels) >= 0).all()  # grouped by class
    np.testing.assert_array_equal(amap.labels, y[amap.sample_order])
    np.testing.assert_array_equal(amap.values, H[amap.sample_order][:, amap.unit_order])
    assert sorted(amap.unit_order.tolist()) == list(range(6))
    pos = {u: i for i, u in enumerate(amap.unit_order.tolist())}
    g1 = sorted(pos[u] for u in (0, 2, 4))
    g2 = sorted(pos[u] for u in (1, 3))
    assert g1[-1] - g1[0] == 2 and g2[-1] - g2[0] == 1  # each group contiguous
    for k in range(3):
        np.testing.assert_allclose(amap.class_means[k], H[y == k].mean(0), atol=1e-12)
    np.testing.assert_allclose(amap.selectivity, selectivity_index(amap.class_means))
    assert amap.selectivity[5] == 0.0
    np.testing.assert_array_equal(amap.preferred_class, amap.class_means.argmax(0))
    # within a class the original order is kept
    for k in range(3):
        rows = amap.sample_order[amap.labels == k]
        assert (np.diff(rows) > 0).all()


def test_activation_map_without_clustering_and_errors() -> None:
    H = np.arange(12.0).reshape(4, 3)
    amap = activation_map(H, [1, 0, 1, 0], cluster_units=False)
    np.testing.assert_array_equal(amap.unit_order, [0, 1, 2])
    np.testing.assert_array_equal(amap.sample_order, [1, 3, 0, 2])
    with pytest.raises(ValueError, match="one per sample"):
        activation_map(H, [0, 1])


def test_probes_on_token_rows_with_sequence_labels_say_how_to_pool():
    from netxray.capture import Activations

    acts = Activations(layers={"h": torch.randn(7, 3)}, outputs=torch.randn(7, 2),
                       targets=None, token_index=torch.zeros(7, 2, dtype=torch.long),
                       token_layers=("h",), token_outputs=True)
    with pytest.raises(ValueError, match="pool='mean'"):
        linear_probes(acts, np.array([0, 1, 0]), cv=2)


class _Context(torch.nn.Module):
    """Each token's hidden state mixes in its sentence's mean embedding (as attention does),
    so the tokens of one sentence resemble each other."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(50, 64)
        self.ctx = torch.nn.Linear(64, 64)
        self.act = torch.nn.Tanh()
        self.head = torch.nn.Linear(64, 2)

    def forward(self, input_ids, attention_mask):
        e = self.emb(input_ids)
        m = attention_mask[..., None].float()
        c = (e * m).sum(1, keepdim=True) / m.sum(1, keepdim=True)
        h = self.act(self.ctx(e + 3 * c))
        return self.head((h * m).sum(1) / m.sum(1))


def test_per_token_probes_keep_each_sentence_in_one_fold() -> None:
    """Labels drawn at random per sentence carry nothing to decode: split token by token, a
    probe learns to recognise the sentences and scores far above chance."""
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score

    import netxray

    n, length = 80, 12
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 50, (n, length), generator=g)
    lens = torch.randint(6, length + 1, (n,), generator=g)
    mask = (torch.arange(length)[None] < lens[:, None]).long()
    y_seq = torch.randint(0, 2, (n,), generator=g).numpy()
    acts = netxray.activations(_Context().eval(), {"input_ids": ids * mask,
                                                   "attention_mask": mask}, layers=["act"])
    sentence = acts.token_index[:, 0].numpy()
    y = y_seq[sentence]
    res = linear_probes(acts, y, cv=5)
    # the reference: scikit-learn with whole sentences per fold
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    ref = cross_val_score(probe, acts.flat("act"), y, groups=sentence,
                          cv=StratifiedGroupKFold(5, shuffle=True, random_state=0))
    assert res.folds["act"] == pytest.approx(list(ref), abs=1e-12)
    assert res.n_groups == n and res.n_samples == len(y) == int(lens.sum())
    assert res.accuracy["act"] < res.chance + 0.05  # nothing to decode: chance, not a leak
    # the same groups given by hand, on plain arrays
    by_hand = linear_probes({"act": acts.flat("act")}, y, cv=5, groups=sentence)
    assert by_hand.folds == res.folds and by_hand.n_groups == n
    assert linear_probes({"act": acts.flat("act")}, y, cv=5).n_groups == 0


def test_grouped_probe_errors() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 2)), np.array([0, 1] * 6)
    with pytest.raises(ValueError, match="3 groups .*fewer than cv=5"):
        linear_probes({"x": X}, y, cv=5, groups=np.repeat([0, 1, 2], 4))
    with pytest.raises(ValueError, match="class 1 occurs in 2 groups"):
        linear_probes({"x": X}, [0] * 8 + [1] * 4, cv=3, groups=np.repeat([0, 1, 2, 3, 4, 5], 2))
    with pytest.raises(ValueError, match="groups has 5 entries"):
        linear_probes({"x": X}, y, cv=2, groups=np.arange(5))
