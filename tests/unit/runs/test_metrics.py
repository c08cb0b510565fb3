"""Reading a run's ``metrics.jsonl`` into Azure ML's ``get_metrics`` / ``get_tags`` shapes.

The file is written here the way ``kiln.run`` writes it (one JSON object per line), by hand where a
shape needs exact control, through the in-script module where the round trip is the point.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from kiln.runs.metrics import read_display_name, read_metrics, read_properties, read_status, read_tags


def write(path: Path, *records: dict[str, Any], tail: str = "") -> Path:
    """``records`` as JSON lines, then ``tail`` as is (a line being written, with no newline yet)."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")
    return path


def metric(name: str, value: Any) -> dict[str, Any]:
    return {"kind": "metric", "name": name, "value": value, "step": None, "description": "", "time": 1.0}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "metrics.jsonl"


def test_no_file_means_no_metrics_and_no_tags(path: Path) -> None:
    assert (read_metrics(path), read_tags(path)) == ({}, {})


def test_a_name_logged_once_is_its_value(path: Path) -> None:
    write(path, metric("accuracy", 0.93), metric("epochs", 10), metric("label", "best"), metric("ok", True))
    assert read_metrics(path) == {"accuracy": 0.93, "epochs": 10, "label": "best", "ok": True}


def test_a_name_logged_twice_or_more_is_the_list_of_its_values_in_order(path: Path) -> None:
    write(path, metric("loss", 0.9), metric("acc", 0.1), metric("loss", 0.5), metric("loss", 0.25))
    assert read_metrics(path) == {"loss": [0.9, 0.5, 0.25], "acc": 0.1}


def test_a_list_logged_with_log_list_is_a_list_even_with_one_value(path: Path) -> None:
    write(path, {"kind": "list", "name": "sizes", "value": [3]}, {"kind": "list", "name": "empty", "value": []})
    assert read_metrics(path) == {"sizes": [3], "empty": []}


def test_rows_make_a_table_of_columns(path: Path) -> None:
    write(path, {"kind": "row", "name": "scores", "value": {"fold": 1, "f1": 0.5}},
          {"kind": "row", "name": "scores", "value": {"fold": 2, "f1": 0.75}})
    assert read_metrics(path) == {"scores": {"fold": [1, 2], "f1": [0.5, 0.75]}}


def test_a_logged_table_is_a_table_and_rows_added_after_it_extend_its_columns(path: Path) -> None:
    write(path, {"kind": "table", "name": "curve", "value": {"x": [0, 1], "y": [0.0, 0.5]}},
          {"kind": "row", "name": "curve", "value": {"x": 2, "y": 1.0}})
    assert read_metrics(path) == {"curve": {"x": [0, 1, 2], "y": [0.0, 0.5, 1.0]}}


def test_tags_are_not_metrics_and_the_last_value_of_a_tag_wins(path: Path) -> None:
    write(path, metric("acc", 1.0), {"kind": "tag", "name": "stage", "value": "draft"},
          {"kind": "tag", "name": "label", "value": None}, {"kind": "tag", "name": "stage", "value": "final"})
    assert read_metrics(path) == {"acc": 1.0}
    assert read_tags(path) == {"stage": "final", "label": None}


def test_a_half_written_last_line_is_left_for_later(path: Path) -> None:
    partial = json.dumps(metric("loss", 0.1))[:-7]
    write(path, metric("loss", 0.9), tail=partial)
    assert read_metrics(path) == {"loss": 0.9}
    # once the writer finishes the line, the value is there
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(metric("loss", 0.1))[len(partial):] + "\n")
    assert read_metrics(path) == {"loss": [0.9, 0.1]}


def test_a_complete_last_line_without_its_newline_is_not_read_yet(path: Path) -> None:
    write(path, metric("a", 1), tail=json.dumps(metric("b", 2)))
    assert read_metrics(path) == {"a": 1}


def test_damaged_lines_and_records_without_a_name_are_skipped(path: Path) -> None:
    path.write_text("\n".join([json.dumps(metric("a", 1)), "{not json", json.dumps({"kind": "metric", "value": 5}),
                               json.dumps({"kind": "metric", "name": 7, "value": 5}),
                               json.dumps({"kind": "mystery", "name": "m", "value": 1}),
                               "\x00\xff garbage", json.dumps(metric("a", 2))]) + "\n", encoding="utf-8")
    assert read_metrics(path) == {"a": [1, 2]}


def test_not_a_number_and_infinities_come_back_as_floats(path: Path) -> None:
    path.write_text('{"kind": "metric", "name": "loss", "value": NaN}\n'
                    '{"kind": "metric", "name": "best", "value": Infinity}\n', encoding="utf-8")
    metrics = read_metrics(path)
    assert math.isnan(metrics["loss"]) and metrics["best"] == math.inf


def test_what_the_in_script_module_writes_reads_back_in_each_shape(path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from kiln.run import Run

    monkeypatch.setenv("KILN_RUN_ID", "exp_1_abc")
    monkeypatch.setenv("KILN_RUN_DIR", str(path.parent))
    run = Run.get_context()
    run.log("alpha", 0.5)
    run.log("loss", 3)
    run.log("loss", 2)
    run.log_list("sizes", (1, 2, 3))
    run.log_row("table", fold=1, f1=0.5)
    run.log_row("table", fold=2, f1=0.75)
    run.log_table("curve", {"x": [1, 2], "y": [0.1, 0.2]})
    run.tag("quality", "good")
    run.tag("plain")
    assert read_metrics(path) == {"alpha": 0.5, "loss": [3, 2], "sizes": [1, 2, 3],
                                  "table": {"fold": [1, 2], "f1": [0.5, 0.75]}, "curve": {"x": [1, 2], "y": [0.1, 0.2]}}
    assert read_tags(path) == {"quality": "good", "plain": None}
    assert run.get_tags() == {"quality": "good", "plain": None}


def test_the_file_is_parsed_once_for_all_readers_and_again_once_it_grows(path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # a run's details read tags, properties, display name and status, its page metrics too: one parse for all
    from kiln.runs import metrics as module

    parsed: list[Path] = []
    real = module._read
    monkeypatch.setattr(module, "_read", lambda p, st: parsed.append(p) or real(p, st))
    write(path, metric("loss", 1.0), metric("loss", 0.5), {"kind": "tag", "name": "t", "value": "v"},
          {"kind": "property", "name": "p", "value": "first"}, {"kind": "display_name", "value": "shown"},
          {"kind": "status", "value": "Failed", "error": "boom"})
    got = (read_metrics(path), read_tags(path), read_properties(path), read_display_name(path), read_status(path))
    assert got == ({"loss": [1.0, 0.5]}, {"t": "v"}, {"p": "first"}, "shown", ("Failed", "boom"))
    assert parsed == [path]
    got[0]["loss"].append(99.0)  # what a caller does with its copy doesn't reach the next caller
    assert read_metrics(path) == {"loss": [1.0, 0.5]} and parsed == [path]
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(metric("loss", 0.25)) + "\n")
    assert read_metrics(path) == {"loss": [1.0, 0.5, 0.25]} and read_tags(path) == {"t": "v"}
    assert parsed == [path, path]


def test_one_pass_over_the_whole_file_keeps_every_line_apart(path: Path) -> None:
    # the file is parsed as one JSON array: strings holding escaped newlines and commas, lines that are JSON but
    # not records, and a blank line (which makes the array invalid: read line by line) all give what a line does
    tricky = {"kind": "tag", "name": "note", "value": "a,\nb}\n{\"kind\": \"metric\"]"}
    write(path, metric("loss", 1), tricky, metric("loss", 2))
    with open(path, "a", encoding="utf-8") as f:
        f.write("[1, 2]\n5\n")
    assert (read_metrics(path), read_tags(path)) == ({"loss": [1, 2]}, {"note": tricky["value"]})
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n" + json.dumps(metric("loss", 3)) + "\n")
    assert (read_metrics(path), read_tags(path)) == ({"loss": [1, 2, 3]}, {"note": tricky["value"]})


def test_a_series_of_lists_is_copied_deeply(path: Path) -> None:
    write(path, metric("pairs", [1, 2]), metric("pairs", [3, 4]))
    got = read_metrics(path)
    got["pairs"][0].append(99)
    assert read_metrics(path) == {"pairs": [[1, 2], [3, 4]]}


def _index_case(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A file big enough for an index (the threshold lowered); returns the texts parsed from now on."""
    from kiln.runs import metrics as module

    monkeypatch.setattr(module, "INDEX_FROM", 100)
    write(path, *(metric("loss", i / 10) for i in range(20)), {"kind": "tag", "name": "t", "value": "v"},
          {"kind": "display_name", "value": "shown"}, {"kind": "status", "value": "Failed", "error": "boom"},
          {"kind": "row", "name": "rows", "value": {"a": 1}}, {"kind": "metric", "name": "nan", "value": math.nan})
    texts: list[str] = []
    real = module._records
    monkeypatch.setattr(module, "_records", lambda text: texts.append(text) or real(text))
    return texts


def test_a_big_file_leaves_an_index_and_a_new_reader_parses_only_what_was_appended(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kiln.runs import metrics as module

    texts = _index_case(path, monkeypatch)
    first = read_metrics(path)
    assert len(texts) == 1 and path.with_name("metrics.jsonl.index").is_file()
    module._CACHE.clear()  # as a new process
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(metric("loss", 9.0)) + "\n" + '{"kind": "metric", "name": "half')  # a line being written
    got = read_metrics(path)
    assert texts[1] == json.dumps(metric("loss", 9.0)) + "\n"  # the appended line alone
    assert got["loss"] == [*first["loss"], 9.0] and got["rows"] == {"a": [1]} and math.isnan(got["nan"])
    assert (read_tags(path), read_display_name(path), read_status(path)) == ({"t": "v"}, "shown", ("Failed", "boom"))


def test_an_index_that_is_not_the_files_is_not_used(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kiln.runs import metrics as module

    texts = _index_case(path, monkeypatch)
    read_metrics(path)
    index = path.with_name("metrics.jsonl.index").read_text()
    module._CACHE.clear()
    # the file written again in place (same inode), as long as before: its bytes differ, so it is parsed afresh
    text = path.read_text(encoding="utf-8")
    with open(path, "r+", encoding="utf-8") as f:
        f.write(text.replace('"loss"', '"gain"'))
    assert "gain" in read_metrics(path) and "loss" not in read_metrics(path) and len(texts) == 2
    other = path.with_name("other.jsonl")  # another file given this one's index
    write(other, metric("x", 1))
    other.with_name("other.jsonl.index").write_text(index)
    assert read_metrics(other) == {"x": 1}
    path.with_name("metrics.jsonl.index").write_text("{broken")
    module._CACHE.clear()
    assert "gain" in read_metrics(path)


def test_an_index_of_the_wrong_shape_is_not_used(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kiln.runs import metrics as module

    _index_case(path, monkeypatch)
    expected = read_metrics(path)
    index = path.with_name("metrics.jsonl.index")
    saved = json.loads(index.read_text())
    for field, wrong in (("series", []), ("series", {"loss": 3}), ("tables", {"rows": {"a": 1}}), ("display", "x"),
                         ("status", ["only one"]), ("tags", None)):
        index.write_text(json.dumps({**saved, "state": {**saved["state"], field: wrong}}))
        module._CACHE.clear()
        assert str(read_metrics(path)) == str(expected), field  # (str: NaN is not equal to itself)
