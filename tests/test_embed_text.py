"""Item text, model resolution, real MiniLM embedding with cache, and the `semid embed` command."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import semid
from semid.cli.main import cli
from semid.data import Dataset, ItemTable, Sequences, save_dataset
from semid.embed import DEFAULT_FIELDS, embed_items, item_text, resolve_model, text_template
from semid.embeddings import load_embeddings, read_embeddings
from semid.errors import ArtifactError, ParameterError

RECORDS = [
    {"item_id": "a", "title": "Red matte lipstick", "price": 12.5, "brand": "Acme", "categories": ["Beauty", "Makeup", "Lips"]},
    {"item_id": "b", "title": "Argan oil hair serum", "brand": "Oilco", "categories": ["Beauty", "Hair Care"]},
    {"item_id": "c", "title": "Nail polish, glossy pink", "price": float("nan"), "categories": []},
    {"item_id": "d", "title": "Argan oil hair serum", "brand": "Oilco", "categories": ["Beauty", "Hair Care"]},
]


def test_item_text_follows_tiger_template():
    assert DEFAULT_FIELDS == ("title", "price", "brand", "categories")
    assert item_text(RECORDS[0]) == "title: Red matte lipstick; price: 12.50; brand: Acme; categories: Beauty, Makeup, Lips"
    assert item_text(RECORDS[2]) == "title: Nail polish, glossy pink"  # NaN price and empty list omitted
    assert item_text(RECORDS[0], ["brand", "title"]) == "brand: Acme; title: Red matte lipstick"
    assert text_template(["title", "brand"]).startswith("title: {title}; brand: {brand}")


def test_bad_model_paths(tmp_path):
    with pytest.raises(ArtifactError, match="embedding model not found"):
        resolve_model(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.json").write_text("{}")
    with pytest.raises(ArtifactError, match="is not a sentence-transformers model"):
        resolve_model(tmp_path / "plain")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "modules.json").write_text("not json")
    with pytest.raises(ArtifactError, match="cannot load as a sentence-transformers model"):
        embed_items(ItemTable(RECORDS), model=broken, use_cache=False, progress=False)
    with pytest.raises(ParameterError, match="fields"):
        embed_items(ItemTable(RECORDS), fields=[" "], progress=False)


def test_minilm_embeddings_are_aligned_normalized_and_cached(tmp_path):
    items = ItemTable(RECORDS)
    matrix, meta = embed_items(items, cache_dir=tmp_path, progress=False)
    assert matrix.shape == (4, 384) and matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(matrix[1], matrix[3])  # same text, same vector
    assert meta["model_name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["encoded"] == 3 and meta["cached"] == 0 and meta["fields"] == list(DEFAULT_FIELDS)
    # Semantics: the two hair serums are closer to each other than to the lipstick.
    assert matrix[1] @ matrix[3] > matrix[1] @ matrix[0]
    again, meta2 = embed_items(items, cache_dir=tmp_path, progress=False)
    assert meta2["encoded"] == 0 and meta2["cached"] == 3
    np.testing.assert_array_equal(again, matrix)
    # A changed item is the only one encoded again.
    changed = ItemTable([RECORDS[0], {**RECORDS[1], "title": "Argan oil shampoo"}, RECORDS[2], RECORDS[3]])
    _, meta3 = embed_items(changed, cache_dir=tmp_path, progress=False)
    assert meta3["encoded"] == 1 and meta3["cached"] == 3


def test_embed_command_writes_an_aligned_file(tmp_path):
    data = Dataset(name="tiny", items=ItemTable(RECORDS), sequences=Sequences(user_ids=["u"], items=[["a", "b", "c"]]))
    save_dataset(data, tmp_path / "data")
    runner = CliRunner()
    out = tmp_path / "emb.npz"
    args = ["embed", "--data", str(tmp_path / "data"), "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "4 items x 384 dims" in result.output
    ids, matrix, meta = read_embeddings(out)
    assert ids == ["a", "b", "c", "d"] and meta["template"].startswith("title: {title}; price: {price}")
    assert meta["dataset"] == str(tmp_path / "data") and meta["dim"] == 384
    np.testing.assert_array_equal(load_embeddings(out, ["d", "a"]), matrix[[3, 0]])
    result = runner.invoke(cli, args)
    assert result.exit_code == 1 and "already exists; pass --overwrite" in result.output
    result = runner.invoke(cli, [*args, "--overwrite", "--fields", "title"])
    assert result.exit_code == 0 and "(0 encoded" not in result.output
    bad = runner.invoke(cli, ["embed", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "x.npz"),
                              "--model", str(tmp_path / "missing-model")])
    assert bad.exit_code == 1 and "embedding model not found" in bad.output
    assert not (tmp_path / "x.npz").exists()


def test_learned_scheme_from_embedding_file(all_beauty, tmp_path):
    """What `semid build-index --embeddings` does: load an aligned file, fit, reload."""
    rng = np.random.default_rng(0)
    ids = list(reversed(all_beauty.items.item_ids))  # any row order in the file
    from semid.embeddings import save_embeddings

    save_embeddings(tmp_path / "e.npz", ids, rng.normal(size=(len(ids), 16)).astype(np.float32), {"model": "random"})
    x = load_embeddings(tmp_path / "e.npz", all_beauty.items.item_ids)
    tok = semid.make("rqkmeans", n_levels=2, codebook_size=8).fit(all_beauty.items, embeddings=x)
    assert len(tok) == len(all_beauty.items)
