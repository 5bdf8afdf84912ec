"""Benchmark results record commands without any path of the machine that ran them."""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from _env import REPO, SHARED, portable_command  # noqa: E402


def test_paths_become_clone_relative_shared_or_work():
    command = portable_command([
        str(REPO / "benchmarks" / "bench_tiger_curve.py"), "--data", "/srv/cache/beauty",
        "--index", "/srv/cache/idx/rqkmeans", "--set", "embeddings=/srv/cache/emb.npz",
        f"--ml100k={SHARED}/data/movielens_100k", "--max-targets", "1000000",
    ])
    assert command == (".venv/bin/python benchmarks/bench_tiger_curve.py --data $WORK/beauty "
                       "--index $WORK/idx/rqkmeans --set embeddings=$WORK/emb.npz "
                       "--ml100k=../shared/data/movielens_100k --max-targets 1000000")
    assert "/srv" not in command


def test_relative_arguments_are_kept_and_quoted():
    assert portable_command(["x.py", "--title", "night cream", "data/beauty"]) == (
        ".venv/bin/python x.py --title 'night cream' data/beauty")


def test_every_exported_helper_exists():
    import _env

    assert all(callable(getattr(_env, name)) for name in _env.__all__)
    assert _env.peak_rss_mb() > 0 and "- command: `.venv/bin/python" in _env.stamp()
