"""The bridges against files GRID's and RecBole3.0's own code wrote and read (``tests/data/interop``).

``scripts/interop_samples.py`` produced them: GRID's tensor utilities and RecBole3.0's RQ-VAE writer
turned ``source_codes.npy`` into their files, and their readers parsed semid's exports
(``framework_reads.json``). Here semid must read the frameworks' files back to the source codes,
write what they write, and still write the very files the frameworks were shown.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import semid
from semid.interop import _grid_dedup, export_grid, export_recbole3, read_grid, read_recbole3

SAMPLES = Path(__file__).parent / "data" / "interop"
CODEBOOK = 16


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset("builtin:all_beauty_2023")


@pytest.fixture(scope="module")
def source():
    codes = np.load(SAMPLES / "source_codes.npy")
    assert len(set(map(tuple, codes.tolist()))) < len(codes)  # the sample must carry collisions
    return codes


def test_grids_own_tensor_reads_back_to_the_source_codes(data, source):
    table = torch.load(SAMPLES / "grid_merged_predictions_tensor.pt")
    assert table.dtype == torch.int64 and tuple(table.shape) == (4, len(source))
    np.testing.assert_array_equal(table[-1].numpy(), _grid_dedup(source))  # semid numbers collisions as GRID does
    np.testing.assert_array_equal(read_grid(SAMPLES / "grid_merged_predictions_tensor.pt", len(source)), source)
    tok = semid.make("imported", path=str(SAMPLES / "grid_merged_predictions_tensor.pt"), format="grid").fit(data.items)
    np.testing.assert_array_equal(tok.codes[:, :3], source)
    assert tok.collisions_resolved_ > 0


def test_recboles_own_file_reads_back_and_semid_writes_it_again(data, source, tmp_path):
    path = SAMPLES / "recbole3_item_sids.json"
    written = json.loads(path.read_text())
    codes = read_recbole3(path, len(source), raw=False)
    np.testing.assert_array_equal(codes[:, :3], source)  # unused codes did not shift the levels
    counter = np.array([written[str(i)][-1] for i in range(len(source))]) - 3 * CODEBOOK
    np.testing.assert_array_equal(codes[:, 3], counter)
    tok = semid.make("imported", path=str(path), format="recbole3").fit(data.items)
    assert json.loads(export_recbole3(tok, tmp_path / "item_sids.json", raw=False).read_text()) == written


def test_the_files_the_frameworks_read_are_what_semid_writes_today(data, tmp_path):
    reads = json.loads((SAMPLES / "framework_reads.json").read_text())
    assert reads["grid_map_sparse_id_to_semantic_id"]["equals_semid_codes_plus_collision_column"]
    assert reads["recbole3_tiger_codec"]["equals_semid_codes_offset_by_level"]
    assert reads["recbole3_lcrec_tokenizer"]["equals_semid_codes"]
    expected = np.load(SAMPLES / "semid_index_codes.npy")
    tok = semid.make("imported", path=str(SAMPLES / "semid_item_sids_raw.json"), format="recbole3-raw").fit(data.items)
    np.testing.assert_array_equal(tok.codes, expected)
    for name, write in [("semid_item_sids.json", lambda p: export_recbole3(tok, p, raw=False)),
                        ("semid_item_sids_raw.json", lambda p: export_recbole3(tok, p, raw=True))]:
        assert json.loads(write(tmp_path / name).read_text()) == json.loads((SAMPLES / name).read_text())
    assert torch.equal(torch.load(export_grid(tok, tmp_path / "g.pt")), torch.load(SAMPLES / "semid_grid.pt"))


@pytest.mark.parametrize("fmt, adapter", [("cornac-diffgrm", "SemidDiffGRM"), ("cornac-letter", "SemidLETTER"),
                                          ("cornac-rpg", "SemidRPG"), ("cornac-tiger", "SemidTIGER")])
def test_cornac_trained_on_semid_codes_and_its_saved_model_read_back(fmt, adapter):
    reads = json.loads((SAMPLES / "framework_reads.json").read_text())["cornac"][fmt]
    assert reads["trained_on_semid_codes"] and reads["saved_model_reads_back_to_semid_codes"]
    assert reads["loaded_class"] == reads["exported_model_loaded_by_cornac_as"] == adapter
    assert reads["scores_every_item"]
    assert reads["imported_index_equals_semid_index"] and reads["items"] == 356  # every item of the dataset
