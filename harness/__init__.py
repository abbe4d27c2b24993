"""embedding-harness: fine-tune embedding models on a domain, export them to ONNX, gate releases.

Plugins use ``harness.hookimpl`` to mark hook functions (optional: any function named
``harness_*`` in a plugin module is a hook implementation) and the types in ``harness.api``.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("harness")

__all__ = ["hookimpl", "__version__"]
