"""Voice notes (语音留言): audio as the mini-program's recorder writes it, read frame by frame
on completion for what it is and how long it plays; anything else refused with its code;
attached to a request, shown to its agent with the length, private like the photos, and
removed with the order's other files."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.retention.files import remove_files
from app.settings import Settings
from storage.audio import read_audio
from tests.conftest import make_settings
from tests.factories import submit, taken_by_agent1a, upload_photo
from tests.images import jpeg, pdf
from tests.sounds import (
    aac_duration_ms,
    adts,
    id3v2,
    m4a,
    mp3,
    mp3_duration_ms,
    mp3_frame,
)

MAX_SECONDS = 20
MAX_BYTES = 100_000


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path / "var",
        database_url,
        DAIBAN_UPLOADS_MAX_VOICE_SECONDS=str(MAX_SECONDS),
        DAIBAN_UPLOADS_MAX_VOICE_BYTES=str(MAX_BYTES),
    )


async def record(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    ctype: str = "audio/mpeg",
    purpose: str = "voice",
) -> tuple[int, httpx.Response]:
    """The phone's side: a form for the recording, the file posted to it, then complete."""
    ticket = await client.post(
        "/mp/v1/uploads",
        json={"purpose": purpose, "contentType": ctype, "size": len(data)},
        headers=headers,
    )
    assert ticket.status_code == 201, ticket.text
    form = ticket.json()
    files = {form["fileField"]: ("voice.bin", data, ctype)}
    posted = await client.post(form["url"], data=form["fields"], files=files)
    assert posted.status_code == 204, posted.text
    done = await client.post(f"/mp/v1/uploads/{form['id']}/complete", headers=headers)
    return int(form["id"]), done


async def test_an_mp3_is_kept_as_its_frames_with_its_length(client, demo, login):
    resident = await login("resident1")
    upload_id, done = await record(client, resident, mp3(5))
    assert done.status_code == 200, done.text
    view = done.json()
    assert view["status"] == "ready" and view["purpose"] == "voice"
    assert view["contentType"] == "audio/mpeg"
    assert view["durationMs"] == mp3_duration_ms(5)  # 139 frames of 36 ms
    assert view["width"] is None and view["warnings"] == []
    # What is kept is the frames alone: the ID3 tag in front is dropped.
    assert view["size"] == len(mp3(5, tag=False))
    links = (await client.get(f"/mp/v1/uploads/{upload_id}/url", headers=resident)).json()
    assert links["thumbnailUrl"] is None
    stored = await client.get(links["url"])
    assert stored.status_code == 200
    assert stored.headers["content-type"] == "audio/mpeg"  # what a phone plays
    assert stored.headers["content-disposition"].startswith("inline")
    assert "media-src 'self'" in stored.headers["content-security-policy"]
    assert stored.content == mp3(5, tag=False)
    again = await client.get(f"/mp/v1/uploads/{upload_id}", headers=resident)
    assert again.json()["durationMs"] == mp3_duration_ms(5)


@pytest.mark.parametrize(
    ("data", "declared", "stored", "duration"),
    [
        (adts(8), "audio/aac", "audio/aac", aac_duration_ms(8)),
        (m4a(8), "audio/mp4", "audio/mp4", aac_duration_ms(8)),
        # The recorder's "aac" is an .m4a on some phones: taken as what it is.
        (m4a(3), "audio/aac", "audio/mp4", aac_duration_ms(3)),
    ],
    ids=["adts", "m4a", "m4a-declared-aac"],
)
async def test_aac_as_adts_or_in_mp4_is_taken_with_its_length(
    client, demo, login, data, declared, stored, duration
):
    resident = await login("resident1")
    upload_id, done = await record(client, resident, data, declared)
    assert done.status_code == 200, done.text
    assert done.json()["contentType"] == stored
    assert done.json()["durationMs"] == duration
    links = (await client.get(f"/mp/v1/uploads/{upload_id}/url", headers=resident)).json()
    served = await client.get(links["url"])
    assert served.headers["content-type"] == stored
    assert served.content == data


def _junk_after_a_tag() -> bytes:
    return id3v2() + os.urandom(20_000)


@pytest.mark.parametrize(
    ("data", "declared", "code"),
    [
        (
            b"<!DOCTYPE html><html><body>" + b"x" * 4000 + b"</body></html>",
            "audio/mpeg",
            "audio_invalid",
        ),
        (pdf(), "audio/mpeg", "audio_invalid"),
        (_junk_after_a_tag(), "audio/mpeg", "audio_invalid"),
        (mp3_frame() + b"\0" * 7 + os.urandom(9_000), "audio/mpeg", "audio_invalid"),
        (jpeg(400, 300), "audio/aac", "audio_invalid"),
        (m4a(5, video=True), "audio/mp4", "audio_invalid"),
        (mp3(0.2), "audio/mpeg", "audio_too_short"),
        (mp3(MAX_SECONDS + 5), "audio/mpeg", "audio_too_long"),
    ],
    ids=["html", "pdf", "id3-then-junk", "one-frame-then-junk", "jpeg", "film", "short", "long"],
)
async def test_what_is_not_a_voice_note_is_refused_with_its_code(
    client, demo, login, ctx, data, declared, code
):
    resident = await login("resident1")
    upload_id, done = await record(client, resident, data, declared)
    assert done.status_code == 422, done.text
    problem = done.json()
    assert problem["code"] == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in problem["detail"])
    if code == "audio_invalid":
        assert problem["detail"] == "这段录音无法播放,请重新录音"
    if code == "audio_too_long":
        assert problem["detail"] == f"录音太长了,请在{MAX_SECONDS}秒以内"
    view = (await client.get(f"/mp/v1/uploads/{upload_id}", headers=resident)).json()
    assert view["status"] == "rejected"


async def test_a_recording_a_frame_over_the_limit_still_passes(client, demo, login):
    """The recorder stops on time, but writes its last frame whole."""
    _, done = await record(client, await login("resident1"), mp3(MAX_SECONDS + 0.9))
    assert done.status_code == 200, done.text
    assert done.json()["durationMs"] > MAX_SECONDS * 1000


async def test_voice_notes_are_audio_and_audio_only_voice_notes(client, demo, login):
    resident = await login("resident1")

    async def form(purpose: str, ctype: str, size: int = 50_000) -> httpx.Response:
        return await client.post(
            "/mp/v1/uploads",
            json={"purpose": purpose, "contentType": ctype, "size": size},
            headers=resident,
        )

    photo_as_voice = await form("voice", "image/jpeg")
    assert photo_as_voice.status_code == 422
    assert {e["field"] for e in photo_as_voice.json()["errors"]} == {"contentType"}
    audio_as_material = await form("material", "audio/mpeg")
    assert audio_as_material.status_code == 422
    assert {e["field"] for e in audio_as_material.json()["errors"]} == {"purpose"}
    too_big = await form("voice", "audio/mpeg", MAX_BYTES + 1)
    assert too_big.status_code == 422
    assert [e["field"] for e in too_big.json()["errors"]] == ["size"]
    assert "录音" in too_big.json()["errors"][0]["message"]
    for ctype in ("audio/mpeg", "audio/aac", "audio/mp4"):
        assert (await form("voice", ctype)).status_code == 201


async def _order_with_voice(client: httpx.AsyncClient, login: Any) -> dict[str, Any]:
    resident = await login("resident1")
    first, done = await record(client, resident, mp3(5))
    assert done.status_code == 200, done.text
    second, done = await record(client, resident, adts(12), "audio/aac")
    assert done.status_code == 200, done.text
    response = await submit(client, resident, voiceNoteUploadIds=[first, second])
    assert response.status_code == 201, response.text
    return {**response.json(), "resident": resident, "notes": [first, second]}


async def test_a_voice_note_goes_with_the_request_to_its_agent(client, demo, login):
    order = await _order_with_voice(client, login)
    first, second = order["notes"]
    assert order["voiceNotes"] == [
        {"uploadId": first, "durationMs": mp3_duration_ms(5), "durationSeconds": 5},
        {"uploadId": second, "durationMs": aac_duration_ms(12), "durationSeconds": 12},
    ]
    agent = await taken_by_agent1a(client, login, order["id"])
    detail = (await client.get(f"/mp/v1/agent/orders/{order['id']}", headers=agent)).json()
    assert [n["durationSeconds"] for n in detail["voiceNotes"]] == [5, 12]
    links = await client.get(f"/mp/v1/uploads/{first}/url", headers=agent)
    assert links.status_code == 200, links.text
    played = await client.get(links.json()["url"])
    assert played.status_code == 200 and played.headers["content-type"] == "audio/mpeg"
    # The town's dispatcher too; another resident, and another town's agent, are told no.
    dispatcher = await login("dispatcher1a")
    assert (await client.get(f"/mp/v1/uploads/{second}/url", headers=dispatcher)).status_code == 200
    for stranger in ("resident2", "agent4a"):
        refused = await client.get(f"/mp/v1/uploads/{first}/url", headers=await login(stranger))
        assert refused.status_code == 404, stranger


async def test_voice_notes_go_only_where_they_belong(client, demo, login):
    resident = await login("resident1")
    voice, _ = await record(client, resident, mp3(3))
    photo = await upload_photo(client, resident)
    # A recording is no photo of a material, and a photo no voice note.
    wrong = await client.post(
        "/mp/v1/orders",
        json={
            "itemCode": "RS-0001",
            "materials": {
                "id_card": [voice],
                "application_form": [await upload_photo(client, resident)],
                "entrustment": [await upload_photo(client, resident)],
            },
            "voiceNoteUploadIds": [photo],
        },
        headers={**resident, "Idempotency-Key": "tap-voice-wrong"},
    )
    assert wrong.status_code == 422, wrong.text
    messages = {e["field"]: e["message"] for e in wrong.json()["errors"]}
    assert messages == {
        "materials.id_card": "录音只能作为语音留言",
        "voiceNoteUploadIds": "请选择语音留言的录音",
    }
    four = [(await record(client, resident, mp3(1)))[0] for _ in range(4)]
    too_many = await submit(client, resident, voiceNoteUploadIds=four)
    assert too_many.status_code == 422
    assert [e["field"] for e in too_many.json()["errors"]] == ["voiceNoteUploadIds"]


async def test_the_orders_detail_shows_the_voice_notes_as_the_answer_did(client, demo, login):
    order = await _order_with_voice(client, login)
    detail = await client.get(f"/mp/v1/orders/{order['id']}", headers=order["resident"])
    assert detail.json()["voiceNotes"] == order["voiceNotes"]


async def test_voice_notes_are_removed_with_the_orders_other_files(client, demo, login, ctx):
    order = await _order_with_voice(client, login)
    first = order["notes"][0]
    assert await remove_files(ctx, [order["id"]]) == 1
    gone = await client.get(f"/mp/v1/uploads/{first}/url", headers=order["resident"])
    assert gone.status_code == 410 and gone.json()["code"] == "file_removed"
    # The order still says there was a voice note, and how long.
    detail = (await client.get(f"/mp/v1/orders/{order['id']}", headers=order["resident"])).json()
    assert [n["durationSeconds"] for n in detail["voiceNotes"]] == [5, 12]


def test_the_hand_made_mp3_frames_follow_the_published_header_layout():
    """The frames the tests make are real MPEG-2 Layer III: Pillow has no audio, so check
    the header bits by their published layout instead (sync, version 2, layer III, 24
    kbit/s, 16 kHz, mono) and the frame size 72 × 24000 / 16000 = 108 bytes."""
    frame = mp3_frame()
    header = int.from_bytes(frame[:4], "big")
    assert header >> 21 == 0x7FF
    assert (header >> 19) & 3 == 0b10 and (header >> 17) & 3 == 0b01
    assert (header >> 12) & 0xF == 3 and (header >> 10) & 3 == 2
    assert (header >> 6) & 3 == 0b11
    assert len(frame) == 108
    assert io.BytesIO(mp3(1)).read(3) == b"ID3"


@pytest.mark.skipif(shutil.which("sox") is None, reason="no sox (.ci/run installs it)")
@pytest.mark.parametrize(("rate", "channels", "seconds"), [(16000, 1, 3), (44100, 2, 10)])
def test_a_real_encoder_s_mp3_is_read_with_its_length(tmp_path, rate, channels, seconds):
    """An MP3 made by LAME (through sox, as a phone's recorder makes one) is taken as it is,
    and its length is what sox itself reads."""
    made = tmp_path / "tone.mp3"
    sox = shutil.which("sox") or "sox"
    make = [sox, "-n", "-r", str(rate), "-c", str(channels), str(made)]
    subprocess.run([*make, "synth", str(seconds), "sine", "440"], check=True)  # noqa: S603
    read = subprocess.run(  # noqa: S603 - sox from the path, fixed arguments
        [sox, "--i", "-D", str(made)], check=True, capture_output=True, text=True
    )
    said = read.stdout
    audio = read_audio(made.read_bytes())
    assert audio.content_type == "audio/mpeg"
    assert abs(audio.duration_ms / 1000 - float(said)) < 0.1
