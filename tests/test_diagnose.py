import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import netxray
from netxray.health import (
    Finding,
    HealthReport,
    Thresholds,
    diagnose,
    diagnose_stats,
    precheck,
    render_findings,
    weight_findings,
)
from netxray.stats import LayerStats, NetworkStats, collect_stats
from netxray.weights import weight_health

N = 1000


def inputs(n: int = N, d: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def fake_layer(name: str, *, grad_norm=None, units=4, family="relu", mean=1.0, var=1.0):
    ones = np.ones(units)
    return LayerStats(
        name=name, module_type="ReLU", family=family, shape=(units,), calls=1,
        count=np.full(units, N), mean=mean * ones, var=var * ones, min=-ones, max=3 * ones,
        frac_active=0.5 * ones, frac_saturated=0 * ones, nan_count=np.zeros(units, int),
        inf_count=np.zeros(units, int), hist=np.zeros((units, 3), int),
        hist_edges=np.array([0.0, 1.0]), grad_abs_mean=None if grad_norm is None else ones,
        grad_norm=grad_norm,
    )


def fake_stats(*layers: LayerStats) -> NetworkStats:
    return NetworkStats(layers={s.name: s for s in layers}, n_samples=N)


# ------------------------------------------------------------------ dead and dying


def relu_net(dead=(0, 1)) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 6), nn.ReLU())
    with torch.no_grad():
        net[0].bias.zero_()
        for u in dead:
            net[0].bias[u] = -100.0
    return net


def test_dead_units_are_relu_units_never_positive():
    report = diagnose(relu_net(), inputs())
    (f,) = report.by_kind("dead_units")
    assert f.layer == "1" and f.units == (0, 1) and f.severity == "warning"
    assert f.evidence["dead"] == 2 and f.evidence["inputs"] == N
    assert "2 of 6 units in `1` never activate on 1,000 inputs" in f.advice
    assert "Try:" in f.advice


def test_a_negative_linear_output_is_not_a_dead_unit():
    report = diagnose(relu_net(), inputs(), layers="0")  # the Linear layer itself
    assert report.by_kind("dead_units") == [] and report.by_kind("dying_units") == []


def test_dead_severity_grows_with_the_share_and_few_inputs_only_inform():
    assert diagnose(relu_net(dead=(0,)), inputs()).by_kind("dead_units")[0].severity == "info"
    assert diagnose(relu_net(dead=(0, 1, 2, 3)), inputs()).by_kind("dead_units")[0].severity == "error"
    few = diagnose(relu_net(dead=(0, 1, 2, 3)), inputs(20)).by_kind("dead_units")[0]
    assert few.severity == "info" and "Only 20 inputs" in few.advice


def test_dying_units_are_active_on_under_one_percent():
    net = relu_net(dead=())
    x = inputs()
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].weight[0, 0] = 1.0
        net[0].bias[0] = -2.9  # x0 > 2.9: about 0.2% of standard normal inputs
    frac = float((x[:, 0] > 2.9).double().mean())
    assert 0 < frac < 0.01
    (f,) = diagnose(net, x).by_kind("dying_units")
    assert f.units == (0,) and f.evidence["frac_active"] == [pytest.approx(frac)]
    # units 1..5 output exactly 0 (zero weights and bias): dead, not "constant"
    report = diagnose(net, x)
    assert report.by_kind("dead_units")[0].units == (1, 2, 3, 4, 5)
    assert report.by_kind("constant_units") == []


# ------------------------------------------------------------------ saturation


def tanh_net() -> tuple[nn.Sequential, torch.Tensor]:
    net = nn.Sequential(nn.Linear(1, 3), nn.Tanh())
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[10.0], [1.0], [0.1]]))
        net[0].bias.zero_()
    x = torch.zeros(N, 1)
    x[: int(0.9 * N)] = 5.0  # 90% of inputs drive units 0 (tanh(50)) and 1 (tanh(5)) to saturation
    x[int(0.9 * N):] = 0.0
    return net, x


def test_a_tanh_unit_saturated_on_90_percent_of_inputs_is_saturated():
    net, x = tanh_net()
    (f,) = diagnose(net, x).by_kind("saturated_units")
    assert f.units == (0, 1)  # |tanh(5)| = 0.99991 > 0.99; |tanh(0.5)| not saturated
    assert f.layer == "1"
    s = collect_stats(net, x)["1"]
    np.testing.assert_allclose(s.frac_saturated, [0.9, 0.9, 0.0])


def test_saturation_below_the_fraction_threshold_is_not_flagged():
    net, x = tanh_net()
    x[: int(0.6 * N)] = 0.0  # now saturated on 30% of inputs
    assert diagnose(net, x).by_kind("saturated_units") == []
    th = Thresholds(saturated_fraction=0.25)
    assert diagnose(net, x, thresholds=th).by_kind("saturated_units")[0].units == (0, 1)


# ------------------------------------------------------------------ constant, exploding


def test_constant_units_have_zero_variance():
    lin = nn.Linear(3, 4)
    with torch.no_grad():
        lin.weight[0].zero_()
        lin.bias[0] = 0.3
    (f,) = diagnose(nn.Sequential(lin), inputs(), layers="0").by_kind("constant_units")
    assert f.units == (0,) and f.evidence["values"][0] == pytest.approx(0.3)


def test_exploding_activations_grow_layer_over_layer():
    torch.manual_seed(0)
    layers = []
    for _ in range(6):
        lin = nn.Linear(16, 16)
        nn.init.normal_(lin.weight, std=3 * math.sqrt(2 / 16))  # 3x He
        layers += [lin, nn.ReLU()]
    net = nn.Sequential(*layers)
    report = diagnose(net, inputs(d=16))
    (f,) = report.by_kind("exploding_activations")
    assert f.evidence["growth"] > 100 and f.evidence["per_layer"] > 2
    # the same net with He init is fine
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=math.sqrt(2 / 16))
    assert diagnose(net, inputs(d=16)).by_kind("exploding_activations") == []


def test_an_activation_above_the_bound_is_exploding():
    s = fake_stats(fake_layer("a", mean=5e3, var=1.0))
    (f,) = diagnose_stats(s).by_kind("exploding_activations")
    assert f.layer == "a" and "above" in f.advice


# ------------------------------------------------------------------ gradients


def test_vanishing_gradients_shrink_toward_the_input():
    s = fake_stats(*(fake_layer(f"l{i}", grad_norm=10.0 ** (1.25 * (i - 4))) for i in range(5)))
    (f,) = diagnose_stats(s).by_kind("vanishing_gradients")
    assert f.layer == "l0" and f.evidence["ratio_first_to_last"] == pytest.approx(1e-5)
    assert f.severity == "error" and diagnose_stats(s).by_kind("exploding_gradients") == []


def test_gradients_growing_toward_the_input_are_exploding_not_vanishing():
    s = fake_stats(*(fake_layer(f"l{i}", grad_norm=10.0 ** (-i)) for i in range(4)))
    report = diagnose_stats(s)
    assert report.by_kind("vanishing_gradients") == []
    assert report.by_kind("exploding_gradients")[0].evidence["ratio_first_to_last"] == pytest.approx(1e3)


def test_flat_gradients_and_a_healthy_trained_net_raise_nothing():
    s = fake_stats(*(fake_layer(f"l{i}", grad_norm=1.0 + 0.3 * i) for i in range(4)))
    assert diagnose_stats(s).findings == ()
    torch.manual_seed(0)
    net = netxray.mlp([3, 32, 32, 32, 2], "leaky_relu", init="he", seed=0)
    y = (inputs()[:, 0] > 0).long()
    report = diagnose(net, (inputs(), y))
    assert report.findings == () and report.skipped == ()
    assert all(s.grad_norm is not None for s in report.stats.values())


def test_real_deep_sigmoid_net_has_vanishing_gradients():
    net = netxray.mlp([3] + [32] * 10 + [2], "sigmoid", init="xavier", seed=0)
    y = (inputs()[:, 0] > 0).long()
    (f,) = diagnose(net, (inputs(), y)).by_kind("vanishing_gradients")
    assert f.layer == "act1"
    g = f.evidence["grad_rms"]
    assert g["act1"] < g["act10"] / 100


# ------------------------------------------------------------------ non-finite first


def nan_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    with torch.no_grad():
        net[0].bias[:4] = -100.0  # 4 dead units in the first layer: must NOT be reported
        net[2].weight[1, 1] = float("inf")
    return net


def test_nonfinite_reports_the_first_layer_and_nothing_computed_from_garbage():
    x = inputs()
    y = (x[:, 0] > 0).long()
    report = diagnose(nan_net(), (x, y))
    assert report.kinds == {"nonfinite"}
    act = [f for f in report.findings if f.evidence.get("later_layers") is not None]
    assert act[0].layer == "3"  # the first *recorded* layer in forward order with NaN/Inf
    params = [f for f in report.findings if "parameters" in f.evidence]
    assert params[0].evidence["parameters"] == ["2.weight"]
    assert report.exit_code == 1 and not report.ok
    assert report.skipped and "non-finite" in report.skipped[0]
    assert report.findings[0].severity == "error"


def test_a_diverged_history_is_said_first():
    net = relu_net()
    report = diagnose(net, inputs(), history=[0.7, 0.6, float("nan"), float("nan")])
    assert report.findings[0].kind == "loss_diverged"
    assert report.findings[0].evidence["first_nonfinite_epoch"] == 3
    assert report.by_kind("dead_units") == []  # no advice from the rest


def test_finite_forward_but_infinite_loss_is_nonfinite():
    net = nn.Sequential(nn.Linear(2, 2))
    x = torch.ones(10, 2)
    bad = lambda out, y: torch.log(out.sum() * 0)  # noqa: E731
    report = diagnose(net, (x, torch.zeros(10, dtype=torch.long)), loss_fn=bad)
    assert report.kinds == {"nonfinite"} and report.findings[0].layer is None


# ------------------------------------------------------------------ precheck


def test_precheck_compares_the_initial_loss_with_ln_classes():
    x = inputs(d=4)
    y = torch.arange(N) % 5
    net = netxray.mlp([4, 16, 5], "relu", seed=0)
    with torch.no_grad():
        net.fc2.weight.mul_(0.01)
    ok = precheck(net, (x, y))
    assert ok.expected_loss == pytest.approx(math.log(5))
    assert ok.loss == pytest.approx(math.log(5), rel=0.05)
    assert ok.by_kind("initial_loss") == [] and ok.context == "precheck"
    with torch.no_grad():
        net.fc2.weight.mul_(1e4)
    bad = precheck(net, (x, y))
    (f,) = bad.by_kind("initial_loss")
    assert f.evidence["classes"] == 5 and f.evidence["loss"] > 2 * math.log(5)
    assert "precheck" in bad.summary() and "RMS" in bad.summary()


def test_precheck_dead_unit_advice_talks_about_init():
    report = precheck(relu_net(), inputs())
    (f,) = report.by_kind("dead_units")
    assert "At init" in f.advice and "learning rate" not in f.advice


# ------------------------------------------------------------------ weights


def test_weight_health_matches_numpy():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Conv1d(2, 3, 2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net[0].weight.add_(0.1)
    wh = weight_health(net, before)
    assert set(wh.layers) == {"0.weight", "2.weight"}
    W = net[0].weight.detach().double().numpy()
    lw = wh["0.weight"]
    assert lw.spectral_norm == pytest.approx(np.linalg.norm(W, 2), rel=1e-10)
    assert lw.stable_rank == pytest.approx(np.linalg.norm(W) ** 2 / np.linalg.norm(W, 2) ** 2, rel=1e-10)
    W0 = before["0.weight"].double().numpy()
    assert lw.update_ratio == pytest.approx(np.linalg.norm(W - W0) / np.linalg.norm(W0), rel=1e-10)
    K = net[2].weight.detach().double().numpy().reshape(3, -1)
    assert wh["2.weight"].spectral_norm == pytest.approx(np.linalg.norm(K, 2), rel=1e-10)
    assert wh["2.weight"].update_ratio == 0.0
    (f,) = weight_findings(wh, steps=1)
    assert f.kind == "large_updates" and "0.weight" in f.evidence["per_step_ratio"]
    assert weight_findings(wh, steps=10**6) == [] and weight_findings(wh) == []


def test_diagnose_uses_previous_weights_for_update_ratios():
    net = relu_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net[0].weight.mul_(2)
    report = diagnose(net, inputs(), previous_weights=before, steps=10)
    assert report.weights["0.weight"].update_ratio == pytest.approx(1.0)
    assert report.by_kind("large_updates")[0].evidence["per_step_ratio"]["0.weight"] == pytest.approx(0.1)


# ------------------------------------------------------------------ the report


def test_report_summary_json_and_exit_code():
    report = diagnose(relu_net(dead=(0, 1, 2, 3)), inputs())
    assert isinstance(report, HealthReport) and report.exit_code == 1
    text = report.summary()
    assert text.startswith("netxray health report: 1,000 inputs")
    assert "ERROR   dead_units [1]" in text and "4 of 6 units" in text
    d = json.loads(report.to_json())
    assert d["findings"][0]["kind"] == "dead_units" and d["findings"][0]["units"] == [0, 1, 2, 3]
    assert d["stats"]["layers"]["1"]["family"] == "relu"
    healthy = diagnose(relu_net(dead=()), inputs())
    assert healthy.exit_code == 0 and "No problems found." in healthy.summary()
    rows = report.layer_table()
    assert rows[0]["layer"] == "1" and rows[0]["dead"] == 4


def _table_names(text: str) -> list[str]:
    """The first column of the summary's layer table (the lines after its header)."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    return [line.split()[0] for line in lines[head + 1:]]


def test_the_summary_table_keeps_layer_names_readable_and_distinct():
    """Names were cut to 15 characters: transformer.h.0.mlp and transformer.h.0.attn both
    read transformer.h.0. Now whole when they fit; a longer one keeps its tail."""
    whole = ["transformer.h.0.mlp", "transformer.h.0.attn", "transformer.h.1.mlp.act"]
    long = ["bert.encoder.layer.0.intermediate.intermediate_act_fn",
            "bert.encoder.layer.1.intermediate.intermediate_act_fn"]
    report = diagnose_stats(fake_stats(*(fake_layer(n) for n in whole + long)))
    text = report.summary()
    assert max(map(len, text.splitlines()[-5:])) <= 100  # the default width
    names = _table_names(text)
    assert names[:3] == whole
    for shown, name in zip(names[3:], long, strict=True):  # their tails are the same
        head, tail = shown.split("...")
        assert name.startswith(head) and name.endswith(tail) and len(shown) <= 31
        assert head.startswith("bert.encoder.layer.")  # the part that tells them apart
    assert len(set(names)) == len(names)
    # names told apart by their tail are cut on the left
    tails = ["z" * 40 + ".h.0.mlp.act", "z" * 40 + ".h.1.mlp.act"]
    assert _table_names(diagnose_stats(fake_stats(*map(fake_layer, tails))).summary()) == [
        "..." + n[-28:] for n in tails]


def test_findings_are_errors_first_and_severity_is_checked():
    with pytest.raises(ValueError, match="severity"):
        Finding("dead_units", "fatal", None, (), {}, "x")
    report = diagnose(relu_net(dead=(0, 1, 2, 3)), inputs())
    sev = [f.severity for f in report.findings]
    assert sev == sorted(sev, key=["error", "warning", "info"].index)
    with pytest.raises(ValueError, match="unknown kind"):
        report.by_kind("deadish")


def test_render_findings_is_a_rich_table():
    from rich.console import Console
    from rich.table import Table

    table = render_findings(diagnose(relu_net(), inputs()))
    assert isinstance(table, Table)
    console = Console(record=True, width=120)
    console.print(table)
    assert "dead_units" in console.export_text()


def test_diagnose_leaves_the_model_as_it_was(hook_count):
    net = relu_net()
    net.train()
    net[0].weight.grad = torch.ones_like(net[0].weight)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    y = torch.zeros(N, dtype=torch.long)
    diagnose(nn.Sequential(net, nn.Linear(6, 2)), (inputs(), y))
    assert hook_count(net) == 0 and net.training
    assert torch.equal(net[0].weight.grad, torch.ones_like(net[0].weight))
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


def test_diagnose_stats_is_reusable_on_collected_stats():
    stats = collect_stats(relu_net(), inputs())
    report = diagnose_stats(stats)
    assert report.stats is stats and report.by_kind("dead_units")[0].units == (0, 1)
    assert "gradients" in report.skipped[0]


# ------------------------------------------------------------------ displays


def test_health_displays_draw_the_numbers():
    import matplotlib.pyplot as plt

    from netxray.plot.health import GradientNormDisplay, LayerActivityDisplay, UnitStatsDisplay

    net = nn.Sequential(relu_net(), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 2))
    y = torch.zeros(N, dtype=torch.long)
    report = diagnose(net, (inputs(), y))
    la = LayerActivityDisplay.from_result(report).plot()
    assert la.layers == ["0.1", "2"]
    assert la.frac_dead[0] == pytest.approx(2 / 6) and np.isnan(la.frac_dead[1])
    heights = [p.get_height() for p in la.ax_.patches]
    assert heights[2 * 2] == pytest.approx(2 / 6)  # third group of bars: dead share
    g = GradientNormDisplay.from_result(report).plot()
    assert g.ax_.get_yscale() == "log"
    np.testing.assert_allclose(g.grad_rms, [report.stats["0.1"].grad_rms, report.stats["2"].grad_rms])
    u = UnitStatsDisplay.from_result(report.stats, "0.1").plot()
    assert u.dead.tolist() == [True, True, False, False, False, False]
    assert u.figure_ is u.ax_.figure
    with pytest.raises(ValueError, match="no gradients"):
        GradientNormDisplay.from_result(collect_stats(net, inputs()))
    plt.close("all")


def test_one_shot_generators_and_loaders_are_read_once():
    x = inputs()
    y = torch.zeros(N, dtype=torch.long)
    net = nn.Sequential(relu_net(), nn.Linear(6, 2))
    gen = ((x[i : i + 100], y[i : i + 100]) for i in range(0, N, 100))
    report = diagnose(net, gen)
    assert report.n_samples == N and report.loss is not None
    assert report.by_kind("dead_units")[0].evidence["inputs"] == N
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=128)
    assert diagnose(net, loader).n_samples == N


def test_conv_dead_channels_count_inputs_not_positions():
    conv = nn.Conv2d(1, 3, 3)
    with torch.no_grad():
        conv.bias[:] = torch.tensor([-100.0, 0.0, 0.0])
    net = nn.Sequential(conv, nn.ReLU())
    (f,) = diagnose(net, torch.randn(200, 1, 6, 6)).by_kind("dead_units")
    assert f.units == (0,) and f.evidence["inputs"] == 200


def test_to_json_is_strict_json_with_non_finite_numbers_as_null():
    x = inputs()
    report = diagnose(nan_net(), (x, (x[:, 0] > 0).long()))
    assert math.isnan(report.weights["2.weight"].fro_norm)
    d = json.loads(report.to_json())
    json.dumps(d, allow_nan=False)  # strict JSON: no NaN/Inf anywhere, however deep
    assert d["weights"]["layers"]["2.weight"]["fro_norm"] is None
    assert d["weights"]["layers"]["0.weight"]["fro_norm"] == pytest.approx(
        float(torch.linalg.matrix_norm(nan_net()[0].weight.detach().double()))
    )
    assert d["findings"][0]["kind"] == "nonfinite" and d["findings"][0]["severity"] == "error"
    assert json.loads(report.to_json(indent=1)) == d


def test_netxray_diagnose_is_the_function_in_any_import_order():
    import netxray
    import netxray.health  # noqa: F401  (importing the module must not shadow the function)

    report = netxray.diagnose(relu_net(), inputs())
    assert isinstance(report, HealthReport) and report.by_kind("dead_units")


def test_a_finite_loss_that_climbs_back_up_is_flagged_and_a_falling_one_is_not():
    from netxray.stats import collect_stats

    stats = collect_stats(relu_net(), inputs())
    rising = diagnose_stats(stats, history=[1.0, 0.6, 0.3, 0.25, 0.4, 0.7, 0.9])
    (f,) = rising.by_kind("loss_rising")
    assert f.severity == "warning" and f.evidence["best_epoch"] == 4
    assert f.evidence["ratio"] == pytest.approx(0.9 / 0.25)
    falling = diagnose_stats(stats, history=[1.0, 0.6, 0.3, 0.25, 0.26, 0.24, 0.27])
    assert not falling.by_kind("loss_rising")


# ------------------------------------------------------------------ the package's imports


def _fresh(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_weights_is_pure_computation_and_does_not_import_health():
    out = _fresh(
        "import sys, torch\n"
        "import netxray.weights as w\n"
        "w.weight_health(torch.nn.Linear(3, 2))\n"
        "print(sorted(m for m in sys.modules if m.startswith('netxray.health')))\n"
    )
    assert out == "[]"


@pytest.mark.parametrize(
    "module", ["netxray.health", "netxray.health.findings", "netxray.health.rules",
               "netxray.health.checks"]
)
def test_each_health_module_imports_first_in_a_fresh_interpreter(module):
    out = _fresh(f"import {module}, netxray\nprint(netxray.diagnose.__name__)")
    assert out == "diagnose"


def test_health_and_weights_have_no_import_cycle():
    """netxray's own imports (top-level and inside functions) among the health package and
    netxray.weights form no cycle."""
    src = Path(netxray.__file__).parent
    files = {f"netxray.health.{p.stem}": p for p in (src / "health").glob("*.py")}
    files["netxray.health"] = files.pop("netxray.health.__init__")
    files["netxray.weights"] = src / "weights.py"
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            deps |= {t for t in targets if t in files}
        graph[name] = deps
    assert graph["netxray.weights"] == set()
    assert "netxray.health" not in set().union(*(graph[m] for m in graph if m != "netxray.health"))
    done: set[str] = set()

    def visit(m: str, path: tuple[str, ...]) -> None:
        assert m not in path, f"import cycle: {' -> '.join((*path, m))}"
        if m not in done:
            for d in graph[m]:
                visit(d, (*path, m))
            done.add(m)

    for m in graph:
        visit(m, ())


def test_diagnose_and_precheck_read_dict_batches_with_their_labels():
    x = inputs()
    y = torch.randint(0, 2, (N,), generator=torch.Generator().manual_seed(0))
    net = nn.Sequential(relu_net(), nn.Linear(6, 2))

    class Keywords(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return {"logits": self.net(x)}

    ref = diagnose(net, (x, y), batch_size=100)
    batches = [{"x": x[i:i + 100], "y": y[i:i + 100]} for i in range(0, N, 100)]
    got = diagnose(Keywords(), batches, labels="y")
    assert got.loss == pytest.approx(ref.loss, rel=1e-6)
    assert [(f.kind, f.layer.removeprefix("net."), f.units) for f in got.findings] == [
        (f.kind, f.layer, f.units) for f in ref.findings]
    pre = precheck(Keywords(), batches, batch_format=netxray.BatchFormat(labels="y"))
    assert pre.expected_loss == pytest.approx(math.log(2))
    assert pre.loss == pytest.approx(ref.loss, rel=1e-6)


def test_bad_inputs_and_labels_are_named_not_raw_torch_errors():
    """One input check for all: the shape and the label range, in the user's words."""
    model = netxray.mlp([2, 4, 3], seed=0).eval()
    X = torch.randn(10, 2)
    with pytest.raises(ValueError, match="label 7 but the model outputs 3 classes"):
        netxray.diagnose(model, (X, torch.full((10,), 7)))
    with pytest.raises(ValueError, match="label 7 but the model outputs 3 classes"):
        netxray.collect_stats(model, (X, torch.full((10,), 7)), gradients=True)
    with pytest.raises(ValueError, match=r"cannot take inputs of shape \(10, 5\); it expects \(batch, 2\)"):
        netxray.collect_stats(model, torch.randn(10, 5))
    with pytest.raises(ValueError, match=r"cannot take inputs of shape"):
        netxray.diagnose(model, (torch.randn(10, 5), torch.zeros(10, dtype=torch.long)))
    # -100 is cross-entropy's "no target here": it is ignored, not refused
    y = torch.tensor([0, 1, 2, -100, 0, 1, 2, 0, 1, 2])
    assert netxray.collect_stats(model, (X, y), gradients=True).n_samples == 10
