"""netxray on HF transformers built from small configs (random weights, no download)."""

import numpy as np
import pytest
import torch

import netxray
from netxray.capture import default_layers

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
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        am = torch.zeros_like(ids)
        for j, s in enumerate(chunk):
            where = slice(width - len(s), width) if left else slice(0, len(s))
            ids[j, where] = torch.tensor(s)
            am[j, where] = 1
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
