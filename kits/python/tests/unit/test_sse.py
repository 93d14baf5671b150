from __future__ import annotations

import unittest

from tripline._sse import SseEvent, SseParser


class SseParserTest(unittest.TestCase):
    def test_events_across_chunks(self) -> None:
        parser = SseParser()
        self.assertEqual(parser.feed(b"event: revoc"), [])
        self.assertEqual(parser.feed(b"ation\nid: 7\ndata: {\"a\""), [])
        self.assertEqual(parser.feed(b": 1}\n\n"), [SseEvent("revocation", '{"a": 1}', "7")])

    def test_multiline_data_comments_and_crlf(self) -> None:
        parser = SseParser()
        events = parser.feed(b": heartbeat\r\ndata: one\r\ndata:two\r\n\r\nevent: ready\r\ndata: {}\r\n\r\n")
        self.assertEqual(events, [SseEvent("message", "one\ntwo"), SseEvent("ready", "{}")])

    def test_no_data_no_event_and_fields_reset(self) -> None:
        parser = SseParser()
        self.assertEqual(parser.feed(b"event: ignored\nid: 1\n\ndata: x\n\n"), [SseEvent("message", "x")])

    def test_utf8_split_inside_a_character(self) -> None:
        parser = SseParser()
        encoded = "data: Zoë\n\n".encode()
        cut = encoded.index("ë".encode()) + 1
        self.assertEqual(parser.feed(encoded[:cut]), [])
        self.assertEqual(parser.feed(encoded[cut:]), [SseEvent("message", "Zoë")])

    def test_field_without_colon(self) -> None:
        parser = SseParser()
        self.assertEqual(parser.feed(b"data\n\n"), [SseEvent("message", "")])


if __name__ == "__main__":
    unittest.main()
