"""TALLRec's yes/no examples from rated histories, with the published strings (SAI990323/TALLRec).

Each user's rated interactions, in time order: every position ``i >= history``
becomes one sample whose history is the ``history`` items before it, split into
liked (rating > ``like_above``) and disliked ones, and whose label says whether
the item at ``i`` is liked. As in the reference's MovieLens preprocessing
(``preprocess_movie.py``), samples are listed user by user (``order="user"``),
the last ``keep_last`` of that list are kept and split 8:1:1 in list order, so
the test samples come from the last users. The reference lists users by their
first appearance in ``u.data``; semid lists them in the dataset's user order,
so the split has the same sizes but not the same users. ``order="time"`` sorts
all samples by the target's time first (validation and test later than every
training sample), a stricter protocol offered as an option.

The prompt is the Alpaca template the reference uses, verbatim, including the
stray ``# noqa: E501`` that its source left inside the string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from semid.errors import DataError, ParameterError

__all__ = ["ALPACA_TEMPLATE", "TallRecSample", "build_samples", "render_prompt", "split_samples"]

ALPACA_TEMPLATE = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.  # noqa: E501\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)

_INSTRUCTION = ('Given the user\'s preference and unpreference, identify whether the user will like the target '
                '{noun} by answering "Yes." or "No.".')


@dataclass(frozen=True)
class TallRecSample:
    """One yes/no question: liked and disliked history items, the target, and the answer."""

    user_id: str
    liked: tuple[str, ...]
    disliked: tuple[str, ...]
    target: str
    label: int  # 1 = "Yes." (liked)
    time: float


def build_samples(dataset, *, history: int = 10, like_above: float = 3.0, keep_last: int | None = 10_000,
                  order: str = "user") -> list[TallRecSample]:
    """Samples of every user with ratings, in ``order`` (see the module docstring).

    Raises:
        DataError: the dataset has no ratings (TALLRec needs explicit feedback).
        ParameterError: ``history`` < 1 or an unknown ``order``.
    """
    if history < 1:
        raise ParameterError(f"history must be >= 1, got {history}")
    if order not in ("user", "time"):
        raise ParameterError(f"order must be 'user' (the reference) or 'time', got {order!r}")
    seqs = dataset.sequences
    if not seqs.ratings or all(r is None for r in seqs.ratings):
        raise DataError(f"dataset {dataset.name!r} has no ratings; TALLRec's yes/no labels come from ratings "
                        "(MovieLens, Amazon reviews)")
    samples = []
    for u, (user, items) in enumerate(zip(seqs.user_ids, seqs.items)):
        ratings = seqs.ratings[u]
        if ratings is None:
            continue
        times = seqs.timestamps[u] if seqs.timestamps and seqs.timestamps[u] is not None else None
        for i in range(history, len(items)):
            window = range(i - history, i)
            samples.append(TallRecSample(
                user_id=user,
                liked=tuple(items[j] for j in window if ratings[j] > like_above),
                disliked=tuple(items[j] for j in window if ratings[j] <= like_above),
                target=items[i], label=int(ratings[i] > like_above),
                time=float(times[i]) if times is not None else float(i),
            ))
    if order == "time":
        samples.sort(key=lambda s: s.time)
    if keep_last is not None:
        samples = samples[-keep_last:]
    return samples


def split_samples(samples: list[TallRecSample]) -> tuple[list[TallRecSample], list[TallRecSample], list[TallRecSample]]:
    """8:1:1 in order: ``(train, valid, test)``."""
    n = len(samples)
    a, b = int(0.8 * n), int(0.9 * n)
    return samples[:a], samples[a:b], samples[b:]


def render_prompt(sample: TallRecSample, render: Callable[[str], str], *, noun: str = "movie") -> str:
    """The Alpaca prompt of ``sample`` up to ``### Response:\\n`` (the answer follows)."""
    liked = ", ".join(f'"{render(i)}"' for i in sample.liked)
    disliked = ", ".join(f'"{render(i)}"' for i in sample.disliked)
    text = (f"User Preference: {liked}\nUser Unpreference: {disliked}\n"
            f'Whether the user will like the target {noun} "{render(sample.target)}"?')
    return ALPACA_TEMPLATE.format(instruction=_INSTRUCTION.format(noun=noun), input=text)
