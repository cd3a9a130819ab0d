"""``autotuner.wording`` and the headlines that use it: a large tie-set is counted, not spelled out in one line."""

from __future__ import annotations

import pytest

from autotuner.estimates import tie_summary
from autotuner.results import RankingRecord
from autotuner.wording import few


def test_few_names_up_to_three_and_counts_the_rest() -> None:
    assert few([]) == ""
    assert few(["a"]) == "a"
    assert few(["a", "b"]) == "a and b"
    assert few(["a", "b", "c"]) == "a, b and c"
    assert few(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more"
    assert few(["a", "b", "c"], limit=1) == "a and 2 more"
    with pytest.raises(ValueError):
        few(["a"], limit=0)


def _ranking(tied: int) -> RankingRecord:
    hashes = [f"h{i}" for i in range(tied + 1)]
    estimates = [
        {
            "config_hash": h,
            "config_id": f"n-batch={256 * (i + 1)}",
            "trials": [i],
            "values": [100.0 - i],
            "mean": 100.0 - i,
            "interval": {
                "estimate": 100.0 - i,
                "low": 90.0 - i,
                "high": 110.0 - i,
                "confidence": 0.95,
                "n": 1,
                "method": "prior-cv",
            },
        }
        for i, h in enumerate(hashes)
    ]
    return RankingRecord.model_validate(
        {
            "best": "h0",
            "leader": "h0",
            "tie_set": hashes,
            "separated": tied == 0,
            "confidence": 0.95,
            "rule": "difference",
            "tie_break": "the better mean",
            "estimates": estimates,
        }
    )


def test_a_tie_set_of_twenty_is_counted_in_the_summary_line() -> None:
    """One recording pass of the CPU default tied 20 configs with its best: the line named all 20."""
    text = tie_summary(_ranking(20))
    assert text == "best: n-batch=256; n-batch=512, n-batch=768, n-batch=1024 and 17 more are within noise of it"
    assert tie_summary(_ranking(2)) == "best: n-batch=256; n-batch=512 and n-batch=768 are within noise of it"
    assert tie_summary(_ranking(1)) == "best: n-batch=256; n-batch=512 is within noise of it"
