"""promtool, from Debian's ``prometheus`` package (``.ci/run`` installs it when root)."""

import shutil
import subprocess
from pathlib import Path

import pytest

from recsys.platform.settings import PROJECT_ROOT

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not on PATH (Debian: apt-get install prometheus)")


def promtool(*args: str, cwd: Path = PROJECT_ROOT) -> tuple[int, str]:
    """Exit code and combined output of ``promtool *args``."""
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)
    return done.returncode, done.stdout + done.stderr
