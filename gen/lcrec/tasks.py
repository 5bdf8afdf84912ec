"""LC-Rec alignment tasks: instruction examples built from a dataset and an index.

Every task draws its targets from the *training* part of the leave-one-out split
(``train_sequences``), so validation and test items never appear as answers.
Each example samples one of its task's templates with a seeded RNG.

Tasks (names accepted by ``--tasks``):

- ``seqrec``: codes of a history -> code of the next item, for every prefix of
  every training sequence.
- ``item2index`` / ``index2item``: item title (+ description) <-> item code, for
  every item seen in training sequences.
- ``fusionseqrec``: asymmetric prediction; codes of a history -> title of the next
  item, and titles of a history -> code of the next item (one of each per user).
- ``itemsearch``: a user intention -> the next item's code. Amazon datasets carry
  no review text here, so the intention is derived from the target item itself:
  its most specific category, its brand and up to four salient title words
  ("I am looking for nail polish by OPI, something with 'gel', 'shine'.").
- ``preferenceobtain``: codes of a history -> a preference summary derived from
  the history's most frequent categories and brands.
- ``text``: plain-language questions with no item tokens (generic ones from the
  prompt file, plus category/brand/title questions derived from item text), so
  tuning does not erase the model's language ability (ANCHORS pitfall 9).
"""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from semid.evaluation.split import DEFAULT_MAX_HISTORY
from semid.data.dataset import Dataset
from semid.errors import ParameterError
from semid.evaluation.split import LeaveOneOut

from .templates import PromptSet

__all__ = ["ALL_TASKS", "Example", "build_examples", "check_tasks", "item_title"]

logger = logging.getLogger(__name__)

ALL_TASKS = ("seqrec", "item2index", "index2item", "fusionseqrec", "itemsearch", "preferenceobtain", "text")
_STOP = frozenset("with from that this your for and the oz fl ml pack count set of new".split())
_DESCRIPTION_CHARS = 300


@dataclass(frozen=True)
class Example:
    """One instruction example before tokenisation.

    ``template`` may contain ``{history}`` / ``{history_titles}``, filled from
    ``history`` / ``history_titles`` (oldest first) so that a prompt too long for
    the model can drop its oldest items (:meth:`instruction` with ``n_drop``).
    """

    task: str
    template: str
    response: str
    fields: dict[str, str] = field(default_factory=dict)
    history: tuple[str, ...] = ()
    history_titles: tuple[str, ...] = ()

    def instruction(self, n_drop: int = 0) -> str:
        return self.template.format(
            history=", ".join(self.history[n_drop:]),
            history_titles="; ".join(f'"{t}"' for t in self.history_titles[n_drop:]),
            **self.fields,
        )

    @property
    def history_length(self) -> int:
        return max(len(self.history), len(self.history_titles))


def check_tasks(tasks: Sequence[str]) -> tuple[str, ...]:
    """Validate a task list (order kept, duplicates removed).

    Raises:
        ParameterError: the list is empty or names an unknown task.
    """
    tasks = tuple(dict.fromkeys(t.strip() for t in tasks if t.strip()))
    if not tasks:
        raise ParameterError(f"the task list is empty; choose from {', '.join(ALL_TASKS)}")
    unknown = [t for t in tasks if t not in ALL_TASKS]
    if unknown:
        raise ParameterError(f"unknown LC-Rec task {unknown[0]!r}; valid tasks: {', '.join(ALL_TASKS)}")
    return tasks


def item_title(record: dict) -> str:
    title = record.get("title")
    return " ".join(str(title).split()) if title else ""


def _description(record: dict) -> str:
    text = record.get("description")
    if isinstance(text, list):
        text = " ".join(str(t) for t in text)
    text = " ".join(str(text or "").split())
    return text[:_DESCRIPTION_CHARS].rsplit(" ", 1)[0] + "..." if len(text) > _DESCRIPTION_CHARS else text


def _leaf_category(record: dict) -> str:
    cats = [c for c in (record.get("categories") or []) if isinstance(c, str) and c.strip()]
    return cats[-1].strip() if cats else ""


def _brand(record: dict) -> str:
    brand = record.get("brand")
    return str(brand).strip() if isinstance(brand, str) else ""


def derive_intention(record: dict) -> str:
    """A user intention for an item without review text (see the module docstring)."""
    category = _leaf_category(record) or "a product"
    brand = _brand(record)
    brand_words = {w.lower() for w in re.findall(r"[A-Za-z]+", brand)}
    words = []
    for word in re.findall(r"[A-Za-z][A-Za-z'-]+", item_title(record)):
        low = word.lower()
        if len(low) > 3 and low not in _STOP and low not in brand_words and low not in words:
            words.append(low)
        if len(words) == 4:
            break
    text = f"I am looking for {category.lower()}" + (f" by {brand}" if brand else "")
    if words:
        text += ", something with " + ", ".join(f"'{w}'" for w in words)
    return text + "."


def derive_preference(records: Sequence[dict]) -> str:
    """A preference summary from the categories and brands of a history."""
    categories = Counter(c for c in (_leaf_category(r) for r in records) if c)
    brands = Counter(b for b in (_brand(r) for r in records) if b)
    parts = []
    if categories:
        top = [c.lower() for c, _ in categories.most_common(2)]
        parts.append("The user mostly buys " + " and ".join(top) + " products")
    if brands:
        top_brand, count = brands.most_common(1)[0]
        parts.append(f"likes the brand {top_brand}" + (f" ({count} purchases)" if count > 1 else ""))
    if not parts:
        return "The user's history does not show a clear preference."
    return ", and ".join(parts) + "."


class _Builder:
    def __init__(self, dataset: Dataset, index, prompts: PromptSet, seed: int, max_history: int):
        self.items = dataset.items
        self.index = index
        self.prompts = prompts
        self.rng = random.Random(seed)
        self.max_history = max_history

    def code(self, item_id: str) -> str:
        return self.index.render(item_id)

    def derived_text(self, usable: list, values: dict[str, str]) -> Example:
        question, answer = self.rng.choice(usable)
        return self.make("text", question=question.format(**values), answer=answer.format(**values))

    def make(self, task: str, key: str | None = None, history=(), **fields) -> Example:
        key = key or task
        template = self.rng.choice(self.prompts.templates(key))
        history = list(history)[-self.max_history :]
        response = self.prompts.response(key).format(**fields)
        return Example(
            task=task,
            template=template,
            response=response,
            fields={k: v for k, v in fields.items() if "{" + k + "}" in template},
            history=tuple(self.code(i) for i in history) if "{history}" in template else (),
            history_titles=tuple(item_title(self.items[i]) for i in history) if "{history_titles}" in template else (),
        )


def build_examples(
    dataset: Dataset,
    index,
    split: LeaveOneOut,
    prompts: PromptSet,
    tasks: Sequence[str],
    *,
    seed: int = 0,
    max_per_task: int | None = None,
    max_history: int = DEFAULT_MAX_HISTORY,
) -> list[Example]:
    """Instruction examples of the chosen tasks, shuffled with ``seed``.

    Args:
        index: a fitted :class:`semid.ItemTokenizer` covering the dataset's items.
        split: the leave-one-out split of ``dataset``; only ``train_sequences`` are used.
        max_per_task: keep a seeded random sample of at most this many examples per
            task (``None``: all).
    """
    tasks = check_tasks(tasks)
    b = _Builder(dataset, index, prompts, seed, max_history)
    records = dataset.items
    train = [s for s in split.train_sequences if s]
    train_items = sorted({i for s in train for i in s}, key=records.position)
    titled = [i for i in train_items if item_title(records[i])]
    # The last training position of each user: one example per user for the
    # tasks that need a richer prompt than seqrec.
    last = [(s[:-1], s[-1]) for s in train if len(s) >= 2]
    per_task: dict[str, list[Example]] = {}
    for task in tasks:
        # Jobs build examples lazily, so a capped task only renders its sample.
        jobs: list[Callable[[], Example]] = []
        if task == "seqrec":
            for seq in train:
                for t in range(1, len(seq)):
                    jobs.append(partial(b.make, "seqrec", history=seq[:t], item=b.code(seq[t])))
        elif task == "item2index":
            for i in titled:
                r = records[i]
                jobs.append(partial(b.make, "item2index", item=b.code(i), title=item_title(r),
                                  description=_description(r) or item_title(r)))
        elif task == "index2item":
            for i in titled:
                r = records[i]
                desc = _description(r)
                both = item_title(r) + (f". {desc}" if desc else "")
                jobs.append(partial(b.make, "index2item", item=b.code(i), title_and_description=both))
        elif task == "fusionseqrec":
            for history, target in last:
                if item_title(records[target]):
                    jobs.append(partial(b.make, "fusionseqrec", "fusionseqrec_title", history=history,
                                      title=item_title(records[target])))
                if all(item_title(records[i]) for i in history):
                    jobs.append(partial(b.make, "fusionseqrec", "fusionseqrec_index", history=history, item=b.code(target)))
        elif task == "itemsearch":
            for history, target in last:
                jobs.append(partial(b.make, "itemsearch", history=history, item=b.code(target),
                                  intention=derive_intention(records[target])))
        elif task == "preferenceobtain":
            for seq in train:
                if len(seq) >= 2:
                    history = seq[-max_history:]
                    jobs.append(partial(b.make, "preferenceobtain", history=history,
                                      preference=derive_preference([records[i] for i in history])))
        elif task == "text":
            entry = prompts.tasks["text"]
            for question, answer in entry.get("generic", []):
                jobs.append(partial(b.make, "text", question=question, answer=answer))
            for i in titled:
                r = records[i]
                values = {"title": item_title(r), "category": _leaf_category(r), "brand": _brand(r)}
                usable = [qa for qa in entry.get("derived_templates", [])
                          if all(values[k] for k in re.findall(r"{(\w+)}", qa[0] + qa[1]))]
                if usable:
                    jobs.append(partial(b.derived_text, usable, values))
        if max_per_task is not None and len(jobs) > max_per_task:
            jobs = b.rng.sample(jobs, max_per_task)
        out = [job() for job in jobs]
        if not out:
            logger.warning("LC-Rec task %s produced no examples (too little data or text)", task)
        per_task[task] = out
    examples = [e for task in tasks for e in per_task[task]]
    b.rng.shuffle(examples)
    logger.info("LC-Rec examples: %s", {t: len(v) for t, v in per_task.items()})
    return examples
