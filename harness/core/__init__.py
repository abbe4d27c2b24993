"""What every phase may import: the step records, the run's state, the metric catalogue, the
declared names (statuses, stages, variants), what a model folder declares and this machine's CPU.
Nothing here imports a phase (``harness.suite`` ... ``harness.ship``) or the conductor (``harness.run``)."""
