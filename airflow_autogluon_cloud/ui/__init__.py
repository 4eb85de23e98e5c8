"""The "AutoGluon" page in Airflow's UI: registry, evaluations, endpoints and jobs.

:mod:`.plugin` is what Airflow loads at start (light: no FastAPI, no backend); :mod:`.app` builds
the FastAPI app on the first request; :mod:`.pages` reads everything through the hook's services.
"""

#: Where the page is mounted in Airflow's API server (and the nav link points).
URL_PREFIX = "/autogluon"
