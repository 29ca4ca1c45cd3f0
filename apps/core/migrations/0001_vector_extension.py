from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector first: later apps store embeddings (similar cases) in vector columns."""

    initial = True
    dependencies = []
    operations = [VectorExtension()]
