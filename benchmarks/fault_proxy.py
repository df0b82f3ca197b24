"""A TCP proxy that can add latency, to put a slow network in front of Redis."""

from __future__ import annotations

import asyncio
import threading


class LatencyProxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target``; ``delay`` seconds are added to
    every chunk the client sends while it is above 0."""

    def __init__(self, target: int):
        self.target, self.delay = target, 0.0
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                       delayed: bool) -> None:
            try:
                while chunk := await src.read(65536):
                    if delayed and self.delay > 0:
                        await asyncio.sleep(self.delay)
                    dst.write(chunk)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
