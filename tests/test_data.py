import numpy as np
import pytest
from sklearn import datasets as skd

from netxray import data


@pytest.mark.parametrize("name", list(data.TOY))
def test_toy_sets_are_seeded_balanced_and_2d(name):
    a = data.load(name, n_samples=200, noise=0.1, seed=3)
    b = data.load(name, n_samples=200, noise=0.1, seed=3)
    c = data.load(name, n_samples=200, noise=0.1, seed=4)
    assert a.X.shape == (200, 2) and a.y.shape == (200,)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)
    counts = np.bincount(a.y)
    assert counts.min() >= 0.35 * 200 / len(counts)


def test_moons_is_sklearn_make_moons():
    X, y = skd.make_moons(n_samples=400, noise=0.25, random_state=5)
    d = data.moons(400, 0.25, 5)
    np.testing.assert_array_equal(d.X, X)
    np.testing.assert_array_equal(d.y, y)


def test_xor_labels_follow_the_quadrant_without_noise():
    d = data.xor(n_samples=500, noise=0.0, seed=1)
    np.testing.assert_array_equal(d.y, (d.X[:, 0] * d.X[:, 1] > 0).astype(int))


def test_bundled_sets_match_sklearn():
    d = data.digits()
    ref = skd.load_digits()
    np.testing.assert_allclose(d.X * 16, ref.data)
    assert d.image_shape == (8, 8) and d.n_classes == 10
    for name, loader in [("iris", skd.load_iris), ("wine", skd.load_wine),
                         ("breast_cancer", skd.load_breast_cancer)]:
        d = data.load(name)
        ref = loader()
        np.testing.assert_array_equal(d.X, ref.data)
        np.testing.assert_array_equal(d.y, ref.target)
        assert d.feature_names == tuple(ref.feature_names)


def test_split_is_the_lectures_train_test_split():
    from sklearn.model_selection import train_test_split

    d = data.moons(400, 0.25, 5)
    Xtr, Xte, ytr, yte = train_test_split(d.X, d.y, test_size=0.3, random_state=5)
    tr, te = d.split(0.3, 5)
    np.testing.assert_array_equal(tr.X, Xtr)
    np.testing.assert_array_equal(te.y, yte)


def test_standardize_uses_training_statistics():
    d = data.wine()
    tr, te = d.split(0.3, 0)
    str_, ste = data.standardize(tr, te)
    np.testing.assert_allclose(str_.X.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(str_.X.std(0), 1, atol=1e-12)
    np.testing.assert_allclose(ste.X, (te.X - tr.X.mean(0)) / tr.X.std(0))


def test_csv_loading_and_errors(tmp_path):
    p = tmp_path / "ok.csv"
    p.write_text("a,b,label\n1,2,cat\n3,4,dog\n5,6,cat\n")
    d = data.load_csv(p, label="label")
    np.testing.assert_array_equal(d.X, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(d.y, [0, 1, 0])
    assert d.class_names == ("cat", "dog") and d.feature_names == ("a", "b")

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,y\n1,2,0\n3,x,1\n")
    with pytest.raises(ValueError, match=r"row 3, column 'b': 'x' is not a number"):
        data.load_csv(bad)
    nan = tmp_path / "nan.csv"
    nan.write_text("a,b,y\n1,nan,0\n")
    with pytest.raises(ValueError, match=r"row 2, column 'b'.*not finite"):
        data.load_csv(nan)
    with pytest.raises(ValueError, match="no label column 'target'"):
        data.load_csv(p, label="target")
    short = tmp_path / "short.csv"
    short.write_text("a,b,y\n1,2\n")
    with pytest.raises(ValueError, match="row 2: 2 cells"):
        data.load_csv(short)
    missing = tmp_path / "missing.csv"
    missing.write_text("a,y\n1,\n")
    with pytest.raises(ValueError, match="label is missing"):
        data.load_csv(missing)


def _write_csv(path, labels, blank_after=None):
    """A CSV with features (i, 2i) and the label cells as given; a blank line after row
    ``blank_after`` (0-based) so that file row numbers differ from sample indices."""
    lines = ["a,b,label"]
    for i, lab in enumerate(labels):
        lines.append(f"{i},{2 * i},{lab}")
        if i == blank_after:
            lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_number_labels_are_compared_as_numbers_as_in_an_npz(tmp_path):
    values = [0.0, 1.0, 2.0, 10.0, 3.0, 2.0, 10.0, 9.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    csv = data.load_csv(_write_csv(tmp_path / "f.csv", [f"{v:.1f}" for v in values]))
    expected = [int(v) for v in values]  # 2.0 is class 2, 10.0 class 10 (not text order)
    np.testing.assert_array_equal(csv.y, expected)
    assert csv.class_names == tuple(str(c) for c in range(11))
    np.savez(tmp_path / "f.npz", X=np.zeros((len(values), 2)), y=np.array(values))
    np.testing.assert_array_equal(data.load_npz(tmp_path / "f.npz").y, csv.y)
    # ints with one 1.0 among them: two classes, not three
    mixed = data.load_csv(_write_csv(tmp_path / "m.csv", ["0", "1", "1.0", "0"]))
    np.testing.assert_array_equal(mixed.y, [0, 1, 1, 0])
    assert mixed.n_classes == 2


@pytest.mark.parametrize(("cells", "words"), [
    (["0", "1", "nan", "1"], r"row 5, column 'label': the label 'nan' is not a class"),
    (["0", "1", "1", "inf"], r"row 6, column 'label': the label 'inf' is not a class"),
    (["0", "1", "", "1"], r"row 5, column 'label': the label is missing"),
    (["0", "1", "1.5", "1"], r"row 5, column 'label': the label '1.5' is not a whole number"),
    (["0", "1", "-1", "1"], r"row 5, column 'label': the label '-1' is negative"),
    (["0", "1", "cat", "1"], r"labels mix numbers \(row 2: '0'\) and names \(row 5: 'cat'\)"),
])
def test_csv_labels_that_are_not_classes_are_refused_naming_the_row(tmp_path, cells, words):
    path = _write_csv(tmp_path / "bad.csv", cells, blank_after=1)  # sample 2 is on row 5
    with pytest.raises(ValueError, match=words):
        data.load_csv(path)


@pytest.mark.parametrize(("y", "words"), [
    ([0.0, 1.0, np.nan], r"label y\[2\] is nan, not a class"),
    ([0.0, 1.5, 1.0], r"label y\[1\] is 1.5, not a class"),
])
def test_npz_labels_that_are_not_classes_are_refused_naming_the_index(tmp_path, y, words):
    np.savez(tmp_path / "y.npz", X=np.zeros((3, 2)), y=np.array(y))
    with pytest.raises(ValueError, match=words):
        data.load_npz(tmp_path / "y.npz")


def test_csv_without_a_header_is_refused_not_read_one_row_short(tmp_path):
    path = tmp_path / "noheader.csv"
    path.write_text("0.5,0.25,1\n0.1,0.2,0\n0.3,0.4,1\n")
    with pytest.raises(ValueError, match="is all numbers, so it is data, not a header"):
        data.load_csv(path)
    header = tmp_path / "header.csv"  # names that merely contain digits are a header
    header.write_text("x1,x2,y\n0.5,0.25,1\n0.1,0.2,0\n")
    assert len(data.load_csv(header)) == 2


def test_npz_loading_and_errors(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, X=np.arange(6.0).reshape(3, 2), y=np.array([0, 1, 1]))
    d = data.load(str(p))
    assert d.X.shape == (3, 2) and list(d.y) == [0, 1, 1]
    q = tmp_path / "noy.npz"
    np.savez(q, X=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"lacks array\(s\) \['y'\]"):
        data.load_npz(q)
    r = tmp_path / "nan.npz"
    np.savez(r, X=np.array([[1.0, np.nan]]), y=np.array([0]))
    with pytest.raises(ValueError, match=r"X\[0, 1\] is nan"):
        data.load_npz(r)
    s = tmp_path / "obj.npz"
    np.savez(s, X=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    with pytest.raises(ValueError, match="never unpickles"):
        data.load_npz(s)
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load("mnist")


def test_npz_keeps_the_stored_shape_of_X_for_the_model(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 1, 6, 5))
    np.savez(tmp_path / "img.npz", X=X, y=np.arange(10) % 2)
    d = data.load_npz(tmp_path / "img.npz")
    assert d.X.shape == (10, 30)  # features, as every Dataset has them
    assert d.meta["input_shape"] == (1, 6, 5) and d.image_shape == (6, 5)
    Xt, yt = d.tensors()
    assert Xt.shape == (10, 1, 6, 5)
    np.testing.assert_array_equal(Xt.double().numpy(), X.astype(np.float32))
    train, test = d.split(test_size=0.3, seed=0)  # splits keep the shape too
    assert train.tensors()[0].shape == (7, 1, 6, 5) and test.tensors()[0].shape == (3, 1, 6, 5)
    np.savez(tmp_path / "rgb.npz", X=rng.normal(size=(4, 3, 2, 2)), y=np.zeros(4, int))
    rgb = data.load_npz(tmp_path / "rgb.npz")
    assert rgb.tensors()[0].shape == (4, 3, 2, 2) and rgb.image_shape is None
    np.savez(tmp_path / "flat.npz", X=rng.normal(size=(4, 3)), y=np.zeros(4, int))
    flat = data.load_npz(tmp_path / "flat.npz")
    assert flat.tensors()[0].shape == (4, 3) and "input_shape" not in flat.meta


def test_npz_that_is_not_an_archive_of_arrays(tmp_path):
    import io
    import zipfile

    good = tmp_path / "good.npz"
    np.savez(good, X=np.ones((3, 2)), y=np.zeros(3, int))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable .npz archive.*truncated"):
        data.load_npz(truncated)
    member = tmp_path / "member.npz"
    y = io.BytesIO()
    np.save(y, np.zeros(3, int))
    with zipfile.ZipFile(member, "w") as z:
        z.writestr("X.npy", b"not an array")
        z.writestr("y.npy", y.getvalue())
    with pytest.raises(ValueError, match="member 'X' is not a NumPy array"):
        data.load_npz(member)
    single = tmp_path / "single.npz"
    with single.open("wb") as f:
        np.save(f, np.ones(3))
    with pytest.raises(ValueError, match="a single .npy array, not an .npz archive"):
        data.load_npz(single)
