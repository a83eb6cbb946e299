"""Token sequences padded into id and attention-mask tensors (pad id 0), as a tokenizer pads
a batch: shared by the tests of text models."""

import torch


def padded(seqs, width, left=False):
    """``(ids, attention_mask)`` ``(len(seqs), width)``: each sequence at the start (or, with
    ``left``, the end) of its row, padding 0 with mask 0."""
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    am = torch.zeros_like(ids)
    for j, s in enumerate(seqs):
        where = slice(width - len(s), width) if left else slice(0, len(s))
        ids[j, where], am[j, where] = torch.tensor(s), 1
    return ids, am
