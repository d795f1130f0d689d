#!/usr/bin/env python3
"""End-to-end tests of the web pages in real headless Chromium (Debian's chromium and
chromium-driver), driven through chromedriver's WebDriver protocol with the standard library.

    python3 tests/e2e/pages.py target/debug/vaxpass

Signs a small batch into a fresh database, starts `vaxpass serve` on it, then checks what a
person sees: on /verify the verdict, the reason and the name with its diacritics, for pasted
text and for an uploaded photo; on /passport the QR image and download links after a lookup,
and the "not found" message for a wrong claim code. Prints `N passed, M failed` last.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/vaxpass"))
KEYS = os.path.join(ROOT, "keys-example")
REGISTRY = "id_number,old_id,full_name,dob,sex\n001090000123,,Nguyễn Văn An,1990-05-02,M\n"
DOSES = ("record_id,facility_code,id_number,full_name,dob,sex,nationality,phone,vaccine,lot,dose_number,vaccination_date\n"
         "R1,01001,001090000123,Nguyen Van An,02/05/1990,Nam,,,AstraZeneca,,,2021-07-01\n"
         "R2,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,Pfizer,,,2021-10-01\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read() or b"null")


def wait_http(url, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Browser:
    """The few WebDriver commands the tests need."""

    def __init__(self, driver, profile):
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     f"--user-data-dir={profile}", "--window-size=412,915"]}}}}
        self.base = driver
        self.session = http("POST", f"{driver}/session", caps)["value"]["sessionId"]

    def cmd(self, method, path, body=None):
        return http(method, f"{self.base}/session/{self.session}{path}", body)["value"]

    def go(self, url):
        self.cmd("POST", "/url", {"url": url})

    def find(self, css):
        el = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(el.values()))

    def type(self, css, text):
        self.cmd("POST", f"/element/{self.find(css)}/value", {"text": text})

    def clear(self, css):
        self.cmd("POST", f"/element/{self.find(css)}/clear", {})

    def click(self, css):
        self.cmd("POST", f"/element/{self.find(css)}/click", {})

    def text(self, css):
        return self.cmd("GET", f"/element/{self.find(css)}/text")

    def script(self, js):
        return self.cmd("POST", "/execute/sync", {"script": js, "args": []})

    def wait_text(self, css, pred, seconds=10):
        deadline = time.time() + seconds
        last = ""
        while time.time() < deadline:
            last = self.text(css)
            if pred(last):
                return last
            time.sleep(0.1)
        raise AssertionError(f"{css}: {last!r}")

    def screenshot(self, path):
        import base64
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(self.cmd("GET", "/screenshot")))

    def quit(self):
        try:
            http("DELETE", f"{self.base}/session/{self.session}")
        except Exception:
            pass


def main():
    work = tempfile.mkdtemp(prefix="vaxpass-e2e-")
    with open(os.path.join(work, "registry.csv"), "w", encoding="utf-8") as fh:
        fh.write(REGISTRY)
    with open(os.path.join(work, "doses.csv"), "w", encoding="utf-8") as fh:
        fh.write(DOSES)
    db = f"sqlite://{work}/v.db"
    secret = os.path.join(work, "secret")
    subprocess.run([BIN, "sign", "--key", f"{KEYS}/facility-01001/key.pem", "--cert", f"{KEYS}/facility-01001/cert.pem",
                    "--input", f"{work}/doses.csv", "--registry", f"{work}/registry.csv", "--out", f"{work}/out",
                    "--db", db, "--secret", secret, "--json"], check=True, stdout=subprocess.DEVNULL)
    passport = json.loads(open(f"{work}/out/passports.jsonl", encoding="utf-8").readline())
    photo = os.path.join(work, "qr.png")
    subprocess.run([BIN, "render", "--format", "png", "--out", photo, passport["hc1"]], check=True)

    port, driver_port = free_port(), free_port()
    env = dict(os.environ, VAXPASS_KEYS=KEYS, VAXPASS_SECRET=secret, RUST_LOG="warn")
    server = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--db", db], env=env,
                              stderr=subprocess.DEVNULL)
    chromedriver = subprocess.Popen(["chromedriver", f"--port={driver_port}"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    site = f"http://127.0.0.1:{port}"
    passed, failed = 0, 0
    browser = None
    try:
        wait_http(f"{site}/healthz")
        wait_http(f"http://127.0.0.1:{driver_port}/status")
        browser = Browser(f"http://127.0.0.1:{driver_port}", os.path.join(work, "profile"))

        def pasted_passport_shows_valid_and_the_name():
            browser.go(f"{site}/verify")
            browser.type("#qr", passport["hc1"])
            browser.click("#check")
            assert "HỢP LỆ · VALID" in browser.wait_text("#verdict", bool)
            details = browser.text("#details")
            assert "Nguyễn Văn An" in details, details
            assert "Mũi 2/2 · Dose 2/2" in details, details
            browser.screenshot(os.path.join(ROOT, "target", "e2e-verify.png"))

        def altered_passport_shows_not_valid_and_why():
            browser.go(f"{site}/verify")
            hc1 = passport["hc1"]
            altered = hc1[:60] + ("A" if hc1[60] != "A" else "B") + hc1[61:]
            browser.type("#qr", altered)
            browser.click("#check")
            assert "KHÔNG HỢP LỆ · NOT VALID" in browser.wait_text("#verdict", bool)
            reason = browser.text("#reason")
            assert "(" in reason and ")" in reason, reason

        def uploaded_photo_is_read():
            browser.go(f"{site}/verify")
            browser.type("#photo", photo)
            verdict = browser.wait_text("#verdict", bool, seconds=20)
            # The whole answer on failure: a clean CI run once showed another verdict here
            # (not reproduced in 40 photos against the service, nor in reruns).
            assert "HỢP LỆ · VALID" in verdict, (verdict, browser.text("#reason"), browser.text("#details"))
            assert "Nguyễn Văn An" in browser.text("#details")

        def passport_page_finds_and_offers_downloads():
            browser.go(f"{site}/passport")
            browser.type("#id_number", "001090000123")
            browser.type("#dob", "02/05/1990")
            browser.type("#claim_code", passport["claim_code"])
            browser.click("button")
            browser.wait_text("#result", lambda t: "PNG" in t)
            text = browser.text("#result")
            assert passport["uvci"] in text and "SVG" in text and "PDF" in text, text
            loaded = 0
            for _ in range(50):
                loaded = browser.script("const i = document.querySelector('#result img'); return i && i.complete ? i.naturalWidth : 0;")
                if loaded:
                    break
                time.sleep(0.1)
            assert loaded > 100, f"the QR image did not load ({loaded})"
            browser.screenshot(os.path.join(ROOT, "target", "e2e-passport.png"))

        def wrong_claim_code_is_not_found():
            browser.go(f"{site}/passport")
            browser.type("#id_number", "001090000123")
            browser.type("#dob", "02/05/1990")
            browser.type("#claim_code", "WRONGCODE9")
            browser.click("button")
            assert "Không tìm thấy" in browser.wait_text("#result", lambda t: "Đang tìm" not in t and t != "")

        for test in [pasted_passport_shows_valid_and_the_name, altered_passport_shows_not_valid_and_why,
                     uploaded_photo_is_read, passport_page_finds_and_offers_downloads, wrong_claim_code_is_not_found]:
            try:
                test()
                print(f"ok   {test.__name__}")
                passed += 1
            except Exception:
                print(f"FAIL {test.__name__}")
                traceback.print_exc()
                failed += 1
    finally:
        if browser:
            browser.quit()
        for p in (server, chromedriver):
            p.terminate()
            p.wait(timeout=10)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
