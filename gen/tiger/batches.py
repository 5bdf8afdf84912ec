"""Training examples for TIGER: packed history windows or one example per prefix.

Both recipes learn the same conditional, p(code of item t | user, items
max(0, t - H) .. t - 1) with H = ``max_history``, for every position t >= 1 of
every training sequence. They differ in how many encoder passes that takes.

``per_prefix`` (TIGER's reference pipeline): one :class:`Window` per target,
so a user with n training items costs n - 1 encoder passes over up to H items.

``packed``: one window holds the first ``min(n, H + 1) - 1`` items of a user and
supervises every target whose truncated history starts at the user's first
item (t <= H) in one pass; its decoder row carries one block per target and
the block of target t cross-attends to items 0..t-1 only. Because the encoder
is block-causal, the states of items 0..t-1 in that pass are exactly those of
the stand-alone input ``[user, items 0..t-1]`` (same tokens at the same
positions, no attention to later items), so each target's loss equals its
per-prefix loss. Targets with t > H have a history window starting at t - H,
which no other target shares; each gets its own window, as in ``per_prefix``.
On Beauty (H = 20) 96% of users have at most H + 1 training items; 89% of the
131k targets come from shared windows, the other 11% (tails of long users)
need one 20-item window each and make up about half of the packed recipe's
encoder work.

``hybrid``: the packed recipe's block-causal pass for every target but each
user's latest one, which gets its own window with *bidirectional* attention
(as do the tails of long users); the model encodes bidirectionally at
inference. Every target is still learned exactly once per epoch; the extra
cost over ``packed`` is one more encoder pass per user. The prediction that
inference makes (the next item after a whole history, encoded
bidirectionally) is then trained directly, while all earlier targets still
come almost for free.

Batches hold about ``batch_size`` *targets* (the optimizer sees the same
number of next-item examples per step under every recipe), grouped by length
so padding stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .layout import PAD_ID, TokenLayout

__all__ = ["Window", "collate", "count_targets", "length_bucketed_batches", "make_windows"]

IGNORE = -100


@dataclass(frozen=True)
class Window:
    """One encoder row: a user's history window and the targets it supervises.

    Attributes:
        user_id: the user (hashed into the user token).
        items: item positions in the encoder, oldest first.
        targets: ``(item position, visible history items)`` per target; a target
            with ``h`` visible items is predicted from ``items[:h]``.
        block_causal: encode the window block-causally (required when it holds
            several targets) or bidirectionally.
    """

    user_id: str
    items: tuple[int, ...]
    targets: tuple[tuple[int, int], ...]
    block_causal: bool = True


def make_windows(
    sequences: Sequence[Sequence[str]],
    users: Sequence[str],
    layout: TokenLayout,
    *,
    max_history: int,
    recipe: str,
    encoder_attention: str = "block_causal",
) -> list[Window]:
    """Windows for training sequences (item ids, oldest first), under ``recipe``.

    ``encoder_attention`` is the model's attention at inference; single-target
    windows use it, windows with several targets are always block-causal.
    """
    single_block_causal = encoder_attention == "block_causal"
    windows: list[Window] = []
    for user, sequence in zip(users, sequences):
        positions = layout.positions(sequence)
        n = len(positions)
        if n < 2:
            continue
        first_tail = 1
        if recipe in ("packed", "hybrid"):
            head = min(n - 1, max_history)
            # hybrid: the user's latest target gets its own bidirectional window below.
            packed_last = head - 1 if recipe == "hybrid" and head == n - 1 else head
            if packed_last >= 1:
                targets = tuple((positions[t], t) for t in range(1, packed_last + 1))
                # One target needs no sharing: it takes the model's own attention.
                block_causal = packed_last > 1 or single_block_causal
                windows.append(Window(user, tuple(positions[:packed_last]), targets, block_causal=block_causal))
            first_tail = packed_last + 1
        for t in range(first_tail, n):
            items = tuple(positions[max(0, t - max_history) : t])
            windows.append(Window(user, items, ((positions[t], len(items)),), block_causal=single_block_causal))
    return windows


def count_targets(windows: Sequence[Window]) -> int:
    return sum(len(w.targets) for w in windows)


def collate(
    windows: Sequence[Window], layout: TokenLayout, *, pad_encoder_to: int | None = None
) -> dict[str, torch.Tensor]:
    """Pad windows into the ``int64`` tensors :func:`semid.gen.tiger.model.sequence_loss` takes.

    Returns ``encoder_ids (R, S)``, ``decoder_ids (R, T)``, ``labels (R, T)``,
    ``decoder_block (R, T)``, ``decoder_history (R, T)`` (``int64``) and
    ``encoder_block_causal (R,)`` (``bool``). ``pad_encoder_to``
    pads encoder rows to a fixed width (TIGER's reference pipeline pads every
    history to 20 items; used by the benchmark's reference arm).
    """
    encoders = [layout.encoder_ids(w.items, w.user_id) for w in windows]
    rows = []
    for window in windows:
        dec, lab, blk, hist = [], [], [], []
        for number, (target, visible) in enumerate(window.targets):
            tokens = layout.item_tokens[target].tolist()
            dec += [PAD_ID] + tokens[:-1]  # decoder start token, then teacher forcing
            lab += tokens
            blk += [number] * len(tokens)
            hist += [visible] * len(tokens)
        rows.append((dec, lab, blk, hist))
    n_rows = len(windows)
    width_enc = max(max(len(e) for e in encoders), pad_encoder_to or 0)
    width_dec = max(len(r[0]) for r in rows)
    encoder_ids = np.full((n_rows, width_enc), PAD_ID, dtype=np.int64)
    decoder = np.full((4, n_rows, width_dec), 0, dtype=np.int64)
    decoder[0] = PAD_ID
    decoder[1] = IGNORE
    decoder[2:] = -1
    for r, (enc, row) in enumerate(zip(encoders, rows)):
        encoder_ids[r, : len(enc)] = enc
        for slot, values in enumerate(row):
            decoder[slot, r, : len(values)] = values
    return {
        "encoder_ids": torch.from_numpy(encoder_ids),
        "decoder_ids": torch.from_numpy(decoder[0]),
        "labels": torch.from_numpy(decoder[1]),
        "decoder_block": torch.from_numpy(decoder[2]),
        "decoder_history": torch.from_numpy(decoder[3]),
        "encoder_block_causal": torch.tensor([w.block_causal for w in windows], dtype=torch.bool),
    }


def length_bucketed_batches(
    windows: Sequence[Window], batch_size: int, rng: np.random.Generator, *, pool: int = 50
) -> list[list[int]]:
    """Shuffled batches of window indices holding about ``batch_size`` targets each.

    Windows are shuffled, then sorted by (targets, items) inside pools of
    ``pool`` batches, so a batch pads little while the data order stays random.
    """
    order = rng.permutation(len(windows))
    mean_targets = max(count_targets(windows) / max(len(windows), 1), 1.0)
    pool_size = max(int(pool * batch_size / mean_targets), 1)
    batches: list[list[int]] = []
    for start in range(0, len(order), pool_size):
        # Sort by target count first: a window with one target (a long user's tail)
        # then never shares a batch with 20-target windows, so decoder rows stay short.
        chunk = sorted(
            order[start : start + pool_size].tolist(),
            key=lambda i: (len(windows[i].targets), len(windows[i].items)),
        )
        current: list[int] = []
        targets = 0
        for index in chunk:
            current.append(index)
            targets += len(windows[index].targets)
            if targets >= batch_size:
                batches.append(current)
                current, targets = [], 0
        if current:
            batches.append(current)
    rng.shuffle(batches)
    return batches
