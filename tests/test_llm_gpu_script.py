"""The 7B-class script cannot run here: at least every setting it passes must exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from semid.gen.instructrec import InstructRecConfig
from semid.gen.llara import LLaRAConfig
from semid.gen.sdpo import SDPOConfig
from semid.gen.tallrec import TallRecConfig

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_llm_gpu.sh"
CONFIGS = {"tallrec": TallRecConfig, "sdpo": SDPOConfig, "llara": LLaRAConfig, "instructrec": InstructRecConfig}


def _commands() -> dict[str, list[str]]:
    text = SCRIPT.read_text().replace("\\\n", " ")
    arrays = {name: re.findall(r"--set (\w+)=", body) for name, body in re.findall(r"^(\w+)=\((.*)\)$", text, re.M)}
    commands = {}
    for line in text.splitlines():
        found = re.search(r"\btrain (\w+) ", line)
        if found and not line.lstrip().startswith("#"):
            keys = re.findall(r"--set (\w+)=", line)
            for name in re.findall(r"\$\{(\w+)\[@\]\}", line):
                keys += arrays[name]
            commands[found.group(1)] = keys
    return commands


@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_every_setting_of_the_gpu_script_exists(method):
    commands = _commands()
    assert method in commands, f"bench_llm_gpu.sh has no `semid train {method}`"
    keys = commands[method]
    assert "device" in keys and "dtype" in keys
    declared = CONFIGS[method].declared()
    assert [k for k in keys if k not in declared] == []
    if method != "sdpo":  # S-DPO's cached prompt pass cannot be checkpointed
        assert "activation_checkpointing" in keys
