"""A small real SMTP server (asyncio, loopback) that injects faults and logs receive times.

It speaks enough ESMTP for digest (EHLO with PIPELINING, MAIL, RCPT, DATA, RSET, NOOP,
QUIT), so the pipelined client path is exercised. Faults are drawn from a seeded random
generator: 451 on RCPT or after DATA, connections closed in the middle of DATA, fixed 550s,
421 greetings, a tarpit banner trickled one byte at a time, a server that goes silent
(``silent_after``: it accepts that many messages, then never says another word), and one
that waits ``pause`` seconds before each reply.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

# Parsed back after each test by tests/conftest.py, like smtpfixture.RECEIVED.
RECEIVED: list[bytes] = []


@dataclass(frozen=True)
class Received:
    rcpt: str
    data: bytes
    at: float  # time.monotonic() when the final dot was accepted


class FaultServer:
    host = "127.0.0.1"

    def __init__(
        self,
        *,
        seed: int = 1,
        temp_rcpt: float = 0.0,
        temp_data: float = 0.0,
        drop_mid_data: float = 0.0,
        reject: set[str] | None = None,
        delay: float = 0.0,
        greet_421: float = 0.0,
        trickle: float = 0.0,
        silent_after: int | None = None,
        pause: float = 0.0,
    ) -> None:
        self.rng = random.Random(seed)
        self.temp_rcpt, self.temp_data, self.drop_mid_data = temp_rcpt, temp_data, drop_mid_data
        self.reject = {a.lower() for a in (reject or set())}
        self.delay = delay
        self.greet_421 = greet_421  # share of connections greeted "421 busy" and closed
        self.trickle = trickle  # seconds between the bytes of the banner (a tarpit)
        self.silent_after = silent_after
        self.pause = pause  # seconds before each reply, banner included (a slow server)
        self.messages: list[Received] = []
        self.faults = {"451-rcpt": 0, "451-data": 0, "drop": 0, "550": 0, "421": 0}
        self.lock = threading.Lock()
        self.connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_quiet_cancel)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=5)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                # Handlers still talking (a tarpit, a stalled client) end here, not at exit.
                others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in others:
                    task.cancel()
                await asyncio.gather(*others, return_exceptions=True)
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def received(self, address: str) -> int:
        with self.lock:
            return sum(1 for m in self.messages if m.rcpt == address.lower())

    def _silent(self) -> bool:
        with self.lock:
            return self.silent_after is not None and len(self.messages) >= self.silent_after

    async def _hang(self, reader: asyncio.StreamReader) -> None:
        """Say nothing more: read and drop what comes until the client gives up."""
        while await reader.read(4096):
            pass

    def _roll(self, p: float) -> bool:
        with self.lock:
            return self.rng.random() < p

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rcpts: list[str] = []
        with self.lock:
            self.connections += 1
        if self._roll(self.greet_421):
            self.faults["421"] += 1
            writer.write(b"421 4.3.2 too busy, try again later\r\n")
            await writer.drain()
            writer.close()
            return
        banner = b"220 fault.localhost ESMTP\r\n"
        try:
            if self._silent():
                await self._hang(reader)
                return
            await asyncio.sleep(self.pause)
            if self.trickle:
                for i in range(len(banner)):
                    writer.write(banner[i : i + 1])
                    await writer.drain()
                    await asyncio.sleep(self.trickle)
            else:
                writer.write(banner)
            while line := await reader.readline():
                if self._silent():
                    await self._hang(reader)
                    return
                await asyncio.sleep(self.pause)
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(
                        b"250-fault.localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                        b"250 SIZE 50000000\r\n"
                    )
                elif verb == b"HELO":
                    writer.write(b"250 fault.localhost\r\n")
                elif verb == b"MAIL":
                    rcpts = []
                    writer.write(b"250 ok\r\n")
                elif verb == b"RCPT":
                    addr = line.split(b"<", 1)[1].split(b">", 1)[0].decode().lower()
                    if addr in self.reject:
                        self.faults["550"] += 1
                        writer.write(b"550 5.1.1 no such user\r\n")
                    elif self._roll(self.temp_rcpt):
                        self.faults["451-rcpt"] += 1
                        writer.write(b"451 4.3.0 try again later\r\n")
                    else:
                        rcpts.append(addr)
                        writer.write(b"250 ok\r\n")
                elif verb == b"DATA":
                    if not rcpts:
                        writer.write(b"554 no valid recipients\r\n")
                        continue
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    if not await self._data(reader, writer, rcpts):
                        return
                    rcpts = []
                elif verb == b"RSET":
                    rcpts = []
                    writer.write(b"250 ok\r\n")
                elif verb == b"NOOP":
                    writer.write(b"250 ok\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"500 unknown command\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _data(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rcpts: list[str]
    ) -> bool:
        drop = self._roll(self.drop_mid_data)
        lines: list[bytes] = []
        while True:
            line = await reader.readline()
            if not line:
                return False
            if line == b".\r\n":
                break
            lines.append(line[1:] if line.startswith(b".") else line)
            if drop and len(lines) == 20:
                # Hang up in the middle of the message: the server keeps nothing.
                self.faults["drop"] += 1
                return False
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._silent():
            await self._hang(reader)
            return False
        if self._roll(self.temp_data):
            self.faults["451-data"] += 1
            writer.write(b"451 4.3.0 message deferred\r\n")
            return True
        now = time.monotonic()
        with self.lock:
            for rcpt in rcpts:
                self.messages.append(Received(rcpt, b"".join(lines), now))
            RECEIVED.append(b"".join(lines))
        writer.write(b"250 ok queued\r\n")
        return True

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _quiet_cancel(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """Handlers cancelled by stop() are expected; anything else is reported as usual."""
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)
