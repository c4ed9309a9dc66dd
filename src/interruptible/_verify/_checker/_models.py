"""Loading an environment model of `models/` by file path (the directory is not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Final, cast

from ._world import Model

DEFAULT_MODEL: Final = "models/sequence_runs.py"


def default_model_path() -> Path | None:
    """`models/sequence_runs.py` under the working directory, else under this checkout."""
    return _under_models(DEFAULT_MODEL)


def model_path(name_or_path: Path | str) -> Path:
    """A model file: the path itself, or for a bare name (`two_owners`) `models/NAME.py` under
    the working directory, else under this checkout (the path as given when neither exists)."""
    path = Path(name_or_path)
    if path.is_file() or path.suffix == ".py" or len(path.parts) > 1:
        return path
    return _under_models(f"models/{path}.py") or path


def _under_models(relative: str) -> Path | None:
    here = Path(relative)
    if here.is_file():
        return here
    checkout = Path(__file__).resolve().parents[4] / relative
    return checkout if checkout.is_file() else None


def load_model(path: Path | str) -> Model:
    """The `MODEL` object a model module defines; `ValueError` says what is missing."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no model file {str(path)!r}; pass --model PATH to a models/*.py file")
    name = f"interruptible_model_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{str(path)!r} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    model = getattr(module, "MODEL", None)
    if model is None:
        raise ValueError(f"{str(path)!r} defines no MODEL; add `MODEL = YourModel()` at its end")
    return cast(Model, model)
