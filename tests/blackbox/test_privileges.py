"""Started as root, ternd binds its ports, then runs as run_user and can
never become root again; it refuses to start when it cannot drop."""

import grp
import os

import pytest

from conftest import BYE, RUN_USER, crlf, run_ternd, run_user_ids, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="privilege drop needs root")


def ids_of(pid):
    """Real, effective, saved and filesystem uid and gid from /proc."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(x) for x in rest.split()]
    return out


def test_runs_as_run_user_after_start(server):
    uid, gid = run_user_ids()
    ids = ids_of(server.proc.pid)
    assert ids["Uid"] == [uid] * 4, "uids (real, effective, saved, fs) %r, want all %d" % (ids["Uid"], uid)
    assert ids["Gid"] == [gid] * 4, "gids %r, want all %d" % (ids["Gid"], gid)
    assert ids["Groups"] == [gid], "supplementary groups %r, want only %d" % (ids["Groups"], gid)
    assert "running as %s" % RUN_USER in server.log()


def test_queue_files_belong_to_run_user(ternd):
    s = ternd(queue_only="yes")
    uid, gid = run_user_ids()
    c = s.session()
    c.send_mail("a@client.example", ["postmaster@example.com"], crlf("Subject: own", "", "x"))
    c.expect("QUIT", BYE)
    names = sorted(os.listdir(s.spool_dir))
    assert "queue.db" in names and "queue.db-wal" in names, names
    # the maildrop has the group that tern-sendmail is setgid to; spool_dir
    # lets it (and control_group) pass, and the files are run_user's alone
    drop = grp.getgrnam("tern-drop").gr_gid
    for n in names:
        st = os.stat(s.spool_dir / n)
        want = (uid, drop if n == "maildrop" else gid)
        assert (st.st_uid, st.st_gid) == want, "%s owned by %d:%d" % (n, st.st_uid, st.st_gid)
        if n.startswith("queue.db"):
            assert st.st_mode & 0o077 == 0, "%s mode %o" % (n, st.st_mode)
    st = os.stat(s.spool_dir)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (uid, gid, 0o711)


def test_root_owned_spool_from_earlier_run_is_taken_over(ternd, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "queue.db").write_bytes(b"")   # as root, as an old root run left it
    s = ternd()
    uid, _ = run_user_ids()
    assert os.stat(spool / "queue.db").st_uid == uid
    c = s.session()
    c.expect("QUIT", BYE)


def test_spool_and_mail_under_parents_it_makes(ternd, tmp_path):
    """spool_dir and mail_dir below directories that do not exist yet (as
    ./var/... on a first start): the parents ternd makes as root can be
    passed through by run_user, which then owns what is below."""
    top = tmp_path / "new" / "var"
    s = ternd(spool_dir=str(top / "spool"), mail_dir=str(top / "mail"))
    assert os.stat(top).st_mode & 0o111 == 0o111
    c = s.session()
    c.send_mail("a@b.example", ["postmaster@mx.test.example"], crlf("Subject: x", "", "parents"))
    c.expect("QUIT", BYE)
    new = top / "mail" / "mx.test.example" / "postmaster" / "new"
    wait_for("the message in %s" % new,
             lambda: new.is_dir() and any(b"parents" in f.read_bytes() for f in new.iterdir()))


def test_delivered_mail_and_postmaster_mailbox_belong_to_run_user(server):
    uid, _ = run_user_ids()
    pm = server.mail_dir / "mx.test.example" / "postmaster"
    assert os.stat(pm).st_uid == uid, "postmaster mailbox made before dropping root"
    server.make_maildir("kate@example.com")
    c = server.session()
    c.send_mail("a@client.example", ["kate@example.com"], crlf("Subject: x", "", "owned"))
    data_files = []
    server.wait_message_with("kate@example.com", "owned")
    data_files = server.messages("kate@example.com")
    assert os.stat(data_files[0]).st_uid == uid


@pytest.mark.parametrize("user,why", [
    ("no-such-user-tern", "no such user"),
    ("root", "is root"),
])
def test_refuses_to_start_without_a_user_to_drop_to(tmp_path, user, why):
    rc, out, err = run_ternd([
        "-o", "listen=127.0.0.1:1", "-o", "run_user=%s" % user,
        "-o", "spool_dir=%s" % (tmp_path / "spool"), "-o", "mail_dir=%s" % (tmp_path / "mail"),
        "-o", "hostname=mx.test.example"])
    assert rc == 2, "exit code %d\n%s" % (rc, err)
    assert why in err, err
    assert not (tmp_path / "spool" / "queue.db").exists(), "spool opened before refusing"
