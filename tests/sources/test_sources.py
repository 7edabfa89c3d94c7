"""Readers: canonical files, X API v2 pages, mapped flat files, and hostile records."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from conftest import KIRTI_COLUMNS, KIRTI_CSV, TABORDA_CSV, X_SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tweet_signals.sources.files import parse_column_map, read_posts


def _write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_canonical_jsonl_csv_parquet_load_with_no_options(tmp_path: Path) -> None:
    records = [
        {"id": 1, "created_at": "2026-01-07T05:00:00+05:30", "text": "Nifty up", "like_count": "3"},
        {"id": "2", "created_at": "2026-01-07T01:00:00Z", "text": "Sensex down", "author_followers": 10},
    ]
    jsonl = read_posts(_write_jsonl(tmp_path / "p.jsonl", records))
    frame = pl.DataFrame([{k: str(v) for k, v in r.items()} for r in records])
    frame.write_csv(tmp_path / "p.csv")
    frame.write_parquet(tmp_path / "p.parquet")
    for result in (jsonl, read_posts(tmp_path / "p.csv"), read_posts(tmp_path / "p.parquet")):
        assert result.posts["id"].to_list() == ["1", "2"]
        assert result.posts["created_at"][0].isoformat() == "2026-01-06T23:30:00+00:00"
        assert result.quarantine.height == 0


def test_x_api_pages_load_with_authors_and_metrics() -> None:
    result = read_posts(X_SAMPLES / "brexit.jsonl")
    page = json.loads((X_SAMPLES / "brexit.jsonl").read_text().splitlines()[0])
    assert result.posts.height == len(page["data"]) == 100
    first = result.posts.row(0, named=True)
    assert first["id"] == "1440716895355764743"
    assert first["author_username"] == "WarmongerHodges"
    assert first["author_followers"] == 34920
    # API retweet references are kept so dedupe can collapse them onto originals.
    n_rt = sum(any(r.get("type") == "retweeted" for r in t.get("referenced_tweets", [])) for t in page["data"])
    assert result.posts["retweet_of"].is_not_null().sum() == n_rt > 0


def test_kirti_csv_loads_through_column_mapping() -> None:
    result = read_posts(KIRTI_CSV, parse_column_map(KIRTI_COLUMNS))
    assert result.records_in == 382
    assert result.posts.height + result.quarantine.height == 382
    assert result.posts.height >= 380
    assert result.posts["id"].str.contains(r"^\d+$").all()  # tweet ids recovered from permalinks
    assert not result.posts["author_username"].str.starts_with("@").any()


def test_taborda_semicolon_csv_loads_through_column_mapping() -> None:
    result = read_posts(TABORDA_CSV, parse_column_map("id=id,created_at=created_at,text=text"))
    assert result.records_in == 5000
    assert result.posts.height == 5000
    assert result.posts["created_at"].min().year == 2020


def test_bad_records_are_quarantined_with_reasons(tmp_path: Path) -> None:
    lines = [
        {"id": 1, "created_at": "2026-01-07T05:00:00Z", "text": "ok"},
        "{not json",
        {"id": 2, "created_at": "2026-01-07T05:00:00Z"},
        {"id": 3, "created_at": "2026-01-07 05:00:00", "text": "no zone"},
        {"id": 4, "created_at": "yesterday", "text": "bad time"},
        {"id": 5, "created_at": "2026-01-07T05:00:00Z", "text": "   "},
        [1, 2, 3],
        {"id": 6, "created_at": "2026-01-07T05:00:00Z", "text": "x" * 100_000, "like_count": "many"},
    ]
    result = read_posts(_write_jsonl(tmp_path / "bad.jsonl", lines))
    reasons = sorted(result.quarantine["reason"].to_list())
    assert reasons == sorted(
        ["malformed_json", "missing_text", "naive_timestamp", "bad_timestamp", "empty_text", "not_an_object"]
    )
    assert result.records_in == result.posts.height + result.quarantine.height == 8
    assert result.posts["id"].to_list() == ["1", "6"]
    assert result.repairs == {"R4_text_truncated": 1, "R3_bad_count_nulled": 1}
    # With a documented zone for naive timestamps the record is repaired instead.
    repaired = read_posts(tmp_path / "bad.jsonl", naive_tz="Asia/Kolkata")
    assert "3" in repaired.posts["id"].to_list()


def test_latin1_csv_is_decoded_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("id,created_at,text\n1,2026-01-07T05:00:00Z,Caf\xe9 rally\n".encode("latin-1"))
    result = read_posts(path)
    assert result.posts["text"][0] == "Café rally"
    assert result.repairs == {"R5_decoded_as_latin1": 1}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.binary(max_size=200), st.text(max_size=200)), max_size=20))
def test_garbage_jsonl_never_raises_and_loses_nothing(tmp_path: Path, lines: list[object]) -> None:
    path = tmp_path / "garbage.jsonl"
    with path.open("wb") as fh:
        for line in lines:
            raw = line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass")
            fh.write(raw.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n")
    result = read_posts(path)
    assert result.records_in == result.posts.height + result.quarantine.height
    # Every non-blank line is a record, except X API pages, which count their tweets instead.
    plain_lines = [line for line in path.read_bytes().split(b"\n") if line.strip() and not _is_page(line)]
    assert result.records_in >= len(plain_lines)


def _is_page(line: bytes) -> bool:
    from tweet_signals.sources.files import is_x_page

    try:
        return is_x_page(json.loads(line.decode("utf-8", "replace")))
    except json.JSONDecodeError:
        return False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=500))
def test_garbage_csv_never_raises(tmp_path: Path, body: str) -> None:
    path = tmp_path / "garbage.csv"
    path.write_text("id,created_at,text\n" + body, encoding="utf-8", errors="surrogatepass")
    result = read_posts(path)
    assert result.records_in == result.posts.height + result.quarantine.height


def test_broken_csv_quoting_and_non_utf8_jsonl_are_counted(tmp_path: Path) -> None:
    csv_path = tmp_path / "broken.csv"
    csv_path.write_text(
        'id,created_at,text\n1,2026-01-07T05:00:00Z,"fine"\n2,2026-01-07T05:00:00Z,"unterminated, extra,field\n'
        "3,2026-01-07T05:00:00Z,ok,surplus\n",
        encoding="utf-8",
    )
    result = read_posts(csv_path)
    assert result.records_in == result.posts.height + result.quarantine.height
    assert "1" in result.posts["id"].to_list() and result.quarantine.height >= 1
    jsonl = tmp_path / "bytes.jsonl"
    jsonl.write_bytes(b'{"id": 1, "created_at": "2026-01-07T05:00:00Z", "text": "caf\xe9 \xff rally"}\n')
    result = read_posts(jsonl)
    assert result.posts["text"][0] == "caf\ufffd \ufffd rally"
    assert result.repairs == {"R1_invalid_utf8_replaced": 1}  # counted per record


def test_wrong_types_and_corrupt_parquet_are_quarantined(tmp_path: Path) -> None:
    lines = [
        {"id": {"a": 1}, "created_at": "2026-01-07T05:00:00Z", "text": "x"},
        {"id": 2, "created_at": ["2026"], "text": "x"},
        {"id": 3, "created_at": "2026-01-07T05:00:00Z", "text": {"t": 1}},
        {
            "data": [{"id": 4, "text": "t", "created_at": "2026-01-07T05:00:00Z", "public_metrics": [1]}],
            "includes": {"users": "nope"},
        },
    ]
    result = read_posts(_write_jsonl(tmp_path / "types.jsonl", lines))
    assert result.records_in == 4 == result.posts.height + result.quarantine.height
    assert result.posts["id"].to_list() == ["4"]
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    result = read_posts(tmp_path / "bad.parquet")
    assert result.quarantine["reason"].to_list() == ["unreadable_file"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "id",
                        "text",
                        "created_at",
                        "data",
                        "includes",
                        "users",
                        "author_id",
                        "public_metrics",
                        "like_count",
                        "meta",
                    ]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=25,
    )
)
def test_generated_json_records_and_pages_never_raise(tmp_path: Path, obj: object) -> None:
    path = tmp_path / "gen.jsonl"
    path.write_text(json.dumps(obj) + "\n", encoding="utf-8")
    result = read_posts(path)
    assert result.records_in == result.posts.height + result.quarantine.height


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.booleans())
def test_garbage_parquet_never_raises(tmp_path: Path, data: bytes, with_magic: bool) -> None:
    path = tmp_path / "garbage.parquet"
    path.write_bytes((b"PAR1" + data + b"PAR1") if with_magic else data)
    result = read_posts(path)
    assert result.records_in == result.posts.height + result.quarantine.height >= 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "id": st.one_of(st.none(), st.integers(), st.text(max_size=8)),
                "created_at": st.one_of(st.none(), st.text(max_size=25), st.just("2026-01-07T05:00:00Z")),
                "text": st.one_of(st.none(), st.text(max_size=40)),
                "like_count": st.one_of(st.none(), st.text(max_size=5), st.integers(-5, 10**6)),
            }
        ),
        min_size=1,
        max_size=15,
    )
)
def test_generated_parquet_records_are_split_not_lost(tmp_path: Path, rows: list[dict[str, object]]) -> None:
    frame = pl.DataFrame(
        [{k: (None if v is None else str(v)) for k, v in r.items()} for r in rows],
        schema={"id": pl.String, "created_at": pl.String, "text": pl.String, "like_count": pl.String},
    )
    frame.write_parquet(tmp_path / "rows.parquet")
    result = read_posts(tmp_path / "rows.parquet")
    assert result.records_in == len(rows) == result.posts.height + result.quarantine.height


def test_large_inputs_are_handed_on_in_bounded_batches(tmp_path: Path, monkeypatch) -> None:
    """Readers never hold a whole input as records: rows leave in batches of ROW_BATCH, and the
    batches add up to exactly what the one-frame reader returns, quarantine included."""
    from tweet_signals.sources import files

    records: list[object] = [
        {"id": i, "created_at": f"2026-01-07T0{i % 9}:00:00Z", "text": f"nifty {i}"} for i in range(40)
    ]
    records[5], records[17] = "{broken", {"id": 17}  # malformed JSON, missing fields
    _write_jsonl(tmp_path / "big.jsonl", records)
    pl.DataFrame([r for r in records if isinstance(r, dict) and "text" in r]).with_columns(
        pl.col("id").cast(pl.String)
    ).write_parquet(tmp_path / "big.parquet")
    whole = {name: read_posts(tmp_path / name) for name in ("big.jsonl", "big.parquet")}
    monkeypatch.setattr(files, "ROW_BATCH", 7)
    for name, expected in whole.items():
        batches: list[pl.DataFrame] = []
        quarantine, records_in, _ = files.stream_posts(tmp_path / name, batches.append)
        assert [b.height for b in batches[:-1]] == [7] * (len(batches) - 1) and 0 < batches[-1].height <= 7
        assert pl.concat(batches).equals(expected.posts) and quarantine.equals(expected.quarantine)
        assert records_in == expected.records_in == sum(b.height for b in batches) + quarantine.height
    assert whole["big.jsonl"].quarantine.height == 2 and whole["big.parquet"].posts.height == 38
