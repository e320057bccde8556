"""`hetlm prepare` end to end: the simulator, a generic events CSV, and bad input (exit 2, one line)."""

import json

import pytest
from transformers import AutoTokenizer

from application.cli import main
from tokenization.examples import load_prepared
from tokenization.page_tokenizer import normalize_page


def read_splits(dataset):
    return {split: list(rows) for split, rows in dataset.items()}


def pages_of(row):
    return [page for session in row["input_sessions"] for page in session] + list(row["target_session"])


def test_prepare_simulator_end_to_end(tmp_path, capsys):
    out = tmp_path / "data"
    code = main(
        ["prepare", "simulator", "--out", str(out), "--simulator-users", "300", "--seed", "3", "--no-progress"]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "SYNTHETIC DATA" in printed and "short_sessions" in printed and "Users per known segment" in printed
    dataset, tokenizer, summary = load_prepared(out)
    assert summary["synthetic"] is True and "SYNTHETIC DATA" in summary["label"]
    assert "SYNTHETIC DATA" in (out / "summary.md").read_text()
    assert (
        json.loads((out / "tokenizer" / "tokenizer_config.json").read_text())["tokenizer_class"]
        == "PreTrainedTokenizerFast"
    )
    assert AutoTokenizer.from_pretrained(out / "tokenizer").get_vocab() == tokenizer.get_vocab()

    splits = read_splits(dataset)
    assert set(splits) == {"train", "validation", "test"}
    user_sets = [{row["user_id"] for row in rows} for rows in splits.values()]
    assert sum(map(len, user_sets)) == len(set().union(*user_sets)) == summary["users"]["in_examples"]
    for split, rows in splits.items():
        assert summary["splits"][split]["users"] == len({row["user_id"] for row in rows})
        assert summary["splits"][split]["examples"] == len(rows)
        assert summary["splits"][split]["events"] == sum(len(pages_of(row)) for row in rows)
        assert all(1 <= len(row["input_sessions"]) <= 3 and row["target_session"] for row in rows)
        assert dataset[split].column_names == ["user_id", "input_sessions", "target_session", "segment"]
        segments = list({row["user_id"]: row["segment"] for row in rows}.values())
        assert {key: value for key, value in summary["splits"][split].items() if key.startswith("segment_")} == {
            f"segment_{segment}_users": segments.count(segment) for segment in set(segments)
        }
    # The tokenizer knows exactly the train pages.
    train_pages = {page for row in splits["train"] for page in pages_of(row)}
    assert set(tokenizer.get_vocab()) - {"[PAD]", "[UNK]", "[BOS]", "[EOS]"} == train_pages
    targets = [row["target_session"] for rows in splits.values() for row in rows]
    assert summary["outcome_rates"]["cart"] == pytest.approx(sum("cart" in t for t in targets) / len(targets))
    assert summary["outcome_rates"]["purchase"] == pytest.approx(sum("purchase" in t for t in targets) / len(targets))
    filters = {item["name"]: item for item in summary["filters"]}
    assert {"short_sessions", "long_sessions", "single_session_users", "older_sessions"} <= set(filters)
    assert summary["events"]["read"] == summary["events"]["kept"]

    # Every session of a train user after its first is a target; validation and test keep one row per user.
    assert summary["examples"] == {
        "train_examples": "every_session",
        "train_users": len(user_sets[0]),
        "train": len(splits["train"]),
    }
    assert len(splits["train"]) > 2 * len(user_sets[0])
    assert len(splits["validation"]) == len(user_sets[1]) and len(splits["test"]) == len(user_sets[2])
    assert f"train examples: {len(splits['train']):,} from {len(user_sets[0]):,} users" in printed
    # Same seed, same splits.
    assert (
        main(
            [
                "prepare",
                "simulator",
                "--out",
                str(tmp_path / "again"),
                "--simulator-users",
                "300",
                "--seed",
                "3",
                "--no-progress",
            ]
        )
        == 0
    )
    again = read_splits(load_prepared(tmp_path / "again")[0])
    assert {split: [row["user_id"] for row in rows] for split, rows in again.items()} == {
        split: [row["user_id"] for row in rows] for split, rows in splits.items()
    }


def test_prepare_time_split_and_one_example_per_user(tmp_path, capsys):
    out = tmp_path / "forecast"
    assert (
        main(
            [
                "prepare",
                "simulator",
                "--out",
                str(out),
                "--simulator-users",
                "200",
                "--split",
                "time",
                "--time-cutoff-quantile",
                "0.8",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "by time: sessions before" in capsys.readouterr().out
    dataset, _, summary = load_prepared(out)
    assert summary["split"]["kind"] == "time" and summary["split"]["time_cutoff"]
    filters = {item["name"]: item for item in summary["filters"]}
    assert {"no_history_users", "future_sessions"} <= set(filters)
    test_users = set(dataset["test"]["user_id"])
    assert len(test_users) == len(dataset["test"]) and not test_users & set(dataset["validation"]["user_id"])
    assert test_users & set(dataset["train"]["user_id"])  # forecast users train on their history
    out = tmp_path / "paper"
    assert (
        main(
            [
                "prepare",
                "simulator",
                "--out",
                str(out),
                "--simulator-users",
                "200",
                "--train-examples",
                "last_session",
                "--no-progress",
            ]
        )
        == 0
    )
    dataset, _, summary = load_prepared(out)
    assert summary["splits"]["train"]["users"] == summary["splits"]["train"]["examples"] == len(dataset["train"])
    assert main(["prepare", "simulator", "--out", str(out), "--time-cutoff", "2024-01-01", "--no-progress"]) == 2
    assert "--time-cutoff applies to --split time only" in capsys.readouterr().err


def write_events_csv(path, num_users=40):
    lines = ["visitor,timestamp,page"]
    for user in range(num_users):
        for session in range(3):
            for step in range(2 + (user + session) % 3):
                minute = session * 120 + step
                page = f"Category/{(user + step) % 5} shoes" if step else f"user {user} landing"
                lines.append(f"{user:03d},2024-03-01T{minute // 60:02d}:{minute % 60:02d}:00Z,{page}")
    path.write_text("\n".join(lines) + "\n")


def test_prepare_events_csv_counts_unseen_pages(tmp_path, capsys):
    source = tmp_path / "events.csv"
    write_events_csv(source)
    out = tmp_path / "data"
    code = main(
        [
            "prepare",
            str(source),
            "--out",
            str(out),
            "--test-fraction",
            "0.25",
            "--no-progress",
            "--max-session-length-percentile",
            "none",
            "--reader-option",
            "user_column=visitor",
        ]
    )
    assert code == 0, capsys.readouterr().err
    dataset, tokenizer, summary = load_prepared(out)
    assert summary["synthetic"] is False and "label" not in summary
    assert summary["users"] == {"with_events": 40, "in_examples": 40}
    assert summary["sessions"]["total"] == 120 and summary["events"]["read"] == sum(
        2 + (user + session) % 3 for user in range(40) for session in range(3)
    )
    vocabulary = tokenizer.get_vocab()
    for split in ("validation", "test"):
        pages = [page for row in dataset[split] for page in pages_of(row)]
        unseen = [page for page in pages if page not in vocabulary]
        assert summary["splits"][split]["unseen_page_events"] == len(unseen) > 0
        assert summary["splits"][split]["unseen_pages"] == len(set(unseen))
    row = dataset["train"][1]  # the user's second example: its last two sessions before the target
    user = int(row["user_id"])
    assert dataset["train"][0]["user_id"] == row["user_id"]
    assert row["input_sessions"][0][0] == normalize_page(f"user {user} landing")
    assert [len(session) for session in row["input_sessions"]] == [2 + (user + session) % 3 for session in range(2)]


@pytest.mark.parametrize(
    "content, expected",
    [
        ("user_id,page\n1,home\n", "timestamp"),  # missing column
        ("user_id,timestamp,page\n1,not-a-time,home\n", "timestamp"),  # unparsable timestamp
        ("", "empty"),  # empty file
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, content, expected):
    source = tmp_path / "bad.csv"
    source.write_text(content)
    code = main(["prepare", str(source), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("hetlm prepare: error:")
    assert "bad.csv" in err and expected in err.lower()


def test_missing_file_and_no_usable_examples_exit_2(tmp_path, capsys):
    assert main(["prepare", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "nope.csv" in capsys.readouterr().err
    source = tmp_path / "single.csv"
    source.write_text("user_id,timestamp,page\n1,2024-03-01T10:00:00Z,home\n2,2024-03-01T10:00:00Z,home\n")
    assert main(["prepare", str(source), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "no usable examples" in capsys.readouterr().err
    assert (
        main(["prepare", str(source), "--out", str(tmp_path / "out"), "--test-fraction", "1.5", "--no-progress"]) == 2
    )
    assert "test_fraction" in capsys.readouterr().err
