"""Labels the default loss takes (class indices of any integer dtype, float targets shaped
like the output) and those it refuses by name instead of raising torch's errors or
broadcasting them quietly."""

import numpy as np
import pytest
import torch
from torch import nn

import netxray


def mlp(outputs=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, outputs)).eval()


def test_integer_labels_of_any_dtype_are_class_indices():
    model = mlp()
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2, 1, 0, 1])
    with torch.no_grad():
        expected = nn.functional.cross_entropy(model(x).double(), y).item()
    ref = netxray.collect_stats(model, (x, y), gradients=True)
    assert ref.loss == pytest.approx(expected, rel=1e-6)
    for dtype in (torch.int32, torch.int16, torch.int8, torch.uint8):
        got = netxray.collect_stats(model, (x, y.to(dtype)), gradients=True)
        assert got.loss == pytest.approx(expected, rel=1e-6), dtype
        assert got["1"].grad_norm == pytest.approx(ref["1"].grad_norm, rel=1e-6)
    report = netxray.diagnose(model, (x.numpy(), y.numpy().astype(np.int32)))
    assert report.loss == pytest.approx(expected, rel=1e-6)
    assert netxray.precheck(model, (x, y.int())).expected_loss == pytest.approx(np.log(3))


def test_labels_the_default_loss_cannot_take_are_named():
    model = mlp()
    x = torch.randn(10, 5)
    y = torch.randint(0, 3, (10,))
    with pytest.raises(ValueError, match=r"labels \(torch.int64, shape \(10, 3\)\) look one-hot"
                                         r".*argmax.*loss_fn="):
        netxray.diagnose(model, (x, nn.functional.one_hot(y, 3)))
    with pytest.raises(ValueError, match=r"labels \(torch.float64, shape \(10,\)\) are float.*"
                                         r"mean squared error.*class indices.*y\.long\(\)"):
        netxray.diagnose(model, (x.numpy(), y.numpy().astype(np.float64)))
    with pytest.raises(ValueError, match=r"labels \(torch.bool, shape \(10,\)\)"):
        netxray.collect_stats(model, (x, y > 0), gradients=True)
    # batch size = number of classes: (3,) would broadcast against (3, 3); it is refused
    with pytest.raises(ValueError, match=r"shape \(3,\)\) are float.*shaped like the output"):
        netxray.diagnose(model, (x[:3], y[:3].float()))


def test_one_float_target_per_sample_meets_one_output_per_sample_without_broadcasting():
    model = mlp(outputs=1)
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(2))
    t = torch.randn(10, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = ((model(x)[:, 0] - t) ** 2).mean().item()  # (10,1) - (10,) would be (10,10)
    for target in (t, t[:, None], t.double().numpy()):
        assert netxray.collect_stats(model, (x, target), gradients=True).loss == pytest.approx(
            expected, rel=1e-5)


def test_ignored_labels_weigh_nothing_in_the_loss_and_its_gradients():
    """-100 marks "no target": the data's loss is the mean over the real targets, and each
    row's gradient is that of its own term of the summed loss (0 for an ignored row)."""
    model = mlp()
    g = torch.Generator().manual_seed(4)
    x = torch.randn(12, 5, generator=g)
    y = torch.randint(0, 3, (12,), generator=g)
    y[[1, 2, 3, 4, 7]] = -100  # 4 of the first batch's 6 rows ignored, 1 of the second's
    h = model[:2](x).detach().requires_grad_(True)
    loss = nn.functional.cross_entropy(model[2](h).double(), y, reduction="sum")
    (gh,) = torch.autograd.grad(loss, h)
    ref = gh.double().numpy()
    n = int((y != -100).sum())
    stats = netxray.collect_stats(model, (x, y[:, None].int()), "1", gradients=True,
                                  batch_size=6)
    assert stats.loss == pytest.approx(loss.item() / n, rel=1e-6)
    s = stats["1"]
    assert s.grad_norm == pytest.approx(np.sqrt((ref ** 2).sum() / 12), rel=1e-5)
    np.testing.assert_allclose(s.grad_abs_mean, np.abs(ref).mean(0), rtol=1e-5, atol=1e-9)
    # a batch without any target adds nothing (no NaN from its 0 / 0 mean)
    y[:6] = -100
    loss = nn.functional.cross_entropy(model(x).double(), y).item()
    stats = netxray.collect_stats(model, (x, y), "1", gradients=True, batch_size=6)
    assert stats.loss == pytest.approx(loss, rel=1e-6) and np.isfinite(stats["1"].grad_norm)
