"""Optional features and the install extras that provide them.

The base install (``pip install hrface``) runs the shipped models on the CPU with ONNX Runtime.  Other
features need an extra; :func:`require` imports a module of one and, when it is missing, raises a
one-line :class:`MissingExtraError` that names the extra to install.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from .errors import ConfigError

EXTRAS: dict[str, str] = {
    "torch": "the PyTorch backend, published .pth checkpoints, export, training and create_model",
    "plot": "plots (CED, precision-recall and training curves) drawn with matplotlib",
    "eval": "MATLAB ground truth (WIDER FACE .mat, COFW) and the detector accuracy benchmark, read with SciPy",
    "ray": "hrface detect --engine ray and hrface.distributed: runs over large image sets on Ray Data (with pyarrow)",
    "serve": "hrface serve: the HTTP API and web page (FastAPI, uvicorn, python-multipart)",
    "all": "every optional feature",
}
"""Install extras (``pip install "hrface[NAME]"``) and what each adds."""


class MissingExtraError(ConfigError):
    """A feature needs a package of an install extra that is not installed."""


def available(module: str) -> bool:
    """Whether ``module`` (a top-level package name such as ``'torch'``) can be imported (a module set to
    ``None`` in ``sys.modules``, as tests block one, counts as missing)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``; raise :class:`MissingExtraError` naming ``extra`` when it is not installed.

    ``feature`` says what needed it, e.g. ``"training"``: the message reads
    ``training needs the hrface[torch] extra (torch is not installed); pip install "hrface[torch]"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or module).split(".")[0]
        raise MissingExtraError(
            f'{feature} needs the hrface[{extra}] extra ({missing} is not installed); pip install "hrface[{extra}]"'
        ) from None
