"""``--lf`` (and ``--sw``) without a storage: rerun what failed, keep what passed, and judge them together.

A single-process ``pytest --tune`` keeps each spec's study in a journal file in pytest's cache. A rerun with
``--lf`` starts a new journal holding the previous run's records *except* those of the configs whose tests run
again (pytest selected them because they failed or errored): those are measured anew, the others are not
measured again, and the verdict still sees all of them. Which config a ``trial-k`` test measured is remembered
in the cache (``autotuner/configs``), since a sampled test has no config until it runs.

pytest selects those tests by node id, so a tuning test's id must read back from pytest's cache as the same id
it was stored under, in every pytest version: see ``child_nodeid``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ..storage import open_storage
from ..study import RECORD_ATTR

CACHE_KEY = "autotuner/configs"  # nodeid -> config hash the test measured, from the previous run


def child_nodeid(parent_nodeid: str, name: str) -> str:
    """The node id of the tuning test ``name`` under its spec file, given to pytest as a string on purpose.

    Since pytest 9.2 a node id is a structured ``NodeId`` (path, names, and the ``[...]`` params), and ``--lf``
    matches the failures it cached as strings by parsing them back with ``NodeId.parse``. A child built the
    default way keeps ``sim[baseline]`` as one name without params, while ``...::sim[baseline]`` parses into
    the name ``sim`` with params ``baseline``: the two never compare equal, so ``--lf`` found none of the
    previous failures, ran every test, and a test that passed again never left the cache's failures (``--sw``
    compares its cached failure the same way). Passing the id as a string makes pytest parse it the same way
    as the cache, so both sides agree; before 9.2 ids are plain strings and this is exactly the id pytest
    builds itself. Upstream: pytest-dev/pytest#15045 (open when 9.2.0 was the latest release).
    """
    return f"{parent_nodeid}::{name}"


def carry_over(previous: Path, current: Path, drop: set[str]) -> int:
    """Fill a fresh journal ``current`` with ``previous``'s measured trials whose config is not in ``drop``.

    Each kept record is renumbered to its new trial number, so that numbers stay unique when the dropped
    configs are measured again (results refer to trials by number).
    """
    current.unlink(missing_ok=True)
    if not previous.exists():
        return 0
    old_storage = open_storage(f"journal:{previous}")
    new_storage = open_storage(f"journal:{current}")
    assert old_storage is not None and new_storage is not None
    kept = 0
    for name in optuna.get_all_study_names(old_storage):
        old = optuna.load_study(study_name=name, storage=old_storage)
        new = optuna.create_study(study_name=name, storage=new_storage, directions=old.directions)
        for frozen in old.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
            record = frozen.user_attrs.get(RECORD_ATTR)
            if not isinstance(record, dict) or record.get("config_hash") in drop:
                continue
            trial = copy.deepcopy(frozen)
            renumbered = dict(record, number=len(new.get_trials(deepcopy=False)))
            trial.set_user_attr(RECORD_ATTR, renumbered)
            new.add_trial(trial)
            kept += 1
    return kept
