"""``collect_stats``: run a model over a dataset and reduce each layer's output inside hooks.

Resolves which output dimension holds a layer's units (channels after conv-like layers,
else the last dimension), keeps one :class:`~netxray.stats.UnitStats` per layer plus
gradient sums, and returns a :class:`~netxray.stats.NetworkStats`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from netxray._outputs import Packed, align, has_seq
from netxray._reading import Reader, Unview, grad_source
from netxray.batches import (
    Batch,
    BatchFormat,
    LabelSpec,
    MaskSpec,
    OutputSpec,
    check_output_rows,
    read_batches,
)
from netxray.families import DEFAULT_HIST_RANGES, activation_family, saturation_band
from netxray.layers import _CALL_NAME, _blocks, check_ran
from netxray.stats._grad_edges import _grad_input, _grad_inputs
from netxray.stats._kernels import Scratch, _as_units_last
from netxray.stats._loss import (
    batch_loss,
    computes_own_loss,
    default_loss,
    loss_items,
    loss_rows,
    run_for_loss,
)
from netxray.stats._results import LayerStats, NetworkStats, ParamStats
from netxray.stats._state import UnitStats


class _Collector:
    """Hooks state for one collect_stats call: per-layer UnitStats plus gradient sums.

    Layers are created as their calls are seen (``relu#1`` when ``relu`` runs twice). Per
    batch, ``begin`` sets the attention mask; layers whose output is ``(batch, seq, ...)``
    for it (or channel-first ``(batch, channels, seq)``) are reduced over the real tokens
    only (one ``index_select`` per layer). Layers inside a transformer encoder or decoder
    given a padding mask use that mask (:mod:`netxray._reading`), so padding is left out with
    gradients on too.
    """

    def __init__(self, model: nn.Module, chosen: Mapping[str, nn.Module], *, reader: Reader,
                 tanh_threshold: float, sigmoid_threshold: float, bins: int,
                 blocks: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.model = model
        self.chosen = chosen
        self.reader = reader
        self.unit_dims = {n: lay.unit_dim for n, lay in reader.layouts.layouts.items()}
        self.blocks = blocks
        self.thresholds = (tanh_threshold, sigmoid_threshold)
        self.bins = bins
        self.family: dict[str, str] = {}
        self.modules: dict[str, nn.Module] = {}
        self.stats: dict[str, UnitStats] = {}
        self.order: list[str] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.per_token: dict[str, bool] = {}
        self.outputs: list[tuple[str, Any, int | None, Unview | None, torch.Tensor | None]] = []
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
        self.begin(None, 0)

    def begin(self, mask: torch.Tensor | None, size: int) -> None:
        """A new batch of ``size`` samples with this attention mask (bool ``(size, seq)``)."""
        self.mask = mask
        self.size = size
        self.rows: torch.Tensor | None = None  # flat indices of the real tokens, lazily
        self.unmasked: list[tuple[str, tuple[int, ...]]] = []
        self.carried: dict[str, torch.Tensor] = {}
        self.reader.begin(mask, size)

    def _layer(self, name: str) -> str:
        """The selected name a call's layer name belongs to (``relu#1`` -> ``relu``)."""
        if name in self.chosen:
            return name
        call = _CALL_NAME.fullmatch(name)
        return call[1] if call and call[1] in self.chosen else name

    def _stats(self, name: str, output: torch.Tensor) -> UnitStats:
        st = self.stats.get(name)
        if st is None:
            base = self._layer(name)
            module = self.chosen[base]
            family = activation_family(module)
            tanh_th, sig_th = self.thresholds
            st = self.stats[name] = UnitStats(
                unit_dim=self.unit_dims[base],
                saturation=saturation_band(family, tanh_threshold=tanh_th, sigmoid_threshold=sig_th),
                hist_range=DEFAULT_HIST_RANGES[family],
                bins=self.bins,
            )
            self.family[name], self.modules[name] = family, module
            self.order.append(name)
        return st

    def _token_rows(self, mask: torch.Tensor, device: torch.device) -> torch.Tensor:
        if mask is self.mask:
            if self.rows is None or self.rows.device != device:
                self.rows = mask.reshape(-1).nonzero().squeeze(1).to(device)
            return self.rows
        return mask.to(device).reshape(-1).nonzero().squeeze(1)

    def select(self, name: str, t: torch.Tensor, mask: torch.Tensor | None, dim: int | None
               ) -> tuple[torch.Tensor, int | None]:
        """``t``'s real tokens ``(tokens, ...)`` when its sequence is dim ``dim`` (see
        :meth:`netxray._layout.Layouts.token_dim`), and the dim of their units; else ``t``
        and None."""
        if dim is None or mask is None:
            return t, None
        ud = self.stats[name].unit_dim % t.ndim - 1
        if dim == 2:  # channel-first (batch, channels, seq): tokens of (channels,)
            t, ud = t.transpose(1, 2), 1
        rows = self._token_rows(mask, t.device)
        return t.reshape(t.shape[0] * t.shape[1], *t.shape[2:]).index_select(0, rows), ud

    def hook(self, name: str, output: torch.Tensor, own: torch.Tensor | None,
             packed: Packed | None) -> None:
        st = self._stats(name, output)
        call = self.reader.read(name, output)  # batch-first; the batch's mask or its stack's
        output, mask = call.t, call.mask
        if call.kind == "encoder":  # inside an encoder given a padding mask: its real tokens
            self.carried[name] = mask  # type: ignore[assignment]
        if own is not None:  # a packed or nested output, padded: its own real positions
            self.carried[name] = own
            output, mask = align(name, output, own, mask)
        dim = self.reader.token_dim(name, output, mask)
        x, ud = self.select(name, output.detach(), mask, dim)
        token = ud is not None
        if name not in self.shapes:
            self.shapes[name] = tuple(x.shape[1:])
            self.per_token[name] = token
        elif self.per_token[name] != token:
            raise ValueError(
                f"layer {name!r} outputs (batch, seq, ...) sequences matching the attention "
                "mask in some batches and not in others; pass the mask with every batch"
            )
        if mask is None and output.ndim >= 3 and call.kind != "decoder":
            self.unmasked.append((name, tuple(output.shape[:2])))
        if token:
            saved, st.unit_dim = st.unit_dim, ud  # (batch, seq) became one dim
            try:
                st.update(x, scratch=self.scratch)
            finally:
                st.unit_dim = saved
        else:
            st.update(x, scratch=self.scratch)
        if self.keep_outputs and output.requires_grad:
            source, unview = grad_source(call, output, packed)
            if source.grad_fn is not None or source.is_leaf:
                self.outputs.append((name, _grad_input(source), dim, unview, mask))

    def end_batch(self) -> None:
        """Refuse padded sequences that were pooled because the batch carried no mask while
        packed or nested outputs showed that it was padded."""
        if self.mask is not None or not self.carried:
            return
        carried = next(iter(self.carried.values()))
        for name, (b, s) in self.unmasked:
            if name not in self.carried and b == carried.shape[0] and s >= carried.shape[1]:
                raise ValueError(
                    f"layer {name!r} outputs padded sequences (layer "
                    f"{next(iter(self.carried))!r} outputs packed or nested ones, or is inside "
                    "a transformer encoder given a padding mask, so the batch is padded) but "
                    "the batch carries no attention mask, so padding would count in its "
                    "statistics. Pass the mask (mask=...; for PyTorch's src_key_padding_mask, "
                    "mask=lambda batch: ~padding_mask), or record only the layers that show "
                    "the padding"
                )

    def add_grad(self, name: str, g: torch.Tensor, scale: int, dim: int | None,
                 unview: Unview | None, mask: torch.Tensor | None) -> None:
        """``g``: gradient of the batch's mean loss (over ``scale`` items) w.r.t. the layer
        output (``unview`` lays it out as the output read: see
        :func:`netxray._reading.grad_source`); reduced over the same rows (``mask``'s real
        tokens) as its statistics."""
        g = g.detach()
        if unview is not None:
            g = unview(g)
        g, token_ud = self.select(name, g, mask, dim)
        ud = self.stats[name].unit_dim % max(g.ndim, 1) if token_ud is None else token_ud
        ps = g * scale  # each row's gradient of the batch's summed loss
        x, dims = _as_units_last(ps, ud)
        absum = x.abs().sum(dims, dtype=torch.float64)
        cnt = torch.full_like(absum, x.numel() / absum.numel())
        sq = ps.double().square().sum()
        rows = int(ps.shape[0])
        if name in self.grad_abs:
            self.grad_abs[name] += absum
            self.grad_count[name] += cnt
            self.grad_sq[name] += sq
            self.grad_samples[name] += rows
        else:
            self.grad_abs[name], self.grad_count[name] = absum, cnt
            self.grad_sq[name], self.grad_samples[name] = sq, rows

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
        for name in self.order:  # forward order: the order of first calls
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
                module_type=type(self.modules[name]).__name__,
                family=self.family[name],
                shape=self.shapes[name],
                calls=1,
                per_token=self.per_token[name],
                block=self._layer(name) in self.blocks,
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


def resolve_format(
    labels: LabelSpec = "labels",
    mask: MaskSpec = "attention_mask",
    output: OutputSpec = None,
    fmt: BatchFormat | None = None,
) -> BatchFormat:
    """One :class:`BatchFormat` from the ``labels``/``mask``/``output`` options or ``fmt``
    (not both)."""
    if fmt is None:
        return BatchFormat(labels=labels, mask=mask, output=output)
    if not isinstance(fmt, BatchFormat):
        raise TypeError(f"batch_format must be a netxray.BatchFormat, got {type(fmt).__name__}")
    mask_default = isinstance(mask, str) and mask == "attention_mask"
    if labels != "labels" or not mask_default or output is not None:
        raise ValueError(
            "pass either batch_format= or the labels=/mask=/output= options, not both"
        )
    return fmt


def collect_stats(
    model: nn.Module,
    data: Any,
    layers: Any = None,
    *,
    gradients: bool = False,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 1024,
    labels: LabelSpec = "labels",
    mask: MaskSpec = "attention_mask",
    output: OutputSpec = None,
    batch_format: BatchFormat | None = None,
    unit_dim: int | None = None,
    tanh_threshold: float = 0.99,
    sigmoid_threshold: float = 0.01,
    bins: int = 0,
    allow_train: bool = False,
    sync: bool = True,
    progress: bool | None = None,
) -> NetworkStats:
    """Run ``model`` over ``data`` and return per-unit statistics of each selected layer.

    ``data``: a tensor ``(n, ...)``, an ``(X, y)`` pair, a dict of arrays (a tokenizer's
    output), a DataLoader or any iterable of batches (tensors, tuples, dicts or HF
    ``BatchEncoding``s; dict entries are passed to the model as keyword arguments), read by
    :func:`netxray.read_batches`. ``labels``: the dict entry holding the targets; ``mask``:
    where the attention mask is (a key, a tensor ``(n, seq)`` or a function of the batch);
    ``output``: the part of the model's output the loss uses (default: ``logits`` or the
    first tensor); or all three as one ``batch_format``. With a mask, every layer whose
    output is ``(batch, seq, ...)`` (or channel-first ``(batch, channels, seq)``; a
    decoder's layers with the decoder's mask; see :mod:`netxray._reading`) is reduced over
    real tokens only (``LayerStats.per_token``), so padding and batching change nothing. ``layers``: as :func:`netxray.select_layers`
    (default: activation modules and transformer blocks); a module called k times per
    forward pass gives k layers (``relu``, ``relu#1``, ...). Memory stays flat: each batch
    is reduced inside the hooks and dropped.

    ``loss_fn(outputs, targets)`` must return the *mean* loss over the batch (like
    ``nn.CrossEntropyLoss()``); the loss is recorded whenever targets are present. Per-token
    outputs with per-token labels (a language model) reach it as real tokens only
    ``(tokens, ...)``. With ``gradients=True`` it also records, per layer, the per-row
    gradient norm and per-unit mean |gradient| of the loss with respect to the layer output
    (per row: the gradient of the batch's summed loss), and per parameter the norm of the
    full-data gradient -- computed with ``torch.autograd.grad``, so parameters' ``.grad``
    stay untouched. Without ``loss_fn`` a HuggingFace model that computes its own loss from
    ``labels=`` is given them and its loss is used (next-token for a causal LM: netxray
    never shifts labels itself); other models get :func:`default_loss`.

    ``unit_dim`` overrides which output dimension indexes units (default: channels, dim 1,
    for conv-like layers and activations after them; the last dimension otherwise). With an
    initialized ``torch.distributed`` process group and ``sync=True`` every rank must call
    this and all get the statistics over all ranks' data. ``bins``: histogram bins per unit
    over a fixed range per activation family; 0 (the default) skips histograms, which are the
    costliest statistic (``bincount`` is single-threaded): about 1.2x the plain forward pass
    of an MLP or a small CNN without them, 1.4-1.7x with 32 bins (benchmarks/results/stats.md).
    ``progress``: a bar over the batches (see :mod:`netxray._progress`; ``None``: when long).
    """
    from netxray._progress import count_batches

    fmt = resolve_format(labels, mask, output, batch_format)
    return _collect(model, read_batches(data, batch_size, fmt), fmt, layers, gradients=gradients,
                    loss_fn=loss_fn, unit_dim=unit_dim, tanh_threshold=tanh_threshold,
                    sigmoid_threshold=sigmoid_threshold, bins=bins, allow_train=allow_train,
                    sync=sync, progress=progress, desc="collect_stats",
                    total=count_batches(data, batch_size))


def _collect(
    model: nn.Module,
    batches: Iterable[Batch],
    fmt: BatchFormat,
    layers: Any = None,
    *,
    gradients: bool = False,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    unit_dim: int | None = None,
    tanh_threshold: float = 0.99,
    sigmoid_threshold: float = 0.01,
    bins: int = 0,
    allow_train: bool = False,
    sync: bool = True,
    progress: bool | None = None,
    desc: str = "collect_stats",
    total: int | None = None,
) -> NetworkStats:
    """:func:`collect_stats` over batches already read (``diagnose`` peeks at the first);
    ``progress`` draws a bar named ``desc`` over ``total`` batches (when known)."""
    from netxray._checks import check_eval_mode, explained_shape_errors, preserved_state
    from netxray._progress import counted
    from netxray.capture import call_hooks, select_layers

    chosen = select_layers(model, layers)
    check_eval_mode(model, allow_train=allow_train)
    col = _Collector(model, chosen, reader=Reader(model, chosen, unit_dim),
                     tanh_threshold=tanh_threshold,
                     sigmoid_threshold=sigmoid_threshold, bins=bins, blocks=_blocks(model))
    own = gradients and loss_fn is None and fmt.labels is not None and computes_own_loss(model)
    if gradients and loss_fn is None:
        loss_fn = default_loss
    params = [(n, p) for n, p in model.named_parameters() if p.is_floating_point()]

    bar = counted(batches, desc=desc, total=total, progress=progress)
    with preserved_state(model), call_hooks(model, chosen, col.hook) as runs, \
            col.reader.hooks(), bar as batches:
        if gradients:
            for _, p in params:
                p.requires_grad_(True)
            col.keep_outputs = True
        for raw in batches:
            batch = raw.to(model)
            col.begin(batch.mask, batch.size)
            col.n_samples += batch.size
            y = batch.labels
            if gradients:
                if y is None:
                    raise ValueError(
                        "gradients=True needs targets: pass data as (X, y), batches of (x, y), "
                        "or dict batches with a labels entry (labels=... names it)"
                    )
                col.outputs = []
                with torch.enable_grad(), explained_shape_errors(model, batch.inputs):
                    result = run_for_loss(model, batch, own)
                    out = fmt.output_of(result)
                    check_output_rows(batch, out)
                    col.end_batch()
                    loss, rows = batch_loss(model, result, out, _output_mask(col, batch),
                                            loss_fn, own)
                    wrt = _grad_inputs(col.outputs) + [p for _, p in params]
                    # every label ignored (-100, rows == 0): no loss, no gradient
                    grads = (torch.autograd.grad(loss, wrt, allow_unused=True) if rows
                             else [None] * len(wrt))
                for (name, _, dim, unview, m), g in zip(
                        col.outputs, grads[: len(col.outputs)], strict=True):
                    if g is not None:
                        col.add_grad(name, g, rows, dim, unview, m)
                for (pname, _), g in zip(params, grads[len(col.outputs):], strict=True):
                    if g is None:
                        continue
                    g64 = g.detach().double() * rows
                    if pname in col.param_grad:
                        col.param_grad[pname] += g64
                    else:
                        col.param_grad[pname] = g64
                col.outputs = []
                lv = float(loss.detach()) if rows else None
                out = out.detach()
                del loss, wrt, grads, result  # free this batch's graph before the next forward
            else:
                with torch.no_grad(), explained_shape_errors(model, batch.inputs):
                    out = fmt.output_of(batch.run(model))
                    check_output_rows(batch, out)
                    col.end_batch()
                    lv = None
                    if loss_fn is not None and y is not None:
                        o, t = loss_rows(out, y, col.reader.stacks.output_mask(batch.mask))
                        lv, rows = float(loss_fn(o, t)), loss_items(loss_fn, o, t)
                        lv = None if rows == 0 else lv
            out_mask = col.reader.stacks.output_mask(batch.mask)
            token_out = out_mask is not None and has_seq(out, out_mask)
            col.output_shape = tuple(out.shape[2:] if token_out else out.shape[1:])
            if lv is not None:
                col.loss_sum += lv * rows
                col.loss_n += rows
    check_ran(chosen, col.stats, runs)
    if sync:
        col.sync()
    return col.result()


def _output_mask(col: _Collector, batch: Batch) -> Batch:
    """``batch`` with the mask of the model's output (a seq2seq model's: its decoder's)."""
    return replace(batch, mask=col.reader.stacks.output_mask(batch.mask))
