"""Projections: PCA equals scikit-learn's, t-SNE/UMAP seeded, trustworthiness, alignment, export."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from sklearn.neighbors import KNeighborsClassifier

from lecture_reference import PRINTED_PCA, train_lecture
from netxray.projection import Projection, Projector, align, project

FAST = {"n_iter": 100, "early_exaggeration_iter": 100}  # short optimisation for tests


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(n_samples=300, n_features=12, centers=3, random_state=0)
    return X, y


def lecture_hidden() -> np.ndarray:
    """The lecture's NumPy 2-10-2 ReLU MLP, trained as in seed_demo.py; its hidden states."""
    lec = train_lecture(300)
    return np.maximum(0, lec.X_train @ lec.W1 + lec.B1)


def test_pca_reproduces_the_lectures_printed_numbers() -> None:
    proj = project(lecture_hidden(), "pca")
    np.testing.assert_allclose(proj.coords[:5], PRINTED_PCA, rtol=0, atol=5e-8)


def test_pca_equals_sklearn_exactly(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    ref = PCA(n_components=2)
    expected = ref.fit_transform(X)
    proj = project(X, "pca")
    np.testing.assert_array_equal(proj.coords, expected)
    np.testing.assert_array_equal(proj.explained_variance_ratio, ref.explained_variance_ratio_)
    assert proj.method == "pca" and proj.params["n_components"] == 2
    assert proj.coords.shape == (300, 2)


def test_tensor_and_conv_inputs_are_flattened() -> None:
    H = torch.randn(50, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    a = project(H, "pca").coords
    b = PCA(n_components=2).fit_transform(H.reshape(50, 12).numpy())
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("H", "match"),
    [
        (np.array([[1.0, np.nan], [2.0, 3.0], [0.0, 1.0]]), "NaN"),
        (np.zeros((0, 4)), "empty"),
        (np.zeros(5), "shape"),
    ],
)
def test_bad_inputs_raise_clear_errors(H: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        project(H)


def test_unknown_method_and_too_many_components() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        project(np.eye(4), "isomap")
    with pytest.raises(ValueError, match="at most"):
        project(np.random.default_rng(0).normal(size=(10, 3)), "pca", n_components=4)


def test_trustworthiness_is_sklearns(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    proj = project(X, "pca")
    assert proj.trustworthiness == pytest.approx(
        trustworthiness(X, proj.coords, n_neighbors=5), abs=1e-12
    )


def test_trustworthiness_of_planar_data_is_one() -> None:
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    X = rng.normal(size=(200, 2)) * [3.0, 1.0] @ Q[:2]  # lies in a 2-D plane of R^10
    assert project(X, "pca").trustworthiness == pytest.approx(1.0, abs=1e-12)


def test_trustworthiness_on_a_sample_for_large_n() -> None:
    X, _ = make_blobs(n_samples=2600, n_features=8, centers=4, random_state=2)
    proj = project(X, "pca")
    full = trustworthiness(X, proj.coords, n_neighbors=5)
    assert proj.params["n_samples"] == 2600
    assert proj.trustworthiness == pytest.approx(full, abs=0.02)
    assert project(X, "pca").trustworthiness == proj.trustworthiness  # seeded


def test_tsne_is_seeded_and_separates_clusters(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = blobs
    X, y = X[:150], y[:150]
    a = project(X, "tsne", random_state=3, **FAST)
    b = project(X, "tsne", random_state=3, **FAST)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert a.params["negative_gradient_method"] == "bh"
    assert a.explained_variance_ratio is None
    assert a.trustworthiness is not None and a.trustworthiness > 0.9
    knn = KNeighborsClassifier(5).fit(a.coords, y)
    assert knn.score(a.coords, y) > 0.95


def test_tsne_lowers_perplexity_for_small_n() -> None:
    X = np.random.default_rng(0).normal(size=(31, 5))
    proj = project(X, "tsne", **FAST)
    assert proj.params["n_iter"] == 100
    assert proj.params["perplexity"] == pytest.approx(10.0)


def test_transform_places_new_points_in_the_fitted_space() -> None:
    X, y = make_blobs(n_samples=200, n_features=10, centers=3, random_state=4)
    fit, new = X[:150], X[150:]
    pca = project(fit, "pca")
    np.testing.assert_allclose(
        pca.transform(new), PCA(n_components=2).fit(fit).transform(new), rtol=1e-12, atol=1e-12
    )
    tsne = project(fit, "tsne", **FAST)
    placed = tsne.transform(new)
    assert placed.shape == (50, 2)
    knn = KNeighborsClassifier(5).fit(tsne.coords, y[:150])
    assert knn.score(placed, y[150:]) > 0.95


def test_projector_shares_a_basis_across_checkpoints() -> None:
    rng = np.random.default_rng(0)
    H1, H2 = rng.normal(size=(60, 6)), rng.normal(size=(60, 6))
    p = Projector("pca").fit(H1)
    np.testing.assert_allclose(p.transform(H2), PCA(2).fit(H1).transform(H2), atol=1e-12)
    with pytest.raises(ValueError, match="features"):
        p.transform(rng.normal(size=(5, 7)))
    with pytest.raises(RuntimeError, match="not fitted"):
        Projector("pca").transform(H1)


def test_save_load_round_trip_and_transform_needs_a_fit(tmp_path, blobs) -> None:
    X, _ = blobs
    proj = project(X, "pca")
    path = proj.save(tmp_path / "p.npz")
    back = Projection.load(path)
    np.testing.assert_array_equal(back.coords, proj.coords)
    np.testing.assert_array_equal(back.explained_variance_ratio, proj.explained_variance_ratio)
    assert back.params == proj.params and back.trustworthiness == proj.trustworthiness
    with pytest.raises(RuntimeError, match="refit"):
        back.transform(X)
    d = proj.to_dict()
    assert set(d) == {"coords", "method", "params", "explained_variance_ratio", "trustworthiness"}


def test_to_csv_and_npz(tmp_path, blobs) -> None:
    X, y = blobs
    proj = project(X, "pca")
    path = proj.to_csv(tmp_path / "p.csv", labels=y, split=np.where(y > 0, "a,b", "c"))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["index", "pca1", "pca2", "label", "split"]
    got = np.array([[float(r["pca1"]), float(r["pca2"])] for r in rows])
    np.testing.assert_array_equal(got, proj.coords)  # repr() round-trips floats exactly
    assert [int(r["label"]) for r in rows] == y.tolist()
    assert rows[0]["split"] == ("a,b" if y[0] > 0 else "c")
    npz = proj.to_npz(tmp_path / "p2.npz", labels=torch.as_tensor(y))
    with np.load(npz) as data:
        np.testing.assert_array_equal(data["coords"], proj.coords)
        np.testing.assert_array_equal(data["label"], y)
    with pytest.raises(ValueError, match="one value per sample"):
        proj.to_csv(tmp_path / "bad.csv", labels=y[:-1])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    scale=st.floats(0.1, 10.0),
    reflect=st.booleans(),
    k=st.integers(2, 3),
)
def test_align_undoes_rotation_reflection_shift(
    seed: int, scale: float, reflect: bool, k: int
) -> None:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(30, k))
    Q, _ = np.linalg.qr(rng.normal(size=(k, k)))
    if reflect:
        Q[:, 0] *= -1
    B = A @ Q + rng.normal(size=k) * 5
    np.testing.assert_allclose(align(A, B), A, atol=1e-9)
    np.testing.assert_allclose(align(A, scale * B, scale=True), A, atol=1e-8)


def test_align_rejects_mismatched_frames() -> None:
    with pytest.raises(ValueError, match="same shape"):
        align(np.zeros((5, 2)), np.zeros((4, 2)))


def test_umap_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(ImportError, match=r"netxray\[umap\]"):
        project(np.random.default_rng(0).normal(size=(20, 3)), "umap")


@pytest.mark.slow
def test_umap_is_seeded_and_transforms(blobs, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = blobs
    a = project(X[:200], "umap", n_neighbors=10)
    b = project(X[:200], "umap", n_neighbors=10)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert a.params["n_neighbors"] == 10 and a.trustworthiness > 0.85
    knn = KNeighborsClassifier(5).fit(a.coords, y[:200])
    assert knn.score(a.transform(X[200:]), y[200:]) > 0.95


def test_pca_of_a_constant_layer_is_zero_without_warnings():
    # every unit dead: zero variance, so nothing to explain (and no 0/0 warning leaks out)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = project(np.zeros((30, 5)), "pca")
    np.testing.assert_array_equal(p.explained_variance_ratio, [0.0, 0.0])
    np.testing.assert_array_equal(p.coords, np.zeros((30, 2)))


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_trustworthiness_of_a_layer_with_no_variance_is_undefined(method):
    # every sample the same point: every distance ties, so no neighbour is nearer than another
    # (sklearn would still score the map 0.997); one differing sample makes it defined again
    H = np.full((40, 5), 0.3)
    p = project(H, method, progress=False)
    assert np.isnan(p.trustworthiness) and "no variance" in p.params["trustworthiness_note"]
    H[0, 0] = 1.0
    q = project(H, method, progress=False)
    assert q.trustworthiness == pytest.approx(trustworthiness(H, q.coords, n_neighbors=5))
    assert "trustworthiness_note" not in q.params


def test_bfloat16_tensors_are_projected_as_float32():
    H = torch.randn(60, 6, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    p = project(H, "pca")
    np.testing.assert_array_equal(p.coords, PCA(n_components=2).fit_transform(H.float().numpy()))
