"""The marketers' page at ``/app``: server-rendered HTML (Jinja2) on the service's own answers.

``routes`` serves the page shell and its two static files (public: they hold no data) and the HTML parts
the page fetches with the API key (``Authorization: Bearer``, kept by the browser in ``sessionStorage``);
each part is rendered from the pydantic answer of a JSON endpoint (:mod:`serving.plans`,
:mod:`serving.summary`, :mod:`serving.table`), so the page shows exactly what a CRM integration gets.
``words`` puts numbers into words (money, percentages, a grade, churn drivers); ``chart`` draws the
profit curve as SVG. No CDN, no build step: ``static/`` holds hand-written JavaScript and CSS.
"""
