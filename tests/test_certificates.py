"""The broker's CA and server certificate, checked with the standard library's TLS, not with openssl."""
from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest

from gateway.certificates import make_tls_files
from gateway.errors import ConfigError

HOSTS = ("mosquitto", "localhost", "127.0.0.1")


def handshake(files: dict[str, Path], server_hostname: str, ca: Path | None = None) -> None:
    """One TLS handshake with a server using `files`, the client verifying it strictly against the CA."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(files["server.crt"]), str(files["server.key"]))
    client = ssl.create_default_context(cafile=str(ca or files["ca.crt"]))
    client.verify_flags |= ssl.VERIFY_X509_STRICT  # what Python 3.13 clients check by default
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def serve() -> None:
            connection, _ = listener.accept()
            try:
                server.wrap_socket(connection, server_side=True).close()
            except (ssl.SSLError, OSError):
                connection.close()  # the client refused us

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with socket.create_connection(listener.getsockname(), timeout=5) as raw:
                client.wrap_socket(raw, server_hostname=server_hostname).close()
        finally:
            thread.join(5)


def contents(files: dict[str, Path]) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in files.items()}


def test_the_server_certificate_is_valid_for_exactly_its_hosts_and_keys_are_owner_only(tmp_path):
    files = make_tls_files(tmp_path / "tls", HOSTS)
    for host in HOSTS:
        handshake(files, host)
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(files, "other.example")
    for name, path in files.items():
        assert stat.S_IMODE(path.stat().st_mode) == (0o600 if name.endswith(".key") else 0o644), name
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == sorted(files)  # no request, serial or config left


def test_a_second_run_keeps_everything_and_a_new_host_renews_only_the_server_certificate(tmp_path):
    first = contents(make_tls_files(tmp_path, HOSTS))
    assert contents(make_tls_files(tmp_path, HOSTS)) == first
    files = make_tls_files(tmp_path, (*HOSTS, "broker.example"))
    renewed = contents(files)
    assert (renewed["ca.crt"], renewed["ca.key"]) == (first["ca.crt"], first["ca.key"]), "the CA devices trust is kept"
    assert renewed["server.crt"] != first["server.crt"] and renewed["server.key"] != first["server.key"]
    handshake(files, "broker.example")


def test_a_server_certificate_the_ca_did_not_sign_or_without_its_key_is_issued_again(tmp_path):
    files = make_tls_files(tmp_path / "mine", HOSTS)
    ca = contents(files)
    other = make_tls_files(tmp_path / "other", HOSTS)
    files["server.crt"].write_bytes(other["server.crt"].read_bytes())  # a stranger's certificate
    make_tls_files(tmp_path / "mine", HOSTS)
    handshake(files, "mosquitto", ca=files["ca.crt"])
    files["server.key"].unlink()
    make_tls_files(tmp_path / "mine", HOSTS)
    handshake(files, "mosquitto")
    assert contents(files)["ca.crt"] == ca["ca.crt"]


def test_a_ca_half_there_is_refused_rather_than_replaced(tmp_path):
    files = make_tls_files(tmp_path, HOSTS)
    files["ca.key"].unlink()
    with pytest.raises(ConfigError, match="ca.crt exists without ca.key"):
        make_tls_files(tmp_path, HOSTS)
    assert files["ca.crt"].exists()


@pytest.mark.parametrize("host", ["", "bad host", "a,DNS:evil.example", "x\nsubjectAltName = DNS:evil"])
def test_a_host_that_is_no_name_or_address_is_refused(tmp_path, host):
    with pytest.raises(ConfigError, match="not a host name or an IP address"):
        make_tls_files(tmp_path, ("localhost", host))
    assert not tmp_path.joinpath("ca.key").exists()
