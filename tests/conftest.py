"""Shared pytest set-up for graphc's tests."""

import importlib.metadata

# graphc's pytest plugin (the gradcheck fixture): an installed graphc loads it through its pytest11
# entry point; when the tests run from a source tree without installing, load it here instead.
pytest_plugins = [] if any(e.value == "graphc.testing" for e in importlib.metadata.entry_points(group="pytest11")) \
    else ["graphc.testing"]
