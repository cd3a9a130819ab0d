"""The search space: candidate configs, their stable ids, grid enumeration and Optuna distributions.

A ``Config`` is what one trial launches: parameter name -> typed value. Its id is derived from its content only
(sorted names, typed values), so the same config gets the same id on every run and every machine; that is what
lets a resumed study, a baseline file and a PR comment talk about "the same config".
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .constraint import Constraint, ConstraintError, parse_constraint
from .spec.models import Choice, Range, Scalar, TuningSpec

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

# A grid bigger than this is not enumerated up front (sampled strategies draw from it instead).
MAX_ENUMERATION = 200_000


def format_value(value: Scalar) -> str:
    """How a value reads in a config id: ``true``, ``4``, ``0.5``, ``1.0`` (a float stays visibly a float).

    Control and formatting characters in strings are escaped (``\\n``, ``\\x1b``): ids are printed in progress
    lines and CI logs, where a raw newline followed by ``::error::`` would be obeyed as a workflow command."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    return text if text.isprintable() else repr(text)[1:-1]


def _canonical(value: Scalar) -> list[str]:
    """The hashed form: the raw string for strings, so escaping what is shown never changes a config's hash."""
    kind = {bool: "b", int: "i", float: "f", str: "s"}[type(value)]
    return [kind, value if isinstance(value, str) else format_value(value)]


@dataclass(frozen=True)
class Config:
    """One candidate configuration; immutable, hashable, with a readable id and a short content hash."""

    values: tuple[tuple[str, Scalar], ...]

    @classmethod
    def of(cls, mapping: Mapping[str, Scalar]) -> Config:
        return cls(tuple(sorted(mapping.items())))

    def as_dict(self) -> dict[str, Scalar]:
        return dict(self.values)

    @property
    def id(self) -> str:
        """Readable: ``n-parallel=2,threads=1`` (names sorted); ``default`` for the empty config."""
        return ",".join(f"{name}={format_value(value)}" for name, value in self.values) or "default"

    @property
    def hash(self) -> str:
        """Ten hex digits of SHA-256 over the typed, sorted content: ``1`` and ``1.0`` and ``"1"`` differ."""
        payload = json.dumps([[name, *_canonical(value)] for name, value in self.values], separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:10]

    def __str__(self) -> str:
        return self.id


def range_values(dimension: Range) -> list[int | float] | None:
    """The grid points of a range, or None for a continuous one. Decimal arithmetic keeps 0.1 steps exact."""
    if dimension.is_int:
        return list(range(int(dimension.low), int(dimension.high) + 1, int(dimension.step or 1)))
    if dimension.step is None:
        return None
    low, high, step = (Decimal(repr(float(v))) for v in (dimension.low, dimension.high, dimension.step))
    count = int((high - low) / step) + 1
    return [float(low + step * index) for index in range(count)]


def dimension_values(dimension: Choice | Range) -> list[Scalar] | None:
    if isinstance(dimension, Choice):
        return list(dimension.values)
    values = range_values(dimension)
    return None if values is None else list(values)


@dataclass(frozen=True)
class GridCount:
    """How many configs a finite space holds before and after constraints (``None`` after = not enumerated)."""

    total: int
    feasible: int | None


@dataclass
class Space:
    """Dimensions + constraints of one spec. Constraints may also read the spec's fixed engine args."""

    dimensions: dict[str, Choice | Range]
    constraints: list[Constraint] = field(default_factory=list)
    fixed: dict[str, Scalar] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: TuningSpec) -> Space:
        """Build the space; raises ``ConstraintError`` (with the constraint's index in ``args[1]``) on a bad one."""
        fixed = {name: value for name, value in spec.engine.args.items() if not isinstance(value, list)}
        names = list(spec.parameters) + [name for name in fixed if name not in spec.parameters]
        constraints = []
        for index, text in enumerate(spec.constraints):
            try:
                constraints.append(parse_constraint(text, names))
            except ConstraintError as exc:
                raise ConstraintError(str(exc), index) from None
        return cls(dict(spec.parameters), constraints, fixed)

    # ------------------------------------------------------------------ finite grids
    @property
    def continuous(self) -> list[str]:
        """Names of dimensions that cannot be enumerated (float ranges without a step)."""
        return [name for name, dim in self.dimensions.items() if dimension_values(dim) is None]

    @property
    def is_finite(self) -> bool:
        return not self.continuous

    def grid_total(self) -> int | None:
        """Configs in the grid before constraints; None when the space is continuous."""
        if not self.is_finite:
            return None
        return math.prod(len(dimension_values(dim) or []) for dim in self.dimensions.values())

    def satisfies(self, config: Config | Mapping[str, Scalar]) -> bool:
        values = config.as_dict() if isinstance(config, Config) else dict(config)
        env = {**self.fixed, **values}
        return all(c.holds(env) for c in self.constraints if c.names <= env.keys())

    def violated(self, config: Config | Mapping[str, Scalar]) -> list[Constraint]:
        values = config.as_dict() if isinstance(config, Config) else dict(config)
        env = {**self.fixed, **values}
        return [c for c in self.constraints if c.names <= env.keys() and not c.holds(env)]

    def grid(self) -> Iterator[Config]:
        """Every config of a finite space that satisfies the constraints, in a deterministic order."""
        if not self.is_finite:
            raise ValueError(f"the space is continuous in {', '.join(self.continuous)}: it has no grid")
        names = sorted(self.dimensions)
        axes = [dimension_values(self.dimensions[name]) or [] for name in names]
        for combo in itertools.product(*axes):
            config = Config(tuple(zip(names, combo, strict=True)))
            if self.satisfies(config):
                yield config

    def count(self, limit: int = MAX_ENUMERATION) -> GridCount | None:
        """Sizes of a finite space; ``feasible`` is None when the grid is too big to enumerate."""
        total = self.grid_total()
        if total is None:
            return None
        if not self.constraints:
            return GridCount(total, total)
        if total > limit:
            return GridCount(total, None)
        return GridCount(total, sum(1 for _ in self.grid()))

    def contains(self, config: Config) -> bool:
        """True when every value lies in its dimension's domain (constraints aside)."""
        values = config.as_dict()
        if values.keys() != self.dimensions.keys():
            return False
        for name, dim in self.dimensions.items():
            value = values[name]
            if isinstance(dim, Choice):
                if not any(type(v) is type(value) and v == value for v in dim.values):
                    return False
            else:
                grid = range_values(dim)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    return False
                if grid is not None and value not in grid:
                    return False
                if not dim.low <= value <= dim.high:
                    return False
        return True

    # ------------------------------------------------------------------ optuna
    def distributions(self) -> dict[str, BaseDistribution]:
        """Optuna distributions, one per dimension.

        Optuna refuses a log scale with a step > 1, yet ``{low: 256, high: 2048, step: 256, log: true}`` is how
        people describe batch sizes. Such a dimension is sampled as its grid index k (1-based, log scale) and
        mapped back by ``config_from_params``: value = low + (k - 1) * step.
        """
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        result: dict[str, BaseDistribution] = {}
        for name, dim in self.dimensions.items():
            if isinstance(dim, Choice):
                result[name] = CategoricalDistribution(list(dim.values))
                continue
            grid = range_values(dim)
            if dim.log and dim.step is not None and dim.step != 1 and grid is not None:
                result[name] = IntDistribution(1, len(grid), log=True)
            elif dim.is_int:
                step = int(dim.step or 1)
                assert grid is not None
                result[name] = IntDistribution(int(dim.low), int(grid[-1]), step=step, log=dim.log and step == 1)
            elif grid is not None:
                result[name] = FloatDistribution(float(dim.low), float(grid[-1]), step=float(dim.step or 0))
            else:
                result[name] = FloatDistribution(float(dim.low), float(dim.high), log=dim.log)
        return result

    def indexed(self, name: str) -> bool:
        """True when Optuna samples this dimension as a grid index (see ``distributions``)."""
        dim = self.dimensions[name]
        return isinstance(dim, Range) and dim.log and dim.step is not None and dim.step != 1

    def config_from_params(self, params: Mapping[str, Any]) -> Config:
        """Optuna's trial params -> Config (undoing the index mapping; keeping each dimension's value type)."""
        values: dict[str, Scalar] = {}
        for name, dim in self.dimensions.items():
            raw = params[name]
            if self.indexed(name):
                grid = range_values(dim)  # type: ignore[arg-type]
                assert grid is not None
                raw = grid[int(raw) - 1]
            elif isinstance(dim, Range) and not dim.is_int:
                raw = float(raw)
            values[name] = raw
        return Config.of(values)

    def params_from_config(self, config: Config) -> dict[str, Any]:
        """Config -> Optuna params, the inverse of ``config_from_params`` (to enqueue or add known trials)."""
        params: dict[str, Any] = {}
        for name, value in config.values:
            if self.indexed(name):
                grid = range_values(self.dimensions[name])  # type: ignore[arg-type]
                assert grid is not None
                params[name] = grid.index(value) + 1  # type: ignore[arg-type]
            else:
                params[name] = value
        return params


# ``auto`` measures a grid whole only up to this size: beyond it TPE reaches a near-best config in far fewer trials
# than any fixed order (and still measures every config when the budget allows it: see Study.measure_next).
SMALL_GRID = 16


def planned_strategy(strategy: str, *, multi_objective: bool, feasible: int | None, max_trials: int | None) -> str:
    """What ``auto`` becomes: a small grid (``SMALL_GRID``) that fits the budget, else TPE (NSGA-II for several
    objectives).

    ``feasible`` is the number of grid configs that satisfy the constraints (None: continuous or too large).
    """
    if strategy != "auto":
        return strategy
    if feasible is not None and feasible <= SMALL_GRID and (max_trials is None or feasible <= max_trials):
        return "grid"
    return "nsga2" if multi_objective else "tpe"
