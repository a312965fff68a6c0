"""Pages that qrgate serves to people and their files: the waiting page of scheme C
(``pages``), the landing page and the offline API reference (``about``), our own static
files (``static/``) and pinned third-party ones (``vendor/``, see scripts/vendor-web.sh)."""
