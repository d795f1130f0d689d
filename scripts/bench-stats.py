"""Helper of scripts/bench-stats: serve the store, file requests, time /api/v1/stats and the
dashboard. Standard library only (plus Debian's chromium and chromedriver for the page)."""
import concurrent.futures
import csv
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import pages  # noqa: E402  (its Browser, free_port, http, wait_http)

BIN, DB, SECRET, DOSES, REQUESTS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ADMIN = "bench-admin-token"


def main():
    facilities = set()
    with open(DOSES, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if len(row["facility_code"]) == 5 and row["facility_code"].isdigit() and row["facility_code"][:2] != "00":
                facilities.add(row["facility_code"])
            if len(facilities) >= 2000:
                break
    facilities = sorted(facilities)
    port, driver_port = pages.free_port(), pages.free_port()
    config = os.path.join(os.path.dirname(DB.removeprefix("sqlite://")), "bench.toml")
    with open(config, "w") as fh:
        fh.write("lookups_per_client_per_minute = 100000000\nmax_connections = 256\n")
    env = dict(os.environ, VAXPASS_KEYS="keys-example", VAXPASS_SECRET=SECRET, VAXPASS_ADMIN_TOKEN=ADMIN, RUST_LOG="warn")
    server = subprocess.Popen([BIN, "serve", "--config", config, "--listen", f"127.0.0.1:{port}", "--db", DB],
                              env=env, stderr=subprocess.DEVNULL)
    site = f"http://127.0.0.1:{port}"
    try:
        pages.wait_http(f"{site}/healthz", seconds=60)
        have = len(pages.http("GET", f"{site}/api/v1/corrections?limit=1000&status=open", token=ADMIN)["requests"])
        if have == 0:
            start = time.time()

            def one(i):
                filed = pages.http("POST", f"{site}/api/v1/corrections", {
                    "id_number": f"0790{i:08d}", "dob": "1980-01-01", "facility_code": facilities[i % len(facilities)],
                    "kind": ["missing_dose", "wrong_data", "not_mine"][i % 3], "message": "benchmark request"})
                if i % 5 == 0:
                    pages.http("POST", f"{site}/api/v1/corrections/{filed['request_id']}/resolve",
                               {"outcome": "resolved", "note": "ok"}, token=ADMIN)

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                list(pool.map(one, range(REQUESTS)))
            print(f"filed {REQUESTS} requests in {time.time() - start:.1f} s", file=sys.stderr)
        for by in ("province", "facility"):
            times = []
            for _ in range(50):
                t = time.perf_counter()
                answer = pages.http("GET", f"{site}/api/v1/stats?by={by}", token=ADMIN)
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            print(f"GET /api/v1/stats?by={by}: {len(answer['groups'])} groups, p50 {statistics.median(times):.1f} ms, "
                  f"p99 {times[int(len(times) * 0.99) - 1]:.1f} ms, max {times[-1]:.1f} ms; "
                  f"total passports {answer['total']['passports']}, requests "
                  f"{answer['total']['requests_open'] + answer['total']['requests_overdue'] + answer['total']['requests_closed']}")
        driver = subprocess.Popen(["chromedriver", f"--port={driver_port}"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        browser = None
        try:
            pages.wait_http(f"http://127.0.0.1:{driver_port}/status")
            profile = os.path.join(os.path.dirname(DB.removeprefix("sqlite://")), "profile")
            browser = pages.Browser(f"http://127.0.0.1:{driver_port}", profile)
            browser.go(f"{site}/dashboard")
            browser.script(f"sessionStorage.setItem('vaxpass.admin-token', '{ADMIN}');")
            for _ in range(5):
                browser.go(f"{site}/dashboard")
                ms = int(browser.wait_script("return document.body.dataset.loaded === 'yes' && document.body.dataset.drawnMs"))
                print(f"/dashboard: charts drawn {ms:.0f} ms after navigation start", file=sys.stderr)
        finally:
            if browser:
                browser.quit()
            driver.terminate()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
