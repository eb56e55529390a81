"""The test mode's web page in a real browser: ternd with capture = yes
and http_listen, the page (web/) driven in headless Chromium by selenium
(Debian's chromium, chromium-driver, python3-selenium). Mail goes in by
smtplib; the page must show it live (server-sent events), search it, open
it, keep a hostile HTML body and subject inert (no script runs, nothing
remote loads), and delete it. Also: web/openapi.json is a well-formed
OpenAPI 3 document naming every route of src/http/api.c.

Screenshots are left in each test's directory (kept when a test fails);
TERN_WEB_SCREENSHOT=PATH also saves the list-and-message view there (how
docs/test-mode.png was made)."""
import http.server
import json
import os
import re
import smtplib
import threading
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest

from conftest import DEADLINE, REPO, free_port, run_ternd, wait_for

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:   # the checks of openapi.json still run
    webdriver = None

HAVE_BROWSER = webdriver is not None and os.access(CHROMEDRIVER, os.X_OK) and \
    os.access(CHROMIUM, os.X_OK)
need_browser = pytest.mark.skipif(not HAVE_BROWSER, reason="needs chromium, chromium-driver "
                                  "and python3-selenium (scripts/install-deps test)")


# ---- the daemon and its API ----

class Capture:
    """A ternd capturing everything, with its HTTP API on a port of its own."""

    def __init__(self, ternd, mailboxes=(), **extra):
        self.http_port = free_port()
        self.d = ternd(mailboxes=mailboxes, capture="yes",
                       http_listen="127.0.0.1:%d" % self.http_port, **extra)
        self.base = "http://127.0.0.1:%d" % self.http_port

    def get(self, path):
        """(status, body bytes) of a GET."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=DEADLINE) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, path):
        status, body = self.get(path)
        assert status == 200, "GET %s: %d %r" % (path, status, body[:300])
        return json.loads(body)

    def send(self, msg, rcpt="alice@example.com"):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=DEADLINE) as s:
            s.send_message(msg, from_addr="sender@example.org", to_addrs=[rcpt])

    def wait_id(self, subject_word):
        """The ID of the message a search for subject_word finds (the wait
        endpoint answers once it is captured: no polling, no sleep)."""
        q = urllib.parse.urlencode({"query": "subject:" + subject_word, "timeout": "10"})
        o = self.json("/api/v1/wait?" + q)
        assert o["messages"], o
        return o["messages"][0]["ID"]

    def ids(self):
        return [m["ID"] for m in self.json("/api/v1/messages?limit=1000")["messages"]]


def plain(subject, body="Hello from the test.\n", attach=None, sender="Sender <sender@example.org>"):
    m = EmailMessage()
    m["From"] = sender
    m["To"] = "alice@example.com"
    m["Subject"] = subject
    m.set_content(body)
    if attach:
        name, data = attach
        m.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return m


# ---- the browser ----

class Page:
    """Headless Chromium on the page, with bounded explicit waits."""

    def __init__(self, url, artifacts):
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                  "--window-size=1400,900", "--no-first-run", "--disable-extensions",
                  "--disable-background-networking", "--disable-component-update"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.artifacts = artifacts
        self.shots = 0
        self.logs = []
        self.driver.get(url)
        self.wait(lambda d: d.find_element(By.ID, "live").text == "live",
                  "the page's event stream to connect")

    def wait(self, cond, what, timeout=DEADLINE):
        # the list is drawn anew as mail comes: an element found may go stale
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                             ignored_exceptions=(StaleElementReferenceException,)).until(
            cond, message="waited %.0f s for %s" % (timeout, what))

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def item(self, subject):
        """The list item whose subject is exactly subject, or None (one
        look at the list as it is now)."""
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#messages li.msg')].find("
            "li => li.querySelector('.subject').textContent === arguments[0]) || null", subject)

    def wait_item(self, subject):
        return self.wait(lambda d: self.item(subject), "%r in the list" % subject)

    def open(self, subject):
        def click(d):
            li = self.item(subject)
            if li:
                li.click()
            return li
        self.wait(click, "%r in the list, clicked" % subject)
        self.wait(lambda d: self.find("#msg-subject").text == subject and
                  self.find("#message").is_displayed(), "the message %r to open" % subject)

    def shot(self, name):
        self.shots += 1
        path = self.artifacts / ("%02d-%s.png" % (self.shots, name))
        self.driver.save_screenshot(str(path))
        return path

    def log(self):
        """The browser's console so far (chromedriver hands each entry once)."""
        try:
            self.logs += self.driver.get_log("browser")
        except WebDriverException:
            pass
        return self.logs

    def script_errors(self):
        """Errors of the page's own script (not the 404s of the endpoints
        it probes, which are the network's)."""
        return [e for e in self.log() if e["level"] == "SEVERE" and e.get("source") != "network"]

    def close(self):
        (self.artifacts / "browser.log").write_text(
            "\n".join(json.dumps(e) for e in self.log()) + "\n")
        self.driver.quit()


@pytest.fixture
def web(ternd, tmp_path):
    """(the daemon, the page open on it)."""
    cap = Capture(ternd)
    page = Page(cap.base + "/", tmp_path)
    yield cap, page
    errors = page.script_errors()
    page.close()
    assert not errors, "the page's script failed: %s" % errors


def pwned(page):
    """What a script of a message would have left: the title, a data- marker."""
    return page.driver.execute_script(
        "return [document.title, document.body.dataset.pwned || '', "
        "document.documentElement.dataset.pwned || '']")


# ---- the tests ----

@need_browser
def test_new_mail_appears_live(web):
    cap, page = web
    page.driver.execute_script("window.ternNotReloaded = 42")
    assert page.item("Live arrival 1") is None
    cap.send(plain("Live arrival 1"))
    li = page.wait_item("Live arrival 1")
    assert "Sender" in li.find_element(By.CSS_SELECTOR, ".from").text
    assert "unread" in li.get_attribute("class")
    # the same document: it came by the event stream, not by a reload
    assert page.driver.execute_script("return window.ternNotReloaded") == 42
    cap.send(plain("Live arrival 2"))
    page.wait_item("Live arrival 2")
    # newest first; read in one script call (the list may be drawn anew
    # between a find and a read of its elements)
    want = ["Live arrival 2", "Live arrival 1"]
    page.wait(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#messages li.msg .subject')]"
        ".slice(0, 2).map(e => e.textContent)") == want, "the list to be %r" % want)
    page.wait(lambda d: "2 messages" in page.find("#list-count").text, "the count to say 2")
    page.shot("live")


@need_browser
def test_search_box(web):
    cap, page = web
    cap.send(plain("Quarterly zebra report"))
    cap.send(plain("Weekly giraffe notes"))
    page.wait_item("Quarterly zebra report")
    page.wait_item("Weekly giraffe notes")
    box = page.find("#search")
    box.send_keys("zebra", Keys.ENTER)
    page.wait(lambda d: page.item("Weekly giraffe notes") is None and
              page.item("Quarterly zebra report") is not None,
              "the search for zebra to list only its message")
    box.clear()
    box.send_keys("okapi", Keys.ENTER)
    page.wait(lambda d: not page.finds("#messages li.msg") and
              page.find("#list-empty").is_displayed(), "a search for okapi to find nothing")
    assert page.find("#list-empty").text == "Nothing matches."
    box.clear()
    box.send_keys("subject:giraffe", Keys.ENTER)
    page.wait(lambda d: page.item("Weekly giraffe notes") is not None and
              page.item("Quarterly zebra report") is None, "subject:giraffe")
    box.send_keys(Keys.ESCAPE)   # back to every message
    page.wait(lambda d: page.item("Quarterly zebra report") is not None, "the whole list back")
    page.shot("search")


@need_browser
def test_open_message(web):
    cap, page = web
    pdf = b"%PDF-1.4 a small attachment\n"
    cap.send(plain("Welcome to Example, Alice", body="Confirm your address to begin.\n",
                   sender="Example Team <team@example.org>"))
    cap.send(plain("Your password was changed", body="If this was not you, tell us.\n",
                   sender="Security <security@example.org>"), rcpt="bob@example.com")
    cap.send(plain("Your monthly statement", body="Dear Alice,\nthe numbers are in.\n",
                   attach=("statement-2026.pdf", pdf), sender="Billing <billing@example.org>"))
    page.open("Your monthly statement")
    page.wait(lambda d: "the numbers are in." in page.find("#msg-text").text, "the text body")
    assert "Dear Alice," in page.find("#msg-text").text
    env = page.find("#msg-envelope").text
    assert "billing@example.org" in env and "MAIL FROM:<sender@example.org>" in env
    assert "alice@example.com" in env
    links = page.finds("#msg-attachments a")
    assert [a.text for a in links] == ["statement-2026.pdf"]
    # the link downloads that part, as an attachment
    href = links[0].get_attribute("href")
    with urllib.request.urlopen(href, timeout=DEADLINE) as r:
        assert r.read() == pdf
        assert r.headers["Content-Disposition"].startswith("attachment")
    # opened: read now, in the list too
    page.wait(lambda d: "unread" not in page.item("Your monthly statement").get_attribute("class"),
              "the message to show as read")
    # the other views: headers, raw source, MIME tree
    page.find('#tabs [data-tab="headers"]').click()
    page.wait(lambda d: "Your monthly statement" in page.find("#msg-headers").text, "headers")
    page.find('#tabs [data-tab="raw"]').click()
    page.wait(lambda d: "Content-Disposition: attachment" in page.find("#msg-raw").text, "raw")
    page.find('#tabs [data-tab="parts"]').click()
    page.wait(lambda d: "statement-2026.pdf" in page.find("#msg-parts").text, "the MIME tree")
    assert "multipart/mixed" in page.find("#msg-parts").text
    page.find('#tabs [data-tab="text"]').click()
    path = page.shot("message")
    want = os.environ.get("TERN_WEB_SCREENSHOT")
    if want:
        Path(want).write_bytes(path.read_bytes())


class Beacon(http.server.BaseHTTPRequestHandler):
    """Counts every request (a remote image, a stylesheet) it gets."""
    hits = None

    def do_GET(self):
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def beacon():
    hits = []
    handler = type("B", (Beacon,), {"hits": hits})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1], hits
    srv.shutdown()
    srv.server_close()


@need_browser
def test_hostile_html_stays_inert(web, beacon):
    cap, page = web
    port, hits = beacon
    # the beacon answers (so silence below means the page asked nothing)
    with urllib.request.urlopen("http://127.0.0.1:%d/control" % port, timeout=DEADLINE) as r:
        r.read()
    assert hits == ["/control"]
    b = "http://127.0.0.1:%d" % port
    html = ("<html><head><link rel=stylesheet href='%s/style.css'></head><body>"
            "<h1 id=hello>Hello hostile</h1>"
            "<script>document.title='pwned'; parent.document.title='pwned';"
            " parent.document.body.dataset.pwned='script'; new Image().src='%s/script.png';"
            "</script>"
            "<img src='%s/beacon.png' alt=beacon>"
            "<img src='nowhere.png' onerror=\"parent.document.body.dataset.pwned='onerror';"
            " new Image().src='%s/onerror.png'\">"
            "<div style=\"background:url('%s/css.png')\">styled</div>"
            "<iframe src='%s/frame.html'></iframe>"
            "<form action='%s/form'><input name=q></form>"
            "</body></html>") % (b, b, b, b, b, b, b)
    m = EmailMessage()
    m["From"] = "Mallory <mallory@example.net>"
    m["To"] = "alice@example.com"
    m["Subject"] = "Hostile HTML"
    m.set_content(html, subtype="html")
    cap.send(m)
    page.open("Hostile HTML")
    # HTML only: its tab is the one shown
    frame = page.wait(lambda d: page.finds("#msg-html iframe.html-body"), "the HTML frame")[0]
    assert frame.get_attribute("sandbox") == ""
    # loaded: every fetch it would make was made (or refused) by now
    page.wait(lambda d: frame.get_attribute("data-loaded") == "1", "the frame's load event")
    page.driver.switch_to.frame(frame)
    try:
        page.wait(lambda d: d.find_element(By.ID, "hello").text == "Hello hostile",
                  "the HTML body rendered")
    finally:
        page.driver.switch_to.default_content()
    page.shot("hostile-html")
    assert pwned(page) == ["tern", "", ""]
    log = json.dumps(page.log())
    assert "pwned" not in log
    assert hits == ["/control"], "the message made the browser fetch %s" % hits[1:]


@need_browser
def test_hostile_subject_is_text(web):
    cap, page = web
    subject = ("<b>bold</b><script>document.body.dataset.pwned='subject'</script>"
               "<img src=x onerror=\"document.body.dataset.pwned='img'\">")
    cap.send(plain(subject, body="<i>not italic</i><script>alert(1)</script>\n"))
    page.wait_item(subject)
    assert not page.finds("#messages b, #messages script, #messages img, #messages i")
    page.open(subject)
    assert page.find("#msg-subject").text == subject
    assert not page.finds("#msg-subject *, #msg-text *")
    assert "<i>not italic</i><script>alert(1)</script>" in page.find("#msg-text").text
    page.find('#tabs [data-tab="raw"]').click()
    page.wait(lambda d: "Subject:" in page.find("#msg-raw").text, "the raw source")
    assert not page.finds("#msg-raw *")
    assert pwned(page) == ["tern", "", ""]
    page.shot("hostile-subject")


@need_browser
def test_delete_from_page(web):
    cap, page = web
    cap.send(plain("Keep me"))
    cap.send(plain("Delete me"))
    gone = cap.wait_id("Delete")
    kept = cap.wait_id("Keep")
    page.open("Delete me")
    page.find("#msg-delete").click()
    page.wait(lambda d: page.item("Delete me") is None, "the item to leave the list")
    assert page.find("#placeholder").is_displayed()
    wait_for("the API list without the deleted message", lambda: gone not in cap.ids())
    assert kept in cap.ids()
    assert cap.get("/api/v1/message/%s" % gone)[0] == 404
    # the keyboard: select, Delete
    page.wait_item("Keep me")
    page.find("#messages").send_keys("j")
    page.wait(lambda d: "selected" in page.item("Keep me").get_attribute("class"),
              "j to select the message")
    page.find("#messages").send_keys(Keys.DELETE)
    page.wait(lambda d: page.item("Keep me") is None, "Delete to remove it")
    wait_for("the API list empty", lambda: cap.ids() == [])


@need_browser
def test_release_from_page(ternd, tmp_path):
    cap = Capture(ternd, mailboxes=("bob@example.com",))
    cap.send(plain("Release me", body="Released body marker 7Q2.\n"))
    page = Page(cap.base + "/", tmp_path)
    try:
        page.open("Release me")
        page.find("#release-to").send_keys("bob@example.com", Keys.ENTER)
        page.wait(lambda d: page.find("#msg-notice").text.startswith("Released to bob@example.com"),
                  "the release to be confirmed")
        # really delivered, and still captured
        assert b"Released body marker 7Q2." in cap.d.wait_message_with("bob@example.com", "7Q2")
        assert len(cap.ids()) == 1
        page.find("#release-to").clear()
        page.find("#release-to").send_keys("not an address", Keys.ENTER)
        page.wait(lambda d: "Release failed" in page.find("#msg-notice").text, "a refusal shown")
    finally:
        page.close()


@need_browser
def test_delete_all_confirmed(web):
    cap, page = web
    for i in range(3):
        cap.send(plain("Bulk %d" % i))
    page.wait_item("Bulk 2")
    page.wait(lambda d: len(page.finds("#messages li.msg")) == 3, "three messages listed")
    page.find("#delete-all").click()
    alert = page.wait(lambda d: d.switch_to.alert, "the confirmation")
    assert "Delete the 3 messages" in alert.text
    alert.dismiss()                       # no: nothing goes
    assert len(cap.ids()) == 3
    page.find("#delete-all").click()
    page.wait(lambda d: d.switch_to.alert, "the confirmation").accept()
    page.wait(lambda d: not page.finds("#messages li.msg"), "the list emptied")
    wait_for("the API list empty", lambda: cap.ids() == [])


@need_browser
def test_transcript_panel(ternd, tmp_path):
    rc, _, _ = run_ternd(["-n", "-o", "transcripts=yes"])
    extra = {"transcripts": "yes"} if rc == 0 else {}
    cap = Capture(ternd, **extra)
    cap.send(plain("Transcript please"))
    mid = cap.wait_id("Transcript")
    status, _ = cap.get("/api/v1/message/%s/transcript" % mid)
    if status == 404:
        pytest.skip("GET /api/v1/message/{ID}/transcript answers 404: this ternd has no "
                    "transcripts (transcripts = yes%s)" % ("" if extra else ", an unknown key"))
    page = Page(cap.base + "/", tmp_path)
    try:
        page.open("Transcript please")
        tab = page.wait(lambda d: [t for t in page.finds('#tabs [data-tab="transcript"]')
                                   if t.is_displayed()], "the transcript tab")[0]
        tab.click()
        page.wait(lambda d: re.search(r"^C:\s+EHLO\b", page.find("#msg-transcript").text,
                                      re.I | re.M), "the EHLO line in the transcript")
        text = page.find("#msg-transcript").text
        assert re.search(r"^S:\s+250 2\.6\.0 ", text, re.M), text
        # the lint of a message without Date and Message-ID (EmailMessage adds neither)
        page.find('#tabs [data-tab="lint"]').click()
        page.wait(lambda d: "no-date" in page.find("#msg-lint").text, "the lint panel")
        assert "no-message-id" in page.find("#msg-lint").text
        assert "RFC 5322" in page.find("#msg-lint").text
        # a session that made no message is there too, in the sessions tool
        with smtplib.SMTP("127.0.0.1", cap.d.port, timeout=DEADLINE) as s:
            s.ehlo("refused.example")
            s.mail("sender@example.org")
        page.find("#tool-sessions").click()
        page.wait(lambda d: "refused.example" in page.find("#tool-body table").text,
                  "the sessions listed")
        page.find("#tool-body tbody tr").click()   # the newest
        page.wait(lambda d: re.search(r"^C:\s+MAIL FROM:<sender@example.org>",
                                      page.find("#session-transcript").text, re.M | re.I),
                  "the session's transcript")
    finally:
        page.shot("transcript")
        page.close()


# ---- the OpenAPI document ----

def test_openapi_document(ternd):
    doc = json.loads((REPO / "web" / "openapi.json").read_text())
    assert doc["openapi"].startswith("3.0.")
    assert doc["info"]["title"] and doc["info"]["version"]
    try:   # the full check, where the validator is installed (it is not in Debian 12)
        from openapi_spec_validator import validate
    except ImportError:
        validate = None
    if validate:
        validate(doc)
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    refs = set()

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "$ref":
                    refs.add(v)
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(doc)
    for ref in refs:   # every reference resolves
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            assert part in node, "dangling $ref %s" % ref
            node = node[part]
    for path, item in doc["paths"].items():
        assert path.startswith("/"), path
        for m, op in item.items():
            if m == "parameters":
                continue
            assert m in methods, (path, m)
            assert op.get("responses"), (path, m)
            assert op.get("summary") or op.get("description"), (path, m)
            for p in op.get("parameters", []) + item.get("parameters", []):
                if "$ref" not in p:
                    assert p["in"] in ("path", "query", "header") and p["name"], (path, p)
            for name in re.findall(r"{(\w+)}", path):   # each path parameter declared
                declared = [p for p in op.get("parameters", []) + item.get("parameters", [])
                            if "$ref" in p or (p["in"] == "path" and p["name"] == name)]
                assert declared, (path, m, name)
    # every route of the server is documented, with its method
    src = (REPO / "src" / "http" / "api.c").read_text()
    names = {"G": "get", "D": "delete", "P": "post"}
    routes = re.findall(r'{ ([GDP]), "(/api/v1/[^"]*)"', src)
    assert len(routes) >= 16
    for m, route in routes:
        shaped = re.sub(r"{}", "{X}", route)
        found = [p for p in doc["paths"] if re.sub(r"{\w+}", "{X}", p) == shaped]
        assert found and names[m] in doc["paths"][found[0]], "%s %s undocumented" % (m, route)
    # and the server serves this very document
    cap = Capture(ternd)
    assert cap.json("/api/v1/openapi.json") == doc
    assert cap.json("/openapi.json") == doc
