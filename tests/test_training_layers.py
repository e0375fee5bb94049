"""The training modules keep to their layers: data and initializers know no stage, the
rules and the optimizers no pipeline, and prediction reaches the pipeline only through
the program it is given (no import cycle program -> predict -> pipeline -> program)."""

import pytest
from test_import_layers import PACKAGE, imported_modules

NEVER = {
    "init.py": ["lower", "passes", "differentiate", "schedule", "pipeline", "program", "functional", "builder"],
    "datasets": ["lower", "passes", "differentiate", "schedule", "pipeline", "program", "functional", "builder"],
    "update_rule.py": ["pipeline", "program", "differentiate", "passes", "functional", "builder", "cli"],
    "optim.py": ["pipeline", "program", "differentiate", "passes", "functional", "builder", "cli"],
    "step.py": ["pipeline", "program", "cli", "train_command"],
    "predict.py": ["pipeline", "program", "cli", "train_command"],
    "weights.py": ["pipeline", "program", "lower", "cli"],
    "training.py": ["cli", "train_command"],
}


@pytest.mark.parametrize("key", sorted(NEVER))
def test_training_modules_import_nothing_above_them(key):
    target = PACKAGE / key
    for path in sorted(target.glob("*.py")) if target.is_dir() else [target]:
        imported = imported_modules(path)
        hits = sorted(m for m in imported for bad in NEVER[key] if m == bad or m.startswith(bad + "/"))
        assert not hits, f"{path.relative_to(PACKAGE)} imports {hits}"
