"""Shared parts of the LLM methods: backends, item rendering, candidates, parsers, candidate metrics."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import semid
from _lcrec_tiny import build_tiny_model, dataset_texts
from semid.errors import DataError, MissingFieldError, ParameterError
from semid.evaluation import MostPopular, leave_one_out
from semid.evaluation.candidates import auc, candidate_ndcg, hit_rate_at_1
from semid.gen.llm.candidates import retrieved_candidates, sample_candidates
from semid.gen.llm.http_backend import OpenAICompatibleBackend, ServerError
from semid.gen.llm.parsing import lcs_length, parse
from semid.gen.llm.rendering import ItemRenderer

DATA = "builtin:all_beauty_2023"


@pytest.fixture(scope="module")
def data():
    return semid.load_dataset(DATA)


@pytest.fixture(scope="module")
def index(data):
    return semid.make("random", seed=1).fit(data.items)


# -- parsers ------------------------------------------------------------------------------
TITLES = {"a": "Toy Story (1995)", "b": "Heat (1995)", "c": "Jumanji (1995)", "d": "GoldenEye (1995)"}


def test_lcs_parser_follows_llmrank():
    answer = "Here is my ranking:\n1. Heat (1995)\n2. Jumanjii (1995)\n3. heat (1995)\n4. Casablanca\n5. Toy Story"
    result = parse("lcs", answer, candidates=list(TITLES), titles=TITLES)
    # "Jumanjii" is an LCS match (> 0.9 x len); "Toy Story" is contained in its title; Heat counts once.
    assert result.ranked == ["b", "c", "a"] and result.parser == "lcs" and result.valid
    assert "Casablanca" in result.invalid and "Here is my ranking:" in result.invalid
    assert lcs_length("ABCBDAB", "BDCABA") == 4  # the textbook example
    assert parse("lcs", "nothing useful", candidates=list(TITLES), titles=TITLES).valid is False


def test_substring_parser_is_valid_only_with_exactly_one_title():
    assert parse("substring", "I pick Heat (1995).", candidates=list(TITLES), titles=TITLES).ranked == ["b"]
    two = parse("substring", "Heat (1995) or Jumanji (1995)", candidates=list(TITLES), titles=TITLES)
    assert two.ranked == [] and not two.valid


def test_nearest_title_parser_uses_the_distance_threshold():
    result = parse("nearest_title", "1. Toy Stori (1995)\n2. The Matrix", titles=TITLES, threshold=0.2)
    assert result.ranked == ["a"] and result.invalid == ["The Matrix"]


def test_sid_parser_finds_complete_codes_only(index, data):
    first, second = data.items.item_ids[:2]
    text = f"maybe {index.render(first)} then <a_0> junk {index.render(second)}"
    result = parse("sid", text, index=index)
    assert result.ranked == [first, second] and result.parser == "sid"
    only = parse("sid", text, index=index, candidates=[second])
    assert only.ranked == [second] and index.render(first) in only.invalid
    with pytest.raises(ParameterError, match="unknown parser 'regex'"):
        parse("regex", text)


# -- rendering --------------------------------------------------------------------------
def test_item_rendering_modes_and_their_checks(data, index):
    item = data.items.item_ids[0]
    title = data.items[item]["title"]
    assert ItemRenderer("title", data)(item) == title
    assert ItemRenderer("sid", data, index)(item) == index.render(item)
    assert ItemRenderer("title+sid", data, index)(item) == f"{title} {index.render(item)}"
    untitled = semid.Dataset("x", semid.ItemTable([{"item_id": "p"}, {"item_id": "q", "title": "Q"}]),
                             semid.Sequences(["u"], [["p", "q"]]))
    with pytest.raises(MissingFieldError, match="1 of 2 items of 'x' have none.*on_missing=item_id"):
        ItemRenderer("title", untitled)
    shown = ItemRenderer("title", untitled, on_missing="item_id")
    assert shown("p") == "p" and shown("q") == "Q" and shown.untitled == 1
    with pytest.raises(DataError, match="does not hold 2 of the 2 items"):
        ItemRenderer("sid", untitled, index)
    with pytest.raises(ParameterError, match="needs an index"):
        ItemRenderer("sid", data)


# -- candidates -------------------------------------------------------------------------
def test_random_candidates_are_seeded_per_user_and_avoid_the_history(data):
    cases = leave_one_out(data).test[:30]
    lists = sample_candidates(cases, data.items.item_ids, n=20, seed=4)
    again = sample_candidates(list(reversed(cases)), data.items.item_ids, n=20, seed=4)
    assert [c.candidates for c in lists] == [c.candidates for c in reversed(again)]  # per user, not per call
    for case, cands in zip(cases, lists):
        assert len(set(cands.candidates)) == 20 and cands.candidates[cands.target_position] == case.target
        assert not set(cands.candidates) & set(case.history)
    assert len({c.target_position for c in lists}) > 3  # shuffled
    fixed = sample_candidates(cases, data.items.item_ids, n=20, seed=4, position=5)
    assert all(c.target_position == 5 and c.candidates[5] == c.target for c in fixed)
    with pytest.raises(ParameterError, match="only 356 items"):
        sample_candidates(cases, data.items.item_ids, n=400)


def test_retrieved_candidates_do_not_force_the_target_unless_asked(data):
    cases = leave_one_out(data).test[:25]
    plain = retrieved_candidates(cases, MostPopular(data), n=10, name="popularity")
    assert all(len(c.candidates) == 10 and not set(c.candidates) & set(c.history) for c in plain)
    assert any(c.target_position is None for c in plain) and plain[0].source == "retrieved:popularity"
    forced = retrieved_candidates(cases, MostPopular(data), n=10, force_target=True)
    assert all(c.candidates[c.target_position] == c.target for c in forced)


# -- metrics ----------------------------------------------------------------------------
def test_both_hr_at_1_definitions_by_hand():
    m = hit_rate_at_1(first=["a", "b", None, "c"], valid=[True, True, False, True], targets=["a", "x", "y", "c"])
    assert m == {"hr@1_valid": 2 / 3, "hr@1_all": 2 / 4, "valid_ratio": 3 / 4}


def test_candidate_ndcg_ties_unparsed_candidates_at_the_bottom():
    shown = ["a", "b", "c", "d"]
    m = candidate_ndcg([["b", "a"], ["b"], [], ["a"]], [shown] * 4, ["a", "d", "c", "z"], ks=(1, 4))
    # user 1: rank 2; user 2: target tied over ranks 2-4; user 3: tied over 1-4; user 4: not a candidate.
    tie_2_4 = (1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)) / 3
    tie_1_4 = (1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)) / 4
    assert m["ndcg@4"] == pytest.approx((1 / math.log2(3) + tie_2_4 + tie_1_4 + 0) / 4)
    assert m["recall@1"] == pytest.approx((0 + 0 + 1 / 4 + 0) / 4)


def test_auc_by_hand():
    assert auc([0.9, 0.4, 0.4, 0.1], [1, 1, 0, 0]) == pytest.approx((2 + 1 + 0.5) / 4)
    assert math.isnan(auc([0.3, 0.2], [1, 1]))


# -- the HTTP backend against a loopback server -------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    failures_left = 0
    calls = 0

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        type(self).calls += 1
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"busy")
            return
        if self.path.endswith("/chat/completions"):
            text = body["messages"][0]["content"].upper()
            answer = {"choices": [{"message": {"role": "assistant", "content": text}}]}
        elif self.path.endswith("/completions"):
            words = body["prompt"].split(" ")
            offsets, position = [], 0
            for w in words:
                offsets.append(position)
                position += len(w) + 1
            answer = {"choices": [{"logprobs": {"text_offset": offsets,
                                                "token_logprobs": [None] + [-1.0] * (len(words) - 1)}}]}
        else:
            self.send_response(404)
            self.end_headers()
            return
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture()
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.failures_left, _Handler.calls = 0, 0
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_http_backend_generates_scores_and_caches(server, tmp_path):
    backend = OpenAICompatibleBackend(server, "m", cache_dir=tmp_path / "cache", concurrency=3)
    assert backend.generate(["hi", "yo", "hey"]) == ["HI", "YO", "HEY"]
    assert backend.score(["one two "], ["three four"]) == [-2.0]  # the two words after the prompt
    calls = _Handler.calls
    again = OpenAICompatibleBackend(server, "m", cache_dir=tmp_path / "cache")
    assert again.generate(["hi", "yo", "hey"]) == ["HI", "YO", "HEY"] and _Handler.calls == calls  # all cached
    assert again.requests_sent == 0


def test_http_backend_retries_then_gives_a_clear_error_and_keeps_the_cache(server, tmp_path):
    _Handler.failures_left = 2
    backend = OpenAICompatibleBackend(server, "m", retries=2, backoff=0.01, cache_dir=tmp_path / "c")
    assert backend.generate(["ok"]) == ["OK"] and _Handler.calls == 3
    dead = OpenAICompatibleBackend("http://127.0.0.1:9/v1", "m", retries=1, backoff=0.01, timeout=2,
                                   cache_dir=tmp_path / "c")
    with pytest.raises(ServerError, match="did not answer after 2 attempts.*kept in the cache"):
        dead.generate(["new prompt"])
    assert any((tmp_path / "c").rglob("*.json"))  # the earlier answer is still there
    with pytest.raises(ParameterError, match="http"):
        OpenAICompatibleBackend("127.0.0.1:8000", "m")


# -- the local backend --------------------------------------------------------------------
def test_local_backend_scores_what_the_model_computes(tmp_path, data):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from semid.gen.llm.backend import LocalCausalLM

    folder = build_tiny_model(tmp_path / "tiny", dataset_texts(data))
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    backend = LocalCausalLM(model.eval(), tokenizer, chat=False, batch_size=2)
    prompts, continuations = ["I bought soap", "Then a brush and"], [" and a comb", " shampoo"]
    scores = backend.score(prompts, continuations)
    for prompt, continuation, score in zip(prompts, continuations, scores):
        head = tokenizer(prompt)["input_ids"]
        tail = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([head + tail])).logits[0], -1)
        expected = sum(float(logp[len(head) - 1 + j, t]) for j, t in enumerate(tail))
        assert score == pytest.approx(expected, abs=1e-4)
    texts = backend.generate(prompts, max_new_tokens=3)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert backend.generate(prompts, max_new_tokens=3) == texts  # greedy: deterministic


def test_continuations_of_one_prompt_score_as_separate_rows_do(tmp_path, data):
    """The shared-prompt path (one prompt pass, cache reused) equals scoring each row on its own."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from semid.gen.llm.backend import LocalCausalLM

    folder = build_tiny_model(tmp_path / "tiny", dataset_texts(data))
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    backend = LocalCausalLM(model.eval(), tokenizer, chat=False, batch_size=2)
    prompt = "I bought soap, then a brush, and next"
    options = [" a comb", " shampoo and a long towel", " soap", "", " a"]
    shared = backend.score([prompt] * len(options), options)
    rows = backend._score_rows([prompt] * len(options), options)
    assert shared == pytest.approx(rows, abs=1e-4)
    assert shared[3] == 0.0
    mixed = backend.score([prompt, "Other text", prompt], [" a comb", " a comb", " soap"])
    assert mixed == pytest.approx([rows[0], backend._score_rows(["Other text"], [" a comb"])[0], rows[2]], abs=1e-4)


def test_popularity_on_candidates_ranks_by_training_counts():
    from semid.evaluation.candidates import popularity_on_candidates

    train = [["a", "b", "a2"], ["b", "c"], ["b"]]  # counts: b 3, a 1, a2 1, c 1, d 0
    candidates = [["d", "c", "b"], ["d", "c", "a"]]
    metrics = popularity_on_candidates(train, candidates, ["b", "a"], ks=(1, 2))
    # list 1: b first (hit at 1); list 2: c and a tie at count 1 and keep the list's order -> a second
    assert metrics["hr@1_all"] == 0.5 and metrics["valid_ratio"] == 1.0
    assert metrics["ndcg@1"] == 0.5
    assert metrics["ndcg@2"] == pytest.approx((1.0 + 1 / math.log2(3)) / 2, rel=1e-5)
