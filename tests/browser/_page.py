"""A report page in Chromium with every console error, page error and outside request recorded."""

from __future__ import annotations

from pathlib import Path


class Page:
    """A page on the report with everything that went wrong recorded."""

    def __init__(self, browser, path: Path | str, ready: str = ".nx-card", **context_kwargs):
        # a str is a page of a test server on 127.0.0.1: requests to that server are allowed
        self.url = path if isinstance(path, str) else path.resolve().as_uri()
        self.server = path.split("/", 3)[:3] if isinstance(path, str) else None
        if self.server is not None:
            assert self.server[2].startswith("127.0.0.1:"), "test servers listen on 127.0.0.1"
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.blocked: list[str] = []
        self.context = browser.new_context(**context_kwargs)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on(
            "console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None
        )
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.goto(self.url)
        self.page.wait_for_selector(ready)

    def _route(self, route) -> None:
        same_server = self.server is not None and route.request.url.split("/", 3)[:3] == self.server
        if route.request.url == self.url or same_server:
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def close(self) -> None:
        self.context.close()


#: JS: for each canvas of a chart card, how many distinct colours it shows (blank: 1).
CANVAS_VARIETY = """(card) => {
    const out = [];
    for (const c of card.querySelectorAll('canvas.nx-canvas')) {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length; i += 4 * 7) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        out.push(seen.size);
    }
    return out;
}"""


def assert_all_cards_rendered(page: Page) -> int:
    """Every chart card drew without error, and every canvas shows something; returns the count."""
    pg = page.page
    cards = pg.query_selector_all("figure.nx-card")
    for card in cards:
        kind = card.get_attribute("data-kind")
        assert card.get_attribute("data-rendered") == "1", card.get_attribute("data-error")
        assert card.query_selector(".nx-error") is None
        if kind in ("table", "findings"):
            continue
        if kind == "tokens":  # text, not a canvas
            assert card.query_selector("span.nx-tok") is not None
            continue
        if kind == "controls":  # a form, not a canvas
            assert card.query_selector("[data-key]") is not None
            continue
        variety = pg.evaluate(CANVAS_VARIETY, card)
        assert variety and max(variety) > 8, f"{kind} canvas is blank: {variety}"
    return len(cards)
