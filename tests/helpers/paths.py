"""Where things are, for tests: the repository, its conf/, the real annotations beside it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
TEST_CONF = Path(__file__).resolve().parent / "conf"  # test-only configs (scripted model, mode)
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = ROOT.parent / "shared" / "mediconfusion"
