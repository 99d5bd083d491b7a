"""Loss masking on chat rows: labels cover assistant turns (and their end marker) only."""

from __future__ import annotations

from training_samples import chat_rows

from tandem.training.chat_data import IGNORE_INDEX, tokenize_chat, tokenize_rows


def _labelled_text(tokenizer, item) -> str:
    return tokenizer.decode([t for t in item["labels"] if t != IGNORE_INDEX])


def test_labels_cover_exactly_the_assistant_turns(smol_tokenizer):
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is two plus two?"},
                {"role": "assistant", "content": "Four."},
                {"role": "user", "content": "And three plus three?"},
                {"role": "assistant", "content": "Six."}]
    item = tokenize_chat(smol_tokenizer, messages, max_seq_len=512)
    assert len(item["input_ids"]) == len(item["labels"])
    labelled = _labelled_text(smol_tokenizer, item)
    assert "Four." in labelled and "Six." in labelled
    assert labelled.count("<|im_end|>") == 2  # the model learns to end its turns
    for prompt_text in ("Be brief", "two plus two", "three plus three", "user", "system"):
        assert prompt_text not in labelled
    # labelled positions are the very tokens of the input
    assert all(l == i for l, i in zip(item["labels"], item["input_ids"]) if l != IGNORE_INDEX)


def test_truncation_and_bad_rows_are_counted_not_raised(smol_tokenizer):
    long_prompt = {"messages": [{"role": "user", "content": "word " * 400},
                                {"role": "assistant", "content": "ok"}]}
    no_answer = {"messages": [{"role": "user", "content": "hello?"}]}
    malformed = {"messages": [{"role": "user"}]}
    result = tokenize_rows(smol_tokenizer, chat_rows(3) + [long_prompt, no_answer, malformed, {}],
                           max_seq_len=64)
    assert len(result.rows) == 3
    assert result.dropped == {"assistant turn truncated away": 1, "no assistant turn": 1,
                              "malformed message": 1, "no messages": 1}
    assert all(len(r["input_ids"]) <= 64 for r in result.rows)
    assert 0 < result.trained_tokens < result.tokens
