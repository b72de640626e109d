"""Where the repository and the tests' committed data are, for test modules at any depth."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
GERRIT_SAMPLES = DATA / "gerrit-samples"  # verbatim copies of ../shared/gerrit-samples
