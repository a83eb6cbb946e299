"""The lecture's experiment through the Python API: a 2-10-2 ReLU MLP on two moons.

``netxray demo`` on the command line does the same. ``DemoConfig`` holds the lecture's
setup (moons(400, noise 0.25, seed 5), lr 0.2, 300 full-batch epochs, the lecture's NumPy
initialisation); change a field to run a variant, e.g. DemoConfig(hidden=(16, 16)).
"""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # draw into files, no window

from netxray import demo

out = Path(os.environ.get("NETXRAY_EXAMPLES_OUT", "netxray-examples")) / "lecture"

config = demo.DemoConfig()  # the lecture's numbers; try DemoConfig(activation="tanh")
run = demo.run(config)  # trains, then PCA of the hidden layer, saliency, a health check

print(demo.lecture_table(run))  # the lecture's printout, digit for digit
print()
print(run.health.summary())  # netxray's health check of the trained network

# The trained model and its results are plain Python objects, ready for more analysis:
hidden_units = run.model.fc1.out_features
print(f"\n{hidden_units} hidden units; first-layer weights {tuple(run.model.fc1.weight.shape)}; "
      f"{len(run.history.checkpoints)} checkpoints kept for the boundary's evolution")

report = demo.write_outputs(run, out)  # report.html (open it offline) and the same PNGs
print(f"Report: {report}")
print("Pictures: " + ", ".join(sorted(p.name for p in out.glob("*.png"))))
