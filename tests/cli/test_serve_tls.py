"""``qrgate serve`` with TLS and the phone app's address: ``--dev-tls`` really serves https
with a certificate that names this machine and is reused on the next start, the terminal
shows the app's address and a QR code of it that decodes, links become https, and every bad
TLS option is one line and exit 1. The server runs as the real entry point, in a subprocess.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
import zxingcpp
from cryptography import x509

from qrgate import lan
from qrgate.cli.serve_start import app_url_lines, phone_reach_warning
from qrgate.cli.terminal_qr import read_lines
from qrgate.config import Settings
from qrgate.dev_tls import CERT_FILE, KEY_FILE, TLS_DIR, certificate_names, ensure_dev_certificate
from qrgate.errors import InvalidField
from qrgate.tls import check_pair
from support.serving import (
    QRGATE,
    clean_env,
    free_port,
    one_error_line,
    run_qrgate,
    wait_until_serving,
)

BLOCKS = set("█▀▄ ")


@dataclass
class Started:
    base_url: str
    stdout: str
    stderr: str


def https_client(cert_file: Path) -> httpx.Client:
    """A client that trusts exactly this certificate, and checks names as browsers do."""
    return httpx.Client(verify=ssl.create_default_context(cafile=str(cert_file)), timeout=10)


def run_server(tmp_path: Path, *args: str, host: str = "127.0.0.1",
               reach: str = "127.0.0.1", **env: str) -> Started:
    """Start ``qrgate serve``, wait until it answers over https at ``reach`` (the
    certificate must name it), fetch /app/, stop it."""
    port = free_port()
    data_dir = tmp_path / "data"
    server = subprocess.Popen(
        [*QRGATE, "serve", "--host", host, "--port", str(port), *args],
        env=clean_env(QRGATE_DATA_DIR=str(data_dir), QRGATE_LOG_LEVEL="warning",
                      QRGATE_ACCESS_LOG="off", **env),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    local = f"https://{reach}:{port}"
    try:
        deadline = time.monotonic() + 60
        while not (data_dir / TLS_DIR / CERT_FILE).exists():
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "no certificate"
            time.sleep(0.1)
        with https_client(data_dir / TLS_DIR / CERT_FILE) as client:
            wait_until_serving(server, f"{local}/healthz", get=client.get,
                               seconds=deadline - time.monotonic())
            app = client.get(f"{local}/app/")
            assert app.status_code == 200
            assert "camera=(self)" in app.headers["permissions-policy"]
            # Plain http on the same port is refused, not served.
            with pytest.raises(httpx.TransportError):
                httpx.get(f"http://{reach}:{port}/healthz", timeout=5)
    finally:
        server.terminate()
        try:
            stdout, stderr = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            stdout, stderr = server.communicate(timeout=30)
    assert "Traceback" not in stderr
    return Started(base_url=local, stdout=stdout, stderr=stderr)


def terminal_qr(stdout: str) -> tuple[str, str]:
    """The address the "phone app:" line names, and the text of the QR code printed under
    it, read back from the characters the way a phone reads the screen."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("phone app: "))
    url = lines[start].split()[2]
    drawn = []
    for line in lines[start + 1:]:
        if not line or not set(line) <= BLOCKS:
            break
        drawn.append(line)
    assert drawn, stdout
    dark = read_lines(drawn, ansi=False)
    pixels = np.where(np.kron(dark, np.ones((4, 4), dtype=bool)), 0, 255).astype(np.uint8)
    found = zxingcpp.read_barcodes(pixels, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(found) == 1, "\n".join(drawn)
    return url, found[0].text


@pytest.fixture(scope="module")
def dev_tls_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Started,
                                                                              Started]]:
    """Two starts with ``--dev-tls`` on one data directory."""
    tmp_path = tmp_path_factory.mktemp("dev-tls")
    first = run_server(tmp_path, "--dev-tls")
    second = run_server(tmp_path, "--dev-tls")
    yield tmp_path / "data" / TLS_DIR / CERT_FILE, first, second


def test_dev_tls_serves_https_with_a_certificate_naming_this_machine(
    dev_tls_runs: tuple[Path, Started, Started],
) -> None:
    cert_file, first, _ = dev_tls_runs
    names = certificate_names(x509.load_pem_x509_certificate(cert_file.read_bytes()))
    expected = {"localhost", lan.hostname().lower(), ipaddress.ip_address("127.0.0.1"),
                *(ipaddress.ip_address(address) for address in lan.lan_ipv4_addresses())}
    assert expected <= names
    assert f"on {first.base_url} " in first.stdout
    assert re.search(r"^TLS: self-signed development certificate .*dev-cert\.pem "
                     r"\(made now, valid until \d{4}-\d\d-\d\d\)", first.stdout, re.M)
    assert "qrgate: warning: phones" not in first.stderr  # https: nothing to warn about


def test_dev_tls_reuses_its_certificate(dev_tls_runs: tuple[Path, Started, Started]) -> None:
    _, first, second = dev_tls_runs
    assert "(made now," in first.stdout and "(reused," in second.stdout


def test_the_terminal_shows_the_app_address_as_a_qr_code(
    dev_tls_runs: tuple[Path, Started, Started],
) -> None:
    _, first, _ = dev_tls_runs
    url, text = terminal_qr(first.stdout)
    assert url == text == f"{first.base_url}/app/"


def test_on_every_interface_the_address_is_the_lan_one(tmp_path: Path) -> None:
    addresses = lan.lan_ipv4_addresses()
    if not addresses:
        pytest.skip("this machine has no LAN address")
    # Reached by its LAN address, as a phone does: the TLS handshake checks that name.
    started = run_server(tmp_path, "--dev-tls", host="0.0.0.0", reach=addresses[0])
    port = started.base_url.rsplit(":", 1)[1]
    url, text = terminal_qr(started.stdout)
    assert url == text == f"{started.base_url}/app/"
    assert f"on https://0.0.0.0:{port}, links {started.base_url} " in started.stdout


def test_no_qr_leaves_the_address_only(tmp_path: Path) -> None:
    started = run_server(tmp_path, "--dev-tls", "--no-qr")
    app_lines = [line for line in started.stdout.splitlines() if "/app/" in line]
    assert app_lines == [f"phone app: {started.base_url}/app/"]
    assert not any(set(line) <= BLOCKS and line for line in started.stdout.splitlines())


def test_public_url_names_the_app_when_set(tmp_path: Path) -> None:
    started = run_server(tmp_path, "--dev-tls", "--no-qr",
                         QRGATE_PUBLIC_URL="https://qrgate.example/prefix/")
    assert "phone app: https://qrgate.example/prefix/app/" in started.stdout


# --- settings and start-up lines -----------------------------------------------------------


def test_tls_makes_links_https() -> None:
    assert Settings.from_env({}).public_url == "http://127.0.0.1:8000"
    assert Settings.from_env({"QRGATE_DEV_TLS": "1"}).public_url == "https://127.0.0.1:8000"
    assert Settings.from_env({"QRGATE_DEV_TLS": "on", "QRGATE_HOST": "::1",
                              "QRGATE_PORT": "8443"}).public_url == "https://[::1]:8443"
    settings = Settings.from_env({"QRGATE_TLS_CERT": "c.pem", "QRGATE_TLS_KEY": "k.pem"})
    assert settings.public_url == "https://127.0.0.1:8000"
    assert (settings.tls_cert, settings.tls_key, settings.tls) == (
        Path("c.pem"), Path("k.pem"), True)
    # An explicit public URL stays what it says (a TLS proxy in front, say).
    assert Settings.from_env({"QRGATE_DEV_TLS": "on", "QRGATE_PUBLIC_URL":
                              "https://qrgate.example/"}).public_url == "https://qrgate.example"
    assert not Settings.from_env({"QRGATE_DEV_TLS": "off"}).tls
    assert not Settings.from_env({"QRGATE_DEV_TLS": "0"}).dev_tls


@pytest.mark.parametrize(("env", "says"), [
    ({"QRGATE_TLS_CERT": "c.pem"}, "QRGATE_TLS_CERT (--tls-cert) and QRGATE_TLS_KEY"),
    ({"QRGATE_TLS_KEY": "k.pem"}, "QRGATE_TLS_CERT (--tls-cert) and QRGATE_TLS_KEY"),
    ({"QRGATE_DEV_TLS": "on", "QRGATE_TLS_CERT": "c.pem", "QRGATE_TLS_KEY": "k.pem"},
     "QRGATE_DEV_TLS (--dev-tls) makes its own certificate"),
    ({"QRGATE_DEV_TLS": "yes"}, "QRGATE_DEV_TLS must be on or off, not 'yes'"),
])
def test_tls_settings_that_do_not_go_together(env: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidField) as refused:
        Settings.from_env(env)
    assert refused.value.detail.startswith(says)


@pytest.mark.parametrize(("host", "public_url", "warned"), [
    ("0.0.0.0", "http://192.0.2.10:8000", True),
    ("192.0.2.10", "http://192.0.2.10:8000", True),
    ("127.0.0.1", "http://127.0.0.1:8000", False),
    ("localhost", "http://localhost:8000", False),
    ("::1", "http://[::1]:8000", False),
    ("0.0.0.0", "https://192.0.2.10:8000", False),  # --dev-tls or --tls-cert
    ("0.0.0.0", "https://qrgate.example", False),  # a TLS proxy in front
])
def test_plain_http_on_the_network_is_warned_about(host: str, public_url: str,
                                                   warned: bool) -> None:
    warning = phone_reach_warning(Settings(host=host, public_url=public_url))
    assert (warning is not None) is warned
    if warning is not None:
        assert "--dev-tls" in warning and "\n" not in warning


def test_app_url_lines() -> None:
    settings = Settings(public_url="https://192.0.2.10:8443")
    assert app_url_lines(settings, qr=False, ansi=False) == [
        "phone app: https://192.0.2.10:8443/app/"]
    with_qr = app_url_lines(settings, qr=True, ansi=True)
    assert with_qr[0].startswith("phone app: https://192.0.2.10:8443/app/ ")
    assert all(line.startswith("\x1b[") for line in with_qr[1:])


def test_plain_http_on_every_interface_warns(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [*QRGATE, "serve", "--host", "0.0.0.0", "--port", str(port), "--no-qr"],
        env=clean_env(QRGATE_DATA_DIR=str(tmp_path / "data"), QRGATE_LOG_LEVEL="warning"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(server, f"http://127.0.0.1:{port}/healthz")
    finally:
        server.terminate()
        stdout, stderr = server.communicate(timeout=30)
    warnings = [line for line in stderr.splitlines() if line.startswith("qrgate: warning: ")]
    assert len(warnings) == 1 and "--dev-tls" in warnings[0], stderr
    addresses = lan.lan_ipv4_addresses()
    if addresses:
        assert f"phone app: http://{addresses[0]}:{port}/app/" in stdout


# --- bad TLS options: one line, exit 1, nothing started ------------------------------------


def refused(tmp_path: Path, *args: str, **env: str) -> str:
    result = run_qrgate("serve", "--port", str(free_port()), *args, cwd=tmp_path, timeout=30,
                        QRGATE_DATA_DIR=str(tmp_path / "data"), **env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""  # no banner: refused before listening
    assert not (tmp_path / "data").exists()
    return one_error_line(result.stderr, result.stdout)


@pytest.fixture
def pem_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A good pair made by --dev-tls's own code, and a key of another pair."""
    made = ensure_dev_certificate(tmp_path / "pem", hostname="h", addresses=(),
                                  now=datetime.now(UTC))
    other = ensure_dev_certificate(tmp_path / "other", hostname="h", addresses=(),
                                   now=datetime.now(UTC))
    check_pair(made.cert_file, made.key_file)
    assert other.key_file.name == KEY_FILE
    return made.cert_file, made.key_file, other.key_file


def test_missing_tls_files(tmp_path: Path) -> None:
    line = refused(tmp_path, "--tls-cert", "nope.pem", "--tls-key", "nope.key")
    assert line == "qrgate: error: cannot read nope.pem: no such file or directory"


def test_half_a_pair(tmp_path: Path, pem_files: tuple[Path, Path, Path]) -> None:
    line = refused(tmp_path, "--tls-cert", str(pem_files[0]))
    assert line.startswith("qrgate: error: invalid_field: QRGATE_TLS_CERT (--tls-cert) and "
                           "QRGATE_TLS_KEY (--tls-key) go together")


def test_key_of_another_certificate(tmp_path: Path, pem_files: tuple[Path, Path, Path]) -> None:
    cert_file, _, other_key = pem_files
    line = refused(tmp_path, "--tls-cert", str(cert_file), "--tls-key", str(other_key))
    assert line == (f"qrgate: error: {other_key} is not the key of the certificate in "
                    f"{cert_file}")


def test_unreadable_key_from_the_environment(tmp_path: Path,
                                             pem_files: tuple[Path, Path, Path]) -> None:
    garbage = tmp_path / "garbage.key"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")
    line = refused(tmp_path, QRGATE_TLS_CERT=str(pem_files[0]), QRGATE_TLS_KEY=str(garbage))
    assert line == f"qrgate: error: {garbage} holds no PEM private key"


def test_dev_tls_with_a_certificate(tmp_path: Path, pem_files: tuple[Path, Path, Path]) -> None:
    line = refused(tmp_path, "--dev-tls", "--tls-cert", str(pem_files[0]),
                   "--tls-key", str(pem_files[1]))
    assert "QRGATE_DEV_TLS (--dev-tls) makes its own certificate" in line


def test_a_given_certificate_serves_https(tmp_path: Path,
                                          pem_files: tuple[Path, Path, Path]) -> None:
    cert_file, key_file, _ = pem_files
    port = free_port()
    server = subprocess.Popen(
        [*QRGATE, "serve", "--port", str(port), "--tls-cert", str(cert_file),
         "--tls-key", str(key_file), "--no-qr"],
        env=clean_env(QRGATE_DATA_DIR=str(tmp_path / "data"), QRGATE_LOG_LEVEL="warning"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        with https_client(cert_file) as client:
            while True:
                try:
                    response = client.get(f"https://127.0.0.1:{port}/app/")
                    break
                except httpx.TransportError:
                    assert server.poll() is None and time.monotonic() < deadline
                    time.sleep(0.2)
        assert response.status_code == 200
    finally:
        server.terminate()
        stdout, stderr = server.communicate(timeout=30)
    assert f"phone app: https://127.0.0.1:{port}/app/" in stdout
    assert "Traceback" not in stderr
