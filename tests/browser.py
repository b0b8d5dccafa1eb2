"""Headless chromium (Debian's ``chromium``) as a person's browser: load a page at a given window
width and read back what a script added to a copy of the page measured there.

The script (added to the copy only: the page itself has none) collects errors (script errors,
``console.error``, resources that fail to load), every resource the page fetched, how far the page
is wider than the window, the smallest font size of the text, and the time from navigation start
to the end of the load event and the first layout; it writes them into the DOM, which
``--dump-dom`` prints.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHECK_ID = "browser-check"
_CHECK_SCRIPT = """<script>(function(){
var errors=[];
window.addEventListener('error',function(e){var t=e.target||{};
 errors.push(String(e.message||t.src||t.href||'a resource failed to load'));},true);
var original=console.error;console.error=function(){errors.push(Array.prototype.join.call(arguments,' '));
 original.apply(console,arguments);};
window.addEventListener('load',function(){setTimeout(function(){
 var root=document.documentElement,body=document.body;
 var overflow=Math.max(root.scrollWidth,body.scrollWidth)-window.innerWidth;
 var loadMs=performance.now();
 var fonts=[].map.call(document.querySelectorAll('td,th,li,p,h1,h2,h3,span,code'),function(e){
  return parseFloat(getComputedStyle(e).fontSize);});
 var numbers=[].map.call(document.querySelectorAll('[data-setting][data-status]'),function(e){
  return [e.getAttribute('data-setting'),e.getAttribute('data-status'),e.textContent];});
 var accounts=document.getElementById('accounts'),attention=document.getElementById('attention-count');
 parent.postMessage({errors:errors,overflow:overflow,width:window.innerWidth,loadMs:loadMs,
  minFontPx:Math.min.apply(null,fonts),numbers:numbers,
  accounts:accounts?accounts.textContent:null,attention:attention?attention.textContent:null,
  resources:performance.getEntriesByType('resource').map(function(r){return r.name;})},'*');},0);});
})();</script>"""
# Headless chromium's window is at least 500 px wide: the page is loaded in a frame of the width
# asked for, which is the page's viewport (its media queries and innerWidth), as on a phone.
_FRAME = (
    """<!DOCTYPE html><html><body style="margin:0"><script>
window.addEventListener('message',function(e){var p=document.createElement('pre');p.id='"""
    + CHECK_ID
    + """';
p.textContent=JSON.stringify(e.data);document.body.appendChild(p);});</script>
<iframe src="PAGE" style="border:0;width:WIDTHpx;height:HEIGHTpx"></iframe></body></html>"""
)


@dataclass(frozen=True)
class Rendered:
    dom: str  # the DOM after load, the check's <pre> included
    check: dict[str, Any]
    wall_seconds: float  # the whole chromium process, start-up included
    stderr: str


def browser() -> str | None:
    """The path of a chromium on this machine, or None."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _flags(width: int, height: int) -> list[str]:
    # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--window-size={width},{height}",
    ]


def render(chromium: str, page: Path, *, width: int, height: int = 900, timeout: float = 120) -> Rendered:
    """Load a copy of ``page`` (with the check script) at ``width`` and return what it measured."""
    text = page.read_text(encoding="utf-8")
    checked = page.with_name(f".{page.stem}-{width}-check.html")
    checked.write_text(text.replace("<head>", "<head>" + _CHECK_SCRIPT, 1), encoding="utf-8")
    frame = page.with_name(f".{page.stem}-{width}-frame.html")
    wrapper = _FRAME.replace("PAGE", checked.name).replace("WIDTH", str(width)).replace("HEIGHT", str(height))
    frame.write_text(wrapper, encoding="utf-8")
    window = [chromium, *_flags(max(width, 500) + 20, height + 20)]
    try:
        started = time.perf_counter()
        done = subprocess.run(
            [*window, "--virtual-time-budget=10000", "--dump-dom", frame.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        wall = time.perf_counter() - started
    finally:
        checked.unlink(missing_ok=True)
        frame.unlink(missing_ok=True)
    found = re.search(rf'<pre id="{CHECK_ID}">(.*?)</pre>', done.stdout, re.S)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"chromium did not load {page} (exit {done.returncode}): {done.stderr[-2000:]}")
    check = json.loads(html.unescape(found.group(1)))
    return Rendered(done.stdout, check, wall, done.stderr)


def screenshot(chromium: str, page: Path, target: Path, *, width: int, height: int) -> None:
    """A PNG of ``page`` at ``width`` x ``height``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [chromium, *_flags(width, height), f"--screenshot={target.resolve()}", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0 or not target.exists():
        raise RuntimeError(f"chromium made no screenshot of {page}: {done.stderr[-2000:]}")
