"""Pages that qrgate serves to people (the waiting page of scheme C) and their static files."""
