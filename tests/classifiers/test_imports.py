"""scikit-learn (about 1.2 s of imports, and its memory) loads only where a model is trained or
used: not when a process starts (django.setup, as every worker and command does) nor when the
web server loads its URLs, and the plain types come from types.py without it."""

import subprocess
import sys

from tests.processes import ROOT, manage_env

CHECK = """
import sys
import django
django.setup()
at_setup = sorted(m for m in sys.modules if m.split(".")[0] == "sklearn")
import orchcap.urls
at_urls = sorted(m for m in sys.modules if m.split(".")[0] == "sklearn")
from apps.classifiers.types import CaseInput, Prediction
CaseInput({"amount": 1})
at_types = sorted(m for m in sys.modules if m.split(".")[0] == "sklearn")
from apps.classifiers import learning
print(len(at_setup), len(at_urls), len(at_types), "sklearn" in sys.modules)
print(learning.Prediction is Prediction, learning.CaseInput is CaseInput)
"""


def test_starting_a_process_and_loading_the_urls_import_no_scikit_learn():
    done = subprocess.run(
        [sys.executable, "-c", CHECK],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env=manage_env(DJANGO_SETTINGS_MODULE="orchcap.settings"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    counts, same = done.stdout.strip().splitlines()[-2:]
    # None before the learning code itself is imported; then it is there.
    assert counts == "0 0 0 True"
    # learning.py still offers the types it always had (the same classes).
    assert same == "True True"
