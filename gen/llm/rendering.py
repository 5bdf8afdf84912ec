"""How an item appears in an LLM prompt: its title, its semantic ID from a semid index, or both.

``title``: the catalogue title (every item must have one); ``sid``: the item's
token string in a chosen index (``<a_12><b_7><c_3>``; with LC-Rec-style code
tokens added to the LLM's vocabulary these are single tokens); ``title+sid``:
``"{title} {sid}"``. The renderer checks its inputs once, when it is built.
"""

from __future__ import annotations

from semid.errors import DataError, MissingFieldError, ParameterError

__all__ = ["RENDERINGS", "ItemRenderer"]

RENDERINGS = ("title", "sid", "title+sid")


class ItemRenderer:
    """Renders item ids for prompts.

    Args:
        mode: one of :data:`RENDERINGS`.
        dataset: the dataset whose items are rendered (titles come from it).
        index: a fitted semid index covering the dataset's items (``sid`` modes).

    Raises:
        ParameterError: an unknown mode, or a ``sid`` mode without an index.
        MissingFieldError: ``title`` modes with untitled items (count and first ids given).
        DataError: an index that does not hold every item of the dataset.
    """

    def __init__(self, mode: str, dataset, index=None):
        if mode not in RENDERINGS:
            raise ParameterError(f"item rendering must be one of {', '.join(RENDERINGS)}, got {mode!r}")
        self.mode = mode
        self.titles = {r["item_id"]: str(r.get("title") or "").strip() for r in dataset.items.records}
        if "title" in mode:
            missing = [i for i, t in self.titles.items() if not t]
            if missing:
                raise MissingFieldError(
                    f"rendering {mode!r} needs a title for every item, but {len(missing)} of {len(self.titles)} "
                    f"items of {dataset.name!r} have none (e.g. {', '.join(map(repr, missing[:3]))}); "
                    "use rendering 'sid' or give them titles"
                )
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
