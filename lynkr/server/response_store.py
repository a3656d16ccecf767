"""What ``previous_response_id`` refers to: recent Responses conversations, kept in memory.

Each stored response keeps the whole conversation up to and including its own output, as input
items, so a follow-up that sends only its new items (as Codex does over a kept connection) can be
rebuilt. Bounded (least recently used entries go first); lost on restart, like a cache.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

Item = dict[str, Any]


class ResponseStore:
    def __init__(self, max_entries: int = 512) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, list[Item]] = OrderedDict()

    def get(self, response_id: str) -> list[Item] | None:
        items = self._items.get(response_id)
        if items is not None:
            self._items.move_to_end(response_id)
        return items

    def put(self, response_id: str, history: list[Item], new_input: list[Item], output: list[Item]) -> None:
        self._items[response_id] = [*history, *new_input, *(_as_input(o) for o in output)]
        self._items.move_to_end(response_id)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)


def _as_input(item: Item) -> Item:
    """An output item as the input item that replays it (ids and statuses are not needed)."""
    return {k: v for k, v in item.items() if k not in ("id", "status")}
