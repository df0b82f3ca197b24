"""Drive a URL with wrk over a list of request paths; parse its summary into numbers."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

# Cycles through the paths file (one path per line), each thread from its own offset, and
# prints the summary as JSON on the last line.
_SCRIPT = """
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local counter = 0
function setup(thread)
  thread:set("offset", counter * 7919)
  counter = counter + 1
end
%(headers)s
%(pacing)s
local i = 0
function request()
  i = i + 1
  return wrk.format("GET", paths[((offset or 0) + i) %% #paths + 1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


# A paced load: each connection waits a random 0-2x the mean gap before its next request, so
# ``connections`` connections offer about ``rate`` requests a second while the server keeps up.
_PACING = """
function delay()
  return math.random() * 2 * %(gap_ms).3f
end
"""


def run_wrk(url: str, paths: Path, connections: int, threads: int, seconds: int,
            headers: dict[str, str] | None = None, rate: float | None = None) -> dict:
    """Requests per second, p50/p99 latency (ms), requests and errors (socket errors and
    non-2xx/3xx); every request carries ``headers`` (e.g. the API key). With ``rate``
    (requests a second), the connections are paced to offer that load instead of as many
    requests as the server answers."""
    lines = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}"
                      for k, v in (headers or {}).items())
    pacing = _PACING % {"gap_ms": connections / rate * 1000} if rate else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_SCRIPT % {"paths": str(paths), "headers": lines, "pacing": pacing})
    try:
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
             "--timeout", "5s", "-s", script.name, url],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        Path(script.name).unlink()
    summary = json.loads(out.strip().splitlines()[-1])
    return {
        "rps": summary["requests"] / (summary["duration_us"] / 1e6),
        "p50_ms": summary["p50_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
        "errors": summary["errors"],
        "requests": summary["requests"],
    }
