"""A full spool disk: 452 4.3.1 Insufficient system storage, and nothing
already acknowledged is lost. The spool is a real 2 MB tmpfs."""

import os
import shutil
import subprocess

import pytest

from conftest import BYE, QUEUED, RCPT_OK, SENDER_OK, START_DATA, crlf


@pytest.fixture
def small_spool(tmp_path):
    d = tmp_path / "spool"
    d.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(d)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % r.stderr.decode())
    yield d
    subprocess.run(["umount", "-l", str(d)], check=True)


def test_full_spool_gives_452_and_keeps_acknowledged_mail(small_spool, ternd, tmp_path):
    s = ternd(spool_dir=str(small_spool), queue_only="yes", max_message_size="20M")
    s.make_maildir("x@example.com")
    c = s.session()
    qid = c.send_mail("a@client.example", ["x@example.com"], crlf("Subject: first", "", "kept-mail"))
    # 4 MB cannot fit in 2 MB: the spool fills while the message streams in
    c.expect("MAIL FROM:<a@client.example>", SENDER_OK)
    c.expect("RCPT TO:<x@example.com>", RCPT_OK)
    c.expect("DATA", START_DATA)
    line = b"y" * 76 + b"\r\n"
    c.raw(b"Subject: big\r\n\r\n" + line * (4 * 1024 * 1024 // len(line)) + b".\r\n")
    c.expect_reply("452 4.3.1 Insufficient system storage", after="4 MB on a 2 MB spool")
    c.expect("NOOP", "250 2.0.0 OK")        # the session goes on
    # a small message while the spool is still full is refused the same way,
    # never acknowledged without being stored
    c.expect("MAIL FROM:<a@client.example>", SENDER_OK)
    c.expect("RCPT TO:<x@example.com>", RCPT_OK)
    c.expect("DATA", START_DATA)
    c.raw(crlf("Subject: small", "", "while-full") + b".\r\n")
    r = c.reply()
    assert r.code in (250, 452), r.text
    print("small message while the spool is full:", r.text)
    c.expect("QUIT", BYE)
    s.stop_checked()
    # The administrator frees space (here: moves the spool to a larger
    # disk); every acknowledged message is there and gets delivered.
    roomy = tmp_path / "roomy-spool"
    shutil.copytree(small_spool, roomy)
    s2 = ternd(spool_dir=str(roomy))
    data = s2.wait_message_with("x@example.com", "kept-mail")
    assert qid.encode() in data
    if r.code == 250:
        s2.wait_message_with("x@example.com", "while-full")
    else:
        s2.barrier("x@example.com")
        assert not any(b"while-full" in f.read_bytes() for f in s2.messages("x@example.com"))
    assert not any(b"Subject: big" in f.read_bytes() for f in s2.messages("x@example.com"))
