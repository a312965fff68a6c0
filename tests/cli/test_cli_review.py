"""The command line as an outside review found it: tracebacks, ``serve --port``, missing
help, epoch times, a slow ``--help``, no way to keep the KEK out of the data directory.

Every failure must print exactly one line on stderr, ``qrgate: error: <what>``, exit non-zero
(1 operational, 2 usage, 70 internal) and never show a traceback. The bad-environment,
dead-server and ``serve`` cases run the real entry point in a subprocess.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from qrgate import keystore
from qrgate.cli.main import cli, main
from qrgate.cli.output import utc_time
from qrgate.clients.relying_party import QrgateClient
from qrgate.config import INTEGER_RANGES, Settings
from qrgate.core.enrolment import read_enrol_code
from qrgate.core.keyring import PublicKeySet
from qrgate.errors import InvalidField
from support.serving import (
    QRGATE,
    clean_env,
    free_port,
    one_error_line,
    run_qrgate,
    wait_until_serving,
)
from support.stack import PASSWORD, Stack

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, prog_name="qrgate")


def failed(result: Result, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    return one_error_line(result.stderr, result.stdout)


# --- 1. no traceback, ever -----------------------------------------------------------------


@pytest.fixture
def phone_state(stack: Stack, tmp_path: Path) -> Path:
    """A phone bound to alice through the command line."""
    stack.rt.clock = time.time  # the CLI phone signs and verifies on the real clock
    state = tmp_path / "phone.json"
    code = stack.rp.start_enrolment("alice")["code"]
    result = invoke("phone", "enrol", code, "--server", stack.base_url, "--password", PASSWORD,
                    "--state", str(state))
    assert result.exit_code == 0, result.output
    return state


def test_review_14_phone_scan_expired_code_prints_one_line(
    stack: Stack, phone_state: Path
) -> None:
    stack.rt.clock = lambda: time.time() - 3600  # the code was issued an hour ago
    started, _ = stack.start("alice")
    line = failed(invoke("phone", "scan", started["code"], "--approve",
                         "--state", str(phone_state)))
    assert line == "qrgate: error: expired: code has expired"


def test_review_14_phone_scan_malformed_code_prints_one_line(phone_state: Path) -> None:
    line = failed(invoke("phone", "scan", "QG1:NOT-A-CODE", "--state", str(phone_state)))
    assert line.startswith("qrgate: error: malformed_code: ")


def test_review_14_phone_scan_garbage_text(tmp_path: Path) -> None:
    line = failed(invoke("phone", "scan", "hello", "--state", str(tmp_path / "phone.json")))
    assert line == "qrgate: error: 'hello' is neither a qrgate code (QG1:...) nor an image file"


def test_review_14_phone_scan_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "photo.png"
    line = failed(invoke("phone", "scan", str(missing), "--state", str(tmp_path / "p.json")))
    assert line == f"qrgate: error: cannot read {missing}: no such file or directory"


def test_review_14_phone_scan_image_without_qr(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    line = failed(invoke("phone", "scan", str(blank), "--state", str(tmp_path / "p.json")))
    assert line == "qrgate: error: unreadable_image: no QR code in the image"

    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    line = failed(invoke("phone", "scan", str(text), "--state", str(tmp_path / "p.json")))
    assert line == "qrgate: error: unreadable_image: not a readable image"


def test_review_14_phone_without_state_file(tmp_path: Path) -> None:
    state = tmp_path / "phone.json"
    line = failed(invoke("phone", "decide", "c123", "--approve", "--state", str(state)))
    assert line == (f"qrgate: error: no phone state in {state}: enrol this phone first, "
                    "or pass --state")
    state.write_text("{}")
    line = failed(invoke("phone", "history", "--state", str(state)))
    assert line == f"qrgate: error: {state} is not a phone state file: 'private_key' is missing"


def test_review_14_phone_enrol_dead_server(tmp_path: Path) -> None:
    port = free_port()  # closed again at once: nothing listens there
    result = run_qrgate("phone", "enrol", "QG1:ANY", "--server", f"http://127.0.0.1:{port}",
                        "--password", "x", "--state", str(tmp_path / "phone.json"),
                        cwd=tmp_path)
    assert result.returncode == 1
    line = one_error_line(result.stderr, result.stdout)
    assert line == f"qrgate: error: cannot reach http://127.0.0.1:{port}: connection refused"
    assert not (tmp_path / "phone.json").exists()


def test_review_14_server_refusal_is_one_line(stack: Stack, phone_state: Path) -> None:
    line = failed(invoke("phone", "decide", "no-such-challenge", "--deny",
                         "--state", str(phone_state)))
    assert re.fullmatch(r"qrgate: error: [a-z_]+: .* \(HTTP 4\d\d\)", line), line


def bad_env(tmp_path: Path, **env: str) -> str:
    # `serve` reads the settings before anything else; were they accepted by mistake, the
    # timeout would end the test instead of a server that never stops.
    result = run_qrgate("serve", cwd=tmp_path, timeout=30,
                        QRGATE_DATA_DIR=str(tmp_path / "data"), **env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "data").exists()  # refused before touching anything
    return one_error_line(result.stderr, result.stdout)


def test_review_14_bad_env_port(tmp_path: Path) -> None:
    assert bad_env(tmp_path, QRGATE_PORT="abc") == (
        "qrgate: error: invalid_field: QRGATE_PORT must be an integer 1..65535, not 'abc'")
    assert bad_env(tmp_path, QRGATE_PORT="70000") == (
        "qrgate: error: invalid_field: QRGATE_PORT must be 1..65535, not 70000")


def test_review_14_bad_env_log_level(tmp_path: Path) -> None:
    assert bad_env(tmp_path, QRGATE_LOG_LEVEL="loud") == (
        "qrgate: error: invalid_field: QRGATE_LOG_LEVEL must be one of critical, error, "
        "warning, info, debug, trace, not 'loud'")


def test_review_14_bad_env_confirm_ttl_below_code_ttl(tmp_path: Path) -> None:
    assert bad_env(tmp_path, QRGATE_CONFIRM_TTL="20") == (
        "qrgate: error: invalid_field: QRGATE_CODE_TTL (30) must not exceed "
        "QRGATE_CONFIRM_TTL (20)")


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("QRGATE_PUBLIC_URL", "ftp://files.example", "must start with http:// or https://"),
    ("QRGATE_MAX_FAILURES", "0", "must be 1..100, not 0"),
    ("QRGATE_ENROL_TTL", "5", "must be 60..86400 seconds, not 5"),
    ("QRGATE_MAX_BODY_BYTES", "10", "must be 1024..1048576 bytes, not 10"),
    ("QRGATE_DATABASE_URL", "qrgate.db", "must be a postgresql+psycopg:// or a sqlite:///"),
    ("QRGATE_DATABASE_URL", "mysql://db/qrgate", "must be a postgresql+psycopg:// or"),
    ("QRGATE_ACCESS_LOG", "false", "must be on or off, not 'false'"),
])
def test_review_14_bad_env_values_are_named(variable: str, value: str, says: str) -> None:
    with pytest.raises(InvalidField) as refused:
        Settings.from_env({variable: value})
    assert refused.value.detail.startswith(variable)
    assert says in refused.value.detail


def test_review_14_blank_values_count_as_unset() -> None:
    settings = Settings.from_env({"QRGATE_HOST": " ", "QRGATE_PORT": "", "QRGATE_ISSUER": ""})
    assert (settings.host, settings.port, settings.issuer) == ("127.0.0.1", 8000, "qrgate")
    with pytest.raises(InvalidField, match=r"^QRGATE_HOST must not be empty"):
        Settings(host="")


def test_review_14_every_integer_setting_is_bounded() -> None:
    # A new integer setting must come with its range.
    integers = {field.name for field in dataclasses.fields(Settings) if field.type == "int"}
    assert integers == {name for name, *_ in INTEGER_RANGES.values()}
    for variable in INTEGER_RANGES:
        for value in ("-1", "99999999"):
            with pytest.raises(InvalidField, match=f"^{variable} "):
                Settings.from_env({variable: value})


def test_review_14_usage_errors_use_the_prefix() -> None:
    line = failed(invoke("admin", "org", "create"), exit_code=2)
    assert line == ("qrgate: error: missing argument 'SLUG' "
                    "(see 'qrgate admin org create --help')")
    line = failed(invoke("nosuch"), exit_code=2)
    assert line == "qrgate: error: no such command 'nosuch' (see 'qrgate --help')"


def test_review_14_internal_error_is_one_line_and_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    @click.command()
    def boom() -> None:
        """Fail the way a bug does."""
        raise ZeroDivisionError

    monkeypatch.setitem(cli.commands, "boom", boom)
    monkeypatch.setattr(sys, "argv", ["qrgate", "boom"])
    monkeypatch.delenv("QRGATE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 70
    captured = capsys.readouterr()
    assert one_error_line(captured.err, captured.out) == (
        "qrgate: error: internal error (ZeroDivisionError); "
        "set QRGATE_DEBUG=1 for the traceback")

    monkeypatch.setenv("QRGATE_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main()


# --- 2. serve: --port reaches the links, the port is taken before the banner ---------------


def test_review_serve_port_in_use_is_one_line_before_the_banner(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_qrgate("serve", "--port", str(port), cwd=tmp_path,
                            QRGATE_DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 1
    assert result.stdout == ""  # no banner
    assert one_error_line(result.stderr) == (
        f"qrgate: error: cannot listen on 127.0.0.1:{port}: address already in use")
    assert not (tmp_path / "data").exists()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    """``qrgate serve --port P --workers 2`` with QRGATE_PORT saying otherwise."""
    env = {"QRGATE_DATA_DIR": str(tmp_path / "data")}
    for args in (("org", "create", "acme", "--name", "Acme"),
                 ("app", "create", "--org", "acme", "--business-id", "shop", "--name", "Shop"),
                 ("user", "create", "--org", "acme", "--login", "dana")):
        assert invoke("admin", *args, env=env).exit_code == 0
    created = invoke("admin", "apikey", "create", "--org", "acme", "--business-id", "shop",
                     env=env)
    api_key = created.stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [*QRGATE, "serve", "--port", str(port), "--workers", "2"],
        env=clean_env(**env, QRGATE_PORT="8000", QRGATE_LOG_LEVEL="warning"), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, f"{base_url}/healthz")
        yield base_url, api_key, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)


def test_review_serve_port_reaches_links_in_worker_processes(
    served: tuple[str, str, subprocess.Popen[str]],
) -> None:
    base_url, api_key, server = served
    keys = PublicKeySet.from_jwks(httpx.get(f"{base_url}/v1/keys", timeout=10).json())
    with QrgateClient(base_url, api_key=api_key) as rp:
        code = rp.start_enrolment("dana")["code"]
    # The enrolment code tells the phone where to go: the port given, not QRGATE_PORT's 8000.
    assert read_enrol_code(code, keys=keys, now=time.time()).server_url == base_url
    server.terminate()
    stdout, stderr = server.communicate(timeout=30)
    banners = [line for line in stdout.splitlines() if line.startswith("qrgate ")]
    assert len(banners) == 1 and f" on {base_url} " in banners[0], stdout
    assert "Traceback" not in stderr


# --- 3. every command says what it does ----------------------------------------------------


def command_tree(command: click.Command, path: list[str]) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield from command_tree(sub, [*path, name])


def test_review_every_command_and_option_has_help() -> None:
    tree = dict(command_tree(cli, ["qrgate"]))
    assert {"qrgate admin keys kek-create", "qrgate serve", "qrgate phone token sign"} <= set(tree)
    assert [name for name, command in tree.items()
            if not command.get_short_help_str().strip()] == []
    assert [f"{name} {option.opts[0]}" for name, command in tree.items()
            for option in command.params
            if isinstance(option, click.Option) and not (option.help or "").strip()] == []


# --- 4. times as dates ---------------------------------------------------------------------


def test_review_times_are_iso_8601_utc() -> None:
    assert utc_time(1_796_011_318) == "2026-11-30T04:01:58Z"
    assert utc_time(1_796_011_318.999) == "2026-11-30T04:01:58Z"
    assert utc_time(0) == "1970-01-01T00:00:00Z"


def test_review_phone_history_and_device_list_show_dates(
    stack: Stack, phone_state: Path, tmp_path: Path
) -> None:
    started, _ = stack.start("alice")
    assert invoke("phone", "scan", started["code"], "--deny",
                  "--state", str(phone_state)).exit_code == 0
    history = invoke("phone", "history", "--state", str(phone_state))
    assert history.exit_code == 0, history.output
    assert ISO_UTC.match(history.stdout), history.stdout

    settings = stack.rt.settings
    env = {"QRGATE_DATA_DIR": str(settings.data_dir),
           "QRGATE_DATABASE_URL": settings.resolved_database_url}
    listed = invoke("admin", "device", "list", "--org", "bank", "--login", "alice", env=env)
    assert listed.exit_code == 0, listed.output
    (device,) = json.loads(listed.stdout)
    assert ISO_UTC.fullmatch(device["created_at"]), device


# --- 5. a fast --help ------------------------------------------------------------------------

HEAVY = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "pydantic",
         "httpx", "cryptography", "numpy", "PIL", "zxingcpp")


def test_review_help_imports_no_heavy_module(tmp_path: Path) -> None:
    # A fresh interpreter: this one has imported everything already. It loads every command
    # module (as `qrgate --help` and each group's --help do) and prints what got imported.
    script = textwrap.dedent(f"""
        import json, sys
        import click
        from qrgate.cli.main import cli

        def walk(command, name):
            if isinstance(command, click.Group):
                ctx = click.Context(command, info_name=name)
                for sub in command.list_commands(ctx):
                    walk(command.get_command(ctx, sub), sub)

        walk(cli, "qrgate")
        for args in (["--help"], ["admin", "--help"], ["phone", "--help"]):
            cli.main(args, prog_name="qrgate", standalone_mode=False)
        heavy = {HEAVY!r}
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
    """)
    result = subprocess.run([sys.executable, "-c", script], env=clean_env(), cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) == []


# --- 6. a KEK kept outside the data directory ----------------------------------------------


def test_review_kek_create_writes_a_0600_hex_key_once(tmp_path: Path) -> None:
    env = {"QRGATE_DATA_DIR": str(tmp_path / "data")}
    kek_file = tmp_path / "secrets" / "qrgate.kek"
    kek_file.parent.mkdir()
    created = invoke("admin", "keys", "kek-create", str(kek_file), env=env)
    assert created.exit_code == 0, created.output
    assert created.stdout == f"QRGATE_KEK_FILE={kek_file.resolve()}\n"
    assert created.stderr == ""
    assert stat.S_IMODE(kek_file.stat().st_mode) == 0o600
    text = kek_file.read_text()
    assert re.fullmatch(r"[0-9a-f]{64}\n", text)
    # The server reads it back as the KEK.
    material = keystore.load_or_create(tmp_path / "data", env={"QRGATE_KEK_FILE": str(kek_file)})
    assert material.kek == bytes.fromhex(text)

    line = failed(invoke("admin", "keys", "kek-create", str(kek_file), env=env))
    assert line == f"qrgate: error: {kek_file} already exists; it is never overwritten"
    assert kek_file.read_text() == text


def test_review_kek_create_warns_when_a_kek_is_in_use(tmp_path: Path) -> None:
    in_use = tmp_path / "data" / "keys" / "kek"
    in_use.parent.mkdir(parents=True)
    in_use.write_bytes(os.urandom(32))
    created = invoke("admin", "keys", "kek-create", str(tmp_path / "new.kek"),
                     env={"QRGATE_DATA_DIR": str(tmp_path / "data")})
    assert created.exit_code == 0, created.output
    assert created.stderr.startswith(f"qrgate: warning: {in_use} is the KEK in use")


def test_review_kek_create_in_a_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "qrgate.kek"
    line = failed(invoke("admin", "keys", "kek-create", str(target),
                         env={"QRGATE_DATA_DIR": str(tmp_path / "data")}))
    assert line == f"qrgate: error: cannot write {target}: no such file or directory"
