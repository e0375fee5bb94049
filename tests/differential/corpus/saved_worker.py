"""Runs saved modules where graphc, sympy and networkx cannot be imported (numpy only).

Started once by ``paths.SavedModules`` (``python -I saved_worker.py``); reads one JSON
request per line ({"module", "feeds", "out", "seed"}), imports the module, runs
``forward(feeds)``, ``value_and_grad(feeds)`` and ``value_and_grad(feeds, seed=seed)``,
writes the arrays to ``out`` (npz) and answers one JSON line of errors.
"""

import importlib.abc
import importlib.util
import json
import sys

BLOCKED = ("graphc", "sympy", "networkx")


class Blocker(importlib.abc.MetaPathFinder):
    """Refuses the packages a saved module must not need."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"the saved module imported {name!r}; it must need numpy only")
        return None


def _load(path: str, count: int):
    spec = importlib.util.spec_from_file_location(f"saved_module_{count}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _serve(request: dict, count: int, numpy) -> dict:
    errors, arrays = {}, {}
    with numpy.load(request["feeds"]) as data:
        feeds = {key.split("/", 1)[1]: data[key] for key in data.files}
    try:
        module = _load(request["module"], count)
    except Exception as error:  # noqa: BLE001 - reported to the parent
        errors["saved import"] = f"{type(error).__name__}: {error}"
        numpy.savez(request["out"])
        return errors
    calls = {
        "saved forward": lambda: ({"value": module.forward(dict(feeds))}),
        "saved": lambda: dict(zip(("value", "grad"), module.value_and_grad(dict(feeds)))),
        "saved(seed)": lambda: dict(zip(("value", "grad"), module.value_and_grad(dict(feeds), seed=request["seed"]))),
    }
    for path, call in calls.items():
        try:
            result = call()
        except Exception as error:  # noqa: BLE001 - reported to the parent
            errors[path] = f"{type(error).__name__}: {error}"
            continue
        for part, values in result.items():
            for name, value in values.items():
                key = f"forward/{name}" if path == "saved forward" else f"{path}/{part}/{name}"
                arrays[key] = numpy.asarray(value)
    numpy.savez(request["out"], **arrays)
    return errors


def main() -> None:
    sys.meta_path.insert(0, Blocker())
    import numpy

    for count, line in enumerate(sys.stdin):
        errors = _serve(json.loads(line), count, numpy)
        sys.stdout.write(json.dumps({"errors": errors}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
