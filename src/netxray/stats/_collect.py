"""``collect_stats``: run a model over a dataset and reduce each layer's output inside hooks.

Resolves which output dimension holds a layer's units (channels after conv-like layers,
else the last dimension), keeps one :class:`~netxray.stats.UnitStats` per layer plus
gradient sums, and returns a :class:`~netxray.stats.NetworkStats`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from netxray.families import DEFAULT_HIST_RANGES, activation_family, saturation_band
from netxray.stats._kernels import Scratch, _as_units_last
from netxray.stats._results import LayerStats, NetworkStats, ParamStats
from netxray.stats._state import UnitStats

_CHANNEL_MODULES = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.GroupNorm,
)


def _unit_dims(model: nn.Module, chosen: Mapping[str, nn.Module]) -> dict[str, int]:
    """Channels (dim 1) for conv-like layers and activations that follow one; else last dim."""
    out: dict[str, int] = {}
    last = -1
    for name, module in model.named_modules():
        if isinstance(module, _CHANNEL_MODULES):
            last = 1
        elif isinstance(module, nn.Linear | nn.Bilinear | nn.LayerNorm | nn.Embedding):
            last = -1
        if name in chosen:
            out[name] = last
    return out


class _Collector:
    """Hooks state for one collect_stats call: per-layer UnitStats plus gradient sums."""

    def __init__(self, model: nn.Module, chosen: Mapping[str, nn.Module], *, unit_dims: dict[str, int],
                 tanh_threshold: float, sigmoid_threshold: float, bins: int) -> None:
        self.model = model
        self.chosen = chosen
        self.family = {n: activation_family(m) for n, m in chosen.items()}
        self.stats = {
            n: UnitStats(
                unit_dim=unit_dims[n],
                saturation=saturation_band(
                    self.family[n], tanh_threshold=tanh_threshold, sigmoid_threshold=sigmoid_threshold
                ),
                hist_range=DEFAULT_HIST_RANGES[self.family[n]],
                bins=bins,
            )
            for n in chosen
        }
        self.order: list[str] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.calls: dict[str, int] = dict.fromkeys(chosen, 0)  # per forward pass (max)
        self.batch_calls: dict[str, int] = dict.fromkeys(chosen, 0)
        self.outputs: list[tuple[str, torch.Tensor]] = []  # this batch's, for gradients only
        self.keep_outputs = False
        self.grad_abs: dict[str, torch.Tensor] = {}
        self.grad_count: dict[str, torch.Tensor] = {}
        self.grad_sq: dict[str, torch.Tensor] = {}
        self.grad_samples: dict[str, int] = {}
        self.param_grad: dict[str, torch.Tensor] = {}
        self.n_samples = 0
        self.loss_sum = 0.0
        self.loss_n = 0
        self.output_shape: tuple[int, ...] = ()
        self.scratch = Scratch()

    def hook(self, name: str, output: torch.Tensor) -> None:
        if name not in self.shapes:
            self.order.append(name)
            self.shapes[name] = tuple(output.shape[1:])
        self.batch_calls[name] += 1
        self.stats[name].update(output.detach(), scratch=self.scratch)
        if self.keep_outputs and output.requires_grad:
            self.outputs.append((name, output))

    def end_batch(self) -> None:
        for name, n in self.batch_calls.items():
            self.calls[name] = max(self.calls[name], n)
            self.batch_calls[name] = 0

    def add_grad(self, name: str, g: torch.Tensor, batch: int) -> None:
        """``g``: gradient of the batch's mean loss w.r.t. the layer output (batch, ...)."""
        ps = g.detach() * batch  # per-sample loss gradients (loss_fn averages over the batch)
        st = self.stats[name]
        x, dims = _as_units_last(ps, st.unit_dim)
        absum = x.abs().sum(dims, dtype=torch.float64)
        cnt = torch.full_like(absum, x.numel() / absum.numel())
        sq = ps.double().square().sum()
        if name in self.grad_abs:
            self.grad_abs[name] += absum
            self.grad_count[name] += cnt
            self.grad_sq[name] += sq
            self.grad_samples[name] += batch
        else:
            self.grad_abs[name], self.grad_count[name] = absum, cnt
            self.grad_sq[name], self.grad_samples[name] = sq, batch

    def sync(self) -> None:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        for st in self.stats.values():
            if st.state is not None:
                st.sync()
        for d in (self.grad_abs, self.grad_count, self.grad_sq, self.param_grad):
            for t in d.values():
                dist.all_reduce(t)
        totals = torch.tensor([float(self.n_samples), self.loss_sum, float(self.loss_n)],
                              dtype=torch.float64)
        dist.all_reduce(totals)
        self.n_samples, self.loss_sum, self.loss_n = int(totals[0]), float(totals[1]), int(totals[2])
        for name in self.grad_samples:
            n = torch.tensor([float(self.grad_samples[name])], dtype=torch.float64)
            dist.all_reduce(n)
            self.grad_samples[name] = int(n.item())

    def result(self) -> NetworkStats:
        layers: dict[str, LayerStats] = {}
        names = self.order + [n for n in self.chosen if n not in self.order]
        for name in names:
            st = self.stats[name]
            if st.state is None:
                continue  # the layer never ran
            arrays = st.compute()
            arrays.pop("total")
            grad_abs_mean = grad_norm = None
            if name in self.grad_abs:
                grad_abs_mean = (self.grad_abs[name] / self.grad_count[name].clamp(min=1)).cpu().numpy()
                grad_norm = math.sqrt(float(self.grad_sq[name]) / max(self.grad_samples[name], 1))
            layers[name] = LayerStats(
                name=name,
                module_type=type(self.chosen[name]).__name__,
                family=self.family[name],
                shape=self.shapes[name],
                calls=self.calls[name],
                hist_edges=st.hist_edges,
                saturation=st.saturation,
                grad_abs_mean=grad_abs_mean,
                grad_norm=grad_norm,
                **arrays,
            )
        params: dict[str, ParamStats] = {}
        for pname, p in self.model.named_parameters():
            g = self.param_grad.get(pname)
            params[pname] = ParamStats(
                name=pname,
                shape=tuple(p.shape),
                weight_norm=float(torch.linalg.vector_norm(p.detach().double())),
                grad_norm=None if g is None else float(torch.linalg.vector_norm(g) / max(self.loss_n, 1)),
            )
        loss = self.loss_sum / self.loss_n if self.loss_n else None
        return NetworkStats(layers=layers, n_samples=self.n_samples, loss=loss, params=params,
                            output_shape=self.output_shape)


def _as_input(x: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Like ``_checks.as_input_tensor``, with a cheap finiteness test first (one sum
    instead of ``isfinite`` over the whole batch, which costs ~10% of an MLP forward)."""
    from netxray._checks import as_input_tensor, check_finite, model_device, model_dtype

    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim == 0 or not len(x):
        return as_input_tensor(x, model, "inputs")
    x = x.to(device=model_device(model), dtype=model_dtype(model))
    if not bool(torch.isfinite(x.sum())):
        check_finite(x, "inputs")  # raises, naming the first bad value (unless sum overflowed)
    return x


def _default_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(outputs, targets)


def collect_stats(
    model: nn.Module,
    data: Any,
    layers: Any = None,
    *,
    gradients: bool = False,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 1024,
    unit_dim: int | None = None,
    tanh_threshold: float = 0.99,
    sigmoid_threshold: float = 0.01,
    bins: int = 0,
    allow_train: bool = False,
    sync: bool = True,
) -> NetworkStats:
    """Run ``model`` over ``data`` and return per-unit statistics of each selected layer.

    ``data``: a tensor ``(n, ...)``, an ``(X, y)`` pair, a DataLoader or any iterable of
    batches. ``layers``: as :func:`netxray.capture.select_layers` (default: the activation
    modules). Memory stays flat: each batch is reduced inside the hooks and dropped.

    ``loss_fn(outputs, targets)`` must return the *mean* loss over the batch (like
    ``nn.CrossEntropyLoss()``); the loss is recorded whenever targets are present. With
    ``gradients=True`` (``loss_fn`` defaults to cross-entropy) it also records, per layer,
    the per-sample gradient norm and per-unit mean |gradient| of the loss with respect to
    the layer output, and per parameter the norm of the full-data gradient -- computed with
    ``torch.autograd.grad``, so parameters' ``.grad`` stay untouched.

    ``unit_dim`` overrides which output dimension indexes units (default: channels, dim 1,
    for conv-like layers and activations after them; the last dimension otherwise). With an
    initialized ``torch.distributed`` process group and ``sync=True`` every rank must call
    this and all get the statistics over all ranks' data. ``bins``: histogram bins per unit
    over a fixed range per activation family; 0 (the default) skips histograms, which are the
    costliest statistic (``bincount`` is single-threaded): about 1.2x the plain forward pass
    of an MLP or a small CNN without them, 1.4-1.7x with 32 bins (benchmarks/results/stats.md).
    """
    from netxray._checks import check_eval_mode, preserved_state
    from netxray.capture import first_tensor, hooks, iter_batches, select_layers

    chosen = select_layers(model, layers)
    check_eval_mode(model, allow_train=allow_train)
    dims = _unit_dims(model, chosen) if unit_dim is None else dict.fromkeys(chosen, unit_dim)
    col = _Collector(model, chosen, unit_dims=dims, tanh_threshold=tanh_threshold,
                     sigmoid_threshold=sigmoid_threshold, bins=bins)
    if gradients and loss_fn is None:
        loss_fn = _default_loss
    params = [(n, p) for n, p in model.named_parameters() if p.is_floating_point()]

    with preserved_state(model), hooks(chosen, col.hook):
        if gradients:
            for _, p in params:
                p.requires_grad_(True)
            col.keep_outputs = True
        for x, y in iter_batches(data, batch_size):
            x = _as_input(x, model)
            b = int(x.shape[0])
            col.n_samples += b
            if gradients:
                if y is None:
                    raise ValueError(
                        "gradients=True needs targets: pass data as (X, y) or batches of (x, y)"
                    )
                y = y.to(x.device)
                col.outputs = []
                with torch.enable_grad():
                    out = model(x)
                    loss = loss_fn(out, y)
                    if loss.ndim != 0:
                        raise ValueError(
                            f"loss_fn must return a scalar (the batch mean), got shape {tuple(loss.shape)}"
                        )
                    wrt = [t for _, t in col.outputs] + [p for _, p in params]
                    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
                for (name, _), g in zip(col.outputs, grads[: len(col.outputs)], strict=True):
                    if g is not None:
                        col.add_grad(name, g, b)
                for (pname, _), g in zip(params, grads[len(col.outputs):], strict=True):
                    if g is None:
                        continue
                    g64 = g.detach().double() * b
                    if pname in col.param_grad:
                        col.param_grad[pname] += g64
                    else:
                        col.param_grad[pname] = g64
                col.outputs = []
                lv = float(loss.detach())
                out = first_tensor(out)
                out = None if out is None else out.detach()
                del loss, wrt, grads  # free this batch's graph before the next forward
            else:
                with torch.no_grad():
                    out = model(x)
                    lv = None
                    if loss_fn is not None and y is not None:
                        lv = float(loss_fn(out, y.to(x.device)))
            col.end_batch()
            out_t = first_tensor(out)
            if out_t is not None:
                col.output_shape = tuple(out_t.shape[1:])
            if lv is not None:
                col.loss_sum += lv * b
                col.loss_n += b
    if sync:
        col.sync()
    return col.result()
