"""Result objects serialize to plain data and round-trip through .npz without pickle."""

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from netxray._results import Result, to_plain


@dataclass(frozen=True, eq=False)
class Example(Result):
    values: torch.Tensor
    coords: np.ndarray
    maps: dict[str, np.ndarray]
    name: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Other(Result):
    x: int


def test_save_load_roundtrip(tmp_path):
    r = Example(values=torch.arange(6.0).reshape(2, 3), coords=np.eye(2),
                maps={"a": np.ones((2, 2)), "b": np.zeros(3)}, name="tensor",
                params={"seed": 3, "nested": [1, 2.5]})
    path = r.save(tmp_path / "r.npz")
    back = Example.load(path)
    assert torch.equal(back.values, r.values)
    np.testing.assert_array_equal(back.coords, r.coords)
    np.testing.assert_array_equal(back.maps["a"], r.maps["a"])
    assert back.name == "tensor"  # a string field equal to a kind tag is still a string
    assert back.params == {"seed": 3, "nested": [1, 2.5]}
    with np.load(path, allow_pickle=False) as f:  # readable without pickle
        assert "coords" in f.files
    with pytest.raises(ValueError, match="holds a Example, not a Other"):
        Other.load(path)


def test_to_dict_is_json_with_nulls_for_non_finite():
    r = Example(values=torch.tensor([1.0, float("nan")]), coords=np.array([np.inf, 2.0]),
                maps={"a": np.array([1.0])}, name="n", params={"x": float("-inf")})
    text = json.dumps(r.to_dict(), allow_nan=False)
    d = json.loads(text)
    assert d["values"] == [1.0, None] and d["coords"] == [None, 2.0] and d["params"]["x"] is None


@given(st.recursive(
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6),
              st.booleans(), st.none(), st.text(max_size=5)),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=20,
))
def test_to_plain_matches_a_direct_definition(value):
    def reference(v):  # the definition, written plainly
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, dict):
            return {str(k): reference(x) for k, x in v.items()}
        if isinstance(v, list):
            return [reference(x) for x in v]
        return v

    assert to_plain(value) == reference(value)
    json.dumps(to_plain(value), allow_nan=False)


def test_numpy_and_torch_scalars_and_arrays():
    assert to_plain(np.float32(1.5)) == 1.5 and type(to_plain(np.int64(3))) is int
    assert to_plain(np.array([[1, 2]], dtype=np.int32)) == [[1, 2]]
    assert to_plain(torch.tensor([np.nan])) == [None]
    assert to_plain((1.0, float("nan"))) == [1.0, None]


# ------------------------------------------------------------------ every public result class
# Each result the library produces, made by the library on a small trained model, must come
# back from save/load as its own type, equal in every field (nested results, tuples, dtypes).


class _TokenBag(torch.nn.Module):
    """A text model in miniature: token ids and an attention mask in, logits out."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(10, 4)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, input_ids, attention_mask):
        return self.fc((self.emb(input_ids) * attention_mask[..., None]).sum(1))


def _token_data():
    ids = torch.tensor([[1, 2, 3, 0], [4, 2, 0, 0], [5, 6, 7, 8]])
    mask = (ids > 0).long()
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 1])}


def _produce_results():
    import netxray
    from netxray import data
    from netxray.weights import weight_health

    train, test = data.moons(n_samples=120, noise=0.2, seed=1).split(test_size=0.3, seed=1)
    model = netxray.mlp([2, 6, 2, 2], activation="relu", seed=0)
    history = netxray.train(model, train.tensors(), epochs=6, lr=0.5,
                            test_data=test.tensors(), checkpoints=[0, 3, 6])
    model.eval()
    X, y = train.tensors()
    with torch.no_grad():  # a dead first-layer unit, so diagnose has findings to round-trip
        model.fc1.bias[0] = -100.0
    acts = netxray.activations(model, (X, y), layers="*")
    hidden = {n: acts.flat(n) for n in ("act1", "act2")}
    prev = {k: v.clone() + 0.01 for k, v in model.state_dict().items()}
    report = netxray.diagnose(model, (X, y), previous_weights=prev, steps=1)
    out = {
        "TrainingHistory": history,
        "Activations": acts,
        "NetworkStats": netxray.collect_stats(model, (X, y), gradients=True),
        "HealthReport": report,
        "Finding": report.findings[0],
        "WeightHealth": weight_health(model, prev),
        "Attribution": netxray.IntegratedGradients(model).attribute(X[:5], target="pred"),
        "DatasetAttribution": netxray.attribute_dataset(netxray.Saliency(model), (X, y)),
        "Projection": netxray.project(hidden["act1"], "pca", n_components=2),
        "ActivationMap": netxray.activation_map(hidden["act1"], y.numpy()),
        "ProbeResult": netxray.linear_probes(hidden, y.numpy(), cv=2),
        "CKAMatrix": netxray.cka_matrix(hidden),
        "BoundaryGrid": netxray.decision_boundary(model, X, resolution=12),
        "UnitMaps": netxray.unit_maps(model, X, resolution=8),
        "GridWarp": netxray.grid_warp(model, X, layers=["act2"], n_lines=3, points_per_line=5),
        "BoundaryEvolution": netxray.boundary_evolution(
            lambda: netxray.mlp([2, 6, 2, 2], activation="relu", seed=0),
            history.checkpoints, X, y, resolution=8, hidden_layer="act2"),
    }
    out.update(_watched_run_results(X, y))
    out["TokenAttribution"] = netxray.attribute_dataset(
        netxray.LayerIntegratedGradients(_TokenBag().eval(), layer="emb"), _token_data(),
        target="label", n_steps=4).tokens
    tokens = data.TokenDataset(
        _token_data()["input_ids"].numpy(), _token_data()["attention_mask"].numpy(),
        np.array([0, 1, 1]), "toy", class_names=("no", "yes"), vocab=tuple("abcdefghij"))
    out["TokenDataset"] = tokens
    from netxray.analysis import analyze_text
    from netxray.resumes import WordTokenizer

    cf = netxray.counterfactual(_TokenBag().eval(), ["a b c", "d b", "e f", "b c"], {"b": "c"},
                                tokenizer=WordTokenizer(("[PAD]", "[UNK]", *"abcdefgh")))
    out["CounterfactualResult"] = cf
    out["TextAnalysis"] = analyze_text(_TokenBag().eval(), tokens, n_steps=4, n_examples=2,
                                       counterfactual=cf)
    stats = out["NetworkStats"]
    out["LayerStats"] = stats["act1"]
    out["ParamStats"] = next(iter(stats.params.values()))
    out["LayerWeights"] = next(iter(out["WeightHealth"].layers.values()))
    return out


def _watched_run_results(X, y):
    """The read-back results of a run store: a few watched steps of a small net."""
    import tempfile

    import netxray
    from netxray.run_analysis import read_run

    model = netxray.mlp([2, 6, 2], activation="relu", seed=0)
    model.fc1.bias.data[0] = float("nan")  # the run records a nonfinite finding event
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    folder = tempfile.mkdtemp()
    with netxray.watch(model, folder, every=1, alarms=lambda f, step: None) as w:
        for _ in range(3):
            loss = torch.nn.functional.cross_entropy(model(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.step(loss=loss)
    run = netxray.open_run(folder)
    events = run.findings
    assert events, "the NaN should have raised a finding"
    return {
        "StepSeries": run.steps,
        "LayerInfo": run.layers["act1"],
        "LayerSeries": run.layer_stats("act1"),
        "UnitSeries": run.unit_stats("act1"),
        "ParamSeries": run.param_stats("fc1.weight"),
        "FindingEvent": events[0],
        "TrainingRun": _training_run(X, y, read_run),
    }


def _training_run(X, y, read_run):
    """What `netxray report` reads: a healthy watched run with decision-surface snapshots."""
    import tempfile

    import netxray

    model = netxray.mlp([2, 6, 2], activation="relu", seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    folder = tempfile.mkdtemp()
    with netxray.watch(model, folder, every=1, alarms=lambda f, step: None, snapshot_every=2,
                       probe=(X, y), snapshot_resolution=6) as w:
        for _ in range(3):
            loss = torch.nn.functional.cross_entropy(model(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.step(loss=loss)
    return read_run(folder)


_PRODUCED: dict = {}


def _result(name):
    if not _PRODUCED:
        _PRODUCED.update(_produce_results())
    return _PRODUCED[name]


_NAMES = [
    "TrainingHistory", "Activations", "NetworkStats", "LayerStats", "ParamStats",
    "HealthReport", "Finding", "WeightHealth", "LayerWeights", "Attribution",
    "DatasetAttribution", "Projection", "ActivationMap", "ProbeResult", "CKAMatrix",
    "BoundaryGrid", "UnitMaps", "GridWarp", "BoundaryEvolution", "StepSeries", "LayerInfo",
    "LayerSeries", "UnitSeries", "ParamSeries", "FindingEvent", "TokenAttribution",
    "TokenDataset", "TextAnalysis", "TrainingRun", "CounterfactualResult",
]


def _assert_same(a, b, where="result"):
    """An independent field-by-field check: types, dtypes, shapes and values."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=where)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            _assert_same(u, v, f"{where}[{i}]")
    elif isinstance(a, Result):
        import dataclasses

        for f in dataclasses.fields(a):
            _assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, where


@pytest.mark.parametrize("name", _NAMES)
def test_every_result_round_trips_as_its_own_type(name, tmp_path):
    r = _result(name)
    assert type(r).__name__ == name
    back = type(r).load(r.save(tmp_path / f"{name}.npz"))
    _assert_same(r, back)
    assert back == r and not (back != r)
    assert type(r).from_bytes(r.to_bytes()) == r


def test_every_public_result_class_is_covered():
    import netxray

    for name in netxray.__all__:
        getattr(netxray, name)  # import every public module, registering its results

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    library = {c.__name__ for c in subclasses(Result) if c.__module__.startswith("netxray.")}
    missing = library - set(_NAMES) - {"Dataset", "Analysis"}
    assert not missing, f"add these result classes to the round-trip test: {sorted(missing)}"


def test_nested_results_come_back_as_their_classes(tmp_path):
    report = _result("HealthReport")
    back = type(report).load(report.save(tmp_path / "h.npz"))
    assert isinstance(back.findings, tuple) and type(back.findings[0]).__name__ == "Finding"
    assert type(back.stats["act1"]).__name__ == "LayerStats"
    assert back.ok == report.ok and back.stats["act1"].mean.dtype == report.stats["act1"].mean.dtype
    assert isinstance(back.findings[0].units, tuple)


def test_equality_compares_values_not_identity():
    a = Example(values=torch.tensor([1.0, float("nan")]), coords=np.array([1, 2]),
                maps={"m": np.zeros(2)}, name="n")
    b = Example(values=torch.tensor([1.0, float("nan")]), coords=np.array([1, 2]),
                maps={"m": np.zeros(2)}, name="n")
    assert a == b  # NaN in the same place counts as equal
    assert a != Example(values=a.values, coords=np.array([1, 3]), maps=a.maps, name="n")
    assert a != Example(values=a.values, coords=np.array([1.0, 2.0]), maps=a.maps, name="n")
    assert a != Example(values=a.values.double(), coords=a.coords, maps=a.maps, name="n")
    assert a != Example(values=a.values, coords=a.coords, maps=a.maps, name="n", params={"k": (1,)})
    assert Example(values=a.values, coords=a.coords, maps={}, name="n", params={"k": (1,)}) != \
        Example(values=a.values, coords=a.coords, maps={}, name="n", params={"k": [1]})


def test_tuples_dtypes_non_string_keys_and_scalars_survive(tmp_path):
    r = Example(values=torch.arange(4, dtype=torch.int16), coords=np.float16([1.5, 2]),
                maps={"h": np.zeros((2, 3), dtype=np.uint8)}, name="x",
                params={"shape": (2, (3, 4)), 7: [float("inf"), None], "s": np.float32(0.25),
                        "bf": torch.tensor([1.5], dtype=torch.bfloat16)})
    back = Example.load(r.save(tmp_path / "r.npz"))
    assert back.params["shape"] == (2, (3, 4)) and type(back.params["shape"][1]) is tuple
    assert back.params[7] == [math.inf, None]
    assert type(back.params["s"]) is np.float32 and back.params["s"] == np.float32(0.25)
    assert back.values.dtype == torch.int16 and back.coords.dtype == np.float16
    assert back.params["bf"].dtype == torch.bfloat16
    assert back == r


def test_bad_files_get_clear_errors(tmp_path):
    from netxray._results import ResultFormatError

    r = Other(x=1)
    path = r.save(tmp_path / "o.npz")
    data = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ResultFormatError, match="truncated, corrupt"):
        Other.load(tmp_path / "trunc.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ResultFormatError, match="not a readable netxray result"):
        Other.load(tmp_path / "text.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(ResultFormatError, match="not a netxray result"):
        Other.load(tmp_path / "plain.npz")
    header = {"format": "netxray-result", "version": 99, "value": None}
    np.savez(tmp_path / "future.npz",
             __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    with pytest.raises(ResultFormatError, match="newer netxray .*format 99.*upgrade"):
        Other.load(tmp_path / "future.npz")
    header = {"format": "netxray-result", "version": 1,
              "value": {"result": "NoSuchThing", "module": "os", "fields": {}}}
    np.savez(tmp_path / "unknown.npz",
             __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    with pytest.raises(ResultFormatError, match="unknown result type 'NoSuchThing'"):
        Other.load(tmp_path / "unknown.npz")
    with pytest.raises(TypeError, match="cannot save Other/x: a object"):
        Other(x=object()).save(tmp_path / "bad.npz")
