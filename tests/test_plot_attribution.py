"""Attribution Displays draw what they were given (Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from netxray.attribution import (  # noqa: E402
    IntegratedGradients,
    Saliency,
    attribute_dataset,
)
from netxray.plot.attribution import (  # noqa: E402
    FeatureAttributionDisplay,
    ImageAttributionDisplay,
    SaliencyArrowsDisplay,
    UnitPatternDisplay,
)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def tabular():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    return model, torch.randn(12, 4), torch.arange(12) % 3


def test_feature_display_signed_bars_and_dataset_importance():
    model, x, y = tabular()
    res = IntegratedGradients(model).attribute(x, target="pred", n_steps=8)
    disp = FeatureAttributionDisplay.from_result(res, index=3, feature_names=list("abcd")).plot()
    heights = sorted(p.get_width() for p in disp.ax_.patches)
    np.testing.assert_allclose(heights, sorted(res.values[3].numpy()), rtol=1e-6)
    assert disp.figure_ is disp.ax_.figure
    ds = attribute_dataset(Saliency(model), (x, y), batch_size=5)
    d2 = FeatureAttributionDisplay.from_result(ds, class_index=1).plot(top=2)
    assert len(d2.ax_.patches) == 2
    assert max(p.get_width() for p in d2.ax_.patches) == pytest.approx(
        float(ds.class_mean_abs[1].max())
    )
    with pytest.raises(ValueError, match="feature names"):
        FeatureAttributionDisplay([1.0, 2.0], feature_names=["a"])


def test_image_display_digits_overlay_and_class_grid():
    from sklearn.datasets import load_digits

    d = load_digits()
    X = torch.tensor(d.data[:40] / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target[:40])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    res = Saliency(model).attribute(X, target=y, abs=False)
    disp = ImageAttributionDisplay.from_result(res, image_shape=(8, 8), indices=[0, 5]).plot()
    assert len(disp.ax_) == 2 and disp.images.shape == (2, 8, 8)
    np.testing.assert_allclose(disp.ax_[1].images[-1].get_array(), res.values[5].view(8, 8).numpy())
    ds = attribute_dataset(Saliency(model), (X, y), batch_size=16)
    grid = ImageAttributionDisplay.from_result(ds, image_shape=(8, 8)).plot(ncols=5)
    assert len(grid.ax_) == 10 and grid.titles[0].startswith("0 (n=")
    with pytest.raises(ValueError, match="image_shape"):
        ImageAttributionDisplay.from_result(res)


def test_saliency_arrows_over_a_boundary():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2)).eval()
    X = torch.randn(30, 2)
    disp = SaliencyArrowsDisplay.from_model(model, X, target=1, resolution=20).plot()
    assert disp.probs.shape == (20, 20)
    np.testing.assert_allclose(
        disp.vectors, Saliency(model).attribute(X, target=1, abs=False).values.numpy()
    )
    plain = SaliencyArrowsDisplay.from_result(Saliency(model).attribute(X, target=0, abs=False))
    assert plain.probs is None and plain.plot(normalize=False).ax_ is not None
    with pytest.raises(ValueError, match="abs=False"):
        SaliencyArrowsDisplay.from_result(Saliency(model).attribute(X, target=0))
    with pytest.raises(ValueError, match="2-D"):
        SaliencyArrowsDisplay(np.zeros((3, 3)), np.zeros((3, 3)))


def test_unit_patterns_bars_and_images():
    model, x, _ = tabular()
    disp = UnitPatternDisplay.from_model(model, "1", x).plot()
    assert disp.patterns.shape == (6, 4) and len(disp.ax_) == 6
    # unit 0's pattern is the mean of relu'(z) * w_0 over the inputs
    w = model[0].weight.detach()
    active = (model[0](x)[:, 0] > 0).float().mean()
    np.testing.assert_allclose(disp.patterns[0], (active * w[0]).numpy(), rtol=1e-6, atol=1e-7)
    img = nn.Sequential(nn.Flatten(), nn.Linear(16, 3), nn.ReLU()).eval()
    xi = torch.randn(5, 1, 4, 4)
    d2 = UnitPatternDisplay.from_model(img, "2", xi, units=[0, 2]).plot()
    assert d2.patterns.shape == (2, 4, 4)
