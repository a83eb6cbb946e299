"""Watch a network that is not a PyTorch module: the lecture's NumPy MLP, logged by hand.

The lecture trains a 2-10-2 ReLU network on two moons with plain NumPy (full batch, lr 0.2,
300 epochs, seed 5). ``netxray.watch(None, ...)`` takes its arrays through ``w.log``: the
hidden layer's outputs and their gradient, the weights and their gradients, the loss. The
run store then answers questions about training: when did each hidden unit die, how did
activity and the updates evolve. Run it again with LR = 2.0 to watch units die early.
"""

import os
from pathlib import Path

import numpy as np
from sklearn.datasets import make_moons
from sklearn.model_selection import train_test_split

import netxray

LR, EPOCHS = 0.2, 300
OUT = Path(os.environ.get("NETXRAY_EXAMPLES_OUT", "netxray-examples"))

rng = np.random.default_rng(5)
X, y = make_moons(n_samples=400, noise=0.25, random_state=5)
y_onehot = np.eye(2)[y]
X_train, X_test, y_train, y_test = train_test_split(X, y_onehot, test_size=0.3, random_state=5)
W1 = rng.normal(scale=0.4, size=(2, 10))
B1 = np.zeros(10)
W2 = rng.normal(scale=0.4, size=(10, 2))
B2 = np.zeros(2)

with netxray.watch(None, OUT / "lecture-run", every=10, overwrite=True,
                   config={"lr": LR, "epochs": EPOCHS, "hidden": 10}) as w:
    for epoch in range(1, EPOCHS + 1):
        z1 = X_train @ W1 + B1
        a1 = np.maximum(0, z1)
        logits = a1 @ W2 + B2
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = exp / exp.sum(axis=1, keepdims=True)
        loss = -np.mean(np.sum(y_train * np.log(probs + 1e-8), axis=1))

        grad_logits = (probs - y_train) / len(X_train)
        grad_W2, grad_B2 = a1.T @ grad_logits, grad_logits.sum(axis=0)
        grad_a1 = grad_logits @ W2.T
        grad_z1 = grad_a1 * (z1 > 0)
        grad_W1, grad_B1 = X_train.T @ grad_z1, grad_z1.sum(axis=0)

        acc = float((probs.argmax(1) == y_train.argmax(1)).mean())
        w.log(epoch,  # the weights this step's forward pass used, and their gradients
              activations={"hidden": a1, "logits": logits},
              gradients={"hidden": grad_a1, "logits": grad_logits, "W1": grad_W1,
                         "B1": grad_B1, "W2": grad_W2, "B2": grad_B2},
              weights={"W1": W1, "B1": B1, "W2": W2, "B2": B2},
              loss=loss, metrics={"acc": acc}, families={"hidden": "relu"})

        W2, B2 = W2 - LR * grad_W2, B2 - LR * grad_B2
        W1, B1 = W1 - LR * grad_W1, B1 - LR * grad_B1

run = netxray.open_run(OUT / "lecture-run")
steps = run.steps
print(f"run store: {run.file} ({len(steps.step)} steps, layers {', '.join(run.layers)})")
for epoch in (1, 100, 200, 300):
    i = int(np.searchsorted(steps.step, epoch))
    print(f"epoch {epoch:3d} | loss {steps.loss[i]:.4f} | train acc {steps.metrics['acc'][i]:.3f}")

hidden = run.layer_stats("hidden")
print("hidden layer, share of active values by step:",
      ", ".join(f"{s}: {a:.2f}" for s, a in zip(hidden.step[::6], hidden.frac_active[::6], strict=True)))
deaths = run.unit_death_steps("hidden")
if deaths:
    for unit, step in sorted(deaths.items(), key=lambda kv: kv[1]):
        print(f"unit {unit} of hidden died at step {step}")
else:
    print("unit death steps: none (every hidden unit is still active on some input)")
units = run.unit_stats("hidden")
print("least active hidden unit at the end:",
      f"unit {int(units.activity[-1].argmin())} ({units.activity[-1].min():.2f} of inputs)")
ratio = run.param_stats("W1").update_ratio
print(f"W1 update-to-weight ratio: {np.nanmax(ratio):.2e} at most, {ratio[-1]:.2e} at the end")
print("alarms:", ", ".join(str(f) for f in run.findings) or "none")
run.close()
