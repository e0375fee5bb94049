"""A short, seeded run of the graph-file fuzzer (benchmarks/fuzz_io.py runs it for minutes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import fuzz_io  # noqa: E402


@pytest.mark.parametrize("grammar", ["json", "expr"])
def test_seeded_fuzz_inputs_give_typed_errors_or_results(grammar):
    strategy = fuzz_io.mutated_files() if grammar == "json" else fuzz_io.custom_op_files()
    findings = fuzz_io.Findings()
    seen: list[str] = []
    fuzz_io.fuzz(strategy, seconds=120, findings=findings, examples=60, seed=0, echo=seen.append)
    assert findings.inputs >= 30, findings.summary(1)
    assert findings.typed + findings.results == findings.inputs, "\n".join(seen)
    assert not findings.untyped, "\n".join(seen)
