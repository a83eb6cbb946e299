"""Counterfactual word swaps: the counts and the interval against a direct hand count."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netxray
from netxray.resumes import WordTokenizer
from netxray.swaps import CounterfactualResult, counterfactual, swap_terms, wilson_interval

#: each word's vote for class 1; a text's class-1 logit is the sum over its words
WEIGHTS = {"she": 2.0, "he": -2.0, "women's": -3.0, "men's": 1.0, "good": 1.0, "bad": -1.5,
           "team": 0.0, "is": 0.0, "said": 0.0, "nothing": 0.0, "here": 0.0, "the": 0.0,
           "shed": 0.0}
VOCAB = ("[PAD]", "[UNK]", *WEIGHTS)
SWAPS = {"she": "he", "women's": "men's"}

TEXTS = [
    "she is good",          # 3 -> he: -1: flips
    "he is bad",            # -3.5 -> she: 0.5: flips
    "good women's team",    # -2 -> men's: 2: flips
    "bad men's team",       # -0.5 -> women's: -4.5: stays
    "good good she he",     # 2 -> he she: 2: stays
    "nothing here",         # no swap word: counted, not run
    "the shed",             # "he" and "she" only inside words: no swap word
    "She said HE good",     # 1 -> He said SHE good: 1: stays
]


class Votes(nn.Module):
    """Logits (0, sum of the words' weights): class 1 when the words' votes add up above 0."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(len(VOCAB), 1)
        with torch.no_grad():
            self.emb.weight.zero_()
            for i, w in enumerate(VOCAB[2:], start=2):
                self.emb.weight[i, 0] = WEIGHTS[w]

    def forward(self, input_ids, attention_mask):
        s = (self.emb(input_ids)[..., 0] * attention_mask).sum(1, keepdim=True)
        return torch.cat([torch.zeros_like(s), s], dim=1)


def _hand(text: str) -> float:
    """The class-1 logit of a plain text of space-separated words, by hand."""
    return sum(WEIGHTS[w] for w in text.lower().split())


def _hand_swap(text: str) -> str:
    both = {**SWAPS, **{b: a for a, b in SWAPS.items()}}
    return " ".join(both.get(w.lower(), w) for w in text.split())


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_counts_match_a_direct_hand_count():
    r = counterfactual(Votes().eval(), TEXTS, SWAPS, tokenizer=WordTokenizer(VOCAB),
                       class_names=("no", "yes"))
    assert (r.n_texts, r.n_with_term, r.n_without_term, r.n_flipped) == (8, 6, 2, 3)
    assert r.flip_rate == 0.5
    # the same numbers, counted directly from the weights
    with_term = [i for i, t in enumerate(TEXTS) if _hand_swap(t).lower() != t.lower()]
    assert r.index.tolist() == with_term == [0, 1, 2, 3, 4, 7]
    before = [_hand(TEXTS[i]) for i in with_term]
    after = [_hand(_hand_swap(TEXTS[i])) for i in with_term]
    assert all(abs(v) > 0 for v in before + after)  # no ties in this example
    flips = sum((a > 0) != (b > 0) for a, b in zip(before, after, strict=True))
    assert r.n_flipped == flips == 3
    np.testing.assert_array_equal(r.pred, [int(v > 0) for v in before])
    np.testing.assert_array_equal(r.pred_swapped, [int(v > 0) for v in after])
    # p of the original decision before and after, and the mean change
    p0 = [_sigmoid(v) if v > 0 else 1 - _sigmoid(v) for v in before]
    p1 = [_sigmoid(b) if a > 0 else 1 - _sigmoid(b) for a, b in zip(before, after, strict=True)]
    np.testing.assert_allclose(r.prob, p0, rtol=1e-6)
    np.testing.assert_allclose(r.prob_swapped, p1, rtol=1e-6)
    assert r.mean_prob_change == pytest.approx(np.mean(np.subtract(p1, p0)), rel=1e-6)
    assert r.swapped[-1] == "He said SHE good"  # case follows the word it replaces
    flipped = r.flipped_examples()
    drop = {i: p0[j] - p1[j] for j, i in enumerate(with_term)
            if (before[j] > 0) != (after[j] > 0)}
    assert [f["index"] for f in flipped] == sorted(drop, key=lambda i: -drop[i])
    assert [f["original"] for f in flipped] == [TEXTS[f["index"]] for f in flipped]
    assert len(r.flipped_examples(2)) == 2
    lo, hi = wilson_interval(3, 6)
    assert (r.flip_low, r.flip_high) == (lo, hi)
    assert "3 of 6" in r.summary() and "2 of 8 texts held no swap word" in r.summary()


def test_wilson_interval_against_scipy_and_a_closed_form():
    scipy_stats = pytest.importorskip("scipy.stats")
    for k, n in [(0, 1), (0, 10), (3, 6), (10, 10), (198, 416), (1, 1000)]:
        ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    # closed form at k = 0: (0, z^2 / (n + z^2))
    z = 1.959963984540054
    assert wilson_interval(0, 20) == pytest.approx((0.0, z * z / (20 + z * z)), abs=1e-12)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_interval(5, 3)


def test_whole_words_any_case_one_pass():
    assert swap_terms("She said HE's fine, he.", {"she": "he"}) == ("He said HE's fine, she.", 2)
    assert swap_terms("the shed, the sheep", {"she": "he"}) == ("the shed, the sheep", 0)
    assert swap_terms("women's team; Women's club", {"women's": "men's"}) == \
        ("men's team; Men's club", 2)
    assert swap_terms("WOMEN'S", {"women's": "men's"}) == ("MEN'S", 1)


def test_bad_swaps_texts_and_models_are_refused():
    m, tok = Votes().eval(), WordTokenizer(VOCAB)
    with pytest.raises(ValueError, match="non-empty dict"):
        counterfactual(m, TEXTS, {}, tokenizer=tok)
    with pytest.raises(ValueError, match="swapped with both"):
        counterfactual(m, TEXTS, {"she": "he", "her": "he"}, tokenizer=tok)
    with pytest.raises(TypeError, match="list of strings"):
        counterfactual(m, "she is good", SWAPS, tokenizer=tok)
    drop = nn.Sequential(nn.Dropout(0.5))
    with pytest.raises(ValueError, match="model.eval"):
        counterfactual(drop.train(), TEXTS, SWAPS, tokenizer=tok)


def test_no_text_with_a_swap_word_is_an_answer_not_a_crash():
    r = counterfactual(Votes().eval(), ["nothing here", "the shed"], SWAPS,
                       tokenizer=WordTokenizer(VOCAB))
    assert (r.n_with_term, r.n_without_term, r.n_flipped) == (0, 2, 0)
    assert math.isnan(r.flip_rate) and math.isnan(r.mean_prob_change)
    assert "nothing to compare" in r.summary()


def test_batches_do_not_change_the_answer_and_the_model_is_left_as_it_was():
    m = Votes().eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    a = counterfactual(m, TEXTS * 5, SWAPS, tokenizer=WordTokenizer(VOCAB), batch_size=3)
    b = counterfactual(m, TEXTS * 5, SWAPS, tokenizer=WordTokenizer(VOCAB))
    assert a == b and a.n_flipped == 15
    assert not m.training and all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())


def test_top_level_name_and_result_round_trip(tmp_path):
    assert netxray.counterfactual is counterfactual
    r = counterfactual(Votes().eval(), TEXTS, SWAPS, tokenizer=WordTokenizer(VOCAB))
    assert CounterfactualResult.load(r.save(tmp_path / "cf.npz")) == r


_WORDS = st.sampled_from(["she", "He", "women's", "MEN'S", "good", "bad", "team", "the"])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(_WORDS, min_size=1, max_size=6).map(" ".join), min_size=1,
                max_size=8))
def test_swapping_twice_gives_back_the_text_and_the_same_flips(texts):
    tok, m = WordTokenizer(VOCAB), Votes().eval()
    r = counterfactual(m, texts, SWAPS, tokenizer=tok)
    for o, s in zip(r.originals, r.swapped, strict=True):
        assert swap_terms(s, SWAPS)[0] == o  # a swap is its own inverse
    back = counterfactual(m, list(r.swapped), SWAPS, tokenizer=tok)
    assert back.swapped == r.originals
    # the pairs are the same pairs seen from the other side: as many flips either way
    assert back.n_flipped == r.n_flipped and back.n_with_term == r.n_with_term
    np.testing.assert_array_equal(back.pred, r.pred_swapped)
    # the direction given does not matter: each swap goes both ways
    rev = counterfactual(m, texts, {"he": "she", "men's": "women's"}, tokenizer=tok)
    assert rev.n_flipped == r.n_flipped and rev.swapped == r.swapped


def test_a_huggingface_tokenizer_and_model(tmp_path):
    transformers = pytest.importorskip("transformers")
    (tmp_path / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WEIGHTS]) + "\n")
    tok = transformers.BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"))
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(WEIGHTS) + 5, hidden_size=16,
                                  num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=32, num_labels=2)
    model = transformers.BertForSequenceClassification(cfg).eval()
    # BERT splits "women's" into women ' s, none of them in this vocabulary: "women's" and
    # "men's" are [UNK] [UNK] [UNK] alike, so the texts with only those are left out
    from netxray._warnings import NetxrayWarning

    with pytest.warns(NetxrayWarning, match="2 of 6 texts with a swap word encode exactly"):
        r = counterfactual(model, TEXTS, SWAPS, tokenizer=tok)
    assert r.unchanged_index.tolist() == [2, 3] and r.index.tolist() == [0, 1, 4, 7]
    with torch.no_grad():  # the direct way: tokenize each text alone, run, argmax
        direct = [int(model(**tok([t], return_tensors="pt")).logits.argmax(1))
                  for t in r.originals]
        direct_s = [int(model(**tok([t], return_tensors="pt")).logits.argmax(1))
                    for t in r.swapped]
    assert r.pred.tolist() == direct and r.pred_swapped.tolist() == direct_s
    assert r.n_flipped == sum(a != b for a, b in zip(direct, direct_s, strict=True))


class _Chars:
    """A plain tokenizer: one id per character (1 + its code), padded with 0 to the longest
    text of the batch, and no attention mask."""

    def __call__(self, texts: list[str]) -> torch.Tensor:
        width = max(len(t) for t in texts)
        return torch.tensor([[1 + ord(c) for c in t] + [0] * (width - len(t)) for t in texts])


class _ReadsPadding(nn.Module):
    """Class-1 logit: the mean id over every position, padding included, minus 60."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        s = ids.double().mean(1, keepdim=True) - 60.0
        return torch.cat([torch.zeros_like(s), s], dim=1)


def test_a_swap_that_changes_the_padding_without_a_mask_is_warned_about():
    import warnings

    from netxray._warnings import NetxrayWarning

    # "she said" -> "he said" shortens the batch's longest text: the originals are padded to
    # 8 positions, the swapped texts to 7, and this model reads its padding
    texts = ["she said", "he"]
    with pytest.warns(NetxrayWarning, match="attention_mask") as rec:
        r = counterfactual(_ReadsPadding(), texts, {"she": "he"}, tokenizer=_Chars())
    assert "7 against 8 positions" in str(rec[0].message)
    # the numbers are those of the padded batches, by hand: "he" at 8 positions, "she" at 7
    z0 = (1 + ord("h") + 1 + ord("e")) / 8 - 60
    z1 = (1 + ord("s") + 1 + ord("h") + 1 + ord("e")) / 7 - 60
    assert r.pred[1] == int(z0 > 0) == 0
    assert r.prob[1] == pytest.approx(1 - _sigmoid(z0)) and r.prob_swapped[1] == pytest.approx(
        1 - _sigmoid(z1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", NetxrayWarning)
        # one text per batch: no padding
        counterfactual(_ReadsPadding(), texts, {"she": "he"}, tokenizer=_Chars(), batch_size=1)
        # the longest text holds no swap word: both batches are padded alike
        counterfactual(_ReadsPadding(), ["nothing to see", "he"], {"she": "he"},
                       tokenizer=_Chars())
        # a mask tells the model where the padding is
        counterfactual(Votes().eval(), TEXTS, SWAPS, tokenizer=WordTokenizer(VOCAB))


# -------------------------------------------------- texts the swap cannot reach (finding 2)
HF_VOCAB = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WEIGHTS)


class _HFVotes(Votes):
    """:class:`Votes` over a BERT vocabulary (special tokens vote 0), taking what a
    HuggingFace tokenizer returns."""

    def __init__(self) -> None:
        nn.Module.__init__(self)
        self.emb = nn.Embedding(len(HF_VOCAB), 1)
        with torch.no_grad():
            self.emb.weight.zero_()
            for i, w in enumerate(HF_VOCAB):
                self.emb.weight[i, 0] = WEIGHTS.get(w, 0.0)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return super().forward(input_ids, attention_mask)


def test_a_swap_word_past_the_tokenizers_max_length_is_left_out_and_warned(tmp_path):
    import warnings

    from netxray._warnings import NetxrayWarning

    transformers = pytest.importorskip("transformers")
    (tmp_path / "vocab.txt").write_text("\n".join(HF_VOCAB) + "\n")
    max_len = 8  # [CLS] + 6 words + [SEP]: a word from the 7th on is cut away
    tok = transformers.BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"),
                                         model_max_length=max_len)
    texts = [
        "she is good",                       # flips
        "good good good good good good she",  # "she" is word 7: truncated away
        "he is bad the the the",             # flips (6 words: all kept)
        "bad bad bad he good",               # stays
        "bad bad bad bad bad bad he is",     # "he" is word 7: truncated away
        "nothing here",                      # no swap word
    ]
    swaps = {"she": "he"}
    with pytest.warns(NetxrayWarning, match="2 of 5 texts with a swap word encode exactly"):
        r = counterfactual(_HFVotes().eval(), texts, swaps, tokenizer=tok)
    # by hand: a text is compared when a swap word is among its first max_len - 2 words; its
    # logit is the sum of the weights of the words kept
    kept = max_len - 2
    words = {"she", "he"}
    reached = [i for i, t in enumerate(texts) if any(w in words for w in t.split()[:kept])]
    assert reached == [0, 2, 3]
    held = [i for i, t in enumerate(texts) if any(w in words for w in t.split())]
    assert r.n_with_term == len(held) == 5 and r.n_without_term == 1
    assert r.n_unchanged == 2 and r.n_compared == 3
    assert r.unchanged_index.tolist() == sorted(set(held) - set(reached)) == [1, 4]
    assert r.index.tolist() == reached
    before = [_hand(" ".join(texts[i].split()[:kept])) for i in reached]
    after = [_hand(" ".join(_hand_swap(texts[i]).split()[:kept])) for i in reached]
    assert all(abs(v) > 0 for v in before + after)  # no ties
    flips = sum((a > 0) != (b > 0) for a, b in zip(before, after, strict=True))
    assert r.n_flipped == flips == 2 and r.flip_rate == pytest.approx(flips / len(reached))
    assert (r.flip_low, r.flip_high) == wilson_interval(flips, len(reached))
    p0 = [_sigmoid(v) if v > 0 else 1 - _sigmoid(v) for v in before]
    p1 = [_sigmoid(b) if a > 0 else 1 - _sigmoid(b) for a, b in zip(before, after, strict=True)]
    assert r.mean_prob_change == pytest.approx(np.mean(np.subtract(p1, p0)), rel=1e-6)
    assert "2 text(s) with a swap word were left out" in r.summary()
    assert CounterfactualResult.load(r.save(tmp_path / "cf.npz")) == r
    # both words unknown to the tokenizer: one id ([UNK]) either way, nothing to compare
    with pytest.warns(NetxrayWarning, match="gives both words one id"):
        none = counterfactual(_HFVotes().eval(), ["king is good"], {"king": "queen"},
                              tokenizer=tok)
    assert (none.n_with_term, none.n_unchanged, none.n_compared) == (1, 1, 0)
    assert math.isnan(none.flip_rate) and "no swap changed what the model sees" in none.summary()
    with warnings.catch_warnings():  # texts the tokenizer keeps whole: nothing left out
        warnings.simplefilter("error", NetxrayWarning)
        whole = counterfactual(_HFVotes().eval(), [texts[0], texts[2]], swaps, tokenizer=tok)
    assert whole.n_unchanged == 0 and whole.n_compared == 2


# ------------------------------------------- a model that outputs probabilities (finding 4)
class _Head(nn.Module):
    """:class:`Votes` followed by ``head`` (a module, or a function in ``forward``)."""

    def __init__(self, head) -> None:
        super().__init__()
        self.votes = Votes()
        self.head = head if isinstance(head, nn.Module) else None
        self.fn = head

    def forward(self, input_ids, attention_mask):
        return self.fn(self.votes(input_ids, attention_mask))


@pytest.mark.parametrize("head", ["softmax module", "softmax in forward", "sigmoid module"])
def test_probabilities_from_the_model_are_not_squashed_again(head):
    fn = {"softmax module": nn.Softmax(dim=1),
          "softmax in forward": lambda z: torch.softmax(z, dim=1),
          "sigmoid module": nn.Sigmoid()}[head]
    r = counterfactual(_Head(fn).eval(), TEXTS, SWAPS, tokenizer=WordTokenizer(VOCAB))
    with_term = r.index.tolist()
    before = [_hand(TEXTS[i]) for i in with_term]
    after = [_hand(_hand_swap(TEXTS[i])) for i in with_term]

    def own(z: float, c: int) -> float:  # the model's own probability of class c, logits (0, z)
        if head == "sigmoid module":
            return 0.5 if c == 0 else _sigmoid(z)
        return _sigmoid(z) if c == 1 else 1 - _sigmoid(z)

    c = [int(v > 0) for v in before]
    np.testing.assert_array_equal(r.pred, c)
    np.testing.assert_allclose(r.prob, [own(v, k) for v, k in zip(before, c, strict=True)],
                               rtol=1e-6)
    np.testing.assert_allclose(r.prob_swapped, [own(v, k) for v, k in zip(after, c, strict=True)],
                               rtol=1e-6)
