"""The MovieLens importer: the real ml-100k from ../shared (never copied into the repo),
and ml-1m on a tiny synthetic fixture written in the real format."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pytest

from semid.data import load_dataset, save_dataset
from semid.data.importers import import_dataset
from semid.errors import DataError
from _paths import SHARED_DATA

ML100K = SHARED_DATA / "movielens_100k"
needs_ml100k = pytest.mark.skipif(
    not ML100K.is_dir(), reason=f"MovieLens-100K not present at {ML100K} (it may not be copied into the repo)"
)

# ml-1m format: UserID::MovieID::Rating::Timestamp and MovieID::Title::Genres (Latin-1).
RATINGS_1M = """\
2::3::4::978300100
1::1193::5::978300760
1::661::3::978302109
1::914::3::978300760
2::1193::2::978300050
"""
MOVIES_1M = """\
3::Grumpier Old Men (1995)::Comedy|Romance
661::James and the Giant Peach (1996)::Animation|Children's|Musical
914::My Fair Lady (1964)::Musical|Romance
1193::One Flew Over the Cuckoo's Nest (1975)::Drama
2000::Caf\u00e9 Society::Drama
"""


def write_1m(root: Path, ratings: str = RATINGS_1M, movies: str = MOVIES_1M, *, gz: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(root / "ratings.dat.gz", "wt", encoding="latin-1") as handle:
            handle.write(ratings)
    else:
        (root / "ratings.dat").write_text(ratings, encoding="latin-1")
    (root / "movies.dat").write_text(movies, encoding="latin-1")
    return root


def test_ml1m_sequences_sorted_by_time_with_stable_ties(tmp_path):
    data = import_dataset("movielens", write_1m(tmp_path / "ml-1m"))
    assert data.name == "ml-1m" and data.sequences.user_ids == ["1", "2"]
    # user 1: 1193 and 914 share a timestamp -> file order (1193 first), then 661.
    assert data.sequences.items[0] == ["1193", "914", "661"]
    assert data.sequences.timestamps[0] == [978300760.0, 978300760.0, 978302109.0]
    assert data.sequences.ratings[0] == [5.0, 3.0, 3.0]
    assert data.sequences.items[1] == ["1193", "3"]


def test_ml1m_items_genres_year_and_latin1(tmp_path):
    data = import_dataset("movielens", write_1m(tmp_path / "ml-1m", gz=True))
    assert data.items["661"]["categories"] == ["Animation", "Children's", "Musical"]
    assert data.items["661"]["year"] == 1996 and data.items["661"]["title"] == "James and the Giant Peach (1996)"
    assert data.items["2000"] == {"item_id": "2000", "title": "Caf\u00e9 Society", "categories": ["Drama"]}
    assert data.items.item_ids == ["3", "661", "914", "1193", "2000"]  # never-rated movie kept


def test_ml1m_malformed_rating_line(tmp_path):
    src = write_1m(tmp_path / "bad", ratings="1::1193::5::978300760\n1::661::five::978302109\n")
    with pytest.raises(DataError, match=r"ratings.dat:2: fields 'rating'/'timestamp' must be numbers, got 'five'"):
        import_dataset("movielens", src)
    src = write_1m(tmp_path / "short", ratings="1::1193::5\n")
    with pytest.raises(DataError, match=r"ratings.dat:1: expected 4 fields separated by '::', got 3"):
        import_dataset("movielens", src)


def test_ml1m_duplicate_movie_and_unknown_movie(tmp_path, caplog):
    with pytest.raises(DataError, match=r"movies.dat:3: duplicate movie_id '3'"):
        import_dataset("movielens", write_1m(tmp_path / "dup", movies="1::A (1995)::Drama\n3::B (1995)::Drama\n3::C (1995)::Drama\n"))
    with caplog.at_level(logging.WARNING):
        data = import_dataset("movielens", write_1m(tmp_path / "unk", ratings="1::42::4::1\n1::3::4::2\n"))
    assert data.items["42"] == {"item_id": "42"}
    assert "1 item(s) in the interactions are missing from movies.dat" in caplog.text


def test_no_movielens_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no MovieLens ratings found"):
        import_dataset("movielens", tmp_path / "empty")


@needs_ml100k
def test_ml100k_counts_and_fields():
    data = import_dataset("movielens", ML100K)
    assert (len(data.sequences), len(data.items), data.sequences.n_interactions) == (943, 1682, 100_000)
    toy = data.items["1"]
    assert toy["title"] == "Toy Story (1995)" and toy["year"] == 1995
    assert toy["categories"] == ["Animation", "Children's", "Comedy"]
    assert toy["release_date"] == "01-Jan-1995" and "video_release_date" not in toy
    assert data.items["267"] == {"item_id": "267"}  # title and genre 'unknown' are placeholders
    ratings = [r for rs in data.sequences.ratings for r in rs]
    assert sorted(set(ratings)) == [1.0, 2.0, 3.0, 4.0, 5.0] and ratings.count(5.0) == 21_201
    for stamps in data.sequences.timestamps:
        assert stamps == sorted(stamps)


@needs_ml100k
def test_ml100k_round_trip_in_tmp(tmp_path):
    data = import_dataset("movielens", ML100K)
    loaded = load_dataset(save_dataset(data, tmp_path / "ml100k"))
    assert loaded.items.records == data.items.records
    assert loaded.sequences.items == data.sequences.items
    assert loaded.sequences.timestamps == data.sequences.timestamps
    assert loaded.sequences.ratings == data.sequences.ratings


def test_ml100k_bad_genre_flag(tmp_path):
    src = tmp_path / "ml-100k"
    src.mkdir()
    (src / "u.data").write_text("1\t1\t5\t881250949\n")
    (src / "u.genre").write_text("unknown|0\nAction|1\n\n")
    (src / "u.item").write_text("1|Toy Story (1995)|01-Jan-1995||http://x|0|2\n", encoding="latin-1")
    with pytest.raises(DataError, match=r"u.item:1: genre flag 1 \('Action'\) must be 0 or 1, got '2'"):
        import_dataset("movielens", src)
