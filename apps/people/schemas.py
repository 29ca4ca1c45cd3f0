from ninja import Schema


class TeamOut(Schema):
    slug: str
    name: str
    roles: list[str]
