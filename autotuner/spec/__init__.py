"""Tuning specs: the YAML format, its typed model, and parsing with located errors.

Load specs through ``autotuner.validation.load_specs``, which also runs the checks that need the search space.
"""

from .loader import parse_spec_text
from .models import (
    SLO,
    Choice,
    Engine,
    ErrorRateSLO,
    LatencySLO,
    Model,
    ObjectiveTerm,
    Range,
    RateSLO,
    Regression,
    Search,
    TuningSpec,
    Workload,
)
from .problems import SpecError, SpecProblem

__all__ = [
    "SLO",
    "Choice",
    "Engine",
    "ErrorRateSLO",
    "LatencySLO",
    "Model",
    "ObjectiveTerm",
    "Range",
    "RateSLO",
    "Regression",
    "Search",
    "SpecError",
    "SpecProblem",
    "TuningSpec",
    "Workload",
    "parse_spec_text",
]
