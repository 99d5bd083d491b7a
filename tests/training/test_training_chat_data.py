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


def test_packing_fills_fixed_rows_and_keeps_every_example(smol_tokenizer):
    from tandem.training.packing import pack_rows

    rows = tokenize_rows(smol_tokenizer, chat_rows(30), max_seq_len=128).rows
    packed = pack_rows(rows, seq_len=128, pad_id=smol_tokenizer.pad_token_id)
    assert len(packed) < len(rows)
    assert all(len(p["input_ids"]) == len(p["labels"]) == len(p["position_ids"]) == 128 for p in packed)
    starts = sum(p["position_ids"].count(0) for p in packed)
    fillers = sum(1 for p in packed if p["input_ids"][-1] == smol_tokenizer.pad_token_id)
    assert starts == len(rows) + fillers
    trained = sum(t != IGNORE_INDEX for p in packed for t in p["labels"])
    assert trained == sum(t != IGNORE_INDEX for r in rows for t in r["labels"][1:])
