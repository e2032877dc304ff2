"""A local emulator of Wistia's Upload API and a subset of its Data API, for tests.

See README.md next to this file.
"""

from wistia_emulator.control import EmulatorControl, EmulatorControlError
from wistia_emulator.faults import Fault
from wistia_emulator.server import WistiaEmulator

__all__ = ["EmulatorControl", "EmulatorControlError", "Fault", "WistiaEmulator"]
