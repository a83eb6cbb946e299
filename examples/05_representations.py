"""What a digit classifier's hidden layers know: PCA and t-SNE maps, linear probes by depth,
CKA between layers, and the decision boundary on the data's top-2 PCA plane.

Each analysis returns a result object (arrays, ``save``/``load``); a Display draws it.
"""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # draw into files, no window

import netxray
from netxray import data
from netxray.boundary import decision_boundary
from netxray.plot.boundary import DecisionBoundaryDisplay
from netxray.plot.probes import CKADisplay, ProbeDisplay
from netxray.plot.projection import ProjectionDisplay
from netxray.probes import cka_matrix, linear_probes
from netxray.projection import project

out = Path(os.environ.get("NETXRAY_EXAMPLES_OUT", "netxray-examples"))
out.mkdir(parents=True, exist_ok=True)

digits = data.digits()
X, y = digits.tensors()  # (1797, 64), (1797,)
model = netxray.mlp([64, 64, 32, 10], seed=0)  # fc1, act1, fc2, act2, fc3
netxray.train(model, (X, y), epochs=15, lr=0.01, optimizer="adam", batch_size=64)
model.eval()

acts = netxray.activations(model, (X, y), layers=["act1", "act2", "fc3"])

# Maps of the last hidden layer: PCA over everything, t-SNE over a 600-image subset.
pca = project(acts["act2"], "pca")
tsne = project(acts["act2"][:600], "tsne", random_state=0)
print(f"PCA of act2 explains {pca.explained_variance_ratio.sum():.0%} of its variance; "
      f"trustworthiness PCA {pca.trustworthiness:.2f}, t-SNE {tsne.trustworthiness:.2f}")
ProjectionDisplay.from_result(pca, labels=y, class_names=digits.class_names).plot() \
    .figure_.savefig(out / "act2_pca.png", dpi=100)
ProjectionDisplay.from_result(tsne, labels=y[:600], class_names=digits.class_names).plot() \
    .figure_.savefig(out / "act2_tsne.png", dpi=100)

# How linearly decodable is the digit at each depth? And how alike are the layers?
layers = {"input": X, **acts.layers}
probes = linear_probes(layers, y, cv=3)
print("linear probe accuracy: " + ", ".join(f"{n} {a:.3f}" for n, a in probes.accuracy.items())
      + f" (chance {probes.chance:.3f})")
ProbeDisplay.from_result(probes).plot().figure_.savefig(out / "probes.png", dpi=100)
cka = cka_matrix(layers)
print(f"CKA(input, act1) = {cka.values[0, 1]:.2f}, CKA(act2, fc3) = {cka.values[2, 3]:.2f}")
CKADisplay.from_result(cka).plot().figure_.savefig(out / "cka.png", dpi=100)

# The decision surface on the plane through the data's mean and top-2 principal directions.
grid = decision_boundary(model, X, resolution=150, plane="pca")
print(f"decision boundary on the {grid.plane} plane: {len(set(grid.predictions.ravel()))} "
      "classes visible")
DecisionBoundaryDisplay.from_result(grid, y=y, class_names=digits.class_names).plot() \
    .figure_.savefig(out / "boundary_pca.png", dpi=100)
print(f"saved 5 pictures in {out}")
