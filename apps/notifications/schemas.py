from datetime import datetime
from typing import Literal

from ninja import Field, Schema

KindName = Literal["case_routed", "sla_breached", "connector_disabled"]


class ErrorOut(Schema):
    detail: str


class NotificationOut(Schema):
    id: int
    kind: str
    title: str
    body: str
    url: str = Field(description="A path inside orchcap (or empty).")
    created_at: datetime
    read_at: datetime | None
    emailed_at: datetime | None


class NotificationsOut(Schema):
    unread: int = Field(description="Unread notifications (counted up to 100).")
    count: int = Field(description="Notifications matching the filter.")
    items: list[NotificationOut]


class MarkedOut(Schema):
    marked: int


class PreferenceOut(Schema):
    kind: str
    label: str
    in_app: bool
    email: bool


class PreferenceIn(Schema):
    kind: KindName
    in_app: bool
    email: bool
