"""What the trainers' YAML configs share: dataclass building with checked keys and types, file
reading with one-line errors, relative-path resolution, and the common config sections.

A trainer's config is a tree of dataclasses.  :func:`build_config` fills one from a (possibly
partial) nested mapping: missing keys keep their defaults, an unknown key or a value of the wrong
type raises :class:`~hrface.errors.ConfigError` naming it.  :func:`load_yaml_config` reads a YAML
file and hands its mapping, with the file's folder (to resolve relative paths against), to the
trainer's ``from_dict`` function.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError, one_line

T = TypeVar("T")


@dataclass
class SourceSpec:
    """One annotation source: ``format`` (a key of the trainer's reader registry), its ``path``
    (folder or file), optionally the folder its image paths are relative to, and reader-specific
    ``options`` (e.g. ``{one_based: true}``), passed on by the registered reader."""

    format: str
    path: str
    image_root: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerConfig:
    """``name`` 'adam' or 'sgd' (``momentum`` only for SGD)."""

    name: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.0


@dataclass
class ScheduleConfig:
    """Epochs and the step schedule: the lr is multiplied by ``lr_factor`` at each epoch in ``lr_steps``.
    The last ``frozen_bn_epochs`` epochs train with every BatchNorm in eval mode: its running statistics
    stay fixed and normalise as at inference, while its scale and shift still learn."""

    epochs: int = 60
    lr_steps: list[int] = field(default_factory=lambda: [30, 50])
    lr_factor: float = 0.1
    frozen_bn_epochs: int = 0


PRECISIONS = ("auto", "bf16", "fp32")


def training_checks(config: Any) -> list[tuple[bool, str]]:
    """``(ok, message)`` checks of the fields every trainer config has: ``optimizer``, ``schedule``,
    ``batch_size``, ``workers``, ``threads``, ``seed``, ``eval_every``, ``precision`` and ``ema_decay``."""
    c = config
    return [
        (c.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {c.precision!r}"),
        (c.optimizer.name in ("adam", "sgd"), f"optimizer.name must be 'adam' or 'sgd', got {c.optimizer.name!r}"),
        (c.optimizer.lr > 0, "optimizer.lr must be positive"),
        (c.schedule.epochs > 0, "schedule.epochs must be positive"),
        (
            0 <= c.schedule.frozen_bn_epochs < c.schedule.epochs,
            "schedule.frozen_bn_epochs must be in [0, epochs) (the first epoch learns the statistics)",
        ),
        (
            c.batch_size > 0 and c.workers >= 0 and c.seed >= 0 and c.eval_every > 0,
            "batch_size and eval_every must be positive, workers and seed non-negative",
        ),
        (0 <= c.ema_decay < 1, "ema_decay must be in [0, 1) (0 = off)"),
        (c.threads >= 0, f"threads must be non-negative (0: torch's default), got {c.threads}"),
    ]


def raise_failed(checks: list[tuple[bool, str]]) -> None:
    """Raise :class:`ConfigError` with the message of the first failed check."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"invalid training config: {message}")


def resolve_path(base: str | os.PathLike[str], path: str | None) -> str | None:
    """``path`` (``~`` expanded) relative to ``base`` unless absolute, normalised; None stays None."""
    return None if path is None else os.path.normpath(Path(base) / Path(path).expanduser())


def resolve_sources(base: str | os.PathLike[str], specs: list[SourceSpec]) -> None:
    """Resolve the ``path`` and ``image_root`` of each source against ``base``, in place."""
    for spec in specs:
        spec.path = resolve_path(base, spec.path) or spec.path
        spec.image_root = resolve_path(base, spec.image_root)


def config_from_mapping(
    cls: type[T],
    data: dict[str, Any] | None,
    base_dir: str | os.PathLike[str] | None = None,
    paths: Sequence[str] = (),
    sources: Sequence[str] = (),
) -> T:
    """Build config dataclass ``cls`` from a nested mapping (:func:`build_config`); with ``base_dir``,
    resolve the relative paths of the dotted fields ``paths`` (e.g. ``'data.split_file'``) and of
    the :class:`SourceSpec` lists ``sources`` (e.g. ``'data.train'``) against it."""
    config = build_config(cls, data or {})
    if base_dir is not None:
        for key in sources:
            resolve_sources(base_dir, _field(config, key))
        for key in paths:
            *parents, name = key.split(".")
            owner = _field(config, ".".join(parents)) if parents else config
            setattr(owner, name, resolve_path(base_dir, getattr(owner, name)))
    return config


def _field(config: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        config = getattr(config, name)
    return config


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict (str / int / float / bool / None / list / dict only: safe for ``weights_only``)."""
    return dataclasses.asdict(config)


def load_yaml_config(
    path: str | os.PathLike[str],
    from_dict: Callable[[dict[str, Any] | None, Path], T],
    overrides: Sequence[str] = (),
) -> T:
    """Read a YAML config file and build it with ``from_dict(mapping, folder of the file)``.

    ``overrides`` are ``'dotted.key=VALUE'`` strings (VALUE parsed as YAML) set in the mapping before
    it is built, so they are checked and resolved like the file's own values (``loss=awing``,
    ``augmentation.rotation=45``, ``schedule.lr_steps=[4]``).

    Every problem (unreadable file, bad YAML, not a mapping, a bad key) is a :class:`ConfigError`
    with a one-line message starting with the file's path.
    """
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({one_line(exc)})") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{p}: the config must be a mapping of keys, got {type(data).__name__}")
    data = data or {}
    for text in overrides:
        set_dotted(data, text)
    try:
        return from_dict(data, p.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def set_dotted(data: dict[str, Any], assignment: str) -> None:
    """Apply one ``'a.b.c=VALUE'`` override to a nested mapping (VALUE parsed as YAML; missing sections are
    created); :class:`ConfigError` for text without ``=`` or a key path through a non-mapping."""
    import yaml

    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {assignment!r} must look like KEY=VALUE, e.g. loss=awing")
    *parents, name = key.strip().split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {assignment!r}: {part!r} is not a section")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {assignment!r}: the value is not valid YAML ({one_line(exc)})") from None
    node[name] = _number_or_text(value)


def _number_or_text(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as text; on the command line it means the number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def build_config(cls: type[T], data: Any, where: str = "") -> T:
    """Recursively build dataclass ``cls`` from a mapping, checking keys and value types.

    ``where`` prefixes key names in error messages (``'data.'`` for a nested section).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(f"unknown config key {where}{unknown[0]!r}; known keys here: {', '.join(sorted(names))}")
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init
        and f.name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if required:
        raise ConfigError(f"config key {where}{required[0]!r} is required")
    kwargs = {k: _convert(hints[k], v, f"{where}{k}") for k, v in data.items()}
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, where)
    if dataclasses.is_dataclass(tp):
        return build_config(tp, value, f"{where}.")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {where!r} must be a mapping, got {value!r}")
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config key {where!r} must be a list, got {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(tp, True)
    if not ok:
        raise ConfigError(f"config key {where!r} must be {tp.__name__}, got {value!r}")
    return float(value) if tp is float else value
