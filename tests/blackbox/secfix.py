"""Shared pieces of the security tests: a self-signed certificate, a users
file, and helpers for TLS and AUTH."""

import base64
import socket
import ssl
import subprocess

import pytest

from conftest import Client, DEADLINE

PASSWORD = "s3cret pass"
# Hashes of PASSWORD made by real tools (doveadm pw, libcrypt).
USERS = {
    "kate@example.com": "{PLAIN}" + PASSWORD,
    "chris@example.com": None,   # sha512-crypt, made by openssl passwd -6
    "lee@example.com": None,     # yescrypt, made through libcrypt
}


@pytest.fixture(scope="session")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=mx.test.example", "-addext", "subjectAltName=DNS:mx.test.example",
                    "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    return crt, key


def sha512_crypt(pw):
    return subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=pw.encode(),
                          check=True, capture_output=True).stdout.decode().strip()


def yescrypt(pw):
    import ctypes
    import ctypes.util
    lib = ctypes.CDLL(ctypes.util.find_library("crypt"))
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt.restype = ctypes.c_char_p
    salt = lib.crypt_gensalt(b"$y$", 0, None, 0)
    return lib.crypt(pw.encode(), salt).decode()


@pytest.fixture(scope="session")
def users_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("users")
    p = d / "users"
    lines = ["kate@example.com:{PLAIN}%s" % PASSWORD,
             "chris@example.com:{SHA512-CRYPT}%s::::::" % sha512_crypt(PASSWORD),
             "lee@example.com:%s" % yescrypt(PASSWORD)]
    p.write_text("\n".join(lines) + "\n")
    return p


def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def starttls(c):
    """STARTTLS on a conftest Client (after EHLO): wraps its socket."""
    c.expect("STARTTLS", "220 2.0.0 Ready to start TLS")
    assert c.buf == b"", "bytes after the 220: %r" % c.buf
    c.sock = client_context().wrap_socket(c.sock, server_hostname="mx.test.example")
    c.transcript.append("(TLS %s)" % c.sock.version())
    return c


def tls_client(port, name="tls client"):
    """A conftest Client over implicit TLS (smtps)."""
    c = Client.__new__(Client)
    c.name, c.timeout, c.transcript, c.buf = name, DEADLINE, [], b""
    raw = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    c.sock = client_context().wrap_socket(raw, server_hostname="mx.test.example")
    return c


def plain_b64(user, pw, authz=""):
    return base64.b64encode(("%s\0%s\0%s" % (authz, user, pw)).encode()).decode()


def b64(s):
    return base64.b64encode(s.encode()).decode()
