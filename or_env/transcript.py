"""The episode transcript: messages tagged with the source that wrote them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

SOURCES = ("env", "policy", "intervener")


@dataclass(frozen=True)
class Message:
    """One piece of the conversation.

    Attributes:
        role: the chat role it is rendered with ("system", "user", "assistant", "tool").
        content: the text.
        source: who wrote it: "env" (prompt, execution output, format feedback),
            "policy" (the model's actions) or "intervener" (a corrective hint).
        turn: the step that added it; 0 for the prompt.
    """

    role: str
    content: str
    source: str
    turn: int

    def to_dict(self) -> dict[str, Any]:
        """role, content, source and turn as a dict (`info["transcript"]` holds these)."""
        return asdict(self)

    @classmethod
    def coerce(cls, message: Message | Mapping[str, Any]) -> Message:
        """A Message from a Message or its dict (as `to_dict` and episode records hold it)."""
        if isinstance(message, Message):
            return message
        return cls(
            role=str(message["role"]),
            content=str(message["content"]),
            source=str(message.get("source", "env")),
            turn=int(message.get("turn", 0)),
        )


class Transcript:
    """The ordered messages of one episode, with chat views and rewinding.

    In the `inline` rendering, policy text and execution output are consecutive
    assistant-role messages; `as_chat()` merges them into the single assistant turn
    that the model is continuing.
    """

    def __init__(self) -> None:
        self._messages: list[Message] = []

    def __len__(self) -> int:
        return len(self._messages)

    def __iter__(self) -> Iterator[Message]:
        return iter(self._messages)

    @property
    def messages(self) -> list[Message]:
        """A copy of the messages, in order."""
        return list(self._messages)

    def append(self, role: str, content: str, source: str, turn: int) -> Message:
        """Add a message; `source` must be one of SOURCES."""
        if source not in SOURCES:
            raise ValueError(f"unknown message source {source!r}; expected one of {SOURCES}")
        message = Message(role=role, content=content, source=source, turn=turn)
        self._messages.append(message)
        return message

    def rewind(self, turn: int) -> None:
        """Drop every message added after step `turn`."""
        self._messages = [m for m in self._messages if m.turn <= turn]

    def as_chat(self) -> list[dict[str, str]]:
        """Role/content dicts for a chat template, consecutive assistant pieces merged."""
        chat: list[dict[str, str]] = []
        for message in self._messages:
            if chat and message.role == "assistant" and chat[-1]["role"] == "assistant":
                chat[-1]["content"] += message.content
            else:
                chat.append({"role": message.role, "content": message.content})
        return chat

    def to_dicts(self) -> list[dict[str, Any]]:
        """Every message as `Message.to_dict`."""
        return [m.to_dict() for m in self._messages]

    def text(self) -> str:
        """A plain rendering for logs and `render()`."""
        return "\n".join(f"[{m.turn}:{m.source}/{m.role}]\n{m.content}" for m in self._messages)
