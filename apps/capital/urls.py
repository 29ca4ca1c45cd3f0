from django.urls import URLPattern, URLResolver

from apps.capital.urls_metrics import urlpatterns as metrics_urls
from apps.capital.urls_roadmap import urlpatterns as roadmap_urls

# Metrics (dashboard, definitions, drill-down, CSV) come from apps/capital/urls_metrics.py;
# the assessment, battle and roadmap pages add theirs to this list.
urlpatterns: list[URLPattern | URLResolver] = []
urlpatterns += roadmap_urls
urlpatterns += metrics_urls
