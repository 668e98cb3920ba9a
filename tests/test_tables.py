"""`render_table`: one table model, rendered as aligned text, a Markdown table or CSV."""

import csv
import io

import pytest

from peftbench.tables import render_table

HEADERS = ["method", "score", "note"]
ROWS = [["lora", "0.9833", None], ["adapter_h", "0.95", "first line\nsecond | line"]]


def test_text_aligns_columns_and_continues_a_multiline_cell_in_its_column():
    lines = render_table(ROWS, HEADERS).splitlines()
    assert lines[0].split() == HEADERS and all(line == line.rstrip() for line in lines)
    assert lines[1].split() == ["lora", "0.9833", "-"]  # None shows as '-'; numbers are not reparsed (0.9833 stays)
    column = lines[0].index("note")
    assert lines[2].index("first line") == column and lines[3].index("second | line") == column and not lines[3][:column].strip()


def test_markdown_is_a_table_with_one_line_per_row():
    lines = render_table(ROWS, HEADERS, "md").splitlines()
    assert len(lines) == 4 and all(line.startswith("|") and line.endswith("|") for line in lines)
    assert set(lines[1]) <= {"|", "-"} and lines[0].split("|")[1].strip() == "method"
    assert "first line<br>second \\| line" in lines[3]


def test_csv_round_trips_the_cells():
    text = render_table(ROWS, HEADERS, "csv")
    assert list(csv.reader(io.StringIO(text))) == [HEADERS, ["lora", "0.9833", ""], ["adapter_h", "0.95", "first line\nsecond | line"]]


def test_mappings_give_their_keys_as_headers_and_no_headers_gives_no_header_line():
    assert render_table([{"a": 1, "b": "x"}]).splitlines() == ["a    b", "1    x"]
    assert render_table([["a", "b"], ["ccc", "d"]]).splitlines() == ["a    b", "ccc  d"]


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="table format"):
        render_table(ROWS, HEADERS, "html")
