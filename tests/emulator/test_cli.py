"""Contract: `python -m wistia_emulator` serves until SIGTERM or SIGINT and exits 0."""

from __future__ import annotations

import signal
import socket
import subprocess

import pytest

from wistia_emulator import EmulatorControl
from wistia_emulator.testing import (
    EmulatorProcess,
    WebhookReceiver,
    cli_command,
    cli_environment,
    import_url,
    json_of,
    mp4_bytes,
    upload_bytes,
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_cli_serves_and_exits_0_on_a_signal(stop_signal: int) -> None:
    port = free_port()
    emulator = EmulatorProcess(
        "--host", "127.0.0.1", "--port", str(port), "--token", "first", "--token", "second",
        "--video-limit", "1", "--error-style", "current", "--processing-delay", "0.01",
    ).start()  # fmt: skip
    try:
        accepted = import_url(emulator.url, "http://127.0.0.1:9/a.mp4", token="second")
        refused = import_url(emulator.url, "http://127.0.0.1:9/b.mp4", token="first")
    finally:
        exit_code = emulator.stop(stop_signal)

    assert emulator.url == f"http://127.0.0.1:{port}/"
    assert accepted.status == 200
    assert refused.status == 400
    assert json_of(refused)["error"]["code"] == "upload_failed"
    assert exit_code == 0
    assert "POST / -> 200" in emulator.stderr_text()  # one log line per request


def test_tokens_rotate_in_a_running_cli_through_control() -> None:
    with EmulatorProcess("--port", "0", "--token", "old", "--quiet") as emulator:
        control = EmulatorControl(emulator.url)
        control.set_tokens("new")

        with_old = import_url(emulator.url, "http://127.0.0.1:9/a.mp4", token="old")
        with_new = import_url(emulator.url, "http://127.0.0.1:9/a.mp4", token="new")

        assert (with_old.status, with_new.status) == (401, 200)
        assert [m["name"] for m in control.medias()] == ["a.mp4"]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])  # noqa: S104
def test_the_cli_refuses_a_non_loopback_host(host: str) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        cli_command("--host", host, "--port", "0"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=cli_environment(),
    )

    assert done.returncode == 2
    assert "not a loopback address" in done.stderr


def test_the_cli_reports_a_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            cli_command("--port", str(port)),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=cli_environment(),
        )

    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_the_cli_sends_signed_webhooks_and_refuses_a_url_without_a_secret() -> None:
    with (
        WebhookReceiver("cli-key") as receiver,
        EmulatorProcess(
            "--port", "0", "--quiet", "--token", "t", "--processing-delay", "0.01",
            "--webhook-url", receiver.url, "--webhook-secret", "cli-key",
            "--webhook-max-batch", "1", "--webhook-batch-window", "0",
        ) as emulator,
    ):  # fmt: skip
        control = EmulatorControl(emulator.url)
        answer = json_of(upload_bytes(emulator.url, "clip.mp4", mp4_bytes(), token="t"))
        assert control.wait_until_settled(5)
        assert control.wait_until_webhooks_delivered(5)

    posts = receiver.received()
    assert all(p.signature_valid for p in posts)
    assert [len(p.payload["events"]) for p in posts] == [1, 1, 1]
    assert [(e["type"], e["payload"]["media"]["id"]) for e in receiver.events()] == [
        ("media.created", answer["hashed_id"]),
        ("media.processing", answer["hashed_id"]),
        ("media.ready", answer["hashed_id"]),
    ]
    unsigned = subprocess.run(  # noqa: S603 - our own interpreter and module
        cli_command("--port", "0", "--webhook-url", receiver.url),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=cli_environment(),
    )
    assert unsigned.returncode == 2
    assert "--webhook-secret" in unsigned.stderr


def test_the_cli_can_accept_any_bytes_as_media() -> None:
    with EmulatorProcess("--port", "0", "--quiet", "--token", "t", "--no-sniff") as emulator:
        upload_bytes(emulator.url, "notes.mp4", b"plain text", token="t")
        control = EmulatorControl(emulator.url)
        assert control.wait_until_settled(5)

        assert [m["status"] for m in control.medias()] == ["ready"]
