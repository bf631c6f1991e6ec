"""How a file the service makes goes out (a ledger, an export, a slip, a sheet of binding
codes, the catalogue): its name for the browser, and never cached, since it is made for the
one who asked and often holds personal data or secrets."""

from __future__ import annotations

from urllib.parse import quote


def download_headers(name: str, *, inline: bool = False) -> dict[str, str]:
    """Content-Disposition with the name in UTF-8 (RFC 6266 `filename*`, which every current
    browser reads) after a plain ASCII `filename` for the rest, and Cache-Control no-store.
    `inline`: shown in the browser (a PDF the service drew itself); else saved."""
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    kind = "inline" if inline else "attachment"
    return {
        "Content-Disposition": f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store",
    }
