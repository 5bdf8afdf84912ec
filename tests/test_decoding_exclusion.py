"""ranked_without: one pass with the usual beams, a wider second pass only for crowded users."""

from __future__ import annotations

from semid.gen.decoding.exclusion import ranked_without

CATALOGUE = [f"i{n}" for n in range(100)]


def make_rank(calls):
    def rank(rows, width):
        calls.append((list(rows), width))
        return [CATALOGUE[row : row + width] for row in rows]  # row r ranks i{r}, i{r+1}, ...

    return rank


def test_without_exclusions_one_pass_of_k():
    calls = []
    assert ranked_without(make_rank(calls), [set(), set()], 3, 20, 100) == [["i0", "i1", "i2"], ["i1", "i2", "i3"]]
    assert calls == [([0, 1], 3)]


def test_only_crowded_rows_are_decoded_again_and_wider():
    calls = []
    heavy = {f"i{n}" for n in range(25)}  # covers row 0's 20 beams and more
    got = ranked_without(make_rank(calls), [{"i2"}, heavy, set()], 3, 20, 100)
    assert got == [["i0", "i1", "i3"], ["i25", "i26", "i27"], ["i2", "i3", "i4"]]
    assert calls == [([0, 1, 2], 20), ([1], 3 + 25)]  # first pass returns all 20 beams


def test_the_second_width_is_capped_by_the_catalogue_and_short_lists_stay_short():
    calls = []
    everything = set(CATALOGUE[:99])
    got = ranked_without(make_rank(calls), [everything], 5, 20, 100)
    assert got == [["i99"]] and calls[-1] == ([0], 100)
