#!/usr/bin/env python3
"""End-to-end tests of the web pages in real headless Chromium (Debian's chromium and
chromium-driver), driven through chromedriver's WebDriver protocol with the standard library.

    python3 tests/e2e/pages.py target/debug/vaxpass

Signs a small batch into a fresh database, starts `vaxpass serve` on it, then checks what a
person sees: on /verify the verdict, the reason and the name with its diacritics, for pasted
text and for an uploaded photo; on /passport the QR image and download links after a lookup,
and the "not found" message for a wrong claim code; on /passport a citizen's report of a
problem and its status; on /station a facility's upload with its rejected rows and its queue
of correction requests, overdue ones in red, closed with a note; on /dashboard charts that
carry the numbers of /api/v1/stats. The border's /verify page is also driven through
Chromium's fake camera (a Y4M clip of a QR code rendered by `vaxpass render`: the page reads
it continuously, with no photo taken) and a handheld scanner's keystrokes (the code, then
Enter), with green and yellow answers. Screenshots go to target/e2e-*.png, and where the DOM
cannot tell (a colour actually drawn) the test reads the screenshot's pixels. Prints
`N passed, M failed` last.
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
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/vaxpass"))
KEYS = os.path.join(ROOT, "keys-example")
REGISTRY = "id_number,old_id,full_name,dob,sex\n001090000123,,Nguyễn Văn An,1990-05-02,M\n"
# A second person with one dose of a two-dose series: a valid passport that fails the entry
# rule "complete primary series or booster" (rules/vn/VR-VN-0002.json).
REGISTRY_ONE_DOSE = "id_number,old_id,full_name,dob,sex\n001192000456,,Trần Thị Bình,1992-03-04,F\n"
DOSES_ONE_DOSE = ("record_id,facility_code,id_number,full_name,dob,sex,nationality,phone,vaccine,lot,dose_number,vaccination_date\n"
                  "R9,01001,001192000456,Trần Thị Bình,04/03/1992,Nữ,,,AstraZeneca,,,2021-07-01\n")
DOSES = ("record_id,facility_code,id_number,full_name,dob,sex,nationality,phone,vaccine,lot,dose_number,vaccination_date\n"
         "R1,01001,001090000123,Nguyen Van An,02/05/1990,Nam,,,AstraZeneca,,,2021-07-01\n"
         "R2,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,Pfizer,,,2021-10-01\n")


ADMIN_TOKEN = "e2e-admin-token"
# The service's clock for correction requests (serve --at), and 50 hours later.
CLOCK = "2027-01-10T00:00:00Z"
LATER = "2027-01-12T02:00:00Z"
UPLOAD = ("record_id,facility_code,id_number,full_name,dob,sex,nationality,phone,vaccine,lot,dose_number,vaccination_date\n"
          "S1,01001,001090000123,Nguyễn Văn An,02/05/1990,Nam,,,Pfizer,,,2022-02-01\n"
          "S2,01001,001090000123,Nguyễn Văn Ba,02/05/1990,Nam,,,Pfizer,,,2022-08-01\n")


def png_pixels(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit, non-interlaced PNG: RGB or RGBA
    as Chromium writes screenshots, grey as `vaxpass render` writes QR codes; standard library
    only."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[0:4], "big"), int.from_bytes(body[4:8], "big")
            depth, color, interlace = body[8], body[9], body[12]
            assert depth == 8 and color in (0, 2, 4, 6) and interlace == 0, (depth, color, interlace)
            bpp = {0: 1, 2: 3, 4: 2, 6: 4}[color]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, prev, rows = zlib.decompress(idat), width * bpp, bytearray(width * bpp), []
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if bpp < 3:
            rows.append([(line[x * bpp],) * 3 for x in range(width)])
        else:
            rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


def count_color(path, rgb, tolerance=12):
    """Pixels of the screenshot within `tolerance` of `rgb` in every channel."""
    _, _, rows = png_pixels(path)
    return sum(1 for row in rows for px in row if all(abs(px[i] - rgb[i]) <= tolerance for i in range(3)))


def hex_rgb(h):
    return tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
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

    def __init__(self, driver, profile, extra_args=()):
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     f"--user-data-dir={profile}", "--window-size=412,915", *extra_args]}}}}
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

    def attr(self, css, name):
        return self.cmd("GET", f"/element/{self.find(css)}/attribute/{name}")

    def wait_script(self, js, seconds=15):
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = self.script(js)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"never true: {js}")

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

    def keys(self, text):
        """Types `text` into whatever has the focus, as a keyboard (or a handheld scanner) does."""
        actions = []
        for ch in text:
            actions += [{"type": "keyDown", "value": ch}, {"type": "keyUp", "value": ch}]
        self.cmd("POST", "/actions", {"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})

    def screenshot(self, path):
        import base64
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(self.cmd("GET", "/screenshot")))

    def quit(self):
        try:
            http("DELETE", f"{self.base}/session/{self.session}")
        except Exception:
            pass


def png_grey(path):
    """The grey levels of an 8-bit PNG (what `vaxpass render --format png` writes), as rows."""
    return [[px[0] for px in row] for row in png_pixels(path)[2]]


def qr_video(png, out, width=640, height=480):
    """A Y4M clip (Chromium's fake camera input) of one grey frame showing the QR code of
    `png`, scaled to fit with a white border, as a phone camera held over a passport sees it."""
    pixels = png_grey(png)
    size = min(width, height) - 40
    scale = size / len(pixels)
    left, top = (width - size) // 2, (height - size) // 2
    luma = bytearray([235]) * (width * height)
    for y in range(size):
        row = pixels[int(y / scale)]
        base = (top + y) * width + left
        for x in range(size):
            luma[base + x] = 16 if row[int(x / scale)] < 128 else 235
    chroma = bytes([128]) * (width // 2 * height // 2 * 2)
    with open(out, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(2):
            fh.write(b"FRAME\n" + bytes(luma) + chroma)


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
    one_dose_dir = os.path.join(work, "one-dose")
    os.mkdir(one_dose_dir)
    with open(os.path.join(one_dose_dir, "registry.csv"), "w", encoding="utf-8") as fh:
        fh.write(REGISTRY_ONE_DOSE)
    with open(os.path.join(one_dose_dir, "doses.csv"), "w", encoding="utf-8") as fh:
        fh.write(DOSES_ONE_DOSE)
    subprocess.run([BIN, "sign", "--key", f"{KEYS}/facility-01001/key.pem", "--cert", f"{KEYS}/facility-01001/cert.pem",
                    "--input", f"{one_dose_dir}/doses.csv", "--registry", f"{one_dose_dir}/registry.csv",
                    "--out", f"{one_dose_dir}/out", "--db", f"sqlite://{one_dose_dir}/v.db", "--secret", secret, "--json"],
                   check=True, stdout=subprocess.DEVNULL)
    one_dose = json.loads(open(f"{one_dose_dir}/out/passports.jsonl", encoding="utf-8").readline())

    with open(os.path.join(work, "upload.csv"), "w", encoding="utf-8") as fh:
        fh.write(UPLOAD)
    token = subprocess.run([BIN, "token", "--facility", "01001", "--db", db], check=True, capture_output=True,
                           text=True).stdout.split()[0]
    assert token.startswith("vxp_"), token

    port, later_port, driver_port = free_port(), free_port(), free_port()
    env = dict(os.environ, VAXPASS_KEYS=KEYS, VAXPASS_SECRET=secret, RUST_LOG="warn",
               VAXPASS_ADMIN_TOKEN=ADMIN_TOKEN, VAXPASS_REGISTRY=os.path.join(work, "registry.csv"))
    server = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--db", db, "--at", CLOCK], env=env,
                              stderr=subprocess.DEVNULL)
    # A second instance on the same database whose clock is 50 hours later: requests filed
    # through the first are overdue here.
    later = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{later_port}", "--db", db, "--at", LATER],
                             env=env, stderr=subprocess.DEVNULL)
    chromedriver = subprocess.Popen(["chromedriver", f"--port={driver_port}"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    site = f"http://127.0.0.1:{port}"
    later_site = f"http://127.0.0.1:{later_port}"
    passed, failed = 0, 0
    browser = None
    try:
        wait_http(f"{site}/healthz")
        wait_http(f"{later_site}/healthz")
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


        def citizen_reports_a_problem_and_checks_it():
            browser.go(f"{site}/passport")
            browser.click("#report-box summary")
            browser.type("#r_id_number", "001090000123")
            browser.type("#r_dob", "02/05/1990")
            browser.type("#r_facility", "01001")
            browser.type("#r_message", "Mũi 3 ngày 01/02/2022 chưa có trên chứng nhận")
            browser.click("#report button")
            text = browser.wait_text("#report-result", lambda t: "Mã tra cứu" in t or "Lỗi" in t)
            assert "Đã nhận" in text and "2027" in text, text
            browser.screenshot(os.path.join(ROOT, "target", "e2e-report.png"))
            browser.click("#check-box summary")
            browser.click("#check button")
            status = browser.wait_text("#check-result", lambda t: "Trạng thái" in t or "Không tìm thấy" in t)
            assert "Đang xử lý · Open" in status, status

        def station_uploads_a_batch_and_sees_its_rejections():
            browser.go(f"{site}/station")
            browser.type("#token", token)
            browser.click("#login button")
            browser.type("#file", os.path.join(work, "upload.csv"))
            browser.click("#upload button")
            done = browser.wait_text("#upload-status", lambda t: "Xong" in t or "lỗi" in t or "HTTP" in t, seconds=30)
            assert "1 dòng đã ký" in done and "1 bị từ chối" in done, done
            table = browser.text("#rejected")
            assert "S2" in table and "NAME_MISMATCH" in table, table
            assert browser.script("return document.querySelector('#progress').value") == 100
            browser.screenshot(os.path.join(ROOT, "target", "e2e-station-upload.png"))

        def station_shows_overdue_requests_in_red_and_resolves_one():
            filed = http("POST", f"{site}/api/v1/corrections", {
                "id_number": "001090000123", "dob": "1990-05-02", "facility_code": "01001",
                "kind": "wrong_data", "message": "Sai ngày tiêm mũi 2", "contact": "0912 000 111"})
            # Through the later instance, 50 hours on: overdue.
            browser.go(f"{later_site}/station")
            browser.type("#token", token)
            browser.click("#login button")
            browser.wait_script(f"return document.querySelector('li[data-id=\"{filed['request_id']}\"]') !== null")
            item = f"li[data-id=\"{filed['request_id']}\"]"
            assert "overdue" in browser.attr(item, "class")
            assert "QUÁ HẠN" in browser.text(f"{item} .left")
            assert "Sai ngày tiêm mũi 2" in browser.text(item)
            shot = os.path.join(ROOT, "target", "e2e-station-queue.png")
            browser.screenshot(shot)
            red = count_color(shot, hex_rgb("#c0392b"))
            assert red > 200, f"no red overdue marker drawn ({red} pixels)"
            browser.type(f"{item} input", "Đã sửa ngày tiêm")
            browser.click(f"{item} button")
            browser.wait_script(f"return document.querySelector('li[data-id=\"{filed['request_id']}\"]') === null")
            seen = http("GET", f"{site}/api/v1/corrections/{filed['request_id']}?code={filed['status_code']}")
            assert seen["status"] == "resolved" and seen["note"] == "Đã sửa ngày tiêm", seen

        def dashboard_draws_the_numbers_of_stats():
            # One request closed in time, beside the late and the overdue ones above.
            filed = http("POST", f"{site}/api/v1/corrections", {
                "id_number": "001090000123", "dob": "1990-05-02", "facility_code": "01001",
                "kind": "not_mine", "message": "Mũi này không phải của tôi"})
            http("POST", f"{site}/api/v1/corrections/{filed['request_id']}/resolve",
                 {"outcome": "rejected", "note": "Hồ sơ đúng"}, token=token)
            browser.go(f"{later_site}/dashboard")
            browser.type("#token", ADMIN_TOKEN)
            browser.click("#login button")
            browser.wait_script("return document.body.dataset.loaded === 'yes'")
            stats = http("GET", f"{later_site}/api/v1/stats?by=province", token=ADMIN_TOKEN)
            drawn = browser.script("""return Array.from(document.querySelectorAll('#chart-signed rect')).map(
                r => [r.dataset.group, r.dataset.series, Number(r.dataset.value)]);""")
            want = [[g["group"], s, g["rows_" + s]] for g in stats["groups"] for s in ("signed", "rejected")]
            assert drawn == want, (drawn, want)
            assert all(g["rows_signed"] > 0 for g in stats["groups"] if g["group"] == "01"), stats
            compliance = browser.script("""return Array.from(document.querySelectorAll('#chart-compliance rect')).map(
                r => [r.dataset.group, Number(r.dataset.value)]);""")
            assert compliance == [[g["group"], g["closed_within_48h_share"]] for g in stats["groups"]
                                  if g["closed_within_48h_share"] is not None], compliance
            reasons = browser.script("return Array.from(document.querySelectorAll('#chart-reasons rect')).map(r => r.dataset.group);")
            assert sorted(reasons) == sorted(stats["total"]["rejected_by_reason"]), reasons
            shot = os.path.join(ROOT, "target", "e2e-dashboard.png")
            browser.screenshot(shot)
            for name, color in [("signed bars", "#2e86c1"), ("rejected bars", "#e67e22"), ("overdue bars", "#c0392b")]:
                n = count_color(shot, hex_rgb(color))
                assert n > 100, f"{name} not drawn ({n} pixels of {color})"
            # Below the fold on a phone: scrolled to, then drawn.
            browser.script("document.querySelector('#chart-compliance').scrollIntoView();")
            shot = os.path.join(ROOT, "target", "e2e-dashboard-compliance.png")
            browser.screenshot(shot)
            n = count_color(shot, hex_rgb("#27ae60"))
            assert n > 100, f"compliance bars not drawn ({n} pixels)"


        def camera_reads_the_qr_code_continuously_and_shows_green():
            # Chromium's fake camera plays a clip of the passport's QR code; nobody takes a photo.
            video = os.path.join(work, "qr.y4m")
            qr_video(photo, video)
            camera = Browser(f"http://127.0.0.1:{driver_port}", os.path.join(work, "profile-camera"), [
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}", "--autoplay-policy=no-user-gesture-required"])
            try:
                camera.go(f"{site}/verify")
                verdict = camera.wait_text("#verdict", bool, seconds=30)
                colour = camera.script("return document.getElementById('result').className;")
                assert "HỢP LỆ · VALID" in verdict and colour == "green", (verdict, colour, camera.text("#entry"))
                details = camera.text("#details")
                assert "Nguyễn Văn An" in details and "1990-05-02" in details, details
                # Doses by product name, not by code.
                assert "Vaxzevria (AstraZeneca)" in details and "Comirnaty (Pfizer-BioNTech)" in details, details
                assert "EU/1/20/1528" not in details, details
                camera.screenshot(os.path.join(ROOT, "target", "e2e-verify-camera.png"))
            finally:
                camera.quit()

        def handheld_scanner_shows_a_failed_entry_rule_in_yellow():
            # The scanner types the code and Enter into the page, wherever the focus is.
            browser.go(f"{site}/verify")
            browser.keys(one_dose["hc1"] + "\uE007")
            verdict = browser.wait_text("#verdict", bool)
            colour = browser.script("return document.getElementById('result').className;")
            assert "VALID, ENTRY RULES NOT MET" in verdict and colour == "yellow", (verdict, colour)
            entry = browser.text("#entry")
            assert "VR-VN-0002" in entry and "liều cơ bản" in entry and "primary series" in entry, entry
            assert "Trần Thị Bình" in browser.text("#details")
            browser.screenshot(os.path.join(ROOT, "target", "e2e-verify-yellow.png"))

        def scanner_enter_in_the_text_box_submits():
            browser.go(f"{site}/verify")
            browser.type("#qr", passport["hc1"] + "\uE007")
            assert "HỢP LỆ · VALID" in browser.wait_text("#verdict", bool)

        for test in [pasted_passport_shows_valid_and_the_name, altered_passport_shows_not_valid_and_why,
                     uploaded_photo_is_read, passport_page_finds_and_offers_downloads, wrong_claim_code_is_not_found,
                     camera_reads_the_qr_code_continuously_and_shows_green,
                     handheld_scanner_shows_a_failed_entry_rule_in_yellow, scanner_enter_in_the_text_box_submits,
                     citizen_reports_a_problem_and_checks_it, station_uploads_a_batch_and_sees_its_rejections,
                     station_shows_overdue_requests_in_red_and_resolves_one, dashboard_draws_the_numbers_of_stats]:
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
        for p in (server, later, chromedriver):
            p.terminate()
            p.wait(timeout=10)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
