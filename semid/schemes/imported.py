"""``imported``: an index made by another framework (LC-Rec / LETTER JSON, GRID, RecBole3.0, cornac).

Fitting reads the file given as ``path`` and aligns it with the dataset's
items. Items of the dataset missing from the file are an error (a generator
could never produce them). Colliding codes (LETTER's released Beauty index
has 0.11% of items sharing a code) are resolved with one extra level numbering
the colliding items, added only to them, and counted.
"""

from __future__ import annotations

from ..collisions import append_disambiguation, count_collisions
from ..errors import DataError
from ..interop import IMPORT_FORMATS, codes_matrix, parse_level_sizes, read_lcrec_index
from ..params import Param
from ..registry import register
from ..tokenizer import FitInputs, FitResult, ItemTokenizer
from ..vocab import CodeVocab, default_prefixes

__all__ = ["ImportedTokenizer"]


def _check_sizes(value: str) -> str | None:
    try:
        parse_level_sizes(value)
    except DataError as exc:
        return str(exc).split(": ", 1)[1]
    return None


@register
class ImportedTokenizer(ItemTokenizer):
    """Codes read from another framework's index file (LC-Rec/LETTER JSON, GRID, RecBole3.0) or cornac model."""

    scheme = "imported"
    collision_policy = "extra level numbering colliding items (colliding items only)"
    description = "codes from another framework's index file (LC-Rec/LETTER JSON, GRID, RecBole3.0, cornac)"
    params = {
        "seed": Param("seed", 0, "unused"),
        "path": Param("path", "", "the index JSON file", check=lambda v: None if v else "must name a file"),
        "format": Param("format", "lcrec", "file format", choices=IMPORT_FORMATS),
        "level_sizes": Param("level_sizes", "", "recbole3: codebook sizes the offset file was shifted by, e.g. "
                             "'256' or '256,256,256' (default: inferred)", check=_check_sizes),
    }

    def _fit(self, inputs: FitInputs) -> FitResult:
        fmt = self._params["format"]
        item_ids = inputs.items.item_ids
        if fmt in ("grid", "recbole3", "recbole3-raw"):  # positional: row / internal id i is the i-th item
            from ..interop import read_grid, read_recbole3

            path = self._params["path"]
            table = (read_grid(path, len(item_ids)) if fmt == "grid"
                     else read_recbole3(path, len(item_ids), raw=fmt == "recbole3-raw",
                                        level_sizes=parse_level_sizes(self._params["level_sizes"])))
            codes = {item: tuple(int(c) for c in row) for item, row in zip(item_ids, table)}
            prefixes = list(default_prefixes(table.shape[1]))
        elif fmt.startswith("cornac-"):  # keyed by cornac's raw item ids
            from ..interop import read_cornac

            codes = read_cornac(self._params["path"])
            prefixes = list(default_prefixes(len(next(iter(codes.values())))))
        else:
            codes, prefixes = read_lcrec_index(self._params["path"])
        missing = [i for i in item_ids if i not in codes]
        if missing:
            raise DataError(
                f"{self._params['path']}: {len(missing)} dataset items have no code (e.g. {missing[:3]}); "
                "the index must cover every item"
            )
        matrix = codes_matrix(codes, item_ids)
        resolved = 0
        fixed = bool((matrix >= 0).all())
        if count_collisions(matrix):
            if not fixed:
                raise DataError(f"{self._params['path']}: variable-length codes collide; cannot disambiguate")
            matrix, resolved, _ = append_disambiguation(matrix, always=False)
            prefixes = [*prefixes, "z" if "z" not in prefixes else "zz"]
        sizes = [int(matrix[:, level].max()) + 1 for level in range(matrix.shape[1])]
        for prefix in set(prefixes):  # levels sharing a prefix share one token table
            shared = max(size for size, p in zip(sizes, prefixes) if p == prefix)
            sizes = [shared if p == prefix else size for size, p in zip(sizes, prefixes)]
        return FitResult(
            codes=matrix,
            vocab=CodeVocab(sizes, prefixes),
            collisions_resolved=resolved,
            info={"source_items": len(codes), "unused_source_items": len(codes) - len(item_ids)},
        )
