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


# A paced load: each wrk thread hands out send times on a fixed schedule (one every ``gap``
# milliseconds, LuaJIT's ffi for a millisecond clock) and each connection waits for its slot,
# so the threads offer about ``rate`` requests a second whatever the latency, as long as
# enough connections are free (a schedule more than a second behind restarts from now).
_PACING = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } pacing_timeval;
int gettimeofday(pacing_timeval *tv, void *tz);
]]
local tv = ffi.new("pacing_timeval")
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end
local gap, slot = %(gap_ms).4f, nil
function delay()
  local now = now_ms()
  if slot == nil or slot < now - 1000 then slot = now end
  slot = slot + gap
  return math.max(0, slot - now)
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
    pacing = _PACING % {"gap_ms": threads / rate * 1000} if rate else ""
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
