"""The pytest plugin registered under the `pytest11` entry point; it provides nothing yet."""

from __future__ import annotations
