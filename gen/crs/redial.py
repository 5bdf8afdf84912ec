"""ReDIAL's test split in the entity-linked format of He et al. (CIKM 2023): turns and the movie catalogue.

A directory holds ``test.jsonl(.gz)`` (one system turn per line: the dialogue so
far as ``input``, the gold recommendations ``rec``, the entities mentioned before
``prev_entity``), ``item_ids.json`` (the entity ids that are movies: the
catalogue) and ``entity2id.json(.gz)`` (DBpedia URI -> id). A catalogue title is
made from the URI: ``<http://dbpedia.org/resource/Water_(1985_film)>`` becomes
``Water (1985)``, ``..._(film)`` loses the suffix, other qualifiers stay.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from semid._io import iter_jsonl, open_text, resolve_input
from semid.errors import DataError

__all__ = ["ReDIAL", "Turn", "entity_title", "load_redial"]


@dataclass(frozen=True)
class Turn:
    """One system turn: the dialogue before it, the gold movies, the movies mentioned before."""

    dialog_id: str
    turn_id: int
    dialogue: str
    rec: tuple[int, ...]
    mentioned: tuple[int, ...]


@dataclass
class ReDIAL:
    turns: list[Turn]
    titles: dict[int, str]  # catalogue: movie entity id -> title


def entity_title(uri: str) -> str:
    """``<http://dbpedia.org/resource/The_Little_Mermaid_(1989_film)>`` -> ``The Little Mermaid (1989)``."""
    name = urllib.parse.unquote(uri.strip("<>").rsplit("/", 1)[-1]).replace("_", " ")
    name = re.sub(r"\((\d{4}) film\)", r"(\1)", name)
    return re.sub(r"\s*\(film\)", "", name).strip()


def load_redial(directory: str | Path) -> ReDIAL:
    """Read the three files of a ReDIAL directory (``../shared/data/redial``).

    Raises:
        DataError: a missing file, a malformed line (file and line), or a gold
            recommendation outside the catalogue.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"ReDIAL directory not found: {directory}")
    items_path = resolve_input(directory / "item_ids.json")
    entity_path = resolve_input(directory / "entity2id.json")
    try:
        with open_text(items_path) as handle:
            item_ids = [int(i) for i in json.load(handle)]
        with open_text(entity_path) as handle:
            entity2id = json.load(handle)
    except (json.JSONDecodeError, ValueError, TypeError) as exc:
        raise DataError(f"{directory}: item_ids.json / entity2id.json are malformed ({exc})") from None
    names = {int(v): k for k, v in entity2id.items()}
    missing = [i for i in item_ids if i not in names]
    if missing:
        raise DataError(f"{entity_path}: {len(missing)} catalogue ids have no entity (e.g. {missing[0]})")
    titles = {i: entity_title(names[i]) for i in item_ids}
    catalogue = set(titles)
    turns = []
    test_path = resolve_input(directory / "test.jsonl")
    for line, record in iter_jsonl(test_path):
        try:
            rec = tuple(int(i) for i in record["rec"])
            mentioned = tuple(int(i) for i in record.get("prev_entity", []) if int(i) in catalogue)
            turn = Turn(str(record["dialog_id"]), int(record["turn_id"]), str(record["input"]), rec, mentioned)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{test_path}:{line}: expected fields dialog_id, turn_id, input, rec ({exc})") from None
        outside = [i for i in rec if i not in catalogue]
        if outside:
            raise DataError(f"{test_path}:{line}: gold item {outside[0]} is not in item_ids.json")
        turns.append(turn)
    return ReDIAL(turns, titles)
