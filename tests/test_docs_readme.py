"""The README shows the gradient code graphc generates today (docs/make_readme.py --check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_gradient_code_is_fresh():
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "make_readme.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr + "\nrun: python3 docs/make_readme.py"
