"""Prompt / answer ids: the answer is exactly what the model must emit after the prompt's ids."""

import pytest

from _lcrec_tiny import lcrec_dataset, tiny_model_dir  # noqa: F401  (fixtures)

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):  # noqa: F811
    return transformers.AutoTokenizer.from_pretrained(tiny_model_dir)


def test_a_prompt_ending_in_a_space_keeps_the_answers_first_letters(tokenizer):
    from semid.gen.llm.pairs import encode_pair

    prompt, answer = "Choose one of the candidates. Answer: ", "Cream Soft Skin"
    head = tokenizer(prompt)["input_ids"]
    joint = tokenizer(prompt + answer)["input_ids"]
    # The defect this guards against: byte-level BPE merges the space into the next word, so
    # cutting the joint ids at the prompt's length loses the answer's start.
    assert joint[: len(head)] != head
    assert tokenizer.decode(joint[len(head):]) != answer
    got_head, tail = encode_pair(tokenizer, prompt, answer)
    assert got_head == head and tail[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(tail[:-1]) == answer
    assert tokenizer.decode(head + tail[:-1]) == prompt + answer


def test_a_clean_boundary_cuts_the_joint_tokenization(tokenizer):
    from semid.gen.llm.pairs import encode_pair

    prompt, answer = "Will the user like it? Answer:", " Yes"
    head, tail = encode_pair(tokenizer, prompt, answer, eos=False)
    assert head + tail == tokenizer(prompt + answer)["input_ids"]


def test_pad_pairs_labels_answers_only_and_keeps_them_when_cut():
    from semid.gen.llm.pairs import pad_pairs

    ids, mask, labels = pad_pairs([([1, 2, 3], [4, 5]), ([6], [7])], pad_id=0)
    assert ids.tolist() == [[1, 2, 3, 4, 5], [6, 7, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert labels.tolist() == [[-100, -100, -100, 4, 5], [-100, 7, -100, -100, -100]]
    ids, _, labels = pad_pairs([([1, 2, 3], [4, 5])], pad_id=0, max_length=3)
    assert ids.tolist() == [[3, 4, 5]] and labels.tolist() == [[-100, 4, 5]]
