"""Decoders run on the target tokens, padded their own way: nn.TransformerDecoder's and
nn.Transformer's tgt_key_padding_mask, a HuggingFace encoder-decoder's
decoder_attention_mask. Their layers (and the layers after them) count the decoder's real
tokens, never the encoder's, even where both sequences have the same length."""

import numpy as np
import pytest
import torch
from torch import nn

import netxray
from watch_helpers import watched_step

DEC = "transformer.decoder.layers.0.linear1"
ENC = "transformer.encoder.layers.0.linear1"


class Seq2Seq(nn.Module):
    """nn.Transformer on projected source features; target features go in as they are."""

    def __init__(self, batch_first=True, tgt_emb=False):
        super().__init__()
        torch.manual_seed(0)
        self.batch_first = batch_first
        self.src_emb = nn.Linear(4, 16)
        self.tgt_emb = nn.Linear(16, 16) if tgt_emb else nn.Identity()
        self.transformer = nn.Transformer(16, 2, 1, 1, 32, dropout=0.0, batch_first=batch_first)
        self.head = nn.Linear(16, 3)

    def forward(self, src, tgt, src_key_padding_mask, tgt_key_padding_mask):
        s, t = self.src_emb(src), self.tgt_emb(tgt)
        if not self.batch_first:
            s, t = s.transpose(0, 1), t.transpose(0, 1)
        out = self.transformer(s, t, src_key_padding_mask=src_key_padding_mask,
                               tgt_key_padding_mask=tgt_key_padding_mask,
                               memory_key_padding_mask=src_key_padding_mask)
        return self.head(out if self.batch_first else out.transpose(0, 1))


def seq2seq_batches(src_len=6, tgt_len=6):
    """Two batches of 3; source and target padded differently (True: padding), padding
    holding large values so that any of it counted shows."""
    g = torch.Generator().manual_seed(3)
    out = []
    for src_n, tgt_n in (([6, 2, 4], [3, 6, 1]), ([1, 5, 3], [6, 2, 4])):
        spad = torch.arange(src_len)[None, :] >= torch.tensor(src_n)[:, None]
        tpad = torch.arange(tgt_len)[None, :] >= torch.tensor(tgt_n)[:, None]
        out.append({"src": torch.randn(3, src_len, 4, generator=g).masked_fill(spad[..., None], 40.),
                    "tgt": torch.randn(3, tgt_len, 16, generator=g).masked_fill(tpad[..., None], 40.),
                    "src_key_padding_mask": spad, "tgt_key_padding_mask": tpad})
    return out


def reference(model, batches, name, key, seq_first=False):
    """Plain hooks (outputs cloned), real tokens picked by hand (``batch[key]``: True or 1
    for a real token, or a PyTorch padding mask ``*_key_padding_mask``): (tokens, units)
    float64. Gradients on: PyTorch's slow path, regular padded tensors (no nested ones)."""
    module = dict(model.named_modules())[name]
    rows = []
    for b in batches:
        kept = []
        h = module.register_forward_hook(
            lambda _m, _i, out, kept=kept: kept.append(out.detach().clone()))
        try:
            with torch.enable_grad():
                model(**b)
        finally:
            h.remove()
        out = kept[0].transpose(0, 1) if seq_first else kept[0]
        real = ~b[key] if key.endswith("padding_mask") else b[key].bool()
        rows.append(out[real].double().numpy())
    return np.concatenate(rows)


def check(stats, ref):
    assert stats.per_token and stats.count.tolist() == [len(ref)] * ref.shape[1]
    np.testing.assert_allclose(stats.mean, ref.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats.max, ref.max(0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("told", [False, True])  # the batch's mask: none, or the source's
def test_decoder_layers_count_the_decoders_real_tokens(batch_first, told):
    model = Seq2Seq(batch_first).eval()
    batches = seq2seq_batches()
    mask = (lambda b: ~b["src_key_padding_mask"]) if told else None
    dec, enc = (reference(model, batches, n, k, seq_first=not batch_first) for n, k in (
        (DEC, "tgt_key_padding_mask"), (ENC, "src_key_padding_mask")))
    head = reference(model, batches, "head", "tgt_key_padding_mask")
    assert len(dec) == 22 and len(enc) == 21
    with_y = [{**b, "y": torch.zeros(3)} for b in batches]  # (gradients: the slow path)
    stats = netxray.collect_stats(model, with_y, [DEC, ENC, "head"], mask=mask, labels="y",
                                  gradients=told, loss_fn=lambda o, t: o.square().mean())
    check(stats[DEC], dec)
    check(stats[ENC], enc)
    check(stats["head"], head)  # after the decoder: its tokens
    a = netxray.activations(model, batches, [DEC, "head"], mask=mask)
    np.testing.assert_allclose(a[DEC].double().numpy(), dec, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a.outputs.double().numpy(), head, rtol=1e-4, atol=1e-5)
    assert a.token_outputs and a.token_index.shape == (22, 2)
    with pytest.raises(ValueError, match="read different tokens.*separate calls"):
        netxray.activations(model, batches, [DEC, ENC], mask=mask)


def test_a_decoder_without_a_padding_mask_or_before_the_decoder_is_refused():
    batches = seq2seq_batches()
    model = Seq2Seq().eval()
    unmasked = [{**b, "tgt_key_padding_mask": None} for b in batches]
    with pytest.raises(ValueError, match="decoder 'transformer.decoder'.*no padding mask.*"
                                         "decoder_attention_mask="):
        netxray.collect_stats(model, unmasked, DEC, mask=lambda b: ~b["src_key_padding_mask"])
    # no mask anywhere on the decoder's side: every target position is a real token
    s = netxray.collect_stats(model, unmasked, DEC)[DEC]
    assert s.count.tolist() == [36] * 32
    # a target embedding runs before the decoder, outside it: whose tokens it reads cannot
    # be told when both sequences are as long
    with pytest.raises(ValueError, match="'tgt_emb' runs before the decoder"):
        netxray.collect_stats(Seq2Seq(tgt_emb=True).eval(), batches, "tgt_emb")
    # when they are not, the source's layers before the decoder are the source's
    longer = seq2seq_batches(src_len=7)
    src = reference(model, longer, "src_emb", "src_key_padding_mask")
    check(netxray.collect_stats(model, longer, "src_emb",
                                mask=lambda b: ~b["src_key_padding_mask"])["src_emb"], src)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_a_watch_counts_the_decoders_real_tokens(tmp_path):
    model = Seq2Seq().train()
    b = seq2seq_batches()[0]
    ref = reference(model, [b], DEC, "tgt_key_padding_mask")
    with netxray.watch(model, tmp_path / "run", every=1, layers=[DEC, "head"], bins=0,
                       alarms=lambda f, s: None) as w:
        watched_step(model, w, b, None, loss_of=lambda o: o.square().mean())
    head = reference(model, [b], "head", "tgt_key_padding_mask")
    with netxray.open_run(tmp_path / "run") as run:
        np.testing.assert_allclose(run.layer_stats(DEC).mean[0], ref.mean(), rtol=1e-5)
        np.testing.assert_allclose(run.layer_stats(DEC).max[0], ref.max(), rtol=1e-5)
        np.testing.assert_allclose(run.layer_stats("head").mean[0], head.mean(), rtol=1e-5)


# ------------------------------------------------------------ HuggingFace encoder-decoders

transformers = pytest.importorskip("transformers")


def bart():
    torch.manual_seed(0)
    cfg = transformers.BartConfig(
        vocab_size=40, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_position_embeddings=32, dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0)
    return transformers.BartModel(cfg)


def t5():
    torch.manual_seed(0)
    cfg = transformers.T5Config(vocab_size=40, d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                num_heads=2, dropout_rate=0.0, decoder_start_token_id=0)
    return transformers.T5Model(cfg)


HF = {"bart": (bart, "decoder.layers.0.fc1", "encoder.layers.0.fc1"),
      "t5": (t5, "decoder.block.0.layer.2.DenseReluDense.wi",
             "encoder.block.0.layer.1.DenseReluDense.wi")}


def hf_batches():
    """Encoder and decoder inputs of the same length (6), padded differently (pad id 1)."""
    g = torch.Generator().manual_seed(4)
    out = []
    for src_n, tgt_n in (([6, 2, 4], [3, 6, 1]), ([1, 5, 3], [6, 2, 4])):
        am = (torch.arange(6)[None, :] < torch.tensor(src_n)[:, None]).long()
        dm = (torch.arange(6)[None, :] < torch.tensor(tgt_n)[:, None]).long()
        ids = torch.randint(3, 40, (3, 6), generator=g)
        dec = torch.randint(3, 40, (3, 6), generator=g)
        out.append({"input_ids": ids.masked_fill(am == 0, 1), "attention_mask": am,
                    "decoder_input_ids": dec.masked_fill(dm == 0, 1),
                    "decoder_attention_mask": dm})
    return out


@pytest.mark.parametrize("arch", list(HF))
def test_a_huggingface_decoder_counts_its_decoder_attention_mask(arch, tmp_path):
    build, dec_name, enc_name = HF[arch]
    model = build().eval()
    batches = hf_batches()
    dec = reference(model, batches, dec_name, "decoder_attention_mask")
    enc = reference(model, batches, enc_name, "attention_mask")
    assert len(dec) == 22 and len(enc) == 21
    stats = netxray.collect_stats(model, batches, [dec_name, enc_name])
    check(stats[dec_name], dec)
    check(stats[enc_name], enc)
    a = netxray.activations(model, batches, dec_name)
    np.testing.assert_allclose(a[dec_name].double().numpy(), dec, rtol=1e-4, atol=1e-5)
    assert a.token_outputs and a.outputs.shape == (22, 16)  # last_hidden_state: the decoder's
    e = netxray.activations(model, batches, enc_name)  # the encoder's tokens: output per sample
    np.testing.assert_allclose(e[enc_name].double().numpy(), enc, rtol=1e-4, atol=1e-5)
    assert not e.token_outputs and e.outputs.shape == (6, 6, 16) and len(e.token_index) == 21
    with pytest.raises(ValueError, match="no padding mask.*decoder_attention_mask="):
        netxray.collect_stats(model, [{k: v for k, v in b.items()
                                       if k != "decoder_attention_mask"} for b in batches],
                              dec_name)
    model.train()
    b = batches[0]
    ref = reference(model, [b], dec_name, "decoder_attention_mask")
    with netxray.watch(model, tmp_path / "run", every=1, layers=[dec_name], bins=0,
                       alarms=lambda f, s: None) as w:
        watched_step(model, w, b, None, loss_of=lambda o: o.last_hidden_state.square().mean())
    with netxray.open_run(tmp_path / "run") as run:
        np.testing.assert_allclose(run.layer_stats(dec_name).mean[0], ref.mean(), rtol=1e-5)
        np.testing.assert_allclose(run.layer_stats(dec_name).max[0], ref.max(), rtol=1e-5)
