"""Hybrid indexing: a prefix scheme's grouping followed by a suffix scheme's code.

"How to Index Item IDs" composes schemes, e.g. CID+IID (collaborative clusters,
then one independent token per item), SemID+IID and SemID+CID. Here any
registered scheme ``A`` composes with any ``B`` as ``"A+B"``: the code is ``A``'s
grouping part (its code without its within-group index, padded to a fixed
length, see ``ItemTokenizer._fit_prefix``) followed by ``B``'s full code. ``B``'s
codes are unique, so the concatenation is too.

Parameters are ``prefix`` and ``suffix`` dicts (``--set prefix.n_clusters=10``
on the command line) plus ``seed``, passed to both parts unless they set their own.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..errors import ParameterError
from ..params import Param
from ..tokenizer import FitInputs, FitResult, ItemTokenizer
from ..vocab import CodeVocab, default_prefixes

__all__ = ["HybridTokenizer"]


class HybridTokenizer(ItemTokenizer):
    """Base of the classes made by :meth:`for_parts`; not registered itself."""

    prefix_scheme: ClassVar[str] = ""
    suffix_scheme: ClassVar[str] = ""
    _classes: ClassVar[dict[tuple[str, str], type["HybridTokenizer"]]] = {}

    @classmethod
    def for_parts(cls, prefix: str, suffix: str) -> type["HybridTokenizer"]:
        """The hybrid class for ``prefix+suffix`` (created once, then cached)."""
        from ..registry import scheme_class

        key = (prefix, suffix)
        if key not in cls._classes:
            a, b = scheme_class(prefix), scheme_class(suffix)
            cls._classes[key] = type(
                f"Hybrid_{prefix}_{suffix}",
                (cls,),
                {
                    "scheme": f"{prefix}+{suffix}",
                    "prefix_scheme": prefix,
                    "suffix_scheme": suffix,
                    "requires": a.requires | b.requires,
                    "supports_cold_start": False,
                    "collision_policy": f"suffix scheme {suffix!r}: {b.collision_policy}",
                    "description": f"{prefix} grouping followed by {suffix} code",
                    "params": {
                        "seed": Param("seed", 0, "seed passed to both parts"),
                        "prefix": Param("prefix", {}, f"parameters of the {prefix} part", kind=dict),
                        "suffix": Param("suffix", {}, f"parameters of the {suffix} part", kind=dict),
                    },
                },
            )
        return cls._classes[key]

    @classmethod
    def parse_params(cls, assignments):
        """Accept ``prefix.NAME=value`` / ``suffix.NAME=value`` besides ``seed``."""
        from ..registry import scheme_class

        out: dict[str, Any] = {"prefix": {}, "suffix": {}}
        for key, text in assignments.items():
            part, dot, name = key.partition(".")
            if dot and part in ("prefix", "suffix"):
                part_cls = scheme_class(cls.prefix_scheme if part == "prefix" else cls.suffix_scheme)
                out[part].update(part_cls.parse_params({name: text}))
            elif key == "seed":
                out["seed"] = cls.params["seed"].parse(cls.scheme, text)
            else:
                raise ParameterError(
                    f"{cls.scheme}: unknown parameter {key!r}; use seed, prefix.NAME=VALUE or suffix.NAME=VALUE"
                )
        return out

    def _part(self, role: str) -> ItemTokenizer:
        from ..registry import scheme_class

        params = dict(self._params[role])
        params.setdefault("seed", self.seed)
        return scheme_class(self.prefix_scheme if role == "prefix" else self.suffix_scheme)(**params)

    def _required_fields(self) -> list[str]:
        return sorted({f for role in ("prefix", "suffix") for f in self._part(role)._required_fields()})

    def _fit(self, inputs: FitInputs) -> FitResult:
        prefix_part, suffix_part = self._part("prefix"), self._part("suffix")
        for part in (prefix_part, suffix_part):
            part._params = part._validated_params()
        head = prefix_part._fit_prefix(inputs)
        tail = suffix_part._fit(inputs)
        codes = np.concatenate([head.codes, tail.codes], axis=1).astype(np.int32)
        prefixes = _relabel(head.vocab.prefixes, tail.vocab.prefixes)
        head_labels = head.labels or [None] * head.vocab.n_levels
        tail_labels = tail.labels or [None] * tail.vocab.n_levels
        n_prefix_groups = int(np.unique(head.codes, axis=0).shape[0])
        return FitResult(
            codes=codes,
            vocab=CodeVocab([*head.vocab.level_sizes, *tail.vocab.level_sizes], prefixes),
            collisions_resolved=tail.collisions_resolved,
            labels=[*head_labels, *tail_labels],
            state={**{f"prefix.{k}": v for k, v in head.state.items()}, **{f"suffix.{k}": v for k, v in tail.state.items()}},
            info={"prefix_levels": head.vocab.n_levels, "prefix_groups": n_prefix_groups,
                  "prefix": head.info, "suffix": tail.info},
        )


def _relabel(head: tuple[str, ...], tail: tuple[str, ...]) -> list[str]:
    """Fresh letters for each part's distinct prefixes, keeping shared tables shared."""
    letters = iter(default_prefixes(len(head) + len(tail)))
    out = []
    for part in (head, tail):
        mapping: dict[str, str] = {}
        for prefix in part:
            if prefix not in mapping:
                mapping[prefix] = next(letters)
            out.append(mapping[prefix])
    return out
