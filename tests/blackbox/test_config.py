"""Command line and configuration: -c FILE, -o key=value, -n, and the
exit code 2 with a message naming the culprit for every configuration
problem."""

import socket

import pytest

from conftest import GREETING, HOSTNAME, LOCAL_DOMAINS, free_port, run_ternd


def base_opts(tmp_path, port=None):
    (tmp_path / "spool").mkdir(exist_ok=True)
    (tmp_path / "mail").mkdir(exist_ok=True)
    opts = {
        "listen": "127.0.0.1:%d" % (port or free_port()),
        "hostname": HOSTNAME,
        "spool_dir": str(tmp_path / "spool"),
        "mail_dir": str(tmp_path / "mail"),
        "local_domains": LOCAL_DOMAINS,
    }
    return opts


def o_args(opts):
    args = []
    for k, v in opts.items():
        args += ["-o", "%s=%s" % (k, v)]
    return args


def good_file_text(tmp_path):
    (tmp_path / "spool").mkdir(exist_ok=True)
    (tmp_path / "mail").mkdir(exist_ok=True)
    return "\n".join([
        "# tern configuration used by the black-box tests",
        "",
        "hostname = mx.test.example",
        "listen = 127.0.0.1:%d" % free_port(),
        "spool_dir = %s" % (tmp_path / "spool"),
        "mail_dir = %s" % (tmp_path / "mail"),
        "   # an indented comment",
        "local_domains = example.com,mx.test.example",
        "relay_networks = 10.0.0.0/8,192.0.2.0/24",
        "max_message_size = 10M",
        "max_recipients = 50",
        "max_line_length = 998",
        "banner = tern from a file",
        "postmaster_address = postmaster@example.com",
        "vrfy_disclose = no",
        "queue_only = no",
        "command_timeout = 5m",
        "data_timeout = 30s",
        "log_level = info",
        "",
    ])


# --------------------------------------------------------------------------
# -n: check the configuration


def test_check_good_file(tmp_path):
    f = tmp_path / "tern.conf"
    f.write_text(good_file_text(tmp_path))
    rc, out, err = run_ternd(["-n", "-c", str(f)])
    assert rc == 0, "ternd -n -c on a good file exited %d:\n%s%s" % (rc, out, err)


def test_check_good_overrides(tmp_path):
    rc, out, err = run_ternd(["-n"] + o_args(base_opts(tmp_path)) +
                             ["-o", "max_message_size=25M", "-o", "data_timeout=5m"])
    assert rc == 0, "ternd -n exited %d:\n%s%s" % (rc, out, err)


@pytest.mark.parametrize("bad_line, what", [
    ("this line has no equals sign", None),
    ("nosuchkey = 1", "nosuchkey"),
    ("max_recipients = lots", "max_recipients"),
    ("max_message_size = 10Q", "max_message_size"),
    ("vrfy_disclose = maybe", "vrfy_disclose"),
    ("relay_networks = 10.0.0.0/33", "relay_networks"),
    ("data_timeout = soon", "data_timeout"),
])
def test_check_bad_file_names_file_and_line(tmp_path, bad_line, what):
    lines = good_file_text(tmp_path).split("\n")
    lines.insert(5, bad_line)          # becomes line 6
    f = tmp_path / "bad.conf"
    f.write_text("\n".join(lines))
    rc, out, err = run_ternd(["-n", "-c", str(f)])
    both = out + err
    assert rc == 2, "ternd -n -c on a bad file exited %d (expected 2):\n%s" % (rc, both)
    assert "%s:6" % f in both, "no %s:6 in the output:\n%s" % (f, both)
    if what:
        assert what in both, "the output does not name %s:\n%s" % (what, both)


def test_check_reports_every_problem(tmp_path):
    lines = good_file_text(tmp_path).split("\n")
    lines.insert(2, "max_recipients = many")   # line 3
    lines.append("nosuchkey = 1")              # the last line
    f = tmp_path / "bad.conf"
    f.write_text("\n".join(lines))
    rc, out, err = run_ternd(["-n", "-c", str(f)])
    both = out + err
    assert rc == 2, both
    assert "%s:3" % f in both, both
    assert "%s:%d" % (f, len(lines)) in both, both


def test_check_bad_override_names_key(tmp_path):
    rc, out, err = run_ternd(["-n"] + o_args(base_opts(tmp_path)) + ["-o", "max_recipients=abc"])
    assert rc == 2, out + err
    assert "max_recipients" in out + err


def test_check_missing_file(tmp_path):
    missing = tmp_path / "does-not-exist.conf"
    rc, out, err = run_ternd(["-n", "-c", str(missing)])
    assert rc == 2, out + err
    assert str(missing) in out + err


# --------------------------------------------------------------------------
# Starting with a bad configuration: message on stderr, exit 2


def test_unknown_key(tmp_path):
    rc, out, err = run_ternd(o_args(base_opts(tmp_path)) + ["-o", "nosuchkey=1"])
    assert rc == 2, "exit code %d, stderr:\n%s" % (rc, err)
    assert "nosuchkey" in err, err


@pytest.mark.parametrize("key, value", [
    ("max_recipients", "abc"),
    ("max_recipients", "-1"),
    ("max_message_size", "lots"),
    ("max_message_size", "10Q"),
    ("max_line_length", "abc"),
    ("vrfy_disclose", "maybe"),
    ("queue_only", "perhaps"),
    ("command_timeout", "forever"),
    ("data_timeout", "5x"),
    ("relay_networks", "10.0.0.0/33"),
    ("relay_networks", "not-a-network"),
    ("listen", "nonsense"),
    ("listen", "127.0.0.1:99999"),
])
def test_bad_value_names_key(tmp_path, key, value):
    rc, out, err = run_ternd(o_args(base_opts(tmp_path)) + ["-o", "%s=%s" % (key, value)])
    assert rc == 2, "-o %s=%s: exit code %d, stderr:\n%s" % (key, value, rc, err)
    assert key in err, "-o %s=%s: stderr does not name %s:\n%s" % (key, value, key, err)


def test_listen_address_in_use(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        rc, out, err = run_ternd(o_args(base_opts(tmp_path, port=port)))
    addr = "127.0.0.1:%d" % port
    assert rc == 2, "exit code %d with %s in use, stderr:\n%s" % (rc, addr, err)
    assert addr in err, "stderr does not name %s:\n%s" % (addr, err)


# --------------------------------------------------------------------------
# The configuration is used


def test_config_file_is_used(ternd, tmp_path):
    f = tmp_path / "tern.conf"
    f.write_text(good_file_text(tmp_path))
    # the -o listen= of the fixture picks the port; the banner comes from the file
    s = ternd(args=["-c", str(f)])
    c = s.connect(greeting=False)
    c.expect(None, "220 mx.test.example ESMTP tern from a file")


def test_listen_on_several_addresses(ternd):
    p1, p2 = free_port(), free_port()
    ternd(listen="127.0.0.1:%d,127.0.0.1:%d" % (p1, p2))
    for port in (p1, p2):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.settimeout(10)
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = sock.recv(1024)
                assert chunk, "port %d closed without a greeting" % port
                data += chunk
            assert data == (GREETING + "\r\n").encode(), "port %d greeted %r" % (port, data)


def test_sigterm_exits_zero(server):
    c = server.session()
    c.expect("NOOP", "250 2.0.0 OK")
    # an open session does not hold the shutdown up
    server.stop_checked()
