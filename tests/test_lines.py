"""``workflow.config.lines``: the line on which each key, table and array element starts."""

from __future__ import annotations

import tomllib

import pytest

from workflow.config.lines import Path, key_lines, line_of


def where(text: str, needle: str) -> int:
    """The 1-based number of the one line of ``text`` that contains ``needle``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(found) == 1, (needle, found)
    return found[0]


def scan(text: str) -> dict[Path, int]:
    """``key_lines`` of a text that must be valid TOML (so a typo in a test fails loudly)."""
    tomllib.loads(text)
    return key_lines(text)


def test_top_level_keys_and_tables() -> None:
    text = 'title = "x"\n\n[cycle]\nid = "2554"\nname_th = "ก"\n\n[calendar]\nholidays = "TH"\n'
    lines = scan(text)
    assert lines[("title",)] == 1
    assert lines[("cycle",)] == 3
    assert lines[("cycle", "id")] == 4
    assert lines[("cycle", "name_th")] == 5
    assert lines[("calendar",)] == 7
    assert lines[("calendar", "holidays")] == 8


def test_arrays_of_tables_are_numbered_per_array() -> None:
    text = "\n".join(
        [
            "[[milestones]]",
            'id = "a"',
            "[[groups]]",
            'id = "g"',
            "[[milestones]]",
            'id = "b"',
            'due = "2011-04-30"',
            "",
            "[[milestones]]   # a comment after the header",
            'id = "c"',
        ]
    )
    lines = scan(text)
    assert lines[("milestones", 0)] == 1
    assert lines[("milestones", 0, "id")] == 2
    assert lines[("groups", 0)] == 3
    assert lines[("groups", 0, "id")] == 4
    assert lines[("milestones", 1)] == 5
    assert lines[("milestones", 1, "due")] == 7
    assert lines[("milestones", 2)] == 9
    assert lines[("milestones", 2, "id")] == 10
    # the array itself is where it first appears
    assert lines[("milestones",)] == 1


def test_sub_table_of_an_array_of_tables_belongs_to_its_last_element() -> None:
    text = '[[milestones]]\nid = "a"\n[[milestones]]\nid = "b"\n[milestones.extra]\nx = 1\n'
    lines = scan(text)
    assert lines[("milestones", 1, "extra")] == 5
    assert lines[("milestones", 1, "extra", "x")] == 6


def test_inline_tables_in_a_multi_line_array() -> None:
    text = "\n".join(
        [
            "[scoring]",
            "tiers = [",
            '    { name = "ดีเด่น", min = "4.5000" },   # outstanding',
            "    # a comment line with ] and { inside",
            "",
            '    { name = "ดี", min = "3.5000" },',
            "]",
            "floor = '1.0000'",
        ]
    )
    lines = scan(text)
    assert lines[("scoring", "tiers")] == 2
    assert lines[("scoring", "tiers", 0)] == 3
    assert lines[("scoring", "tiers", 0, "min")] == 3
    assert lines[("scoring", "tiers", 1)] == 6
    assert lines[("scoring", "tiers", 1, "name")] == 6
    assert lines[("scoring", "floor")] == 8


def test_array_elements_one_per_line() -> None:
    text = '[[groups]]\nid = "g"\nprovinces = [\n  "TH-50",\n  "TH-58",  # MHS\n  "TH-52"\n]\n'
    lines = scan(text)
    assert lines[("groups", 0, "provinces")] == 3
    assert lines[("groups", 0, "provinces", 0)] == where(text, "TH-50")
    assert lines[("groups", 0, "provinces", 1)] == where(text, "TH-58")
    assert lines[("groups", 0, "provinces", 2)] == where(text, "TH-52")


def test_nested_arrays_and_inline_tables() -> None:
    text = "a = [[1, 2], [3,\n  4]]\nb = { c = { d = [ { e = 1 } ] } }\n"
    lines = scan(text)
    assert lines[("a", 1, 1)] == 2
    assert lines[("b", "c", "d", 0, "e")] == 3


def test_dotted_keys_record_every_prefix() -> None:
    text = "\n".join(
        [
            "[scoring]",
            "",
            'dimension_weights."1" = 50',
            "dimension_weights.2 = 50",
            "[site]",
            'owner . "e-mail" = "x@y.example"',
        ]
    )
    lines = scan(text)
    assert lines[("scoring", "dimension_weights", "1")] == 3
    assert lines[("scoring", "dimension_weights", "2")] == 4
    assert lines[("scoring", "dimension_weights")] == 3
    assert lines[("site", "owner", "e-mail")] == 6
    assert lines[("site", "owner")] == 6


def test_dotted_and_quoted_table_headers() -> None:
    text = '[ calendar . "extra" ]\nx = 1\n[[ "milestones" ]]\nid = "a"\n'
    lines = scan(text)
    assert lines[("calendar", "extra")] == 1
    assert lines[("calendar", "extra", "x")] == 2
    assert lines[("milestones", 0, "id")] == 4


@pytest.mark.parametrize("quote", ['"""', "'''"])
def test_multi_line_strings_with_brackets_and_hashes(quote: str) -> None:
    body = "first line\n[not_a_table]\n# not a comment\nkey = 'not a key'\n[[nor_this]]"
    text = f'[cycle]\nname_th = {quote}{body}{quote}\nid = "2554"\n[[milestones]]\nid = "a"\n'
    lines = scan(text)
    assert ("not_a_table",) not in lines
    assert ("nor_this", 0) not in lines
    assert ("cycle", "key") not in lines
    assert lines[("cycle", "name_th")] == 2
    assert lines[("cycle", "id")] == where(text, 'id = "2554"')
    assert lines[("milestones", 0, "id")] == where(text, 'id = "a"')


def test_tricky_strings_do_not_derail_the_scanner() -> None:
    text = "\n".join(
        [
            'a = "quote \\" and # and [x]"',
            "b = 'C:\\path\\'",
            'c = """ends with quotes"" """',
            'd = """escaped \\""" still inside"""',
            'e = """two extra quotes at the end"""""',
            "f = ''''single quote inside'''",
            '"quoted key" = 1  # comment with "quote',
            "g = 2",
        ]
    )
    lines = scan(text)
    for n, key in enumerate("abcdef", start=1):
        assert lines[(key,)] == n, key
    assert lines[("quoted key",)] == 7
    assert lines[("g",)] == 8


def test_comments_and_crlf_line_ends() -> None:
    text = "# header comment\r\n# [not_a_table]\r\n\r\n[cycle] # c\r\nid = '1' # c\r\nx = 2\r\n"
    lines = scan(text)
    assert ("not_a_table",) not in lines
    assert lines[("cycle",)] == 4
    assert lines[("cycle", "id")] == 5
    assert lines[("cycle", "x")] == 6


def test_line_of_falls_back_to_the_nearest_ancestor() -> None:
    lines = scan('[cycle]\nid = "2554"\n\n[[milestones]]\nid = "a"\n')
    assert line_of(lines, ("cycle", "id")) == 2
    assert line_of(lines, ("cycle", "timezone")) == 1
    assert line_of(lines, ("milestones", 0, "due")) == 4
    assert line_of(lines, ("calendar", "add")) == 1
    assert line_of(lines, ()) == 1


def test_one_line_fast_path_and_its_fallbacks() -> None:
    text = "\n".join(
        [
            "[t]",
            'a = ""',
            "b = 1979-05-27 07:32:00  # a date-time with a space",
            "c = 1",
            'd = """x"""',
            "e = 2",
            "f = '' # empty literal",
            "g = [",
            "  3,",
            "]",
            "h = -inf",
            'i = "a # not a comment"',
            "j = 4",
        ]
    )
    lines = scan(text)
    for key in "abcdefghij":
        assert lines[("t", key)] == where(text, f"{key} = "), key
    assert lines[("t", "g", 0)] == 9


def test_a_large_generated_file() -> None:
    from bench.cyclegen import generate_cycle

    text = generate_cycle(cycle_id="2560", agencies=3000)
    lines = scan(text)
    assert lines[("organisations", 3011, "email")] == where(text, "head@agency-003000.")
    assert lines[("groups", 2, "provinces", 3)] == where(text, "supervisor@group-03.") + 1
    assert lines[("scoring", "tiers", 3, "min")] == where(text, '"ผ่านเกณฑ์"')
    assert lines[("milestones", 12, "title_en")] == where(text, "Evaluation visits by OPDC")
