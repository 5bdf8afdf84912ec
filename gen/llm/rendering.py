"""How an item appears in an LLM prompt: its title, its semantic ID from a semid index, or both.

``title``: the catalogue title (every item must have one); ``sid``: the item's
token string in a chosen index (``<a_12><b_7><c_3>``; with LC-Rec-style code
tokens added to the LLM's vocabulary these are single tokens); ``title+sid``:
``"{title} {sid}"``. The renderer checks its inputs once, when it is built.
"""

from __future__ import annotations

import logging

from semid.errors import DataError, MissingFieldError, ParameterError

__all__ = ["ON_MISSING", "RENDERINGS", "ItemRenderer", "add_rendering_tokens", "check_rendering", "tuned_item_texts"]

RENDERINGS = ("title", "sid", "title+sid")
logger = logging.getLogger(__name__)

#: What a title rendering does with an untitled item: refuse, or show its id.
ON_MISSING = ("error", "item_id")


class ItemRenderer:
    """Renders item ids for prompts.

    Args:
        mode: one of :data:`RENDERINGS`.
        dataset: the dataset whose items are rendered (titles come from it).
        index: a fitted semid index covering the dataset's items (``sid`` modes).
        on_missing: ``"error"`` (untitled items refused under title modes) or ``"item_id"``
            (shown by their id; ``untitled`` counts them).

    Raises:
        ParameterError: an unknown mode, or a ``sid`` mode without an index.
        MissingFieldError: ``title`` modes with untitled items (count and first ids given).
        DataError: an index that does not hold every item of the dataset.
    """

    def __init__(self, mode: str, dataset, index=None, *, on_missing: str = "error"):
        if mode not in RENDERINGS:
            raise ParameterError(f"item rendering must be one of {', '.join(RENDERINGS)}, got {mode!r}")
        if on_missing not in ON_MISSING:
            raise ParameterError(f"on_missing must be one of {', '.join(ON_MISSING)}, got {on_missing!r}")
        self.mode, self.untitled = mode, 0
        self.titles = {r["item_id"]: str(r.get("title") or "").strip() for r in dataset.items.records}
        if "title" in mode:
            missing = [i for i, t in self.titles.items() if not t]
            if missing and on_missing == "error":
                raise MissingFieldError(
                    f"rendering {mode!r} needs a title for every item, but {len(missing)} of {len(self.titles)} "
                    f"items of {dataset.name!r} have none (e.g. {', '.join(map(repr, missing[:3]))}); "
                    "use rendering 'sid', give them titles, or show them by id (--set on_missing=item_id)"
                )
            for item in missing:
                self.titles[item] = item
            self.untitled = len(missing)
        if "sid" in mode:
            if index is None:
                raise ParameterError(f"rendering {mode!r} needs an index (--index)")
            known = set(index.item_ids)
            uncovered = [i for i in self.titles if i not in known]
            if uncovered:
                raise DataError(
                    f"the index does not hold {len(uncovered)} of the {len(self.titles)} items of "
                    f"{dataset.name!r} (e.g. {uncovered[0]!r}); build the index on this dataset"
                )
        self.index = index

    def __call__(self, item_id: str) -> str:
        if self.mode == "title":
            return self.titles[item_id]
        sid = self.index.render(item_id)
        return sid if self.mode == "sid" else f"{self.titles[item_id]} {sid}"



def check_rendering(owner: str, rendering: str, index: str | None) -> None:
    """One message for a tuned method's ``rendering`` / ``index`` pair that cannot work together.

    Raises:
        ParameterError: a sid rendering without an index, or an index the title rendering ignores.
    """
    if "sid" in rendering and not index:
        raise ParameterError(f"{owner}: rendering {rendering!r} needs an index (--index or --set index=PATH)")
    if rendering == "title" and index:
        raise ParameterError(f"{owner}: an index is given but rendering is 'title', which does not use it; "
                             "add --set rendering=sid (or title+sid)")


def tuned_item_texts(dataset, mode: str, index_path: str | None):
    """Item texts for a method that tunes an LLM: ``(dict item_id -> str, index or None)``.

    ``title``: the catalogue titles (an untitled item appears by its id, with a warning, as
    these trainers always did). ``sid`` / ``title+sid``: the items' code strings in
    the index at ``index_path`` (give the index to :func:`add_rendering_tokens` once the
    model is loaded, so its code tokens become single, trainable tokens).

    Raises:
        ParameterError, MissingFieldError, DataError: as :class:`ItemRenderer`.
    """
    index = None
    if "sid" in mode and index_path:
        import semid

        index = semid.load(index_path)
    renderer = ItemRenderer(mode, dataset, index, on_missing="item_id")
    if renderer.untitled:
        logger.warning("%d of %d items of %r have no title and appear by their id", renderer.untitled,
                       len(renderer.titles), dataset.name)
    return {item: renderer(item) for item in renderer.titles}, index


def add_rendering_tokens(model, tokenizer, index) -> list[int]:
    """Add ``index``'s code tokens to ``tokenizer`` (embeddings resized, new rows at the mean, LC-Rec style).

    Returns the tokenizer ids of the code tokens, for ``make_trainable`` to train their
    rows; ``[]`` when ``index`` is ``None`` (title rendering).
    """
    if index is None:
        return []
    from .code_tokens import add_code_tokens

    return [int(i) for i in add_code_tokens(model, tokenizer, index.vocab, init="mean").tolist()]
