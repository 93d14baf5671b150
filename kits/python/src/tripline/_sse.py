"""An incremental parser of server-sent events (the WHATWG rules Tripline's ``/v1/stream`` needs)."""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None


class SseParser:
    """Feed it the stream's bytes as they arrive; it returns the events each chunk completes."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._event = "message"
        self._id: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += self._decoder.decode(chunk)
        events: list[SseEvent] = []
        newline = self._buffer.find("\n")
        while newline >= 0:
            line = self._buffer[:newline]
            self._buffer = self._buffer[newline + 1 :]
            newline = self._buffer.find("\n")
            if line.endswith("\r"):
                line = line[:-1]
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> SseEvent | None:
        if line == "":
            event = SseEvent(self._event, "\n".join(self._data), self._id) if self._data else None
            self._event, self._id, self._data = "message", None, []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            self._id = value
        return None
