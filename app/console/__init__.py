"""The operator console at ``/admin/``: server-rendered pages to connect locations, map fields,
switch on ready-made actions, follow a contact's activity and keep the settings' history.

Every page is under ``/admin/console/`` (``/admin/`` leads there). ``AdminGate`` admits the admin's
bearer token or the browser's admin session (the signed cookie the status page also uses); without
either, a page answers a redirect to the sign-in page and a form post 401. Every form carries a
CSRF token bound to that session (``app.console.security``).
"""
