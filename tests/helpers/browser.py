"""Open a local HTML file in headless Chromium as a person would: what the console said, every
network request the page made (through a loopback proxy that records and refuses them), whether
its script finished rendering, and a screenshot."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update",
         "--disable-default-apps", "--disable-domain-reliability", "--disable-breakpad",
         "--disable-client-side-phishing-detection", "--metrics-recording-only",
         "--disable-features=OptimizationHints,MediaRouter,Translate"]


def chromium() -> str | None:
    """The Chromium executable, if installed (Debian's package: ``chromium``)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


# Chromium's own services (update checks, clock, sign-in), contacted whatever the page is;
# anything else that reaches the recorder came from the page.
BROWSER_SERVICES = {"clients2.google.com", "update.googleapis.com", "accounts.google.com",
                    "redirector.gvt1.com", "optimizationguide-pa.googleapis.com",
                    "content-autofill.googleapis.com", "safebrowsing.googleapis.com"}


def _host(request: str) -> str:
    from urllib.parse import urlsplit

    target = request.split(" ", 1)[1]
    return target.rsplit(":", 1)[0] if "://" not in target else (urlsplit(target).hostname or "")


@dataclass
class Rendered:
    console: list[str]  # every console message (errors, CSP violations, logs)
    requests: list[str]  # every request that left the page
    dom: str  # the DOM after scripts ran


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str]

    def _refuse(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        self.send_response(403)
        self.end_headers()

    do_GET = do_POST = do_HEAD = do_CONNECT = _refuse

    def log_message(self, *args) -> None:
        pass


def render(html: Path, screenshot: Path | None = None, *, width: int = 1280,
           height: int = 4000, profile: Path | None = None) -> Rendered:
    """Load ``html`` (a file) in headless Chromium with every request sent to a recorder."""
    exe = chromium()
    assert exe, "chromium is not installed"
    seen: list[str] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = profile or html.parent / ".chromium-profile"
    base = [exe, *QUIET, f"--user-data-dir={profile}",
            f"--proxy-server=http://127.0.0.1:{server.server_address[1]}",
            "--proxy-bypass-list=<-loopback>", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=5000", f"--window-size={width},{height}"]
    url = Path(html).resolve().as_uri()
    try:
        dump = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True,
                              timeout=120)
        console = [line for line in dump.stderr.splitlines() if ":CONSOLE" in line]
        if screenshot is not None:
            subprocess.run([*base, f"--screenshot={screenshot}", url], capture_output=True,
                           timeout=120)
    finally:
        server.shutdown()
    return Rendered(console, [r for r in seen if _host(r) not in BROWSER_SERVICES], dump.stdout)
