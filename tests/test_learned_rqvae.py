"""rqvae: training, codes, persistence of weights, cold start, hooks, determinism, bad input."""

from __future__ import annotations

import filecmp

import numpy as np
import pytest
import torch

import semid
from _learned_testkit import clustered
from _learned_testkit import one_torch_thread  # noqa: F401  (autouse fixture)
from semid.errors import DataError, ParameterError
from semid.schemes.rqvae import RQVAETokenizer

SMALL = {"n_levels": 2, "codebook_size": 8, "hidden": [32], "code_dim": 8, "epochs": 4, "batch_size": 64,
         "eval_every": 2}


@pytest.fixture(scope="module")
def fitted():
    items, x = clustered()
    return semid.make("rqvae", **SMALL).fit(items, embeddings=x), items, x


def test_fit_gives_unique_codes_curve_and_state(fitted):
    tok, items, _ = fitted
    assert tok.codes.shape == (len(items), 3)
    assert len({tuple(c) for c in tok.codes.tolist()}) == len(items)
    info = tok.info_
    assert [p["epoch"] for p in info["curve"]] == [0, 2, 4]
    assert all(0 < u <= 1 for u in info["utilization"])
    assert info["input_dim"] == 24
    assert tok.collisions_resolved_ == round(info["collision_rate_before"] * len(items))
    assert {"rqvae.codebooks", "rqvae.encoder.0.weight", "rqvae.input_mean"} <= set(tok.state_)
    assert tok.state_["rqvae.codebooks"].shape == (2, 8, 8)


def test_training_reduces_reconstruction_error(fitted):
    tok, _, _ = fitted
    curve = tok.info_["curve"]
    assert curve[-1]["recon_mse_std"] < curve[0]["recon_mse_std"]


def test_semantic_codes_match_fitted_codes_and_cold_start(fitted):
    tok, items, x = fitted
    np.testing.assert_array_equal(tok.semantic_codes(x), tok.codes[:, :2])
    code = tok.encode_new(embedding=x[10])
    assert code[:2] == tok.encode(items.item_ids[10])[:2] and tok.trie.is_prefix(code)
    assert tok.reconstruct(x[:5]).shape == (5, 24)


def test_weights_survive_save_and_load(fitted, tmp_path):
    tok, _, x = fitted
    loaded = semid.load(tok.save(tmp_path / "idx"))
    np.testing.assert_array_equal(loaded.semantic_codes(x), tok.semantic_codes(x))
    assert loaded.encode_new(embedding=x[3]) == tok.encode_new(embedding=x[3])
    np.testing.assert_allclose(loaded.reconstruct(x[:4]), tok.reconstruct(x[:4]))


def test_same_seed_gives_byte_identical_index(tmp_path):
    items, x = clustered(n=120)
    dirs = [semid.make("rqvae", **SMALL, seed=5).fit(items, embeddings=x).save(tmp_path / f"r{i}") for i in range(2)]
    names = sorted(p.name for p in dirs[0].iterdir())
    assert all(filecmp.cmp(dirs[0] / n, dirs[1] / n, shallow=False) for n in names)
    other = semid.make("rqvae", **SMALL, seed=6).fit(items, embeddings=x).save(tmp_path / "other")
    assert not filecmp.cmp(dirs[0] / "state.safetensors", other / "state.safetensors", shallow=False)


class _PullToOrigin(RQVAETokenizer):
    """A subclass the way LETTER extends rqvae: an extra loss and an epoch hook."""

    scheme = "rqvae_test_subclass"  # not registered

    def __init__(self, **params):
        super().__init__(**params)
        self.calls: list[tuple[int, tuple[int, ...]]] = []
        self.epochs_seen: list[int] = []

    def on_epoch_start(self, epoch):
        self.epochs_seen.append(epoch)
        assert self.model_.codebooks.shape == (2, 8, 8)  # codebooks reachable from hooks

    def extra_loss(self, batch_indices, z, z_q, codes):
        self.calls.append((len(batch_indices), tuple(codes.shape)))
        assert z.shape == z_q.shape and z_q.requires_grad
        assert self.fit_inputs_.embeddings.shape[0] == 200
        return 10.0 * z.pow(2).mean()


def test_subclass_hooks_are_called_and_change_training():
    items, x = clustered()
    sub = _PullToOrigin(**SMALL).fit(items, embeddings=x)
    base = semid.make("rqvae", **SMALL).fit(items, embeddings=x)
    assert sub.epochs_seen == [0, 1, 2, 3]
    assert len(sub.calls) == 4 * 4 and sub.calls[0] == (64, (64, 2))
    assert not np.array_equal(sub.state_["rqvae.encoder.0.weight"], base.state_["rqvae.encoder.0.weight"])
    assert not hasattr(sub, "fit_inputs_")  # the catalogue is not kept after fit


def test_bad_inputs():
    items, x = clustered(n=40)
    with pytest.raises(ParameterError, match="codebook_size 64 needs at least that many items, got 40"):
        semid.make("rqvae", **{**SMALL, "codebook_size": 64}).fit(items, embeddings=x)
    with pytest.raises(DataError, match="needs item embeddings"):
        semid.make("rqvae", **SMALL).fit(items)
    with pytest.raises(DataError, match="has 41 rows but there are 40 items"):
        semid.make("rqvae", **SMALL).fit(items, embeddings=np.vstack([x, x[:1]]))
    bad = x.copy()
    bad[4, 0] = np.inf
    with pytest.raises(DataError, match="row 4 holds NaN or infinite"):
        semid.make("rqvae", **SMALL).fit(items, embeddings=bad)
    with pytest.raises(ParameterError, match="hidden"):
        semid.make("rqvae", **{**SMALL, "hidden": [32, 0]}).fit(items, embeddings=x)
    with pytest.raises(ParameterError, match="optimizer"):
        semid.make("rqvae", **{**SMALL, "optimizer": "lbfgs"}).fit(items, embeddings=x)


def test_encode_new_rejects_wrong_dimension(fitted):
    tok, _, x = fitted
    with pytest.raises(DataError, match="24 values"):
        tok.encode_new(embedding=np.zeros(7, np.float32))
    with pytest.raises(DataError, match="NaN"):
        tok.encode_new(embedding=np.full(24, np.nan, np.float32))


def test_torch_global_rng_is_untouched():
    items, x = clustered(n=60)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    semid.make("rqvae", **{**SMALL, "epochs": 1}).fit(items, embeddings=x)
    assert torch.equal(torch.rand(3), expected)


def test_kmeans_initialisation_puts_codebooks_on_the_residual_centroids():
    """Level 1's codebook holds k-means centroids of the encoder outputs; level 2 of what they leave."""
    from semid.quantize.kmeans import kmeans
    from semid.quantize.rqvae_model import RQVAE
    from semid.quantize.trainer import kmeans_initialise

    torch.manual_seed(0)
    _, x = clustered()
    x = torch.from_numpy(x)
    model = RQVAE(x.shape[1], [16], 4, n_levels=2, codebook_size=6)
    with torch.no_grad():
        z = model.encode(x).numpy()
    kmeans_initialise(model, x, n_iter=10, seed=3)
    first, assignment = kmeans(z, 6, n_iter=10, seed=3)
    np.testing.assert_allclose(model.codebooks[0].detach().numpy(), first, rtol=1e-5, atol=1e-6)
    second, _ = kmeans(z - first[assignment], 6, n_iter=10, seed=4)
    np.testing.assert_allclose(model.codebooks[1].detach().numpy(), second, rtol=1e-5, atol=1e-6)
    # Every code is used after the initialisation (k-means leaves no empty cluster on this data).
    codes, _ = model.encode_codes(x)
    assert all(len(np.unique(codes[:, level].numpy())) == 6 for level in range(2))


def test_dead_codes_move_onto_residuals_and_lose_their_optimizer_moments():
    from semid.quantize.rqvae_model import RQVAE
    from semid.quantize.trainer import _restart_dead_codes

    torch.manual_seed(0)
    _, x = clustered()
    x = torch.from_numpy(x)
    model = RQVAE(x.shape[1], [16], 4, n_levels=2, codebook_size=5)
    with torch.no_grad():
        model.codebooks.data[:, 3:] = 1e3  # codes 3 and 4 of each level are far away: never chosen
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.codebooks.grad = torch.ones_like(model.codebooks)
    optimizer.step()  # gives the codebook Adam moments to reset
    usage = torch.zeros(2, 5)
    usage[:, :3] = 1
    before = model.codebooks.detach().clone()
    moved = _restart_dead_codes(model, x, usage, optimizer, torch.Generator().manual_seed(0))
    assert moved == 4
    assert torch.equal(model.codebooks[:, :3], before[:, :3])  # live codes untouched
    assert model.codebooks[:, 3:].abs().max() < 100  # dead codes now sit on real residuals
    with torch.no_grad():
        z = model.encode(x)
    assert any(torch.isclose(z, model.codebooks[0, 3]).all(dim=1))  # level 1: exactly an encoder output
    state = optimizer.state[model.codebooks]
    assert state["exp_avg"][:, 3:].abs().max() == 0 and state["exp_avg"][:, :3].abs().min() > 0
