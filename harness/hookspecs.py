"""Every hook the harness calls, in one place, grouped by phase.

A plugin is a module (or object) with functions named after these hooks. Any function whose
name starts with ``harness_`` is taken as a hook implementation, so a misspelled hook name is an
error when the plugin is loaded, not a silent no-op. Plugins may take any subset of a hook's
arguments, by name.

Built-in behaviour (the ``beir`` and ``jsonl`` pair sources, the ``retrieval`` evaluator, the
loss catalogue, the offline model resolver and the terminal reporter) is implemented with these
same hooks in ``harness/builtin/``.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("harness")


# --- registration: called once, when the plugin manager is set up ---------------------------


@hookspec
def harness_register_pair_sources(register):
    """Register pair sources: how a domain's data becomes corpus, queries and relevance.

    :param register: ``register(source)`` where ``source`` is a :class:`harness.api.PairSource`
        instance. Its ``name`` is what a suite's ``[data].source`` names. Registering a name twice
        (from two plugins) is an error that names both plugins.
    """


@hookspec
def harness_register_evaluators(register):
    """Register evaluators: how a candidate's quality is measured.

    :param register: ``register(evaluator)`` with a :class:`harness.api.Evaluator` instance, named
        by ``[evaluation].evaluators`` in a suite.
    """


@hookspec
def harness_register_losses(register):
    """Register training losses.

    :param register: ``register(loss)`` with a :class:`harness.api.LossSpec`, named by
        ``[[losses]].type`` in a suite.
    """


# --- models ----------------------------------------------------------------------------------


@hookspec(firstresult=True)
def harness_resolve_model(name, revision, misses):
    """Turn a model name (a hub id or a path) into a local sentence-transformers folder.

    :param name: the ``[[models]].base`` string of the suite.
    :param revision: ``[[models]].revision`` or ``None``.
    :param misses: a list; a resolver that does not answer appends a :class:`harness.api.ResolveMiss`
        saying why (no such folder, download failed, ...). When no resolver answers, the error
        lists them all. A resolver may leave this argument out of its signature.
    :return: a :class:`harness.api.ResolvedModel`, or ``None`` to let the next resolver try.
        The first non-``None`` answer wins. Raise :class:`harness.errors.HarnessError` to stop
        with a message.
    """


# --- run lifecycle ---------------------------------------------------------------------------


@hookspec
def harness_sessionstart(session):
    """Called once before any suite runs.

    :param session: the :class:`harness.run.session.Session`: ``session.suites`` (the loaded suites),
        ``session.device``, ``session.out_dir``, ``session.options`` (the run's
        :class:`harness.run.options.RunOptions`), ``session.executor`` (``.kind``: local or ray).
    """


@hookspec
def harness_collection_finish(session, items):
    """Called once all suites are collected, before any data is loaded or model trained.

    :param items: list of :class:`harness.suite.collect.Item` (one per baseline or candidate), in run order.
    """


@hookspec
def harness_data_ready(suite, data):
    """Called when a suite's data is loaded, cleaned and split, before anything is trained (and by
    ``harness data``).

    :param suite: the :class:`harness.suite.schema.Suite`.
    :param data: the :class:`harness.data.prepare.Prepared` data: ``stats()`` (split sizes),
        ``cleaning`` (what :mod:`harness.data.cleaning` changed or found), ``split_info`` (how
        the source made the test split, when it did), ``warnings``.
    """


@hookspec
def harness_candidate_start(item):
    """Called before a baseline or candidate starts (data loaded, nothing trained yet)."""


@hookspec
def harness_candidate_progress(item, stage, info):
    """Called as a baseline or candidate moves through its stages, for progress displays.

    :param stage: ``"epoch"`` (after each training epoch; ``info`` has ``epoch``, ``loss`` and,
        with a dev split, ``dev_<primary metric>``), ``"trained"`` (``seconds``, ``pairs``),
        ``"exported"`` (``variant``, ``min_cosine``, ``provider``) or ``"evaluated"`` (``variant``,
        ``seconds``, ``docs_per_s``), once per export variant; ``"resumed"`` (``run``) when ``--resume``
        re-uses a finished result. With the training choices of a suite: ``"student"`` (``layers``,
        ``of``) when a layer-reduced student is made, ``"distilled"`` (``teacher``, ``texts``, ``epochs``,
        ``loss``, ``seconds``) after its distillation, ``"mined"`` (the hard-negative
        statistics, see :mod:`harness.data.mining`), ``"trial"`` (``index``, ``of``, ``setting``; ``search``
        true in a ``[search]``) before each grid setting or search trial trains, ``"trial_end"`` after
        each search trial (its record: ``state`` complete, pruned or failed, ``dev_score``, ``seconds``,
        ``memory``, ``note`` or ``error``), ``"chosen"`` (``setting``, ``dev_score``, ``of``), ``"seed"``
        (``seed``, ``dev_score`` and the test primary metric) after each seed is evaluated, ``"refit"``
        (``epochs``, ``pairs``) before a refit on train + dev (``training.refit``), ``"curve"``
        (``fraction``, ``pairs``, ``dev_score``) per learning-curve point, ``"memory"`` before each
        training's first step (the memory plan of :mod:`harness.train.memory`: ``limit``,
        ``limit_from``, ``loss``, ``mini_batch_size``, ``gradient_checkpointing``, ``predicted_peak``,
        ``changed``, ``probes``; ``"trained"`` then carries it as ``memory``, with the measured
        ``peak``). ``"trained"`` and
        ``"evaluated"`` carry ``resumed: True`` when they re-used a finished step. The stages are
        declared in :class:`harness.core.names.Stage` (a ``str`` enumeration: compare with strings).
    """


@hookspec
def harness_candidate_report(item, result):
    """Called when a baseline or candidate is done.

    :param result: the candidate's entry in ``results.json`` (a plain dict: ``name``,
        ``base_model``, ``baseline``, ``status``, ``metrics``, ``gates``, ``encoder`` ...).
    """


@hookspec
def harness_reference_report(suite, reference):
    """Called when a suite's bm25 reference has been evaluated, before any candidate.

    :param suite: the :class:`harness.suite.schema.Suite`.
    :param reference: ``{name, type, settings, metrics, seconds}`` (or ``error``) as results.json
        ``references`` holds it.
    """


@hookspec
def harness_warning(message, item):
    """Called for a warning a user should see (``item`` is ``None`` for suite-wide warnings)."""


@hookspec
def harness_sessionfinish(session, exit_code, summary):
    """Called once at the end, also after an interruption or an internal error.

    :param exit_code: the :class:`harness.exitcodes.ExitCode` the command is about to return.
    :param summary: dict with ``passed``, ``failed``, ``error`` (candidates), ``interrupted``, ``baselines``,
        ``baseline_errors``, ``seconds`` and
        ``runs`` (one ``{"suite", "dir"}`` per suite run).
    """
