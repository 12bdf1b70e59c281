"""Telegram updates (captured shapes) become the InboundMessage the engine expects."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bots.telegram.inbound import command_text, parse_update
from tests.fakes import load_fixture

BOT_ID = 123456


def parse(data: dict[str, Any]) -> Any:
    return parse_update(data, bot_id=BOT_ID)


def test_private_text() -> None:
    msg = parse(load_fixture("telegram_private_text"))
    assert msg.channel == "telegram" and msg.provider_id == "u811332404"
    assert msg.address == msg.sender == "7300100200"
    assert msg.text == "7/9" and not msg.is_group
    assert msg.sender_name == "Ana Ruiz" and msg.language == "es"
    assert msg.raw["message"]["text"] == "7/9"  # the provider's payload, kept as sent


def test_group_text_is_addressed_to_the_group_from_the_member() -> None:
    msg = parse(load_fixture("telegram_group_text"))
    assert msg.address == "-1001234567890" and msg.sender == "7300100200"
    assert msg.is_group and msg.group_title == "5 West Dash team"
    assert msg.text == "8 of 9"


def test_start_deep_link_becomes_a_join() -> None:
    assert parse(load_fixture("telegram_start_deep_link")).text == "JOIN K7Q2"


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("/start JOIN-K7Q2", "JOIN K7Q2"),
        ("/start K7Q2", "JOIN K7Q2"),
        ("/start", "START"),
        ("/plan@dash_bot", "PLAN"),
        ("/join ab12cd", "JOIN ab12cd"),
        ("/stop", "STOP"),
        ("7 of 9", "7 of 9"),
    ],
)
def test_commands_read_as_keywords(typed: str, meant: str) -> None:
    assert command_text(typed) == meant


def test_callback_query_carries_its_data_and_the_button_label() -> None:
    data = load_fixture("telegram_callback_query")
    msg = parse(data)
    assert msg.callback_data == "score:importance:4"
    assert msg.callback_id == "504320520072928936"
    assert msg.address == "7300100200" and msg.provider_id == "u811332407"

    with_keyboard = copy.deepcopy(data)
    with_keyboard["update_id"] += 1
    with_keyboard["callback_query"]["message"]["reply_markup"] = {
        "inline_keyboard": [
            [{"text": str(n), "callback_data": f"score:importance:{n}"} for n in range(1, 6)]
        ]
    }
    assert parse(with_keyboard).text == "4"  # reads like the nurse typed "4"


def test_bot_added_to_and_removed_from_a_group() -> None:
    data = load_fixture("telegram_bot_added_to_group")
    added = parse(data)
    assert added.event == "bot_added" and added.is_group
    assert added.address == "-1001234567890" and added.sender == "7300100200"

    removed = copy.deepcopy(data)
    member = removed["my_chat_member"]
    member["old_chat_member"], member["new_chat_member"] = (
        member["new_chat_member"],
        {**member["old_chat_member"], "status": "kicked", "until_date": 0},
    )
    assert parse(removed).event == "bot_removed"


def test_someone_else_joining_the_group_is_not_a_message() -> None:
    data = load_fixture("telegram_bot_added_to_group")
    data["my_chat_member"]["new_chat_member"]["user"]["id"] = 999  # another bot
    data["my_chat_member"]["old_chat_member"]["user"]["id"] = 999
    assert parse(data) is None


def test_a_person_blocking_the_bot() -> None:
    data = {
        "update_id": 5,
        "my_chat_member": {
            "chat": {"id": 42, "type": "private", "first_name": "Ana"},
            "from": {"id": 42, "is_bot": False, "first_name": "Ana"},
            "date": 1796644800,
            "old_chat_member": {
                "user": {"id": BOT_ID, "is_bot": True, "first_name": "Dash"},
                "status": "member",
            },
            "new_chat_member": {
                "user": {"id": BOT_ID, "is_bot": True, "first_name": "Dash"},
                "status": "kicked",
                "until_date": 0,
            },
        },
    }
    msg = parse(data)
    assert msg.event == "blocked" and msg.address == "42"


def test_photo_with_caption_and_voice_without_text() -> None:
    base = load_fixture("telegram_private_text")
    photo = copy.deepcopy(base)
    del photo["message"]["text"]
    photo["message"]["caption"] = "our huddle board"
    photo["message"]["photo"] = [
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60},
        {"file_id": "large", "file_unique_id": "l", "width": 800, "height": 533},
    ]
    msg = parse(photo)
    assert msg.text == "our huddle board"
    assert msg.media == [{"type": "photo", "file_id": "large", "width": 800, "height": 533}]

    voice = copy.deepcopy(base)
    del voice["message"]["text"]
    voice["message"]["voice"] = {
        "file_id": "v1",
        "file_unique_id": "v",
        "duration": 7,
        "mime_type": "audio/ogg",
    }
    msg = parse(voice)
    assert msg.text == ""
    assert msg.media == [
        {"type": "voice", "file_id": "v1", "duration": 7, "mime_type": "audio/ogg"}
    ]


def test_a_payload_without_update_id_is_refused() -> None:
    with pytest.raises(ValueError, match="update_id"):
        parse_update({"message": {}}, bot_id=BOT_ID)
