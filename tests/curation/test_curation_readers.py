import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq

from tandem.training.curation.readers import BadRecord, container_of, iter_records, parse_raw


def parsed(path):
    return [parse_raw(r) for r in iter_records(path)]


def test_jsonl_bad_lines_become_bad_records(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n\n{oops\n[1, 2]\n{"a": 2}\n')
    records = parsed(path)
    assert records[0] == {"a": 1} and records[-1] == {"a": 2}
    assert [r.reason for r in records if isinstance(r, BadRecord)] == ["json_error", "not_an_object"]


def test_container_is_detected_from_bytes_not_the_name(tmp_path):
    jsonl_named_json = tmp_path / "rows.json"
    jsonl_named_json.write_text('{"a": 1}\n{"a": 2}\n')
    array = tmp_path / "rows.data"
    array.write_text('  [{"a": 1}, {"a": 2.5}]')
    table = tmp_path / "rows.bin"
    pq.write_table(pa.Table.from_pylist([{"a": 1}]), table)
    assert container_of(jsonl_named_json) == "jsonl"
    assert container_of(array) == "json" and parsed(array) == [{"a": 1}, {"a": 2.5}]
    assert container_of(table) == "parquet" and parsed(table) == [{"a": 1}]


def test_truncated_array_yields_complete_records_then_one_bad_record(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(json.dumps([{"i": 0}, {"i": 1}])[:-1] + ', {"i": 2, "tex')
    records = list(iter_records(path))
    assert records[:2] == [{"i": 0}, {"i": 1}]
    assert len(records) == 3 and records[2].reason == "truncated_file"


def test_gzip_jsonl_and_parquet_nested_lists(tmp_path):
    gz = tmp_path / "rows.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write('{"x": "y"}\n')
    assert parsed(gz) == [{"x": "y"}]
    nested = tmp_path / "conv.parquet"
    rows = [{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}]
    pq.write_table(pa.Table.from_pylist(rows), nested)
    assert parsed(nested) == rows


def test_parquet_streams_in_batches(tmp_path):
    path = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pylist([{"i": i} for i in range(10_000)]), path, row_group_size=1000)
    assert [r["i"] for r in iter_records(path)] == list(range(10_000))
