"""Search the whole store (not just the loaded tree): a glob pattern or a metadata query."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...stores.errors import StoreError
from .. import icons
from ..workers import Worker

#: At most this many results are listed (a search may match millions of keys).
MAX_RESULTS = 5000


def parse_search(text: str) -> tuple[str, Any]:
    """``("query", {name: value, ...})`` for ``name=value`` terms, else ``("glob", pattern)``.

    Query values are read as JSON where they parse (``n=3``, ``ok=true``,
    ``tag="x y"``), else taken as text. A glob without wildcards matches
    keys containing the text.

    Raises
    ------
    StoreError
        If the text is empty or a query term has no name.
    """
    text = text.strip()
    if not text:
        raise StoreError("type a key pattern (e.g. *.csv) or a query (e.g. kind=image)")
    if "=" in text:
        criteria: dict[str, Any] = {}
        for term in _split_terms(text):
            name, sep, raw = term.partition("=")
            name = name.strip()
            if not sep or not name:
                raise StoreError(f"'{term}' is not a name=value query term")
            try:
                criteria[name] = json.loads(raw)
            except ValueError:
                criteria[name] = raw.strip()
        return "query", criteria
    pattern = text if any(c in text for c in "*?[") else f"*{text}*"
    return "glob", pattern


def _split_terms(text: str) -> list[str]:
    """Split on commas or spaces, keeping quoted values (``tag="a b"``) whole."""
    terms, current, quote = [], "", ""
    for ch in text:
        if quote:
            current += ch
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            current += ch
        elif ch in ", ":
            if current:
                terms.append(current)
            current = ""
        else:
            current += ch
    if current:
        terms.append(current)
    return terms


def search_store(store: Any, kind: str, arg: Any, worker: Worker) -> Iterator[list[str]]:
    """Yield batches of matching keys (on a worker), at most MAX_RESULTS in all."""
    keys = store.glob(arg) if kind == "glob" else store.query_keys(**arg)
    batch: list[str] = []
    count, last = 0, time.monotonic()
    for key in keys:
        batch.append(key)
        count += 1
        if count >= MAX_RESULTS:
            break
        if len(batch) >= 500 or time.monotonic() - last > 0.2:
            yield batch
            batch, last = [], time.monotonic()
        if worker.abort_requested:
            return
    yield batch


#: What the search field says while empty.
SEARCH_PLACEHOLDER = "Search the whole store: a key pattern (*.csv) or a query (kind=image)"


class SearchPanel(QWidget):
    """A search field; runs a search on a worker and lists the keys found; choosing one reveals it.

    The search has its own field, apart from the tree's filter: a search
    never filters the tree, its results are listed here only.

    Signals
    -------
    keyChosen(str)
        The user activated a result.
    statusMessage(str)
        Progress and errors for the status bar.
    searchFailed(str)
        A search failed; the message says why.
    """

    keyChosen = Signal(str)
    statusMessage = Signal(str)
    searchFailed = Signal(str)
    finished = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("searchPanel")
        self._store: Any = None
        self._worker: Worker | None = None
        self._text = ""
        self.search_box = QLineEdit(self)
        self.search_box.setObjectName("searchBox")
        self.search_box.setPlaceholderText(SEARCH_PLACEHOLDER)
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setToolTip("A key pattern with wildcards (* ?), text a key contains, "
                                   "or metadata terms name=value (several: kind=image n=3)")
        self.search_box.returnPressed.connect(self.search_typed)
        self.search_button = QToolButton(self)
        self.search_button.setObjectName("searchButton")
        self.search_button.setText("Search")
        self.search_button.setIcon(icons.icon("search"))
        self.search_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.search_button.setToolTip("Search the whole store (Enter)")
        self.search_button.clicked.connect(self.search_typed)
        self.summary = QLabel("No search yet", self)
        self.summary.setObjectName("searchSummary")
        self.stop_button = QToolButton(self)
        self.stop_button.setIcon(icons.icon("cancel"))
        self.stop_button.setToolTip("Stop the search")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.results = QListWidget(self)
        self.results.setObjectName("searchResults")
        self.results.setUniformItemSizes(True)
        self.results.itemActivated.connect(self._on_activated)
        self.results.itemClicked.connect(self._on_activated)
        field_row = QHBoxLayout()
        field_row.addWidget(self.search_box, 1)
        field_row.addWidget(self.search_button)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(field_row)
        layout.addLayout(top)
        layout.addWidget(self.results)

    def set_store(self, store: Any) -> None:
        """Search ``store`` from now on (clears the results)."""
        self.stop()
        self._store = store
        self.results.clear()
        self.summary.setText("No search yet")

    def is_running(self) -> bool:
        """Whether a search is running."""
        return self._worker is not None

    def result_keys(self) -> list[str]:
        """The keys listed now."""
        return [self.results.item(i).text() for i in range(self.results.count())]

    def focus_search_box(self) -> None:
        """Put the cursor in the search field, its text selected."""
        self.search_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_box.selectAll()

    def search_typed(self) -> bool:
        """Search for what the search field holds."""
        return self.search(self.search_box.text())

    def search(self, text: str) -> bool:
        """Start searching for ``text`` (see :func:`parse_search`); False if it is not valid.

        The search field shows ``text``.
        """
        if self.search_box.text() != text:
            self.search_box.setText(text)
        self.stop()
        self.results.clear()
        try:
            kind, arg = parse_search(text)
        except StoreError as exc:
            self.summary.setText(str(exc))
            self.searchFailed.emit(str(exc))
            return False
        if self._store is None:
            return False
        self._text = text.strip()
        self.summary.setText(f"Searching for {self._text}…")
        self.stop_button.setEnabled(True)
        worker = self._worker = Worker(search_store, self._store, kind, arg)
        # Each slot is told its worker: a stopped search's last signals are ignored.
        worker.yielded.connect(lambda keys: self._on_batch(worker, keys))
        worker.errored.connect(lambda exc: self._on_error(worker, exc))
        worker.finished.connect(lambda: self._on_finished(worker))
        worker.start()
        return True

    def stop(self) -> None:
        """Stop the running search (its results so far stay listed)."""
        if self._worker is not None:
            self._worker.quit()
            self._worker = None
            self.stop_button.setEnabled(False)
            self.summary.setText(f"Stopped: {self.results.count()} found for {self._text}")

    def _on_batch(self, worker: Worker, keys: list[str]) -> None:
        if worker is not self._worker:
            return
        for key in keys:
            item = QListWidgetItem(icons.icon("key"), key)
            item.setToolTip(key)
            self.results.addItem(item)
        self.summary.setText(f"Searching for {self._text}… {self.results.count()} found")

    def _on_error(self, worker: Worker, exc: BaseException) -> None:
        if worker is not self._worker:
            return
        message = f"Search for {self._text} failed: {exc}"
        self.summary.setText(message)
        self.searchFailed.emit(message)

    def _on_finished(self, worker: Worker) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        self.stop_button.setEnabled(False)
        count = self.results.count()
        if not self.summary.text().startswith(f"Search for {self._text} failed"):
            more = f" (the first {MAX_RESULTS})" if count >= MAX_RESULTS else ""
            self.summary.setText(f"{count} found for {self._text}{more}")
            self.statusMessage.emit(f"Search: {count} found for {self._text}{more}")
        self.finished.emit()

    def _on_activated(self, item: QListWidgetItem) -> None:
        self.keyChosen.emit(item.text())

    def sizeHint(self):  # noqa: N802 (Qt override)
        hint = super().sizeHint()
        hint.setHeight(160)
        return hint

