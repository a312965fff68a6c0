"""qrgate: QR-code based authentication and payment verification server."""

__version__ = "0.1.0"
