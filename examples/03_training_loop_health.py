"""Check a network's health from inside your own PyTorch training loop.

An MLP on the 8x8 digits is trained with a learning rate far too high (momentum SGD, lr 0.5).
Every few steps ``diagnose`` runs the model over the data and reports dead ReLU units; the
loop prints the step at which half of a layer has died. Try LR = 0.05: almost none die.
"""

import torch

import netxray
from netxray import data
from netxray.health import diagnose

LR, CHECK_EVERY, EPOCHS = 0.5, 10, 2

X, y = data.digits().tensors()  # (1797, 64) float32 pixels, (1797,) labels
model = netxray.mlp([64, 128, 128, 10], activation="relu", seed=0)  # fc1, act1, fc2, act2, fc3
optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
generator = torch.Generator().manual_seed(0)

half_dead_at = {}  # layer -> the first step at which >= 50% of its units were dead
step = 0
for _ in range(EPOCHS):
    for batch in torch.randperm(len(X), generator=generator).split(64):
        loss = torch.nn.functional.cross_entropy(model(X[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if step % CHECK_EVERY:
            continue
        model.eval()  # diagnose wants eval mode; it never changes weights, .grad or mode
        report = diagnose(model, (X, y))  # with labels it checks gradients too
        model.train()
        dead = {f.layer: f.evidence["share"] for f in report.by_kind("dead_units")}
        shares = ", ".join(f"{layer} {share:.0%}" for layer, share in sorted(dead.items()))
        print(f"step {step:3d}  loss {loss.item():7.3f}  dead units: {shares or 'none'}")
        for layer, share in dead.items():
            if share >= 0.5 and layer not in half_dead_at:
                half_dead_at[layer] = step
                print(f"  -> half of layer {layer} died at step {step}")

print()
print(report.summary())  # the last check in full: findings with advice, then a table per layer
