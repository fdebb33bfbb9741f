"""A local certificate authority and the broker's server certificate, made with openssl.

One home for the broker's TLS files, used by `choreo secrets` (docker compose) and by the
local stack of `choreo demo` and the tests. The CA is made once and then kept, because
devices trust it. The server certificate is issued again whenever it is missing, names
other hosts, no longer chains to the CA, does not match its key, or expires within 30 days.
Private keys are written owner-only from the start; certificates are world-readable.
"""
from __future__ import annotations

import ipaddress
import re
import secrets
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .credentials import write_private
from .errors import ChoreoError, ConfigError

LOCAL_HOSTS = ("localhost", "127.0.0.1")
CA_DAYS = 3650
SERVER_DAYS = 825  # the longest validity some TLS clients accept for a server certificate
RENEW_SECONDS = 30 * 86_400
KEY = ("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
# Our own openssl configuration, so the extensions do not depend on the system's openssl.cnf.
CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = choreo
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {names}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def make_tls_files(directory: Path, hosts: Iterable[str] = LOCAL_HOSTS) -> dict[str, Path]:
    """The CA (ca.crt, ca.key) and a server certificate for `hosts` (server.crt, server.key) in `directory`."""
    hosts = tuple(hosts)
    names = ", ".join(_subject_alt_name(host) for host in hosts)
    files = {name: directory / name for name in ("ca.crt", "ca.key", "server.crt", "server.key")}
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ConfigError("openssl is not installed; run `make setup` (Debian: apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "openssl.cnf"
        config.write_text(CONFIG.format(names=names))
        new_ca = _ensure_ca(openssl, config, files["ca.crt"], files["ca.key"])
        if new_ca or not _server_certificate_current(openssl, files, hosts):
            _issue_server_certificate(openssl, config, files, hosts[0], Path(scratch))
    return files


def _ensure_ca(openssl: str, config: Path, cert: Path, key: Path) -> bool:
    """Make the CA unless it exists; True if it was made now."""
    if cert.exists() and key.exists():
        return False
    if cert.exists() or key.exists():
        present, missing = (cert, key) if cert.exists() else (key, cert)
        raise ConfigError(f"{present} exists without {missing.name}: restore {missing.name}, or move {present.name} "
                          "away to make a new CA (devices must then trust the new ca.crt)")
    write_private(key, _run(openssl, *KEY))
    _write_public(cert, _run(openssl, "req", "-x509", "-new", "-config", str(config), "-extensions", "ca",
                             "-key", str(key), "-sha256", "-days", str(CA_DAYS), "-subj", "/CN=choreo local CA"))
    return True


def _issue_server_certificate(openssl: str, config: Path, files: dict[str, Path], common_name: str,
                              scratch: Path) -> None:
    key, request = scratch / "server.key", scratch / "server.csr"
    write_private(key, _run(openssl, *KEY))
    request.write_text(_run(openssl, "req", "-new", "-config", str(config), "-key", str(key),
                            "-subj", f"/CN={common_name}"))
    cert = _run(openssl, "x509", "-req", "-in", str(request), "-CA", str(files["ca.crt"]),
                "-CAkey", str(files["ca.key"]), "-set_serial", f"0x{secrets.token_hex(16)}", "-sha256",
                "-days", str(SERVER_DAYS), "-extfile", str(config), "-extensions", "server")
    write_private(files["server.key"], key.read_text())
    _write_public(files["server.crt"], cert)


def _server_certificate_current(openssl: str, files: dict[str, Path], hosts: tuple[str, ...]) -> bool:
    cert, key = files["server.crt"], files["server.key"]
    if not (cert.exists() and key.exists()):
        return False
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert), str(key))  # the key is the certificate's
    except (OSError, ssl.SSLError):
        return False
    chains = _probe(openssl, "verify", "-CAfile", str(files["ca.crt"]), str(cert))
    lasting = _probe(openssl, "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName",
                     "-checkend", str(RENEW_SECONDS))
    if chains.returncode != 0 or lasting.returncode != 0:
        return False
    named = re.findall(r"(?:DNS|IP Address):([^,\s]+)", lasting.stdout)
    return sorted(map(_normal, named)) == sorted(map(_normal, hosts))


def _subject_alt_name(host: str) -> str:
    if _is_ip(host):
        return f"IP:{ipaddress.ip_address(host)}"
    if not HOST_NAME.fullmatch(host):
        raise ConfigError(f"{host!r} is not a host name or an IP address for the broker's certificate")
    return f"DNS:{host}"


def _normal(host: str) -> str:
    return str(ipaddress.ip_address(host)) if _is_ip(host) else host.lower()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _run(openssl: str, *args: str) -> str:
    """openssl's standard output; its error output (never a key: keys go to stdout or files) on failure."""
    result = _probe(openssl, *args)
    if result.returncode != 0:
        raise ChoreoError(f"openssl {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def _probe(openssl: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([openssl, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)


def _write_public(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o644)
