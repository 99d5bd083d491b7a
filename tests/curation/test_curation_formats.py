import pytest

from tandem.training.curation.formats import FormatError, detect_format, get_format


def convert(record):
    fmt = detect_format(record)
    assert fmt is not None, record
    return fmt.name, fmt.convert(record)


def test_alpaca_input_is_appended_to_the_instruction():
    name, messages = convert({"instruction": "Summarize.", "input": "A long text.", "output": "Short."})
    assert name == "alpaca"
    assert messages == [
        {"role": "user", "content": "Summarize.\n\nA long text."},
        {"role": "assistant", "content": "Short."},
    ]


def test_openorca_keeps_a_non_empty_system_prompt_only():
    _, with_system = convert({"id": "x", "system_prompt": "Be brief.", "question": "Q?", "response": "A."})
    _, without = convert({"id": "y", "system_prompt": "", "question": "Q?", "response": "A."})
    assert with_system[0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in without] == ["user", "assistant"]


def test_dolly_metamath_and_sharegpt_layouts():
    name, messages = convert(
        {"instruction": "When?", "context": "In 2000.", "response": "2000.", "category": "closed_qa"}
    )
    assert name == "dolly" and messages[0]["content"] == "When?\n\nIn 2000."
    name, messages = convert({"query": "2+2?", "response": "4", "type": "GSM_Rephrased"})
    assert name == "metamath" and messages[1]["content"] == "4"
    name, messages = convert(
        {
            "conversations": [
                {"from": "system", "value": "S"},
                {"from": "human", "value": "H"},
                {"from": "gpt", "value": "G"},
            ]
        }
    )
    assert name == "sharegpt" and [m["role"] for m in messages] == ["system", "user", "assistant"]


def test_anthropic_hh_uses_the_chosen_transcript():
    name, messages = convert(
        {
            "chosen": "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Bye\n\nAssistant: Bye!",
            "rejected": "\n\nHuman: Hi there\n\nAssistant: Go away.",
        }
    )
    assert name == "anthropic_hh"
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Hi there"),
        ("assistant", "Hello!"),
        ("user", "Bye"),
        ("assistant", "Bye!"),
    ]


def test_messages_content_parts_are_joined_and_developer_becomes_system():
    _, messages = convert(
        {
            "messages": [
                {"role": "developer", "content": "Rules."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "a"},
                        {"type": "image_url"},
                        {"type": "text", "text": "b"},
                    ],
                },
            ]
        }
    )
    assert messages == [{"role": "system", "content": "Rules."}, {"role": "user", "content": "ab"}]


@pytest.mark.parametrize(
    "record",
    [
        {"conversations": [{"from": "alien", "value": "?"}]},
        {"conversations": "not a list"},
        {"instruction": 5, "output": "x"},
        {"chosen": "no transcript markers", "rejected": ""},
        {"messages": [{"role": "wizard", "content": "x"}]},
    ],
)
def test_malformed_records_raise_format_error(record):
    fmt = detect_format(record)
    with pytest.raises(FormatError):
        fmt.convert(record)


def test_aliases_and_unknown_names():
    assert get_format("CodeAlpaca").name == "alpaca"
    assert get_format("metamathqa").name == "metamath"
    assert detect_format({"text": "plain"}) is None
    with pytest.raises(FormatError, match="unknown format"):
        get_format("gopher")
