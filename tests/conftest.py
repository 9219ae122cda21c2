"""Shared pytest set-up. Fixtures for real servers live in tests/support/, one module each."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
