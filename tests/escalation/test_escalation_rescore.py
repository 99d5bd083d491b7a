"""`tandem escalation rescore`: stored answers scored again after a scorer fix, nothing else changed."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from tandem.eval.datasets import load_items
from tandem.training.escalation.labels import LabelRow, read_labels

ROOT = Path(__file__).resolve().parents[2]


def _row(item, response: str, score: float) -> LabelRow:
    return LabelRow(suite=item.suite, id=item.id, split="dev", messages=item.messages, tools=item.tools,
                    response=response, route="tandem-base", score=score, fails=score < 1.0,
                    token_logprobs=[-0.5, -1.0], completion_tokens=2, finish_reason="stop")


def test_an_echo_of_the_options_stops_counting_as_an_answer(tmp_path):
    item = next(it for it in load_items("arc_easy", split="dev") if it.gold == "A")
    options = item.meta["options"]
    echo = "\n".join(f"{'ABCDE'[i]}. {text}" for i, text in enumerate(options))
    right = f"A. {options[0]}"
    labels = tmp_path / "labels.jsonl.gz"
    # As the old scorer labelled them: the echo read as "A", scored right when A was the gold letter.
    labels.write_bytes(gzip.compress("".join(r.model_dump_json() + "\n" for r in
                                             [_row(item, echo, 1.0), _row(item, right, 1.0)]).encode()))
    out = tmp_path / "rescored.jsonl.gz"
    done = subprocess.run([sys.executable, "-m", "tandem.cli", "escalation", "rescore", "--labels", str(labels),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    echoed, answered = read_labels(out)
    assert echoed.fails and echoed.score == 0.0
    assert not answered.fails and answered.score == 1.0
    assert "fails 0 -> 1" in done.stdout
    # Everything but the score is kept: the answer, its route and its logprobs feed the models.
    assert (echoed.response, echoed.route, echoed.token_logprobs) == (echo, "tandem-base", [-0.5, -1.0])


def test_labels_of_an_item_the_harness_lacks_are_refused(tmp_path):
    item = load_items("arc_easy", split="dev", limit=1)[0]
    row = json.loads(_row(item, "A", 0.0).model_dump_json())
    row["id"] = "no-such-item"
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps(row) + "\n")
    done = subprocess.run([sys.executable, "-m", "tandem.cli", "escalation", "rescore", "--labels", str(labels),
                           "--out", str(tmp_path / "out.jsonl")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode != 0
    assert "no-such-item" in done.stderr
    assert not (tmp_path / "out.jsonl").exists()
