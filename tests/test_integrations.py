"""The Lightning and transformers callbacks: a real fit on a tiny model writes a run store
whose steps, losses and layer statistics match what the training loop itself saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import netxray
from netxray.store import open_run


def test_lightning_callback_records_each_optimizer_step(tmp_path):
    L = pytest.importorskip("lightning.pytorch")
    from netxray.integrations.lightning import NetxrayCallback

    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g)

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = netxray.mlp([5, 12, 3], seed=0)  # fc1 act1 fc2
            self.seen: list[tuple[float, np.ndarray]] = []
            self._act = None
            self.net.act1.register_forward_hook(lambda m, i, o: setattr(self, "_act", o))

        def training_step(self, batch, idx):
            loss = nn.functional.cross_entropy(self.net(batch[0]), batch[1])
            self.seen.append((loss.item(), self._act.detach().numpy().copy()))
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, idx):  # far-off inputs: would show in the max
            self.net(batch[0] * 1e3)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=8)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X[:16], y[:16]), batch_size=8)
    module = Module()
    cb = NetxrayCallback(tmp_path / "run", every=2, alarms=lambda f, s: None)
    trainer = L.Trainer(max_epochs=2, accumulate_grad_batches=2, callbacks=[cb], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path,
                        accelerator="cpu", devices=1, val_check_interval=4)
    trainer.fit(module, train, val)
    assert cb.watch is None
    steps = trainer.global_step
    assert steps == 8  # 2 epochs x 8 batches / 2 accumulated
    with open_run(tmp_path / "run") as run:
        assert run.meta["status"] == "closed" and run.config["framework"] == "lightning"
        np.testing.assert_array_equal(run.steps.step, np.arange(steps))
        # the loss of an optimizer step: the mean of its micro-batches' training_step losses
        want = [(module.seen[2 * s][0] + module.seen[2 * s + 1][0]) / 2 for s in range(steps)]
        np.testing.assert_allclose(run.steps.loss, want, rtol=1e-6)
        assert np.isfinite(run.steps.metrics["train_loss"]).all()
        ls = run.layer_stats("net.act1")
        np.testing.assert_array_equal(ls.step, [0, 2, 4, 6])
        for i, s in enumerate(ls.step):  # two micro-batches per step, no validation inputs
            a = np.concatenate([module.seen[2 * s][1], module.seen[2 * s + 1][1]])
            np.testing.assert_allclose(ls.max[i], a.max(), rtol=1e-6)
            np.testing.assert_allclose(ls.frac_active[i], (a > 0).mean(), rtol=1e-6)
        assert np.isfinite(ls.grad_rms).all()
        assert np.isfinite(run.param_stats("net.fc1.weight").update_ratio[1:]).all()


def test_lightning_callback_closes_the_run_when_training_fails(tmp_path):
    L = pytest.importorskip("lightning.pytorch")
    from netxray.integrations.lightning import NetxrayCallback

    class Boom(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = netxray.mlp([5, 4, 2], seed=0)

        def training_step(self, batch, idx):
            if idx == 3:
                raise KeyError("boom")
            return self.net(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.TensorDataset(torch.randn(40, 5))
    model = Boom()
    cb = NetxrayCallback(tmp_path / "run", every=1, alarms=lambda f, s: None)
    trainer = L.Trainer(max_epochs=1, callbacks=[cb], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, accelerator="cpu", devices=1)
    with pytest.raises(KeyError, match="boom"):
        trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=8))
    assert not model.net.act1._forward_hooks  # the watch's hooks are gone
    with open_run(tmp_path / "run") as run:
        assert run.meta["status"] == "closed" and len(run.steps.step) == 3


def test_transformers_trainer_callback_on_a_tiny_bert(tmp_path):
    tf = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from netxray.integrations.huggingface import NetxrayTrainerCallback

    torch.manual_seed(0)
    config = tf.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=32,
                           max_position_embeddings=16, num_labels=2)
    model = tf.BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(0)
    rows = [{"input_ids": torch.randint(1, 40, (10,), generator=g),
             "attention_mask": torch.ones(10, dtype=torch.long),
             "labels": torch.tensor(i % 2)} for i in range(32)]
    losses: list[float] = []

    class Recording(tf.Trainer):
        def compute_loss(self, model, inputs, *args, **kwargs):
            out = super().compute_loss(model, inputs, *args, **kwargs)
            if model.training:
                losses.append(float((out[0] if isinstance(out, tuple) else out).detach()))
            return out

    args = tf.TrainingArguments(output_dir=str(tmp_path / "hf"), max_steps=6,
                                per_device_train_batch_size=8, per_device_eval_batch_size=8,
                                learning_rate=1e-3, report_to=[], use_cpu=True,
                                save_strategy="no", eval_strategy="steps", eval_steps=3,
                                logging_steps=1, disable_tqdm=True)
    cb = NetxrayTrainerCallback(tmp_path / "run", every=2, alarms=lambda f, s: None,
                                layers=["*.intermediate.intermediate_act_fn", "classifier"])
    norms: list[tuple[float, float]] = []

    class Norms(tf.TrainerCallback):  # the reference: right after each optimizer step
        def on_optimizer_step(self, args, state, control, model=None, **kwargs):
            w = model.classifier.weight
            norms.append((float(w.detach().norm()), float(w.grad.norm())))

    trainer = Recording(model=model, args=args, train_dataset=rows, eval_dataset=rows[:8],
                        callbacks=[cb, Norms()])
    trainer.train()
    assert cb.watch is None and not model._forward_hooks and not model._forward_pre_hooks
    with open_run(tmp_path / "run") as run:
        assert run.meta["status"] == "closed" and run.config["model_type"] == "bert"
        np.testing.assert_array_equal(run.steps.step, np.arange(6))
        np.testing.assert_allclose(run.steps.loss, losses, rtol=1e-6)
        assert run.steps.metrics["lr"][0] == pytest.approx(1e-3)
        assert set(run.layers) == {"bert.encoder.layer.0.intermediate.intermediate_act_fn",
                                   "bert.encoder.layer.1.intermediate.intermediate_act_fn",
                                   "classifier"}
        ls = run.layer_stats("classifier")
        np.testing.assert_array_equal(ls.step, [0, 2, 4])
        assert np.isfinite(ls.scale).all() and np.isfinite(ls.grad_rms).all()
        ps = run.param_stats("classifier.weight")
        np.testing.assert_allclose(ps.weight_norm, [norms[s][0] for s in (0, 2, 4)], rtol=1e-6)
        np.testing.assert_allclose(ps.grad_norm, [norms[s][1] for s in (0, 2, 4)], rtol=1e-6)
        assert np.isfinite(ps.update_ratio).all() and np.isfinite(ps.grad_norm).all()
        np.testing.assert_allclose(run.steps.metrics["lr"], 1e-3 * (1 - np.arange(6) / 6))


def test_a_missing_framework_names_the_extra(monkeypatch):
    import sys

    from netxray.integrations import require

    monkeypatch.setitem(sys.modules, "no_such_framework", None)
    with pytest.raises(ImportError, match=r"pip install 'netxray\[lightning\]'"):
        require("no_such_framework", "lightning", "netxray.integrations.lightning")
