"""The biased-hiring counter-example: the generator, the presets, and what netxray finds."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
import torch

from netxray import cli, resumes, text_demo
from netxray.analysis import analyze_text
from netxray.report.text import text_payload, top_tokens


@pytest.fixture(scope="module")
def demos():
    """Both presets trained and analysed once (a few seconds each)."""
    out = {}
    for name in resumes.names():
        start = time.perf_counter()
        out[name] = text_demo.run(name)
        out[name + " seconds"] = time.perf_counter() - start
    return out


def test_the_generator_is_seeded_and_labels_by_the_rule_or_the_history():
    a, ya = resumes.generate(3000, 7, biased=True)
    b, yb = resumes.generate(3000, 7, biased=True)
    assert [r.text for r in a] == [r.text for r in b] and (ya == yb).all()
    fair, yf = resumes.generate(3000, 7, biased=False)
    assert [r.text for r in fair] == [r.text for r in a]  # the same resumes, other labels
    merit = np.array([resumes.merit(r.n_relevant, r.years) for r in a])
    assert (yf == merit).all()
    women = np.array([r.gender == "women's" for r in a])
    men = np.array([r.gender == "men's" for r in a])
    changed = ya != merit
    assert (changed <= (women & (merit == 1))).all()  # only hireable women's resumes changed
    assert (ya <= merit).all()  # and only to reject
    share = changed[women & (merit == 1)].mean()
    assert abs(share - resumes.BIAS) < 0.05
    assert (ya[men] == merit[men]).all()
    # every resume says what the rule reads from it
    for r in a[:50]:
        words = r.text.replace(",", " ").split()
        assert sum(w in resumes.RELEVANT for w in words) == r.n_relevant
        assert f"{r.years} years" in r.text and (r.gender in words or r.gender == "")


def test_the_word_tokenizer():
    tok = resumes.WordTokenizer(resumes.vocabulary())
    enc = tok(["Python, 3 years, women's chess club captain", "zzz"])
    assert enc["input_ids"].shape == (2, 7) and enc["attention_mask"][1].tolist() == [1] + [0] * 6
    names = [tok.vocab[i] for i in enc["input_ids"][0]]
    assert names == ["python", "3", "years", "women's", "chess", "club", "captain"]
    assert tok.vocab[int(enc["input_ids"][1, 0])] == "[UNK]"


def test_biased_preset_is_accurate_yet_relies_on_the_gendered_word(demos):
    d = demos["biased_resumes"]
    s = text_demo.summary(d)
    assert s["accuracy"] > 0.9  # accuracy looks fine on more of the same history
    assert d.rule_accuracy < s["accuracy"] - 0.05  # but it is not the rule
    assert "women's" in s["top_tokens"]["reject"][:3]
    assert s["flip_rate"] > 0.3 and s["flip_rate_ci95"][0] > 0.3
    cf = d.analysis.counterfactual
    assert cf.n_with_term + cf.n_without_term == len(d.preset.test_texts)
    # women's -> men's turns rejections into hires; never the other way round for women's
    women = np.array(["women's" in t for t in cf.originals])
    assert (cf.pred[women & cf.flipped] == 0).all() and (cf.pred[~women & cf.flipped] == 1).all()
    assert cf.mean_prob_change < -0.2


def test_fair_preset_gives_the_word_no_weight(demos):
    d = demos["fair_resumes"]
    s = text_demo.summary(d)
    assert s["accuracy"] > 0.95 and s["flip_rate"] < 0.02 and s["flip_rate_ci95"][1] < 0.05
    tok, names = d.analysis.attribution.tokens, d.analysis.token_names
    for c, cls in enumerate(("reject", "hire")):
        assert "women's" not in s["top_tokens"][cls][:5] and "men's" not in s["top_tokens"][cls][:5]
        top = tok.mean(c)[names.index(s["top_tokens"][cls][0])]
        for word in ("women's", "men's"):  # a tenth of the top token's score at most
            assert abs(tok.mean(c)[names.index(word)]) < 0.1 * top
    biased = demos["biased_resumes"].analysis
    top = biased.attribution.tokens.mean(0)[biased.token_names.index("1")]
    assert biased.attribution.tokens.mean(0)[biased.token_names.index("women's")] > 0.3 * top


def _weight_ranking(d, cls: str) -> list[str]:
    """An independent reference: the model is linear in the summed embedding, so a token's
    integrated gradient (zero baseline, summed over the embedding) for class c is exactly
    W_out[c] . e_token. Rank the tokens seen often enough in class c by it."""
    t = d.analysis
    c = t.class_names.index(cls)
    m = d.preset.model
    with torch.no_grad():
        score = (m.embedding.weight @ m.out.weight[c]).double().numpy()
    tok = t.attribution.tokens
    n = tok.count(c).numpy()
    need = next((k for k in (3, 2) if (n >= k).sum() >= 5), 1)
    ids = [int(tok.token_ids[i]) for i in range(len(tok)) if n[i] >= need]
    ids.sort(key=lambda i: -score[i])
    return [t.token_names[int(np.flatnonzero(tok.token_ids.numpy() == i)[0])] for i in ids]


@pytest.mark.parametrize("name", ["biased_resumes", "fair_resumes"])
def test_top_tokens_come_from_the_attributions(demos, name):
    d = demos[name]
    tops = text_demo.summary(d)["top_tokens"]
    for cls in ("reject", "hire"):
        assert tops[cls] == _weight_ranking(d, cls)[: len(tops[cls])]
    # and they move with the model: silence the gendered word's embedding and look again
    if name == "biased_resumes":
        model = d.preset.model
        saved = model.embedding.weight.detach().clone()
        try:
            with torch.no_grad():
                model.embedding.weight[d.preset.tokenizer.ids["women's"]] = 0
            t = analyze_text(model, d.preset.test, target="label", n_steps=4)
            assert "women's" not in top_tokens(t)["reject"][:3]
        finally:
            with torch.no_grad():
                model.embedding.weight.copy_(saved)


def test_the_report_section_tells_the_story(demos):
    biased = text_payload(demos["biased_resumes"].analysis)["sections"][0]
    assert biased["title"] == "What the model relies on"
    kinds = [c["kind"] for c in biased["charts"]]
    assert kinds[:2] == ["findings", "tokens"] and kinds.count("table") == 3
    story = {i["kind"]: i for i in biased["charts"][0]["items"]}
    assert story["accuracy"]["text"].startswith("Accuracy above the base rate: 9")
    assert story["reliance"]["severity"] == "warning" and "\"women's\" is #" in story["reliance"]["text"]
    assert story["counterfactual"]["severity"] == "error"
    flipped = biased["charts"][-1]
    assert flipped["title"] == "Decisions that flipped" and len(flipped["rows"]) == 30
    fair = text_payload(demos["fair_resumes"].analysis)["sections"][0]
    story = {i["kind"]: i for i in fair["charts"][0]["items"]}
    assert story["reliance"]["severity"] == "ok" and story["counterfactual"]["severity"] == "ok"


def test_a_text_analysis_without_swaps_keeps_the_plain_section(demos):
    t = dataclasses.replace(demos["fair_resumes"].analysis, counterfactual=None)
    sec = text_payload(t)["sections"][0]
    assert [c["kind"] for c in sec["charts"]][0] == "tokens"
    assert all(c["title"] != "Counterfactual swaps" for c in sec["charts"])


def test_demo_command_prints_and_writes_the_summary(capsys, tmp_path):
    start = time.perf_counter()
    code = cli.main(["demo", "--preset", "biased_resumes", "--out", str(tmp_path)])
    seconds = time.perf_counter() - start
    out = capsys.readouterr().out
    assert code == 0 and seconds < 60
    assert "test accuracy 0." in out and "flip rate" in out and "reject " in out
    s = json.loads((tmp_path / "summary.json").read_text())
    assert {"accuracy", "top_tokens", "flip_rate"} <= set(s)
    assert list(s["top_tokens"]) == ["reject", "hire"] and s["flip_rate"] > 0.3
    assert f"Report: {tmp_path / 'report.html'}" in out
    html = (tmp_path / "report.html").read_text()
    assert "What the model relies on" in html
    from netxray.analysis import TextAnalysis

    back = TextAnalysis.load(tmp_path / "text.npz")
    assert back.counterfactual is not None and back.counterfactual.flip_rate == s["flip_rate"]


def test_presets_list_and_clear_errors(capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "biased_resumes" in out and "fair_resumes" in out and "dying_relu" in out
    assert cli.main(["diagnose", "--preset", "biased_resumes"]) == 2
    assert "is a text preset" in capsys.readouterr().err
    with pytest.raises(ValueError, match="text presets: biased_resumes, fair_resumes"):
        resumes.get("biased")


def test_each_preset_runs_in_seconds(demos):
    for name in resumes.names():
        assert demos[name + " seconds"] < 30, name


def test_a_dataloader_gives_the_same_tokens_and_accuracy(demos):
    from torch.utils.data import DataLoader

    d = demos["biased_resumes"]
    b = d.preset.test.batches()
    rows = [{k: v[i] for k, v in b.items()} for i in range(len(d.preset.test))]
    loader = DataLoader(rows, batch_size=64)  # dict batches, as a tokenized dataset gives them
    streamed = analyze_text(d.preset.model, loader, vocab=d.preset.tokenizer.vocab,
                            target="label", n_steps=4, class_names=resumes.CLASS_NAMES)
    whole = analyze_text(d.preset.model, d.preset.test, target="label", n_steps=4,
                         batch_size=len(rows))
    with torch.no_grad():
        pred = d.preset.model(b["input_ids"], b["attention_mask"]).argmax(1)
    assert streamed.accuracy == pytest.approx(whole.accuracy) == float((pred == b["labels"])
                                                                        .double().mean())
    s, w = streamed.attribution.tokens, whole.attribution.tokens
    assert torch.equal(s.token_ids, w.token_ids) and torch.equal(s.counts, w.counts)
    torch.testing.assert_close(s.sum, w.sum, rtol=1e-9, atol=1e-9)
    assert top_tokens(streamed) == top_tokens(whole)
