"""Issue 32, part 3: the recipe search of ``[search]`` (Optuna on dev, pruning, a budget): its config
errors, the search loop on a scripted trainer (what it chooses, prunes and stops on), and a real search
on the tiny model whose choice does not move when the test split does."""

from __future__ import annotations

import json
import re

import pytest

from harness.errors import CandidateError
from harness.suite.search_table import SearchTable
from harness.train.search import Pruned, run_search
from tests.test_training_choices import MNRL, problems


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[search]\nepochs = [1, 2]\n", "s.toml: search: expected a budget: trials = N and/or minutes = M"),
        ("[search]\ntrials = 2\n", "s.toml: search: expected at least one dimension to search"),
        (
            "[search]\ntrials = 2\nloss = ['a', 'b']\n",
            "s.toml: search.loss[1]: expected a [[losses]] name, one of ['a'], got 'b'",
        ),
        (
            "[search]\ntrials = 2\nlearning_rate = {low = 1e-3, high = 1e-5}\n",
            "s.toml: search.learning_rate: expected low < high, got 0.001 and 1e-05",
        ),
        (
            "[search]\ntrials = 2\nlearning_rate = {low = 0, high = 1e-3, log = true}\n",
            "s.toml: search.learning_rate.low: a log range needs low > 0",
        ),
        (
            "[search]\ntrials = 2\nepochs = {low = 1, high = 3, stpe = 1}\n",
            "s.toml: search.epochs.stpe: unknown key; a range has low, high, log, step",
        ),
        ("[search]\ntrials = 2\nepochs = [1, 1.5]\n", "s.toml: search.epochs[1]: expected an integer"),
        (
            "[search]\ntrials = 2\nepochs = 3\n",
            "s.toml: search.epochs: expected a list of choices, or a range",
        ),
        (
            "[search]\ntrials = 2\nbatch_sampler = ['no_dups']\n",
            "s.toml: search.batch_sampler[0]: expected one of 'batch_sampler', 'no_duplicates'",
        ),
        (
            "[search]\ntrials = 2\nnum_negatives = [0, -1]\n",
            "s.toml: search.num_negatives[1]: expected a number",
        ),
        ("[search]\ntrials = 0\nepochs = [1]\n", "s.toml: search.trials: expected a number > 0, got 0"),
        ("[search]\ntrials = 2\nepoch = [1]\n", "s.toml: search.epoch: unknown key; did you mean 'epochs'?"),
        (
            "[search]\ntrials = 2\nepochs = [1, 2]\n[training.grid]\nepochs = [1]\n",
            "s.toml: search: give [training.grid] (every combination) or [search] (a budget), not both",
        ),
        (
            '[search]\ntrials = 2\nmax_seq_length = [64, "auto"]\n',
            "s.toml: search.max_seq_length[1]: expected a number of tokens > 0 (a search tries given "
            'lengths, not "auto")',
        ),
    ],
)
def test_search_table_errors_name_the_key(text, expected):
    assert any(p.startswith(expected) for p in problems(MNRL + text)), problems(MNRL + text)


def scripted(scores: dict, calls: list):
    """A trainer whose dev score per epoch is ``scores[learning_rate]`` (a list, one per epoch)."""

    def train(index, setting, report):
        calls.append(setting)
        history = scores[setting["learning_rate"]]
        for epoch, value in enumerate(history, 1):
            report(float(epoch), value, epoch == len(history))
        return {"dev_score": max(history), "chosen_epoch": 1.0, "seconds": 1.0, "memory": None}

    return train


def test_the_search_chooses_the_best_complete_trial_on_dev_and_prunes_the_ones_behind():
    scores = {1e-5: [0.50, 0.52], 2e-5: [0.60, 0.70], 3e-5: [0.20, 0.90], 4e-5: [0.55, 0.65], 5e-5: [0.1]}
    calls, events = [], []
    table = SearchTable(trials=5, sampler="random", learning_rate=list(scores))
    found = run_search(table, 7, "ndcg@10", scripted(scores, calls), lambda s, i: events.append((s, i)))
    states = {t["setting"]["learning_rate"]: t["state"] for t in found["trials"]}
    assert len(found["trials"]) == 5 and sorted(states) == sorted(scores)  # each setting once
    # a trial at its last epoch is finished: kept, whatever its score
    assert states[5e-5] == "complete"
    order = [t["setting"]["learning_rate"] for t in found["trials"]]
    if order.index(3e-5) >= 2:  # it would have won, but its first epoch was behind (the lowest of all)
        assert states[3e-5] == "pruned"
    # from the third trial on, a trial whose first epoch is below the median of the earlier ones stops
    # there: 3e-5 would have won (0.90 after epoch 2), but the pruner judges on what it has seen
    for t in found["trials"][2:]:
        if len(t["dev_history"]) == 1 and t["state"] == "complete":
            continue
        first = t["dev_history"][0]["dev_score"]
        earlier = sorted(x["dev_history"][0]["dev_score"] for x in found["trials"][: t["number"]])
        median = (earlier[(len(earlier) - 1) // 2] + earlier[len(earlier) // 2]) / 2
        assert (t["state"] == "pruned") == (first < median), (t, median)
    done = {
        t["setting"]["learning_rate"]: t["dev_score"] for t in found["trials"] if t["state"] == "complete"
    }
    assert found["chosen"]["learning_rate"] == max(done, key=done.get)
    assert found["trials"][found["chosen_index"]]["setting"] == found["chosen"]
    assert found["stopped_by"] in ("trials", "space") and found["pruner"] == "MedianPruner"
    assert [s for s, _ in events].count("trial") == 5 and [s for s, _ in events].count("trial_end") == 5


def test_the_budget_in_minutes_stops_the_search_and_a_failed_trial_is_only_that_trial():
    now = [0.0]

    def train(index, setting, report):
        now[0] += 600.0  # every trial takes ten minutes
        if index == 0:
            raise CandidateError("out of pairs")
        return {"dev_score": 0.5 + index / 10, "chosen_epoch": 1.0, "seconds": 600.0}

    table = SearchTable(minutes=25, learning_rate={"low": 1e-5, "high": 1e-3, "log": True})
    found = run_search(table, 0, "ndcg@10", train, lambda s, i: None, clock=lambda: now[0])
    assert [t["state"] for t in found["trials"]] == ["failed", "complete", "complete"]
    assert found["trials"][0]["error"] == "out of pairs" and found["stopped_by"] == "minutes"
    assert found["chosen_index"] == 2


def test_a_setting_proposed_again_does_not_count_as_a_trained_trial_for_the_pruner():
    """The second trained trial is never pruned, even when the sampler proposed the first one's setting
    again in between (told its score, a complete trial to Optuna): with two choices, over twenty seeds,
    such a repeat comes up (each time with chance one half)."""
    scores = {1e-4: [0.70, 0.72], 2e-4: [0.60, 0.80]}
    for seed in range(20):
        found = run_search(
            SearchTable(trials=3, sampler="random", learning_rate=list(scores)),
            seed,
            "ndcg@10",
            scripted(scores, []),
            lambda s, i: None,
            first={"learning_rate": 1e-4},
        )
        assert [t["state"] for t in found["trials"]] == ["complete", "complete"], (seed, found["trials"])
        assert found["chosen"] == {"learning_rate": 2e-4} and found["stopped_by"] == "space"


def test_the_first_trial_is_the_suites_own_recipe_where_it_lies_in_the_space():
    from harness.suite.training_tables import HardNegativesTable, LossTable, TrainingTable
    from harness.train.search import own_setting

    training = TrainingTable(learning_rate=5e-5, epochs=2, max_seq_length=128, batch_sampler="auto")
    mined = LossTable(name="hn", type="MultipleNegativesRankingLoss", hard_negatives=HardNegativesTable())
    table = SearchTable(
        trials=3,
        learning_rate=[1e-4, 5e-5, 2e-4],
        epochs={"low": 1, "high": 4, "step": 1},
        max_seq_length=[256, 512],  # the suite's 128 is not a choice: the sampler picks one
        batch_sampler=["no_duplicates", "batch_sampler"],  # "auto" is not a choice either
        num_negatives={"low": 0, "high": 3},
        warmup_ratio={"low": 0.05, "high": 0.2, "step": 0.05},  # 0.1 lies on the step
    )
    first = own_setting(table, training, mined)
    assert first == {
        "learning_rate": 5e-5,
        "epochs": 2,
        "num_negatives": mined.hard_negatives.num_negatives,
        "warmup_ratio": 0.1,
    }
    off_step = SearchTable(trials=1, warmup_ratio={"low": 0.0, "high": 0.3, "step": 0.3}, loss=["hn"])
    assert own_setting(off_step, training, mined) == {"loss": "hn"}

    calls = []
    found = run_search(
        table, 3, "ndcg@10", lambda i, s, r: calls.append(s) or {"dev_score": 0.1 * i}, print, first=first
    )
    assert {d: calls[0][d] for d in first} == first and set(calls[0]) == set(table.dims())
    assert calls[0]["max_seq_length"] in table.max_seq_length  # the sampler's choice: not the suite's 128
    assert found["trials"][0]["own"] == sorted(first) and "own" not in found["trials"][1]
    assert found["by"].endswith("the first trial the suite's own recipe")
    assert len({json.dumps(c, sort_keys=True) for c in calls}) == 3  # the sampler goes on from there


def test_a_finite_space_ends_the_search_and_no_finished_trial_is_the_candidates_error():
    calls = []
    table = SearchTable(trials=10, epochs=[1, 2])
    found = run_search(table, 0, "ndcg@10", lambda i, s, r: calls.append(s) or {"dev_score": 0.1}, print)
    assert found["stopped_by"] == "space" and len(calls) == 2 and len(found["trials"]) == 2

    def never(index, setting, report):
        raise Pruned(1, 0.0)

    with pytest.raises(CandidateError, match="no trial of the search finished"):
        run_search(SearchTable(trials=2, epochs=[1, 2]), 0, "ndcg@10", never, lambda s, i: None)


SEARCH = """
[[losses]]
name = "hn"
type = "MultipleNegativesRankingLoss"
[losses.hard_negatives]
num_negatives = 1
[search]
trials = 4
sampler = "random"
learning_rate = {low = 1e-4, high = 3e-3, log = true}
epochs = [1, 2]
num_negatives = [0, 1]
batch_sampler = ["batch_sampler", "no_duplicates"]
loss = ["mnrl", "hn"]
"""


def test_a_search_on_the_tiny_model_chooses_on_dev_only_and_reads_test_once(
    tiny_suite, run_cli, tmp_path, pair_files
):
    def run(suite, out):
        code, text = run_cli("run", str(suite), "--out", str(out), "--device", "cpu")
        assert code == 0, text
        doc = json.loads((out / "tiny" / "latest" / "results.json").read_text())
        return {c["name"]: c for c in doc["candidates"]}, text, out / "tiny" / "latest"

    cands, out, run_dir = run(tiny_suite(SEARCH), tmp_path / "a")
    assert set(cands) == {"tiny-baseline", "tiny-search"}  # the searched losses are one candidate
    c = cands["tiny-search"]
    search = c["training"]["search"]
    assert 1 <= len(search["trials"]) <= 4 and search["budget"] == {"trials": 4, "minutes": None}
    done = [t["dev_score"] if t["state"] == "complete" else None for t in search["trials"]]
    best = max(d for d in done if d is not None)
    assert search["chosen_index"] == done.index(best) and c["training"]["setting"] == search["chosen"]
    assert set(search["chosen"]) == {"learning_rate", "epochs", "num_negatives", "batch_sampler", "loss"}
    assert c["training"]["dev_score"] == pytest.approx(best)  # the winner's training is the one shipped
    for t in search["trials"]:
        assert t["seconds"] > 0 and len(t["dev_history"]) >= 1
        if t["state"] == "complete":
            assert t["memory"]["peak"]
    # the test split is read once per candidate and variant: the baseline's and the chosen recipe's
    assert len(re.findall(r"ONNX fp32: evaluated the test split", out)) == 2, out
    assert out.count("search trial ") >= 2 * len(search["trials"]) and "search: chose " in out
    html = (run_dir / "report.html").read_text()
    assert f"search: {len(search['trials'])} trials" in html and "(chosen)" in html
    # the chosen recipe is what ships, and the model card says how it was chosen
    code, text = run_cli("release", str(run_dir), "--candidate", "tiny-search", "--to", str(tmp_path / "art"))
    assert code == 0, text
    assert search["by"] in (tmp_path / "art" / "README.md").read_text()
    # the same search with other test judgements: the same trials and choice (test never chooses)
    moved = tmp_path / "test-moved.jsonl"
    rows = [json.loads(line) for line in (pair_files / "test.jsonl").read_text().splitlines()]
    docs = [r["document"] for r in rows]
    moved.write_text(
        "".join(json.dumps({**r, "document": docs[(i + 1) % len(docs)]}) + "\n" for i, r in enumerate(rows))
    )
    suite = tiny_suite(
        SEARCH,
        data=f'source = "jsonl"\ntrain = "{pair_files / "train.jsonl"}"\ntest = "{moved}"\n'
        "dev_fraction = 0.2",
    )
    again, _, _ = run(suite, tmp_path / "b")
    s2 = again["tiny-search"]["training"]["search"]
    assert [t["setting"] for t in s2["trials"]] == [t["setting"] for t in search["trials"]]
    assert [t["dev_score"] for t in s2["trials"]] == pytest.approx([t["dev_score"] for t in search["trials"]])
    assert s2["chosen"] == search["chosen"]
    assert again["tiny-search"]["metrics"]["ndcg@10"] != c["metrics"]["ndcg@10"]  # test did move
