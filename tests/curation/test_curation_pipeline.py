import argparse
import json

import pytest
from curation_samples import LONG_ANSWER, write_all

from tandem.common.manifest import Manifest
from tandem.training.curation import cli


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    paths = write_all(folder)
    dups = folder / "dups.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": "give THREE tips for  staying healthy."},
                {"role": "assistant", "content": LONG_ANSWER.upper()},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Give three tips for staying healthy."},
                {"role": "assistant", "content": LONG_ANSWER.replace("months", "weeks")},
            ]
        },
    ]
    # An exact copy of the removed near duplicate: matched to the record that was kept.
    respaced = [{**m, "content": "  ".join(m["content"].split())} for m in rows[1]["messages"]]
    rows.append({"messages": respaced})
    dups.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return [str(p) for p in paths] + [str(dups)]


def test_curate_every_native_format(tmp_path, inputs):
    out = tmp_path / "out"
    assert run_cli(["data", "curate", *inputs, "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    records = read_jsonl(out / "curated.jsonl")
    stats = json.loads((out / "stats.json").read_text())
    by_source = {s: v["kept"] for s, v in stats["per_source"].items()}
    assert by_source == {
        "alpaca": 2,
        "code_alpaca": 1,
        "sharegpt": 1,
        "wizardlm_evol": 1,
        "openorca": 2,
        "dolly": 1,
        "hh": 1,
        "metamath": 1,
        "wizardlm": 1,
        "chat": 1,
        "dups": 0,
    }
    assert stats["records_read"] == 21 and stats["records_kept"] == 12
    assert stats["drop_reasons"] == {
        "bad_record:truncated_file": 1,
        "bad_record:not_an_object": 1,
        "bad_record:json_error": 1,
        "language": 1,
        "quality:broken_turns": 1,
        "quality:empty_turn": 1,
        "exact_duplicate": 1,
        "near_duplicate": 2,
    }
    assert stats["per_language_identified"]["fr"] == 1
    assert all(
        set(r) >= {"messages", "source", "id", "lang", "domain"} and r["lang"] == "en" for r in records
    )
    domain = {r["id"]: r["domain"] for r in records}
    assert domain["code_alpaca:0"] == "code" and domain["metamath:0"] == "reasoning"
    assert domain["openorca:0"] == "reasoning" and domain["chat:0"] == "automation"
    assert domain["sharegpt:0"] == "automation" and domain["wizardlm:0"] == "general"
    assert len({r["id"] for r in records}) == len(records)
    duplicates = read_jsonl(out / "duplicates.jsonl")
    assert [(d["id"], d["kind"], d["duplicate_of"]) for d in duplicates] == [
        ("dups:0", "exact", "alpaca:0"),
        ("dups:1", "near", "alpaca:0"),
        ("dups:2", "near", "alpaca:0"),
    ]
    assert 0.8 <= duplicates[1]["similarity"] < 1.0
    assert "| dolly | 3 | 1 |" in (out / "report.md").read_text()
    entry = Manifest(out).entry("curated-data")
    assert {f.path for f in entry.files} == {"curated.jsonl", "duplicates.jsonl", "stats.json", "report.md"}
    assert entry.config["near_dedup"]["threshold"] == 0.8 and entry.metrics["records_kept"] == 12


def test_workers_give_the_same_output_as_one_process(tmp_path, inputs):
    for workers in ("1", "2"):
        run_cli(
            [
                "data",
                "curate",
                *inputs,
                "batch_size=3",
                "--out",
                str(tmp_path / workers),
                "--workers",
                workers,
                "--no-progress",
            ]
        )
    assert (tmp_path / "1" / "curated.jsonl").read_text() == (tmp_path / "2" / "curated.jsonl").read_text()


def test_format_override_overrides_and_config_fields(tmp_path, inputs):
    out = tmp_path / "out"
    alpaca = next(p for p in inputs if p.endswith("/alpaca.json"))
    # Forced to the wrong format, every record is counted as a mismatch rather than crashing the run.
    code = run_cli(
        [
            "data",
            "curate",
            f"{alpaca}::dolly",
            "language.keep=[]",
            "near_dedup.enabled=false",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    stats = json.loads((out / "stats.json").read_text())
    assert code == 0 and stats["drop_reasons"] == {"bad_record:format_mismatch": 2}
    assert Manifest(out).entry("curated-data").config["near_dedup"]["enabled"] is False


def test_unknown_format_and_missing_input_are_reported(tmp_path, capsys):
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"text": "no known layout"}\n')
    out = tmp_path / "out"
    assert run_cli(["data", "curate", str(plain), "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "stats.json").read_text())["drop_reasons"] == {"bad_record:unknown_format": 1}
    assert run_cli(["data", "curate", str(tmp_path / "missing.json"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_awkward_records_are_counted_or_repaired_never_fatal(tmp_path):
    path = tmp_path / "odd.jsonl"
    rows = [
        '{"messages": [{"role": "user", "content": "Tell me about the \\ud83d moon and its phases."}, '
        '{"role": "assistant", "content": "The moon shows phases because we see its sunlit half from '
        'changing angles."}]}',
        json.dumps({"messages": [{"role": "user", "content": {"nested": "dict"}}]}),
        json.dumps({"messages": [{"role": "user", "content": "Hi"}, "not a message"]}),
        json.dumps({"messages": None}),
    ]
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    assert run_cli(["data", "curate", str(path), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    kept = read_jsonl(out / "curated.jsonl")
    assert len(kept) == 1 and "the \ufffd moon" in kept[0]["messages"][0]["content"]
    assert json.loads((out / "stats.json").read_text())["drop_reasons"] == {"bad_record:format_mismatch": 3}
