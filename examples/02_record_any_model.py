"""Record the hidden layers of any PyTorch model: a small CNN on scikit-learn's 8x8 digits.

Layers are picked by their dotted name in ``model.named_modules()``, by a glob, by a module
type or by a predicate. ``netxray.record`` captures one forward pass; ``netxray.activations``
runs a whole DataLoader and keeps every selected layer's output on the CPU.
"""

import os
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netxray
from netxray import data

out = Path(os.environ.get("NETXRAY_EXAMPLES_OUT", "netxray-examples"))
out.mkdir(parents=True, exist_ok=True)

digits = data.digits()  # X: (1797, 64) pixels in [0, 1], y: (1797,) digits 0-9
X = torch.tensor(digits.X, dtype=torch.float32).reshape(-1, 1, 8, 8)  # images (n, 1, 8, 8)
y = torch.tensor(digits.y)

torch.manual_seed(0)
model = nn.Sequential(OrderedDict(
    conv1=nn.Conv2d(1, 8, 3, padding=1), relu1=nn.ReLU(), pool=nn.MaxPool2d(2),   # 8 x 4 x 4
    conv2=nn.Conv2d(8, 16, 3, padding=1), relu2=nn.ReLU(),                        # 16 x 4 x 4
    flatten=nn.Flatten(), fc=nn.Linear(16 * 4 * 4, 10),
))
netxray.train(model, (X, y), epochs=3, lr=0.01, optimizer="adam", batch_size=64)
model.eval()

# 1. By glob: every module whose name starts with "conv", during one forward pass.
with netxray.record(model, layers="conv*") as rec:
    model(X[:32])
for name in rec:
    print(f"glob 'conv*' -> {name}: {tuple(rec[name].shape)}")

# 2. By type: every nn.ReLU (a predicate works too: lambda name, m: name.startswith("relu")).
with netxray.record(model, layers=nn.ReLU) as rec:
    model(X[:32])
    model(X[32:64])  # outputs of several calls are concatenated along the batch
for name in rec:
    active = (rec[name] > 0).float().mean().item()
    print(f"type nn.ReLU -> {name}: {tuple(rec[name].shape)}, {active:.0%} of values > 0")

# 3. A name that does not exist fails at once and suggests close matches.
try:
    netxray.select_layers(model, "conv3")
except ValueError as e:
    print(f"unknown layer: {e}")

# 4. A whole DataLoader: activations of the chosen layers for every sample.
loader = DataLoader(TensorDataset(X, y), batch_size=256)
acts = netxray.activations(model, loader, layers=["relu2", "fc"])
print(f"activations over the loader: relu2 {tuple(acts['relu2'].shape)}, "
      f"targets {tuple(acts.targets.shape)}")
accuracy = (acts.outputs.argmax(1) == acts.targets).float().mean().item()
print(f"accuracy from the recorded outputs: {accuracy:.3f}")
acts.save(out / "cnn_activations.npz")  # .npz + JSON header; Activations.load reads it back
print(f"saved {out / 'cnn_activations.npz'}")
