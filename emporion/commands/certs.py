"""``emporion certs``: a CA and certificates for a small cluster's TLS (``docs/security.md``).

It writes, under ``--out``: ``ca.pem`` and ``ca-key.pem`` (the cluster's own CA, which every
process is given as ``--tls-ca``), ``server.pem``/``server-key.pem`` for the masters and agents
(one certificate naming every ``--hosts`` entry, plus ``localhost`` and ``127.0.0.1``, as
subject alternative names), and for each ``--clients`` name ``NAME.pem``/``NAME-key.pem``
whose subject CN is NAME (under mutual TLS the CN stands as the principal). Keys are ECDSA
P-256, files are created mode 0600 (keys) and the directory must not hold these files already,
so that nothing is overwritten by accident.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["cmd_certs", "make_cluster_certs", "register"]

_VALID_DAYS = 825
"""Validity of the certificates (the longest that common clients accept for a leaf)."""


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Emporion cluster"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write(path: Path, data: bytes, secret: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(path, flags, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    common_name: str,
    hosts: Sequence[str],
    usages: list[x509.ObjectIdentifier],
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False
        )
    return key, builder.sign(ca_key, hashes.SHA256())


def make_cluster_certs(out: Path, hosts: Sequence[str], clients: Sequence[str] = ()) -> list[Path]:
    """Write the CA, the server certificate and the clients' under ``out``; the files written.

    Raises FileExistsError (naming the file) rather than overwrite one, ValueError for a bad
    host or client name.
    """
    for client in clients:
        if not client or "/" in client or client in ("ca", "server"):
            raise ValueError(f"--clients: bad name {client!r} (not empty, no '/', not ca/server)")
    names = ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"]
    names += [f"{c}{suffix}" for c in clients for suffix in (".pem", "-key.pem")]
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (out / name).exists():
            raise FileExistsError(f"{out / name} exists: remove it or choose another --out")
    all_hosts = list(dict.fromkeys([*hosts, "localhost", "127.0.0.1"]))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Emporion cluster CA")
    now = datetime.datetime.now(datetime.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write(out / "ca.pem", ca.public_bytes(pem), secret=False)
    _write(out / "ca-key.pem", _key_bytes(ca_key), secret=True)
    # Masters and agents are servers and, towards each other, clients (mutual TLS).
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    key, cert = _issue(ca_key, ca_name, all_hosts[0], all_hosts, both)
    _write(out / "server.pem", cert.public_bytes(pem), secret=False)
    _write(out / "server-key.pem", _key_bytes(key), secret=True)
    for client in clients:
        key, cert = _issue(ca_key, ca_name, client, (), [ExtendedKeyUsageOID.CLIENT_AUTH])
        _write(out / f"{client}.pem", cert.public_bytes(pem), secret=False)
        _write(out / f"{client}-key.pem", _key_bytes(key), secret=True)
    return [out / name for name in names]


def cmd_certs(ns: argparse.Namespace) -> int:
    """Run ``emporion certs``."""
    hosts = [h.strip() for h in ",".join(ns.hosts or []).split(",") if h.strip()]
    clients = [c.strip() for c in ",".join(ns.clients or []).split(",") if c.strip()]
    try:
        written = make_cluster_certs(Path(ns.out), hosts, clients)
    except (OSError, ValueError) as error:
        print(f"emporion certs: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def register(subparsers: Any) -> None:
    """Add the ``certs`` subcommand to the ``emporion`` parser's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "certs",
        help="make a CA and TLS certificates for a small cluster",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("--out", required=True, help="directory to write the files to")
    parser.add_argument(
        "--hosts",
        action="append",
        help="host names or addresses the servers answer on (comma-separated; repeatable)",
    )
    parser.add_argument(
        "--clients",
        action="append",
        help="client certificates to make, by principal name (comma-separated; repeatable)",
    )
    parser.set_defaults(func=cmd_certs)
