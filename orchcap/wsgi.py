import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchcap.settings")
# A web request scores a few rows (a sync item, a suggestion); OpenMP's thread team costs more
# than the work at that size (one row through HistGradientBoosting: 8.8 ms with the team, 1.0 ms
# without), and the web server's threads already use the cores. Set before scikit-learn loads
# its OpenMP runtime; training and batch scoring run in Celery workers, which keep the default.
os.environ.setdefault("OMP_NUM_THREADS", "1")

application = get_wsgi_application()
