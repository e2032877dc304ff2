"""`make figures`: copy the results files' tables into the README."""

from __future__ import annotations

from figures import README, sync

if __name__ == "__main__":
    print(f"{README.name}: {'updated' if sync() else 'already up to date'}")
