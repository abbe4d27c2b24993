"""Hard negatives for a loss entry that asks for them (``[losses.hard_negatives]``): mined once per
setting and mining model in a run (``mining/<key>.json``), re-used by every loss that asks for the
same, and by ``--resume``."""

from __future__ import annotations

import time
from pathlib import Path

from harness import __version__
from harness.api import ResolvedModel
from harness.core.names import Stage
from harness.core.suiterun import SuiteRun
from harness.suite.collect import Item


class Miner:
    """Mines on ``device``; ``resolve(name, revision)`` resolves a model name to a local folder."""

    def __init__(self, resolve, device: str):
        self.resolve = resolve
        self.device = device

    def mined(self, run: SuiteRun, item: Item, resolved: ResolvedModel, progress, data=None) -> dict:
        """The hard negatives of ``item``'s loss entry for the train pairs of ``data`` (default: the
        run's): ``{"columns", "scores", "stats"}`` (see :func:`harness.data.mining.mine`)."""
        from harness.core import records
        from harness.data import mining

        data = data or run.data
        cfg = item.loss.hard_negatives
        model_dir = self.mining_model(run, resolved, cfg.model)
        seq = run.suite.training.max_seq_length
        key = records.digest(
            {
                "harness": __version__,
                "data": data.fingerprint,
                "data_table": vars(run.suite.data),
                "mining": vars(cfg),
                "model": str(model_dir),
                "seq": seq,
                "prompts": [item.model.query_prompt, item.model.document_prompt],
                "fingerprint": records.folder_key(model_dir),
            }
        )
        file = run.run_dir / "mining" / f"{key}.json"
        found = records.load(file, key)
        if found is None:
            t0 = time.perf_counter()
            found = mining.mine(
                data,
                cfg,
                model_dir,
                self.device,
                seq,
                item.model.query_prompt,
                item.model.document_prompt,
                run.suite.data.seed,
            )
            found["stats"]["model"] = cfg.model
            found["stats"]["seconds"] = round(time.perf_counter() - t0, 1)
            records.store(file, key, found)
        found["stats"]["warnings"] = mining.warnings(found["stats"], cfg)
        progress(Stage.MINED, found["stats"])
        return found

    def mining_model(self, run: SuiteRun, resolved: ResolvedModel, name: str) -> Path:
        """The folder of the model ``hard_negatives.model`` names (see
        :class:`harness.suite.training_tables.HardNegativesTable`): another candidate's trained model needs
        that candidate finished earlier in this run (``run.results``)."""
        if name == "base":
            return resolved.path
        model = next((m for m in run.suite.models if m.name == name), None)
        if model is not None:
            return self.resolve(model.base, model.revision).path
        if name in run.suite.candidate_names():
            return run.trained_model(
                name, "hard_negatives.model", "it must be selected, and listed before this loss"
            )
        return self.resolve(name, None).path
