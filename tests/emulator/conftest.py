"""Contract tests of the Wistia emulator, over real HTTP on loopback.

The `wistia_emulator` fixture comes from wistia_emulator.pytest_plugin, registered in
tests/conftest.py; `moto_server` comes from there too.
"""
