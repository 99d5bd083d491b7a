"""Every scorer on real benchmark items: gold answers pass, wrong and malformed replies fail."""

import json

import pytest

from tandem.eval.datasets import load_items
from tandem.eval.scoring import Reply, score


def reply_of(message: dict) -> Reply:
    return Reply(text=message["content"] or "", tool_calls=message["tool_calls"] or [])


@pytest.mark.parametrize("suite", ["humaneval", "mbpp"])
def test_code_gold_solutions_pass_and_wrong_or_malformed_code_fails(suite, gold_reply_for):
    for item in load_items(suite, limit=4):
        assert score(item, reply_of(gold_reply_for(item))).value == 1.0, item.id
    item = load_items(suite, limit=1)[0]
    wrong = (
        "```python\n"
        + gold_reply_for(item)["content"].split("```python\n")[1].replace("return", "return None #")
        + "\n```"
    )
    assert score(item, Reply(text=wrong)).value == 0.0
    assert score(item, Reply(text="I'm sorry, I can't write that function.")).value == 0.0
    assert score(item, Reply(text="```python\ndef broken(:\n```")).value == 0.0


def test_humaneval_accepts_a_body_only_completion():
    item = next(it for it in load_items("humaneval") if it.id == "HumanEval/2")  # truncate_number
    assert score(item, Reply(text="    return number % 1.0\n")).value == 1.0
    assert score(item, Reply(text="```python\nreturn number % 1.0\n```")).value == 1.0


def test_gsm8k_numbers(gold_reply_for):
    items = load_items("gsm8k", limit=30)
    assert all(score(it, reply_of(gold_reply_for(it))).value == 1.0 for it in items)
    item = next(it for it in load_items("gsm8k") if it.gold.isdigit() and int(it.gold) > 1000)
    big = int(item.gold)
    assert score(item, Reply(text=f"So the total is ${big:,}.00 dollars.")).value == 1.0
    assert score(item, Reply(text=f"#### {big}")).value == 1.0
    assert score(item, Reply(text=f"The answer is {big + 1}.")).value == 0.0
    assert score(item, Reply(text="I do not know.")).value == 0.0
    # "The answer is" wins over numbers that come after it in the explanation.
    assert score(item, Reply(text=f"The answer is {big}. (Check: 2 + 2 = 4)")).value == 1.0


def test_math_boxed_answers_are_compared_as_math(gold_reply_for):
    items = load_items("math500", limit=25)
    assert sum(score(it, reply_of(gold_reply_for(it))).value for it in items) == len(items)
    frac = next(it for it in load_items("math500") if it.gold == "\\frac{14}{3}")
    for equivalent in ("\\boxed{\\dfrac{14}{3}}", "\\boxed{14/3}", "The answer is $\\frac{14}{3}$"):
        assert score(frac, Reply(text=equivalent)).value == 1.0, equivalent
    assert score(frac, Reply(text="\\boxed{\\frac{3}{14}}")).value == 0.0
    assert score(frac, Reply(text="\\boxed{")).value == 0.0
    assert score(frac, Reply(text="It is about 4.67 I think")).value == 0.0


@pytest.mark.parametrize("suite", ["arc_easy", "arc_challenge", "mmlu"])
def test_multiple_choice_extraction(suite):
    for item in load_items(suite, limit=20):
        options = item.meta["options"]
        gold_text = options["ABCDE".index(item.gold)]
        wrong = next(letter for letter in "ABCD" if letter != item.gold)
        assert score(item, Reply(text=f"Answer: {item.gold}")).value == 1.0
        assert score(item, Reply(text=f"The correct answer is ({item.gold}) {gold_text}")).value == 1.0
        assert score(item, Reply(text=f"**{item.gold}**")).value == 1.0
        assert score(item, Reply(text=f"Answer: {wrong}")).value == 0.0
        assert score(item, Reply(text="I am not sure about this one.")).value == 0.0
        assert score(item, Reply(text="Answer: Z")).value == 0.0


def test_multiple_choice_echo_of_the_options_is_no_answer():
    """Replies that only restate the options choose nothing, whatever letter comes first."""
    from tandem.eval.choice_answers import extract_choice

    options = ["water", "ice", "steam", "fog"]
    assert extract_choice("A. water\nB. ice\nC. steam\nD. fog", options) is None
    assert extract_choice("(A) water, (B) ice, (C) steam, (D) fog. I think it is steam", options) is None
    assert extract_choice("A. water\nB. ice\nC. steam\nD. fog\nAnswer: C", options) == "C"
    assert extract_choice("C. steam", options) == "C"
    assert extract_choice("The answer is (B) ice", options) == "B"
    assert extract_choice("Steam, since it is a gas.", options) == "C"


def test_bfcl_gold_calls_pass_in_every_category(gold_reply_for):
    items = load_items("bfcl")
    by_category = {}
    for it in items:
        by_category.setdefault(it.meta["category"], []).append(it)
    for category, cat_items in by_category.items():
        passed = [score(it, reply_of(gold_reply_for(it))).value for it in cat_items[:15]]
        assert sum(passed) >= 0.8 * len(passed), category


def test_bfcl_wrong_missing_and_malformed_calls_fail(gold_reply_for):
    item = next(it for it in load_items("bfcl") if it.id == "simple_python_0")  # triangle area 10 x 5
    tool = "calculate_triangle_area"
    good = json.dumps({"name": tool, "arguments": {"base": 10, "height": 5}})
    assert score(item, Reply(text=f"<tool_call>{good}</tool_call>")).value == 1.0
    assert score(item, Reply(text=f"{tool}(base=10, height=5)")).value == 1.0
    wrong = [
        {"id": "c", "type": "function", "function": {"name": tool, "arguments": '{"base": 10, "height": 6}'}}
    ]
    assert score(item, Reply(tool_calls=wrong)).value == 0.0
    other = [
        {
            "id": "c",
            "type": "function",
            "function": {"name": "area", "arguments": '{"base": 10, "height": 5}'},
        }
    ]
    assert score(item, Reply(tool_calls=other)).value == 0.0
    assert (
        score(item, Reply(text='{"name": "calculate_triangle_area", "arguments": {"base": 10,')).value == 0.0
    )
    assert score(item, Reply(text="The area is 25.")).value == 0.0
    irrelevant = next(it for it in load_items("bfcl") if it.meta["category"] == "irrelevance")
    assert score(irrelevant, Reply(text="I cannot do that with these tools.")).value == 1.0
    called = [
        {
            "id": "c",
            "type": "function",
            "function": {"name": irrelevant.tools[0]["function"]["name"], "arguments": "{}"},
        }
    ]
    assert score(irrelevant, Reply(tool_calls=called)).value == 0.0


def test_bfcl_irrelevance_text_that_only_mentions_a_function_is_not_a_call():
    """A code answer defines functions and builds dicts with a "name"; none of that calls a tool.
    Found in the code modifier's answers (run 3), which the old extractor scored as calls."""
    item = next(it for it in load_items("bfcl") if it.meta["category"] == "irrelevance")
    tool = item.tools[0]["function"]["name"]
    not_calls = [
        f"```python\ndef {tool}():\n    return 42\n```",
        f"```python\ndef {tool}(city):\n    return city\n```",
        f"```bash\n#!/usr/bin/env bash\n{tool}() {{\n  echo hi\n}}\n```",
        f"function {tool}() {{ return 1; }}",
        '{"airports": [{"name": "New York City", "address": "NY"}]}',
        f'[{{"name": "{tool}", "description": "What the tool does."}}]',
        f'{{"name": "{tool}", "parameters": {{"type": "object", "properties": {{"x": {{"type": "string"}}}}}}}}',
    ]
    for text in not_calls:
        assert score(item, Reply(text=text)).value == 1.0, text
    calls = [
        f"{tool}()",
        f"[{tool}()]",
        f'{{"name": "{tool}"}}',
        '{"name": "some_other_function", "arguments": {}}',
        f'<tool_call>{{"name": "{tool}", "arguments": {{}}}}</tool_call>',
        f"Here you go:\n{tool}()\nthen def other(): pass",
    ]
    for text in calls:
        assert score(item, Reply(text=text)).value == 0.0, text
