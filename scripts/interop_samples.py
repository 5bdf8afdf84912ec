"""Regenerate ``tests/data/interop/``: semantic-ID files written and read by GRID's and RecBole3.0's own code.

The interop tests check semid's bridges against these files, so the formats are pinned by the
frameworks themselves rather than by semid's reading of their documentation. Two stages, because
the frameworks and semid need different environments:

    # 1. in semid's environment: the source codes and semid's exports of them
    .venv/bin/python scripts/interop_samples.py semid tests/data/interop

    # 2. in an environment with GRID's and RecBole3.0's dependencies (torch, lightning, hydra-core,
    #    rich, pyarrow, fsspec, pandas, accelerate, scikit-learn), given checkouts of both repositories:
    python scripts/interop_samples.py frameworks tests/data/interop --grid GRID_DIR --recbole RECBOLE_DIR

Stage 2 calls, unchanged, GRID's ``merge_list_of_keyed_tensors_to_single_tensor``,
``deduplicate_rows_in_tensor`` and ``transpose_tensor_from_file`` (the post-processing its
``rkmeans_inference_flat`` experiment runs to write ``merged_predictions_tensor.pt``) and
``map_sparse_id_to_semantic_id`` (how its TIGER reads the file); RecBole3.0's RQ-VAE trainer's
``_extend_tokens`` plus its ``json.dump`` (how it writes ``item_sids.json``), its TIGER's
``TIGERSIDCodec.from_file`` and its LC-Rec's ``LCRecItemTokenizer`` (how they read one). What the
readers made of semid's exports is written to ``framework_reads.json``; ``SOURCE.md`` records the
commits.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

#: The source index: 3 levels of 16 codes over the embedded dataset (some codes unused, some
#: items colliding before semid's disambiguation level: both cases the formats must carry).
N_LEVELS, CODEBOOK = 3, 16


def stage_semid(out: Path) -> None:
    import semid
    from semid.interop import export_grid, export_recbole3

    data = semid.load_dataset("builtin:all_beauty_2023")
    x = np.random.default_rng(0).normal(size=(len(data.items), 16)).astype(np.float32)
    index = semid.make("rqkmeans", n_levels=N_LEVELS, codebook_size=CODEBOOK, n_iter=10, seed=0).fit(
        data.items, embeddings=x)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "source_codes.npy", np.asarray(index.codes[:, :N_LEVELS], dtype=np.int64))
    np.save(out / "semid_index_codes.npy", np.asarray(index.codes, dtype=np.int64))
    export_grid(index, out / "semid_grid.pt")
    (out / "semid_grid.pt.item_ids.txt").unlink()  # the item order is the embedded dataset's
    export_recbole3(index, out / "semid_item_sids.json", raw=False)
    export_recbole3(index, out / "semid_item_sids_raw.json", raw=True)


def _commit(repo: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return (repo / "COMMIT").read_text().strip() if (repo / "COMMIT").exists() else "unknown"


def stage_frameworks(out: Path, grid: Path, recbole: Path) -> None:
    import torch


    source = np.load(out / "source_codes.npy")
    reads: dict = {}

    # -- GRID: the rows its LocalPickleWriter collects, merged and post-processed by its own functions
    sys.path.insert(0, str(grid))
    from src.data.loading.components.pre_processing import map_sparse_id_to_semantic_id
    from src.utils.tensor_utils import (deduplicate_rows_in_tensor, merge_list_of_keyed_tensors_to_single_tensor,
                                        transpose_tensor_from_file)

    rows = [{"item_id": i, "cluster_ids": torch.tensor(code)} for i, code in enumerate(source.tolist())]
    with tempfile.TemporaryDirectory() as tmp:
        pkl = Path(tmp) / "merged_predictions.pkl"
        pkl.write_bytes(pickle.dumps(rows))  # what _merge_files writes before the tensor
        merged = merge_list_of_keyed_tensors_to_single_tensor(pickle.loads(pkl.read_bytes()), "item_id",
                                                              "cluster_ids")
    target = out / "grid_merged_predictions_tensor.pt"
    torch.save(merged.cpu(), target)
    deduplicate_rows_in_tensor(str(target))
    transpose_tensor_from_file(str(target))
    semid_table = torch.load(out / "semid_grid.pt")
    sequence = torch.tensor([5, 0, 17])
    mapped = map_sparse_id_to_semantic_id({"sequence_data": sequence}, SimpleNamespace(
        semantic_id_map={"sequence_data": semid_table}), features_to_apply=["sequence_data"])["sequence_data"]
    expected = np.load(out / "semid_index_codes.npy")
    reads["grid_map_sparse_id_to_semantic_id"] = {
        "items": sequence.tolist(), "tokens": mapped.tolist(),
        "equals_semid_codes_plus_collision_column": mapped.tolist() == np.concatenate(
            [expected[sequence.numpy()], np.zeros((3, 1), dtype=np.int64)], 1).reshape(-1).tolist()}

    # -- RecBole3.0: its RQ-VAE's "extend" collision handling and its writer; its TIGER and LC-Rec readers
    sys.path.insert(0, str(recbole / "src"))
    from recbole3.model.lcrec.data import LCRecItemTokenizer
    from recbole3.model.rqvae.trainer import RQVAETrainer
    from recbole3.model.tiger.data import TIGERSIDCodec

    item2sids = RQVAETrainer._extend_tokens(None, source, SimpleNamespace(codebook_size=CODEBOOK,
                                                                          codebook_num=N_LEVELS))
    with open(out / "recbole3_item_sids.json", "w", encoding="utf-8") as f:
        json.dump(item2sids, f, indent=2)  # as RQVAETrainer writes sid_output_file
    codec = TIGERSIDCodec.from_file(str(out / "semid_item_sids.json"), num_items=len(source))
    offsets = np.concatenate([[0], np.cumsum(np.full(expected.shape[1], CODEBOOK))[:-1]])
    reads["recbole3_tiger_codec"] = {
        "n_digit": codec.n_digit, "semantic_vocab_size": codec.semantic_vocab_size,
        "items": len(codec.item_to_sid),
        "equals_semid_codes_offset_by_level": all(
            list(codec.item_to_sid[i]) == (expected[i] + offsets).tolist() for i in range(len(expected)))}
    lcrec = LCRecItemTokenizer(SimpleNamespace(sid_file=str(out / "semid_item_sids_raw.json")))
    reads["recbole3_lcrec_tokenizer"] = {
        "n_digit": lcrec.n_digit, "item_0": lcrec.tokenize(0),
        "equals_semid_codes": all(lcrec.tokenize_tuple(i) == tuple(f"<{level + 1}_{c}>" for level, c in
                                                                   enumerate(expected[i].tolist()))
                                  for i in range(len(expected)))}
    # -- cornac: its TIGER trained on semid's codes (SemidTIGER), saved and loaded by cornac, read back
    reads["cornac"] = check_cornac(out)

    (out / "framework_reads.json").write_text(json.dumps(reads, indent=1) + "\n", encoding="utf-8")
    (out / "SOURCE.md").write_text(
        "# Interop samples\n\n"
        "Written by `scripts/interop_samples.py` (see its docstring for the two commands).\n\n"
        f"- `source_codes.npy`, `semid_*`: semid (rqkmeans {N_LEVELS} x {CODEBOOK} over `builtin:all_beauty_2023`, "
        "seeded random embeddings).\n"
        f"- `grid_merged_predictions_tensor.pt`: snap-research/GRID at {_commit(grid)}, its own tensor utilities.\n"
        f"- `recbole3_item_sids.json`: RUCAIBox/RecBole3.0 at {_commit(recbole)}, its RQ-VAE trainer's "
        "`_extend_tokens` and `json.dump`.\n"
        "- `framework_reads.json`: what GRID's `map_sparse_id_to_semantic_id`, RecBole3.0's "
        "`TIGERSIDCodec.from_file` and `LCRecItemTokenizer` read from semid's exports, and what cornac "
        f"{_cornac_version()}'s TIGER, LETTER, RPG and DiffGRM trained on, saved and loaded through "
        "`semid.cornac_models`.\n",
        encoding="utf-8")


def _cornac_version() -> str:
    import cornac

    return cornac.__version__


#: Small settings so that one epoch on the embedded dataset takes seconds (attributes set after loading).
CORNAC_SMALL = dict(n_epochs=1, batch_size=64, d_model=32, d_ff=64, num_heads=2, d_kv=16, num_enc_layers=1,
                    num_dec_layers=1, n_inner=64, n_head=2, device="cpu")


def check_cornac(out: Path) -> dict:
    """Per cornac generative model: export an index for it, load and fit it (1 epoch) in cornac, save, read back."""
    import cornac
    from cornac.eval_methods import NextItemEvaluation

    import semid
    from semid.interop import CORNAC_MODELS, export_cornac, read_cornac

    data = semid.load_dataset("builtin:all_beauty_2023")
    index = semid.make("imported", path=str(out / "semid_item_sids_raw.json"), format="recbole3-raw").fit(data.items)
    seqs = data.sequences
    rows = [(u, item, 1.0, float(t)) for u, items, times in zip(seqs.user_ids, seqs.items, seqs.timestamps)
            for item, t in zip(items, times)]
    # exclude_unknowns=False: cornac then numbers every item, also those seen only as a test target
    method = NextItemEvaluation.leave_last_out(data=rows, fmt="UIRT", exclude_unknowns=False, seed=0)
    ours = dict(zip(index.item_ids, map(tuple, index.codes.tolist())))
    reads = {"cornac": cornac.__version__}
    for fmt in sorted(CORNAC_MODELS):
        with tempfile.TemporaryDirectory() as tmp:  # `semid export --format cornac-*`, then cornac's own load
            model = cornac.models.Recommender.load(str(export_cornac(index, Path(tmp) / "m.pkl", fmt)),
                                                   trainable=True)
            exported_class = type(model).__name__
            for name, value in CORNAC_SMALL.items():
                if hasattr(model, name):
                    setattr(model, name, value)
            model.fit(method.train_set, method.val_set)
            scores = model.score(0, history_items=[0, 1])
            saved = model.save(tmp)
            loaded = cornac.models.Recommender.load(saved)
            back = read_cornac(saved)
            imported = semid.make("imported", path=saved, format=fmt).fit(data.items)  # import-index
        trained_on = {raw: tuple(model.sid_table[j][: index.codes.shape[1]].tolist())
                      for raw, j in model.iid_map.items()}
        reads[fmt] = {
            "items": len(back), "levels": len(next(iter(back.values()))),
            "exported_model_loaded_by_cornac_as": exported_class, "loaded_class": type(loaded).__name__,
            "trained_on_semid_codes": all(ours[raw] == code for raw, code in trained_on.items()),
            "saved_model_reads_back_to_semid_codes": all(ours[raw] == code for raw, code in back.items()),
            "imported_index_equals_semid_index": bool((imported.codes == index.codes).all()),
            "scores_every_item": len(scores) == model.total_items}
    return reads


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=["semid", "frameworks"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--grid", type=Path, help="a checkout of snap-research/GRID (stage frameworks)")
    parser.add_argument("--recbole", type=Path, help="a checkout of RUCAIBox/RecBole3.0 (stage frameworks)")
    args = parser.parse_args(argv)
    if args.stage == "semid":
        stage_semid(args.out)
    else:
        if args.grid is None or args.recbole is None:
            parser.error("stage frameworks needs --grid and --recbole")
        stage_frameworks(args.out, args.grid.resolve(), args.recbole.resolve())


if __name__ == "__main__":
    main()
