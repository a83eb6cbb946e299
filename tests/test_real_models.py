"""netxray on HF transformers built from small configs (random weights, no download)."""

import numpy as np
import pytest
import torch

import netxray
from netxray.capture import default_layers
from netxray.health import Thresholds, default_loss
from netxray.health.checks import is_pretrained
from netxray.health.rules import _rule_gradients
from padded_ids import padded

transformers = pytest.importorskip("transformers")

SENTENCES = [[5, 17, 23, 9, 41], [12, 7], [33, 8, 8, 19], [44], [6, 30, 2, 27, 11, 38]]


def bert(**kw):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, num_labels=3, **kw)
    return transformers.BertForSequenceClassification(cfg).eval()


def gpt2():
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=50, n_embd=16, n_layer=2, n_head=2, n_positions=32)
    return transformers.GPT2LMHeadModel(cfg).eval()


def encodings(seqs, width, batch_size, left=False):
    """The sentences padded to ``width`` in BatchEncodings of ``batch_size`` (pad id 0)."""
    out = []
    for i in range(0, len(seqs), batch_size):
        chunk = seqs[i:i + batch_size]
        ids, am = padded(chunk, width, left)
        labels = torch.tensor([k % 3 for k in range(i, i + len(chunk))])
        out.append(transformers.BatchEncoding(
            {"input_ids": ids, "attention_mask": am, "labels": labels}))
    return out


def test_default_layers_of_bert_and_gpt2_are_mlp_activations_and_blocks():
    names = list(default_layers(bert()))
    assert names == [
        "bert.encoder.layer.0", "bert.encoder.layer.0.intermediate.intermediate_act_fn",
        "bert.encoder.layer.1", "bert.encoder.layer.1.intermediate.intermediate_act_fn",
        "bert.pooler.activation",
    ]
    assert type(bert().bert.encoder.layer[0].intermediate.intermediate_act_fn).__name__ == (
        "GELUActivation")
    g = list(default_layers(gpt2()))
    assert g == ["transformer.h.0", "transformer.h.0.mlp.act", "transformer.h.1",
                 "transformer.h.1.mlp.act"]


def test_bert_token_rows_do_not_depend_on_padding_or_batch_size():
    model = bert()
    layers = ["bert.embeddings.word_embeddings", "bert.encoder.layer.1",
              "bert.encoder.layer.1.intermediate.intermediate_act_fn"]
    runs = [netxray.activations(model, encodings(SENTENCES, w, b), layers=layers)
            for w, b in [(6, 5), (10, 2), (6, 1), (8, 3)]]
    first = runs[0]
    assert first.token_layers == tuple(layers)
    assert first["bert.encoder.layer.1"].shape == (18, 16) and first.outputs.shape == (5, 3)
    assert first.targets.tolist() == [0, 1, 2, 0, 1]
    for other in runs[1:]:
        assert torch.equal(other.token_index, first.token_index)
        for name in layers:
            torch.testing.assert_close(other[name], first[name], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(other.outputs, first.outputs, rtol=1e-5, atol=1e-5)
    # each sentence alone, without padding or a mask: the same rows
    with torch.no_grad(), netxray.record(model, layers[1]) as rec:
        for s in SENTENCES:
            model(input_ids=torch.tensor([s]))
    alone = torch.cat([c[0] for c in rec.calls(layers[1])])
    torch.testing.assert_close(first[layers[1]], alone, rtol=1e-5, atol=1e-5)
    # the word embeddings are the embedding rows of the real tokens, checked in NumPy
    E = model.bert.embeddings.word_embeddings.weight.detach().numpy()
    np.testing.assert_array_equal(first[layers[0]].numpy(), E[np.concatenate(SENTENCES)])


def test_bert_pooled_rows_match_numpy_on_the_unpadded_tokens():
    model = bert()
    name = "bert.encoder.layer.0.intermediate.intermediate_act_fn"
    tokens = netxray.activations(model, encodings(SENTENCES, 7, 2), layers=name)
    rows = tokens[name].numpy().astype(np.float64)
    seq = tokens.token_index[:, 0].numpy()
    mean = netxray.activations(model, encodings(SENTENCES, 9, 3), layers=name, pool="mean")
    expected_mean = np.stack([rows[seq == i].mean(0) for i in range(len(SENTENCES))])
    np.testing.assert_allclose(mean[name].numpy(), expected_mean, rtol=1e-4, atol=1e-5)
    # BERT's positions ignore the mask, so left padding shifts them: compare with right padding
    right = netxray.activations(model, encodings(SENTENCES, 9, 3), layers=name, pool="first")
    np.testing.assert_allclose(right[name].numpy(), np.stack(
        [rows[seq == i][0] for i in range(len(SENTENCES))]), rtol=1e-4, atol=1e-5)
    assert mean.token_index is None and mean.token_layers == ()


def test_model_outputs_are_picked_by_key_index_or_callable():
    model = bert()
    data = encodings(SENTENCES, 6, 5)
    with torch.no_grad():
        expected = model(**{k: v for k, v in data[0].items() if k != "labels"}).logits
    a = netxray.activations(model, data, layers="bert.pooler.activation")
    torch.testing.assert_close(a.outputs, expected)  # a ModelOutput: its logits by default
    b = netxray.activations(model, data, layers="bert.pooler.activation", output=0)
    torch.testing.assert_close(b.outputs, expected)
    c = netxray.activations(model, data, layers="bert.pooler.activation",
                            output=lambda o: o.logits.softmax(-1))
    torch.testing.assert_close(c.outputs, expected.softmax(-1))
    with pytest.raises(ValueError, match="has no 'hidden'; it has 'logits'"):
        netxray.activations(model, data, layers="bert.pooler.activation", output="hidden")


def test_gpt2_per_token_logits_and_labels_keep_real_tokens_only():
    model = gpt2()
    data = encodings(SENTENCES, 8, 2)
    for batch in data:  # language-model labels: the ids themselves, per token
        batch["labels"] = batch["input_ids"].clone()
    a = netxray.activations(model, data, layers="transformer.h.1.mlp.act")
    assert a.token_outputs and a.outputs.shape == (18, 50)
    assert a.targets.tolist() == [t for s in SENTENCES for t in s]
    with torch.no_grad():
        alone = torch.cat([model(input_ids=torch.tensor([s])).logits[0] for s in SENTENCES])
    torch.testing.assert_close(a.outputs, alone, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="labels are per token"):
        netxray.activations(model, data, layers="transformer.h.1.mlp.act", pool="mean")


# ------------------------------------------------------------ statistics and diagnostics


def _alone(model, names, seqs):
    """Each sentence run alone (no padding, no mask) with plain forward hooks: the layers'
    outputs ``(tokens, features)`` float64, an independent reference for netxray."""
    named = dict(model.named_modules())
    got = {n: [] for n in names}
    handles = [named[n].register_forward_hook(
        lambda _m, _i, out, n=n: got[n].append((out[0] if isinstance(out, tuple) else out)[0]))
        for n in names]
    try:
        with torch.no_grad():
            for s in seqs:
                model(input_ids=torch.tensor([s]))
    finally:
        for h in handles:
            h.remove()
    return {n: torch.cat(v).double().numpy() for n, v in got.items()}


BERT_LAYERS = ["bert.encoder.layer.0.intermediate.intermediate_act_fn", "bert.encoder.layer.0",
               "bert.encoder.layer.1.intermediate.intermediate_act_fn", "bert.encoder.layer.1"]


def test_bert_statistics_are_numpy_on_the_unpadded_tokens_however_padded_or_batched():
    model = bert()
    ref = _alone(model, BERT_LAYERS, SENTENCES)
    n_tokens = sum(map(len, SENTENCES))
    runs = [netxray.collect_stats(model, encodings(SENTENCES, w, b), loss_fn=default_loss)
            for w, b in [(6, 5), (10, 2), (6, 1), (8, 3)]]
    for stats in runs:
        assert list(stats) == [*BERT_LAYERS, "bert.pooler.activation"]
        for name in BERT_LAYERS:
            s, r = stats[name], ref[name]
            assert s.per_token and s.shape == (r.shape[1],)
            np.testing.assert_array_equal(s.count, np.full(r.shape[1], n_tokens))
            np.testing.assert_allclose(s.mean, r.mean(0), rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(s.var, r.var(0), rtol=1e-4, atol=1e-7)
            np.testing.assert_allclose(s.min, r.min(0), rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(s.max, r.max(0), rtol=1e-4, atol=1e-6)
            np.testing.assert_array_equal(s.frac_active, (r > 0).mean(0))
        pooler = stats["bert.pooler.activation"]
        assert not pooler.per_token and pooler.count[0] == len(SENTENCES)
        assert stats.n_samples == 5 and stats.output_shape == (3,)
        assert stats.loss == pytest.approx(runs[0].loss, rel=1e-5)


def test_bert_gradient_statistics_over_real_tokens_match_autograd_alone():
    model = bert()
    name = "bert.encoder.layer.0"
    labels = [k % 3 for k in range(len(SENTENCES))]
    sq, rows = 0.0, 0
    for s, y in zip(SENTENCES, labels, strict=True):  # reference: each sentence alone
        kept = []
        h = model.bert.encoder.layer[0].register_forward_hook(
            lambda _m, _i, out, kept=kept: kept.append(out[0] if isinstance(out, tuple) else out))
        try:
            logits = model(input_ids=torch.tensor([s])).logits
        finally:
            h.remove()
        (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, torch.tensor([y])),
                                   kept[0])
        sq += float(g.double().square().sum())
        rows += len(s)
    expected = np.sqrt(sq / rows)
    for w, b in [(6, 5), (9, 2)]:
        stats = netxray.collect_stats(model, encodings(SENTENCES, w, b), [name], gradients=True)
        assert stats[name].grad_norm == pytest.approx(expected, rel=1e-4)
        assert stats[name].grad_rms == pytest.approx(expected / 4, rel=1e-4)  # 16 features
    assert all(p.grad is None for p in model.parameters())


class SharedReluBlock(torch.nn.Module):
    """torchvision's BasicBlock, written here: one ReLU module called twice per forward."""

    def __init__(self, c=4):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(c)
        self.relu = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


def resnet():
    torch.manual_seed(0)
    return torch.nn.Sequential(SharedReluBlock(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()


def test_a_shared_relu_is_one_layer_per_call_in_stats_and_diagnostics():
    model = resnet()
    with torch.no_grad():
        model[0].bn2.bias[2] = -50.0  # channel 2 dies at the second call only
    X = torch.randn(64, 4, 6, 6, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(2))
    block = model[0]
    with torch.no_grad():
        first = block.relu(block.bn1(block.conv1(X)))
        second = block.relu(block.bn2(block.conv2(first)) + X)
    stats = netxray.collect_stats(model, (X, y), "0.relu", batch_size=20)
    assert list(stats) == ["0.relu", "0.relu#1"]
    for name, ref in (("0.relu", first), ("0.relu#1", second)):
        r = ref.double().numpy().transpose(1, 0, 2, 3).reshape(4, -1)  # channels x (n * h * w)
        s = stats[name]
        assert s.units == 4 and s.shape == (4, 6, 6)
        np.testing.assert_array_equal(s.count, np.full(4, 64 * 36))
        np.testing.assert_allclose(s.mean, r.mean(1), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(s.var, r.var(1), rtol=1e-4, atol=1e-7)
        np.testing.assert_array_equal(s.frac_active, (r > 0).mean(1))
    report = netxray.diagnose(model, (X, y), "0.relu")
    (dead,) = report.by_kind("dead_units")
    assert dead.layer == "0.relu#1" and dead.units == (2,) and dead.evidence["inputs"] == 64
    assert [r["layer"] for r in report.layer_table()] == ["0.relu", "0.relu#1"]


def test_a_sequence_first_lstm_is_reduced_batch_first_over_real_tokens():
    class Tagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(50, 6)
            self.lstm = torch.nn.LSTM(6, 5)  # sequence-first

        def forward(self, input_ids, attention_mask=None):
            out, _ = self.lstm(self.emb(input_ids).transpose(0, 1))
            return out.transpose(0, 1)

    torch.manual_seed(0)
    model = Tagger().eval()
    ref = []
    with torch.no_grad():
        for s in SENTENCES:
            ref.append(model(torch.tensor([s]))[0])
    ref = torch.cat(ref).double().numpy()
    for w, b in [(6, 5), (9, 2)]:
        data = [{k: v for k, v in e.items() if k != "labels"} for e in encodings(SENTENCES, w, b)]
        s = netxray.collect_stats(model, data, "lstm")["lstm"]
        assert s.per_token and s.count.tolist() == [18] * 5
        np.testing.assert_allclose(s.mean, ref.mean(0), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(s.max, ref.max(0), rtol=1e-5, atol=1e-7)


def _classification_data(n=96, width=10, seed=0):
    """Sentences of 2..10 tokens labelled by whether token 7 occurs, batched and padded."""
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(1, 50, (int(torch.randint(2, width + 1, (1,), generator=g)),),
                          generator=g).tolist() for _ in range(n)]
    for i, s in enumerate(seqs):
        if i % 2:
            s[int(torch.randint(0, len(s), (1,), generator=g))] = 7
    batches = encodings(seqs, width, 16)
    for i, b in enumerate(batches):
        b["labels"] = torch.tensor([int(7 in s) for s in seqs[16 * i:16 * i + 16]])
    return batches


def test_a_healthy_small_bert_gets_no_warnings_untrained_or_briefly_trained():
    model = bert()
    data = _classification_data()
    report = netxray.diagnose(model, data)
    assert [f for f in report.findings if f.severity != "info"] == [], report.summary()
    assert not report.pretrained
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(3):
        for b in data:
            opt.zero_grad()
            model(**b).loss.backward()
            opt.step()
    model.eval()
    trained = netxray.diagnose(model, data)
    assert trained.loss < report.loss
    assert [f for f in trained.findings if f.severity != "info"] == [], trained.summary()
    # gradients compare the blocks' hidden states only (not logits against token states)
    assert trained.skipped == () and not trained.by_kind("vanishing_gradients")
    (forced,) = _rule_gradients(trained.stats, Thresholds(gradient_ratio=1.0))
    assert list(forced.evidence["grad_rms"]) == ["bert.encoder.layer.0", "bert.encoder.layer.1"]


def test_planted_dead_mlp_units_are_found_exactly():
    model = bert()
    act = "bert.encoder.layer.1.intermediate.intermediate_act_fn"
    with torch.no_grad():
        model.bert.encoder.layer[1].intermediate.dense.bias[[3, 17, 30]] = -100.0
    report = netxray.diagnose(model, _classification_data())
    (dead,) = report.by_kind("dead_units")
    assert dead.layer == act and dead.units == (3, 17, 30)
    assert dead.evidence["per_token"] and "tokens" in dead.advice
    assert report.kinds == {"dead_units"}, report.summary()
    assert "He init" in dead.advice  # built from a config: not pretrained


def test_a_nan_in_one_block_weight_is_found_in_that_block():
    model = bert()
    with torch.no_grad():
        model.bert.encoder.layer[1].output.dense.weight[0, 0] = float("nan")
    report = netxray.diagnose(model, _classification_data())
    found = report.by_kind("nonfinite")
    assert [f.evidence.get("parameters") for f in found if "parameters" in f.evidence] == [
        ["bert.encoder.layer.1.output.dense.weight"]]
    layer = [f for f in found if "nan" in f.evidence]
    assert [f.layer for f in layer] == ["bert.encoder.layer.1"]
    assert report.stats["bert.encoder.layer.1.intermediate.intermediate_act_fn"].n_nonfinite == 0
    assert report.kinds == {"nonfinite"}


class GatedBlock(torch.nn.Module):
    """A transformer block with a sigmoid-gated MLP (GLU style)."""

    def __init__(self, d=16, hidden=24):
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(d, 2, batch_first=True)
        self.norm1, self.norm2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.gate, self.up, self.down = (torch.nn.Linear(d, hidden), torch.nn.Linear(d, hidden),
                                         torch.nn.Linear(hidden, d))
        self.gate_act = torch.nn.Sigmoid()

    def forward(self, x, pad):
        x = self.norm1(x + self.attn(x, x, x, key_padding_mask=pad, need_weights=False)[0])
        return self.norm2(x + self.down(self.gate_act(self.gate(x)) * self.up(x)))


class GatedTransformer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(50, 16)
        self.blocks = torch.nn.ModuleList([GatedBlock() for _ in range(3)])
        self.head = torch.nn.Linear(16, 2)

    def forward(self, input_ids, attention_mask):
        x, pad = self.emb(input_ids), attention_mask == 0
        for block in self.blocks:
            x = block(x, pad)
        return self.head(x[:, 0])


def test_a_planted_saturated_gate_is_found_exactly():
    torch.manual_seed(0)
    model = GatedTransformer().eval()
    data = _classification_data()
    assert list(default_layers(model)) == [f"blocks.{i}{s}" for i in range(3)
                                           for s in ("", ".gate_act")]
    healthy = netxray.diagnose(model, data)
    assert [f for f in healthy.findings if f.severity != "info"] == [], healthy.summary()
    with torch.no_grad():
        model.blocks[1].gate.bias[[2, 5]] = 40.0
    report = netxray.diagnose(model, data)
    (sat,) = report.by_kind("saturated_units")
    assert sat.layer == "blocks.1.gate_act" and sat.units == (2, 5)
    assert report.kinds == {"saturated_units"}, report.summary()


def test_pretrained_weights_are_never_told_to_reinitialise(tmp_path):
    built = bert()
    built.save_pretrained(tmp_path)
    model = transformers.BertForSequenceClassification.from_pretrained(tmp_path).eval()
    assert is_pretrained(model) and not is_pretrained(built)
    with torch.no_grad():
        model.bert.encoder.layer[0].intermediate.dense.bias[[1, 2]] = -100.0
    data = _classification_data()
    report = netxray.diagnose(model, data)
    assert report.pretrained
    (dead,) = report.by_kind("dead_units")
    assert dead.units == (1, 2) and "pre-training" in dead.advice
    assert "He init" not in dead.advice and "do not re-initialise" in dead.advice
    tuned = netxray.diagnose(model, data, history=[0.7, 0.6])
    assert "fine-tuning" in tuned.by_kind("dead_units")[0].advice
    assert "He init" in netxray.diagnose(model, data, pretrained=False).by_kind(
        "dead_units")[0].advice
