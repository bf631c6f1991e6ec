"""A file the service makes goes out with its name for every browser and is never cached."""

from __future__ import annotations

from urllib.parse import unquote

from app.downloads import download_headers


def test_a_chinese_name_is_sent_in_utf8_with_a_plain_fallback():
    headers = download_headers('办件清单_2026-11-01_"x".xlsx')
    disposition = headers["Content-Disposition"]
    kind, plain, utf8 = disposition.split("; ")
    assert kind == "attachment"
    assert plain == 'filename="_____2026-11-01__x_.xlsx"'  # no quote can end it early
    assert unquote(utf8.removeprefix("filename*=UTF-8''")) == '办件清单_2026-11-01_"x".xlsx'
    assert headers["Cache-Control"] == "no-store"


def test_a_slip_is_shown_in_place():
    assert download_headers("DB20261123000001.pdf", inline=True)["Content-Disposition"].startswith(
        'inline; filename="DB20261123000001.pdf"'
    )
