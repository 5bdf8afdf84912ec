"""S-DPO: the loss against hand-computed values (K = 1 is DPO), and both stages end to end on a tiny model."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from click.testing import CliRunner

import semid
from _lcrec_tiny import build_tiny_model, dataset_texts
from semid.cli.main import cli
from semid.errors import ParameterError
from semid.gen.sdpo import SDPOConfig, build_prompt, dpo_loss, reward_accuracy, sdpo_loss

DATA = "builtin:all_beauty_2023"


def test_with_one_negative_sdpo_is_exactly_dpo():
    g = torch.Generator().manual_seed(0)
    pc, rc = torch.randn(6, generator=g), torch.randn(6, generator=g)
    pr, rr = torch.randn(6, 1, generator=g), torch.randn(6, 1, generator=g)
    for beta in (0.1, 1.0, 3.0):
        torch.testing.assert_close(sdpo_loss(pc, pr, rc, rr, beta=beta), dpo_loss(pc, pr[:, 0], rc, rr[:, 0], beta=beta))


def test_sdpo_loss_by_hand():
    # r_w = 1 - 0 = 1; r_k = (0.5 - 0, 2 - 1) = (0.5, 1); beta 2: log(e^{2(-0.5)} + e^{0}) = log(e^-1 + 1)
    loss = sdpo_loss(torch.tensor([1.0]), torch.tensor([[0.5, 2.0]]), torch.tensor([0.0]), torch.tensor([[0.0, 1.0]]),
                     beta=2.0)
    margin = math.log(math.exp(-1.0) + 1.0)
    assert float(loss) == pytest.approx(-math.log(1 / (1 + math.exp(margin))))
    assert reward_accuracy(torch.tensor([1.0, 0.0]), torch.tensor([[0.5, 0.2], [1.0, -1.0]]), torch.zeros(2),
                           torch.zeros(2, 2)) == 0.5


def test_prompt_and_settings():
    prompt = build_prompt(["A", "B"], ["C", "D"], "movie")
    assert prompt == ("This user has watched A, B in the previous. Please predict the next movie this user will "
                      "watch. Choose the answer from the following 2 movie titles: C, D. Answer: ")
    with pytest.raises(ParameterError, match="negatives from"):
        SDPOConfig(candidates=3, negatives=3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "m", dataset_texts(semid.load_dataset(DATA)))


def test_both_stages_train_evaluate_and_resume(tiny, tmp_path):
    out = tmp_path / "sdpo"
    args = ["train", "sdpo", "--data", DATA, "--out", str(out), "--llm", str(tiny), "--quiet", "--negatives", "2",
            "--set", "train_users=16", "--set", "valid_users=4", "--set", "test_users=4", "--set", "candidates=5",
            "--set", "sft_epochs=1", "--set", "sdpo_epochs=1", "--set", "batch_size=8", "--set", "max_new_tokens=6"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["stages"]) == {"sft", "sdpo"} and report["prompts"] == {"train": 16, "valid": 4, "test": 4}
    for stage in ("sft", "sdpo"):
        test = report["stages"][stage]["test"]
        assert set(test) == {"hr@1_all", "hr@1_valid", "valid_ratio"} and report["stages"][stage]["steps"] == 2
    assert "gain_hr@1_all" in report
    log = [json.loads(x) for x in (out / "sdpo" / "train_log.jsonl").read_text().splitlines()]
    assert any("reward_accuracy" in r for r in log if r["event"] == "valid")
    again = CliRunner().invoke(cli, [*args, "--resume"])  # finished stages: nothing retrained
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["stages"]["sdpo"]["steps"] == 2
    # The preference stage can be retuned over the finished SFT stage; an SFT setting cannot change.
    shutil.rmtree(out / "sdpo")
    retuned = CliRunner().invoke(cli, [*args, "--resume", "--set", "sdpo_lr=3e-4", "--set", "sdpo_epochs=2"])
    assert retuned.exit_code == 0, retuned.output
    stages = json.loads(retuned.stdout)["stages"]
    assert stages["sft"]["steps"] == 2 and stages["sdpo"]["steps"] == 4
    changed = CliRunner().invoke(cli, [*args, "--resume", "--set", "sft_lr=3e-4"])
    assert changed.exit_code != 0 and "sft_lr" in changed.output


def test_sdpo_step_fits_one_batch(tiny):
    """The S-DPO step learns: repeated on one fixed prompt, the loss leaves log(K + 1) and the target wins."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from semid.gen.sdpo.train import _answer_logprobs

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny))
    policy = AutoModelForCausalLM.from_pretrained(str(tiny))
    reference = AutoModelForCausalLM.from_pretrained(str(tiny)).eval()
    prompt = build_prompt(["Shampoo", "Conditioner"], ["Soap", "Lotion", "Brush", "Comb"], "product")
    answers = ["Soap", "Lotion", "Brush", "Comb"]  # the target first, then 3 negatives
    with torch.no_grad():
        ref = _answer_logprobs(reference, tokenizer, prompt, answers)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        pol = _answer_logprobs(policy, tokenizer, prompt, answers)
        loss = sdpo_loss(pol[:1], pol[None, 1:], ref[:1], ref[None, 1:], beta=1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[0] == pytest.approx(math.log(4), abs=1e-4)  # policy == reference: log(K + 1)
    assert losses[-1] < 0.5 * losses[0]
    assert reward_accuracy(pol[:1].detach(), pol[None, 1:].detach(), ref[:1], ref[None, 1:]) == 1.0
