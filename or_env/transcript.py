"""The episode transcript: messages tagged with the source that wrote them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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
        tool_calls: the function calls of an assistant message (tools rendering; OpenAI
            shape, arguments as JSON strings), else None.
        tool_call_id / name: which call a "tool" message answers, and the tool's name.
    """

    role: str
    content: str
    source: str
    turn: int
    tool_calls: tuple[dict[str, Any], ...] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """role, content, source and turn as a dict (`info["transcript"]` holds these), plus
        the tool fields that are set."""
        record = asdict(self)
        for key in ("tool_calls", "tool_call_id", "name"):
            if record[key] is None:
                del record[key]
        if self.tool_calls is not None:
            record["tool_calls"] = [dict(call) for call in self.tool_calls]
        return record

    def chat_dict(self) -> dict[str, Any]:
        """The message for a chat template or API: role, content and the tool fields set."""
        chat: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls is not None:
            chat["tool_calls"] = [dict(call) for call in self.tool_calls]
        if self.tool_call_id is not None:
            chat["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            chat["name"] = self.name
        return chat

    @classmethod
    def coerce(cls, message: Message | Mapping[str, Any]) -> Message:
        """A Message from a Message or its dict (as `to_dict` and episode records hold it)."""
        if isinstance(message, Message):
            return message
        calls = message.get("tool_calls")
        call_id = message.get("tool_call_id")
        name = message.get("name")
        return cls(
            role=str(message["role"]),
            content=str(message.get("content") or ""),
            source=str(message.get("source", "env")),
            turn=int(message.get("turn", 0)),
            tool_calls=None if calls is None else tuple(dict(call) for call in calls),
            tool_call_id=None if call_id is None else str(call_id),
            name=None if name is None else str(name),
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

    def append(
        self,
        role: str,
        content: str,
        source: str,
        turn: int,
        *,
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
        tool_call_id: str | None = None,
        name: str | None = None,
    ) -> Message:
        """Add a message; `source` must be one of SOURCES."""
        if source not in SOURCES:
            raise ValueError(f"unknown message source {source!r}; expected one of {SOURCES}")
        message = Message(
            role=role,
            content=content,
            source=source,
            turn=turn,
            tool_calls=None if tool_calls is None else tuple(dict(c) for c in tool_calls),
            tool_call_id=tool_call_id,
            name=name,
        )
        self._messages.append(message)
        return message

    def add(self, message: Message) -> Message:
        """Add a message as it is (checked like `append`)."""
        if message.source not in SOURCES:
            raise ValueError(
                f"unknown message source {message.source!r}; expected one of {SOURCES}"
            )
        self._messages.append(message)
        return message

    def rewind(self, turn: int) -> None:
        """Drop every message added after step `turn`."""
        self._messages = [m for m in self._messages if m.turn <= turn]

    def as_chat(self) -> list[dict[str, Any]]:
        """Role/content dicts for a chat template, consecutive assistant pieces merged.

        Tool fields (`tool_calls`, `tool_call_id`, `name`) are kept; an assistant message with
        tool calls is never merged, so each call stays with the message that made it.
        """
        chat: list[dict[str, Any]] = []
        for message in self._messages:
            if (
                chat
                and message.role == "assistant"
                and chat[-1]["role"] == "assistant"
                and message.tool_calls is None
                and "tool_calls" not in chat[-1]
            ):
                chat[-1]["content"] += message.content
            else:
                chat.append(message.chat_dict())
        return chat

    def to_dicts(self) -> list[dict[str, Any]]:
        """Every message as `Message.to_dict`."""
        return [m.to_dict() for m in self._messages]

    def text(self) -> str:
        """A plain rendering for logs and `render()`."""
        return "\n".join(_text_of(m) for m in self._messages)


def _text_of(message: Message) -> str:
    head = f"[{message.turn}:{message.source}/{message.role}]"
    if message.tool_call_id is not None:
        head += f" ({message.name} {message.tool_call_id})"
    lines = [head, message.content]
    for call in message.tool_calls or ():
        function = call.get("function") or {}
        lines.append(f"-> {function.get('name')}({function.get('arguments')})")
    return "\n".join(lines)
