"""A local emulator of Wistia's Upload API, a subset of its Data API and its webhooks, for
tests.

See README.md next to this file.
"""

from wistia_emulator.control import EmulatorControl, EmulatorControlError
from wistia_emulator.faults import Fault
from wistia_emulator.server import WistiaEmulator
from wistia_emulator.state import TOKEN_RIGHTS
from wistia_emulator.webhooks import WebhookDelivery

__all__ = [
    "TOKEN_RIGHTS",
    "EmulatorControl",
    "EmulatorControlError",
    "Fault",
    "WebhookDelivery",
    "WistiaEmulator",
]
