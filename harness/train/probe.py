"""Measured training steps: the probe that :mod:`harness.train.memory` plans with. Each step runs on
the longest texts of each training column (the costliest batch the data can make) and records the
peak memory the kernel (or CUDA) saw while it ran."""

from __future__ import annotations

import time

from harness.core.memory import PeakMeter, device_total, release_freed


def longest(columns: dict[str, list], rows: int) -> dict[str, list]:
    """The ``rows`` longest texts of each column (the costliest batch the data can make); a score
    column keeps its first values."""
    out = {}
    for name, values in columns.items():
        if name == "score":
            out[name] = list(values[:rows])
        else:
            out[name] = sorted(values, key=len, reverse=True)[:rows]
        while len(out[name]) < rows:  # fewer rows than asked: repeat
            out[name] = out[name] + out[name][: rows - len(out[name])]
    return out


class Prober:
    """Runs measured training steps of one model with one loss family."""

    def __init__(self, model_dir, max_seq_length, columns, device, build_loss):
        from sentence_transformers import SentenceTransformer

        self.device = device
        self.model = SentenceTransformer(str(model_dir), device=device)
        from harness.train.compat import length_settable

        self.settable = length_settable(self.model)
        if max_seq_length and self.settable:
            self.model.max_seq_length = max_seq_length
        self.model.train()
        self.columns = columns
        self.build_loss = build_loss  #: (model, loss name, mini_batch_size) -> module
        self.losses: dict[str, object] = {}
        self.checkpointing = False
        import torch

        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-12)
        self.probes: list[dict] = []

    def enable_checkpointing(self) -> None:
        from harness.train.compat import gradient_checkpointing

        gradient_checkpointing(self.model)
        self.checkpointing = True

    def _features(self, texts: list[str]) -> dict:
        from harness.train.compat import tokenize

        return {
            k: v.to(self.device) if hasattr(v, "to") else v for k, v in tokenize(self.model, texts).items()
        }

    def _measured(self, run, record: dict | None) -> int:
        import torch

        release_freed()
        start = time.perf_counter()
        failed = False
        with PeakMeter(self.device) as meter:
            try:
                run()
                self.optimizer.step()
            except (torch.cuda.OutOfMemoryError, MemoryError):  # the device said no: it does not fit
                failed = True
            self.optimizer.zero_grad(set_to_none=True)
        peak = meter.peak
        if failed:  # more than the device has: nothing below the limit can hold it
            release_freed()
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
            peak = max(peak, device_total(self.device)) + 1
        if record is not None:
            self.probes.append(
                {
                    **record,
                    "gradient_checkpointing": self.checkpointing,
                    "peak_bytes": peak,
                    "seconds": round(time.perf_counter() - start, 2),
                    **({"out_of_memory": True} if failed else {}),
                }
            )
        return peak

    def warm_up(self, loss_name: str) -> None:
        """One step on a few tokens: the optimiser's state and every lazy allocation are made, so the
        measured steps differ only in what their batch costs."""
        if not self.settable:  # a static model: one row of whole texts
            self.step(loss_name, 1, record=False)
            return
        seq, self.model.max_seq_length = self.model.max_seq_length, 8
        try:
            self.step(loss_name, 1, record=False)
        finally:
            self.model.max_seq_length = seq

    def step(self, loss_name: str, rows: int, record: bool = True) -> int:
        """A training step of ``loss_name`` on ``rows`` rows of the longest texts; its peak."""
        import torch

        loss = self.losses.get(loss_name)
        if loss is None:
            loss = self.losses[loss_name] = self.build_loss(self.model, loss_name, None)
        batch = longest(self.columns, rows)
        features = [self._features(texts) for name, texts in batch.items() if name != "score"]
        labels = (
            torch.tensor(batch["score"], dtype=torch.float, device=self.device) if "score" in batch else None
        )

        def run():
            loss(features, labels).backward()

        return self._measured(run, {"loss": loss_name, "rows": rows} if record else None)

    def mini_batch(self, size: int) -> int:
        """What one mini-batch of a cached loss holds at its peak: the forward and backward pass of
        ``size`` of the longest documents (the cache of the whole batch's embeddings is a few MB)."""
        name = self._document_column()
        features = self._features(longest({name: self.columns[name]}, size)[name])

        def run():
            self.model(features)["sentence_embedding"].sum().backward()

        return self._measured(run, {"mini_batch_of": name, "texts": size})

    def encode(self, size: int) -> int:
        """The peak of encoding ``size`` of the longest documents without gradients (the dev evaluation)."""
        import torch

        name = self._document_column()
        features = self._features(longest({name: self.columns[name]}, size)[name])
        self.model.eval()
        try:
            with torch.no_grad():
                return self._measured(lambda: self.model(features), {"encode": name, "texts": size})
        finally:
            self.model.train()

    def _document_column(self) -> str:
        documents = [k for k in self.columns if k not in ("anchor", "sentence1", "score")]
        return documents[0] if documents else next(iter(self.columns))

    def close(self) -> None:
        self.model = self.optimizer = self.losses = None
        release_freed()
