"""Which pixels drive a digit classifier: saliency, integrated gradients and SmoothGrad.

Every method has one contract, ``Method(model).attribute(inputs, target=...)``, and returns
an ``Attribution`` whose ``values`` are shaped like the inputs. ``attribute_dataset`` sums
attributions over a whole dataset, batch by batch, overall and per class.
"""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # draw into files, no window

import netxray
from netxray import data
from netxray.attribution import IntegratedGradients, Saliency, SmoothGrad, attribute_dataset
from netxray.plot.attribution import ImageAttributionDisplay

out = Path(os.environ.get("NETXRAY_EXAMPLES_OUT", "netxray-examples"))
out.mkdir(parents=True, exist_ok=True)

digits = data.digits()  # 8x8 images flattened to 64 pixels in [0, 1]
train, test = digits.split(test_size=0.3, seed=0)
model = netxray.mlp([64, 64, 10], seed=0)
netxray.train(model, train.tensors(), epochs=20, lr=0.01, optimizer="adam", batch_size=64)
model.eval()

X, y = test.tensors()
x = X[:4]  # four test images (4, 64)
saliency = Saliency(model).attribute(x, target="pred")  # |d logit[pred] / d pixel|
ig = IntegratedGradients(model).attribute(x, target="pred", n_steps=50)  # baseline: black
smooth = SmoothGrad(model).attribute(x, target="pred", noise_std=0.1, n_samples=32, seed=0)

print(f"explaining predictions {ig.target.tolist()} (true labels {y[:4].tolist()})")
for name, attr in [("saliency", saliency), ("integrated gradients", ig), ("smoothgrad", smooth)]:
    top = attr.values.abs().argmax(1).tolist()  # most important pixel of each image
    print(f"{name:>21}: top pixel (row, col) {[divmod(p, 8) for p in top]}")
# IG's attributions add up to logit(x) - logit(baseline); delta is how far off the integral is
print(f"integrated gradients completeness error |delta|: max {ig.delta.abs().max():.1e}")

# The whole test set at once: mean |saliency| per pixel, per true class.
per_class = attribute_dataset(Saliency(model), (X, y), target="label")
print(f"{per_class.n_samples} test images; most important pixels overall: "
      f"{per_class.ranking()[:5]}")

# Pictures: one heatmap per class, and IG's signed maps over the four images.
per_class_picture = ImageAttributionDisplay.from_result(
    per_class, image_shape=(8, 8), class_names=digits.class_names
).plot(ncols=5)
per_class_picture.figure_.savefig(out / "saliency_by_class.png", dpi=100)
ImageAttributionDisplay.from_result(ig, image_shape=(8, 8)).plot() \
    .figure_.savefig(out / "integrated_gradients.png", dpi=100)
print(f"saved saliency_by_class.png and integrated_gradients.png in {out}")
