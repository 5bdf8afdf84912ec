"""Every Python example of docs/interop.md runs as written (with a tiny test model as `load_model`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from _lcrec_tiny import build_tiny_model

DOC = Path(__file__).resolve().parents[1] / "docs" / "interop.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import semid

    data = semid.load_dataset("builtin:all_beauty_2023")
    return build_tiny_model(tmp_path_factory.mktemp("m") / "tiny", [str(r.get("title") or "") for r in
                                                                     data.items.records])


@pytest.mark.parametrize("block", range(len(BLOCKS)))
def test_documented_example_runs(block, tiny, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def load_model():
        return AutoModelForCausalLM.from_pretrained(tiny).eval(), AutoTokenizer.from_pretrained(tiny)

    exec(compile(BLOCKS[block], f"{DOC.name}[{block}]", "exec"), {"load_model": load_model, "workdir": tmp_path})


def test_there_are_examples():
    assert len(BLOCKS) >= 2
