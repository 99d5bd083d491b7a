"""Small files in each native instruction-data format, written the way their publishers ship them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

LONG_ANSWER = (
    "Regular exercise strengthens the heart, improves mood and helps people sleep better at night. "
    "Even a short daily walk makes a measurable difference over a few months."
)


def write_alpaca_json(path: Path) -> Path:
    rows = [
        {"instruction": "Give three tips for staying healthy.", "input": "", "output": LONG_ANSWER},
        {
            "instruction": "Translate the sentence into plain English.",
            "input": "Veni, vidi, vici.",
            "output": "I came, I saw, I conquered.",
        },
    ]
    path.write_text(json.dumps(rows, indent=2))
    return path


def write_codealpaca_json(path: Path) -> Path:
    rows = [
        {
            "instruction": "Write a Python function that reverses a string.",
            "input": "",
            "output": "```python\ndef reverse(s: str) -> str:\n    return s[::-1]\n```",
        }
    ]
    path.write_text(json.dumps(rows))
    return path


def write_sharegpt_truncated(path: Path) -> Path:
    """ShareGPT's published file is cut off mid-record: the complete records before the cut must survive."""
    rows = [
        {
            "id": "a1",
            "conversations": [
                {"from": "human", "value": "How do I list the files in a directory from the bash shell?"},
                {
                    "from": "gpt",
                    "value": "Run `ls -la` in the terminal to list every file, hidden ones included.",
                },
                {"from": "human", "value": "And only the directories?"},
                {
                    "from": "gpt",
                    "value": "Use `ls -d */` or `find . -maxdepth 1 -type d` on the command line.",
                },
            ],
        },
        {
            "id": "a2",
            "conversations": [
                {
                    "from": "human",
                    "value": "Bonjour, pouvez-vous m'expliquer comment fonctionne la photosynthese ?",
                },
                {
                    "from": "gpt",
                    "value": "Bien sur. Les plantes utilisent la lumiere du soleil pour transformer le gaz "
                    "carbonique et l'eau en sucres et en oxygene.",
                },
            ],
        },
    ]
    text = json.dumps(rows)
    path.write_text(text[:-1] + ', {"id": "a3", "conversations": [{"from": "human", "val')
    return path


def write_wizardlm_evol_jsonl(path: Path) -> Path:
    row = {
        "idx": "w1",
        "conversations": [
            {"from": "human", "value": "Explain why the sky looks blue during the day and red at sunset."},
            {
                "from": "gpt",
                "value": "Air molecules scatter short blue wavelengths more strongly than red ones; at "
                "sunset light crosses more air, so the blue is scattered away and red remains.",
            },
        ],
    }
    path.write_text(json.dumps(row) + "\n")
    return path


def write_openorca_parquet(path: Path) -> Path:
    rows = [
        {
            "id": "niv.1",
            "system_prompt": "You are an AI assistant. Think step by step.",
            "question": "A farmer has 12 cows and buys 7 more. How many cows does the farmer have now?",
            "response": "The farmer starts with 12 cows and buys 7 more, so 12 + 7 = 19 cows.",
        },
        {
            "id": "niv.2",
            "system_prompt": "",
            "question": "Name the largest planet in the solar system and one fact about it.",
            "response": "Jupiter is the largest planet; its Great Red Spot is a storm larger than Earth.",
        },
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_dolly_jsonl(path: Path) -> Path:
    rows = [
        {
            "instruction": "When did Virgin Australia start operating?",
            "context": "Virgin Australia commenced services on 31 August 2000 as Virgin Blue, "
            "with two aircraft on a single route.",
            "response": "Virgin Australia started operating on 31 August 2000 as Virgin Blue.",
            "category": "closed_qa",
        },
        "this line is not an object",
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json at all\n")
    return path


GROCERIES = "What are some good ways to save money on groceries?"


def write_hh_jsonl_gz(path: Path) -> Path:
    rows = [
        {
            "chosen": f"\n\nHuman: {GROCERIES}\n\nAssistant: Plan meals for the week, buy staples in bulk "
            "and compare unit prices before you choose a brand.",
            "rejected": f"\n\nHuman: {GROCERIES}\n\nAssistant: Steal them.",
        },
        {
            "chosen": "\n\nHuman: Tell me a joke about cats.\n\nAssistant: Why did the cat sit on the "
            "computer? To keep an eye on the mouse!\n\nHuman: Another one please.",
            "rejected": "\n\nHuman: Tell me a joke about cats.\n\nAssistant: No.",
        },
    ]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def write_metamath_parquet(path: Path) -> Path:
    rows = [
        {
            "query": "What is the value of $x$ if $2x + 3 = 11$?",
            "response": "Subtract 3 from both sides: $2x = 8$, so $x = 4$. The answer is: 4",
            "type": "MATH_AnsAug",
            "original_question": "Solve 2x + 3 = 11.",
        }
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_wizardlm_json(path: Path) -> Path:
    rows = [
        {
            "instruction": "Describe a sunrise over the ocean in two sentences.",
            "output": "The sun rose slowly over the calm ocean, painting the water gold. Gulls circled "
            "above the waves as the morning light spread across the beach.",
        }
    ]
    path.write_text(json.dumps(rows))
    return path


def write_messages_jsonl(path: Path) -> Path:
    rows = [
        {
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": "Schedule a cron job that runs a backup script every night at 2am.",
                        }
                    ],
                },
                {
                    "role": "assistant",
                    "content": "Add `0 2 * * * /usr/local/bin/backup.sh` to your crontab with `crontab -e`.",
                },
            ]
        },
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


WRITERS = {
    "alpaca.json": write_alpaca_json,
    "code_alpaca.json": write_codealpaca_json,
    "sharegpt.json": write_sharegpt_truncated,
    "wizardlm_evol.jsonl": write_wizardlm_evol_jsonl,
    "openorca.parquet": write_openorca_parquet,
    "dolly.jsonl": write_dolly_jsonl,
    "hh.jsonl.gz": write_hh_jsonl_gz,
    "metamath.parquet": write_metamath_parquet,
    "wizardlm.json": write_wizardlm_json,
    "chat.jsonl": write_messages_jsonl,
}


def write_all(folder: Path) -> list[Path]:
    return [writer(folder / name) for name, writer in WRITERS.items()]
