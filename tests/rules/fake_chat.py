"""A chat model for tests: langchain-core's fake model, answering with REPLIES in turn.

Tests point ORCHCAP_CHAT_MODEL at `tests.rules.fake_chat:model` and set REPLIES."""

from langchain_core.language_models.fake_chat_models import FakeListChatModel

REPLIES: list[str] = []


def model() -> FakeListChatModel:
    return FakeListChatModel(responses=list(REPLIES))


def broken() -> FakeListChatModel:
    # error_on_chunk_number applies to streaming; an empty reply list makes invoke fail instead.
    return FakeListChatModel(responses=[])
