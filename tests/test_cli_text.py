"""The CLI on a model that consumes token ids: a small BERT from a factory file, data as an
.npz of input_ids/attention_mask/labels passed by keyword, token names from --vocab."""

from __future__ import annotations

import csv
import inspect
import textwrap

import numpy as np
import pytest
import torch

from netxray import cli

transformers = pytest.importorskip("transformers")

VOCAB = ["[PAD]", "[CLS]", "[SEP]", "good", "bad", "film", "plot", "<b>", "&", "ok", "dull", "fun"]

FACTORY = """
    import torch
    import transformers

    def make_model():
        torch.manual_seed(0)
        cfg = transformers.BertConfig(
            vocab_size=12, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=32, max_position_embeddings=16, num_labels=2)
        return transformers.BertForSequenceClassification(cfg).eval()
"""


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def text_model(tmp_path):
    (tmp_path / "textnet.py").write_text(textwrap.dedent(FACTORY))
    g = np.random.default_rng(0)
    ids = g.integers(3, 12, size=(20, 7))
    ids[:, 0] = 1
    mask = np.ones_like(ids)
    mask[2, 4:] = 0
    mask[5, 3:] = 0
    np.savez(tmp_path / "tok.npz", input_ids=np.where(mask == 1, ids, 0), attention_mask=mask,
             labels=g.integers(0, 2, 20))
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return tmp_path


def _model_and_data(d):
    import importlib.util

    spec = importlib.util.spec_from_file_location("textnet_ref", d / "textnet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with np.load(d / "tok.npz") as f:
        arrays = {k: torch.as_tensor(f[k]) for k in f.files}
    return mod.make_model(), arrays


def test_explain_writes_each_real_tokens_score_and_the_text_report(capsys, text_model):
    d = text_model
    out = d / "out"
    code, stdout, err = run(capsys, "explain", "--model", f"{d}/textnet.py:make_model", "--data",
                            str(d / "tok.npz"), "--vocab", str(d / "vocab.txt"), "--out", str(out))
    assert code == 0, err
    for name in ("token_scores.csv", "token_stats.csv", "text.npz", "report.html"):
        assert (out / name).is_file() and str(out / name) in stdout
    rows = list(csv.DictReader((out / "token_scores.csv").open(encoding="utf-8")))
    model, arrays = _model_and_data(d)
    real = arrays["attention_mask"].bool()
    assert len(rows) == int(real.sum())  # padding left out
    # the scores: LayerIntegratedGradients on the auto-detected embedding, predicted class
    from netxray.attribution import LayerIntegratedGradients

    class Positional(torch.nn.Module):
        def __init__(self, hf):
            super().__init__()
            self.hf = hf

        def forward(self, ids, mask):
            return self.hf(input_ids=ids, attention_mask=mask).logits

    ref = LayerIntegratedGradients(Positional(model), layer="hf.bert.embeddings.word_embeddings")
    a = ref.attribute(arrays["input_ids"], target="pred", n_steps=32, mask=real,
                      additional_forward_args=(arrays["attention_mask"],))
    want = a.token_scores()
    for r in rows[:40]:
        s, p = int(r["sample"]), int(r["position"])
        assert r["token"] == VOCAB[int(r["token_id"])] and int(r["token_id"]) == int(
            arrays["input_ids"][s, p])
        np.testing.assert_allclose(float(r["score"]), float(want[s, p]), rtol=1e-4, atol=1e-6)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert '"id":"text"' in page and '"kind":"tokens"' in page
    assert "\\u003cb\\u003e" in page and "<b>" not in page.split('id="netxray-data"')[1]
    stats = list(csv.DictReader((out / "token_stats.csv").open(encoding="utf-8")))
    assert sum(int(r["count"]) for r in stats) == int(real.sum())


def test_explain_options_and_bad_input_exit_2(capsys, text_model):
    d = text_model
    base = ["explain", "--model", f"{d}/textnet.py:make_model", "--data", str(d / "tok.npz"),
            "--out", str(d / "o")]
    code, _, err = run(capsys, *base, "--layer", "bert.embeddings.word_embeddings",
                       "--method", "input_x_gradient")
    assert code == 0, err
    code, _, err = run(capsys, *base, "--layer", "bert.embedings")
    assert code == 2 and "not found" in err
    code, _, err = run(capsys, *base, "--method", "smoothgrad")
    assert code == 2 and "cannot attribute token ids" in err
    code, _, err = run(capsys, *base, "--target", "5")
    assert code == 2 and "outputs 2 classes" in err
    np.savez(d / "wide.npz", input_ids=np.ones((4, 3), dtype=np.int64), labels=np.array([0, 1, 2, 3]))
    code, _, err = run(capsys, "explain", "--model", f"{d}/textnet.py:make_model", "--data",
                       str(d / "wide.npz"), "--out", str(d / "o2"))
    assert code == 2 and "labels go up to 3" in err
    np.savez(d / "feat.npz", X=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]))
    code, _, err = run(capsys, "explain", "--model", f"{d}/textnet.py:make_model", "--data",
                       str(d / "feat.npz"), "--vocab", str(d / "vocab.txt"), "--out", str(d / "o3"))
    assert code == 2 and "--vocab goes with" in err


@pytest.mark.skipif(
    "mask" not in inspect.signature(__import__("netxray").diagnose).parameters,
    reason="diagnose reads dict batches with an attention mask once the batches branch is merged",
)
def test_diagnose_takes_token_ids(capsys, text_model):
    d = text_model
    code, out, err = run(capsys, "diagnose", "--model", f"{d}/textnet.py:make_model", "--data",
                         str(d / "tok.npz"), "--out", str(d / "h"))
    assert code in (0, 1), err  # 1: findings about the random weights are a verdict
    assert (d / "h" / "report.html").is_file()
