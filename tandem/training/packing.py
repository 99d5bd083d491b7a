"""Packing tokenized rows into fixed-length training rows (best-fit decreasing).

Each packed row holds several examples back to back, exactly `seq_len` tokens long, with
`position_ids` restarting at 0 for every example. transformers reads those restarts as document
boundaries (`masking_utils.find_packed_sequence_indices`) and masks attention block-diagonally, so
no example sees another; the first label of every example is ignored so no token is trained to
predict across a boundary. The tail of a row that no example fits is filler: pad ids, ignored
labels, its own position run. Rows are fixed-size, so batches stack without padding and shapes
stay static (good for `torch.compile`).
"""

from __future__ import annotations

from bisect import bisect_left, insort

from tandem.training.chat_data import IGNORE_INDEX


def best_fit_bins(lengths: list[int], seq_len: int) -> list[list[int]]:
    """Indices of `lengths` grouped into bins of at most `seq_len`, longest first, best fit."""
    if any(n > seq_len for n in lengths):
        raise ValueError(f"an example is longer than the packed row ({seq_len}): truncate first")
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (tokens left, bin index), sorted
    for i in sorted(range(len(lengths)), key=lambda k: -lengths[k]):
        slot = bisect_left(free, (lengths[i], -1))
        if slot == len(free):
            bins.append([i])
            insort(free, (seq_len - lengths[i], len(bins) - 1))
        else:
            left, b = free.pop(slot)
            bins[b].append(i)
            insort(free, (left - lengths[i], b))
    return bins


def pack_rows(rows: list[dict[str, list[int]]], seq_len: int, pad_id: int) -> list[dict[str, list[int]]]:
    """Rows with `input_ids` and `labels` -> packed rows with `input_ids`, `labels`, `position_ids`."""
    packed = []
    for members in best_fit_bins([len(r["input_ids"]) for r in rows], seq_len):
        ids, labels, positions = [], [], []
        for i in members:
            n = len(rows[i]["input_ids"])
            ids += rows[i]["input_ids"]
            labels += [IGNORE_INDEX] + rows[i]["labels"][1:]
            positions += range(n)
        filler = seq_len - len(ids)
        ids += [pad_id] * filler
        labels += [IGNORE_INDEX] * filler
        positions += range(filler)
        packed.append({"input_ids": ids, "labels": labels, "position_ids": positions})
    return packed
